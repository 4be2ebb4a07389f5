//! Route rules: which `[[routes]]` entry applies to the original request, and whether a
//! verified token meets its requirements.
//!
//! Routes are tried in order and the first match wins. Hosts are matched on the host the
//! gateway routed on ([`OriginalRequest::host`]: no port, no trailing dot, lower case), so
//! `Host: admin.example.com:8000` or `admin.example.com.` meets the `admin.example.com`
//! route that nginx, Traefik and Envoy would route it to. Paths are matched after
//! [`crate::uri::normalize_path`], on whole segments: `/admin` covers `/admin`,
//! `/admin/users` and `/admin;v=1`, never `/administrator`. Methods are compared exactly
//! (RFC 9110 §9.1: method names are case-sensitive). A request is matched under each of
//! its [`readings()`] (HEAD as GET, method overrides, folded case, format suffixes) and must
//! satisfy every route they match. Scopes are space-delimited and
//! case-sensitive (RFC 6749 §3.3); a missing one answers 403 `insufficient_scope`
//! (RFC 6750 §3.1).

use serde_json::Value;

use crate::config::{DefaultAction, HostPattern, PathMatch, PathMatching, Route, describe_route};
use crate::gateway::OriginalRequest;
use crate::refusal::Reason;
use crate::token::VerifiedToken;

mod readings;

pub use readings::{Reading, readings};

// The settings types are config's; how they match a request is decided here.
impl HostPattern {
    /// Whether `host` (as [`OriginalRequest::host`] gives it: lower-cased, no port, no
    /// trailing dot) is this one or, for `*.domain`, a subdomain of it.
    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

impl PathMatch {
    /// Normalized paths are ASCII, so folding is byte-wise and slicing stays on boundaries.
    fn matches(&self, path: &str, fold_case: bool) -> bool {
        let same = |a: &str, b: &str| if fold_case { a.eq_ignore_ascii_case(b) } else { a == b };
        match self {
            PathMatch::Any => true,
            PathMatch::Exact(p) => same(path, p),
            PathMatch::Prefix(prefix) => {
                let Some((head, rest)) = path.split_at_checked(prefix.len()) else { return false };
                same(head, prefix) && (prefix.ends_with('/') || rest.is_empty() || rest.starts_with(['/', ';']))
            }
        }
    }
}

impl Route {
    fn matches(&self, host: Option<&str>, reading: &Reading<'_>) -> bool {
        self.host.as_ref().is_none_or(|h| host.is_some_and(|host| h.matches(host)))
            && self.path.matches(reading.path, reading.fold_case)
            && self.methods.as_ref().is_none_or(|m| m.iter().any(|m| m == reading.method))
    }
}

/// What the policy asks of a request, decided before any token is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement<'a> {
    /// A public route for every reading: let it through without credentials.
    Public,
    /// A valid token, plus what each of these routes requires (none: only routes without
    /// requirements beyond a token, or no route and `default = "authenticated"`).
    Token(Vec<&'a Route>),
    /// A reading matched no route and the default is to deny.
    Deny,
}

/// The ordered routes, the default for requests no route matches, and which readings of a
/// request the routes must hold for.
#[derive(Debug, Clone)]
pub struct Policy {
    routes: Vec<Route>,
    default: DefaultAction,
    path_matching: PathMatching,
}

impl Policy {
    pub fn new(routes: Vec<Route>, default: DefaultAction, path_matching: PathMatching) -> Self {
        Policy { routes, default, path_matching }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Which routes `request` matches under each reading and what it must bring, in words
    /// (`tollgate check --explain`).
    pub fn explain(&self, request: &OriginalRequest) -> String {
        let host = request.host().unwrap_or("");
        let mut out = format!("{} {}://{host}{}", request.method(), request.scheme(), request.path());
        for reading in readings(request, self.path_matching) {
            let matched = match self.first_match(request, &reading) {
                Some(n) => format!("route {}: {}", n + 1, describe_route(&self.routes[n])),
                None if !reading.as_sent => "no route (adds nothing)".to_string(),
                None => format!("no route: default = \"{}\"", self.default.as_str()),
            };
            out.push_str(&format!("\n  read as {} -> {matched}", reading.describe()));
        }
        let decision = match self.route(request) {
            Requirement::Public => "public: no token needed".to_string(),
            Requirement::Deny => "denied: a reading matches no route and default = \"deny\"".to_string(),
            Requirement::Token(routes) if routes.is_empty() => "a valid token is enough".to_string(),
            Requirement::Token(routes) => {
                let numbers: Vec<String> = routes.iter().map(|r| (self.index_of(r) + 1).to_string()).collect();
                format!("a valid token meeting route {}", numbers.join(" and route "))
            }
        };
        out.push_str(&format!("\n  decision: {decision}"));
        out
    }

    /// What the request must bring so that every reading of it is allowed: the strictest
    /// answer wins, and the requirements of every route matched add up.
    pub fn route(&self, request: &OriginalRequest) -> Requirement<'_> {
        let mut routes: Vec<&Route> = Vec::new();
        let mut public = true;
        for reading in readings(request, self.path_matching) {
            match self.first_match(request, &reading).map(|n| &self.routes[n]) {
                Some(route) if route.public => {}
                Some(route) => {
                    public = false;
                    if !routes.iter().any(|r| std::ptr::eq(*r, route)) {
                        routes.push(route);
                    }
                }
                // A derived path reading adds only the routes it matches.
                None if !reading.as_sent => {}
                None if self.default == DefaultAction::Deny => return Requirement::Deny,
                None => public = false,
            }
        }
        if public { Requirement::Public } else { Requirement::Token(routes) }
    }

    /// [`Policy::route`] in a few words, for logs: `public`, `deny`, `token`, or
    /// `token+routes 2,4` (numbered from 1, as `check` numbers them).
    pub fn summary(&self, request: &OriginalRequest) -> String {
        match self.route(request) {
            Requirement::Public => "public".to_string(),
            Requirement::Deny => "deny".to_string(),
            Requirement::Token(routes) if routes.is_empty() => "token".to_string(),
            Requirement::Token(routes) => {
                let numbers: Vec<String> = routes.iter().map(|r| (self.index_of(r) + 1).to_string()).collect();
                format!("token+routes {}", numbers.join(","))
            }
        }
    }

    /// The index of the first route matching one reading of `request`.
    fn first_match(&self, request: &OriginalRequest, reading: &Reading<'_>) -> Option<usize> {
        self.routes.iter().position(|r| r.matches(request.host(), reading))
    }

    /// The index of `route` (one of these routes) in the config's order.
    pub fn index_of(&self, route: &Route) -> usize {
        self.routes.iter().position(|r| std::ptr::eq(r, route)).unwrap_or_default()
    }
}

/// Whether a verified token from `issuer` meets the requirements of every route a
/// request matched.
pub fn check(routes: &[&Route], token: &VerifiedToken, issuer: &str) -> Result<(), Reason> {
    routes.iter().try_for_each(|route| check_route(route, token, issuer))
}

/// Whether a verified token meets one route's requirements.
fn check_route(route: &Route, token: &VerifiedToken, issuer: &str) -> Result<(), Reason> {
    if !route.issuers.is_empty() && !route.issuers.iter().any(|i| i == issuer) {
        return Err(Reason::IssuerNotAllowed);
    }
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
    let actor = token.actors().first().map(AsRef::as_ref);
    if !route.actors.is_empty() && !actor.is_some_and(|a| route.actors.iter().any(|want| want == a)) {
        return Err(Reason::ActorNotAllowed);
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
