//! The Redis replay store (`dpop.replay_store = "redis://…"`) against a real `redis-server`:
//! a proof accepted by one replica is refused by another (RFC 9449 §11.1), a Redis outage
//! refuses DPoP with 503 and leaves Bearer alone, and DPoP recovers when Redis returns.
//!
//! Needs `redis-server` on the PATH (Debian/Ubuntu: `apt-get install redis-server`); each
//! test starts its own on a free port and kills it when done. Without it the tests fail.

mod support;

use std::time::{Duration, Instant};

use support::redis_server::*;
use support::*;
use tollgate::config::{RedisUrl, ReplayStoreSetting};
use tollgate::dpop::replay::{REDIS_KEY_PREFIX, ReplayStore};
use tollgate::refusal::Reason;
use tollgate::signing::SigningKey;

/// Proofs sent to one replica and replayed to the other: scenario S10's 1,000 (about 3 s).
const REPLAYED_PROOFS: usize = 1000;

// --- The tests ---

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proof_replayed_to_another_replica_is_refused() {
    let redis = RedisServer::start(free_port());
    let signer = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&signer]).await;
    let dir = TempDir::new("redis");
    let a = Tollgate::start(dir.path(), "a", &issuer, &redis.url()).await;
    let b = Tollgate::start(dir.path(), "b", &issuer, &redis.url()).await;
    let client = reqwest::Client::new();
    let dpop = DpopClient::new(&issuer, &signer);

    let mut refused = 0;
    for n in 0..REPLAYED_PROOFS {
        // Alternate which replica sees the proof first.
        let (first, second) = if n % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let proof = dpop.proof();
        let accepted = first.check(&client, &dpop.authorization(), Some(&proof)).await;
        assert_eq!(accepted.status, 200, "proof {n}: {accepted:?}\nlog:\n{}", first.log());
        let replayed = second.check(&client, &dpop.authorization(), Some(&proof)).await;
        assert_eq!(replayed.status, 401, "proof {n} replayed: {replayed:?}\nlog:\n{}", second.log());
        assert_eq!(replayed.challenges.first().map(String::as_str), Some(REPLAYED), "proof {n}: {replayed:?}");
        assert!(replayed.body.contains("invalid_dpop_proof"), "{replayed:?}");
        // And to the replica that accepted it.
        let again = first.check(&client, &dpop.authorization(), Some(&proof)).await;
        assert_eq!(again.status, 401, "proof {n} replayed to the same replica: {again:?}");
        refused += 1;
    }
    assert_eq!(refused, REPLAYED_PROOFS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_dpop_gets_503_and_bearer_is_unaffected() {
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let signer = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&signer]).await;
    let dir = TempDir::new("redis");
    let tollgate = Tollgate::start(dir.path(), "a", &issuer, &redis.url()).await;
    let client = reqwest::Client::new();
    let dpop = DpopClient::new(&issuer, &signer);
    let bearer = format!("Bearer {}", issuer.token(&signer, now()).sign());

    let before = dpop.proof();
    let ok = tollgate.check(&client, &dpop.authorization(), Some(&before)).await;
    assert_eq!(ok.status, 200, "{ok:?}\nlog:\n{}", tollgate.log());

    redis.kill();
    let mut slowest = Duration::ZERO;
    for n in 0..20 {
        let down = tollgate.check(&client, &dpop.authorization(), Some(&dpop.proof())).await;
        assert_eq!(down.status, 503, "DPoP request {n} with Redis down: {down:?}\nlog:\n{}", tollgate.log());
        assert!(down.challenges.iter().all(|c| !c.contains("invalid_token")), "{down:?}");
        assert!(down.took < Duration::from_millis(1500), "DPoP request {n} took {:?}", down.took);
        slowest = slowest.max(down.took);
        let bearer_ok = tollgate.check(&client, &bearer, None).await;
        assert_eq!(bearer_ok.status, 200, "Bearer request {n} with Redis down: {bearer_ok:?}");
        assert!(bearer_ok.took < Duration::from_millis(1000), "Bearer request {n} took {:?}", bearer_ok.took);
    }
    eprintln!("with Redis down, the slowest 503 took {slowest:?}");
    let log = tollgate.log();
    assert!(log.contains("DPoP replay store unavailable"), "the outage is logged:\n{log}");

    // Redis back on the same port: DPoP works again within the limit.
    let restarted = Instant::now();
    let mut redis = RedisServer::start(port);
    let up_after = restarted.elapsed();
    let (recovered, last) = loop {
        let proof = dpop.proof();
        let reply = tollgate.check(&client, &dpop.authorization(), Some(&proof)).await;
        match reply.status {
            200 => break (restarted.elapsed(), proof),
            503 => {}
            _ => panic!("while Redis comes back, only 503 or 200: {reply:?}"),
        }
        assert!(
            restarted.elapsed() < RECOVERY_LIMIT,
            "DPoP still refused {:?} after Redis restarted; log:\n{}",
            restarted.elapsed(),
            tollgate.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!(
        "redis-server answered {up_after:?} after the restart began; DPoP accepted again {recovered:?} after it began"
    );
    let replayed = tollgate.check(&client, &dpop.authorization(), Some(&last)).await;
    assert_eq!(replayed.challenges.first().map(String::as_str), Some(REPLAYED), "{replayed:?}");
    assert!(tollgate.log().contains("DPoP replay store answers again"), "{}", tollgate.log());
    redis.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_costs_a_dpop_check_at_most_the_timeout() {
    let redis = RedisServer::start(free_port());
    let signer = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&signer]).await;
    let dir = TempDir::new("redis");
    let tollgate = Tollgate::start(dir.path(), "a", &issuer, &redis.url()).await;
    let client = reqwest::Client::new();
    let dpop = DpopClient::new(&issuer, &signer);
    let bearer = format!("Bearer {}", issuer.token(&signer, now()).sign());
    let ok = tollgate.check(&client, &dpop.authorization(), Some(&dpop.proof())).await;
    assert_eq!(ok.status, 200, "{ok:?}\nlog:\n{}", tollgate.log());

    // Stopped: the connection stays open, and nothing answers on it.
    redis.signal("STOP");
    for n in 0..3 {
        let hung = tollgate.check(&client, &dpop.authorization(), Some(&dpop.proof())).await;
        assert_eq!(hung.status, 503, "DPoP request {n} with Redis hung: {hung:?}");
        assert!(hung.took < Duration::from_millis(1500), "DPoP request {n} took {:?}", hung.took);
        let bearer_ok = tollgate.check(&client, &bearer, None).await;
        assert_eq!(bearer_ok.status, 200, "{bearer_ok:?}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    redis.signal("CONT");
    let resumed = Instant::now();
    loop {
        let reply = tollgate.check(&client, &dpop.authorization(), Some(&dpop.proof())).await;
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 503, "{reply:?}");
        assert!(resumed.elapsed() < RECOVERY_LIMIT, "DPoP still refused after Redis resumed:\n{}", tollgate.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The library's Redis store at `url`, as `dpop.replay_store = url` makes it.
fn redis_store(url: &str) -> ReplayStore {
    ReplayStore::new(&ReplayStoreSetting::Redis(RedisUrl::parse(url).expect("a usable Redis URL")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_store_records_each_key_once_in_redis_until_its_expiry() {
    let redis = RedisServer::start(free_port());
    // Two stores on one Redis: two replicas.
    let a = redis_store(&redis.url());
    let b = redis_store(&redis.url());
    let now = now();
    let key = [7; 32];
    assert_eq!(a.insert(key, now + 330, now).await, Ok(()));
    assert_eq!(a.insert(key, now + 330, now).await, Err(Reason::ProofReplayed));
    assert_eq!(b.insert(key, now + 330, now).await, Err(Reason::ProofReplayed));
    assert_eq!(b.insert([8; 32], now + 330, now).await, Ok(()));

    // The key as stored: the prefix, the key in hex, value 1, expiring through `expires_at`.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let name = format!("{REDIS_KEY_PREFIX}{}", "07".repeat(32));
    let value: Option<String> = redis::cmd("GET").arg(&name).query_async(&mut conn).await.unwrap();
    assert_eq!(value.as_deref(), Some("1"));
    let ttl: i64 = redis::cmd("PTTL").arg(&name).query_async(&mut conn).await.unwrap();
    assert!((329_000..=331_000).contains(&ttl), "PTTL {ttl}");

    // An entry for `expires_at = now` lives one second, then the key is free again.
    let short = [9; 32];
    assert_eq!(a.insert(short, now, now).await, Ok(()));
    assert_eq!(b.insert(short, now, now).await, Err(Reason::ProofReplayed));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(b.insert(short, now + 1, now + 1).await, Ok(()));

    // An `expires_at` already past (which a verified proof cannot have) is still recorded
    // for a second: never "accepted and forgotten".
    let past = [10; 32];
    assert_eq!(a.insert(past, now - 1, now).await, Ok(()));
    assert_eq!(b.insert(past, now - 1, now).await, Err(Reason::ProofReplayed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_store_answers_unavailable_while_redis_is_down_and_recovers() {
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let store = redis_store(&redis.url());
    let now = now();
    assert_eq!(store.insert([1; 32], now + 300, now).await, Ok(()));
    redis.kill();
    for n in 0..5u8 {
        let started = Instant::now();
        assert_eq!(store.insert([n + 2; 32], now + 300, now).await, Err(Reason::ReplayStoreUnavailable));
        assert!(started.elapsed() < Duration::from_millis(1500), "insert {n} took {:?}", started.elapsed());
    }
    let restarted = Instant::now();
    let _redis = RedisServer::start(port);
    let mut n = 0u8;
    loop {
        n += 1;
        match store.insert([100 + n; 32], now + 300, now).await {
            Ok(()) => break,
            Err(Reason::ReplayStoreUnavailable) => {}
            Err(other) => panic!("{other:?}"),
        }
        assert!(restarted.elapsed() < RECOVERY_LIMIT, "still unavailable {:?} after the restart", restarted.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("the store answered again {:?} after Redis restarted", restarted.elapsed());
}
