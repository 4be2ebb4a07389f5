//! Downstream tokens through the real router and a real mock token endpoint on loopback
//! (discovered from the mock issuer): the exact form fields and client authentication of
//! each grant, the cache (hits, expiry, the incoming token's `exp`, single flight), and
//! every failure answered as the contract's table says.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::*;
use tollgate::signing::SigningKey;

const CLIENT_ID: &str = "tollgate-client";
const SECRET: &str = "s3cr3t:with spaces&more";

fn client(auth: &str) -> String {
    format!("[client]\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{SECRET}\"\nauth = \"{auth}\"\ntimeout = 0.5\n")
}

const ROUTES: &str = r#"
[[routes]]
path_prefix = "/calendar"
exchange = { audience = "https://calendar-api.example.com", scope = "calendar:read", header = "X-Auth-Downstream-Token" }

[[routes]]
path_prefix = "/profile"
exchange = { subject_token_type = "urn:acme:mcp", audience = "https://legacy.example.com", scope = "read", requested_token_type = "urn:acme:legacy", extra = { region = "eu", device = ["d1", "d2"] } }

[[routes]]
path_prefix = "/google"
exchange = { connection = "google-oauth2", header = "X-Auth-Connection-Token" }

[[routes]]
path_prefix = "/plain"
"#;

async fn app(client_toml: &str) -> TestApp {
    TestApp::new(&format!("{ROUTES}\n{client_toml}")).await
}

async fn get(app: &TestApp, path: &str, token: &str) -> Answer {
    app.get(path, &[("authorization", &format!("Bearer {token}"))]).await
}

/// The form fields of the one call made, sorted by name, with the client credentials left out.
fn grant_fields(call: &TokenCall) -> Vec<(String, String)> {
    let client = ["client_id", "client_secret", "client_assertion", "client_assertion_type"];
    let mut fields: Vec<(String, String)> =
        call.form.iter().filter(|(n, _)| !client.contains(&n.as_str())).cloned().collect();
    fields.sort();
    fields
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    v.sort();
    v
}

#[tokio::test]
async fn each_grant_sends_exactly_its_form_fields() {
    let app = app(&client("client_secret_post")).await;
    let token = app.token().sign();

    let answer = get(&app, "/calendar/events", &token).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header("x-auth-downstream-token"), Some("downstream-1"));
    let answer = get(&app, "/profile", &token).await;
    assert_eq!(answer.header("x-auth-downstream-token"), Some("downstream-2"));
    let answer = get(&app, "/google/mail", &token).await;
    assert_eq!(answer.header("x-auth-connection-token"), Some("downstream-3"));
    // A route without exchange: no call, no header.
    let answer = get(&app, "/plain", &token).await;
    assert_eq!(answer.header("x-auth-downstream-token"), None);

    let calls = app.issuer.token_calls();
    assert_eq!(calls.len(), 3);
    let access = "urn:ietf:params:oauth:token-type:access_token";
    let exchange = "urn:ietf:params:oauth:grant-type:token-exchange";
    assert_eq!(
        grant_fields(&calls[0]),
        pairs(&[
            ("grant_type", exchange),
            ("subject_token", &token),
            ("subject_token_type", access),
            ("requested_token_type", access),
            ("audience", "https://calendar-api.example.com"),
            ("scope", "calendar:read"),
        ])
    );
    assert_eq!(
        grant_fields(&calls[1]),
        pairs(&[
            ("grant_type", exchange),
            ("subject_token", &token),
            ("subject_token_type", "urn:acme:mcp"),
            ("requested_token_type", "urn:acme:legacy"),
            ("audience", "https://legacy.example.com"),
            ("scope", "read"),
            ("device", "d1"),
            ("device", "d2"),
            ("region", "eu"),
        ])
    );
    assert_eq!(
        grant_fields(&calls[2]),
        pairs(&[
            ("grant_type", "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"),
            ("subject_token", &token),
            ("subject_token_type", access),
            ("requested_token_type", "http://auth0.com/oauth/token-type/federated-connection-access-token"),
            ("connection", "google-oauth2"),
        ])
    );
    for call in &calls {
        assert_eq!(call.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
        // client_secret_post: the credentials in the body, no Authorization header.
        assert_eq!(call.field("client_id"), [CLIENT_ID]);
        assert_eq!(call.field("client_secret"), [SECRET]);
        assert_eq!(call.authorization, None);
    }
}

#[tokio::test]
async fn client_secret_basic_sends_the_credentials_in_authorization() {
    let app = app(&client("client_secret_basic")).await;
    let token = app.token().sign();
    get(&app, "/calendar", &token).await;
    get(&app, "/google", &token).await;
    let calls = app.issuer.token_calls();
    use base64::Engine as _;
    // RFC 6749 §2.3.1: each part form-urlencoded, then Basic.
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("tollgate-client:s3cr3t%3Awith+spaces%26more")
    );
    for call in &calls {
        assert_eq!(call.authorization.as_deref(), Some(expected.as_str()));
        assert!(call.field("client_secret").is_empty());
    }
    // On-behalf-of names the client only in Authorization; the token vault also in the form,
    // as the seed sends it.
    assert!(calls[0].field("client_id").is_empty());
    assert_eq!(calls[1].field("client_id"), [CLIENT_ID]);
}

#[tokio::test]
async fn private_key_jwt_sends_a_verifiable_assertion_and_no_secret() {
    let dir = TempDir::new("exchange");
    let key = SigningKey::rsa("client-key").unwrap();
    let path = dir.path().join("client.pem");
    std::fs::write(&path, key.to_pem().unwrap()).unwrap();
    let toml = format!(
        "[client]\nclient_id = \"{CLIENT_ID}\"\nauth = \"private_key_jwt\"\nprivate_key_file = \"{}\"\nalgorithm = \"RS256\"\n",
        path.display()
    );
    let app = app(&toml).await;
    let answer = get(&app, "/calendar", &app.token().sign()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let call = &app.issuer.token_calls()[0];
    assert_eq!(call.authorization, None);
    assert!(call.field("client_secret").is_empty());
    assert_eq!(call.field("client_id"), [CLIENT_ID]);
    assert_eq!(call.field("client_assertion_type"), ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]);
    let assertion = call.field("client_assertion")[0];

    // Verified independently with jsonwebtoken and the client's public key (RFC 7523 §3).
    let jwk = key.public_jwk();
    let decoding =
        jsonwebtoken::DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[app.issuer.token_endpoint()]);
    validation.set_issuer(&[CLIENT_ID]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &decoding, &validation).expect("a valid assertion").claims;
    assert_eq!(claims["sub"], CLIENT_ID);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!((1..=300).contains(&lifetime), "{lifetime}");
    // A second call signs a new assertion (a fresh jti).
    get(&app, "/profile", &app.token().sign()).await;
    assert_ne!(app.issuer.token_calls()[1].field("client_assertion")[0], assertion);
}

#[tokio::test]
async fn the_secret_may_come_from_a_file() {
    let dir = TempDir::new("exchange");
    let path = dir.path().join("secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    let toml = format!("[client]\nclient_id = \"{CLIENT_ID}\"\nclient_secret_file = \"{}\"\n", path.display());
    let app = app(&toml).await;
    get(&app, "/calendar", &app.token().sign()).await;
    assert_eq!(app.issuer.token_calls()[0].field("client_secret"), [SECRET]);
}

#[tokio::test]
async fn a_cached_exchange_makes_no_call_until_shortly_before_it_expires() {
    let app = app(&client("client_secret_post")).await;
    app.issuer.set_token_mode(TokenMode::Issue { expires_in: 600 });
    let token = app.token().claim("exp", json!(app.now() + 7200)).sign();
    for _ in 0..3 {
        assert_eq!(get(&app, "/calendar", &token).await.header("x-auth-downstream-token"), Some("downstream-1"));
    }
    assert_eq!(app.issuer.token_calls().len(), 1);
    // The same token on another route is another exchange.
    get(&app, "/profile", &token).await;
    assert_eq!(app.issuer.token_calls().len(), 2);
    // 600 s with a 60 s margin: still served at 539 s, renewed at 540 s.
    app.clock.advance(539);
    assert_eq!(get(&app, "/calendar", &token).await.header("x-auth-downstream-token"), Some("downstream-1"));
    app.clock.advance(1);
    assert_eq!(get(&app, "/calendar", &token).await.header("x-auth-downstream-token"), Some("downstream-3"));
    let metrics = app.checker.metrics().render();
    assert!(metrics.contains("tollgate_exchange_cache_hits_total 3"), "{metrics}");
    assert!(metrics.contains("tollgate_exchange_cache_misses_total 3"), "{metrics}");
    assert!(metrics.contains(r#"tollgate_exchanges_total{outcome="ok"} 3"#), "{metrics}");
}

#[tokio::test]
async fn a_downstream_token_is_never_served_past_the_incoming_tokens_exp() {
    // With leeway the incoming token is accepted a minute past its exp; its exchange is not.
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let text = config_text(&issuer.issuer(), "envoy", &format!("{ROUTES}\n{}", client("client_secret_post")))
        .replace("[issuer]\n", "[issuer]\nleeway = 60\n");
    let config = tollgate::config::Config::load(&text, &Default::default()).unwrap();
    let app = TestApp::from_config(issuer, key, config, fast_timings()).await;
    let token = app.token().claim("exp", json!(app.now() + 100)).sign();
    assert_eq!(get(&app, "/calendar", &token).await.header("x-auth-downstream-token"), Some("downstream-1"));
    app.clock.advance(99);
    assert_eq!(get(&app, "/calendar", &token).await.header("x-auth-downstream-token"), Some("downstream-1"));
    app.clock.advance(31);
    let answer = get(&app, "/calendar", &token).await;
    assert_eq!(answer.status, StatusCode::OK, "accepted within leeway: {}", answer.body);
    assert_eq!(answer.header("x-auth-downstream-token"), Some("downstream-2"));
}

#[tokio::test]
async fn fifty_concurrent_checks_of_one_token_make_one_call() {
    let app = Arc::new(app(&client("client_secret_post")).await);
    app.issuer.set_token_delay(Duration::from_millis(300));
    let token = app.token().sign();
    let checks: Vec<_> = (0..50)
        .map(|_| {
            let (app, token) = (app.clone(), token.clone());
            tokio::spawn(async move { get(&app, "/calendar", &token).await })
        })
        .collect();
    for check in checks {
        let answer = check.await.unwrap();
        assert_eq!(answer.header("x-auth-downstream-token"), Some("downstream-1"), "{}", answer.body);
    }
    assert_eq!(app.issuer.token_calls().len(), 1);
}

#[tokio::test]
async fn a_refused_grant_is_403_exchange_refused_without_a_challenge() {
    let app = app(&client("client_secret_post")).await;
    app.issuer.set_token_mode(TokenMode::Refuse("invalid_grant".into()));
    let answer = get(&app, "/calendar", &app.token().sign()).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.challenges().is_empty(), "{:?}", answer.headers);
    assert_eq!(answer.body, r#"{"error":"exchange_refused","error_description":"invalid_grant"}"#.to_string() + "\n");
    assert_eq!(answer.header("x-auth-downstream-token"), None);
}

#[tokio::test]
async fn a_429_stops_every_call_until_its_retry_after_has_passed() {
    let app = app(&client("client_secret_post")).await;
    app.issuer.set_token_mode(TokenMode::RateLimit(30));
    let answer = get(&app, "/calendar", &app.token().sign()).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header("retry-after"), Some("30"));
    assert_eq!(answer.header("x-auth-downstream-token"), None);
    // Other tokens and other routes wait too: no call before the time is up.
    app.issuer.set_token_mode(TokenMode::Issue { expires_in: 3600 });
    app.clock.advance(10);
    let answer = get(&app, "/profile", &app.token().claim("sub", json!("user2")).sign()).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header("retry-after"), Some("20"));
    assert_eq!(app.issuer.token_calls().len(), 1);
    app.clock.advance(20);
    assert_eq!(get(&app, "/profile", &app.token().sign()).await.status, StatusCode::OK);
    assert_eq!(app.issuer.token_calls().len(), 2);
}

#[tokio::test]
async fn an_endpoint_that_fails_is_503_and_never_a_200_without_the_header() {
    for mode in [TokenMode::Fail, TokenMode::Malformed, TokenMode::Hang] {
        let app = app(&client("client_secret_post")).await;
        app.issuer.set_token_mode(mode.clone());
        let answer = get(&app, "/calendar", &app.token().sign()).await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{mode:?}: {}", answer.body);
        assert_eq!(answer.header("retry-after"), Some("5"), "{mode:?}");
        assert_eq!(answer.error().as_deref(), Some("temporarily_unavailable"), "{mode:?}");
        let metrics = app.checker.metrics().render();
        assert!(metrics.contains(r#"tollgate_exchanges_total{outcome="unavailable"} 1"#), "{mode:?}: {metrics}");
    }
}

#[tokio::test]
async fn a_failure_is_remembered_a_moment_then_retried() {
    let app = app(&client("client_secret_post")).await;
    app.issuer.set_token_mode(TokenMode::Fail);
    let token = app.token().sign();
    assert_eq!(get(&app, "/calendar", &token).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(get(&app, "/calendar", &token).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.issuer.token_calls().len(), 1, "a burst against a failing endpoint makes one call");
    app.issuer.set_token_mode(TokenMode::Issue { expires_in: 3600 });
    app.clock.advance(1);
    assert_eq!(get(&app, "/calendar", &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_refused_check_never_calls_the_token_endpoint() {
    let app = app(&client("client_secret_post")).await;
    assert_eq!(app.get("/calendar", &[]).await.status, StatusCode::UNAUTHORIZED);
    get(&app, "/calendar", "not-a-token").await;
    assert!(app.issuer.token_calls().is_empty());
}

/// The real binary at debug level, through success, refusal, 429, failure and a hang:
/// the client secret, the private key and the exchanged tokens appear in no log line, no
/// answer body, `/metrics` or `tollgate check` output.
#[tokio::test]
async fn secrets_and_exchanged_tokens_never_reach_logs_bodies_metrics_or_check() {
    use std::process::Command;
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let dir = TempDir::new("exchange-leak");
    let client_key = SigningKey::rsa("client").unwrap();
    let pem = client_key.to_pem().unwrap();
    let pem_line = pem.lines().nth(3).unwrap().to_string();
    std::fs::write(dir.path().join("client.pem"), &pem).unwrap();
    let secret = "leak-canary-7c1e9b";
    let mut outputs = String::new();
    for client in [
        format!(
            "[client]\nclient_id = \"c\"\nclient_secret = \"{secret}\"\nauth = \"client_secret_basic\"\ntimeout = 0.5\n"
        ),
        format!(
            "[client]\nclient_id = \"c\"\nauth = \"private_key_jwt\"\nprivate_key_file = \"{}\"\ntimeout = 0.5\n",
            dir.path().join("client.pem").display()
        ),
    ] {
        let port = free_port();
        let extra = format!("listen = \"127.0.0.1:{port}\"\n{ROUTES}\n[log]\nlevel = \"debug\"\n{client}");
        let path = dir.path().join("tollgate.toml");
        std::fs::write(&path, config_text(&issuer.issuer(), "envoy", &extra)).unwrap();
        let check =
            Command::new(env!("CARGO_BIN_EXE_tollgate")).args(["check", "--config"]).arg(&path).output().unwrap();
        assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
        outputs.push_str(&String::from_utf8_lossy(&check.stdout));
        let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command.args(["serve", "--config"]).arg(&path);
        let mut child = spawn("tollgate", command, dir.path().join("tollgate.log"));
        let http = reqwest::Client::new();
        assert!(wait_until_ok(&mut child, &http, &format!("http://127.0.0.1:{port}/readyz")).await);
        for mode in [
            TokenMode::Issue { expires_in: 3600 },
            TokenMode::Refuse("invalid_grant".into()),
            TokenMode::RateLimit(1),
            TokenMode::Fail,
            TokenMode::Malformed,
            TokenMode::Hang,
        ] {
            issuer.set_token_mode(mode);
            tokio::time::sleep(Duration::from_millis(1100)).await; // past the 429 and failure pauses
            let token =
                issuer.token(&key, now()).claim("jti", json!(format!("{:?}", std::time::Instant::now()))).sign();
            for path in ["/calendar", "/profile", "/google"] {
                let url = format!("http://127.0.0.1:{port}/auth{path}");
                let response = http.get(&url).bearer_auth(&token).send().await.unwrap();
                let status = response.status();
                let body = response.text().await.unwrap();
                outputs.push_str(&format!("{status} {body}\n"));
            }
        }
        outputs.push_str(
            &http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap().text().await.unwrap(),
        );
        drop(child);
        outputs.push_str(&std::fs::read_to_string(dir.path().join("tollgate.log")).unwrap_or_default());
    }
    let issued = issuer.token_calls().len();
    assert!(issued >= 6, "the run exercised the token endpoint ({issued} calls)");
    assert!(
        outputs.contains("token exchange") || outputs.contains("token endpoint"),
        "debug logs were captured:\n{outputs}"
    );
    let tokens: Vec<String> = (1..=issued).map(|n| format!("downstream-{n}")).collect();
    for canary in [secret, pem_line.as_str()].into_iter().chain(tokens.iter().map(String::as_str)) {
        assert!(!outputs.contains(canary), "{canary:?} leaked:\n{outputs}");
    }
}

/// 1,000 concurrent first requests carrying 100 distinct tokens: exactly 100 calls.
#[tokio::test]
async fn a_thousand_concurrent_first_requests_of_a_hundred_tokens_make_a_hundred_calls() {
    let app = Arc::new(app(&client("client_secret_post")).await);
    app.issuer.set_token_delay(Duration::from_millis(100));
    let tokens: Vec<String> = (0..100).map(|n| app.token().claim("sub", json!(format!("user-{n}"))).sign()).collect();
    let checks: Vec<_> = (0..1000)
        .map(|i| {
            let (app, token) = (app.clone(), tokens[i % 100].clone());
            tokio::spawn(async move { get(&app, "/calendar", &token).await.status })
        })
        .collect();
    for check in checks {
        assert_eq!(check.await.unwrap(), StatusCode::OK);
    }
    let calls = app.issuer.token_calls();
    assert_eq!(calls.len(), 100);
    let mut subjects: Vec<&str> = calls.iter().map(|c| c.field("subject_token")[0]).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 100, "one call per token");
}
