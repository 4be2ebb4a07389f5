//! Route requirements beyond scopes, and `[headers]` claim headers, through the real router.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::*;

const RULES: &str = r#"
[[routes]]
path_prefix = "/reports"
permissions = ["read:reports", "export:reports"]

[[routes]]
path_prefix = "/orgs"
organizations = ["org_acme", "org_globex"]

[[routes]]
path_prefix = "/gold"
claims = { "https://example.com/tier" = "gold", "roles" = "admin" }

[[routes]]
path_prefix = "/bound"
dpop = "required"
"#;

async fn get(app: &TestApp, path: &str, token: &str) -> Answer {
    app.get(path, &[("authorization", &format!("Bearer {token}"))]).await
}

fn assert_forbidden(answer: &Answer, description: &str) {
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert_eq!(
        answer.challenges()[0],
        format!("Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"{description}\"")
    );
}

#[tokio::test]
async fn permissions_must_all_be_in_the_permissions_claim() {
    let app = TestApp::new(RULES).await;
    let all = app.token().claim("permissions", json!(["read:reports", "export:reports", "x"])).sign();
    assert_eq!(get(&app, "/reports", &all).await.status, StatusCode::OK);
    for permissions in [json!(["read:reports"]), json!("read:reports export:reports"), json!([])] {
        let token = app.token().claim("permissions", permissions).sign();
        assert_forbidden(&get(&app, "/reports", &token).await, "required permission missing");
    }
    // Scopes do not stand in for permissions.
    let scoped = app.token().claim("scope", json!("read:reports export:reports")).sign();
    assert_forbidden(&get(&app, "/reports", &scoped).await, "required permission missing");
}

#[tokio::test]
async fn the_organization_must_be_one_of_the_routes() {
    let app = TestApp::new(RULES).await;
    let acme = app.token().claim("org_id", json!("org_acme")).sign();
    assert_eq!(get(&app, "/orgs/1", &acme).await.status, StatusCode::OK);
    for org in [json!("org_other"), json!(["org_acme"]), json!(null)] {
        let token = app.token().claim("org_id", org).sign();
        assert_forbidden(&get(&app, "/orgs/1", &token).await, "organization not allowed");
    }
    let none = app.token().sign();
    assert_forbidden(&get(&app, "/orgs/1", &none).await, "organization not allowed");
}

#[tokio::test]
async fn claim_conditions_match_strings_and_array_members() {
    let app = TestApp::new(RULES).await;
    let gold =
        app.token().claim("https://example.com/tier", json!("gold")).claim("roles", json!(["user", "admin"])).sign();
    assert_eq!(get(&app, "/gold", &gold).await.status, StatusCode::OK);
    let silver = app.token().claim("https://example.com/tier", json!("silver")).claim("roles", json!(["admin"])).sign();
    assert_forbidden(&get(&app, "/gold", &silver).await, "required claim value missing");
    let no_role = app.token().claim("https://example.com/tier", json!("gold")).claim("roles", json!("user")).sign();
    assert_forbidden(&get(&app, "/gold", &no_role).await, "required claim value missing");
}

#[tokio::test]
async fn a_route_can_require_dpop_while_it_is_only_allowed_globally() {
    let app = TestApp::new(RULES).await;
    let token = app.token().sign();
    let answer = get(&app, "/bound/x", &token).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenges(), vec!["DPoP algs=\"ES256\""]);
    let none = app.get("/bound/x", &[]).await;
    assert_eq!(none.challenges(), vec!["DPoP algs=\"ES256\""]);
    assert_eq!(get(&app, "/elsewhere", &token).await.status, StatusCode::OK);
}

const HEADERS: &str = r#"
[headers]
"X-Auth-Email" = "email"
"X-Auth-Tenant" = "app_metadata.tenant"
"X-Auth-Tier" = "https://example.com/tier"
"X-Auth-Roles" = "https://example.com/roles"
"X-Auth-Level" = "level"
"X-Auth-Verified" = "email_verified"
"#;

#[tokio::test]
async fn claim_headers_carry_names_paths_arrays_and_scalars() {
    let app = TestApp::new(HEADERS).await;
    let token = app
        .token()
        .claim("email", json!("ana@example.com"))
        .claim("app_metadata", json!({"tenant": "acme"}))
        .claim("https://example.com/tier", json!("gold"))
        .claim("https://example.com/roles", json!(["admin", "ops"]))
        .claim("level", json!(3))
        .claim("email_verified", json!(true))
        .sign();
    let answer = app.bearer(&token).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("x-auth-email"), Some("ana@example.com"));
    assert_eq!(answer.header("x-auth-tenant"), Some("acme"));
    assert_eq!(answer.header("x-auth-tier"), Some("gold"));
    assert_eq!(answer.header("x-auth-roles"), Some("admin,ops"));
    assert_eq!(answer.header("x-auth-level"), Some("3"));
    assert_eq!(answer.header("x-auth-verified"), Some("true"));
}

#[tokio::test]
async fn unsafe_or_missing_claims_never_reach_a_header_raw() {
    let app = TestApp::new(HEADERS).await;
    let token = app
        .token()
        .claim("email", json!("a@b.c\r\nX-Admin: 1"))
        .claim("https://example.com/tier", json!("élite"))
        .claim("app_metadata", json!({"tenant": {"nested": 1}}))
        .claim("level", json!("x".repeat(5000)))
        .sign();
    let answer = app.bearer(&token).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("x-auth-email"), Some("a@b.c%0D%0AX-Admin:%201"));
    assert_eq!(answer.header("x-auth-tier"), Some("%C3%A9lite"));
    assert_eq!(answer.header("x-auth-tenant"), Some(""), "objects have no header form");
    assert_eq!(answer.header("x-auth-level"), Some(""), "over 4 KiB");
    assert_eq!(answer.header("x-auth-roles"), Some(""), "absent");
}

#[tokio::test]
async fn public_routes_send_claim_headers_empty() {
    let app = TestApp::new(&format!("[[routes]]\npath_prefix = \"/public\"\npublic = true\n{HEADERS}")).await;
    let answer = app.get("/public", &[("x-auth-email", "forged@example.com")]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("x-auth-email"), Some(""));
}

#[test]
fn reserved_and_invalid_header_names_are_refused() {
    for (name, claim) in [
        ("X-Auth-Subject", "sub"),
        ("Authorization", "sub"),
        ("Bad Header", "sub"),
        ("X-Auth-Ok", ""),
        ("X-User-Email", "email"),
    ] {
        let text = config_text("https://t.example/", "nginx", &format!("[headers]\n\"{name}\" = \"{claim}\""));
        let error = tollgate::config::Config::load(&text, &Default::default()).unwrap_err();
        assert_eq!(error.problems[0].key, format!("headers.{name}"));
    }
}

#[test]
fn a_route_cannot_require_dpop_when_dpop_is_disabled() {
    let text = config_text("https://t.example/", "nginx", "[dpop]\nenabled = false\n[[routes]]\ndpop = \"required\"");
    let error = tollgate::config::Config::load(&text, &Default::default()).unwrap_err();
    assert_eq!(error.problems[0].key, "routes");
}

const UPSTREAM_RULES: &str = r#"
[[routes]]
path_prefix = "/reports"
methods = ["GET"]
scopes = ["read:reports"]

[[routes]]
path_prefix = "/admin"
methods = ["POST", "DELETE"]
scopes = ["write:admin"]

[[routes]]
path_prefix = "/admin"
scopes = ["admin"]

[[routes]]
path = "/exact"
scopes = ["exact"]
"#;

/// A check in the nginx dialect for `method uri`, with extra client headers.
async fn nginx_check(app: &TestApp, method: &str, uri: &str, token: &str, extra: &[(&str, &str)]) -> Answer {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("x-original-method", method), ("x-original-uri", uri), ("authorization", &auth)];
    headers.extend_from_slice(extra);
    app.get("", &headers).await
}

/// A method, a URI, extra client headers, and the scopes the readings need.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

/// Issues 15 and 16's tables: with scope `read` every row used to pass; each is now held
/// to the route the upstream would act on.
#[tokio::test]
async fn requests_are_judged_as_the_upstream_acts_on_them() {
    let app = TestApp::with_gateway("nginx", UPSTREAM_RULES).await;
    let read = app.token().claim("scope", json!("read")).sign();
    let cases: &[Case] = &[
        ("GET", "/reports/q", &[], "read:reports"),
        ("HEAD", "/reports/q", &[], "read:reports"),
        ("GET", "/admin/x", &[("x-http-method-override", "DELETE")], "admin write:admin"),
        ("GET", "/admin/x", &[("x-http-method-override", "delete")], "admin write:admin"),
        ("POST", "/admin/x?_method=DELETE", &[], "write:admin"),
        ("GET", "/ADMIN/users", &[], "admin"),
        ("GET", "/Admin", &[], "admin"),
        ("GET", "/admin.json", &[], "admin"),
        ("GET", "/EXACT", &[], "exact"),
        ("GET", "/exact.xml", &[], "exact"),
    ];
    for (method, uri, extra, needed) in cases {
        let answer = nginx_check(&app, method, uri, &read, extra).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {uri} {extra:?}: {}", answer.body);
        let first_scope = needed.split(' ').next().unwrap_or_default();
        assert!(
            answer.challenges()[0].contains(&format!("scope=\"{first_scope}")),
            "{method} {uri}: {:?}",
            answer.challenges()
        );
        // With every scope the readings need, the request passes.
        let enough = app.token().claim("scope", json!(format!("read {needed}"))).sign();
        let answer = nginx_check(&app, method, uri, &enough, extra).await;
        assert_eq!(answer.status, StatusCode::OK, "{method} {uri} {extra:?} with {needed}: {}", answer.body);
    }
}

#[tokio::test]
async fn an_unreadable_method_override_is_an_invalid_request() {
    let app = TestApp::with_gateway("nginx", UPSTREAM_RULES).await;
    let read = app.token().claim("scope", json!("read")).sign();
    let answer = nginx_check(&app, "GET", "/admin/x", &read, &[("x-http-method-override", "DEL ETE")]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.challenges()[0].contains("invalid method override"), "{:?}", answer.challenges());
}

#[tokio::test]
async fn exact_path_matching_reads_the_path_as_sent() {
    let rules = format!("path_matching = \"exact\"\n{UPSTREAM_RULES}");
    let app = TestApp::with_gateway("nginx", &rules).await;
    let read = app.token().claim("scope", json!("read")).sign();
    for uri in ["/ADMIN/users", "/admin.json", "/EXACT", "/exact.xml"] {
        assert_eq!(nginx_check(&app, "GET", uri, &read, &[]).await.status, StatusCode::OK, "{uri}");
    }
    // Methods are still read as the upstream acts on them.
    assert_eq!(nginx_check(&app, "HEAD", "/reports/q", &read, &[]).await.status, StatusCode::FORBIDDEN);
}

/// `act` of `depth` actors, `agent-0` outermost (the current actor).
fn act_chain(depth: usize) -> Option<serde_json::Value> {
    (0..depth).rev().fold(None, |inner, n| {
        let mut act = json!({ "sub": format!("agent-{n}") });
        if let Some(inner) = inner {
            act["act"] = inner;
        }
        Some(act)
    })
}

const ACTOR_RULES: &str = r#"
[[routes]]
path_prefix = "/calendar"
actors = ["agent-0", "mcp_server_client_id"]
"#;

#[tokio::test]
async fn every_200_carries_the_current_actor_and_the_delegation_chain() {
    let app = TestApp::new(ACTOR_RULES).await;
    for depth in [0, 1, 3, 8] {
        let mut token = app.token();
        if let Some(act) = act_chain(depth) {
            token = token.claim("act", act);
        }
        let answer = get(&app, "/orders", &token.sign()).await;
        assert_eq!(answer.status, StatusCode::OK, "depth {depth}: {}", answer.body);
        let chain: Vec<String> = (0..depth).map(|n| format!("agent-{n}")).collect();
        let actor = chain.first().cloned().unwrap_or_default();
        assert_eq!(answer.header("x-auth-actor"), Some(actor.as_str()), "depth {depth}");
        assert_eq!(answer.header("x-auth-delegation-chain"), Some(chain.join(",").as_str()), "depth {depth}");
    }
    // Actors are encoded like the subject; a comma inside one cannot split the chain.
    let odd = app.token().claim("act", json!({ "sub": "a,b é", "act": { "sub": "c" } })).sign();
    let answer = get(&app, "/orders", &odd).await;
    assert_eq!(answer.header("x-auth-actor"), Some("a,b%20%C3%A9"));
    assert_eq!(answer.header("x-auth-delegation-chain"), Some("a%2Cb%20%C3%A9,c"));
}

#[tokio::test]
async fn an_unreadable_or_too_deep_act_makes_the_token_invalid() {
    let app = TestApp::new(ACTOR_RULES).await;
    for act in [act_chain(9).unwrap(), json!("agent"), json!({ "sub": "" }), json!({ "sub": "a", "act": [1] })] {
        let token = app.token().claim("act", act.clone()).sign();
        get(&app, "/orders", &token).await.assert_invalid_token("invalid act claim");
    }
}

#[tokio::test]
async fn a_route_with_actors_admits_only_its_current_actors() {
    let app = TestApp::new(ACTOR_RULES).await;
    for depth in [1, 3, 8] {
        let token = app.token().claim("act", act_chain(depth).unwrap()).sign();
        assert_eq!(get(&app, "/calendar/events", &token).await.status, StatusCode::OK, "depth {depth}");
    }
    let mcp = app.token().claim("act", json!({ "sub": "mcp_server_client_id", "act": { "sub": "agent-0" } })).sign();
    assert_eq!(get(&app, "/calendar/events", &mcp).await.status, StatusCode::OK);
    // A prior actor does not count: only the outermost act.sub is authorized on.
    let prior = app.token().claim("act", json!({ "sub": "stranger", "act": { "sub": "agent-0" } })).sign();
    assert_forbidden(&get(&app, "/calendar/events", &prior).await, "actor not allowed");
    // No act at all: no actor.
    assert_forbidden(&get(&app, "/calendar/events", &app.token().sign()).await, "actor not allowed");
}
