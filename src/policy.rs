//! Route rules: which `[[routes]]` entry applies to the original request, and whether a
//! verified token meets its requirements.
//!
//! Routes are tried in order and the first match wins. Hosts are matched on the host the
//! gateway routed on ([`OriginalRequest::host`]: no port, no trailing dot, lower case), so
//! `Host: admin.example.com:8000` or `admin.example.com.` meets the `admin.example.com`
//! route that nginx, Traefik and Envoy would route it to. Paths are matched after
//! [`crate::gateway::normalize_path`], on whole segments: `/admin` covers `/admin`,
//! `/admin/users` and `/admin;v=1`, never `/administrator`. Methods are compared exactly
//! (RFC 9110 §9.1: method names are case-sensitive). Scopes are space-delimited and
//! case-sensitive (RFC 6749 §3.3); a missing one answers 403 `insufficient_scope`
//! (RFC 6750 §3.1).

use serde_json::Value;

use crate::config::DefaultAction;
use crate::gateway::{self, OriginalRequest};
use crate::refusal::Reason;
use crate::token::VerifiedToken;

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
        let host = gateway::routed_host(host).ok_or("not a host name, IP address or *.domain pattern")?;
        Ok(if wildcard { HostPattern::Subdomains(format!(".{host}")) } else { HostPattern::Exact(host.to_string()) })
    }

    /// Whether `host` (as [`OriginalRequest::host`] gives it: lower-cased, no port, no
    /// trailing dot) is this one or, for `*.domain`, a subdomain of it.
    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Any,
    /// Whole-segment prefix.
    Prefix(String),
    Exact(String),
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Any => true,
            PathMatch::Exact(p) => path == p,
            PathMatch::Prefix(prefix) => match path.strip_prefix(prefix.as_str()) {
                None => false,
                Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', ';']),
            },
        }
    }
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
    /// DPoP required on this route even where it is only allowed globally.
    pub dpop_required: bool,
    /// No token needed.
    pub public: bool,
}

impl Route {
    fn matches(&self, request: &OriginalRequest) -> bool {
        self.host.as_ref().is_none_or(|h| request.host().is_some_and(|host| h.matches(host)))
            && self.path.matches(request.path())
            && self.methods.as_ref().is_none_or(|m| m.iter().any(|m| m == request.method()))
    }
}

/// What the policy asks of a request, decided before any token is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement<'a> {
    /// A public route: let it through without credentials.
    Public,
    /// A valid token, plus whatever this route requires (none when no route matched).
    Token(Option<&'a Route>),
    /// No route matched and the default is to deny.
    Deny,
}

/// The ordered routes and the default for requests no route matches.
#[derive(Debug, Clone)]
pub struct Policy {
    routes: Vec<Route>,
    default: DefaultAction,
}

impl Policy {
    pub fn new(routes: Vec<Route>, default: DefaultAction) -> Self {
        Policy { routes, default }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Which route `request` matches and what it must bring, in words (`tollgate check --explain`).
    pub fn explain(&self, request: &OriginalRequest) -> String {
        let url =
            format!("{} {}://{}{}", request.method(), request.scheme(), request.host().unwrap_or(""), request.path());
        match self.routes.iter().position(|r| r.matches(request)) {
            Some(n) => format!("{url}\n  matches route {n}: {}", describe(&self.routes[n])),
            None => match self.default {
                DefaultAction::Deny => format!("{url}\n  matches no route: denied (default = \"deny\")"),
                DefaultAction::Authenticated => {
                    format!("{url}\n  matches no route: a valid token is enough (default = \"authenticated\")")
                }
            },
        }
    }

    /// The first route that matches, turned into what the request must bring.
    pub fn route(&self, request: &OriginalRequest) -> Requirement<'_> {
        match self.routes.iter().find(|r| r.matches(request)) {
            Some(route) if route.public => Requirement::Public,
            Some(route) => Requirement::Token(Some(route)),
            None if self.default == DefaultAction::Deny => Requirement::Deny,
            None => Requirement::Token(None),
        }
    }
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
        if route.dpop_required {
            needs.push("DPoP".to_string());
        }
        needs.join(", ")
    };
    format!("{methods} {host} {path} -> {needs}")
}

/// Whether a verified token meets a route's requirements.
pub fn check(route: Option<&Route>, token: &VerifiedToken) -> Result<(), Reason> {
    let Some(route) = route else { return Ok(()) };
    let missing: Vec<&str> = route.scopes.iter().filter(|s| !token.has_scope(s)).map(String::as_str).collect();
    if !missing.is_empty() {
        return Err(Reason::InsufficientScope { scope: route.scopes.join(" ") });
    }
    if !route.any_scopes.is_empty() && !route.any_scopes.iter().any(|s| token.has_scope(s)) {
        return Err(Reason::InsufficientScope { scope: route.any_scopes.join(" ") });
    }
    if !route.permissions.iter().all(|p| holds(token.claim("permissions"), p)) {
        return Err(Reason::MissingPermission);
    }
    let org = token.claim("org_id").and_then(Value::as_str);
    if !route.organizations.is_empty() && !org.is_some_and(|o| route.organizations.iter().any(|want| want == o)) {
        return Err(Reason::WrongOrganization);
    }
    if !route.claims.iter().all(|(name, want)| holds(token.claim(name), want)) {
        return Err(Reason::ClaimMismatch);
    }
    Ok(())
}

/// A claim that is the wanted string, or an array containing it.
fn holds(claim: Option<&Value>, want: &str) -> bool {
    match claim {
        Some(Value::String(s)) => s == want,
        Some(Value::Array(items)) => items.iter().any(|v| v.as_str() == Some(want)),
        _ => false,
    }
}

/// The claims the routes read, which verification must keep.
pub fn claims_read(routes: &[Route]) -> Vec<String> {
    let mut names = Vec::new();
    for route in routes {
        if !route.permissions.is_empty() {
            names.push("permissions".to_string());
        }
        if !route.organizations.is_empty() {
            names.push("org_id".to_string());
        }
        names.extend(route.claims.iter().map(|(name, _)| name.clone()));
    }
    names
}

#[cfg(test)]
mod tests;
