//! The environment overlay: `TOLLGATE_A__B` sets `a.b`, and `AUTH0_DOMAIN` and
//! `AUTH0_AUDIENCE` (the names the seeds' SDK reads) set the issuer. Values are written
//! into the file's TOML table before it is read, so both sources are validated alike.

use std::collections::HashMap;

use super::{ConfigError, Problem};

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
pub(super) fn apply_env(table: &mut toml::Table, env: &HashMap<String, String>) -> Result<(), ConfigError> {
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
