//! End to end behind real Caddy (v2): the shipped `deploy/caddy/Caddyfile`, as it ships
//! (only its three addresses replaced), behind a test-only global options block, in front
//! of an echo upstream, with the real `tollgate` binary checking tokens from the mock
//! issuer (`proxy.gateway = "caddy"`).
//!
//! Caddy must be installed (`apt-get install caddy`, or scripts/test.sh); without it these
//! tests fail.

#[macro_use]
mod e2e;
mod support;

use axum::http::StatusCode;
use e2e::gateways::caddy::{Caddy, SHIPPED_CADDYFILE, TOLLGATE};
use e2e::{Options, Stack, received};
use support::JwksMode;

const SHIPPED_TOLLGATE_TOML: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/caddy/tollgate.toml"));

/// The shipped `copy_headers` line, and the same with a header tollgate does not send (the
/// tests' tollgate.toml has `[headers]` X-Auth-Email only).
const COPY_HEADERS: &str =
    "copy_headers X-Auth-Subject X-Auth-Scheme X-Auth-Claims X-Auth-Actor X-Auth-Delegation-Chain\n";
const COPY_HEADERS_NAIVE: &str =
    "copy_headers X-Auth-Subject X-Auth-Scheme X-Auth-Claims X-Auth-Actor X-Auth-Delegation-Chain X-Auth-Tenant\n";

/// What `copy_headers` hands the API, up to Caddy 2.9, for a header the check did not send.
const LITERAL_PLACEHOLDER: &str = "{http.reverse_proxy.header.X-Auth-Tenant}";

common_scenarios!();

async fn stack() -> Stack {
    stack_with(Options::default()).await
}

async fn stack_with(options: Options) -> Stack {
    Stack::start(&Caddy::new(), options).await
}

#[tokio::test]
async fn check_that_cannot_decide_reaches_client_as_503() {
    let stack =
        Stack::start(&Caddy::new(), Options { jwks: JwksMode::Fail, wait_keys: false, ..Options::default() }).await;
    e2e::undecidable_check_is_503(&stack).await;
}

/// With `dpop.nonce`: the nonce reaches the client on a 401 (with the rest of tollgate's
/// answer) and, through the shipped `header @tollgate_nonce` line, on success.
#[tokio::test]
async fn with_nonces_the_client_sees_each_next_nonce() {
    let with_nonces = Stack::start(&Caddy::new(), Options { extra: e2e::NONCES, ..Options::default() }).await;
    let ok = e2e::nonce_reaches_client_on_401(&with_nonces).await;
    assert_eq!(ok.all("dpop-nonce").len(), 1, "the next nonce at the client: {ok:?}");

    // Without nonces, no DPoP-Nonce and no placeholder.
    let without = stack().await;
    let token = without.token();
    let reply = without.send("GET", "/orders", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert!(reply.all("dpop-nonce").is_empty(), "{reply:?}");
}

/// What `forward_auth` sends: a bodiless GET to /auth with the client's query appended,
/// X-Forwarded-Method and -Uri from forward_auth, -Proto, -Host and -For from Caddy
/// (replacing the client's), and none of the client's X-Original-*, X-Forwarded-Prefix or
/// X-Auth-* (deleted by the shipped Caddyfile).
#[tokio::test]
async fn check_gets_caddys_description_of_the_request() {
    let stack = Stack::start(&Caddy::new(), Options { stub: true, ..Options::default() }).await;
    let reply = stack.send_body("POST", "/admin/x?y=1", e2e::CLIENT_HEADERS, "{}").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}{}", stack.logs());
    let seen = stack.stub().take();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let check = &seen[0];
    assert_eq!(check.method, "GET", "forward_auth checks with a bodiless GET");
    assert_eq!(check.uri, "/auth?y=1", "Caddy appends the client's query to `uri /auth`");
    let port = stack.base.rsplit(':').next().unwrap();
    assert_eq!(check.get("authorization"), ["Bearer abc"]);
    assert_eq!(check.get("dpop"), ["a.b.c"]);
    assert_eq!(check.get("x-forwarded-method"), ["POST"]);
    assert_eq!(check.get("x-forwarded-uri"), ["/admin/x?y=1"]);
    assert_eq!(check.get("x-forwarded-host"), [format!("127.0.0.1:{port}")]);
    assert_eq!(check.get("x-forwarded-proto"), ["http"]);
    assert_eq!(check.get("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(check.get("content-length"), Vec::<String>::new(), "no body: {check:?}");
    for name in ["x-original-url", "x-original-uri", "x-original-method", "x-forwarded-prefix", "x-auth-subject"] {
        assert!(check.get(name).is_empty(), "{name} reached the check: {check:?}");
    }

    // The API still gets the request with its body.
    let upstream = reply.upstream();
    assert_eq!(upstream[":method"], "POST");
    assert_eq!(upstream[":body"], "{}");
}

/// The shipped guard for a header tollgate sends only sometimes (a `[headers]` entry):
/// copied when the check sent it, left out when it did not or sent it empty, and a
/// client's value never passes.
#[tokio::test]
async fn optional_claim_header_is_copied_only_when_the_check_sends_it() {
    let stack = Stack::start(&Caddy::new(), Options { stub: true, ..Options::default() }).await;
    let identity = [("x-auth-subject", "user9"), ("x-auth-scheme", "Bearer"), ("x-auth-claims", "e30")];
    let forged = [("x-auth-email", "admin@example.com")];

    let mut answer = identity.to_vec();
    answer.push(("x-auth-email", "user9@example.com"));
    stack.stub().answer_with(&answer);
    let upstream = stack.send("GET", "/orders", &forged).await.upstream();
    assert_eq!(received(&upstream, "x-auth-email"), ["user9@example.com"], "{upstream}");
    assert_eq!(received(&upstream, "x-auth-subject"), ["user9"], "{upstream}");

    for answer in [identity.to_vec(), [&identity[..], &[("x-auth-email", "")]].concat()] {
        stack.stub().answer_with(&answer);
        let upstream = stack.send("GET", "/orders", &forged).await.upstream();
        assert!(received(&upstream, "x-auth-email").is_empty(), "check answered {answer:?}: {upstream}");
        assert_eq!(received(&upstream, "x-auth-subject"), ["user9"], "{upstream}");
    }
}

/// An empty value from the check (tollgate on a public route): `copy_headers` hands the
/// API an empty header up to Caddy 2.9 and leaves it out from 2.10 on; the guarded claim
/// header is left out on every version; the client's values are gone either way (the
/// shipped Caddyfile deletes them first).
#[tokio::test]
async fn empty_identity_headers_from_the_check() {
    let caddy = Caddy::new();
    let version = caddy.version();
    let stack = Stack::start(&caddy, Options::default()).await;
    let upstream = stack
        .send("GET", "/public/status", &[("x-auth-subject", "admin"), ("x-auth-email", "admin@example.com")])
        .await
        .upstream();
    assert!(received(&upstream, "x-auth-email").is_empty(), "{upstream}");
    for name in ["x-auth-subject", "x-auth-scheme", "x-auth-claims"] {
        let values = received(&upstream, name);
        if version < (2, 10, 0) {
            assert_eq!(values, [""], "{name} on Caddy {version:?}: {upstream}");
        } else {
            assert!(values.is_empty(), "{name} on Caddy {version:?}: {upstream}");
        }
    }
}

/// The finding, reproduced: with a header tollgate does not send in `copy_headers`,
/// Caddy up to 2.9 (Debian's 2.6 included) hands the API the literal placeholder; from
/// 2.10 it leaves the header out. The shipped Caddyfile never lists such a header there.
#[tokio::test]
async fn copy_headers_with_a_header_tollgate_does_not_send() {
    assert_eq!(SHIPPED_CADDYFILE.matches(COPY_HEADERS).count(), 1, "the shipped copy_headers line changed");
    let caddy = Caddy::with(SHIPPED_CADDYFILE.replace(COPY_HEADERS, COPY_HEADERS_NAIVE));
    let version = caddy.version();
    let naive = Stack::start(&caddy, Options::default()).await;
    let token = naive.token();
    let upstream = naive.send("GET", "/orders", &[("authorization", &format!("Bearer {token}"))]).await.upstream();
    assert_eq!(received(&upstream, "x-auth-subject"), ["user1"], "{upstream}");
    let tenant = received(&upstream, "x-auth-tenant");
    if version < (2, 10, 0) {
        assert_eq!(tenant, [LITERAL_PLACEHOLDER], "Caddy {version:?}: {upstream}");
    } else {
        assert!(tenant.is_empty(), "Caddy {version:?}: {upstream}");
    }

    // The shipped Caddyfile, same request: no such header at all.
    let shipped = stack().await;
    let token = shipped.token();
    let upstream = shipped.send("GET", "/orders", &[("authorization", &format!("Bearer {token}"))]).await.upstream();
    assert!(received(&upstream, "x-auth-tenant").is_empty(), "{upstream}");
    // X-Auth-Email, sent empty by tollgate (no email claim), is left out by the guard.
    assert!(received(&upstream, "x-auth-email").is_empty(), "{upstream}");
}

/// On a refusal Caddy returns the check's status, headers and body as they are.
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
fn shipped_tollgate_toml_matches_the_caddy_example() {
    let config = tollgate::config::Config::load(SHIPPED_TOLLGATE_TOML, &Default::default())
        .unwrap_or_else(|e| panic!("deploy/caddy/tollgate.toml: {e}"));
    assert_eq!(config.proxy.gateway, tollgate::config::Gateway::Caddy);
    assert_eq!(config.listen.to_string(), TOLLGATE, "tollgate.toml listens where forward_auth points");
    assert!(SHIPPED_CADDYFILE.contains(&format!("forward_auth {TOLLGATE} {{")));
    assert_eq!(config.errors.invalid_request_status, StatusCode::BAD_REQUEST);
}

#[test]
fn version_text_is_read() {
    assert_eq!(e2e::parse_version("2.6.2"), Some((2, 6, 2)));
    assert_eq!(e2e::parse_version("v2.10.0 h1:abc="), Some((2, 10, 0)));
    assert_eq!(e2e::parse_version("Version:      3.7.15"), Some((3, 7, 15)));
}
