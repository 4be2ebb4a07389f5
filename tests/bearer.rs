//! Bearer checks through the real router and a real mock issuer: every refusal path gets
//! its exact status, challenge and body (CONTRACT.md "Answers"; research rows 1–55).

mod support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::*;
use tollgate::signing::SigningKey;

fn b64_json(value: &Value) -> String {
    b64(value.to_string().as_bytes())
}

#[tokio::test]
async fn a_valid_token_passes_with_subject_scheme_and_claims() {
    let app = TestApp::new("").await;
    let token = app.token().sign();
    let answer = app.bearer(&token).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("x-auth-subject"), Some("user1"));
    assert_eq!(answer.header("x-auth-scheme"), Some("Bearer"));
    let claims = tollgate::jws::decode(answer.header("x-auth-claims").unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&claims).unwrap();
    assert_eq!(claims["sub"], "user1");
    assert_eq!(claims["iss"], app.issuer.issuer());
    assert!(answer.challenges().is_empty());
}

#[tokio::test]
async fn no_credentials_get_401_with_bare_challenges_bearer_first() {
    let app = TestApp::new("").await;
    let answer = app.get("/r", &[]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenges(), vec!["Bearer realm=\"api\"", "DPoP algs=\"ES256\""]);
    assert_eq!(answer.body, r#"{"error":"unauthorized","error_description":"no access token"}"#.to_string() + "\n");
}

#[tokio::test]
async fn an_unsupported_scheme_gets_401_with_bare_challenges() {
    let app = TestApp::new("").await;
    for value in ["Basic dXNlcjpwYXNz", "Token abc"] {
        let answer = app.get("/r", &[("authorization", value)]).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.challenges(), vec!["Bearer realm=\"api\"", "DPoP algs=\"ES256\""]);
    }
}

#[tokio::test]
async fn the_scheme_is_case_insensitive() {
    let app = TestApp::new("").await;
    let token = app.token().sign();
    for scheme in ["bearer", "BEARER", "Bearer  "] {
        let answer = app.get("/r", &[("authorization", &format!("{scheme} {token}"))]).await;
        assert_eq!(answer.status, StatusCode::OK, "{scheme}");
    }
}

async fn assert_invalid_request(app: &TestApp, headers: &[(&str, &str)], description: &str) {
    let answer = app.get("/r", headers).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{headers:?}");
    assert_eq!(
        answer.challenges()[0],
        format!("Bearer realm=\"api\", error=\"invalid_request\", error_description=\"{description}\"")
    );
    assert_eq!(answer.error().as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn malformed_requests_get_400_invalid_request() {
    let app = TestApp::new("").await;
    let token = app.token().sign();
    let bearer = format!("Bearer {token}");
    assert_invalid_request(&app, &[("authorization", "Bearer")], "empty access token").await;
    assert_invalid_request(
        &app,
        &[("authorization", &bearer), ("authorization", &bearer)],
        "more than one Authorization header",
    )
    .await;
    assert_invalid_request(
        &app,
        &[("authorization", "Bearer a, Bearer b")],
        "more than one credential in the Authorization header",
    )
    .await;
    assert_invalid_request(
        &app,
        &[("authorization", &bearer), ("dpop", "x.y.z")],
        "DPoP proof sent with the Bearer scheme",
    )
    .await;
}

#[tokio::test]
async fn invalid_request_can_answer_401_for_gateways_that_pass_only_401_and_403() {
    let app = TestApp::new("[errors]\ninvalid_request_status = 401").await;
    let answer = app.get("/r", &[("authorization", "Bearer")]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenges()[0],
        "Bearer realm=\"api\", error=\"invalid_request\", error_description=\"empty access token\""
    );
}

#[tokio::test]
async fn malformed_tokens_are_invalid_token() {
    let app = TestApp::new("").await;
    let good = app.token().sign();
    let (header, rest) = good.split_once('.').unwrap();
    let jwe = "eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d".to_string();
    for bad in [
        "abc".to_string(),
        "a.b".to_string(),
        format!("{good}.AAAA"),
        jwe,
        format!("{good}=="),
        format!("{header}=.{rest}"),
        good.replacen('.', ".+", 1),
        good.replacen('.', "./", 1),
        format!("{}\\n", &good[..good.len() - 2]),
        "a.".repeat(10),
    ] {
        app.bearer(&bad).await.assert_invalid_token("malformed access token");
    }
}

#[tokio::test]
async fn a_token_with_changed_unused_signature_bits_is_refused() {
    let app = TestApp::new("").await;
    let good = app.token().sign();
    // 256 signature bytes encode to 342 characters: the last one carries 4 unused bits.
    let last = good.chars().last().unwrap();
    let tweaked_char = match last {
        'A' => 'B',
        'Q' => 'R',
        'g' => 'h',
        'w' => 'x',
        c => ((c as u8) ^ 1) as char,
    };
    let tweaked = format!("{}{}", &good[..good.len() - 1], tweaked_char);
    let answer = app.bearer(&tweaked).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.error().as_deref(), Some("invalid_token"));
}

#[tokio::test]
async fn tokens_over_8_kib_are_refused_before_decoding() {
    let app = TestApp::new("").await;
    let big = app.token().claim("junk", json!("x".repeat(9 * 1024))).sign();
    app.bearer(&big).await.assert_invalid_token("access token too large");
}

#[tokio::test]
async fn headers_that_are_not_unique_json_objects_are_refused() {
    let app = TestApp::new("").await;
    for header in [r#"["RS256"]"#, "not json", r#"{"alg":"RS256","kid":"k1","kid":"k2"}"#, r#"{"alg":"RS256","kid":7}"#]
    {
        let token = app.token().raw_header(header).sign();
        app.bearer(&token).await.assert_invalid_token("malformed token header");
    }
}

#[tokio::test]
async fn none_and_hmac_and_unlisted_algorithms_are_refused() {
    let app = TestApp::new("").await;
    let payload = b64_json(
        &json!({"iss": app.issuer.issuer(), "aud": AUDIENCE, "sub": "u", "iat": app.now(), "exp": app.now() + 60}),
    );
    for alg in ["none", "None", "NONE", "nOnE", "HS256", "HS384", "HS512", "rs256", "RS256 ", "RS-256", "ES256"] {
        let header = b64_json(&json!({ "alg": alg, "kid": "k1" }));
        app.bearer(&format!("{header}.{payload}.")).await.assert_invalid_token("token algorithm not allowed");
        app.bearer(&format!("{header}.{payload}.AAAA")).await.assert_invalid_token("token algorithm not allowed");
    }
    let no_alg = b64_json(&json!({ "kid": "k1" }));
    app.bearer(&format!("{no_alg}.{payload}.AAAA")).await.assert_invalid_token("malformed token header");
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let app = TestApp::new("").await;
    let jwk = app.key.public_jwk().to_string();
    let header = b64_json(&json!({ "alg": "HS256", "kid": "k1" }));
    let payload = b64_json(
        &json!({"iss": app.issuer.issuer(), "aud": AUDIENCE, "sub": "u", "iat": app.now(), "exp": app.now() + 60}),
    );
    let input = format!("{header}.{payload}");
    let tag = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, jwk.as_bytes()),
        input.as_bytes(),
    );
    app.bearer(&format!("{input}.{}", b64(tag.as_ref()))).await.assert_invalid_token("token algorithm not allowed");
}

#[tokio::test]
async fn a_validly_signed_ps256_token_is_refused_when_only_rs256_is_allowed() {
    let app = TestApp::new("").await;
    let token = app.token().header("alg", json!("PS256")).sign();
    app.bearer(&token).await.assert_invalid_token("token algorithm not allowed");
}

#[tokio::test]
async fn configured_ps256_and_es256_tokens_pass() {
    let rsa = SigningKey::rsa("r1").unwrap();
    let ec = SigningKey::p256("e1").unwrap();
    let issuer = MockIssuer::start(&[&rsa, &ec]).await;
    let text = config_text(&issuer.issuer(), "envoy", "").replace(
        &format!("audience = \"{AUDIENCE}\""),
        &format!("audience = \"{AUDIENCE}\"\nalgorithms = [\"RS256\", \"PS256\", \"ES256\"]"),
    );
    let config = tollgate::config::Config::load(&text, &Default::default()).unwrap();
    let app = TestApp::from_config(issuer, rsa, config, fast_timings()).await;
    let ps = app.token().header("alg", json!("PS256")).sign();
    assert_eq!(app.bearer(&ps).await.status, StatusCode::OK);
    let es = app.issuer.token(&ec, app.now()).sign();
    assert_eq!(app.bearer(&es).await.status, StatusCode::OK);
    // ES256 header with the RSA key's kid: the key does not fit the algorithm.
    let mixed = app.issuer.token(&ec, app.now()).header("kid", json!("r1")).sign();
    app.bearer(&mixed).await.assert_invalid_token("signing key does not fit the algorithm");
}

#[tokio::test]
async fn a_crit_header_is_refused() {
    let app = TestApp::new("").await;
    for crit in [json!(["x"]), json!(["exp"]), json!([]), json!("x")] {
        let token = app.token().header("crit", crit).header("x", json!(1)).sign();
        app.bearer(&token).await.assert_invalid_token("unsupported critical header");
    }
}

#[tokio::test]
async fn only_access_token_types_are_accepted() {
    let app = TestApp::new("").await;
    for typ in ["dpop+jwt", "secevent+jwt", "JOSE", "x"] {
        let token = app.token().header("typ", json!(typ)).sign();
        app.bearer(&token).await.assert_invalid_token("wrong token type");
    }
    for typ in ["at+jwt", "application/at+jwt", "AT+JWT", "JWT"] {
        let token = app.token().header("typ", json!(typ)).sign();
        assert_eq!(app.bearer(&token).await.status, StatusCode::OK, "{typ}");
    }
    let untyped = app.token().header_without("typ").sign();
    assert_eq!(app.bearer(&untyped).await.status, StatusCode::OK);
}

#[tokio::test]
async fn ignored_header_parameters_do_not_change_the_answer() {
    let app = TestApp::new("").await;
    let token = app.token().header("zip", json!("DEF")).header("b64", json!(false)).header("cty", json!("JWT")).sign();
    assert_eq!(app.bearer(&token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let app = TestApp::new("").await;
    let token = app.token().header("kid", json!("nope")).sign();
    app.bearer(&token).await.assert_invalid_token("unknown signing key");
}

#[tokio::test]
async fn embedded_or_linked_keys_are_never_used() {
    let app = TestApp::new("").await;
    let attacker = SigningKey::rsa("k1").unwrap();
    let canary = MockIssuer::start(&[&attacker]).await;
    let forged = app
        .issuer
        .token(&attacker, app.now())
        .header("jwk", attacker.public_jwk())
        .header("jku", json!(format!("{}jwks", canary.issuer())))
        .header("x5u", json!(format!("{}jwks", canary.issuer())))
        .sign();
    app.bearer(&forged).await.assert_invalid_token("invalid signature");
    let kidless =
        app.issuer.token(&attacker, app.now()).header_without("kid").header("jwk", attacker.public_jwk()).sign();
    app.bearer(&kidless).await.assert_invalid_token("invalid signature");
    assert_eq!(canary.jwks_fetches() + canary.discovery_fetches(), 0);
}

#[tokio::test]
async fn a_changed_payload_fails_the_signature() {
    let app = TestApp::new("").await;
    let token = app.token().sign();
    let other = app.token().claim("sub", json!("admin")).sign();
    let spliced = format!(
        "{}.{}.{}",
        token.split('.').next().unwrap(),
        other.split('.').nth(1).unwrap(),
        token.split('.').nth(2).unwrap()
    );
    app.bearer(&spliced).await.assert_invalid_token("invalid signature");
}

#[tokio::test]
async fn duplicate_claims_are_refused() {
    let app = TestApp::new("").await;
    let payload = format!(
        r#"{{"iss":"{}","aud":"{AUDIENCE}","sub":"admin","sub":"user1","iat":{},"exp":{}}}"#,
        app.issuer.issuer(),
        app.now(),
        app.now() + 60
    );
    let token = app.token().raw_payload(&payload).sign();
    app.bearer(&token).await.assert_invalid_token("malformed token claims");
    for payload in ["[1]", "\"s\"", "42", "null"] {
        let token = app.token().raw_payload(payload).sign();
        app.bearer(&token).await.assert_invalid_token("malformed token claims");
    }
}

#[tokio::test]
async fn the_issuer_must_match_exactly() {
    let app = TestApp::new("").await;
    let iss = app.issuer.issuer();
    for wrong in [json!("https://other.example/"), json!(iss.trim_end_matches('/')), json!(iss.to_uppercase())] {
        let token = app.token().claim("iss", wrong).sign();
        app.bearer(&token).await.assert_invalid_token("wrong issuer");
    }
    let token = app.token().claim("iss", json!([iss])).sign();
    app.bearer(&token).await.assert_invalid_token("malformed token claims");
    let token = app.token().without("iss").sign();
    app.bearer(&token).await.assert_invalid_token("required claim missing");
}

#[tokio::test]
async fn the_audience_must_name_a_configured_one() {
    let app = TestApp::new("").await;
    for wrong in
        [json!(""), json!([]), json!(["other"]), json!(format!("{AUDIENCE}/")), json!(format!("{AUDIENCE}.evil"))]
    {
        let token = app.token().claim("aud", wrong.clone()).sign();
        app.bearer(&token).await.assert_invalid_token("wrong audience");
    }
    let token = app.token().claim("aud", json!({"x": 1})).sign();
    app.bearer(&token).await.assert_invalid_token("malformed token claims");
    let token = app.token().without("aud").sign();
    app.bearer(&token).await.assert_invalid_token("required claim missing");
    let token = app.token().claim("aud", json!(["other", AUDIENCE])).sign();
    assert_eq!(app.bearer(&token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn any_of_several_configured_audiences_is_accepted() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let text = config_text(&issuer.issuer(), "envoy", "").replace(
        &format!("audience = \"{AUDIENCE}\""),
        &format!("audience = [\"https://first.example\", \"{AUDIENCE}\"]"),
    );
    let config = tollgate::config::Config::load(&text, &Default::default()).unwrap();
    let app = TestApp::from_config(issuer, key, config, fast_timings()).await;
    assert_eq!(app.bearer(&app.token().sign()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn expiry_is_required_typed_and_exclusive() {
    let app = TestApp::new("").await;
    let now = app.now();
    app.bearer(&app.token().without("exp").sign()).await.assert_invalid_token("required claim missing");
    app.bearer(&app.token().claim("exp", json!(now)).sign()).await.assert_invalid_token("token expired");
    app.bearer(&app.token().claim("exp", json!(now - 1)).sign()).await.assert_invalid_token("token expired");
    assert_eq!(app.bearer(&app.token().claim("exp", json!(now + 1)).sign()).await.status, StatusCode::OK);
    for bad in [json!("9999999999"), json!(true), json!(null), json!({}), json!(18446744073709551616.0_f64)] {
        app.bearer(&app.token().claim("exp", bad).sign()).await.assert_invalid_token("malformed token claims");
    }
    let huge = app.token().raw_payload(&format!(
        r#"{{"iss":"{}","aud":"{AUDIENCE}","sub":"u","iat":{now},"exp":1e400}}"#,
        app.issuer.issuer()
    ));
    app.bearer(&huge.sign()).await.assert_invalid_token("malformed token claims");
}

#[tokio::test]
async fn leeway_extends_expiry_and_not_before_by_exactly_its_seconds() {
    let app = TestApp::new("").await;
    let now = app.now();
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let text = config_text(&issuer.issuer(), "envoy", "").replace("[proxy]", "leeway = 30\n[proxy]");
    assert!(text.contains("leeway = 30\n[proxy]"));
    let config = tollgate::config::Config::load(&text, &Default::default()).unwrap();
    let lenient = TestApp::from_config(issuer, key, config, fast_timings()).await;
    lenient.clock.set(now);
    assert_eq!(lenient.bearer(&lenient.token().claim("exp", json!(now - 29)).sign()).await.status, StatusCode::OK);
    lenient.bearer(&lenient.token().claim("exp", json!(now - 30)).sign()).await.assert_invalid_token("token expired");
    assert_eq!(lenient.bearer(&lenient.token().claim("nbf", json!(now + 30)).sign()).await.status, StatusCode::OK);
    lenient
        .bearer(&lenient.token().claim("nbf", json!(now + 31)).sign())
        .await
        .assert_invalid_token("token not yet valid");
    app.bearer(&app.token().claim("nbf", json!(now + 1)).sign()).await.assert_invalid_token("token not yet valid");
}

#[tokio::test]
async fn not_before_must_have_passed() {
    let app = TestApp::new("").await;
    let now = app.now();
    app.bearer(&app.token().claim("nbf", json!(now + 3600)).sign()).await.assert_invalid_token("token not yet valid");
    app.bearer(&app.token().claim("nbf", json!("0")).sign()).await.assert_invalid_token("malformed token claims");
    assert_eq!(app.bearer(&app.token().claim("nbf", json!(now)).sign()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn issued_at_is_required_and_typed() {
    let app = TestApp::new("").await;
    app.bearer(&app.token().without("iat").sign()).await.assert_invalid_token("required claim missing");
    app.bearer(&app.token().claim("iat", json!("now")).sign()).await.assert_invalid_token("malformed token claims");
    let future = app.token().claim("iat", json!(app.now() + 86400)).sign();
    assert_eq!(app.bearer(&future).await.status, StatusCode::OK, "no max-age is configured");
}

#[tokio::test]
async fn the_subject_is_required_and_header_safe() {
    let app = TestApp::new("").await;
    app.bearer(&app.token().without("sub").sign()).await.assert_invalid_token("required claim missing");
    app.bearer(&app.token().claim("sub", json!(42)).sign()).await.assert_invalid_token("malformed token claims");
    for bad in ["alice\r\nX-Admin: 1", "a\u{0}b", ""] {
        app.bearer(&app.token().claim("sub", json!(bad)).sign()).await.assert_invalid_token("invalid subject");
    }
    let answer = app.bearer(&app.token().claim("sub", json!("élodie 100%")).sign()).await;
    assert_eq!(answer.header("x-auth-subject"), Some("%C3%A9lodie%20100%25"));
}

#[tokio::test]
async fn required_claims_must_be_present() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let text = config_text(&issuer.issuer(), "envoy", "").replace("[proxy]", "required_claims = [\"org_id\"]\n[proxy]");
    let config = tollgate::config::Config::load(&text, &Default::default()).unwrap();
    let app = TestApp::from_config(issuer, key, config, fast_timings()).await;
    app.bearer(&app.token().sign()).await.assert_invalid_token("required claim missing");
    assert_eq!(app.bearer(&app.token().claim("org_id", json!("org_1")).sign()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn wrongly_typed_registered_claims_are_refused() {
    let app = TestApp::new("").await;
    for (claim, value) in [("jti", json!(7)), ("client_id", json!(["c"]))] {
        app.bearer(&app.token().claim(claim, value).sign()).await.assert_invalid_token("malformed token claims");
    }
}

#[tokio::test]
async fn a_binding_tollgate_cannot_check_fails_closed() {
    let app = TestApp::new("").await;
    for cnf in [json!("x"), json!({"jkt": 42}), json!({"jkt": ""}), json!({"x5t#S256": "abc"})] {
        let token = app.token().claim("cnf", cnf).sign();
        app.bearer(&token).await.assert_invalid_token("unsupported token binding");
    }
}

#[tokio::test]
async fn a_dpop_bound_token_is_refused_as_a_bearer_token_in_every_mode() {
    for dpop in ["", "[dpop]\nenabled = false", "[dpop]\nrequired = true"] {
        let app = TestApp::new(dpop).await;
        let token = app.token().claim("cnf", json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})).sign();
        let answer = app.bearer(&token).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{dpop}");
        assert_eq!(
            answer.error().as_deref(),
            Some(if dpop.contains("required") { "unauthorized" } else { "invalid_token" })
        );
    }
}

#[tokio::test]
async fn dpop_modes_decide_which_scheme_is_accepted() {
    let disabled = TestApp::new("[dpop]\nenabled = false").await;
    let answer = disabled.get("/r", &[("authorization", "DPoP abc"), ("dpop", "x.y.z")]).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.challenges(),
        vec!["Bearer realm=\"api\", error=\"invalid_request\", error_description=\"DPoP is not enabled\""]
    );
    let none = disabled.get("/r", &[]).await;
    assert_eq!(none.challenges(), vec!["Bearer realm=\"api\""]);

    let required = TestApp::new("[dpop]\nrequired = true").await;
    let answer = required.bearer(&required.token().sign()).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.challenges(), vec!["DPoP algs=\"ES256\""]);
}

#[tokio::test]
async fn missing_scopes_get_403_with_the_scope_in_the_challenge() {
    let app = TestApp::new("[[routes]]\npath_prefix = \"/admin\"\nscopes = [\"write:admin\"]").await;
    for scope in [
        json!("write:admin2"),
        json!("write:adminx"),
        json!("read:admin write:Admin"),
        json!("write:admin "),
        json!(["write:admin"]),
    ] {
        let token = app.token().claim("scope", scope.clone()).sign();
        let answer = app.get("/admin/users", &[("authorization", &format!("Bearer {token}"))]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{scope}");
        assert_eq!(
            answer.challenges(),
            vec![
                "Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"insufficient scope\", scope=\"write:admin\"".to_string(),
                "DPoP algs=\"ES256\"".to_string(),
            ]
        );
        assert_eq!(answer.error().as_deref(), Some("insufficient_scope"));
    }
    let token = app.token().claim("scope", json!("read write:admin")).sign();
    let answer = app.get("/admin/users", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn any_scopes_need_one_of_them() {
    let app = TestApp::new("[[routes]]\npath_prefix = \"/orders\"\nany_scopes = [\"read:orders\", \"admin\"]").await;
    let auth = |t: &str| format!("Bearer {t}");
    let with = app.token().claim("scope", json!("admin")).sign();
    assert_eq!(app.get("/orders", &[("authorization", &auth(&with))]).await.status, StatusCode::OK);
    let without = app.token().claim("scope", json!("read")).sign();
    let answer = app.get("/orders", &[("authorization", &auth(&without))]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.challenges()[0].ends_with("scope=\"read:orders admin\""));
}

#[tokio::test]
async fn public_routes_need_no_token_and_send_empty_identity_headers() {
    let app = TestApp::new("[[routes]]\npath_prefix = \"/public\"\npublic = true").await;
    let answer = app.get("/public/x", &[("x-auth-subject", "admin")]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("x-auth-subject"), Some(""));
    assert_eq!(answer.header("x-auth-claims"), Some(""));
    assert_eq!(app.get("/private", &[]).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn default_deny_refuses_unmatched_requests_with_403() {
    let app = TestApp::new("default = \"deny\"\n[[routes]]\npath_prefix = \"/orders\"").await;
    let token = app.token().sign();
    let auth = format!("Bearer {token}");
    assert_eq!(app.get("/orders/1", &[("authorization", &auth)]).await.status, StatusCode::OK);
    let answer = app.get("/other", &[("authorization", &auth)]).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.challenges().is_empty());
    assert_eq!(
        answer.body,
        r#"{"error":"access_denied","error_description":"no route allows this request"}"#.to_string() + "\n"
    );
}

#[tokio::test]
async fn route_matching_uses_the_normalized_path() {
    let app = TestApp::new("[[routes]]\npath_prefix = \"/admin\"\nscopes = [\"write:admin\"]").await;
    let auth = format!("Bearer {}", app.token().sign());
    for path in ["/admin/", "//admin", "/public/../admin", "/admin;x=1", "/%61dmin"] {
        let answer = app.get(path, &[("authorization", &auth)]).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}");
    }
    for path in ["/admin%2fusers", "/public/%2e%2e/admin", "/admin%00"] {
        let answer = app.get(path, &[("authorization", &auth)]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(answer.challenges()[0].contains("ambiguous request path"));
    }
}

#[tokio::test]
async fn a_cached_token_is_never_served_after_it_expires() {
    let app = TestApp::new("").await;
    let now = app.now();
    let token = app.token().claim("exp", json!(now + 2)).sign();
    assert_eq!(app.bearer(&token).await.status, StatusCode::OK);
    assert_eq!(app.checker.cache().len(), 1);
    app.clock.set(now + 1);
    assert_eq!(app.bearer(&token).await.status, StatusCode::OK);
    assert_eq!(app.checker.metrics().token_cache_hits.get(), 1);
    app.clock.set(now + 2);
    app.bearer(&token).await.assert_invalid_token("token expired");
    app.clock.set(now + 3);
    app.bearer(&token).await.assert_invalid_token("token expired");
}

#[tokio::test]
async fn refused_tokens_never_enter_the_cache() {
    let app = TestApp::new("").await;
    for i in 0..20 {
        let token = app.token().claim("aud", json!(format!("other-{i}"))).sign();
        assert_eq!(app.bearer(&token).await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.checker.cache().len(), 0);
}

#[tokio::test]
async fn a_cached_bound_token_is_still_refused_as_bearer() {
    let app = TestApp::new("").await;
    let token = app.token().claim("cnf", json!({"jkt": "abc"})).sign();
    for _ in 0..2 {
        app.bearer(&token).await.assert_invalid_token("DPoP-bound token sent as a Bearer token");
    }
}

#[tokio::test]
async fn metrics_count_checks_by_outcome_and_reason() {
    let app = TestApp::new("").await;
    app.bearer(&app.token().sign()).await;
    app.get("/r", &[]).await;
    let answer = app.send(request("GET", "/metrics", &[])).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.body.contains(r#"tollgate_checks_total{door="http",outcome="allow",reason="none"} 1"#),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains(r#"tollgate_checks_total{door="http",outcome="deny",reason="missing_credentials"} 1"#)
    );
    assert!(answer.body.contains("tollgate_check_duration_seconds_count 2"));
    let fetches = format!("tollgate_jwks_fetches_total{{issuer=\"{}\"}} 1", app.issuer.issuer());
    assert!(answer.body.contains(&fetches), "{}", answer.body);
}

#[tokio::test]
async fn an_authorization_header_that_is_not_ascii_is_an_invalid_request() {
    let app = TestApp::new("").await;
    let mut request = request("GET", "/auth/r", &[]);
    request.headers_mut().insert("authorization", axum::http::HeaderValue::from_bytes(b"Bearer caf\xc3\xa9").unwrap());
    let answer = app.send(request).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.challenges()[0],
        "Bearer realm=\"api\", error=\"invalid_request\", error_description=\"malformed Authorization header\""
    );
}
