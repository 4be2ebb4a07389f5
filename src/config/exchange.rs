//! `[client]` and a route's `exchange`: the settings for downstream tokens, read and
//! validated at load (the seeds' `get_token_by_exchange_profile` checks of
//! `subject_token_type` and `extra` run here, naming the key), as plain data that
//! [`crate::exchange`] turns into calls to the token endpoint.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use http::HeaderName;
use serde::Deserialize;

use super::Problems;

/// A secret that never prints: `Debug` and `Display` show `"…"`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: String) -> Self {
        Secret(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// How tollgate authenticates itself at the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    SecretPost(Secret),
    /// HTTP Basic with the form-urlencoded `client_id` and `client_secret`.
    SecretBasic(Secret),
    /// A JWT client assertion (RFC 7523) signed with this PKCS#8 PEM private key with
    /// `algorithm` (RS256, PS256 or ES256): no shared secret at rest.
    PrivateKeyJwt { pem: Secret, algorithm: &'static str },
}

/// `[client]`: tollgate's own client at the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    pub client_id: String,
    pub auth: ClientAuth,
    /// The whole token-endpoint call, connecting included.
    pub timeout: Duration,
    /// Exchanged tokens kept in memory, at most.
    pub cache_max: usize,
}

/// What a route exchanges the incoming token for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// RFC 8693 access token for another audience, the same user (`get_token_on_behalf_of`).
    OnBehalfOf { audience: String, scope: Option<String> },
    /// A custom token exchange profile, chosen by `subject_token_type`
    /// (`get_token_by_exchange_profile`).
    Profile {
        subject_token_type: String,
        audience: Option<String>,
        scope: Option<String>,
        requested_token_type: Option<String>,
        /// Extra form fields, each with one or more values, in key order.
        extra: Vec<(String, Vec<String>)>,
    },
    /// The token vault: the upstream identity provider's access token for a connection
    /// (`get_access_token_for_connection`).
    Connection { connection: String },
}

/// A route's `exchange`: the grant, and the header that carries the result upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub grant: Grant,
    pub header: HeaderName,
}

/// OAuth parameters an `extra` key may not set (compared case-insensitively): the seed's
/// denylist.
pub const RESERVED_PARAMS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "subject_token",
    "subject_token_type",
    "requested_token_type",
    "actor_token",
    "actor_token_type",
    "subject_issuer",
    "audience",
    "aud",
    "resource",
    "resources",
    "resource_indicator",
    "scope",
    "connection",
    "login_hint",
    "organization",
    "assertion",
];

/// At most this many values per `extra` key (the seed's bound).
pub const MAX_EXTRA_VALUES: usize = 20;

/// `subject_token_type` namespaces a custom profile may not use: the IETF's and those of
/// identity vendors (Auth0 refuses them for Custom Token Exchange profiles).
const RESERVED_TOKEN_TYPE_PREFIXES: &[&str] = &[
    "urn:ietf:",
    "urn:auth0:",
    "urn:okta:",
    "http://auth0.com",
    "https://auth0.com",
    "http://okta.com",
    "https://okta.com",
];

/// The header an exchange fills when the route names none.
pub const DEFAULT_HEADER: &str = "X-Auth-Downstream-Token";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    client_id: String,
    client_secret: Option<String>,
    client_secret_file: Option<PathBuf>,
    #[serde(default = "default_auth")]
    auth: String,
    private_key_file: Option<PathBuf>,
    #[serde(default = "default_algorithm")]
    algorithm: String,
    #[serde(default = "default_timeout")]
    timeout: f64,
    #[serde(default = "default_cache_max")]
    cache_max: usize,
}

fn default_auth() -> String {
    "client_secret_post".into()
}

fn default_algorithm() -> String {
    "RS256".into()
}

fn default_timeout() -> f64 {
    5.0
}

fn default_cache_max() -> usize {
    10_000
}

impl RawClient {
    pub(super) fn validate(self, p: &mut Problems) -> Option<ClientConfig> {
        if self.client_id.is_empty() {
            p.add("client.client_id", "must not be empty");
        }
        let timeout = (self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 60.0)
            .then(|| Duration::from_secs_f64(self.timeout));
        if timeout.is_none() {
            p.add("client.timeout", "seconds, more than 0 and at most 60");
        }
        let auth = match self.auth.as_str() {
            "client_secret_post" => self.secret(p).map(ClientAuth::SecretPost),
            "client_secret_basic" => self.secret(p).map(ClientAuth::SecretBasic),
            "private_key_jwt" => self.private_key(p),
            other => {
                p.add(
                    "client.auth",
                    format!("one of client_secret_post, client_secret_basic, private_key_jwt, not {other:?}"),
                );
                None
            }
        };
        Some(ClientConfig { client_id: self.client_id, auth: auth?, timeout: timeout?, cache_max: self.cache_max })
    }

    /// The secret from `client_secret` (or its environment variable) or `client_secret_file`.
    fn secret(&self, p: &mut Problems) -> Option<Secret> {
        match (&self.client_secret, &self.client_secret_file) {
            (Some(_), Some(_)) => p.add("client", "set client_secret or client_secret_file, not both"),
            (Some(secret), None) if !secret.is_empty() => return Some(Secret(secret.clone())),
            (Some(_), None) => p.add("client.client_secret", "must not be empty"),
            (None, Some(path)) => match std::fs::read_to_string(path) {
                // A mounted Kubernetes secret ends with a newline more often than not.
                Ok(text) if !text.trim_end_matches(['\r', '\n']).is_empty() => {
                    return Some(Secret(text.trim_end_matches(['\r', '\n']).to_string()));
                }
                Ok(_) => p.add("client.client_secret_file", format!("{} is empty", path.display())),
                Err(e) => p.add("client.client_secret_file", format!("cannot read {}: {e}", path.display())),
            },
            (None, None) => p.add(
                "client",
                format!(
                    "auth = {:?} needs client_secret, client_secret_file or TOLLGATE_CLIENT__CLIENT_SECRET",
                    self.auth
                ),
            ),
        }
        None
    }

    /// The PEM key of `private_key_jwt`, checked to load as a signing key of `algorithm`.
    fn private_key(&self, p: &mut Problems) -> Option<ClientAuth> {
        if self.client_secret.is_some() || self.client_secret_file.is_some() {
            p.add("client", "private_key_jwt uses private_key_file, not a client secret");
        }
        let algorithm = match self.algorithm.as_str() {
            "RS256" => "RS256",
            "PS256" => "PS256",
            "ES256" => "ES256",
            other => {
                p.add("client.algorithm", format!("one of RS256, PS256, ES256, not {other:?}"));
                return None;
            }
        };
        let Some(path) = &self.private_key_file else {
            p.add("client.private_key_file", "private_key_jwt needs a PEM private key file");
            return None;
        };
        let pem = match std::fs::read_to_string(path) {
            Ok(pem) => pem,
            Err(e) => {
                p.add("client.private_key_file", format!("cannot read {}: {e}", path.display()));
                return None;
            }
        };
        if let Err(e) = signing_key(&pem, algorithm) {
            p.add("client.private_key_file", format!("{}: {e}", path.display()));
            return None;
        }
        Some(ClientAuth::PrivateKeyJwt { pem: Secret(pem), algorithm })
    }
}

/// The key of a `private_key_jwt` client: RSA for RS256 and PS256, P-256 for ES256.
pub fn signing_key(pem: &str, algorithm: &str) -> Result<crate::signing::SigningKey, crate::signing::SignError> {
    if algorithm == "ES256" {
        crate::signing::SigningKey::p256_from_pem("client", pem)
    } else {
        crate::signing::SigningKey::rsa_from_pem("client", pem)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExchange {
    audience: Option<String>,
    scope: Option<String>,
    subject_token_type: Option<String>,
    requested_token_type: Option<String>,
    #[serde(default)]
    extra: BTreeMap<String, toml::Value>,
    connection: Option<String>,
    header: Option<String>,
}

impl RawExchange {
    pub(super) fn validate(self, key: &str, p: &mut Problems) -> Option<Exchange> {
        let header = exchange_header(self.header.as_deref().unwrap_or(DEFAULT_HEADER), key, p);
        let grant = match (&self.connection, &self.subject_token_type) {
            (Some(_), Some(_)) => {
                p.add(key, "set connection (token vault) or subject_token_type (a profile), not both");
                None
            }
            (Some(connection), None) => self.connection_grant(connection, key, p),
            (None, Some(token_type)) => self.profile_grant(token_type, key, p),
            (None, None) => self.on_behalf_of(key, p),
        };
        Some(Exchange { grant: grant?, header: header? })
    }

    fn on_behalf_of(&self, key: &str, p: &mut Problems) -> Option<Grant> {
        if self.requested_token_type.is_some() || !self.extra.is_empty() {
            p.add(key, "requested_token_type and extra belong to a profile exchange (with subject_token_type)");
        }
        let Some(audience) = self.audience.clone().filter(|a| !a.is_empty()) else {
            p.add(format!("{key}.audience"), "an on-behalf-of exchange needs the downstream API's audience");
            return None;
        };
        Some(Grant::OnBehalfOf { audience, scope: self.scope.clone() })
    }

    fn profile_grant(&self, token_type: &str, key: &str, p: &mut Problems) -> Option<Grant> {
        let lower = token_type.to_ascii_lowercase();
        if token_type.trim().is_empty() || token_type.chars().any(char::is_whitespace) {
            p.add(format!("{key}.subject_token_type"), "must be a URI without spaces");
        } else if let Some(prefix) = RESERVED_TOKEN_TYPE_PREFIXES.iter().find(|r| lower.starts_with(*r)) {
            p.add(
                format!("{key}.subject_token_type"),
                format!("{token_type:?} is in a reserved namespace ({prefix}); use your own, e.g. urn:acme:…"),
            );
        }
        let extra = extra_fields(&self.extra, key, p);
        Some(Grant::Profile {
            subject_token_type: token_type.to_string(),
            audience: self.audience.clone(),
            scope: self.scope.clone(),
            requested_token_type: self.requested_token_type.clone(),
            extra,
        })
    }

    fn connection_grant(&self, connection: &str, key: &str, p: &mut Problems) -> Option<Grant> {
        if self.audience.is_some() || self.scope.is_some() || !self.extra.is_empty() {
            p.add(key, "a connection (token vault) exchange takes no audience, scope or extra");
        }
        if connection.is_empty() {
            p.add(format!("{key}.connection"), "must name the connection, e.g. google-oauth2");
            return None;
        }
        Some(Grant::Connection { connection: connection.to_string() })
    }
}

/// `extra`: no reserved OAuth parameter, scalars only, at most [`MAX_EXTRA_VALUES`] each.
fn extra_fields(extra: &BTreeMap<String, toml::Value>, key: &str, p: &mut Problems) -> Vec<(String, Vec<String>)> {
    let mut fields = Vec::new();
    for (name, value) in extra {
        let at = format!("{key}.extra.{name}");
        if RESERVED_PARAMS.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            p.add(at.clone(), "is a reserved OAuth parameter and cannot be set through extra");
        }
        let values: Vec<&toml::Value> = match value {
            toml::Value::Array(values) => values.iter().collect(),
            one => vec![one],
        };
        if values.len() > MAX_EXTRA_VALUES {
            p.add(at.clone(), format!("has {} values; at most {MAX_EXTRA_VALUES}", values.len()));
        }
        let text: Option<Vec<String>> = values.iter().map(|v| scalar(v)).collect();
        match text {
            Some(text) => fields.push((name.clone(), text)),
            None => p.add(at, "values are strings, numbers or booleans (or an array of them)"),
        }
    }
    fields
}

fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(x) => Some(x.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The header that carries the downstream token: `X-Auth-*` (gateways strip the client's),
/// and none of tollgate's own.
fn exchange_header(name: &str, key: &str, p: &mut Problems) -> Option<HeaderName> {
    let lower = name.to_ascii_lowercase();
    let own = ["x-auth-subject", "x-auth-scheme", "x-auth-claims", "x-auth-actor", "x-auth-delegation-chain"];
    let problem = if !lower.starts_with("x-auth-") || lower.len() == "x-auth-".len() {
        Some("must be an X-Auth-* header (gateways strip the client's own)")
    } else if own.contains(&lower.as_str()) {
        Some("is one of tollgate's own headers")
    } else {
        None
    };
    if let Some(problem) = problem {
        p.add(format!("{key}.header"), format!("{name:?} {problem}"));
        return None;
    }
    HeaderName::from_bytes(lower.as_bytes())
        .map_err(|_| p.add(format!("{key}.header"), format!("{name:?} is not a header name")))
        .ok()
}
