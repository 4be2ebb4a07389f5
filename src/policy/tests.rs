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
    assert_eq!(HostPattern::parse("*.*.com"), None);
    assert_eq!(HostPattern::parse("a b"), None);
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
    r.host = HostPattern::parse("api.example.com");
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
