//! Issuer keys over real HTTP: discovery, rotation, outages, garbage, the unknown-kid rate
//! limit and start-up without keys (research rows 101–111, scenarios S1–S6).

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;
use support::*;
use tollgate::clock::{Clock, ManualClock};
use tollgate::config::Config;
use tollgate::decision::Checker;
use tollgate::signing::SigningKey;

#[tokio::test]
async fn a_new_key_is_fetched_once_when_a_token_names_it() {
    let app = TestApp::new("").await;
    let fetches = app.issuer.jwks_fetches();
    let k2 = SigningKey::rsa("k2").unwrap();
    app.issuer.add_key(&k2);
    let token = app.issuer.token(&k2, app.now()).sign();
    assert_eq!(app.bearer(&token).await.status, StatusCode::OK);
    assert_eq!(app.issuer.jwks_fetches(), fetches + 1);
    // The old key still works.
    assert_eq!(app.bearer(&app.token().sign()).await.status, StatusCode::OK);
    assert_eq!(app.issuer.jwks_fetches(), fetches + 1);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_causes_at_most_one_refetch_per_cooldown() {
    let app = TestApp::new("").await;
    let fetches = app.issuer.jwks_fetches();
    for i in 0..100 {
        let token = app.token().header("kid", json!(format!("random-{i}"))).sign();
        app.bearer(&token).await.assert_invalid_token("unknown signing key");
    }
    assert_eq!(app.issuer.jwks_fetches(), fetches + 1);
    // Valid traffic is unaffected.
    assert_eq!(app.bearer(&app.token().sign()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_issuer_is_down() {
    let app = TestApp::new("").await;
    app.issuer.set_mode(JwksMode::Fail);
    app.issuer.set_discovery_up(false);
    assert!(app.checker.issuer().refresh().await.is_err());
    // A token never seen before still verifies with the kept keys.
    let fresh = app.token().claim("jti", json!("fresh")).sign();
    assert_eq!(app.bearer(&fresh).await.status, StatusCode::OK);
    let issuer = app.issuer.issuer();
    assert_eq!(app.checker.metrics().jwks_fetch_failures.with_label_values(&[issuer.as_str()]).get(), 1);
    let ready = app.send(request("GET", "/readyz", &[])).await;
    assert_eq!(ready.status, StatusCode::OK);
}

#[tokio::test]
async fn garbage_key_sets_keep_the_previous_keys() {
    let app = TestApp::new("").await;
    for body in
        ["<html>oops</html>", "{\"keys\":[", "{}", "{\"keys\":{}}", "{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2VjcmV0\"}]}"]
    {
        app.issuer.set_mode(JwksMode::Body(body.into()));
        assert!(app.checker.issuer().refresh().await.is_err(), "{body}");
        let token = app.token().claim("jti", json!(body)).sign();
        assert_eq!(app.bearer(&token).await.status, StatusCode::OK, "{body}");
    }
}

#[tokio::test]
async fn an_oversized_key_set_is_refused_and_the_previous_keys_kept() {
    let app = TestApp::new("").await;
    app.issuer.set_mode(JwksMode::Body(format!("{{\"keys\":[],\"pad\":\"{}\"}}", "x".repeat(2 * 1024 * 1024))));
    let error = app.checker.issuer().refresh().await.unwrap_err();
    assert!(error.to_string().contains("larger than"), "{error}");
    assert_eq!(app.bearer(&app.token().sign()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_hanging_issuer_is_abandoned_at_the_timeout() {
    let app = TestApp::new("").await;
    app.issuer.set_mode(JwksMode::Hang);
    let started = std::time::Instant::now();
    let error = app.checker.issuer().refresh().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "timeout is 500 ms in fast_timings");
    assert!(error.to_string().ends_with(": timed out"), "{error}");
    assert_eq!(app.bearer(&app.token().sign()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_fetch_failure_names_its_cause_and_the_url_once() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let config = Config::load(&config_text(&url, "envoy", ""), &Default::default()).unwrap();
    let checker = Checker::from_config(config, fast_timings(), Arc::new(ManualClock::new(now())) as Arc<dyn Clock>)
        .expect("checker");
    let error = checker.issuer().refresh().await.unwrap_err().to_string();
    assert!(error.contains("cannot connect: Connection refused"), "{error}");
    assert_eq!(error.matches(&url).count(), 1, "{error}");

    let app = TestApp::new("").await;
    app.issuer.set_mode(JwksMode::Fail);
    let error = app.checker.issuer().refresh().await.unwrap_err().to_string();
    assert!(error.ends_with("jwks: status 500"), "{error}");
}

#[tokio::test]
async fn a_removed_key_purges_the_tokens_it_signed_from_the_cache() {
    let app = TestApp::new("").await;
    let token = app.token().sign();
    assert_eq!(app.bearer(&token).await.status, StatusCode::OK);
    let k2 = SigningKey::rsa("k2").unwrap();
    app.issuer.set_keys(vec![k2.public_jwk()]);
    app.checker.issuer().refresh().await.unwrap();
    assert!(app.checker.cache().is_empty());
    app.bearer(&token).await.assert_invalid_token("unknown signing key");
}

#[tokio::test]
async fn concurrent_refreshes_share_one_fetch() {
    let app = TestApp::new("").await;
    let fetches = app.issuer.jwks_fetches();
    let issuer = app.checker.issuer().clone();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            tokio::spawn({
                let issuer = issuer.clone();
                async move { issuer.refresh().await.is_ok() }
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert!(app.issuer.jwks_fetches() - fetches <= 2, "fetches: {}", app.issuer.jwks_fetches() - fetches);
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    issuer.set_discovery_issuer("https://other.example/");
    let config = Config::load(&config_text(&issuer.issuer(), "envoy", ""), &Default::default()).unwrap();
    let checker = Checker::from_config(config, fast_timings(), Arc::new(ManualClock::new(now())) as Arc<dyn Clock>)
        .expect("checker");
    let error = checker.issuer().refresh().await.unwrap_err();
    assert!(error.to_string().contains("https://other.example/"), "{error}");
    assert!(checker.issuer().keys().is_none());
    assert_eq!(issuer.jwks_fetches(), 0);
}

/// An app whose checker has not loaded keys.
async fn cold_app(issuer: &MockIssuer, key: SigningKey) -> TestApp {
    let config = Config::load(&config_text(&issuer.issuer(), "envoy", ""), &Default::default()).unwrap();
    let clock = Arc::new(ManualClock::new(now()));
    let checker = Checker::from_config(config, fast_timings(), clock.clone() as Arc<dyn Clock>).expect("checker");
    TestApp { issuer: issuer.clone(), key, checker, clock, peer: "127.0.0.1:40000".parse().unwrap() }
}

#[tokio::test]
async fn without_keys_checks_get_503_and_readyz_says_not_ready_until_the_issuer_answers() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    issuer.set_discovery_up(false);
    let app = cold_app(&issuer, key).await;
    let runner = tokio::spawn(app.checker.issuer().clone().run());

    let token = app.token().sign();
    let answer = app.bearer(&token).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header("retry-after"), Some("5"));
    assert!(answer.challenges().is_empty());
    assert_eq!(answer.error().as_deref(), Some("temporarily_unavailable"));
    assert_eq!(app.send(request("GET", "/readyz", &[])).await.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.send(request("GET", "/healthz", &[])).await.status, StatusCode::OK);

    issuer.set_discovery_up(true);
    let mut ready = false;
    for _ in 0..100 {
        if app.send(request("GET", "/readyz", &[])).await.status == StatusCode::OK {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready, "ready within one backoff step of the issuer's return");
    assert_eq!(app.bearer(&token).await.status, StatusCode::OK);
    runner.abort();
}

#[tokio::test]
async fn keys_with_unusable_parameters_are_skipped_and_the_rest_used() {
    let app = TestApp::new("").await;
    let mut weak = SigningKey::rsa("weak").unwrap().public_jwk();
    weak["n"] = json!(b64(&[0xC5; 128]));
    app.issuer.set_keys(vec![app.key.public_jwk(), weak, json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"})]);
    app.checker.issuer().refresh().await.unwrap();
    assert_eq!(app.checker.issuer().keys().unwrap().len(), 1);
    assert_eq!(app.bearer(&app.token().sign()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_refresh_interval_follows_max_age_clamped_to_a_minute_and_a_day() {
    let app = TestApp::new("").await;
    let issuer = app.checker.issuer();
    assert_eq!(issuer.refresh().await.unwrap(), Duration::from_secs(600), "no Cache-Control");
    for (cache_control, expected) in [
        ("max-age=5", 60),
        ("no-store", 60),
        ("public, max-age=3600", 3600),
        ("max-age=31536000", 86400),
        ("max-age=abc", 600),
    ] {
        app.issuer.set_cache_control(cache_control);
        assert_eq!(issuer.refresh().await.unwrap(), Duration::from_secs(expected), "{cache_control}");
    }
}
