//! The file as written: the `Raw*` structs serde reads the TOML table into, with their
//! defaults, and [`read_all`], which reads the table naming every offending key at once.
//! `validate` turns a `RawConfig` into [`super::Config`].

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{DEFAULT_REPLAY_CAPACITY, DefaultAction, LogFormat, PathMatching, Problem, exchange};

/// Reads the table as a `RawConfig`, naming every unknown key, wrongly typed value and
/// missing section at once: each offending key is noted and taken out, a missing section
/// is put in empty (so validation names what it lacks), and the table is read again, a
/// bounded number of times.
pub(super) fn read_all(mut table: toml::Table) -> (Option<RawConfig>, Vec<Problem>) {
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default = "default_listen")]
    pub(super) listen: String,
    pub(super) ops_listen: Option<String>,
    pub(super) grpc: Option<RawGrpc>,
    #[serde(default)]
    pub(super) default: DefaultAction,
    #[serde(default)]
    pub(super) path_matching: PathMatching,
    pub(super) issuer: Option<RawIssuer>,
    #[serde(default)]
    pub(super) issuers: Vec<RawIssuer>,
    #[serde(default)]
    pub(super) dpop: RawDpop,
    pub(super) proxy: RawProxy,
    #[serde(default)]
    pub(super) errors: RawErrors,
    #[serde(default)]
    pub(super) routes: Vec<RawRoute>,
    #[serde(default)]
    pub(super) headers: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) log: RawLog,
    #[serde(default)]
    pub(super) cache: RawCache,
    #[serde(default)]
    pub(super) shutdown: RawShutdown,
    pub(super) client: Option<exchange::RawClient>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIssuer {
    pub(super) domain: Option<String>,
    pub(super) url: Option<String>,
    pub(super) audience: Option<OneOrMany>,
    #[serde(default = "default_token_algorithms")]
    pub(super) algorithms: Vec<String>,
    #[serde(default)]
    pub(super) leeway: i64,
    #[serde(default)]
    pub(super) required_claims: Vec<String>,
}

fn default_token_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDpop {
    pub(super) enabled: bool,
    pub(super) required: bool,
    pub(super) algorithms: Vec<String>,
    pub(super) iat_leeway: i64,
    pub(super) iat_offset: i64,
    pub(super) replay_store: String,
    pub(super) replay_capacity: usize,
    pub(super) nonce: bool,
    pub(super) nonce_secret: Option<String>,
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
pub(super) struct RawGrpc {
    pub(super) listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxy {
    pub(super) gateway: Option<String>,
    #[serde(default = "default_trusted")]
    pub(super) trusted: Vec<String>,
    #[serde(default)]
    pub(super) forwarded_prefix: bool,
    #[serde(default)]
    pub(super) public_origins: Vec<String>,
}

fn default_trusted() -> Vec<String> {
    vec!["127.0.0.1/32".into(), "::1/128".into()]
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawErrors {
    pub(super) invalid_request_status: u16,
    pub(super) realm: String,
}

impl Default for RawErrors {
    fn default() -> Self {
        RawErrors { invalid_request_status: 400, realm: "api".into() }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    pub(super) host: Option<String>,
    pub(super) path_prefix: Option<String>,
    pub(super) path: Option<String>,
    pub(super) methods: Option<Vec<String>>,
    #[serde(default)]
    pub(super) scopes: Vec<String>,
    #[serde(default)]
    pub(super) any_scopes: Vec<String>,
    #[serde(default)]
    pub(super) permissions: Vec<String>,
    #[serde(default)]
    pub(super) organizations: Vec<String>,
    #[serde(default)]
    pub(super) claims: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) actors: Vec<String>,
    #[serde(default)]
    pub(super) issuers: Vec<String>,
    pub(super) exchange: Option<exchange::RawExchange>,
    pub(super) dpop: Option<String>,
    #[serde(default)]
    pub(super) public: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawLog {
    pub(super) format: LogFormat,
    pub(super) level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog { format: LogFormat::Text, level: "info".into() }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawCache {
    pub(super) max_tokens: usize,
}

impl Default for RawCache {
    fn default() -> Self {
        RawCache { max_tokens: 100_000 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawShutdown {
    pub(super) drain_delay: i64,
    pub(super) drain_timeout: i64,
}

impl Default for RawShutdown {
    fn default() -> Self {
        // 5 s: about what a Kubernetes endpoint removal takes to reach kube-proxy and
        // ingress controllers, so no new request is sent to a closed listener.
        RawShutdown { drain_delay: 5, drain_timeout: 10 }
    }
}
