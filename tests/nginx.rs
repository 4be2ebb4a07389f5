//! End to end behind real nginx: the shipped `deploy/nginx/tollgate.conf`, as it ships
//! (only its three placeholder addresses replaced), in front of an echo upstream, with the
//! real `tollgate` binary checking tokens from the mock issuer (`proxy.gateway = "nginx"`).
//!
//! nginx must be installed (`apt-get install nginx`); without it these tests fail.

mod e2e;
mod support;

use axum::http::StatusCode;
use e2e::gateways::nginx::{self, Nginx};
use e2e::{DPOP, Options, Reply, Stack, received};
use serde_json::{Value, json};
use support::JwksMode;
use tollgate::signing::SigningKey;

async fn stack() -> Stack {
    Stack::start(&Nginx::new(), Options::default()).await
}

#[tokio::test]
async fn host_route_holds_for_every_written_host() {
    let stack = stack().await;
    e2e::host_route_holds_for_every_written_host(&stack).await;
    // What the route was decided on is what nginx routes on and hands the upstream.
    let port = stack.base.rsplit(':').next().expect("port").to_string();
    let admin = format!("Bearer {}", stack.issuer.token("read admin"));
    let host = format!("Admin.Example.COM.:{port}");
    let upstream = stack.send("GET", "/secret", &[("host", &host), ("authorization", &admin)]).await.upstream();
    assert_eq!(received(&upstream, "host"), [e2e::ADMIN_HOST], "{upstream}");
}

/// nginx routes and proxies an absolute-form request by its request line (RFC 9112
/// §3.2.2), whatever `Host` says: tollgate must never judge it on the `Host` header.
#[tokio::test]
async fn an_absolute_form_target_is_judged_on_the_host_nginx_routes_on() {
    let stack = stack().await;
    let port = stack.base.rsplit(':').next().expect("port").to_string();
    let admin = e2e::ADMIN_HOST;
    let reader = format!("Authorization: Bearer {}", stack.token());
    for target in [format!("http://{admin}/secret"), format!("http://{admin}:{port}/secret")] {
        let head = format!("GET {target} HTTP/1.1\r\nHost: other.example.com\r\n{reader}");
        let reply = stack.send_raw(&head).await;
        // nginx passes only 401 and 403 on: tollgate's 400 is configured as 401 here.
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{target}: {reply:?}{}", stack.logs());
        assert!(reply.challenges()[0].contains(r#"error="invalid_request""#), "{target}: {reply:?}");
    }
    // Request line and Host agreeing: judged on that host, the admin route applies.
    let head = format!("GET http://{admin}/secret HTTP/1.1\r\nHost: {admin}\r\n{reader}");
    assert_eq!(stack.send_raw(&head).await.status, StatusCode::FORBIDDEN);
    // HTTP/1.0 with no Host at all: nginx still routes on the request line's host (and
    // sends it upstream as Host), so the admin route applies (tests/differential.rs found
    // this judged on no host, the route skipped).
    let head = format!("GET http://{admin}/secret HTTP/1.0\r\n{reader}");
    let reply = stack.send_raw(&head).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}{}", stack.logs());
    let head = format!(
        "GET http://{admin}/secret HTTP/1.1\r\nHost: {admin}\r\nAuthorization: Bearer {}",
        stack.issuer.token("read admin")
    );
    let upstream = stack.send_raw(&head).await.upstream();
    assert_eq!(received(&upstream, "host"), [admin], "{upstream}");
}

#[tokio::test]
async fn dpop_htu_keeps_the_port_of_a_routed_host() {
    e2e::dpop_htu_keeps_the_port_of_a_routed_host(&stack().await).await;
}

#[tokio::test]
async fn methods_are_judged_as_the_upstream_acts_on_them() {
    e2e::method_readings_hold(&stack().await).await;
}

#[tokio::test]
async fn paths_are_judged_as_upstream_routers_read_them() {
    e2e::path_readings_hold(&stack().await).await;
}

#[tokio::test]
async fn downstream_token_and_delegation_reach_upstream() {
    let stack = Stack::start(&Nginx::new(), Options { extra: e2e::EXCHANGE, ..Options::default() }).await;
    e2e::downstream_token_and_delegation_reach_upstream(&stack).await;
}

#[tokio::test]
async fn a_trust_list_missing_the_gateway_fails_closed() {
    let stack = Stack::start(&Nginx::new(), Options { trusted: e2e::UNTRUSTED, ..Options::default() }).await;
    e2e::a_trust_list_missing_the_gateway_fails_closed_with(&stack, StatusCode::SERVICE_UNAVAILABLE).await;
}

/// A 401's challenges: auth_request copies the check's `WWW-Authenticate` itself, only
/// the first before nginx 1.23 (tollgate puts the one carrying the error first), all of
/// them from 1.23 on. Exactly one copy of each either way.
fn expect_challenge(reply: &Reply, first: &str) {
    let challenges = reply.challenges();
    let all = [first, DPOP];
    assert!(
        challenges == [first] || challenges == all,
        "WWW-Authenticate: expected exactly [{first:?}] (or {all:?} from nginx 1.23), got {challenges:?}; reply: {reply:?}"
    );
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test]
async fn valid_token_reaches_upstream_with_tollgate_headers() {
    let stack = stack().await;
    let reply = e2e::valid_token_reaches_upstream(&stack).await;
    // The check's own headers stay on the check.
    assert!(received(&reply.upstream(), "x-original-uri").is_empty());
    assert!(reply.all("dpop-nonce").is_empty(), "no nonce configured, none sent: {reply:?}");
}

#[tokio::test]
async fn large_claims_reach_upstream() {
    // A token near tollgate's 8 KiB limit: the client's header line needs
    // large_client_header_buffers, the check's answer proxy_buffer_size.
    let stack = stack().await;
    let padded = |pad: usize| stack.issuer.token_with(&stack.issuer.key, "read", json!({ "pad": "x".repeat(pad) }));
    let mut pad = 5000;
    let mut token = padded(pad);
    for _ in 0..4 {
        // Base64url: 3 payload bytes become 4 token characters.
        pad = (pad as i64 + (8180 - token.len() as i64) * 3 / 4) as usize;
        token = padded(pad);
    }
    assert!(token.len() > 8100 && token.len() <= 8192, "token length {}", token.len());
    let reply = stack.send("GET", "/orders", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}{}", stack.logs());
    let upstream = reply.upstream();
    assert_eq!(received(&upstream, "x-auth-subject"), ["user1"]);
    let claims = received(&upstream, "x-auth-claims");
    assert!(claims[0].len() > 6000, "X-Auth-Claims length {}", claims[0].len());
}

#[tokio::test]
async fn no_token_gets_bare_bearer_challenge() {
    let stack = stack().await;
    let reply = stack.send("GET", "/orders", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}{}", stack.logs());
    expect_challenge(&reply, r#"Bearer realm="api""#);
    let body: Value = serde_json::from_str(&reply.body).expect("JSON body");
    assert!(body["error"].is_string(), "{body}");
    assert!(reply.all("dpop-nonce").is_empty());
}

#[tokio::test]
async fn bad_token_gets_invalid_token_challenge() {
    let stack = stack().await;
    let reply = stack.send("GET", "/orders", &[("authorization", "Bearer not-a-token")]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}{}", stack.logs());
    expect_challenge(
        &reply,
        r#"Bearer realm="api", error="invalid_token", error_description="malformed access token""#,
    );

    // A well-formed token signed by a key the issuer does not publish.
    let stranger = SigningKey::rsa("k1").expect("key");
    let forged = stack.issuer.token_with(&stranger, "read", json!({}));
    let reply = stack.send("GET", "/orders", &[("authorization", &format!("Bearer {forged}"))]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    expect_challenge(&reply, r#"Bearer realm="api", error="invalid_token", error_description="invalid signature""#);
}

#[tokio::test]
async fn missing_scope_gets_403_with_insufficient_scope() {
    let stack = stack().await;
    let token = stack.token();
    let reply = stack.send("POST", "/admin/x", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}{}", stack.logs());
    let challenges = reply.challenges();
    assert_eq!(challenges.len(), 1, "one WWW-Authenticate: {challenges:?}");
    assert!(challenges[0].starts_with(r#"Bearer realm="api""#), "{challenges:?}");
    assert!(challenges[0].contains(r#"error="insufficient_scope""#), "{challenges:?}");
    assert!(challenges[0].contains(r#"scope="write:admin""#), "{challenges:?}");

    // With the scope, the same request passes, its body untouched by the bodiless check.
    let token = stack.issuer.token("read write:admin");
    let reply =
        stack.send_body("POST", "/admin/x", &[("authorization", &format!("Bearer {token}"))], r#"{"n":1}"#).await;
    let upstream = reply.upstream();
    assert_eq!(upstream[":body"], r#"{"n":1}"#);
    assert_eq!(received(&upstream, "x-auth-subject"), ["user1"]);
}

#[tokio::test]
async fn client_sent_auth_headers_never_reach_upstream() {
    let stack = stack().await;
    let token = stack.token();
    let spoofed = [("x-auth-subject", "admin"), ("x-auth-scheme", "DPoP"), ("x-auth-claims", "eyJzdWIiOiJhZG1pbiJ9")];

    // With a valid token for user1: tollgate's values replace the client's.
    let mut headers = vec![("authorization", format!("Bearer {token}"))];
    headers.extend(spoofed.iter().map(|(n, v)| (*n, (*v).to_string())));
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let upstream = stack.send("GET", "/orders", &headers).await.upstream();
    assert_eq!(received(&upstream, "x-auth-subject"), ["user1"]);
    assert_eq!(received(&upstream, "x-auth-scheme"), ["Bearer"]);
    assert_ne!(received(&upstream, "x-auth-claims"), ["eyJzdWIiOiJhZG1pbiJ9"]);

    // On a public route with no token: the headers are removed altogether.
    let upstream = stack.send("GET", "/public/status", &spoofed).await.upstream();
    assert_eq!(upstream[":uri"], "/public/status");
    for (name, _) in spoofed {
        assert!(received(&upstream, name).is_empty(), "{name} reached the upstream: {upstream}");
    }

    // A protected route with no token never reaches the upstream at all.
    let reply = stack.send("GET", "/orders", &spoofed).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
}

#[tokio::test]
async fn other_dialect_headers_change_no_decision() {
    e2e::other_dialect_headers_change_no_decision(&stack().await).await;
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let stack = stack().await;
    let token = stack.token();
    let authorization = format!("Bearer {token}");
    let reply =
        stack.send("GET", "/orders", &[("authorization", &authorization), ("authorization", &authorization)]).await;
    match reply.status {
        // nginx treats Authorization as a single header and refuses a repeat itself
        // ("client sent duplicate header line"), before auth_request runs.
        StatusCode::BAD_REQUEST => assert!(reply.challenges().is_empty(), "{reply:?}"),
        // A gateway that passed both on would get tollgate's invalid_request, as 401.
        StatusCode::UNAUTHORIZED => expect_challenge(
            &reply,
            r#"Bearer realm="api", error="invalid_request", error_description="more than one Authorization header""#,
        ),
        _ => panic!(
            "two Authorization headers: expected 400 from nginx or 401 from tollgate, got {reply:?}{}",
            stack.logs()
        ),
    }
}

#[tokio::test]
async fn invalid_request_is_401_with_challenge() {
    // `errors.invalid_request_status = 401`: auth_request would turn tollgate's 400 into 500.
    let stack = stack().await;
    let token = stack.token();
    let cases = [
        (
            format!("Bearer {token}, Bearer {token}"),
            r#"Bearer realm="api", error="invalid_request", error_description="more than one credential in the Authorization header""#,
        ),
        (
            "Bearer".to_string(),
            r#"Bearer realm="api", error="invalid_request", error_description="empty access token""#,
        ),
    ];
    for (authorization, challenge) in cases {
        let reply = stack.send("GET", "/orders", &[("authorization", &authorization)]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{authorization:?}: {reply:?}{}", stack.logs());
        expect_challenge(&reply, challenge);
    }
    // Two DPoP proofs pass nginx (it is not a single header there) and reach tollgate.
    let reply = stack
        .send("GET", "/orders", &[("authorization", &format!("DPoP {token}")), ("dpop", "a.b.c"), ("dpop", "d.e.f")])
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    let challenges = reply.challenges();
    assert!(
        challenges[0] == r#"DPoP error="invalid_request", error_description="more than one DPoP proof", algs="ES256""#,
        "{challenges:?}"
    );
}

#[tokio::test]
async fn check_that_cannot_decide_is_503_with_retry_after() {
    // No issuer keys: tollgate answers the check 503, which auth_request turns into 500,
    // which the shipped config answers as a 503 the client may retry.
    let stack =
        Stack::start(&Nginx::new(), Options { jwks: JwksMode::Fail, wait_keys: false, ..Options::default() }).await;
    let token = stack.token();
    let reply = stack.send("GET", "/orders", &[("authorization", &format!("Bearer {token}"))]).await;
    expect_unavailable(&stack, &reply);
}

#[tokio::test]
async fn tollgate_unreachable_is_503_with_retry_after_not_an_html_500() {
    let mut stack = stack().await;
    stack.stop_tollgate();
    let reply = stack.send("GET", "/orders", &[("authorization", &format!("Bearer {}", stack.token()))]).await;
    expect_unavailable(&stack, &reply);
}

fn expect_unavailable(stack: &Stack, reply: &Reply) {
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}{}", stack.logs());
    assert_eq!(reply.all("retry-after"), ["5"], "{reply:?}");
    assert!(reply.challenges().is_empty(), "{reply:?}");
    assert_eq!(reply.error().as_deref(), Some("temporarily_unavailable"), "{reply:?}");
}

#[test]
fn shipped_tollgate_toml_matches_the_nginx_example() {
    let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx/tollgate.toml"));
    let config = tollgate::config::Config::load(text, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.listen.to_string(), nginx::SHIPPED_TOLLGATE, "tollgate.toml listens where tollgate.conf points");
    assert_eq!(config.proxy.gateway, tollgate::config::Gateway::Nginx);
    assert_eq!(config.errors.invalid_request_status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn check_location_is_internal() {
    let stack = stack().await;
    let reply = stack.send("GET", "/_tollgate", &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");
}

// ---------------------------------------------------------------------------------------
// DPoP through nginx: the proof names the URL the client used, which tollgate rebuilds
// from the shipped config's X-Forwarded-Proto, X-Forwarded-Host and X-Original-URI.

/// The first `WWW-Authenticate` the client got starts with `prefix`.
fn expect_first_challenge(reply: &Reply, prefix: &str) {
    let challenges = reply.challenges();
    assert!(challenges.first().is_some_and(|c| c.starts_with(prefix)), "expected {prefix:?} first, got {challenges:?}");
}

async fn dpop_send(stack: &Stack, path: &str, token: &str, proof: &str) -> Reply {
    let auth = format!("DPoP {token}");
    stack.send("GET", path, &[("authorization", &auth), ("dpop", proof)]).await
}

#[tokio::test]
async fn a_valid_dpop_request_reaches_the_upstream() {
    let stack = stack().await;
    let token = stack.issuer.bound_token("read");
    let proof = stack.issuer.proof("GET", &stack.url("/orders?page=2"), &token);
    let reply = dpop_send(&stack, "/orders?page=2", &token, &proof).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", stack.logs());
    assert_eq!(received(&reply.upstream(), "x-auth-scheme"), vec!["DPoP"]);
    assert_eq!(received(&reply.upstream(), "x-auth-subject"), vec!["user1"]);
}

#[tokio::test]
async fn replayed_wrong_url_and_bearer_used_bound_tokens_get_401_with_the_dpop_challenge() {
    let stack = stack().await;
    let token = stack.issuer.bound_token("read");
    let proof = stack.issuer.proof("GET", &stack.url("/orders"), &token);
    assert_eq!(dpop_send(&stack, "/orders", &token, &proof).await.status, StatusCode::OK);

    let replayed = dpop_send(&stack, "/orders", &token, &proof).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    expect_first_challenge(&replayed, "DPoP error=\"invalid_dpop_proof\", error_description=\"DPoP proof replayed\"");

    let elsewhere = stack.issuer.proof("GET", &stack.url("/other"), &token);
    let wrong_url = dpop_send(&stack, "/orders", &token, &elsewhere).await;
    assert_eq!(wrong_url.status, StatusCode::UNAUTHORIZED);
    expect_first_challenge(
        &wrong_url,
        "DPoP error=\"invalid_dpop_proof\", error_description=\"DPoP proof htu mismatch\"",
    );

    let as_bearer = stack.send("GET", "/orders", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(as_bearer.status, StatusCode::UNAUTHORIZED);
    expect_first_challenge(
        &as_bearer,
        "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"DPoP-bound token sent as a Bearer token\"",
    );
}

#[tokio::test]
async fn with_nonces_on_the_client_sees_dpop_nonce_and_succeeds_with_it() {
    let stack = Stack::start(&Nginx::new(), Options { extra: e2e::NONCES, ..Options::default() }).await;
    let token = stack.issuer.bound_token("read");
    let first = dpop_send(&stack, "/orders", &token, &stack.issuer.proof("GET", &stack.url("/orders"), &token)).await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    expect_first_challenge(&first, "DPoP error=\"use_dpop_nonce\"");
    let nonce = first.all("dpop-nonce").into_iter().next().expect("DPoP-Nonce at the client");
    let proof =
        support::ProofBuilder::new(&stack.issuer.client_key, "GET", &stack.url("/orders"), &token, support::now())
            .claim("nonce", json!(nonce))
            .sign();
    let ok = dpop_send(&stack, "/orders", &token, &proof).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", stack.logs());
    assert_eq!(ok.all("dpop-nonce").len(), 1, "the next nonce reaches the client on success");
}
