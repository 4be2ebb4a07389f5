//! Several issuers (`[[issuers]]`): the token's `iss` picks one before any key lookup,
//! each with its own keys, audiences and readiness; route `issuers`; an unknown `iss`
//! costs no fetch. Two real mock issuers on loopback, the real router.

mod support;

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use support::*;
use tollgate::clock::{Clock, ManualClock};
use tollgate::config::Config;
use tollgate::decision::Checker;
use tollgate::signing::SigningKey;

const PARTNER_AUDIENCE: &str = "https://partners-api.example.com";

struct Two {
    app: TestApp,
    partner: MockIssuer,
    partner_key: SigningKey,
}

/// Issuer A (the app's own mock, audience AUDIENCE) and issuer B (the partner, its own key
/// and audience); `/partners` admits only B's tokens.
async fn two(partner_jwks: JwksMode) -> Two {
    let key = SigningKey::rsa("a-1").unwrap();
    let own = MockIssuer::start(&[&key]).await;
    let partner_key = SigningKey::rsa("b-1").unwrap();
    let partner = MockIssuer::start(&[&partner_key]).await;
    partner.set_mode(partner_jwks);
    let text = format!(
        r#"
[[issuers]]
url = "{a}"
audience = "{AUDIENCE}"

[[issuers]]
url = "{b}"
audience = ["{PARTNER_AUDIENCE}"]

[proxy]
gateway = "envoy"

[[routes]]
path_prefix = "/partners"
issuers = ["{b}"]
"#,
        a = own.issuer(),
        b = partner.issuer()
    );
    let config = Config::load(&text, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(ManualClock::new(now()));
    let checker = Checker::from_config(config, fast_timings(), clock.clone() as Arc<dyn Clock>).expect("checker");
    for issuer in checker.issuers() {
        let _ = issuer.refresh().await;
    }
    let app = TestApp { issuer: own, key, checker, clock, peer: "127.0.0.1:40000".parse().unwrap() };
    Two { app, partner, partner_key }
}

impl Two {
    fn partner_token(&self) -> TokenBuilder<'_> {
        self.partner.token(&self.partner_key, self.app.now()).claim("aud", json!(PARTNER_AUDIENCE))
    }
}

async fn get(app: &TestApp, path: &str, token: &str) -> Answer {
    app.get(path, &[("authorization", &format!("Bearer {token}"))]).await
}

#[tokio::test]
async fn each_issuer_verifies_its_own_tokens_with_its_own_keys_and_audiences() {
    let two = two(JwksMode::Serve).await;
    let app = &two.app;
    assert_eq!(get(app, "/orders", &app.token().sign()).await.status, StatusCode::OK);
    let answer = get(app, "/orders", &two.partner_token().sign()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    // B's audience is B's: a token of A naming it is refused, and the other way round.
    get(app, "/orders", &app.token().claim("aud", json!(PARTNER_AUDIENCE)).sign())
        .await
        .assert_invalid_token("wrong audience");
    get(app, "/orders", &two.partner_token().claim("aud", json!(AUDIENCE)).sign())
        .await
        .assert_invalid_token("wrong audience");
    // A token naming B but signed with A's key: B's keys decide.
    let forged = TokenBuilder::new(&app.key, &two.partner.issuer(), app.now()).claim("aud", json!(PARTNER_AUDIENCE));
    get(app, "/orders", &forged.sign()).await.assert_invalid_token("unknown signing key");
}

#[tokio::test]
async fn an_unknown_iss_is_refused_without_any_fetch() {
    let two = two(JwksMode::Serve).await;
    let app = &two.app;
    let before = [
        app.issuer.jwks_fetches() + app.issuer.discovery_fetches(),
        two.partner.jwks_fetches() + two.partner.discovery_fetches(),
    ];
    let stranger =
        TokenBuilder::new(&app.key, "https://stranger.example.com/", app.now()).header("kid", json!("new-kid"));
    get(app, "/orders", &stranger.sign()).await.assert_invalid_token("wrong issuer");
    for bad in [
        app.token().without("iss").sign(),
        app.token().claim("iss", json!(7)).sign(),
        app.token().raw_payload("[1]").sign(),
    ] {
        assert_eq!(get(app, "/orders", &bad).await.status, StatusCode::UNAUTHORIZED);
    }
    let after = [
        app.issuer.jwks_fetches() + app.issuer.discovery_fetches(),
        two.partner.jwks_fetches() + two.partner.discovery_fetches(),
    ];
    assert_eq!(after, before, "no issuer was asked for keys");
}

#[tokio::test]
async fn an_issuer_that_is_down_answers_503_for_its_own_tokens_only() {
    let two = two(JwksMode::Fail).await;
    let app = &two.app;
    assert_eq!(get(app, "/orders", &app.token().sign()).await.status, StatusCode::OK);
    let answer = get(app, "/orders", &two.partner_token().sign()).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header("retry-after"), Some("5"));
    // Not ready until every issuer has keys; the answer names the one without.
    let ready = app.send(request("GET", "/readyz", &[])).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.body.contains(&two.partner.issuer()) && !ready.body.contains(&app.issuer.issuer()), "{}", ready.body);
    let metrics = app.send(request("GET", "/metrics", &[])).await.body;
    let own_keys = format!("tollgate_issuer_keys{{issuer=\"{}\"}} 1", app.issuer.issuer());
    let partner_failures = format!("tollgate_jwks_fetch_failures_total{{issuer=\"{}\"}} 1", two.partner.issuer());
    assert!(metrics.contains(&own_keys) && metrics.contains(&partner_failures), "{metrics}");
    // The key set's age is known for the issuer that has keys, and only for it.
    let age = |issuer: &str| format!("tollgate_issuer_keys_age_seconds{{issuer=\"{issuer}\"}}");
    assert!(metrics.contains(&age(&app.issuer.issuer())), "{metrics}");
    assert!(!metrics.contains(&age(&two.partner.issuer())), "{metrics}");

    two.partner.set_mode(JwksMode::Serve);
    app.checker.issuers()[1].refresh().await.unwrap();
    assert_eq!(app.send(request("GET", "/readyz", &[])).await.status, StatusCode::OK);
    assert_eq!(get(app, "/orders", &two.partner_token().sign()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_route_with_issuers_admits_only_their_tokens() {
    let two = two(JwksMode::Serve).await;
    let app = &two.app;
    assert_eq!(get(app, "/partners/x", &two.partner_token().sign()).await.status, StatusCode::OK);
    let answer = get(app, "/partners/x", &app.token().sign()).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.challenges()[0],
        r#"Bearer realm="api", error="insufficient_scope", error_description="issuer not allowed""#
    );
    // A cached token keeps the issuer that verified it.
    let answer = get(app, "/partners/x", &app.token().sign()).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[test]
fn issuers_are_configured_one_way_or_the_other() {
    let base = "[proxy]\ngateway = \"nginx\"\n";
    let one = "[issuer]\nurl = \"https://a.example/\"\naudience = \"x\"\n";
    let many = "[[issuers]]\nurl = \"https://a.example/\"\naudience = \"x\"\n[[issuers]]\ndomain = \"b.example\"\naudience = \"y\"\n";
    let both = Config::load(&format!("{one}{many}{base}"), &Default::default()).unwrap_err().to_string();
    assert!(both.contains("issuers: set [issuer] or [[issuers]], not both"), "{both}");
    let config = Config::load(&format!("{many}{base}"), &Default::default()).unwrap();
    let names: Vec<&str> = config.issuers.iter().map(|i| i.issuer.as_str()).collect();
    assert_eq!(names, ["https://a.example/", "https://b.example/"]);
    let twice = "[[issuers]]\nurl = \"https://a.example/\"\naudience = \"x\"\n[[issuers]]\ndomain = \"a.example\"\naudience = \"y\"\n";
    let error = Config::load(&format!("{twice}{base}"), &Default::default()).unwrap_err().to_string();
    assert!(error.contains("issuers[1]: the same issuer as issuers[0]"), "{error}");
    let bad_entry = "[[issuers]]\nurl = \"https://a.example/\"\n";
    let error = Config::load(&format!("{bad_entry}{base}"), &Default::default()).unwrap_err().to_string();
    assert!(error.contains("issuers[0].audience"), "{error}");
    let route = "[[routes]]\npath_prefix = \"/p\"\nissuers = [\"https://c.example/\"]\n";
    let error = Config::load(&format!("{many}{base}{route}"), &Default::default()).unwrap_err().to_string();
    assert!(error.contains("routes[0].issuers") && error.contains("not a configured issuer"), "{error}");
    let none = Config::load(base, &Default::default()).unwrap_err().to_string();
    assert!(none.contains("issuer"), "{none}");
}
