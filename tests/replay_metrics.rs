//! The size gauges of `/metrics`, over a real server on 127.0.0.1: `tollgate_token_cache_entries`
//! counts the verified tokens cached and `tollgate_replay_store_entries` the DPoP proofs the
//! in-memory replay store holds (0 with a Redis store, whose keys expire in Redis). A soak
//! run watches them to tell a bounded process from a leaking one, so they must say what is
//! held at the moment of the scrape.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::*;
use tokio::net::TcpListener;
use tollgate::signing::SigningKey;

/// Serves `app`'s checker on a free port of 127.0.0.1 until the sender is dropped.
async fn start(app: &TestApp) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(tollgate::server::serve(Arc::clone(&app.checker), listener, Duration::from_secs(5), async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().expect("client")
}

/// The value of the unlabelled gauge `name` in a scrape of `addr`.
async fn gauge(client: &reqwest::Client, addr: SocketAddr, name: &str) -> i64 {
    let text = client.get(format!("http://{addr}/metrics")).send().await.expect("scrape").text().await.expect("body");
    let prefix = format!("{name} ");
    let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {name} in:\n{text}"));
    line[prefix.len()..].parse().unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// `GET /auth/r` as `https://api.example.com/r` (envoy dialect) with these credentials.
async fn check(client: &reqwest::Client, addr: SocketAddr, authorization: &str, proof: Option<&str>) -> u16 {
    let mut request = client
        .get(format!("http://{addr}/auth/r"))
        .header("host", "api.example.com")
        .header("x-forwarded-proto", "https")
        .header("authorization", authorization);
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    request.send().await.expect("check").status().as_u16()
}

const HTU: &str = "https://api.example.com/r";

#[tokio::test]
async fn the_gauges_count_the_cached_tokens_and_the_held_proofs() {
    let app = TestApp::new("").await;
    let (addr, _stop) = start(&app).await;
    let client = client();
    assert_eq!(gauge(&client, addr, "tollgate_token_cache_entries").await, 0);
    assert_eq!(gauge(&client, addr, "tollgate_replay_store_entries").await, 0);

    // Three distinct Bearer tokens, each used twice: three entries, not six.
    for n in 0..3 {
        let token = app.token().claim("jti", json!(format!("bearer-{n}"))).sign();
        for _ in 0..2 {
            assert_eq!(check(&client, addr, &format!("Bearer {token}"), None).await, 200);
        }
    }
    assert_eq!(gauge(&client, addr, "tollgate_token_cache_entries").await, 3);
    assert_eq!(gauge(&client, addr, "tollgate_replay_store_entries").await, 0, "Bearer never takes a replay slot");

    // A bound token with two fresh proofs, then one of them replayed (refused, no new entry).
    let client_key = SigningKey::p256("client").expect("key");
    let token = app.token().claim("jti", json!("bound")).claim("cnf", json!({ "jkt": jkt(&client_key) })).sign();
    let auth = format!("DPoP {token}");
    let proofs: Vec<String> =
        (0..2).map(|_| ProofBuilder::new(&client_key, "GET", HTU, &token, app.now()).sign()).collect();
    for proof in &proofs {
        assert_eq!(check(&client, addr, &auth, Some(proof)).await, 200);
    }
    assert_eq!(check(&client, addr, &auth, Some(&proofs[0])).await, 401, "a replay was accepted");
    assert_eq!(gauge(&client, addr, "tollgate_replay_store_entries").await, 2);
    assert_eq!(gauge(&client, addr, "tollgate_token_cache_entries").await, 4);

    // Expired entries count until swept (the gauge is what the store holds); a sweep past
    // the proofs' window brings it back to 0.
    app.checker.state().replay.sweep(app.now() + 3600);
    assert_eq!(gauge(&client, addr, "tollgate_replay_store_entries").await, 0);
}

#[tokio::test]
async fn with_a_redis_store_the_replay_gauge_stays_zero() {
    // Nothing listens on the port: DPoP requests are refused 503, Bearer ones pass.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let app = TestApp::new(&format!("[dpop]\nreplay_store = \"redis://127.0.0.1:{closed}/0\"\n")).await;
    let (addr, _stop) = start(&app).await;
    let client = client();
    let client_key = SigningKey::p256("client").expect("key");
    let token = app.token().claim("cnf", json!({ "jkt": jkt(&client_key) })).sign();
    let proof = ProofBuilder::new(&client_key, "GET", HTU, &token, app.now()).sign();
    assert_eq!(check(&client, addr, &format!("DPoP {token}"), Some(&proof)).await, 503);
    let bearer = app.token().claim("jti", json!("plain")).sign();
    assert_eq!(check(&client, addr, &format!("Bearer {bearer}"), None).await, 200);
    assert_eq!(gauge(&client, addr, "tollgate_replay_store_entries").await, 0);
    assert!(gauge(&client, addr, "tollgate_token_cache_entries").await >= 1, "the Bearer token was not counted");
}
