use super::*;

fn route(path: PathMatch) -> Route {
    Route {
        host: None,
        path,
        methods: None,
        scopes: vec![],
        any_scopes: vec![],
        permissions: vec![],
        organizations: vec![],
        claims: vec![],
        actors: vec![],
        issuers: vec![],
        exchange: None,
        dpop_required: false,
        public: false,
    }
}

fn request(method: &str, host: &str, path: &str) -> OriginalRequest {
    OriginalRequest::new(method, "https", Some(host), path).unwrap()
}

#[test]
fn prefixes_match_whole_segments() {
    let admin = PathMatch::Prefix("/admin".into());
    for path in ["/admin", "/admin/", "/admin/users", "/admin;v=1"] {
        assert!(admin.matches(path, false), "{path}");
    }
    for path in ["/administrator", "/admi", "/", "/Admin"] {
        assert!(!admin.matches(path, false), "{path}");
    }
    assert!(PathMatch::Prefix("/api/".into()).matches("/api/x", false));
}

#[test]
fn exact_paths_match_only_themselves() {
    let exact = PathMatch::Exact("/health".into());
    assert!(exact.matches("/health", false));
    assert!(exact.matches("/HEALTH", true));
    assert!(!exact.matches("/health/", false));
    assert!(!exact.matches("/HEALTH", false));
}

#[test]
fn hosts_match_exactly_or_by_subdomain() {
    let exact = HostPattern::parse("API.example.com").unwrap();
    assert!(exact.matches("api.example.com"));
    assert!(!exact.matches("x.api.example.com"));
    let wild = HostPattern::parse("*.example.com").unwrap();
    assert!(wild.matches("a.example.com"));
    assert!(wild.matches("a.b.example.com"));
    assert!(!wild.matches("example.com"));
    assert!(!wild.matches("evilexample.com"));
}

#[test]
fn host_patterns_are_read_as_gateways_route() {
    assert_eq!(HostPattern::parse("Admin.Example.COM."), Ok(HostPattern::Exact("admin.example.com".into())));
    assert_eq!(HostPattern::parse("*.example.com."), Ok(HostPattern::Subdomains(".example.com".into())));
    assert_eq!(HostPattern::parse("[::1]"), Ok(HostPattern::Exact("[::1]".into())));
    assert_eq!(HostPattern::parse("10.0.0.5"), Ok(HostPattern::Exact("10.0.0.5".into())));
    for with_port in ["admin.example.com:8000", "*.example.com:443", "[::1]:8080", "::1"] {
        let problem = HostPattern::parse(with_port).unwrap_err();
        assert!(problem.contains("no port"), "{with_port}: {problem}");
    }
    for bad in ["*.*.com", "a b", "", ".", "a..b", "admin.example.com..", "*.", "[::g]", "a/b"] {
        assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn a_host_route_holds_for_every_way_a_client_writes_its_host() {
    let mut admin = route(PathMatch::Any);
    admin.host = HostPattern::parse("admin.example.com").ok();
    admin.scopes = vec!["admin".into()];
    let mut wild = route(PathMatch::Any);
    wild.host = HostPattern::parse("*.internal.example").ok();
    wild.scopes = vec!["internal".into()];
    let policy = Policy::new(vec![admin.clone(), wild.clone()], DefaultAction::Authenticated, PathMatching::Strict);
    for host in [
        "admin.example.com",
        "ADMIN.EXAMPLE.COM",
        "admin.example.com:8000",
        "admin.example.com:443",
        "admin.example.com.",
        "Admin.Example.Com.:8443",
    ] {
        for scheme in ["http", "https"] {
            let request = OriginalRequest::new("GET", scheme, Some(host), "/secret").unwrap();
            assert_eq!(policy.route(&request), Requirement::Token(vec![&admin]), "{scheme}://{host}");
        }
    }
    for host in ["a.internal.example:8080", "B.Internal.Example.", "c.d.internal.example:443"] {
        let request = OriginalRequest::new("GET", "http", Some(host), "/").unwrap();
        assert_eq!(policy.route(&request), Requirement::Token(vec![&wild]), "{host}");
    }
    for host in ["admin.example.com.evil", "xadmin.example.com:8000", "internal.example."] {
        let request = OriginalRequest::new("GET", "http", Some(host), "/").unwrap();
        assert_eq!(policy.route(&request), Requirement::Token(vec![]), "{host}");
    }
}

#[test]
fn the_first_matching_route_wins_and_a_lower_case_method_is_also_read_upper_cased() {
    let mut post_admin = route(PathMatch::Prefix("/admin".into()));
    post_admin.methods = Some(vec!["POST".into()]);
    post_admin.scopes = vec!["write:admin".into()];
    let mut public = route(PathMatch::Any);
    public.public = true;
    let policy = Policy::new(vec![post_admin.clone(), public], DefaultAction::Deny, PathMatching::Strict);
    assert_eq!(policy.route(&request("POST", "h", "/admin/x")), Requirement::Token(vec![&post_admin]));
    // `post` is not POST to RFC 9110, but Django and Flask act on it as POST.
    assert_eq!(policy.route(&request("post", "h", "/admin/x")), Requirement::Token(vec![&post_admin]));
    assert_eq!(policy.route(&request("GET", "h", "/admin/x")), Requirement::Public);
}

#[test]
fn unmatched_requests_follow_the_default() {
    let only = route(PathMatch::Exact("/a".into()));
    let deny = Policy::new(vec![only.clone()], DefaultAction::Deny, PathMatching::Strict);
    assert_eq!(deny.route(&request("GET", "h", "/b")), Requirement::Deny);
    let allow = Policy::new(vec![only], DefaultAction::Authenticated, PathMatching::Strict);
    assert_eq!(allow.route(&request("GET", "h", "/b")), Requirement::Token(vec![]));
}

#[test]
fn a_host_route_needs_the_host() {
    let mut r = route(PathMatch::Any);
    r.host = HostPattern::parse("api.example.com").ok();
    r.public = true;
    let policy = Policy::new(vec![r], DefaultAction::Deny, PathMatching::Strict);
    assert_eq!(policy.route(&request("GET", "api.example.com", "/")), Requirement::Public);
    assert_eq!(policy.route(&request("GET", "other.example.com", "/")), Requirement::Deny);
    let hostless = OriginalRequest::new("GET", "https", None, "/").unwrap();
    assert_eq!(policy.route(&hostless), Requirement::Deny);
}

#[test]
fn a_route_lists_the_claims_it_reads() {
    let mut r = route(PathMatch::Any);
    r.permissions = vec!["read:x".into()];
    r.organizations = vec!["org_1".into()];
    r.claims = vec![("https://example.com/tier".into(), "gold".into())];
    assert_eq!(claims_read(&[r]), vec!["permissions", "org_id", "https://example.com/tier"]);
}

/// The routes of issues 15 and 16: GET /reports needs `read:reports`, POST and DELETE on
/// /admin need `write:admin`, /admin needs `admin`, /exact needs `exact`; /public is public.
fn upstream_policy(default: DefaultAction, matching: PathMatching) -> Policy {
    let mut reports = route(PathMatch::Prefix("/reports".into()));
    reports.methods = Some(vec!["GET".into()]);
    reports.scopes = vec!["read:reports".into()];
    let mut write_admin = route(PathMatch::Prefix("/admin".into()));
    write_admin.methods = Some(vec!["POST".into(), "DELETE".into()]);
    write_admin.scopes = vec!["write:admin".into()];
    let mut admin = route(PathMatch::Prefix("/admin".into()));
    admin.scopes = vec!["admin".into()];
    let mut exact = route(PathMatch::Exact("/exact".into()));
    exact.scopes = vec!["exact".into()];
    let mut public = route(PathMatch::Prefix("/public".into()));
    public.public = true;
    Policy::new(vec![public, reports, write_admin, admin, exact], default, matching)
}

/// The scopes a request needs, in route order, or `None` when it is public or denied.
fn scopes_needed(policy: &Policy, method: &str, uri: &str, overrides: &[&str]) -> Option<Vec<String>> {
    let mut uri = uri.to_string();
    for o in overrides {
        uri.push_str(if uri.contains('?') { "&_method=" } else { "?_method=" });
        uri.push_str(o);
    }
    let request = OriginalRequest::new(method, "https", Some("api.example.com"), &uri).unwrap();
    match policy.route(&request) {
        Requirement::Token(routes) => Some(routes.iter().flat_map(|r| r.scopes.clone()).collect()),
        Requirement::Public | Requirement::Deny => None,
    }
}

#[test]
fn head_is_held_to_the_get_routes() {
    let policy = upstream_policy(DefaultAction::Authenticated, PathMatching::Strict);
    assert_eq!(scopes_needed(&policy, "GET", "/reports/q", &[]).unwrap(), ["read:reports"]);
    assert_eq!(scopes_needed(&policy, "HEAD", "/reports/q", &[]).unwrap(), ["read:reports"]);
    assert_eq!(scopes_needed(&policy, "OPTIONS", "/reports/q", &[]).unwrap(), Vec::<String>::new());
}

#[test]
fn a_method_override_must_satisfy_the_routes_of_both_methods() {
    let policy = upstream_policy(DefaultAction::Authenticated, PathMatching::Strict);
    // GET /admin/x is held to `admin`; acted on as DELETE it also needs `write:admin`.
    assert_eq!(scopes_needed(&policy, "GET", "/admin/x", &[]).unwrap(), ["admin"]);
    assert_eq!(scopes_needed(&policy, "GET", "/admin/x", &["DELETE"]).unwrap(), ["admin", "write:admin"]);
    assert_eq!(scopes_needed(&policy, "POST", "/admin/x?_method=DELETE", &[]).unwrap(), ["write:admin"]);
    assert_eq!(scopes_needed(&policy, "POST", "/reports/q?_method=head", &[]).unwrap(), ["read:reports"]);
    // An override to an unknown method is read too; it matches only method-less routes.
    assert_eq!(scopes_needed(&policy, "GET", "/admin/x", &["PURGE"]).unwrap(), ["admin"]);
}

#[test]
fn a_public_route_for_one_method_and_a_scoped_route_for_the_other_needs_the_scope() {
    let mut open_get = route(PathMatch::Prefix("/files".into()));
    open_get.methods = Some(vec!["GET".into()]);
    open_get.public = true;
    let mut delete = route(PathMatch::Prefix("/files".into()));
    delete.methods = Some(vec!["DELETE".into()]);
    delete.scopes = vec!["delete:files".into()];
    let policy = Policy::new(vec![open_get, delete.clone()], DefaultAction::Deny, PathMatching::Strict);
    assert_eq!(policy.route(&request("GET", "h", "/files/1")), Requirement::Public);
    assert_eq!(policy.route(&request("GET", "h", "/files/1?_method=DELETE")), Requirement::Token(vec![&delete]));
    // default = "deny" for either reading refuses.
    assert_eq!(policy.route(&request("GET", "h", "/files/1?_method=PUT")), Requirement::Deny);
}

#[test]
fn strict_paths_hold_under_case_folding_and_format_suffixes() {
    let policy = upstream_policy(DefaultAction::Authenticated, PathMatching::Strict);
    for uri in ["/ADMIN/users", "/Admin", "/admin.json", "/Admin.JSON", "/admin/users.xml"] {
        assert_eq!(scopes_needed(&policy, "GET", uri, &[]).unwrap(), ["admin"], "{uri}");
    }
    for uri in ["/EXACT", "/exact.xml", "/Exact.tar.gz"] {
        assert_eq!(scopes_needed(&policy, "GET", uri, &[]).unwrap(), ["exact"], "{uri}");
    }
    assert_eq!(scopes_needed(&policy, "GET", "/administrator", &[]).unwrap(), Vec::<String>::new());
}

#[test]
fn a_public_route_opens_only_for_its_exact_path() {
    let policy = upstream_policy(DefaultAction::Authenticated, PathMatching::Strict);
    assert_eq!(policy.route(&request("GET", "h", "/public/status")), Requirement::Public);
    assert_eq!(policy.route(&request("GET", "h", "/public/status.json")), Requirement::Public);
    // Listed first, it stays public for its own path, whatever its readings match.
    assert_eq!(policy.route(&request("GET", "h", "/public/admin")), Requirement::Public);
    // Folded, /PUBLIC is /public, but as sent it matches no route: a token is needed.
    assert_eq!(policy.route(&request("GET", "h", "/PUBLIC/status")), Requirement::Token(vec![]));
    let deny = upstream_policy(DefaultAction::Deny, PathMatching::Strict);
    assert_eq!(deny.route(&request("GET", "h", "/PUBLIC/status")), Requirement::Deny);
    assert_eq!(deny.route(&request("GET", "h", "/public/status.json")), Requirement::Public);
}

#[test]
fn exact_path_matching_reads_the_path_as_sent_only() {
    let policy = upstream_policy(DefaultAction::Authenticated, PathMatching::Exact);
    for uri in ["/ADMIN/users", "/admin.json", "/EXACT", "/exact.xml"] {
        assert_eq!(scopes_needed(&policy, "GET", uri, &[]).unwrap(), Vec::<String>::new(), "{uri}");
    }
    // Methods are read as the upstream acts on them either way.
    assert_eq!(scopes_needed(&policy, "HEAD", "/reports/q", &[]).unwrap(), ["read:reports"]);
}

#[test]
fn explain_lists_every_reading_and_the_decision() {
    let policy = upstream_policy(DefaultAction::Authenticated, PathMatching::Strict);
    let text = policy.explain(&request("GET", "api.example.com", "/Admin.json?_method=DELETE"));
    for line in [
        "GET https://api.example.com/Admin.json",
        "read as GET /Admin.json -> no route: default = \"authenticated\"",
        "read as GET /Admin (case folded) -> route 4: any method any host /admin/** -> a valid token, scopes admin",
        "read as DELETE /Admin (case folded) -> route 3: POST,DELETE any host /admin/** -> a valid token, scopes write:admin",
        "decision: a valid token meeting route 4 and route 3",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
}

#[test]
fn the_summary_names_the_routes_that_decided() {
    let policy = upstream_policy(DefaultAction::Authenticated, PathMatching::Strict);
    assert_eq!(policy.summary(&request("GET", "h", "/public/x")), "public");
    assert_eq!(policy.summary(&request("GET", "h", "/orders")), "token");
    assert_eq!(policy.summary(&request("GET", "h", "/Admin?_method=DELETE")), "token+routes 4,3");
    let deny = upstream_policy(DefaultAction::Deny, PathMatching::Strict);
    assert_eq!(deny.summary(&request("GET", "h", "/orders")), "deny");
}
