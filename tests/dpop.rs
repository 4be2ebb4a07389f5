//! DPoP (RFC 9449) through the real router: bound tokens, proofs, replay, binding and the
//! URL the client used (research rows 58–91).

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::*;
use tollgate::signing::SigningKey;

const HTU: &str = "https://api.example.com/r";

/// An app in the envoy dialect: `/auth/r` with `Host: api.example.com` is `GET https://api.example.com/r`.
struct Dpop {
    app: TestApp,
    client_key: SigningKey,
}

impl Dpop {
    async fn new(extra: &str) -> Dpop {
        Dpop { app: TestApp::new(extra).await, client_key: SigningKey::p256("client").unwrap() }
    }

    /// A token bound to the client's key.
    fn bound_token(&self) -> String {
        self.app.token().claim("cnf", json!({ "jkt": jkt(&self.client_key) })).sign()
    }

    fn proof<'a>(&'a self, token: &str) -> ProofBuilder<'a> {
        ProofBuilder::new(&self.client_key, "GET", HTU, token, self.app.now())
    }

    async fn send(&self, token: &str, proof: &str) -> Answer {
        self.send_as("GET", "/r", token, proof).await
    }

    async fn send_as(&self, method: &str, path: &str, token: &str, proof: &str) -> Answer {
        let auth = format!("DPoP {token}");
        let headers =
            [("host", "api.example.com"), ("x-forwarded-proto", "https"), ("authorization", &auth), ("dpop", proof)];
        self.app.send(request(method, &format!("/auth{path}"), &headers)).await
    }
}

fn assert_invalid_proof(answer: &Answer, description: &str) {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "body: {}", answer.body);
    assert_eq!(
        answer.challenges(),
        vec![
            format!("DPoP error=\"invalid_dpop_proof\", error_description=\"{description}\", algs=\"ES256\""),
            "Bearer realm=\"api\"".to_string(),
        ]
    );
    assert_eq!(answer.error().as_deref(), Some("invalid_dpop_proof"));
}

#[tokio::test]
async fn a_valid_dpop_request_passes_with_the_dpop_scheme() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    let answer = t.send(&token, &t.proof(&token).sign()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header("x-auth-scheme"), Some("DPoP"));
    assert_eq!(answer.header("x-auth-subject"), Some("user1"));
}

#[tokio::test]
async fn the_scheme_name_is_case_insensitive() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    for scheme in ["dpop", "DPOP"] {
        let proof = t.proof(&token).sign();
        let auth = format!("{scheme} {token}");
        let headers = [
            ("host", "api.example.com"),
            ("x-forwarded-proto", "https"),
            ("authorization", auth.as_str()),
            ("dpop", proof.as_str()),
        ];
        assert_eq!(t.app.send(request("GET", "/auth/r", &headers)).await.status, StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn a_replayed_proof_is_refused() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    let proof = t.proof(&token).sign();
    assert_eq!(t.send(&token, &proof).await.status, StatusCode::OK);
    assert_invalid_proof(&t.send(&token, &proof).await, "DPoP proof replayed");
}

#[tokio::test]
async fn a_new_proof_reusing_a_jti_is_refused() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    let first = t.proof(&token).claim("jti", json!("same")).sign();
    assert_eq!(t.send(&token, &first).await.status, StatusCode::OK);
    let again = ProofBuilder::new(&t.client_key, "POST", HTU, &token, t.app.now()).claim("jti", json!("same")).sign();
    assert_invalid_proof(&t.send_as("POST", "/r", &token, &again).await, "DPoP proof replayed");
}

#[tokio::test]
async fn a_refused_request_does_not_consume_the_proof() {
    let t = Dpop::new("[[routes]]\npath_prefix = \"/r\"\nscopes = [\"write\"]").await;
    let token = t.bound_token();
    let proof = t.proof(&token).sign();
    assert_eq!(t.send(&token, &proof).await.status, StatusCode::FORBIDDEN);
    // The proof was refused for scope, so it must not count as used: the scope check runs first.
    let scoped = t.app.token().claim("cnf", json!({ "jkt": jkt(&t.client_key) })).claim("scope", json!("write")).sign();
    let proof = t.proof(&scoped).claim("jti", json!("kept")).sign();
    assert_eq!(t.send(&scoped, &proof).await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_method_and_url_must_be_the_ones_the_client_used() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    let post = ProofBuilder::new(&t.client_key, "POST", HTU, &token, t.app.now()).sign();
    assert_invalid_proof(&t.send(&token, &post).await, "DPoP proof htm mismatch");
    let lower = ProofBuilder::new(&t.client_key, "get", HTU, &token, t.app.now()).sign();
    assert_invalid_proof(&t.send(&token, &lower).await, "DPoP proof htm mismatch");
    for htu in [
        "https://api.example.com/other",
        "http://api.example.com/r",
        "https://other-rs.example/r",
        "https://api.example.com/r/",
    ] {
        let proof = ProofBuilder::new(&t.client_key, "GET", htu, &token, t.app.now()).sign();
        assert_invalid_proof(&t.send(&token, &proof).await, "DPoP proof htu mismatch");
    }
    // RFC 3986 equivalents of the URL are the same URL.
    for htu in ["HTTPS://API.example.com:443/r", "https://api.example.com/%72?q=1#f", "https://api.example.com/a/../r"]
    {
        let proof = ProofBuilder::new(&t.client_key, "GET", htu, &token, t.app.now()).sign();
        assert_eq!(t.send(&token, &proof).await.status, StatusCode::OK, "{htu}");
    }
}

#[tokio::test]
async fn the_proof_window_is_thirty_seconds_ahead_and_five_minutes_behind() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    let now = t.app.now();
    for (iat, ok) in [(now + 30, true), (now - 300, true), (now + 31, false), (now - 301, false), (now + 600, false)] {
        let proof = t.proof(&token).claim("iat", json!(iat)).sign();
        let answer = t.send(&token, &proof).await;
        if ok {
            assert_eq!(answer.status, StatusCode::OK, "iat {}", iat - now);
        } else if iat > now {
            assert_invalid_proof(&answer, "DPoP proof issued in the future");
        } else {
            assert_invalid_proof(&answer, "DPoP proof too old");
        }
    }
}

#[tokio::test]
async fn the_access_token_hash_must_match() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    let proof = t.proof(&token).claim("ath", json!("47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU")).sign();
    assert_invalid_proof(&t.send(&token, &proof).await, "DPoP proof ath mismatch");
    let missing = t.proof(&token).without("ath").sign();
    assert_invalid_proof(&t.send(&token, &missing).await, "DPoP proof claim missing");
}

#[tokio::test]
async fn each_missing_claim_is_named_in_the_description() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    for claim in ["jti", "htm", "htu", "iat"] {
        let proof = t.proof(&token).without(claim).sign();
        assert_invalid_proof(&t.send(&token, &proof).await, "DPoP proof claim missing");
    }
}

#[tokio::test]
async fn a_proof_by_another_key_is_a_binding_mismatch() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    let thief = SigningKey::p256("thief").unwrap();
    let proof = ProofBuilder::new(&thief, "GET", HTU, &token, t.app.now()).sign();
    let answer = t.send(&token, &proof).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenges()[0],
        "DPoP error=\"invalid_token\", error_description=\"invalid DPoP key binding\", algs=\"ES256\""
    );
}

#[tokio::test]
async fn an_unbound_token_with_the_dpop_scheme_is_refused() {
    let t = Dpop::new("").await;
    let token = t.app.token().sign();
    let answer = t.send(&token, &t.proof(&token).sign()).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.challenges()[0],
        "DPoP error=\"invalid_token\", error_description=\"access token is not DPoP-bound\", algs=\"ES256\""
    );
}

#[tokio::test]
async fn a_bound_token_is_refused_as_bearer_even_after_it_was_cached() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    assert_eq!(t.send(&token, &t.proof(&token).sign()).await.status, StatusCode::OK);
    t.app.bearer(&token).await.assert_invalid_token("DPoP-bound token sent as a Bearer token");
}

#[tokio::test]
async fn malformed_proofs_are_invalid_dpop_proof() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    let good = t.proof(&token).sign();
    for bad in ["abc".to_string(), "a.b".to_string(), format!("{good}.x"), format!("{good}==")] {
        assert_invalid_proof(&t.send(&token, &bad).await, "malformed DPoP proof");
    }
    let typ = t.proof(&token).header("typ", json!("JWT")).sign();
    assert_invalid_proof(&t.send(&token, &typ).await, "wrong DPoP proof type");
    let no_jwk = t.proof(&token).header("jwk", json!("x")).sign();
    assert_invalid_proof(&t.send(&token, &no_jwk).await, "invalid DPoP proof key");
    let mut private = t.client_key.thumbprint_members();
    private["d"] = json!("AAAA");
    let leaked = t.proof(&token).header("jwk", private).sign();
    assert_invalid_proof(&t.send(&token, &leaked).await, "invalid DPoP proof key");
    let big = t.proof(&token).claim("pad", json!("x".repeat(9000))).sign();
    assert_invalid_proof(&t.send(&token, &big).await, "DPoP proof too large");
}

#[tokio::test]
async fn a_proof_algorithm_outside_the_allowlist_is_refused() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    let rsa = SigningKey::rsa("client-rsa").unwrap();
    let rsa_token = t.app.token().claim("cnf", json!({ "jkt": jkt(&rsa) })).sign();
    let proof = ProofBuilder::new(&rsa, "GET", HTU, &rsa_token, t.app.now()).sign();
    assert_invalid_proof(&t.send(&rsa_token, &proof).await, "DPoP proof algorithm not allowed");
    let none = format!(
        "{}.{}.",
        b64(json!({"typ": "dpop+jwt", "alg": "none", "jwk": t.client_key.thumbprint_members()}).to_string().as_bytes()),
        b64(json!({"jti": "n", "htm": "GET", "htu": HTU, "iat": t.app.now()}).to_string().as_bytes())
    );
    assert_invalid_proof(&t.send(&token, &none).await, "DPoP proof algorithm not allowed");
}

#[tokio::test]
async fn rs256_proofs_pass_when_configured() {
    let t = Dpop::new("[dpop]\nalgorithms = [\"ES256\", \"RS256\"]").await;
    let rsa = SigningKey::rsa("client-rsa").unwrap();
    let token = t.app.token().claim("cnf", json!({ "jkt": jkt(&rsa) })).sign();
    let proof = ProofBuilder::new(&rsa, "GET", HTU, &token, t.app.now()).sign();
    assert_eq!(t.send(&token, &proof).await.status, StatusCode::OK);
}

#[tokio::test]
async fn framing_errors_are_invalid_request() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    let auth = format!("DPoP {token}");
    let proof = t.proof(&token).sign();
    for (headers, description) in [
        (vec![("authorization", auth.as_str())], "DPoP scheme without a DPoP proof"),
        (vec![("dpop", proof.as_str())], "DPoP proof without an access token"),
        (
            vec![("authorization", auth.as_str()), ("dpop", proof.as_str()), ("dpop", proof.as_str())],
            "more than one DPoP proof",
        ),
    ] {
        let answer = t.app.get("/r", &headers).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{description}");
        assert!(
            answer.challenges()[0].contains(&format!("error=\"invalid_request\", error_description=\"{description}\"")),
            "{:?}",
            answer.challenges()
        );
    }
}

#[tokio::test]
async fn refusals_of_dpop_requests_put_the_dpop_challenge_first() {
    let t = Dpop::new("").await;
    let token = t.bound_token().replace("a", "b");
    let answer = t.send(&token, &t.proof(&token).sign()).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.challenges()[0].starts_with("DPoP error=\"invalid_token\""), "{:?}", answer.challenges());
    assert_eq!(answer.challenges()[1], "Bearer realm=\"api\"");
}

#[tokio::test]
async fn required_mode_accepts_dpop_and_offers_only_the_dpop_challenge() {
    let t = Dpop::new("[dpop]\nrequired = true").await;
    let token = t.bound_token();
    assert_eq!(t.send(&token, &t.proof(&token).sign()).await.status, StatusCode::OK);
    let answer = t.app.get("/r", &[]).await;
    assert_eq!(answer.challenges(), vec!["DPoP algs=\"ES256\""]);
    let replay_proof = t.proof(&token).sign();
    t.send(&token, &replay_proof).await;
    let answer = t.send(&token, &replay_proof).await;
    assert_eq!(
        answer.challenges(),
        vec!["DPoP error=\"invalid_dpop_proof\", error_description=\"DPoP proof replayed\", algs=\"ES256\""]
    );
}

#[tokio::test]
async fn pinned_public_origins_stop_a_spoofed_host() {
    // The harness writes `[proxy]` itself: pin the origin through the environment.
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let env = [("TOLLGATE_PROXY__PUBLIC_ORIGINS".to_string(), "https://api.example.com".to_string())].into();
    let config = tollgate::config::Config::load(&config_text(&issuer.issuer(), "nginx", ""), &env).unwrap();
    let t = Dpop {
        app: TestApp::from_config(issuer, key, config, fast_timings()).await,
        client_key: SigningKey::p256("c").unwrap(),
    };
    let token = t.bound_token();
    let send = |host: &'static str, proof: String| {
        let auth = format!("DPoP {token}");
        let app = &t.app;
        async move {
            let headers = [
                ("x-original-method", "GET"),
                ("x-original-uri", "/r?x=1"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", host),
                ("authorization", auth.as_str()),
                ("dpop", proof.as_str()),
            ];
            app.get("", &headers).await
        }
    };
    let evil = ProofBuilder::new(&t.client_key, "GET", "https://evil.example/r", &token, t.app.now()).sign();
    assert_invalid_proof(&send("evil.example", evil).await, "DPoP proof htu mismatch");
    let good = t.proof(&token).sign();
    assert_eq!(send("api.example.com", good).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_untrusted_peer_cannot_choose_the_proof_url() {
    let mut t = Dpop::new("").await;
    t.app.peer = "127.0.0.2:1234".parse().unwrap();
    let token = t.bound_token();
    // Claims https via X-Forwarded-Proto, but an untrusted peer's headers are not believed.
    let answer = t.send(&token, &t.proof(&token).sign()).await;
    assert_invalid_proof(&answer, "DPoP proof htu mismatch");
}

const NONCE_CONFIG: &str = "[dpop]\nnonce = true\nnonce_secret = \"0123456789abcdef0123456789abcdef\"";

fn assert_use_nonce(answer: &Answer) -> String {
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    assert_eq!(
        answer.challenges()[0],
        "DPoP error=\"use_dpop_nonce\", error_description=\"DPoP nonce required\", algs=\"ES256\""
    );
    answer.header("dpop-nonce").expect("a fresh DPoP-Nonce").to_string()
}

#[tokio::test]
async fn with_nonces_on_a_proof_without_one_gets_use_dpop_nonce_and_a_nonce_that_works() {
    let t = Dpop::new(NONCE_CONFIG).await;
    let token = t.bound_token();
    let nonce = assert_use_nonce(&t.send(&token, &t.proof(&token).sign()).await);
    let answer = t.send(&token, &t.proof(&token).claim("nonce", json!(nonce)).sign()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let next = answer.header("dpop-nonce").expect("successes carry the next nonce");
    let answer = t.send(&token, &t.proof(&token).claim("nonce", json!(next)).sign()).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn random_foreign_and_stale_nonces_are_refused() {
    let t = Dpop::new(NONCE_CONFIG).await;
    let token = t.bound_token();
    let foreign = tollgate::dpop::nonce::Nonces::new("another deployment's secret, 32+ bytes").issue(t.app.now());
    for nonce in ["random".to_string(), foreign] {
        assert_use_nonce(&t.send(&token, &t.proof(&token).claim("nonce", json!(nonce)).sign()).await);
    }
    let nonce = assert_use_nonce(&t.send(&token, &t.proof(&token).sign()).await);
    t.app.clock.advance(2 * tollgate::dpop::nonce::WINDOW);
    let token = t.bound_token();
    assert_use_nonce(&t.send(&token, &t.proof(&token).claim("nonce", json!(nonce)).sign()).await);
}

#[tokio::test]
async fn replicas_sharing_the_secret_accept_each_others_nonces() {
    let a = Dpop::new(NONCE_CONFIG).await;
    let b = Dpop { app: TestApp::new(NONCE_CONFIG).await, client_key: SigningKey::p256("c2").unwrap() };
    let token_a = a.bound_token();
    let nonce = assert_use_nonce(&a.send(&token_a, &a.proof(&token_a).sign()).await);
    let token_b = b.bound_token();
    let answer = b.send(&token_b, &b.proof(&token_b).claim("nonce", json!(nonce)).sign()).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn without_nonce_mode_a_nonce_claim_is_ignored() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    let answer = t.send(&token, &t.proof(&token).claim("nonce", json!("anything")).sign()).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("dpop-nonce"), None);
}

#[tokio::test]
async fn crit_wrong_typed_claims_and_bad_signatures_in_proofs_are_refused() {
    let t = Dpop::new("").await;
    let token = t.bound_token();
    let crit = t.proof(&token).header("crit", json!(["x"])).sign();
    assert_invalid_proof(&t.send(&token, &crit).await, "unsupported critical header in DPoP proof");
    for (claim, value) in [
        ("jti", json!(7)),
        ("jti", json!("")),
        ("jti", json!("j".repeat(300))),
        ("htm", json!(123)),
        ("iat", json!("now")),
    ] {
        let proof = t.proof(&token).claim(claim, value).sign();
        assert_invalid_proof(&t.send(&token, &proof).await, "malformed DPoP proof claim");
    }
    // Signed by the client's key, but the header names another key.
    let other = SigningKey::p256("other").unwrap();
    let swapped = t.proof(&token).header("jwk", other.thumbprint_members()).sign();
    assert_invalid_proof(&t.send(&token, &swapped).await, "invalid DPoP proof signature");
}
