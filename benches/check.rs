//! In-process cost of one check, side by side with the bare signature check it is built on.
//!
//! Run with `cargo bench --bench check` (about a minute). Every figure worth quoting is a
//! ratio between two benches of the same run; see `docs/performance.md`.
//!
//! - `bare_rs256_verify`: `jsonwebtoken::crypto::verify` of an RS256 token, key parsed once
//!   from the issuer's JWKS exactly as tollgate parses it. The floor for an uncached check.
//! - `parsed_key_rs256_verify`: the same signature checked with an aws-lc-rs key parsed
//!   once, to show what rebuilding the key on every verify costs.
//! - `check_uncached_rs256`: `Checker::decide` with `[cache] max_tokens = 0`.
//! - `check_cached`: `Checker::decide` with the default cache, the same token every time.
//! - `check_cached_answer`: `Checker::check` (metrics and the wire answer added) on a hit.
//! - `check_refused/*`: no credentials (401), and a garbage token (401 invalid_token), with
//!   `Checker::decide`; `no_credentials_answer` adds the 401 answer (`Checker::check`).
//! - `runtime_block_on_empty`: the per-iteration `block_on` overhead included in every
//!   `check_*` figure.
//! - `paired ...` lines at the end: ratios measured by alternating two workloads in ~2 ms
//!   blocks, robust to a noisy neighbour; quote these rather than dividing two criterion lines.
//! - `router/*`: the HTTP adapter in process, tollgate's router (cached token) against the
//!   bare example's router (`examples/bare.rs`), both driven with `oneshot`.
//! - Parts of a check, to see where the time goes: `part/token_verify_rs256`
//!   (`token::verify`: framing, header, signature, claims), `part/original_request`
//!   (`gateway::original_request`), `part/allow_respond` (`Allow::respond`), and
//!   `part/token_cache_key_sha256` (the SHA-256 of the token that every cache lookup computes).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::routing::any;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::header::{AUTHORIZATION, HOST, HeaderName};
use http::{HeaderMap, HeaderValue, Method, Request};
use jsonwebtoken::Algorithm;
use tokio::runtime::Runtime;
use tollgate::clock::{Clock, SystemClock};
use tollgate::config::Config;
use tollgate::decision::Checker;
use tollgate::dev::DevIssuer;
use tollgate::gateway::{self, CheckRequest};
use tollgate::issuer::{KeySet, Timings};
use tollgate::refusal::Reason;
use tower::ServiceExt as _;

const AUDIENCE: &str = "https://api.example.com";

/// `GET /auth/orders` as it reaches the router, with this `Authorization` value if any.
fn http_request(authorization: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method("GET").uri("/auth/orders").header(HOST, "127.0.0.1:18480");
    if let Some(value) = authorization {
        builder = builder.header(AUTHORIZATION, value);
    }
    builder.body(Body::empty()).expect("request")
}

/// The router of `examples/bare.rs`: 200 and three fixed headers, `claims` as `x-auth-claims`.
fn bare_router(claims: &'static str) -> axum::Router {
    let auth = move || async move {
        [
            (HeaderName::from_static("x-auth-subject"), HeaderValue::from_static("user-000042")),
            (HeaderName::from_static("x-auth-scheme"), HeaderValue::from_static("Bearer")),
            (HeaderName::from_static("x-auth-claims"), HeaderValue::from_static(claims)),
        ]
    };
    axum::Router::new().route("/auth", any(auth)).route("/auth/{*path}", any(auth))
}

/// A checker for `issuer`, envoy dialect, with `extra` TOML appended; keys loaded.
fn checker(runtime: &Runtime, issuer: &str, extra: &str) -> Arc<Checker> {
    let toml =
        format!("[issuer]\nurl = \"{issuer}\"\naudience = \"{AUDIENCE}\"\n[proxy]\ngateway = \"envoy\"\n{extra}\n");
    let config = Config::load(&toml, &HashMap::new()).unwrap_or_else(|e| panic!("bench config: {e}"));
    let checker = Checker::from_config(config, Timings::default(), Arc::new(SystemClock) as Arc<dyn Clock>);
    runtime.block_on(checker.issuer().refresh()).expect("initial key fetch");
    checker
}

/// `GET /auth/orders` from 127.0.0.1, with this `Authorization` value if any.
fn request(authorization: Option<&str>) -> CheckRequest {
    let mut headers = HeaderMap::new();
    if let Some(value) = authorization {
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).expect("header value"));
    }
    CheckRequest { peer: [127, 0, 0, 1].into(), method: Method::GET, path: "/orders".into(), headers }
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let issuer = runtime.block_on(DevIssuer::start()).expect("development issuer");
    let now = SystemClock.now();
    let token = issuer.mint(AUDIENCE, "user-000042", "read:orders", None, now, 3600).expect("mint");

    // The key exactly as tollgate holds it: the JWKS entry parsed by `KeySet::parse`.
    let jwks = serde_json::json!({ "keys": [issuer.key().public_jwk()] });
    let (keys, _) = KeySet::parse(jwks.to_string().as_bytes()).expect("jwks");
    let key = keys.candidates(issuer.key().kid(), Algorithm::RS256).next().expect("key").clone();
    let (signing_input, signature_b64) = token.rsplit_once('.').expect("compact jws");
    assert!(jsonwebtoken::crypto::verify(signature_b64, signing_input.as_bytes(), &key.key, Algorithm::RS256).unwrap());

    // The same public key parsed once by aws-lc-rs.
    let public = issuer.key().public_jwk();
    let member = |name: &str| tollgate::jws::decode(public[name].as_str().expect("member")).expect("base64url");
    let (n, e) = (member("n"), member("e"));
    let parsed = aws_lc_rs::signature::RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }
        .to_parsed_public_key(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256)
        .expect("parsed key");
    let signature = tollgate::jws::decode(signature_b64).expect("signature");
    parsed.verify_sig(signing_input.as_bytes(), &signature).expect("parsed verify");

    let uncached = checker(&runtime, issuer.issuer(), "[cache]\nmax_tokens = 0");
    let cached = checker(&runtime, issuer.issuer(), "");
    let bearer = request(Some(&format!("Bearer {token}")));
    let anonymous = request(None);
    let garbage = request(Some("Bearer not-a-jwt-at-all"));

    // Each bench measures what it claims: allowed, verified every time, or refused.
    for _ in 0..2 {
        runtime.block_on(uncached.decide(&bearer)).expect("uncached check allows");
        runtime.block_on(cached.decide(&bearer)).expect("cached check allows");
    }
    assert_eq!(uncached.cache().len(), 0, "max_tokens = 0 must disable the cache");
    assert_eq!(uncached.metrics().token_cache_misses.get(), 2);
    assert_eq!((cached.metrics().token_cache_misses.get(), cached.metrics().token_cache_hits.get()), (1, 1));
    let refused =
        |request: &CheckRequest| runtime.block_on(cached.decide(request)).expect_err("refused").reason().clone();
    assert_eq!(refused(&anonymous), Reason::MissingCredentials);
    assert_eq!(refused(&garbage), Reason::MalformedToken);

    c.bench_function("bare_rs256_verify", |b| {
        b.iter(|| {
            jsonwebtoken::crypto::verify(
                black_box(signature_b64),
                black_box(signing_input.as_bytes()),
                &key.key,
                Algorithm::RS256,
            )
        })
    });
    c.bench_function("parsed_key_rs256_verify", |b| {
        b.iter(|| parsed.verify_sig(black_box(signing_input.as_bytes()), black_box(&signature)))
    });
    c.bench_function("check_uncached_rs256", |b| b.iter(|| runtime.block_on(uncached.decide(black_box(&bearer)))));
    c.bench_function("check_cached", |b| b.iter(|| runtime.block_on(cached.decide(black_box(&bearer)))));
    c.bench_function("check_cached_answer", |b| b.iter(|| runtime.block_on(cached.check(black_box(&bearer)))));
    let mut group = c.benchmark_group("check_refused");
    group.bench_function("no_credentials", |b| b.iter(|| runtime.block_on(cached.decide(black_box(&anonymous)))));
    group.bench_function("garbage_token", |b| b.iter(|| runtime.block_on(cached.decide(black_box(&garbage)))));
    group.bench_function("no_credentials_answer", |b| b.iter(|| runtime.block_on(cached.check(black_box(&anonymous)))));
    group.finish();
    c.bench_function("runtime_block_on_empty", |b| b.iter(|| runtime.block_on(async { black_box(0) })));

    // The HTTP adapter in process (no socket, no hyper connection): tollgate's router with a
    // cached token against the bare example's router answering the same headers.
    let bearer_value = format!("Bearer {token}");
    let peer = MockConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 40000)));
    let router = tollgate::server::app(cached.clone()).layer(peer);
    let claims: &'static str = token.split('.').nth(1).expect("payload").to_string().leak();
    let bare_app = bare_router(claims);
    for (app, expected) in [(&router, 200), (&bare_app, 200)] {
        let response = runtime.block_on(app.clone().oneshot(http_request(Some(&bearer_value)))).expect("response");
        assert_eq!(response.status(), expected);
        assert_eq!(response.headers()["x-auth-claims"], claims);
    }
    let mut group = c.benchmark_group("router");
    group.bench_function("bare", |b| {
        b.iter_batched(
            || http_request(Some(&bearer_value)),
            |request| runtime.block_on(bare_app.clone().oneshot(request)),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("tollgate_hot", |b| {
        b.iter_batched(
            || http_request(Some(&bearer_value)),
            |request| runtime.block_on(router.clone().oneshot(request)),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("part");
    let issuer_config = &cached.config().issuer;
    tollgate::token::verify(&token, &keys, issuer_config, now).expect("token verifies");
    group.bench_function("token_verify_rs256", |b| {
        b.iter(|| tollgate::token::verify(black_box(&token), &keys, issuer_config, now))
    });
    let proxy = &cached.config().proxy;
    group.bench_function("original_request", |b| b.iter(|| gateway::original_request(proxy, black_box(&bearer))));
    let allow = runtime.block_on(cached.decide(&bearer)).expect("allowed");
    group.bench_function("allow_respond", |b| b.iter(|| black_box(&allow).respond(&[])));
    group.bench_function("token_cache_key_sha256", |b| {
        b.iter(|| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(token.as_bytes())))
    });
    group.finish();

    // Criterion measures one bench after another, so a burst of load from a neighbour can
    // land on one side of a comparison. These pairs alternate in short blocks instead.
    if std::env::args().any(|a| a == "--bench") {
        let bare = || {
            black_box(jsonwebtoken::crypto::verify(signature_b64, signing_input.as_bytes(), &key.key, Algorithm::RS256))
        };
        let uncached_check = || black_box(runtime.block_on(uncached.decide(black_box(&bearer)))).is_ok();
        let cached_check = || black_box(runtime.block_on(cached.decide(black_box(&bearer)))).is_ok();
        let parsed_verify = || black_box(parsed.verify_sig(signing_input.as_bytes(), &signature)).is_ok();
        let token_verify = || black_box(tollgate::token::verify(&token, &keys, issuer_config, now)).is_ok();
        let sha256 = || black_box(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())).as_ref()[0];
        let block_on = || black_box(runtime.block_on(async { black_box(0) }));
        paired("check_uncached_rs256", uncached_check, "bare_rs256_verify", bare);
        paired("part/token_verify_rs256", token_verify, "bare_rs256_verify", bare);
        paired("bare_rs256_verify", bare, "parsed_key_rs256_verify", parsed_verify);
        paired("check_cached", cached_check, "bare_rs256_verify", bare);
        paired("part/token_cache_key_sha256", sha256, "check_cached", cached_check);
        paired("runtime_block_on_empty", block_on, "check_cached", cached_check);
        // Both sides build their request inside the block, so this ratio is diluted a little.
        let tollgate_router = || runtime.block_on(router.clone().oneshot(http_request(Some(&bearer_value)))).is_ok();
        let bare_router = || runtime.block_on(bare_app.clone().oneshot(http_request(Some(&bearer_value)))).is_ok();
        paired("router/tollgate_hot", tollgate_router, "router/bare", bare_router);
    }
}

/// Prints the ratio of `a`'s time to `b`'s: the median over 151 rounds, each timing a block
/// of about 2 ms of `a` and one of `b` back to back (order alternating between rounds), with
/// the interquartile range of the per-round ratios.
fn paired<A, B>(a_name: &str, mut a: impl FnMut() -> A, b_name: &str, mut b: impl FnMut() -> B) {
    fn per_call<T>(f: &mut impl FnMut() -> T, n: u64) -> f64 {
        let started = Instant::now();
        for _ in 0..n {
            black_box(f());
        }
        started.elapsed().as_nanos() as f64 / n as f64
    }
    fn calibrate<T>(f: &mut impl FnMut() -> T) -> u64 {
        let mut n = 1;
        while per_call(f, n) * (n as f64) < 2e6 {
            n *= 2;
        }
        n
    }
    let (na, nb) = (calibrate(&mut a), calibrate(&mut b));
    let mut rounds: Vec<(f64, f64)> = (0..151)
        .map(|i| {
            if i % 2 == 0 {
                let ta = per_call(&mut a, na);
                (ta, per_call(&mut b, nb))
            } else {
                let tb = per_call(&mut b, nb);
                (per_call(&mut a, na), tb)
            }
        })
        .collect();
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() / 4], v[v.len() * 3 / 4])
    };
    let (ratio, low, high) = median(rounds.iter().map(|(ta, tb)| ta / tb).collect());
    let (ta, _, _) = median(rounds.iter().map(|r| r.0).collect());
    rounds.sort_by(|x, y| x.1.total_cmp(&y.1));
    let tb = rounds[rounds.len() / 2].1;
    println!("paired {a_name} / {b_name}: {ratio:.3} (IQR {low:.3}..{high:.3}); medians {ta:.0} ns / {tb:.0} ns");
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30)
}

criterion_group! {
    name = check;
    config = config();
    targets = benches
}
criterion_main!(check);
