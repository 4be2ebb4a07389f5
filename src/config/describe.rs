//! `tollgate check`'s words: the resolved settings in the config's own terms, and the
//! warnings for settings that load but are likely mistakes.

use super::{
    ClientAuth, Config, DefaultAction, Gateway, LogFormat, PathMatching, ProofAlgorithm, ReplayStoreSetting,
    describe_route,
};
use crate::refusal::DpopMode;

/// A readable summary of a validated config, for `tollgate check`: every resolved
/// setting, in the config's own words, routes numbered from 1. No secret is printed.
pub fn describe(config: &Config) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut line = |key: &str, value: String| {
        let _ = writeln!(out, "{key:<17} {value}");
    };
    line("listen", config.listen.to_string());
    if let Some(ops) = config.ops_listen {
        line("ops_listen", format!("{ops} (/healthz, /readyz, /metrics only)"));
    }
    if let Some(grpc) = &config.grpc {
        line("grpc listen", format!("{} (Envoy ext_authz Check, gRPC health)", grpc.listen));
    }
    for i in &config.issuers {
        line("issuer", i.issuer.clone());
        line("discovery", i.discovery_url());
        line("audiences", i.audiences.join(", "));
        let algs: Vec<String> = i.algorithms.iter().map(|a| format!("{a:?}")).collect();
        line("algorithms", algs.join(", "));
        line("leeway", format!("{} s", i.leeway));
        line(
            "required_claims",
            if i.required_claims.is_empty() { "none".into() } else { i.required_claims.join(", ") },
        );
    }
    if let Some(client) = &config.client {
        let auth = match &client.auth {
            ClientAuth::SecretPost(_) => "client_secret_post".to_string(),
            ClientAuth::SecretBasic(_) => "client_secret_basic".to_string(),
            ClientAuth::PrivateKeyJwt { algorithm, .. } => format!("private_key_jwt, {algorithm}"),
        };
        line("client", format!("{} ({auth}), timeout {:?}", client.client_id, client.timeout));
    }
    let d = &config.dpop;
    let mode = match d.mode {
        DpopMode::Disabled => "disabled",
        DpopMode::Allowed => "enabled, not required",
        DpopMode::Required => "required",
    };
    line(
        "dpop",
        format!(
            "{mode}; proofs {}; iat_leeway {} s, iat_offset {} s",
            ProofAlgorithm::join(&d.algorithms, " "),
            d.iat_leeway,
            d.iat_offset
        ),
    );
    let replay = match &d.replay {
        ReplayStoreSetting::Memory { capacity } => format!("memory (at most {capacity} live proofs)"),
        ReplayStoreSetting::Redis(url) => format!("{url} (shared by every replica)"),
    };
    line("replay_store", replay);
    line("nonce", if d.nonce.is_some() { "required (server nonces, RFC 9449 §9)".into() } else { "off".into() });
    let gateway = match config.proxy.gateway {
        Gateway::Nginx => "nginx",
        Gateway::IngressNginx => "ingress-nginx",
        Gateway::Traefik => "traefik",
        Gateway::Caddy => "caddy",
        Gateway::Envoy => "envoy",
    };
    line("gateway", format!("{gateway} (only its headers are read)"));
    let trusted: Vec<String> = config.proxy.trusted.iter().map(ToString::to_string).collect();
    line("trusted", trusted.join(", "));
    line("forwarded_prefix", config.proxy.forwarded_prefix.to_string());
    let origins = &config.proxy.public_origins;
    line(
        "public_origins",
        if origins.is_empty() { "any (from the gateway's headers)".into() } else { origins.join(", ") },
    );
    line("invalid_request", config.errors.invalid_request_status.as_u16().to_string());
    line("realm", config.errors.realm.clone());
    let cache = config.cache.max_tokens;
    line("cache", if cache == 0 { "off".into() } else { format!("{cache} verified tokens") });
    let s = &config.shutdown;
    line(
        "shutdown",
        format!(
            "drain_delay {} s, drain_timeout {} s (exit within {} s of SIGTERM)",
            s.drain_delay.as_secs(),
            s.drain_timeout.as_secs(),
            (s.drain_delay + s.drain_timeout).as_secs()
        ),
    );
    let format = match config.log.format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    line("log", format!("{format}, level {}", config.log.level));
    line("default", config.default.as_str().to_string());
    line(
        "path_matching",
        match config.path_matching {
            PathMatching::Strict => "strict".to_string(),
            PathMatching::Exact => "exact".to_string(),
        },
    );
    for h in &config.headers {
        line("header", format!("{} <- claim {}", h.name, h.claim));
    }
    for (n, r) in config.routes.iter().enumerate() {
        line(&format!("route {}", n + 1), describe_route(r));
    }
    out
}

/// What `tollgate check` warns about: settings that load but are likely mistakes.
pub fn warnings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    for i in &config.issuers {
        let text = format!("{} {}", i.issuer, i.audiences.join(" ")).to_ascii_lowercase();
        if ["your-tenant", "your_tenant", "<tenant>", "://tenant."].iter().any(|p| text.contains(p)) {
            warnings.push(format!("issuer {} looks like a placeholder: set your tenant's domain", i.issuer));
        }
    }
    if config.proxy.gateway == Gateway::Nginx && config.errors.invalid_request_status == http::StatusCode::BAD_REQUEST {
        warnings.push(
            "gateway = \"nginx\" with invalid_request_status = 400: nginx's auth_request turns a 400 into a 500; set [errors] invalid_request_status = 401".into(),
        );
    }
    if config.default == DefaultAction::Authenticated && config.routes.iter().any(|r| r.host.is_some()) {
        warnings.push(
            "routes name hosts while default = \"authenticated\": a request for any other host needs only a valid token; consider default = \"deny\"".into(),
        );
    }
    warnings
}
