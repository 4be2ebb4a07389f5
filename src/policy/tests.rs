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
        assert!(admin.matches(path), "{path}");
    }
    for path in ["/administrator", "/admi", "/", "/Admin"] {
        assert!(!admin.matches(path), "{path}");
    }
    assert!(PathMatch::Prefix("/api/".into()).matches("/api/x"));
}

#[test]
fn exact_paths_match_only_themselves() {
    let exact = PathMatch::Exact("/health".into());
    assert!(exact.matches("/health"));
    assert!(!exact.matches("/health/"));
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
    let policy = Policy::new(vec![admin.clone(), wild.clone()], DefaultAction::Authenticated);
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
            assert_eq!(policy.route(&request), Requirement::Token(Some(&admin)), "{scheme}://{host}");
        }
    }
    for host in ["a.internal.example:8080", "B.Internal.Example.", "c.d.internal.example:443"] {
        let request = OriginalRequest::new("GET", "http", Some(host), "/").unwrap();
        assert_eq!(policy.route(&request), Requirement::Token(Some(&wild)), "{host}");
    }
    for host in ["admin.example.com.evil", "xadmin.example.com:8000", "internal.example."] {
        let request = OriginalRequest::new("GET", "http", Some(host), "/").unwrap();
        assert_eq!(policy.route(&request), Requirement::Token(None), "{host}");
    }
}

#[test]
fn the_first_matching_route_wins_and_methods_are_case_sensitive() {
    let mut post_admin = route(PathMatch::Prefix("/admin".into()));
    post_admin.methods = Some(vec!["POST".into()]);
    post_admin.scopes = vec!["write:admin".into()];
    let mut public = route(PathMatch::Any);
    public.public = true;
    let policy = Policy::new(vec![post_admin.clone(), public], DefaultAction::Deny);
    assert_eq!(policy.route(&request("POST", "h", "/admin/x")), Requirement::Token(Some(&post_admin)));
    assert_eq!(policy.route(&request("post", "h", "/admin/x")), Requirement::Public);
    assert_eq!(policy.route(&request("GET", "h", "/admin/x")), Requirement::Public);
}

#[test]
fn unmatched_requests_follow_the_default() {
    let only = route(PathMatch::Exact("/a".into()));
    let deny = Policy::new(vec![only.clone()], DefaultAction::Deny);
    assert_eq!(deny.route(&request("GET", "h", "/b")), Requirement::Deny);
    let allow = Policy::new(vec![only], DefaultAction::Authenticated);
    assert_eq!(allow.route(&request("GET", "h", "/b")), Requirement::Token(None));
}

#[test]
fn a_host_route_needs_the_host() {
    let mut r = route(PathMatch::Any);
    r.host = HostPattern::parse("api.example.com").ok();
    r.public = true;
    let policy = Policy::new(vec![r], DefaultAction::Deny);
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
