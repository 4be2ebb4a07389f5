//! Configuration: the TOML file plus `TOLLGATE_*` environment variables (environment wins),
//! parsed into typed values and validated before anything binds a socket.
//!
//! Loading takes its sources as arguments ([`Config::load`]), so tests never touch the
//! process environment. Every problem is collected and reported together, each naming its key.
//!
//! The file is read with the `toml` crate rather than a layered-config crate: claim names
//! such as `https://example.com/tier` contain dots, which such crates read as key paths.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;

use ipnet::IpNet;
use serde::Deserialize;

use crate::refusal::{ChallengeSettings, DpopMode};

/// Access-token algorithms tollgate can verify. HMAC and `none` are absent on purpose:
/// a verifier that holds only public keys must never accept them (RFC 8725 §3.1).
pub const TOKEN_ALGORITHMS: &[&str] =
    &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// DPoP proof algorithms (RFC 9449 §4.3 step 5: asymmetric only).
pub const PROOF_ALGORITHMS: &[&str] = &["ES256", "ES384", "EdDSA", "RS256", "PS256"];

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
    pub algorithms: Vec<String>,
    pub iat_leeway: i64,
    pub iat_offset: i64,
    pub replay_store: String,
    /// Most live proofs the in-memory replay store holds before it answers 503.
    pub replay_capacity: usize,
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
            dpop_algs: self.dpop.algorithms.join(" "),
            invalid_request_status: self.errors.invalid_request_status,
        }
    }
}

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
            d.algorithms.join(" "),
            d.iat_leeway,
            d.iat_offset
        ),
    );
    line(
        "replay_store",
        format!("{} (at most {} proofs in memory)", without_password(&d.replay_store), d.replay_capacity),
    );
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

/// A Redis URL without its password, for printing.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("…"));
            parsed.to_string()
        }
        _ => url.to_string(),
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

/// Reads the table as a `RawConfig`, naming every unknown key, wrongly typed value and
/// missing section at once: each offending key is noted and taken out, a missing section
/// is put in empty (so validation names what it lacks), and the table is read again, a
/// bounded number of times.
fn read_all(mut table: toml::Table) -> (Option<RawConfig>, Vec<Problem>) {
    let mut problems: Vec<Problem> = Vec::new();
    let mut inserted: Vec<String> = Vec::new();
    for _ in 0..64 {
        let error = match serde_path_to_error::deserialize::<_, RawConfig>(toml::Value::Table(table.clone())) {
            Ok(raw) => return (Some(raw), problems),
            Err(error) => error,
        };
        let segments: Vec<String> = error.path().iter().map(|s| s.to_string()).collect();
        let key = path_name(error.path());
        // toml's messages add a line naming the table again: the key already says it.
        let message = error.inner().to_string().lines().next().unwrap_or_default().trim().to_string();
        let missing = message.strip_prefix("missing field `").and_then(|m| m.split('`').next());
        let repaired = match missing {
            // A missing section: put it in empty, once.
            Some(field) if !inserted.contains(&join_key(&key, field)) => {
                inserted.push(join_key(&key, field));
                insert_empty(&mut table, &segments, field)
            }
            Some(field) => {
                problems.push(Problem { key: join_key(&key, field), message: "required, and missing".into() });
                false
            }
            // An empty section put in where a value belongs: the value is what is missing.
            None if inserted.contains(&key) => {
                problems.push(Problem { key, message: "required, and missing".into() });
                false
            }
            None => {
                problems.push(Problem { key, message });
                remove_at(&mut table, &segments)
            }
        };
        if !repaired {
            break;
        }
    }
    (None, problems)
}

fn join_key(parent: &str, field: &str) -> String {
    if parent == "config" { field.to_string() } else { format!("{parent}.{field}") }
}

/// The table or array element at `path` (serde_path_to_error's segments: keys, and
/// `[n]` for array elements).
fn value_at<'a>(table: &'a mut toml::Table, path: &[String]) -> Option<&'a mut toml::Value> {
    let (first, rest) = path.split_first()?;
    let mut value = table.get_mut(first.as_str())?;
    for segment in rest {
        value = match segment.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(index) => value.as_array_mut()?.get_mut(index.parse::<usize>().ok()?)?,
            None => value.as_table_mut()?.get_mut(segment.as_str())?,
        };
    }
    Some(value)
}

/// Removes the key the last segment of `path` names; false when there is none.
fn remove_at(table: &mut toml::Table, path: &[String]) -> bool {
    let Some((last, parent)) = path.split_last() else { return false };
    let owner =
        if parent.is_empty() { Some(table) } else { value_at(table, parent).and_then(toml::Value::as_table_mut) };
    owner.is_some_and(|t| t.remove(last.as_str()).is_some())
}

/// Puts an empty table for a missing `field` under `path`, so its own keys get checked.
fn insert_empty(table: &mut toml::Table, path: &[String], field: &str) -> bool {
    let owner = if path.is_empty() { Some(table) } else { value_at(table, path).and_then(toml::Value::as_table_mut) };
    owner.is_some_and(|t| t.insert(field.to_string(), toml::Value::Table(toml::Table::new())).is_none())
}

fn path_name(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut name = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => name.push_str(&format!("[{index}]")),
            other => {
                if !name.is_empty() {
                    name.push('.');
                }
                // A key written as `""` is named so: an empty name would name nothing.
                match other {
                    Segment::Map { key } if key.is_empty() => name.push_str("\"\""),
                    other => name.push_str(&other.to_string()),
                }
            }
        }
    }
    if name.is_empty() { "config".into() } else { name }
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

/// Kinds of values that can come from the environment.
#[derive(Clone, Copy)]
enum EnvKind {
    Str,
    Bool,
    Int,
    List,
    /// A string, or a list when it contains commas.
    StrOrList,
}

/// Keys settable from the environment, as `TOLLGATE_A__B` for `a.b`.
const ENV_KEYS: &[(&str, EnvKind)] = &[
    ("listen", EnvKind::Str),
    ("ops_listen", EnvKind::Str),
    ("grpc.listen", EnvKind::Str),
    ("client.client_id", EnvKind::Str),
    ("client.client_secret", EnvKind::Str),
    ("client.client_secret_file", EnvKind::Str),
    ("client.auth", EnvKind::Str),
    ("client.private_key_file", EnvKind::Str),
    ("default", EnvKind::Str),
    ("path_matching", EnvKind::Str),
    ("issuer.domain", EnvKind::Str),
    ("issuer.url", EnvKind::Str),
    ("issuer.audience", EnvKind::StrOrList),
    ("issuer.algorithms", EnvKind::List),
    ("issuer.leeway", EnvKind::Int),
    ("issuer.required_claims", EnvKind::List),
    ("dpop.enabled", EnvKind::Bool),
    ("dpop.required", EnvKind::Bool),
    ("dpop.algorithms", EnvKind::List),
    ("dpop.iat_leeway", EnvKind::Int),
    ("dpop.iat_offset", EnvKind::Int),
    ("dpop.replay_store", EnvKind::Str),
    ("dpop.replay_capacity", EnvKind::Int),
    ("dpop.nonce", EnvKind::Bool),
    ("dpop.nonce_secret", EnvKind::Str),
    ("proxy.gateway", EnvKind::Str),
    ("proxy.trusted", EnvKind::List),
    ("proxy.forwarded_prefix", EnvKind::Bool),
    ("proxy.public_origins", EnvKind::List),
    ("errors.invalid_request_status", EnvKind::Int),
    ("errors.realm", EnvKind::Str),
    ("log.format", EnvKind::Str),
    ("log.level", EnvKind::Str),
    ("cache.max_tokens", EnvKind::Int),
    ("shutdown.drain_delay", EnvKind::Int),
    ("shutdown.drain_timeout", EnvKind::Int),
];

/// Overlays `TOLLGATE_*`, `AUTH0_DOMAIN` and `AUTH0_AUDIENCE` onto the file's table.
fn apply_env(table: &mut toml::Table, env: &HashMap<String, String>) -> Result<(), ConfigError> {
    let mut problems = Vec::new();
    let mut vars: Vec<(&String, &String)> = env.iter().collect();
    vars.sort();
    for (name, value) in vars {
        let key = match name.as_str() {
            "AUTH0_DOMAIN" => "issuer.domain".to_string(),
            "AUTH0_AUDIENCE" => "issuer.audience".to_string(),
            _ => match name.strip_prefix("TOLLGATE_") {
                Some(rest) => rest.to_ascii_lowercase().replace("__", "."),
                None => continue,
            },
        };
        let Some((_, kind)) = ENV_KEYS.iter().find(|(k, _)| *k == key) else {
            problems.push(Problem { key: name.clone(), message: "unknown setting".into() });
            continue;
        };
        match env_value(value, *kind) {
            Ok(v) => set_path(table, &key, v),
            Err(message) => problems.push(Problem { key: name.clone(), message }),
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(ConfigError { problems }) }
}

fn env_value(value: &str, kind: EnvKind) -> Result<toml::Value, String> {
    let list = |v: &str| {
        toml::Value::Array(
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| toml::Value::String(s.into())).collect(),
        )
    };
    match kind {
        EnvKind::Str => Ok(toml::Value::String(value.into())),
        EnvKind::Bool => match value {
            "true" => Ok(toml::Value::Boolean(true)),
            "false" => Ok(toml::Value::Boolean(false)),
            _ => Err("expected true or false".into()),
        },
        EnvKind::Int => value.parse::<i64>().map(toml::Value::Integer).map_err(|_| "expected an integer".into()),
        EnvKind::List => Ok(list(value)),
        EnvKind::StrOrList if value.contains(',') => Ok(list(value)),
        EnvKind::StrOrList => Ok(toml::Value::String(value.into())),
    }
}

fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut current = table;
    for part in parts {
        let entry = current.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        let toml::Value::Table(next) = entry else { return };
        current = next;
    }
    current.insert(last.to_string(), value);
}

// ---------------------------------------------------------------------------------------
// The file as written; `validate` turns it into `Config`.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_listen")]
    listen: String,
    ops_listen: Option<String>,
    grpc: Option<RawGrpc>,
    #[serde(default)]
    default: DefaultAction,
    #[serde(default)]
    path_matching: PathMatching,
    issuer: Option<RawIssuer>,
    #[serde(default)]
    issuers: Vec<RawIssuer>,
    #[serde(default)]
    dpop: RawDpop,
    proxy: RawProxy,
    #[serde(default)]
    errors: RawErrors,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    shutdown: RawShutdown,
    client: Option<exchange::RawClient>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    domain: Option<String>,
    url: Option<String>,
    audience: Option<OneOrMany>,
    #[serde(default = "default_token_algorithms")]
    algorithms: Vec<String>,
    #[serde(default)]
    leeway: i64,
    #[serde(default)]
    required_claims: Vec<String>,
}

fn default_token_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDpop {
    enabled: bool,
    required: bool,
    algorithms: Vec<String>,
    iat_leeway: i64,
    iat_offset: i64,
    replay_store: String,
    replay_capacity: usize,
    nonce: bool,
    nonce_secret: Option<String>,
}

impl Default for RawDpop {
    fn default() -> Self {
        RawDpop {
            enabled: true,
            required: false,
            algorithms: vec!["ES256".into()],
            iat_leeway: 30,
            iat_offset: 300,
            replay_store: "memory".into(),
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
            nonce: false,
            nonce_secret: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrpc {
    listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProxy {
    gateway: Option<String>,
    #[serde(default = "default_trusted")]
    trusted: Vec<String>,
    #[serde(default)]
    forwarded_prefix: bool,
    #[serde(default)]
    public_origins: Vec<String>,
}

fn default_trusted() -> Vec<String> {
    vec!["127.0.0.1/32".into(), "::1/128".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawErrors {
    invalid_request_status: u16,
    realm: String,
}

impl Default for RawErrors {
    fn default() -> Self {
        RawErrors { invalid_request_status: 400, realm: "api".into() }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    host: Option<String>,
    path_prefix: Option<String>,
    path: Option<String>,
    methods: Option<Vec<String>>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    any_scopes: Vec<String>,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    organizations: Vec<String>,
    #[serde(default)]
    claims: BTreeMap<String, String>,
    #[serde(default)]
    actors: Vec<String>,
    #[serde(default)]
    issuers: Vec<String>,
    exchange: Option<exchange::RawExchange>,
    dpop: Option<String>,
    #[serde(default)]
    public: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    format: LogFormat,
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog { format: LogFormat::Text, level: "info".into() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCache {
    max_tokens: usize,
}

impl Default for RawCache {
    fn default() -> Self {
        RawCache { max_tokens: 100_000 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawShutdown {
    drain_delay: i64,
    drain_timeout: i64,
}

impl Default for RawShutdown {
    fn default() -> Self {
        // 5 s: about what a Kubernetes endpoint removal takes to reach kube-proxy and
        // ingress controllers, so no new request is sent to a closed listener.
        RawShutdown { drain_delay: 5, drain_timeout: 10 }
    }
}

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

/// Default `dpop.replay_capacity`: one million live proofs. A bucket of the in-memory
/// store is a 32-byte key, an 8-byte expiry and one control byte, 41 B; hashbrown keeps its
/// power-of-two bucket count between 7/16 and 7/8 full, so a live entry costs 47–94 B,
/// and a full store takes 2^21 buckets, about 86 MB.
pub const DEFAULT_REPLAY_CAPACITY: usize = 1_000_000;

/// `dpop.replay_store` as a Redis client, or why this build cannot use it (not a
/// `redis://` or `rediss://` URL, `rediss://` without TLS support, a database that is not
/// a number). Validation and the replay store read it the same way.
pub fn redis_client(url: &str) -> Result<redis::Client, String> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err("not a redis:// or rediss:// URL".into());
    }
    redis::Client::open(url).map_err(|e| e.to_string())
}

/// Collects problems while validating.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem { key: key.into(), message: message.into() });
    }
}

impl RawConfig {
    fn validate(self) -> Result<Config, ConfigError> {
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
        for alg in &self.algorithms {
            if !PROOF_ALGORITHMS.contains(&alg.as_str()) {
                p.add(
                    "dpop.algorithms",
                    format!("{alg:?} is not allowed; choose from {}", PROOF_ALGORITHMS.join(", ")),
                );
            }
        }
        if self.algorithms.is_empty() {
            p.add("dpop.algorithms", "must list at least one algorithm");
        }
        if !(0..=300).contains(&self.iat_leeway) {
            p.add("dpop.iat_leeway", "must be between 0 and 300 seconds");
        }
        if !(1..=3600).contains(&self.iat_offset) {
            p.add("dpop.iat_offset", "must be between 1 and 3600 seconds");
        }
        if self.replay_store != "memory"
            && let Err(why) = redis_client(&self.replay_store)
        {
            p.add("dpop.replay_store", format!("must be \"memory\" or a redis://HOST:PORT/DB URL ({why})"));
        }
        if !(1_000..=100_000_000).contains(&self.replay_capacity) {
            p.add("dpop.replay_capacity", "must be between 1000 and 100000000 live proofs");
        }
        if self.nonce && self.nonce_secret.as_deref().is_none_or(|s| s.len() < 32) {
            p.add("dpop.nonce_secret", "required with dpop.nonce: at least 32 characters, the same on every replica");
        }
        DpopConfig {
            mode,
            algorithms: self.algorithms,
            iat_leeway: self.iat_leeway,
            iat_offset: self.iat_offset,
            replay_store: self.replay_store,
            replay_capacity: self.replay_capacity,
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

mod exchange;
mod route;

pub use exchange::{ClientAuth, ClientConfig, Exchange, Grant, Secret, signing_key as exchange_signing_key};
pub use route::{HostPattern, PathMatch, Route, describe as describe_route};

#[cfg(test)]
mod tests;
