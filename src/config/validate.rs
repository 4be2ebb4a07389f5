//! Validation: every `Raw*` value checked and turned into its typed setting, each problem
//! noted against its key so that one run names them all.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ipnet::IpNet;

use super::file::{OneOrMany, RawConfig, RawDpop, RawErrors, RawIssuer, RawProxy, RawRoute, RawShutdown};
use super::*;
use crate::refusal::DpopMode;

/// Most seconds either shutdown wait may last: an hour is already longer than any
/// orchestrator waits before it kills the process.
const MAX_DRAIN_SECONDS: i64 = 3600;

impl RawShutdown {
    fn validate(self, p: &mut Problems) -> ShutdownConfig {
        let mut seconds = |key: &str, value: i64| {
            if (0..=MAX_DRAIN_SECONDS).contains(&value) {
                std::time::Duration::from_secs(value.unsigned_abs())
            } else {
                p.add(key, format!("seconds from 0 to {MAX_DRAIN_SECONDS}, not {value}"));
                std::time::Duration::ZERO
            }
        };
        let drain_delay = seconds("shutdown.drain_delay", self.drain_delay);
        let drain_timeout = seconds("shutdown.drain_timeout", self.drain_timeout);
        ShutdownConfig { drain_delay, drain_timeout }
    }
}

impl RawConfig {
    pub(super) fn validate(self) -> Result<Config, ConfigError> {
        let mut p = Problems::default();
        let listen = self.listen.parse().unwrap_or_else(|_| {
            p.add("listen", format!("not an address such as 127.0.0.1:8080: {:?}", self.listen));
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });
        let ops_listen = self.ops_listen.as_deref().and_then(|text| ops_address(text, listen, &mut p));
        let grpc = self
            .grpc
            .and_then(|g| grpc_address(&g.listen, listen, ops_listen, &mut p))
            .map(|listen| GrpcConfig { listen });
        let issuers = issuers(self.issuer, self.issuers, &mut p);
        let dpop = self.dpop.validate(&mut p);
        let proxy = self.proxy.validate(&mut p);
        let errors = self.errors.validate(&mut p);
        let routes: Vec<Route> =
            self.routes.into_iter().enumerate().map(|(i, r)| r.validate(&format!("routes[{i}]"), &mut p)).collect();
        if dpop.mode == DpopMode::Disabled && routes.iter().any(|r| r.dpop_required) {
            p.add("routes", "a route requires DPoP while dpop.enabled is false");
        }
        let headers = claim_headers(self.headers, &mut p);
        let client = self.client.and_then(|c| c.validate(&mut p));
        check_exchanges(&routes, &headers, client.is_some(), &mut p);
        check_route_issuers(&routes, &issuers, &mut p);
        let log = LogConfig { format: self.log.format, level: self.log.level };
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log.level) {
            p.add("log.level", format!("not a log filter: {e}"));
        }
        let cache = CacheConfig { max_tokens: self.cache.max_tokens };
        let shutdown = self.shutdown.validate(&mut p);
        if p.0.is_empty() {
            Ok(Config {
                listen,
                ops_listen,
                grpc,
                default: self.default,
                path_matching: self.path_matching,
                issuers,
                dpop,
                proxy,
                errors,
                routes,
                headers,
                log,
                cache,
                shutdown,
                client,
            })
        } else {
            Err(ConfigError { problems: p.0 })
        }
    }
}

/// `ops_listen`: an address of its own, never one `listen` already holds.
fn ops_address(text: &str, listen: SocketAddr, p: &mut Problems) -> Option<SocketAddr> {
    let Ok(addr) = text.parse::<SocketAddr>() else {
        p.add("ops_listen", format!("not an address such as 0.0.0.0:9090: {text:?}"));
        return None;
    };
    if overlaps(addr, listen) {
        p.add("ops_listen", format!("{addr} overlaps listen ({listen}): give the ops endpoints a port of their own"));
    }
    Some(addr)
}

/// `grpc.listen`: an address of its own, apart from `listen` and `ops_listen`.
fn grpc_address(text: &str, listen: SocketAddr, ops: Option<SocketAddr>, p: &mut Problems) -> Option<SocketAddr> {
    let Ok(addr) = text.parse::<SocketAddr>() else {
        p.add("grpc.listen", format!("not an address such as 127.0.0.1:9001: {text:?}"));
        return None;
    };
    for (key, other) in [("listen", Some(listen)), ("ops_listen", ops)] {
        if let Some(other) = other.filter(|o| overlaps(addr, *o)) {
            p.add("grpc.listen", format!("{addr} overlaps {key} ({other}): gRPC needs a port of its own"));
        }
    }
    Some(addr)
}

/// Two addresses that cannot both be bound: one port (not 0), and one IP or a wildcard.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0 && a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// `[issuer]` or `[[issuers]]`, not both; each issuer identifier once.
fn issuers(one: Option<RawIssuer>, many: Vec<RawIssuer>, p: &mut Problems) -> Vec<IssuerConfig> {
    let issuers = match (one, many.is_empty()) {
        (Some(_), false) => {
            p.add("issuers", "set [issuer] or [[issuers]], not both");
            return Vec::new();
        }
        (Some(one), true) => vec![one.validate("issuer", p)],
        (None, false) => {
            many.into_iter().enumerate().map(|(n, raw)| raw.validate(&format!("issuers[{n}]"), p)).collect()
        }
        (None, true) => {
            p.add("issuer", "required: [issuer] with domain or url (AUTH0_DOMAIN also works), or [[issuers]]");
            return Vec::new();
        }
    };
    for (n, issuer) in issuers.iter().enumerate() {
        if let Some(first) = issuers[..n].iter().position(|i| i.issuer == issuer.issuer && !i.issuer.is_empty()) {
            p.add(format!("issuers[{n}]"), format!("the same issuer as issuers[{first}]: {}", issuer.issuer));
        }
    }
    issuers
}

/// A route's `issuers` must name configured issuers, exactly as their tokens' `iss`.
fn check_route_issuers(routes: &[Route], issuers: &[IssuerConfig], p: &mut Problems) {
    for (n, route) in routes.iter().enumerate() {
        for name in &route.issuers {
            if !issuers.iter().any(|i| i.issuer == *name) {
                let known: Vec<&str> = issuers.iter().map(|i| i.issuer.as_str()).collect();
                p.add(
                    format!("routes[{n}].issuers"),
                    format!("{name:?} is not a configured issuer ({})", known.join(", ")),
                );
            }
        }
    }
}

impl RawIssuer {
    fn validate(self, key: &str, p: &mut Problems) -> IssuerConfig {
        let issuer = match (&self.domain, &self.url) {
            (Some(_), Some(_)) => {
                p.add(key, "set either domain or url, not both");
                String::new()
            }
            (None, None) => {
                p.add(key, "set domain (e.g. TENANT.auth0.com) or url (AUTH0_DOMAIN also works)");
                String::new()
            }
            (Some(domain), None) => issuer_from_domain(domain, key, p),
            (None, Some(url)) => issuer_from_url(url, key, p),
        };
        let audiences = match self.audience {
            None => vec![],
            Some(OneOrMany::One(a)) => vec![a],
            Some(OneOrMany::Many(list)) => list,
        };
        if audiences.is_empty() || audiences.iter().any(|a| a.trim().is_empty()) {
            p.add(format!("{key}.audience"), "required and not empty: the API identifier tokens are issued for");
        }
        let algorithms = self.algorithms.iter().filter_map(|name| token_algorithm(name, key, p)).collect::<Vec<_>>();
        if self.algorithms.is_empty() {
            p.add(format!("{key}.algorithms"), "must list at least one algorithm");
        }
        if !(0..=300).contains(&self.leeway) {
            p.add(format!("{key}.leeway"), "must be between 0 and 300 seconds");
        }
        IssuerConfig { issuer, audiences, algorithms, leeway: self.leeway, required_claims: self.required_claims }
    }
}

fn token_algorithm(name: &str, key: &str, p: &mut Problems) -> Option<jsonwebtoken::Algorithm> {
    if !TOKEN_ALGORITHMS.contains(&name) {
        p.add(
            format!("{key}.algorithms"),
            format!("{name:?} is not allowed; choose from {}", TOKEN_ALGORITHMS.join(", ")),
        );
        return None;
    }
    name.parse().ok()
}

fn issuer_from_domain(domain: &str, key: &str, p: &mut Problems) -> String {
    let valid = !domain.is_empty() && domain.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if !valid {
        p.add(format!("{key}.domain"), format!("not a host name such as TENANT.auth0.com: {domain:?}"));
    }
    format!("https://{domain}/")
}

fn issuer_from_url(text: &str, key: &str, p: &mut Problems) -> String {
    match url::Url::parse(text) {
        Ok(u)
            if matches!(u.scheme(), "https" | "http")
                && u.host().is_some()
                && u.query().is_none()
                && u.fragment().is_none()
                && u.username().is_empty() =>
        {
            text.to_string()
        }
        Ok(_) => {
            p.add(format!("{key}.url"), format!("must be an http(s) URL without query, fragment or user: {text:?}"));
            String::new()
        }
        Err(e) => {
            p.add(format!("{key}.url"), format!("not a URL ({e}): {text:?}"));
            String::new()
        }
    }
}

impl RawDpop {
    fn validate(self, p: &mut Problems) -> DpopConfig {
        let mode = match (self.enabled, self.required) {
            (false, true) => {
                p.add("dpop.required", "cannot be true while dpop.enabled is false");
                DpopMode::Disabled
            }
            (false, false) => DpopMode::Disabled,
            (true, false) => DpopMode::Allowed,
            (true, true) => DpopMode::Required,
        };
        let algorithms = self
            .algorithms
            .iter()
            .filter_map(|name| {
                let alg = ProofAlgorithm::from_name(name);
                if alg.is_none() {
                    let choices = ProofAlgorithm::join(&ProofAlgorithm::ALL, ", ");
                    p.add("dpop.algorithms", format!("{name:?} is not allowed; choose from {choices}"));
                }
                alg
            })
            .collect();
        if self.algorithms.is_empty() {
            p.add("dpop.algorithms", "must list at least one algorithm");
        }
        if !(0..=300).contains(&self.iat_leeway) {
            p.add("dpop.iat_leeway", "must be between 0 and 300 seconds");
        }
        if !(1..=3600).contains(&self.iat_offset) {
            p.add("dpop.iat_offset", "must be between 1 and 3600 seconds");
        }
        if !(1_000..=100_000_000).contains(&self.replay_capacity) {
            p.add("dpop.replay_capacity", "must be between 1000 and 100000000 live proofs");
        }
        let replay = match self.replay_store.as_str() {
            "memory" => ReplayStoreSetting::Memory { capacity: self.replay_capacity },
            url => RedisUrl::parse(url).map(ReplayStoreSetting::Redis).unwrap_or_else(|why| {
                p.add("dpop.replay_store", format!("must be \"memory\" or a redis://HOST:PORT/DB URL ({why})"));
                ReplayStoreSetting::Memory { capacity: self.replay_capacity }
            }),
        };
        if self.nonce && self.nonce_secret.as_deref().is_none_or(|s| s.len() < 32) {
            p.add("dpop.nonce_secret", "required with dpop.nonce: at least 32 characters, the same on every replica");
        }
        DpopConfig {
            mode,
            algorithms,
            iat_leeway: self.iat_leeway,
            iat_offset: self.iat_offset,
            replay,
            nonce: self.nonce_secret.filter(|_| self.nonce).map(Secret::new),
        }
    }
}

impl RawProxy {
    fn validate(self, p: &mut Problems) -> ProxyConfig {
        let gateway = match self.gateway.as_deref() {
            Some("nginx") => Gateway::Nginx,
            Some("ingress-nginx") => Gateway::IngressNginx,
            Some("traefik") => Gateway::Traefik,
            Some("caddy") => Gateway::Caddy,
            Some("envoy") => Gateway::Envoy,
            other => {
                let problem = match other {
                    None => "required: the gateway that calls tollgate".to_string(),
                    Some(g) => format!("unknown gateway {g:?}"),
                };
                p.add("proxy.gateway", format!("{problem} (nginx, ingress-nginx, traefik, caddy or envoy)"));
                Gateway::Nginx
            }
        };
        let trusted = self
            .trusted
            .iter()
            .filter_map(|cidr| match cidr.parse::<IpNet>() {
                Ok(net) => Some(net),
                Err(_) => match cidr.parse::<std::net::IpAddr>() {
                    Ok(ip) => Some(IpNet::from(ip)),
                    Err(_) => {
                        p.add("proxy.trusted", format!("not a CIDR such as 10.0.0.0/8: {cidr:?}"));
                        None
                    }
                },
            })
            .collect();
        let public_origins = self
            .public_origins
            .iter()
            .filter_map(|origin| {
                let parsed = crate::uri::parse_origin(origin);
                if parsed.is_none() {
                    p.add("proxy.public_origins", format!("not an origin such as https://api.example.com: {origin:?}"));
                }
                parsed
            })
            .collect();
        ProxyConfig { gateway, trusted, forwarded_prefix: self.forwarded_prefix, public_origins }
    }
}

impl RawErrors {
    fn validate(self, p: &mut Problems) -> ErrorsConfig {
        let invalid_request_status = match self.invalid_request_status {
            400 => http::StatusCode::BAD_REQUEST,
            401 => http::StatusCode::UNAUTHORIZED,
            other => {
                p.add("errors.invalid_request_status", format!("must be 400 or 401, not {other}"));
                http::StatusCode::BAD_REQUEST
            }
        };
        if self.realm.is_empty() || !self.realm.bytes().all(is_quoted_text) {
            p.add("errors.realm", "must be printable ASCII without '\"' or '\\'");
        }
        ErrorsConfig { invalid_request_status, realm: self.realm }
    }
}

/// RFC 6750 §3: characters allowed inside a challenge's quoted values.
fn is_quoted_text(b: u8) -> bool {
    matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// RFC 6749 §3.3 scope-token characters.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

impl RawRoute {
    fn validate(self, key: &str, p: &mut Problems) -> Route {
        let host = self.host.as_deref().and_then(|h| {
            HostPattern::parse(h).map_err(|problem| p.add(format!("{key}.host"), format!("{problem}: {h:?}"))).ok()
        });
        let path = match (self.path_prefix, self.path) {
            (Some(_), Some(_)) => {
                p.add(key, "set path_prefix or path, not both");
                PathMatch::Any
            }
            (Some(prefix), None) => checked_path(prefix, &format!("{key}.path_prefix"), p, PathMatch::Prefix),
            (None, Some(exact)) => checked_path(exact, &format!("{key}.path"), p, PathMatch::Exact),
            (None, None) => PathMatch::Any,
        };
        let methods = self.methods.inspect(|methods| {
            for m in methods {
                if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) {
                    p.add(format!("{key}.methods"), format!("methods are upper-case tokens such as GET: {m:?}"));
                }
            }
        });
        for scope in self.scopes.iter().chain(&self.any_scopes) {
            if !is_scope_token(scope) {
                p.add(format!("{key}.scopes"), format!("not a scope token: {scope:?}"));
            }
        }
        let dpop_required = match self.dpop.as_deref() {
            None => false,
            Some("required") => true,
            Some(other) => {
                p.add(format!("{key}.dpop"), format!("the only value is \"required\", not {other:?}"));
                false
            }
        };
        let requires_token = !(self.scopes.is_empty()
            && self.any_scopes.is_empty()
            && self.permissions.is_empty()
            && self.organizations.is_empty()
            && self.claims.is_empty()
            && self.actors.is_empty()
            && self.issuers.is_empty()
            && !dpop_required);
        if self.public && requires_token {
            p.add(
                key,
                "a public route cannot require scopes, permissions, organizations, claims, actors, issuers or DPoP",
            );
        }
        if self.public && self.exchange.is_some() {
            p.add(format!("{key}.exchange"), "a public route has no token to exchange");
        }
        let exchange = self.exchange.and_then(|e| e.validate(&format!("{key}.exchange"), p));
        if self.claims.keys().any(|k| k.is_empty()) {
            p.add(format!("{key}.claims"), "claim names must not be empty");
        }
        Route {
            host,
            path,
            methods,
            scopes: self.scopes,
            any_scopes: self.any_scopes,
            permissions: self.permissions,
            organizations: self.organizations,
            claims: self.claims.into_iter().collect(),
            actors: self.actors,
            issuers: self.issuers,
            exchange,
            dpop_required,
            public: self.public,
        }
    }
}

/// Headers a claim may never fill: tollgate's own, credentials, framing and hop-by-hop.
const RESERVED_HEADERS: &[&str] = &[
    "x-auth-subject",
    "x-auth-scheme",
    "x-auth-claims",
    "x-auth-actor",
    "x-auth-delegation-chain",
    "authorization",
    "dpop",
    "dpop-nonce",
    "www-authenticate",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-authenticate",
    "cookie",
    "set-cookie",
];

/// Exchanges need `[client]`, and their headers must not be claim headers too.
fn check_exchanges(routes: &[Route], headers: &[ClaimHeader], client: bool, p: &mut Problems) {
    for (n, route) in routes.iter().enumerate() {
        let Some(exchange) = &route.exchange else { continue };
        if !client {
            p.add(format!("routes[{n}].exchange"), "needs [client] (tollgate's own client at the issuer)");
        }
        if headers.iter().any(|h| h.name == exchange.header) {
            p.add(format!("routes[{n}].exchange.header"), format!("{} is also a [headers] entry", exchange.header));
        }
    }
}

fn claim_headers(table: BTreeMap<String, String>, p: &mut Problems) -> Vec<ClaimHeader> {
    table
        .into_iter()
        .filter_map(|(name, claim)| {
            let key = format!("headers.{name}");
            let Ok(header) = http::HeaderName::from_bytes(name.as_bytes()) else {
                p.add(key, "not a valid header name");
                return None;
            };
            if RESERVED_HEADERS.contains(&header.as_str()) {
                p.add(key, "reserved: tollgate sets it itself, or a claim must never fill it");
                return None;
            }
            // The shipped gateway configs strip every client-sent X-Auth-* header; a claim
            // header outside that namespace could arrive forged from the client.
            if !header.as_str().starts_with("x-auth-") {
                p.add(key, "claim headers must start with X-Auth- (gateways strip client-sent X-Auth-* headers)");
                return None;
            }
            if claim.is_empty() {
                p.add(key, "the claim name must not be empty");
                return None;
            }
            Some(ClaimHeader { name: header, claim })
        })
        .collect()
}

fn checked_path(path: String, key: &str, p: &mut Problems, make: fn(String) -> PathMatch) -> PathMatch {
    if !path.starts_with('/') {
        p.add(key, format!("must start with '/': {path:?}"));
    } else if crate::uri::normalize_path(&path).as_deref() != Ok(path.as_str()) {
        p.add(key, format!("must be a normalized path (no dot segments, '//' or escapes): {path:?}"));
    }
    make(path)
}
