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
    let mut out = Lines(String::new());
    listeners(&mut out, config);
    issuers(&mut out, config);
    dpop(&mut out, config);
    proxy(&mut out, config);
    answers(&mut out, config);
    routes(&mut out, config);
    out.0
}

/// The summary being written: one setting a line, its name in a column.
struct Lines(String);

impl Lines {
    fn line(&mut self, key: &str, value: impl std::fmt::Display) {
        use std::fmt::Write as _;
        let _ = writeln!(self.0, "{key:<17} {value}");
    }
}

fn listeners(out: &mut Lines, config: &Config) {
    out.line("listen", config.listen);
    if let Some(ops) = config.ops_listen {
        out.line("ops_listen", format!("{ops} (/healthz, /readyz, /metrics only)"));
    }
    if let Some(grpc) = &config.grpc {
        out.line("grpc listen", format!("{} (Envoy ext_authz Check, gRPC health)", grpc.listen));
    }
}

/// Each issuer, and tollgate's own client at the issuer when there is one.
fn issuers(out: &mut Lines, config: &Config) {
    for i in &config.issuers {
        out.line("issuer", &i.issuer);
        out.line("discovery", i.discovery_url());
        out.line("audiences", i.audiences.join(", "));
        let algs: Vec<String> = i.algorithms.iter().map(|a| format!("{a:?}")).collect();
        out.line("algorithms", algs.join(", "));
        out.line("leeway", format!("{} s", i.leeway));
        let required = if i.required_claims.is_empty() { "none".into() } else { i.required_claims.join(", ") };
        out.line("required_claims", required);
    }
    if let Some(client) = &config.client {
        let auth = match &client.auth {
            ClientAuth::SecretPost(_) => "client_secret_post".to_string(),
            ClientAuth::SecretBasic(_) => "client_secret_basic".to_string(),
            ClientAuth::PrivateKeyJwt { algorithm, .. } => format!("private_key_jwt, {algorithm}"),
        };
        out.line("client", format!("{} ({auth}), timeout {:?}", client.client_id, client.timeout));
    }
}

fn dpop(out: &mut Lines, config: &Config) {
    let d = &config.dpop;
    let mode = match d.mode {
        DpopMode::Disabled => "disabled",
        DpopMode::Allowed => "enabled, not required",
        DpopMode::Required => "required",
    };
    let algorithms = ProofAlgorithm::join(&d.algorithms, " ");
    out.line(
        "dpop",
        format!("{mode}; proofs {algorithms}; iat_leeway {} s, iat_offset {} s", d.iat_leeway, d.iat_offset),
    );
    let replay = match &d.replay {
        ReplayStoreSetting::Memory { capacity } => format!("memory (at most {capacity} live proofs)"),
        ReplayStoreSetting::Redis(url) => format!("{url} (shared by every replica)"),
    };
    out.line("replay_store", replay);
    out.line("nonce", if d.nonce.is_some() { "required (server nonces, RFC 9449 §9)" } else { "off" });
}

fn proxy(out: &mut Lines, config: &Config) {
    let gateway = match config.proxy.gateway {
        Gateway::Nginx => "nginx",
        Gateway::IngressNginx => "ingress-nginx",
        Gateway::Traefik => "traefik",
        Gateway::Caddy => "caddy",
        Gateway::Envoy => "envoy",
    };
    out.line("gateway", format!("{gateway} (only its headers are read)"));
    let trusted: Vec<String> = config.proxy.trusted.iter().map(ToString::to_string).collect();
    out.line("trusted", trusted.join(", "));
    out.line("forwarded_prefix", config.proxy.forwarded_prefix);
    let origins = &config.proxy.public_origins;
    out.line(
        "public_origins",
        if origins.is_empty() { "any (from the gateway's headers)".into() } else { origins.join(", ") },
    );
}

/// How refusals read, and the cache, shutdown and log settings.
fn answers(out: &mut Lines, config: &Config) {
    out.line("invalid_request", config.errors.invalid_request_status.as_u16());
    out.line("realm", &config.errors.realm);
    let cache = config.cache.max_tokens;
    out.line("cache", if cache == 0 { "off".into() } else { format!("{cache} verified tokens") });
    let s = &config.shutdown;
    let (delay, timeout) = (s.drain_delay.as_secs(), s.drain_timeout.as_secs());
    out.line(
        "shutdown",
        format!("drain_delay {delay} s, drain_timeout {timeout} s (exit within {} s of SIGTERM)", delay + timeout),
    );
    let format = match config.log.format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    out.line("log", format!("{format}, level {}", config.log.level));
}

/// The default, the path matching, the claim headers and every route.
fn routes(out: &mut Lines, config: &Config) {
    out.line("default", config.default.as_str());
    let matching = match config.path_matching {
        PathMatching::Strict => "strict",
        PathMatching::Exact => "exact",
    };
    out.line("path_matching", matching);
    for h in &config.headers {
        out.line("header", format!("{} <- claim {}", h.name, h.claim));
    }
    for (n, r) in config.routes.iter().enumerate() {
        out.line(&format!("route {}", n + 1), describe_route(r));
    }
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
