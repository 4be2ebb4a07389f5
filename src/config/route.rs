//! The `[[routes]]` settings, parsed into the types [`crate::policy`] matches requests
//! with, and described in words for `tollgate check`.

use super::{Exchange, Grant};

/// A host to match: exact, or any subdomain of a suffix (`*.example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// Stored with its leading dot: `.example.com`.
    Subdomains(String),
}

impl HostPattern {
    /// A route's `host`: a name, an IPv4 or `[IPv6]` address, or `*.domain`; lower-cased,
    /// one trailing dot removed. No port: routes match the host the gateway routed on,
    /// which never has one.
    pub fn parse(pattern: &str) -> Result<HostPattern, &'static str> {
        let lower = pattern.to_ascii_lowercase();
        let (wildcard, host) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let bracketed = host.starts_with('[');
        if (bracketed && !host.ends_with(']')) || (!bracketed && host.contains(':')) {
            return Err("a route's host has no port (routes match the host the gateway routed on)");
        }
        let host = crate::uri::routed_host(host).ok_or("not a host name, IP address or *.domain pattern")?;
        Ok(if wildcard { HostPattern::Subdomains(format!(".{host}")) } else { HostPattern::Exact(host.to_string()) })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Any,
    /// Whole-segment prefix.
    Prefix(String),
    Exact(String),
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub host: Option<HostPattern>,
    pub path: PathMatch,
    /// Methods this route covers; all when `None`.
    pub methods: Option<Vec<String>>,
    /// Every one of these must be in the token's `scope`.
    pub scopes: Vec<String>,
    /// At least one of these must be in the token's `scope`.
    pub any_scopes: Vec<String>,
    /// Every one of these must be in the `permissions` array claim (Auth0 RBAC).
    pub permissions: Vec<String>,
    /// When not empty, the `org_id` claim must be one of these (Auth0 Organizations).
    pub organizations: Vec<String>,
    /// Each claim must equal the string, or be an array holding it.
    pub claims: Vec<(String, String)>,
    /// When not empty, the current actor (outermost `act.sub`) must be one of these.
    pub actors: Vec<String>,
    /// When not empty, the token's issuer must be one of these.
    pub issuers: Vec<String>,
    /// A downstream token to obtain for the upstream once the request is allowed.
    pub exchange: Option<Exchange>,
    /// DPoP required on this route even where it is only allowed globally.
    pub dpop_required: bool,
    /// No token needed.
    pub public: bool,
}

/// One line saying what a route matches and requires.
pub fn describe(route: &Route) -> String {
    let host = match &route.host {
        None => "any host".to_string(),
        Some(HostPattern::Exact(h)) => h.clone(),
        Some(HostPattern::Subdomains(s)) => format!("*{s}"),
    };
    let path = match &route.path {
        PathMatch::Any => "any path".to_string(),
        PathMatch::Prefix(p) => format!("{p}/**"),
        PathMatch::Exact(p) => p.clone(),
    };
    let methods = route.methods.as_ref().map_or("any method".to_string(), |m| m.join(","));
    let needs = if route.public {
        "public".to_string()
    } else {
        let mut needs = vec!["a valid token".to_string()];
        if !route.scopes.is_empty() {
            needs.push(format!("scopes {}", route.scopes.join(" ")));
        }
        if !route.any_scopes.is_empty() {
            needs.push(format!("one of {}", route.any_scopes.join(" ")));
        }
        if !route.permissions.is_empty() {
            needs.push(format!("permissions {}", route.permissions.join(" ")));
        }
        if !route.organizations.is_empty() {
            needs.push(format!("org_id one of {}", route.organizations.join(" ")));
        }
        for (name, value) in &route.claims {
            needs.push(format!("claim {name} = {value}"));
        }
        if !route.actors.is_empty() {
            needs.push(format!("actor one of {}", route.actors.join(" ")));
        }
        if !route.issuers.is_empty() {
            needs.push(format!("issuer one of {}", route.issuers.join(" ")));
        }
        if route.dpop_required {
            needs.push("DPoP".to_string());
        }
        if let Some(exchange) = &route.exchange {
            needs.push(describe_exchange(exchange));
        }
        needs.join(", ")
    };
    format!("{methods} {host} {path} -> {needs}")
}

/// What a route's exchange obtains, and where it puts it (never a secret: none is here).
fn describe_exchange(exchange: &Exchange) -> String {
    let what = match &exchange.grant {
        Grant::OnBehalfOf { audience, scope } => {
            format!(
                "on-behalf-of token for {audience}{}",
                scope.as_ref().map(|s| format!(" ({s})")).unwrap_or_default()
            )
        }
        Grant::Profile { subject_token_type, audience, .. } => format!(
            "a token from exchange profile {subject_token_type}{}",
            audience.as_ref().map(|a| format!(" for {a}")).unwrap_or_default()
        ),
        Grant::Connection { connection } => format!("the token-vault token of connection {connection}"),
    };
    format!("then exchanged for {what} in {}", exchange.header)
}
