//! In-process cost of one check, side by side with the bare signature check it is built on.
//!
//! Run with `cargo bench --bench check` (about 90 s once built). Every figure worth quoting is a
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
//! - `bare_es256_verify`: `tollgate::dpop::proof::verify_es256` (aws-lc-rs) of a DPoP proof's
//!   signature, the key from the proof's `jwk`: the floor for a DPoP check.
//! - `check_dpop_cached`: `Checker::decide` with `Authorization: DPoP <bound token>` and a
//!   fresh ES256 proof every iteration (a replayed one is refused), the token cached.
//! - DPoP, paired lines only: `bare_es256_verify_many` (the signature check over 4,096
//!   distinct proofs in turn: one input repeated lets the branch predictor learn the
//!   variable-time verification, which a stream of new proofs never allows),
//!   `part/proof_verify_es256_many` (`proof::verify` over the same proofs, no replay store),
//!   `part/replay_insert_memory` (`MemoryStore::insert` of a new key in a simulated flow of
//!   1,000 proofs/s), and with `BENCH_DPOP_PARTS=1` smaller parts (JSON, thumbprint, `htu`,
//!   `ath`, the p256 point check, a parsed key).
//! - `paired ...` lines at the end: ratios measured by alternating two workloads in ~2 ms
//!   blocks, robust to a noisy neighbour; quote these rather than dividing two criterion lines.
//! - `router/*`: the HTTP adapter in process, tollgate's router (cached token) against the
//!   bare example's router (`examples/bare.rs`), both driven with `oneshot`.
//! - Parts of a check, to see where the time goes: `part/token_verify_rs256`
//!   (`token::verify`: framing, header, signature, claims), `part/original_request`
//!   (`gateway::original_request`), `part/allow_respond` (`Allow::respond`), and
//!   `part/token_cache_key_sha256` (the SHA-256 of the token that every cache lookup computes).

use std::cell::{Cell, RefCell};
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
use tollgate::dev::{self, DevIssuer};
use tollgate::dpop::proof::{self, Expected, ProofSettings};
use tollgate::dpop::replay::MemoryStore;
use tollgate::gateway::{self, CheckRequest};
use tollgate::issuer::{KeySet, Timings};
use tollgate::refusal::Reason;
use tollgate::signing::SigningKey;
use tower::ServiceExt as _;

const AUDIENCE: &str = "https://api.example.com";

/// The URL a DPoP request names: `Host` and `X-Forwarded-Proto` of [`dpop_request`].
const DPOP_HTU: &str = "https://api.example.com/orders";

/// Distinct proofs cycled through by the `*_many` verification benches.
const POOL: usize = 4096;

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
    let checker =
        Checker::from_config(config, Timings::default(), Arc::new(SystemClock) as Arc<dyn Clock>).expect("checker");
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

/// `GET /auth/orders` from 127.0.0.1 (Envoy dialect, a trusted peer) with DPoP credentials;
/// `Host` and `X-Forwarded-Proto` make the original URL [`DPOP_HTU`].
fn dpop_request(token: &str, proof: &str) -> CheckRequest {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("DPoP {token}")).expect("header value"));
    headers.insert(HeaderName::from_static("dpop"), HeaderValue::from_str(proof).expect("header value"));
    headers.insert(HOST, HeaderValue::from_static("api.example.com"));
    headers.insert(HeaderName::from_static("x-forwarded-proto"), HeaderValue::from_static("https"));
    CheckRequest { peer: [127, 0, 0, 1].into(), method: Method::GET, path: "/orders".into(), headers }
}

/// DPoP requests with fresh proofs: each is sent once (the replay store refuses a second
/// use), and made just before its block of iterations, so its `iat` is seconds old at most
/// (the window is 300 s). `made` counts every proof, to stay far below the replay store's
/// capacity (1,000,000 live entries, none of which expires during a run).
struct FreshProofs<'a> {
    key: &'a SigningKey,
    token: &'a str,
    stock: RefCell<Vec<CheckRequest>>,
    next: Cell<usize>,
    made: Cell<usize>,
}

impl<'a> FreshProofs<'a> {
    fn new(key: &'a SigningKey, token: &'a str) -> Self {
        FreshProofs { key, token, stock: RefCell::default(), next: Cell::new(0), made: Cell::new(0) }
    }

    /// One request with a new proof (ES256 signing and JSON: about 20 us).
    fn make(&self) -> CheckRequest {
        self.made.set(self.made.get() + 1);
        assert!(self.made.get() < 800_000, "too many proofs for the replay store's capacity");
        let proof = dev::proof(self.key, "GET", DPOP_HTU, self.token, None, SystemClock.now()).expect("proof");
        dpop_request(self.token, &proof)
    }

    /// Replaces the stock (dropped here, untimed) with `n` new requests.
    fn refill(&self, n: u64) {
        let mut stock = self.stock.borrow_mut();
        stock.clear();
        stock.extend((0..n).map(|_| self.make()));
        self.next.set(0);
    }

    /// The next unused request of the stock.
    fn with_next<T>(&self, f: impl FnOnce(&CheckRequest) -> T) -> T {
        let i = self.next.get();
        self.next.set(i + 1);
        f(&self.stock.borrow()[i])
    }
}

/// Inserts of new keys into a [`MemoryStore`] as a steady flow: a simulated 1,000 proofs per
/// second, so that with the default window (330 s) about 331,000 entries are live at any
/// time, and the store's sweeps (which free the expired ones) run as they would. (The store
/// holds more than the live ones: it sweeps again only when full; see docs/performance.md.)
struct ReplayFlow {
    store: MemoryStore,
    inserted: Cell<u64>,
    refused: Cell<u64>,
    start: i64,
}

impl ReplayFlow {
    fn new(start: i64) -> Self {
        let flow = ReplayFlow { store: MemoryStore::default(), inserted: Cell::new(0), refused: Cell::new(0), start };
        for _ in 0..400_000 {
            flow.insert();
        }
        flow
    }

    /// Inserts the next key; `true` if the store took it (it always should).
    fn insert(&self) -> bool {
        let i = self.inserted.get();
        self.inserted.set(i + 1);
        let mut key = [0x5a; 32];
        key[..8].copy_from_slice(&i.to_le_bytes());
        let now = self.start + (i / 1000) as i64;
        let taken = self.store.insert(key, now + 330, now).is_ok();
        self.refused.set(self.refused.get() + u64::from(!taken));
        taken
    }
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

    // DPoP: a P-256 proof key, a token bound to it (`cnf.jkt`), and a checker of its own
    // (default settings: DPoP allowed, ES256, in-memory replay store).
    let dpop_key = SigningKey::p256("bench-dpop").expect("P-256 key");
    let jkt = dpop_key.jkt();
    let bound = issuer.mint(AUDIENCE, "user-000042", "read:orders", Some(&jkt), now, 3600).expect("mint bound");
    let dpop = checker(&runtime, issuer.issuer(), "");
    let proofs = FreshProofs::new(&dpop_key, &bound);
    for _ in 0..3 {
        match runtime.block_on(dpop.decide(&proofs.make())) {
            Ok(tollgate::allow::Allow::Token { scheme: tollgate::refusal::Scheme::DPoP, .. }) => {}
            other => panic!("the DPoP check must allow: {other:?}"),
        }
    }
    assert_eq!((dpop.metrics().token_cache_misses.get(), dpop.metrics().token_cache_hits.get()), (1, 2));
    let replayed = proofs.make();
    runtime.block_on(dpop.decide(&replayed)).expect("first use allowed");
    assert_eq!(runtime.block_on(dpop.decide(&replayed)).expect_err("replay").reason(), &Reason::ProofReplayed);

    // One proof taken apart for the bare signature check and the parts. Verification alone
    // (`proof::verify`) does not touch the replay store: any proof can be verified again.
    let one_proof = dev::proof(&dpop_key, "GET", DPOP_HTU, &bound, None, now).expect("proof");
    let compact = tollgate::jws::parse(&one_proof, proof::MAX_PROOF_LEN).expect("proof framing");
    let jwk = compact.header["jwk"].as_object().expect("jwk").clone();
    let coordinate = |name: &str| -> [u8; 32] {
        tollgate::jws::decode(jwk[name].as_str().expect("coordinate")).expect("base64url").try_into().expect("32 bytes")
    };
    let (x, y) = (coordinate("x"), coordinate("y"));
    let proof_input = compact.signing_input;
    let proof_signature = compact.signature().expect("signature");
    assert!(proof::verify_es256(&x, &y, proof_input.as_bytes(), &proof_signature));
    let mut point = vec![4u8];
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let parsed_p256 =
        aws_lc_rs::signature::ParsedPublicKey::new(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED, &point)
            .expect("P-256 point");
    let settings =
        ProofSettings { algorithms: vec![tollgate::config::ProofAlgorithm::Es256], iat_leeway: 30, iat_offset: 300 };
    assert_eq!(dpop.config().dpop.algorithms, settings.algorithms);
    assert_eq!((dpop.config().dpop.iat_leeway, dpop.config().dpop.iat_offset), (30, 300));
    let expected = Expected { method: "GET", htu: DPOP_HTU, access_token: &bound, jkt: &jkt };
    let verified = proof::verify(&one_proof, &expected, &settings, now).expect("proof verifies");
    // Many distinct proofs, used in turn: a verification need not be fresh, but one input
    // repeated lets the branch predictor learn the data-dependent branches of the
    // variable-time verification (public inputs), which a stream of new proofs never allows.
    let pool: Vec<String> =
        (0..POOL).map(|_| dev::proof(&dpop_key, "GET", DPOP_HTU, &bound, None, now).expect("proof")).collect();
    let pool_signed: Vec<(&str, Vec<u8>)> = pool
        .iter()
        .map(|p| {
            let compact = tollgate::jws::parse(p, proof::MAX_PROOF_LEN).expect("proof framing");
            (compact.signing_input, compact.signature().expect("signature"))
        })
        .collect();
    let turn = Cell::new(0usize);
    let next_in_pool = || {
        let i = turn.get();
        turn.set((i + 1) % POOL);
        i
    };
    let replay = ReplayFlow::new(now);

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

    c.bench_function("bare_es256_verify", |b| {
        b.iter(|| proof::verify_es256(&x, &y, black_box(proof_input.as_bytes()), black_box(&proof_signature)))
    });
    // A fresh proof per iteration, made in the untimed setup; every check must allow.
    let refused_dpop = Cell::new(0u64);
    c.bench_function("check_dpop_cached", |b| {
        b.iter_batched_ref(
            || proofs.make(),
            |request| {
                let allowed = runtime.block_on(dpop.decide(black_box(request))).is_ok();
                refused_dpop.set(refused_dpop.get() + u64::from(!allowed));
            },
            BatchSize::SmallInput,
        )
    });
    assert_eq!(refused_dpop.get(), 0, "a DPoP check was refused during the bench");

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
    let issuer_config = &cached.config().issuers[0];
    tollgate::token::verify(&token, &keys, issuer_config, now).expect("token verifies");
    group.bench_function("token_verify_rs256", |b| {
        b.iter(|| tollgate::token::verify(black_box(&token), &keys, issuer_config, now))
    });
    let proxy = &cached.config().proxy;
    group.bench_function("original_request", |b| b.iter(|| gateway::original_request(proxy, black_box(&bearer))));
    let allow = runtime.block_on(cached.decide(&bearer)).expect("allowed");
    group.bench_function("allow_respond", |b| b.iter(|| black_box(allow.clone()).respond(&[])));
    group.bench_function("token_cache_key_sha256", |b| {
        b.iter(|| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(token.as_bytes())))
    });
    group.finish();
    assert_eq!(replay.refused.get(), 0, "the replay store refused a new key");

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

        // DPoP: every block of the check gets as many fresh proofs, made untimed before it.
        let dpop_check = || {
            let allowed = proofs.with_next(|request| runtime.block_on(dpop.decide(black_box(request))).is_ok());
            refused_dpop.set(refused_dpop.get() + u64::from(!allowed));
        };
        let refill = |n| proofs.refill(n);
        let bare_es256 = || proof::verify_es256(&x, &y, black_box(proof_input.as_bytes()), &proof_signature);
        let bare_es256_many = || {
            let (input, signature) = &pool_signed[next_in_pool()];
            proof::verify_es256(&x, &y, black_box(input.as_bytes()), signature)
        };
        let proof_verify_many = || black_box(proof::verify(&pool[next_in_pool()], &expected, &settings, now)).is_ok();
        paired_prepared("check_dpop_cached", refill, dpop_check, "bare_es256_verify", bare_es256);
        paired("bare_es256_verify_many", bare_es256_many, "bare_es256_verify", bare_es256);
        paired_prepared("check_dpop_cached", refill, dpop_check, "bare_es256_verify_many", bare_es256_many);
        paired("part/proof_verify_es256_many", proof_verify_many, "bare_es256_verify_many", bare_es256_many);
        paired_prepared("check_dpop_cached", refill, dpop_check, "part/proof_verify_es256_many", proof_verify_many);
        assert_eq!(refused_dpop.get(), 0, "a DPoP check was refused during the paired runs");

        // Pieces of the DPoP path, each against the signature check (one input repeated);
        // the replay insert always, the others with BENCH_DPOP_PARTS=1 (about 6 s more).
        let parsed_es256 = || parsed_p256.verify_sig(black_box(proof_input.as_bytes()), &proof_signature).is_ok();
        let point_check = || p256::PublicKey::from_sec1_bytes(black_box(&point)).is_ok();
        let proof_json = || {
            let compact = tollgate::jws::parse(black_box(&one_proof), proof::MAX_PROOF_LEN).expect("framing");
            compact.payload().expect("payload").len() + compact.header.len()
        };
        let thumbprint = || proof::thumbprint(black_box(&jwk)).expect("thumbprint");
        let htu = || tollgate::dpop::htu::normalize(black_box(DPOP_HTU)).expect("htu");
        let ath = || {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(bound.as_bytes()));
            tollgate::jws::encode(digest.as_ref())
        };
        let replay_key = || black_box(&verified).replay_key();
        let replay_insert = || replay.insert();
        paired("part/replay_insert_memory", replay_insert, "bare_es256_verify", bare_es256);
        if std::env::var_os("BENCH_DPOP_PARTS").is_some_and(|v| v == "1") {
            paired("bare_es256_verify", bare_es256, "part/es256_parsed_key_verify", parsed_es256);
            paired("part/p256_point_check", point_check, "bare_es256_verify", bare_es256);
            paired("part/proof_jws_parse_json", proof_json, "bare_es256_verify", bare_es256);
            paired("part/proof_thumbprint", thumbprint, "bare_es256_verify", bare_es256);
            paired("part/htu_normalize", htu, "bare_es256_verify", bare_es256);
            paired("part/ath_sha256_b64", ath, "bare_es256_verify", bare_es256);
            paired("part/replay_key_sha256", replay_key, "bare_es256_verify", bare_es256);
        }
        assert_eq!(replay.refused.get(), 0, "the replay store refused a new key");
        println!(
            "DPoP proofs made: {}; replay flow: {} inserts, {} entries held now",
            proofs.made.get(),
            replay.inserted.get(),
            replay.store.len()
        );
    }
}

/// Prints the ratio of `a`'s time to `b`'s: the median over 151 rounds, each timing a block
/// of about 2 ms of `a` and one of `b` back to back (order alternating between rounds), with
/// the interquartile range of the per-round ratios.
fn paired<A, B>(a_name: &str, a: impl FnMut() -> A, b_name: &str, b: impl FnMut() -> B) {
    paired_prepared(a_name, |_| {}, a, b_name, b);
}

/// [`paired`], with `prepare(n)` called untimed before every block of `n` calls of `a`
/// (to make `n` fresh DPoP proofs, say).
fn paired_prepared<A, B>(
    a_name: &str,
    mut prepare: impl FnMut(u64),
    mut a: impl FnMut() -> A,
    b_name: &str,
    mut b: impl FnMut() -> B,
) {
    let mut a = |n: u64| {
        prepare(n);
        per_call(&mut a, n)
    };
    let mut b = |n: u64| per_call(&mut b, n);
    fn per_call<T>(f: &mut impl FnMut() -> T, n: u64) -> f64 {
        let started = Instant::now();
        for _ in 0..n {
            black_box(f());
        }
        started.elapsed().as_nanos() as f64 / n as f64
    }
    /// The block length, in calls, that takes about 2 ms; `block(n)` times `n` calls.
    fn calibrate(block: &mut impl FnMut(u64) -> f64) -> u64 {
        let mut n = 1;
        while block(n) * (n as f64) < 2e6 {
            n *= 2;
        }
        n
    }
    let (na, nb) = (calibrate(&mut a), calibrate(&mut b));
    let mut rounds: Vec<(f64, f64)> = (0..151)
        .map(|i| {
            if i % 2 == 0 {
                let ta = a(na);
                (ta, b(nb))
            } else {
                let tb = b(nb);
                (a(na), tb)
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
