//! Configuration: the TOML file plus `TOLLGATE_*` environment variables (environment wins),
//! parsed into typed values and validated before anything binds a socket.
//!
//! Loading takes its sources as arguments ([`Config::load`]), so tests never touch the
//! process environment. Every problem is collected and reported together, each naming its key.
//!
//! The file is read with the `toml` crate rather than a layered-config crate: claim names
//! such as `https://example.com/tier` contain dots, which such crates read as key paths.
//!
//! In order: `env` writes the environment into the file's table, `file` reads the table
//! into `Raw*` structs, `validate` turns those into the types below. `route` and
//! `exchange` hold the settings of routes and of downstream tokens; `describe` is what
//! `tollgate check` prints.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::refusal::{ChallengeSettings, DpopMode};

/// Access-token algorithms tollgate can verify. HMAC and `none` are absent on purpose:
/// a verifier that holds only public keys must never accept them (RFC 8725 §3.1).
pub const TOKEN_ALGORITHMS: &[&str] =
    &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// A DPoP proof algorithm tollgate implements (RFC 9449 §4.3 step 5: asymmetric only,
/// never `none` or an HMAC, §11.6). `dpop.algorithms` is read into these once, at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofAlgorithm {
    Es256,
    Es384,
    EdDsa,
    Rs256,
    Ps256,
}

impl ProofAlgorithm {
    /// Every one, in the order `tollgate check` lists them.
    pub const ALL: [ProofAlgorithm; 5] = [Self::Es256, Self::Es384, Self::EdDsa, Self::Rs256, Self::Ps256];

    /// The JOSE name (`alg`, RFC 7518 §3.1 and RFC 8037 §3.1); case-sensitive.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
        }
    }

    /// The names joined by `separator`; with a space, a challenge's `algs` (RFC 9449 §7.1).
    pub fn join(algorithms: &[ProofAlgorithm], separator: &str) -> String {
        algorithms.iter().map(|alg| alg.name()).collect::<Vec<_>>().join(separator)
    }
}

/// The gateway that calls tollgate; only its headers describe the original request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gateway {
    Nginx,
    IngressNginx,
    Traefik,
    Caddy,
    Envoy,
}

/// `[grpc]`: the Envoy ext_authz gRPC front door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcConfig {
    pub listen: SocketAddr,
}

/// What happens when no route matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    /// A valid token is enough.
    #[default]
    Authenticated,
    /// Refuse with 403.
    Deny,
}

impl DefaultAction {
    /// As written in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultAction::Authenticated => "authenticated",
            DefaultAction::Deny => "deny",
        }
    }
}

/// Which readings of a request's path the routes must hold for (`path_matching`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PathMatching {
    /// The path as sent, ASCII case folded, and without a format suffix on its last
    /// segment: the readings upstream routers make (Express, ASP.NET Core, Rails).
    #[default]
    Strict,
    /// The path as sent only, for upstreams known to route exactly.
    Exact,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// A second address serving only `/healthz`, `/readyz` and `/metrics` (which `listen`
    /// keeps serving too), for probes and scrapers that must not reach `/auth`.
    pub ops_listen: Option<SocketAddr>,
    /// `[grpc] listen`: Envoy's ext_authz gRPC `Check` and the gRPC health service.
    pub grpc: Option<GrpcConfig>,
    pub default: DefaultAction,
    pub path_matching: PathMatching,
    /// `[issuer]`, or every `[[issuers]]` entry: the token's `iss` picks one. Never empty,
    /// each identifier once.
    pub issuers: Vec<IssuerConfig>,
    pub dpop: DpopConfig,
    pub proxy: ProxyConfig,
    pub errors: ErrorsConfig,
    pub routes: Vec<Route>,
    /// `[headers]`: upstream headers filled from verified claims.
    pub headers: Vec<ClaimHeader>,
    pub log: LogConfig,
    pub cache: CacheConfig,
    /// `[shutdown]`: how SIGTERM drains (CONTRACT "Shutdown"); read at start only.
    pub shutdown: ShutdownConfig,
    /// `[client]`: tollgate's own client at the issuer, for routes with an `exchange`.
    pub client: Option<ClientConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// The exact issuer identifier; a token's `iss` must equal it.
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway: i64,
    pub required_claims: Vec<String>,
}

impl IssuerConfig {
    /// `{issuer}.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4).
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'))
    }
}

/// One `[headers]` entry: an upstream header and the claim it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeader {
    pub name: http::HeaderName,
    /// A claim name, or a dotted path when no claim has that exact name.
    pub claim: String,
}

#[derive(Debug, Clone)]
pub struct DpopConfig {
    pub mode: DpopMode,
    pub algorithms: Vec<ProofAlgorithm>,
    pub iat_leeway: i64,
    pub iat_offset: i64,
    /// `dpop.replay_store` with `dpop.replay_capacity`.
    pub replay: ReplayStoreSetting,
    /// With `dpop.nonce = true`: the `dpop.nonce_secret` nonces are minted under (32+
    /// characters, validated); `None` when nonces are off.
    pub nonce: Option<Secret>,
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub gateway: Gateway,
    pub trusted: Vec<IpNet>,
    pub forwarded_prefix: bool,
    /// Normalized (`scheme://host[:port]`, lower case, default port dropped).
    pub public_origins: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ErrorsConfig {
    pub invalid_request_status: http::StatusCode,
    pub realm: String,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Most verified tokens kept; 0 turns the cache off.
    pub max_tokens: usize,
}

/// `[shutdown]`: on SIGTERM `/readyz` answers 503 for `drain_delay` while checks go on,
/// then the listeners close and open connections get `drain_timeout` to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownConfig {
    pub drain_delay: std::time::Duration,
    pub drain_timeout: std::time::Duration,
}

impl Config {
    /// Loads from TOML text and an environment map; environment values win.
    pub fn load(toml_text: &str, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            toml_text.parse().map_err(|e: toml::de::Error| ConfigError::single("file", e.message().to_string()))?;
        apply_env(&mut table, env)?;
        let (raw, mut problems) = read_all(table);
        let validated = raw.map(RawConfig::validate);
        match validated {
            Some(Ok(config)) if problems.is_empty() => Ok(config),
            Some(Err(more)) => {
                // A value removed for its type falls back to its default, which validation
                // may then refuse: the key is already named, once is enough.
                let named = |key: &str| {
                    problems.iter().any(|p: &Problem| key == p.key || key.starts_with(&format!("{}.", p.key)))
                };
                let fresh: Vec<Problem> = more.problems.into_iter().filter(|p| !named(&p.key)).collect();
                problems.extend(fresh);
                Err(ConfigError { problems })
            }
            _ => Err(ConfigError { problems }),
        }
    }

    /// Loads from a file path and the process environment.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::single("file", format!("cannot read {}: {e}", path.display())))?;
        Config::load(&text, &std::env::vars().collect())
    }

    /// What challenges need to know about this deployment.
    pub fn challenge_settings(&self) -> ChallengeSettings {
        ChallengeSettings {
            realm: self.errors.realm.clone(),
            dpop: self.dpop.mode,
            dpop_algs: ProofAlgorithm::join(&self.dpop.algorithms, " "),
            invalid_request_status: self.errors.invalid_request_status,
        }
    }
}

/// Every problem found in a configuration, each naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn single(key: &str, message: String) -> Self {
        ConfigError { problems: vec![Problem { key: key.into(), message }] }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for p in &self.problems {
            writeln!(f, "  {}: {}", p.key, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Default `dpop.replay_capacity`: one million live proofs. A bucket of the in-memory
/// store is a 32-byte key, an 8-byte expiry and one control byte, 41 B; hashbrown keeps its
/// power-of-two bucket count between 7/16 and 7/8 full, so a live entry costs 47–94 B,
/// and a full store takes 2^21 buckets, about 86 MB.
pub const DEFAULT_REPLAY_CAPACITY: usize = 1_000_000;

/// `dpop.replay_store` and `dpop.replay_capacity`, read once: where replay keys live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayStoreSetting {
    /// In this process, holding at most `capacity` live proofs (then 503).
    Memory { capacity: usize },
    /// In Redis, shared by every replica.
    Redis(RedisUrl),
}

/// A `redis://` or `rediss://` URL this build can make a client from. Shown (`Display`,
/// `Debug`) with its password replaced by `REDACTED`.
#[derive(Clone)]
pub struct RedisUrl {
    url: String,
    client: redis::Client,
}

impl RedisUrl {
    /// The URL, or why this build cannot use it (not a `redis://` or `rediss://` URL,
    /// `rediss://` without TLS support, a database that is not a number). No I/O.
    pub fn parse(url: &str) -> Result<RedisUrl, String> {
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err("not a redis:// or rediss:// URL".into());
        }
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        Ok(RedisUrl { url: url.to_string(), client })
    }

    /// A client for the URL; it connects only when used.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }
}

impl PartialEq for RedisUrl {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
    }
}

impl Eq for RedisUrl {}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match url::Url::parse(&self.url) {
            Ok(mut parsed) if parsed.password().is_some() => {
                let _ = parsed.set_password(Some("REDACTED"));
                f.write_str(parsed.as_str())
            }
            Ok(_) => f.write_str(&self.url),
            Err(_) => f.write_str("(unparsable URL)"),
        }
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

/// Collects problems while validating.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem { key: key.into(), message: message.into() });
    }
}

mod describe;
mod env;
mod exchange;
mod file;
mod route;
mod validate;

use env::apply_env;
use file::{RawConfig, read_all};

pub use describe::{describe, warnings};
pub use exchange::{ClientAuth, ClientConfig, Exchange, Grant, Secret, signing_key as exchange_signing_key};
pub use route::{HostPattern, PathMatch, Route, describe as describe_route};

#[cfg(test)]
mod tests;
