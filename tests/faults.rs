//! The fault and load scenarios of the research notes (`security-anchors.md` §3, S1–S10 and
//! S12–S14), one test each, named after it: short, on loopback, with the real pieces (the
//! mock OIDC issuer of `tests/support`, the real router and server, the real `tollgate`
//! binary, `redis-server`, nginx). Each fails when its pass criterion is broken.
//!
//! The numbers are scaled down for CI (seconds instead of minutes, thousands instead of
//! millions, the contract's waits shortened in proportion); each test's doc says how. With
//! `FAULTS_FULL=1` (`scripts/faults.sh`) the same tests run at full length with the
//! contract's own timings, and print one `FIGURES <id> …` line each (run with
//! `--nocapture`). Timings are compared only as ratios of two measurements made side by side
//! in the same test; in CI the ratio bounds are widened (a 2-core machine running other
//! tests beside these), at full length they are the criterion's.

mod e2e;
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tollgate::clock::{Clock, ManualClock, SystemClock};
use tollgate::config::Config;
use tollgate::decision::Checker;
use tollgate::issuer::Timings;
use tollgate::signing::SigningKey;

// ---------------------------------------------------------------------------------------
// Scale, figures, measurements.

/// Full length (`FAULTS_FULL=1`, from `scripts/faults.sh`) or the CI scale-down.
fn full() -> bool {
    std::env::var("FAULTS_FULL").is_ok_and(|v| v == "1")
}

/// `ci` in CI, `full_length` at full length.
fn pick<T>(ci: T, full_length: T) -> T {
    if full() { full_length } else { ci }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// One line of figures for `scripts/faults.sh` (and for anyone reading a CI log).
fn figures(id: &str, text: impl std::fmt::Display) {
    eprintln!("FIGURES {id} {text}");
}

fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1e3)
}

/// `observed ≤ factor × baseline`, the criterion's ratio at full length. In CI the factor
/// is `ci_factor` and 5 ms of absolute slack are allowed: a p99 of a few hundred requests
/// on a shared 2-core machine moves by more than the criterion's margin on its own.
fn assert_ratio(what: &str, observed: Duration, baseline: Duration, factor: f64, ci_factor: f64) {
    let (factor, slack) = if full() { (factor, Duration::ZERO) } else { (ci_factor, Duration::from_millis(5)) };
    let bound = baseline.mul_f64(factor) + slack;
    assert!(
        observed <= bound,
        "{what}: {} against a baseline of {} (bound {factor}× + {})",
        ms(observed),
        ms(baseline),
        ms(slack)
    );
}

/// Held by the tests that load the machine or measure it (latency ratios, floods, memory),
/// so that they do not run beside each other; the light ones still run in parallel.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs the calling test `name` alone in a child process (this test binary, that test
/// only), so that what it reads of its own process's memory is its own and not that of the
/// tests running beside it. True in the child (run the body); false in the parent, once
/// the child passed (its `FIGURES` lines are copied). The child is killed by its pid if
/// it outlives its bound.
async fn alone(name: &str) -> bool {
    if std::env::var("FAULTS_ALONE").is_ok_and(|n| n == name) {
        return true;
    }
    let dir = TempDir::new("faults-alone");
    let mut command = std::process::Command::new(std::env::current_exe().expect("the test binary"));
    command.args([name, "--exact", "--nocapture", "--test-threads=1"]).env("FAULTS_ALONE", name);
    let mut child = spawn("test run alone", command, dir.path().join("output.log"));
    let deadline = Instant::now() + pick(secs(120.0), secs(3600.0));
    let status = loop {
        if let Some(status) = child.exited() {
            break status;
        }
        assert!(Instant::now() < deadline, "{name}, run alone, did not finish:\n{}", child.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let output = child.output();
    for line in output.lines().filter_map(|l| l.find("FIGURES ").map(|at| &l[at..])) {
        eprintln!("{line}");
    }
    assert!(status.success(), "{name}, run alone, failed:\n{output}");
    false
}

/// `VmRSS` of `pid` (this process when `None`), in KiB.
fn rss_kib(pid: Option<u32>) -> u64 {
    let path = pid.map_or("/proc/self/status".to_string(), |p| format!("/proc/{p}/status"));
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// What a load run saw: statuses, latencies (of requests, not of the load's own work).
#[derive(Default, Debug)]
struct Load {
    statuses: BTreeMap<u16, usize>,
    /// Transport errors (no answer), and the first few of them.
    errors: usize,
    error_texts: Vec<String>,
    latencies: Vec<Duration>,
}

impl Load {
    fn total(&self) -> usize {
        self.statuses.values().sum::<usize>() + self.errors
    }

    fn ok(&self) -> usize {
        self.statuses.get(&200).copied().unwrap_or(0)
    }

    fn failed(&self) -> usize {
        self.total() - self.ok()
    }

    fn quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    }

    fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    fn max(&self) -> Duration {
        self.latencies.iter().max().copied().unwrap_or_default()
    }

    fn merge(&mut self, other: Load) {
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.errors += other.errors;
        let room = 3usize.saturating_sub(self.error_texts.len());
        self.error_texts.extend(other.error_texts.into_iter().take(room));
        self.latencies.extend(other.latencies);
    }

    fn summary(&self) -> String {
        format!(
            "n={} ok={} statuses={:?} errors={}{} p99={}",
            self.total(),
            self.ok(),
            self.statuses,
            self.errors,
            if self.error_texts.is_empty() { String::new() } else { format!(" {:?}", self.error_texts) },
            ms(self.p99())
        )
    }
}

/// `GET {url}` at `rate` per second for `duration` from `workers` clients, request `i` with
/// `Authorization: {auth(i)}` (made before the request is timed). Stops by itself.
async fn drive(
    client: &reqwest::Client,
    url: &str,
    rate: f64,
    duration: Duration,
    workers: usize,
    auth: Arc<dyn Fn(u64) -> String + Send + Sync>,
) -> Load {
    let next = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (client, url, next, auth) = (client.clone(), url.to_string(), next.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let mut load = Load::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let offset = secs(i as f64 / rate);
                if offset >= duration {
                    return load;
                }
                tokio::time::sleep_until(start + offset).await;
                let header = auth(i);
                let sent = Instant::now();
                match client.get(&url).header("authorization", header).send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.bytes().await;
                        load.latencies.push(sent.elapsed());
                        *load.statuses.entry(status).or_default() += 1;
                    }
                    Err(error) => {
                        load.errors += 1;
                        if load.error_texts.len() < 3 {
                            load.error_texts.push(format!("{error:?}"));
                        }
                    }
                }
            }
        }));
    }
    let mut load = Load::default();
    for task in tasks {
        load.merge(task.await.expect("load worker"));
    }
    load
}

// ---------------------------------------------------------------------------------------
// The rig: mock issuer + real checker (its own timings, the system clock, the background
// refresh the binary runs) + the real server on 127.0.0.1.

struct Rig {
    issuer: MockIssuer,
    key: Arc<SigningKey>,
    checker: Arc<Checker>,
    addr: SocketAddr,
    client: reqwest::Client,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

struct RigOptions {
    extra: String,
    timings: Timings,
    /// Wait for keys before returning.
    warm: bool,
    jwks: JwksMode,
    discovery_up: bool,
    header_timeout: Duration,
    key: SigningKey,
    /// `Cache-Control` on the JWKS (the refresh interval, clamped by the timings).
    cache_control: Option<String>,
}

impl Default for RigOptions {
    fn default() -> Self {
        RigOptions {
            extra: String::new(),
            timings: fast_timings(),
            warm: true,
            jwks: JwksMode::Serve,
            discovery_up: true,
            header_timeout: tollgate::server::HEADER_READ_TIMEOUT,
            key: SigningKey::rsa("k1").expect("key"),
            cache_control: None,
        }
    }
}

impl Rig {
    async fn start(options: RigOptions) -> Rig {
        let issuer = MockIssuer::start(&[&options.key]).await;
        issuer.set_mode(options.jwks);
        issuer.set_discovery_up(options.discovery_up);
        if let Some(cc) = &options.cache_control {
            issuer.set_cache_control(cc);
        }
        let config = Config::load(&config_text(&issuer.issuer(), "envoy", &options.extra), &Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let checker =
            Checker::from_config(config, options.timings, Arc::new(SystemClock) as Arc<dyn Clock>).expect("checker");
        let mut tasks: Vec<_> = checker.issuers().iter().map(|i| tokio::spawn(i.clone().run())).collect();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tollgate::server::serve(checker.clone(), listener, options.header_timeout, async {
            let _ = stopped.await;
        });
        tasks.push(tokio::spawn(async move {
            let _ = server.await;
        }));
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let rig = Rig { issuer, key: Arc::new(options.key), checker, addr, client, tasks, _stop: stop };
        if options.warm {
            let deadline = Instant::now() + Duration::from_secs(10);
            while rig.checker.ready().is_err() {
                assert!(Instant::now() < deadline, "no keys after 10 s");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        rig
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A valid token, distinct from every other (its own `jti`).
    fn fresh_token(&self) -> String {
        fresh_token(&self.issuer, &self.key)
    }

    /// `Authorization` values: even requests reuse one (cached) token, odd ones a new token.
    /// The cached one outlives any run (`exp` in 2 h).
    fn fresh_and_cached(&self) -> Arc<dyn Fn(u64) -> String + Send + Sync> {
        let token = self.issuer.token(&self.key, now()).claim("exp", json!(now() + 7200)).claim("jti", json!("cached"));
        let cached = format!("Bearer {}", token.sign());
        let (issuer, key) = (self.issuer.clone(), self.key.clone());
        Arc::new(move |i| if i % 2 == 0 { cached.clone() } else { format!("Bearer {}", fresh_token(&issuer, &key)) })
    }

    async fn load(&self, rate: f64, duration: Duration, auth: Arc<dyn Fn(u64) -> String + Send + Sync>) -> Load {
        drive(&self.client, &self.url("/auth/r"), rate, duration, 16, auth).await
    }

    /// `GET /auth/r` with this `Authorization`: status, body.
    async fn check(&self, authorization: &str) -> (StatusCode, String, Vec<String>) {
        let response =
            self.client.get(self.url("/auth/r")).header("authorization", authorization).send().await.expect("answer");
        let status = response.status();
        let challenges =
            response.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_string()).collect();
        (status, response.text().await.unwrap_or_default(), challenges)
    }

    async fn readyz(&self) -> StatusCode {
        match self.client.get(self.url("/readyz")).send().await {
            Ok(r) => r.status(),
            Err(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The sum of every sample of metric `name`.
    fn metric(&self, name: &str) -> f64 {
        metric(&self.checker.render_metrics(), name)
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.checker.issuer().keys().is_some_and(|k| k.has_kid(kid))
    }
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `text` (from `config_text`) with `lines` added to its `[issuer]` table.
fn with_issuer_keys(text: &str, lines: &str) -> String {
    let audience = format!("audience = \"{AUDIENCE}\"\n");
    assert!(text.contains(&audience));
    text.replace(&audience, &format!("{audience}{lines}\n"))
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn fresh_token(issuer: &MockIssuer, key: &SigningKey) -> String {
    issuer.token(key, now()).claim("jti", json!(format!("t-{}", unique()))).sign()
}

/// A well-formed token that is not valid: `header` as given, then the payload and
/// signature of `token`.
fn with_header(token: &str, header: &Value) -> String {
    let (_, rest) = token.split_once('.').expect("a JWS");
    format!("{}.{rest}", b64(header.to_string().as_bytes()))
}

/// Every JWKS request `issuer` received in `[from, to]`.
fn fetches_between(issuer: &MockIssuer, from: Instant, to: Instant) -> Vec<Instant> {
    issuer.jwks_fetch_times().into_iter().filter(|t| *t >= from && *t <= to).collect()
}

/// The most of `times` in any window of `window`.
fn most_in_any_window(times: &[Instant], window: Duration) -> usize {
    (0..times.len())
        .map(|i| times[i..].iter().take_while(|t| t.duration_since(times[i]) < window).count())
        .max()
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// S1–S6: the issuer misbehaves.

/// **S1, JWKS outage with warm keys.** Keys loaded, then the issuer's JWKS fails (500) for
/// the outage while valid tokens (half a new token each time, half one cached token, known
/// `kid`) arrive at a steady rate. Pass: 0 failed valid requests; `/readyz` 200 throughout;
/// fetch attempts back off to at most one per backoff cap (the contract's 30 s); the
/// failure metric counts every attempt; after the issuer returns (now also publishing
/// `k2`), the new keys are in place within one retry.
///
/// Scale-down: a 6 s outage at 100 rps with the backoff from 100 ms capped at 1 s (full: a
/// 10 min outage at 200 rps with the contract's timings, 1 s doubling to 30 s, and the
/// JWKS's `max-age=60` so the first attempt falls inside the outage).
/// `tests/issuer.rs` `cached_keys_keep_working_while_the_issuer_is_down` holds the keys-kept
/// part for single requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s1_jwks_outage_with_warm_keys_fails_no_valid_request() {
    let timings = pick(
        Timings {
            fetch_timeout: secs(1.0),
            retry_min: secs(0.1),
            retry_max: secs(1.0),
            default_refresh: secs(1.0),
            min_refresh: secs(1.0),
            ..Timings::default()
        },
        Timings::default(),
    );
    let (retry_min, retry_max, fetch_timeout) = (timings.retry_min, timings.retry_max, timings.fetch_timeout);
    let rig = Rig::start(RigOptions {
        timings,
        cache_control: pick(None, Some("max-age=60".into())),
        ..RigOptions::default()
    })
    .await;
    let (outage, rate) = (pick(secs(6.0), secs(600.0)), pick(100.0, 200.0));

    let failures_before = rig.metric("tollgate_jwks_fetch_failures_total");
    rig.issuer.set_mode(JwksMode::Fail);
    let began = Instant::now();
    let probe = async {
        let mut not_ready = Vec::new();
        while began.elapsed() < outage {
            let status = rig.readyz().await;
            if status != StatusCode::OK {
                not_ready.push(status);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        not_ready
    };
    let (load, not_ready) = tokio::join!(rig.load(rate, outage, rig.fresh_and_cached()), probe);
    let ended = Instant::now();
    let attempts = fetches_between(&rig.issuer, began, ended);
    let failures = rig.metric("tollgate_jwks_fetch_failures_total") - failures_before;

    // Back: the issuer now publishes k2 as well.
    let k2 = SigningKey::rsa("k2").expect("key");
    rig.issuer.add_key(&k2);
    rig.issuer.set_mode(JwksMode::Serve);
    let back = Instant::now();
    while !rig.has_kid("k2") {
        assert!(
            back.elapsed() < retry_max + fetch_timeout + secs(1.0),
            "no fresh keys {:?} after the issuer returned",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fresh_after = back.elapsed();
    let (status, body, _) = rig.check(&format!("Bearer {}", fresh_token(&rig.issuer, &k2))).await;

    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    figures(
        "s1",
        format_args!(
            "outage={outage:?} valid: {} | readyz non-200: {} | attempts={} failures_metric={failures} gaps={:?} | fresh keys {fresh_after:?} after return",
            load.summary(),
            not_ready.len(),
            attempts.len(),
            gaps.iter().map(|g| format!("{:.2}", g.as_secs_f64())).collect::<Vec<_>>()
        ),
    );
    assert_eq!(load.failed(), 0, "valid requests failed during the outage: {}", load.summary());
    assert!(load.total() as f64 >= rate * outage.as_secs_f64() * 0.9, "the load did not run: {}", load.summary());
    assert!(not_ready.is_empty(), "/readyz left 200 during the outage: {not_ready:?}");
    assert!(attempts.len() >= 2, "the refresh did not retry during the outage: {attempts:?}");
    assert!(gaps.iter().all(|g| *g >= retry_min.mul_f64(0.9)), "attempts closer than the backoff floor: {gaps:?}");
    let capped = gaps.iter().position(|g| *g >= retry_max.mul_f64(0.9)).expect("the backoff reaches its cap");
    assert!(gaps[capped..].iter().all(|g| *g >= retry_max.mul_f64(0.9)), "more than one attempt per cap: {gaps:?}");
    assert!(
        (failures - attempts.len() as f64).abs() <= 1.0,
        "failure metric +{failures} for {} failed attempts",
        attempts.len()
    );
    assert_eq!(status, StatusCode::OK, "a k2 token after recovery: {body}");
}

/// **S2, cold start with the issuer down.** tollgate starts while discovery and the JWKS
/// fail. Pass: meanwhile `/readyz` is 503 and `/auth` with a valid token is 503 (never
/// `invalid_token`); ready within 5 s of the issuer's return.
///
/// Scale-down: 3 s down with the backoff capped at 1 s (full: 60 s down with the contract's
/// timings, 1 s doubling to 30 s; the 5 s bound is not scaled). `tests/issuer.rs`
/// `without_keys_checks_get_503_and_readyz_says_not_ready_until_the_issuer_answers` holds
/// the same for single requests through `oneshot`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s2_cold_start_with_the_issuer_down_answers_503_until_ready() {
    let timings =
        pick(Timings { retry_min: secs(0.1), retry_max: secs(1.0), ..Timings::default() }, Timings::default());
    let rig = Rig::start(RigOptions {
        timings,
        warm: false,
        jwks: JwksMode::Fail,
        discovery_up: false,
        ..RigOptions::default()
    })
    .await;
    let down = pick(secs(3.0), secs(60.0));
    let token = format!("Bearer {}", rig.fresh_token());
    let began = Instant::now();
    let mut probes = 0;
    while began.elapsed() < down {
        assert_eq!(rig.readyz().await, StatusCode::SERVICE_UNAVAILABLE, "/readyz while the issuer is down");
        let (status, body, challenges) = rig.check(&token).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "a valid token while there are no keys: {body}");
        assert!(!body.contains("invalid_token") && challenges.iter().all(|c| !c.contains("invalid_token")), "{body}");
        probes += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    rig.issuer.set_discovery_up(true);
    rig.issuer.set_mode(JwksMode::Serve);
    let back = Instant::now();
    while rig.readyz().await != StatusCode::OK {
        assert!(back.elapsed() < Duration::from_secs(5), "not ready 5 s after the issuer returned");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready_after = back.elapsed();
    let (status, body, _) = rig.check(&token).await;
    figures(
        "s2",
        format_args!("down={down:?} probes={probes} (all 503) | ready {ready_after:?} after the issuer returned"),
    );
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// **S3, slow issuer.** The JWKS stops answering while refreshes keep being attempted.
/// Pass: each fetch is abandoned at the fetch timeout (5 s); cached-token checks keep their
/// p99 (within 1.2× of the baseline); no request waits longer than the timeout for keys (a
/// token with an unknown `kid`, which waits for the fetch, included).
///
/// The baseline is the larger p99 of two phases without the hang, one before it and one
/// after: two such phases differ by more than 20% on their own on a shared machine (0.25 and
/// 0.32 ms at full length), while a check held up by the hanging fetch would take seconds.
///
/// Scale-down: a 2 s fetch timeout, 3 s of traffic at 100 rps per phase (full: 5 s, 30 s);
/// in CI the p99 bound is 2× + 5 ms (see `assert_ratio`). `tests/issuer.rs`
/// `a_hanging_issuer_is_abandoned_at_the_timeout` holds the abandonment for one fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_slow_issuer_is_abandoned_at_the_timeout_and_cached_checks_keep_their_latency() {
    let _heavy = HEAVY.lock().await;
    let timeout = pick(secs(2.0), secs(5.0));
    let timings = Timings { fetch_timeout: timeout, default_refresh: secs(3600.0), ..fast_timings() };
    let rig = Rig::start(RigOptions { timings, ..RigOptions::default() }).await;
    let phase = pick(secs(3.0), secs(30.0));
    let cached = format!("Bearer {}", rig.fresh_token());
    assert_eq!(rig.check(&cached).await.0, StatusCode::OK);
    let auth: Arc<dyn Fn(u64) -> String + Send + Sync> = Arc::new(move |_| cached.clone());
    let baseline = rig.load(100.0, phase, auth.clone()).await;

    rig.issuer.set_mode(JwksMode::Hang);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Refreshes back to back, each hanging until abandoned.
    let refresher = {
        let (issuer, stop) = (rig.checker.issuer().clone(), stop.clone());
        tokio::spawn(async move {
            let mut took = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let result = issuer.refresh().await;
                took.push((started.elapsed(), result.is_err()));
            }
            took
        })
    };
    // Tokens with an unknown kid (they wait for a fetch), one every 500 ms.
    let unknown = {
        let (client, url, token, stop) = (rig.client.clone(), rig.url("/auth/r"), rig.fresh_token(), stop.clone());
        tokio::spawn(async move {
            let mut waits = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let header = json!({ "alg": "RS256", "typ": "at+jwt", "kid": format!("new-{}", unique()) });
                let sent = Instant::now();
                let _ = client.get(&url).bearer_auth(with_header(&token, &header)).send().await;
                waits.push(sent.elapsed());
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            waits
        })
    };
    let slow = rig.load(100.0, phase, auth.clone()).await;
    stop.store(true, Ordering::Relaxed);
    let refreshes = refresher.await.unwrap();
    let unknown_waits = unknown.await.unwrap();
    rig.issuer.set_mode(JwksMode::Serve);
    let after = rig.load(100.0, phase, auth).await;
    let longest_wait = unknown_waits.iter().max().copied().unwrap_or_default();
    figures(
        "s3",
        format_args!(
            "timeout={timeout:?} baseline: {} | hanging: {} max={} | after: {} | refreshes {:?} | unknown-kid waits max {}",
            baseline.summary(),
            slow.summary(),
            ms(slow.max()),
            after.summary(),
            refreshes
                .iter()
                .map(|(d, e)| format!("{:.2}s{}", d.as_secs_f64(), if *e { "" } else { "(ok?)" }))
                .collect::<Vec<_>>(),
            ms(longest_wait)
        ),
    );
    assert_eq!(baseline.failed() + slow.failed() + after.failed(), 0, "{} / {}", baseline.summary(), slow.summary());
    assert!(!refreshes.is_empty());
    for (took, failed) in &refreshes {
        assert!(*failed, "a fetch from a hanging issuer succeeded");
        assert!(*took <= timeout + secs(1.0), "a fetch was abandoned after {took:?}, not at {timeout:?}");
    }
    // Complete attempts (not the last, cut short by nothing) took the whole timeout.
    assert!(refreshes.iter().any(|(took, _)| *took >= timeout.mul_f64(0.9)), "{refreshes:?}");
    assert!(slow.max() < timeout, "a cached-token check waited {} for keys", ms(slow.max()));
    assert!(longest_wait <= timeout + secs(1.0), "an unknown-kid check waited {}", ms(longest_wait));
    let quiet = baseline.p99().max(after.p99());
    assert_ratio("cached-token p99 with a hanging issuer", slow.p99(), quiet, 1.2, 2.0);
}

/// **S4, key rotation.** The issuer adds `k2` and signs with it while `k1` tokens keep
/// arriving. Pass: the first `k2` tokens (20 at once) cause exactly one fetch and succeed;
/// 0 failed valid requests; `k1` tokens work until `k1` leaves the JWKS, and are refused
/// after (the cached ones too).
///
/// Scale-down: 3 s of `k1` traffic at 100 rps (full: 60 s). `tests/issuer.rs`
/// `a_new_key_is_fetched_once_when_a_token_names_it` and
/// `a_removed_key_purges_the_tokens_it_signed_from_the_cache` hold the single-request parts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_key_rotation_fetches_once_and_fails_no_valid_request() {
    let timings = Timings { default_refresh: secs(3600.0), ..fast_timings() };
    let rig = Rig::start(RigOptions { timings, ..RigOptions::default() }).await;
    let phase = pick(secs(3.0), secs(60.0));
    let cached_k1 = format!("Bearer {}", rig.fresh_token());
    assert_eq!(rig.check(&cached_k1).await.0, StatusCode::OK);
    let k2 = SigningKey::rsa("k2").expect("key");

    let load = rig.load(100.0, phase, rig.fresh_and_cached());
    let rotate = async {
        tokio::time::sleep(phase / 3).await;
        rig.issuer.add_key(&k2);
        let before = rig.issuer.jwks_fetches();
        let first = rig.check(&format!("Bearer {}", fresh_token(&rig.issuer, &k2))).await.0;
        let fetched = rig.issuer.jwks_fetches() - before;
        let later = burst(&rig, &k2, 20).await;
        (first, fetched, later, rig.issuer.jwks_fetches() - before)
    };
    let (load, (first_k2, fetched, later, fetched_after)) = tokio::join!(load, rotate);

    rig.issuer.remove_key("k1");
    rig.checker.issuer().refresh().await.expect("refresh");
    let k1_cached_after = rig.check(&cached_k1).await.0;
    let k1_fresh_after = rig.check(&format!("Bearer {}", rig.fresh_token())).await.0;
    let k2_after = rig.check(&format!("Bearer {}", fresh_token(&rig.issuer, &k2))).await.0;
    figures(
        "s4",
        format_args!(
            "k1 load: {} | first k2 token: {first_k2}, {fetched} fetch(es); 20 more at once: {later:?}, {fetched_after} fetch(es) in all | k1 after removal: {k1_cached_after} (cached) {k1_fresh_after} (new)",
            load.summary()
        ),
    );
    assert_eq!(load.failed(), 0, "valid k1 requests failed during the rotation: {}", load.summary());
    assert_eq!(first_k2, StatusCode::OK, "the first k2 token");
    assert_eq!(fetched, 1, "the first k2 token caused {fetched} fetches");
    assert!(later.iter().all(|s| *s == Some(StatusCode::OK)), "later k2 tokens: {later:?}");
    assert_eq!(fetched_after, 1, "later k2 tokens need no fetch");
    assert_eq!(k1_cached_after, StatusCode::UNAUTHORIZED, "a cached k1 token after k1 left the JWKS");
    assert_eq!(k1_fresh_after, StatusCode::UNAUTHORIZED, "a k1 token after k1 left the JWKS");
    assert_eq!(k2_after, StatusCode::OK);
}

/// `count` new `k2` tokens sent at once; their statuses.
async fn burst(rig: &Rig, key: &SigningKey, count: usize) -> Vec<Option<StatusCode>> {
    // Signed first, then sent together.
    let tokens: Vec<String> = (0..count).map(|_| fresh_token(&rig.issuer, key)).collect();
    let start = Arc::new(tokio::sync::Barrier::new(count));
    let mut burst = tokio::task::JoinSet::new();
    for token in tokens {
        let (client, url, start) = (rig.client.clone(), rig.url("/auth/r"), start.clone());
        burst.spawn(async move {
            start.wait().await;
            client.get(url).bearer_auth(token).send().await.map(|r| r.status()).ok()
        });
    }
    burst.join_all().await
}

/// **S4, the first tokens of a new key arriving together.** Under load, the first `k2`
/// tokens rarely come one at a time: 20 at once. Pass (S4's "0 failed valid requests"):
/// all 20 accepted, with one fetch.
///
/// Found failing by this test: only the first of them triggered the refetch, and the
/// others, arriving while it was in flight, were refused inside the unknown-`kid` cooldown
/// (19 of 20). `Issuer::refetch_for_unknown_kid` now waits for a fetch in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s4_the_first_tokens_of_a_new_key_arriving_together_all_pass() {
    let timings = Timings { default_refresh: secs(3600.0), ..fast_timings() };
    let rig = Rig::start(RigOptions { timings, ..RigOptions::default() }).await;
    let k2 = SigningKey::rsa("k2").expect("key");
    rig.issuer.add_key(&k2);
    // The issuer takes 200 ms to answer, as a real one may: the 20 overlap the fetch.
    rig.issuer.set_jwks_delay(Duration::from_millis(200));
    let before = rig.issuer.jwks_fetches();
    let answers = burst(&rig, &k2, 20).await;
    let refused = answers.iter().filter(|s| **s != Some(StatusCode::OK)).count();
    figures(
        "s4-burst",
        format_args!("20 first k2 tokens at once: {refused} refused, {} fetch(es)", rig.issuer.jwks_fetches() - before),
    );
    assert_eq!(refused, 0, "first k2 tokens arriving together: {answers:?}");
    assert_eq!(rig.issuer.jwks_fetches() - before, 1);
}

/// **S5, unknown-`kid` flood.** Tokens naming random `kid`s at 1,667 per second (100,000 a
/// minute) from 10 clients beside 100 rps of valid traffic. Pass: JWKS fetches in any window
/// of two cooldowns ≤ 3 (two cooldown refetches and one scheduled); 0 valid failures; valid
/// p99 ≤ 2× the baseline measured just before without the flood.
///
/// Scale-down: a 4 s flood at 500 per second (2,000 tokens: the load generator shares the
/// CI machine's two cores with tollgate) with a 1 s cooldown and a 3 s refresh interval, so
/// the window is 2 s (full: 60 s at 1,667 per second, 100,000 tokens, the contract's 30 s
/// cooldown, a 60 s refresh, a 60 s window); in CI the p99 bound is 3× + 5 ms. `tests/issuer.rs`
/// `a_flood_of_unknown_kids_causes_at_most_one_refetch_per_cooldown` holds the cooldown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s5_unknown_kid_flood_is_held_to_the_cooldown() {
    let _heavy = HEAVY.lock().await;
    let timings = pick(
        Timings {
            unknown_kid_cooldown: secs(1.0),
            default_refresh: secs(3.0),
            min_refresh: secs(3.0),
            ..fast_timings()
        },
        Timings::default(),
    );
    let cooldown = timings.unknown_kid_cooldown;
    let rig = Rig::start(RigOptions {
        timings,
        cache_control: pick(None, Some("max-age=60".into())),
        ..RigOptions::default()
    })
    .await;
    let flood_for = pick(secs(4.0), secs(60.0));
    let baseline = rig.load(100.0, flood_for.min(secs(30.0)), rig.fresh_and_cached()).await;

    let template = rig.fresh_token();
    let flood_auth: Arc<dyn Fn(u64) -> String + Send + Sync> = Arc::new(move |_| {
        let header = json!({ "alg": "RS256", "typ": "at+jwt", "kid": format!("bogus-{}", unique()) });
        format!("Bearer {}", with_header(&template, &header))
    });
    let began = Instant::now();
    let url = rig.url("/auth/r");
    let flood_rate = pick(500.0, 100_000.0 / 60.0);
    let flood = drive(&rig.client, &url, flood_rate, flood_for, 10, flood_auth);
    let (flood, valid) = tokio::join!(flood, rig.load(100.0, flood_for, rig.fresh_and_cached()));
    let fetches = fetches_between(&rig.issuer, began, Instant::now());
    let most = most_in_any_window(&fetches, cooldown * 2);
    figures(
        "s5",
        format_args!(
            "flood: {} | valid baseline: {} | valid under flood: {} | fetches={} most in any {:?}={most}",
            flood.summary(),
            baseline.summary(),
            valid.summary(),
            fetches.len(),
            cooldown * 2
        ),
    );
    assert_eq!(flood.ok(), 0, "a random-kid token passed");
    assert!(flood.total() as f64 >= flood_rate * flood_for.as_secs_f64() * 0.9, "flood short: {}", flood.summary());
    assert!(most <= 3, "{most} JWKS fetches within {:?}: {fetches:?}", cooldown * 2);
    assert_eq!(valid.failed() + baseline.failed(), 0, "{} / {}", baseline.summary(), valid.summary());
    assert_ratio("valid p99 under an unknown-kid flood", valid.p99(), baseline.p99(), 2.0, 3.0);
}

/// The four poisons of S6: HTML, 50 MiB, `{}`, 100,000 keys.
fn poisons(key: &SigningKey) -> Vec<(&'static str, Bytes)> {
    let mut jwk = key.public_jwk();
    let keys: Vec<Value> = (0..100_000)
        .map(|n| {
            jwk["kid"] = json!(format!("p-{n}"));
            jwk.clone()
        })
        .collect();
    vec![
        ("html", Bytes::from_static(b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>")),
        ("50MiB", Bytes::from(vec![b' '; 50 << 20])),
        ("{}", Bytes::from_static(b"{}")),
        ("100k keys", Bytes::from(json!({ "keys": keys }).to_string())),
    ]
}

/// **S6, poisoned refresh.** At each refresh the issuer serves, in turn: HTML, 50 MiB,
/// `{}`, 100,000 keys, while valid traffic goes on. Pass: the previous keys are kept;
/// 0 valid failures; RSS growth < 2 MiB; the failure metric increments for each.
///
/// Scale-down: each poison for 1 s with a refresh every 300 ms (full: 2 min each with the
/// contract's timings and a 60 s refresh), at 50 rps (full: 100). RSS is that of a process
/// running this test alone (`alone`; the mock issuer and the client included), measured
/// after one warm-up round of every poison, so that the allocator's first growth is not
/// counted as tollgate's, with the verified-token cache capped at 1,000 and filled first
/// (the valid traffic's new tokens would otherwise grow it: 24,000 at full length).
/// `tests/issuer.rs` `garbage_key_sets_keep_the_previous_keys` and
/// `an_oversized_key_set_is_refused_and_the_previous_keys_kept` hold single fetches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_poisoned_refresh_keeps_the_previous_keys_and_memory_flat() {
    let _heavy = HEAVY.lock().await;
    if !alone("s6_poisoned_refresh_keeps_the_previous_keys_and_memory_flat").await {
        return;
    }
    let timings = pick(
        Timings {
            retry_min: secs(0.1),
            retry_max: secs(0.3),
            default_refresh: secs(0.3),
            min_refresh: secs(0.3),
            ..Timings::default()
        },
        Timings::default(),
    );
    // The valid traffic's new tokens fill the verified-token cache: cap it, and fill it before
    // memory is measured, so that what is measured is the poisons' cost.
    let rig = Rig::start(RigOptions {
        timings,
        extra: "[cache]\nmax_tokens = 1000\n".into(),
        cache_control: pick(None, Some("max-age=60".into())),
        ..RigOptions::default()
    })
    .await;
    let warm = rig.load(500.0, secs(3.0), rig.fresh_and_cached()).await;
    assert_eq!(warm.failed(), 0, "{}", warm.summary());
    let poisons = poisons(&rig.key);
    let each = pick(secs(1.0), secs(120.0));
    // Warm-up: every poison once, straight through the refresh, then good keys again.
    for (_, body) in &poisons {
        rig.issuer.set_mode(JwksMode::Shared(body.clone()));
        assert!(rig.checker.issuer().refresh().await.is_err());
    }
    rig.issuer.set_mode(JwksMode::Serve);
    rig.checker.issuer().refresh().await.expect("good keys");
    let rss_before = rss_kib(None);

    let mut rows = Vec::new();
    let mut valid = Load::default();
    for (name, body) in &poisons {
        let failures = rig.metric("tollgate_jwks_fetch_failures_total");
        rig.issuer.set_mode(JwksMode::Shared(body.clone()));
        let load = rig.load(pick(50.0, 100.0), each, rig.fresh_and_cached()).await;
        let counted = rig.metric("tollgate_jwks_fetch_failures_total") - failures;
        rows.push(format!("{name}: failures+{counted} kept={}", rig.has_kid("k1")));
        assert!(counted >= 1.0, "{name}: the failure metric did not move");
        assert!(rig.has_kid("k1"), "{name}: the previous keys were dropped");
        valid.merge(load);
    }
    rig.issuer.set_mode(JwksMode::Serve);
    let growth = rss_kib(None) as i64 - rss_before as i64;
    figures("s6", format_args!("{} | valid: {} | RSS growth {growth} KiB", rows.join(", "), valid.summary()));
    assert_eq!(valid.failed(), 0, "valid requests failed during the poisoned refreshes: {}", valid.summary());
    assert!(growth < 2048, "RSS grew by {growth} KiB");
}

// ---------------------------------------------------------------------------------------
// S7–S9, S12: floods of tokens and proofs, the caches and the clock.

/// An app on the real router (`oneshot`) with the system clock, for floods that need no
/// sockets.
async fn router_app(extra: &str, key: SigningKey, clock: Arc<dyn Clock>) -> (MockIssuer, Arc<Checker>, SigningKey) {
    router_app_with(extra, "", key, clock).await
}

/// `router_app` with `issuer_lines` added to `[issuer]`.
async fn router_app_with(
    extra: &str,
    issuer_lines: &str,
    key: SigningKey,
    clock: Arc<dyn Clock>,
) -> (MockIssuer, Arc<Checker>, SigningKey) {
    let issuer = MockIssuer::start(&[&key]).await;
    let text = with_issuer_keys(&config_text(&issuer.issuer(), "envoy", extra), issuer_lines);
    let config = Config::load(&text, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    let checker = Checker::from_config(config, fast_timings(), clock).expect("checker");
    checker.issuer().refresh().await.expect("keys");
    (issuer, checker, key)
}

/// `GET /auth{path}` through the real router, from 127.0.0.1.
async fn oneshot(checker: &Arc<Checker>, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    use tower::ServiceExt;
    let app = tollgate::server::app(checker.clone())
        .layer(axum::extract::connect_info::MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let response = app.oneshot(request("GET", &format!("/auth{path}"), headers)).await.expect("infallible");
    let status = response.status();
    let body = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// **S7, garbage-token flood.** Distinct well-formed tokens with bad signatures and a known
/// `kid`, from 10 concurrent clients. Pass: the verified-token cache is unchanged; RSS growth
/// < 5 MiB; 0 JWKS fetches.
///
/// Scale-down: 20,000 tokens (full: 1,000,000), through the real router without sockets; RSS
/// is that of a process running this test alone (`alone`), measured after 2,000 warm-up
/// tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s7_garbage_token_flood_leaves_cache_memory_and_issuer_alone() {
    let _heavy = HEAVY.lock().await;
    if !alone("s7_garbage_token_flood_leaves_cache_memory_and_issuer_alone").await {
        return;
    }
    let (issuer, checker, key) =
        router_app("", SigningKey::rsa("k1").expect("key"), Arc::new(SystemClock) as Arc<dyn Clock>).await;
    let valid = fresh_token(&issuer, &key);
    assert_eq!(oneshot(&checker, "/r", &[("authorization", &format!("Bearer {valid}"))]).await.0, StatusCode::OK);
    let cached = checker.cache().len();
    let fetches = issuer.jwks_fetches();
    let (header, _) = valid.split_once('.').unwrap();
    let header = header.to_string();
    let iss = issuer.issuer();
    let garbage = move |n: u64| {
        let payload = json!({ "iss": iss, "aud": AUDIENCE, "sub": "mallory", "iat": now(), "exp": now() + 600, "jti": format!("g-{n}") });
        let mut signature = [0u8; 256];
        signature[..8].copy_from_slice(&n.to_le_bytes());
        format!("Bearer {header}.{}.{}", b64(payload.to_string().as_bytes()), b64(&signature))
    };
    let garbage = Arc::new(garbage);
    let flood = |from: u64, count: u64| {
        let (checker, garbage) = (checker.clone(), garbage.clone());
        async move {
            let next = Arc::new(AtomicU64::new(from));
            let refused = Arc::new(AtomicUsize::new(0));
            let mut clients = Vec::new();
            for _ in 0..10 {
                let (checker, garbage, next, refused) =
                    (checker.clone(), garbage.clone(), next.clone(), refused.clone());
                clients.push(tokio::spawn(async move {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= from + count {
                            return;
                        }
                        let (status, body) = oneshot(&checker, "/r", &[("authorization", &garbage(n))]).await;
                        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            for client in clients {
                client.await.expect("client");
            }
            refused.load(Ordering::Relaxed)
        }
    };
    flood(0, 2_000).await;
    let rss_before = rss_kib(None);
    let count = pick(20_000, 1_000_000);
    let started = Instant::now();
    let refused = flood(1_000_000_000, count).await;
    let took = started.elapsed();
    let growth = rss_kib(None) as i64 - rss_before as i64;
    figures(
        "s7",
        format_args!(
            "{refused} garbage tokens in {took:.1?} ({:.0}/s) | cache {cached} -> {} | RSS growth {growth} KiB | JWKS fetches +{}",
            refused as f64 / took.as_secs_f64(),
            checker.cache().len(),
            issuer.jwks_fetches() - fetches
        ),
    );
    assert_eq!(refused as u64, count);
    assert_eq!(checker.cache().len(), cached, "garbage entered the verified-token cache");
    assert_eq!(issuer.jwks_fetches(), fetches, "tokens with a known kid caused JWKS fetches");
    assert!(growth < 5 * 1024, "RSS grew by {growth} KiB");
}

/// **S8, valid-token churn.** Distinct valid tokens (`exp` 60 s) beyond the cache's
/// capacity. Pass: cache entries ≤ the cap; RSS < 30 MB with 100,000 cached (the real
/// binary's RSS); expired entries never served.
///
/// Scale-down: the binary's cache capped at 20,000 and fed 25,000 tokens, its RSS growth
/// per cached token extrapolated to 100,000 over its RSS before (full: cap 100,000, 1,000,000
/// tokens, RSS read as is); in a debug build (CI) the binary's idle RSS is not the release
/// binary's, so there the bound is on the growth per cached token (< 250 B, a guard against
/// regressions, looser than the criterion: 30 MB less the release binary's 10 MB idle
/// leaves 200 B per token, 214 B were measured; the criterion itself is checked at full
/// length). The router part holds the cap and the expiry with 3,000 tokens and a cap of
/// 1,000 on a manual clock (full: 1,000,000 tokens and 100,000). ES256 tokens, so that
/// signing them is not the test's cost, each with a `sub` and `scope` shaped like Auth0's
/// (`auth0|` and 24 hex digits, `read:orders`): what a cached token costs grows with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_valid_token_churn_keeps_the_cache_bounded_and_never_serves_expired() {
    let _heavy = HEAVY.lock().await;
    // The router on a manual clock: the cap, and expiry of cached tokens.
    let clock = Arc::new(ManualClock::new(now()));
    let (cap, tokens) = pick((1_000usize, 3_000u64), (100_000, 1_000_000));
    let (issuer, checker, key) = {
        let key = SigningKey::p256("e1").expect("key");
        let issuer = MockIssuer::start(&[&key]).await;
        let text = with_issuer_keys(
            &config_text(&issuer.issuer(), "envoy", &format!("[cache]\nmax_tokens = {cap}\n")),
            "algorithms = [\"ES256\"]",
        );
        let config = Config::load(&text, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
        let checker = Checker::from_config(config, fast_timings(), clock.clone() as Arc<dyn Clock>).expect("checker");
        checker.issuer().refresh().await.expect("keys");
        (issuer, checker, key)
    };
    let t0 = clock.now();
    let mut most = 0;
    let mut last = Vec::new();
    for n in 0..tokens {
        let token = issuer.token(&key, t0).claim("exp", json!(t0 + 60)).claim("jti", json!(format!("c-{n}"))).sign();
        let (status, body) = oneshot(&checker, "/r", &[("authorization", &format!("Bearer {token}"))]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        most = most.max(checker.cache().len());
        if n + 100 >= tokens {
            last.push(token);
        }
    }
    let hits = metric(&checker.render_metrics(), "tollgate_token_cache_hits_total");
    // A second before their exp, used twice each: the second use is served from the cache.
    clock.set(t0 + 59);
    for token in last.iter().chain(&last) {
        assert_eq!(oneshot(&checker, "/r", &[("authorization", &format!("Bearer {token}"))]).await.0, StatusCode::OK);
    }
    let served = metric(&checker.render_metrics(), "tollgate_token_cache_hits_total") - hits;
    clock.set(t0 + 60);
    for token in &last {
        let (status, body) = oneshot(&checker, "/r", &[("authorization", &format!("Bearer {token}"))]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "an expired cached token was accepted: {body}");
    }

    // The real binary's memory with its cache full.
    let (bin_cap, bin_tokens) = pick((20_000usize, 25_000u64), (100_000, 1_000_000));
    let binary = Binary::start("s8", &issuer, &format!("[cache]\nmax_tokens = {bin_cap}\n"), "ES256").await;
    let rss_before = rss_kib(Some(binary.process.id()));
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (client, url, next, issuer, key) =
            (binary.client.clone(), binary.url("/auth/r"), next.clone(), issuer.clone(), key.clone_key().expect("key"));
        clients.push(tokio::spawn(async move {
            let mut failed = 0;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= bin_tokens {
                    return failed;
                }
                let token = issuer
                    .token(&key, now())
                    .claim("exp", json!(now() + 60))
                    .claim("jti", json!(format!("b-{n}")))
                    .claim("sub", json!(auth0_subject(n)))
                    .claim("scope", json!("read:orders"))
                    .sign();
                let ok = client.get(&url).bearer_auth(token).send().await.is_ok_and(|r| r.status() == StatusCode::OK);
                failed += usize::from(!ok);
            }
        }));
    }
    let mut failed = 0;
    for client in clients {
        failed += client.await.expect("client");
    }
    let took = started.elapsed();
    let rss_after = rss_kib(Some(binary.process.id()));
    let per_token = (rss_after as f64 - rss_before as f64) * 1024.0 / bin_cap as f64;
    let at_100k_mb = if bin_cap >= 100_000 {
        rss_after as f64 * 1024.0 / 1e6
    } else {
        (rss_before as f64 * 1024.0 + per_token * 100_000.0) / 1e6
    };
    figures(
        "s8",
        format_args!(
            "router: {tokens} tokens, cap {cap}, most cached {most}, cache hits a second before exp {served} ({} tokens, each used twice), 0 accepted at exp | binary: {bin_tokens} tokens in {took:.1?}, cap {bin_cap}, RSS {} KiB -> {} KiB, {per_token:.0} B per cached token, RSS with 100k cached {at_100k_mb:.1} MB",
            last.len(),
            rss_before,
            rss_after
        ),
    );
    assert!(most <= cap, "{most} cache entries over a cap of {cap}");
    assert!(served as usize >= last.len(), "only {served} of {} uses served from the cache before exp", last.len());
    assert_eq!(failed, 0, "valid tokens refused by the binary");
    if cfg!(debug_assertions) && bin_cap < 100_000 {
        // An unoptimized binary idles at about twice the release binary's RSS (14 MB against
        // 7.8 MB): hold the cache's own cost here, the 30 MB at full length in release.
        assert!(per_token < 250.0, "{per_token:.0} B per cached token");
    } else {
        assert!(at_100k_mb < 30.0, "RSS with 100,000 cached tokens: {at_100k_mb:.1} MB");
    }
}

/// A `sub` as Auth0 writes one for a database user: `auth0|` and 24 hex digits.
fn auth0_subject(n: u64) -> String {
    format!("auth0|{n:024x}")
}

/// The real `tollgate` binary (envoy dialect) in front of `issuer`; killed by pid on drop.
struct Binary {
    process: ProcessGuard,
    port: u16,
    client: reqwest::Client,
    _dir: TempDir,
}

impl Binary {
    async fn start(name: &str, issuer: &MockIssuer, extra: &str, alg: &str) -> Binary {
        let dir = TempDir::new(&format!("faults-{name}"));
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().expect("client");
        for attempt in 1..=3 {
            let port = free_port();
            let text = with_issuer_keys(
                &format!("listen = \"127.0.0.1:{port}\"\n{}", config_text(&issuer.issuer(), "envoy", extra)),
                &format!("algorithms = [\"{alg}\"]"),
            );
            let config = dir.path().join("tollgate.toml");
            std::fs::write(&config, text).expect("write config");
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"));
            command.arg("serve").arg("--config").arg(&config);
            let mut process = spawn("tollgate", command, dir.path().join("tollgate.log"));
            if wait_until_ok(&mut process, &client, &format!("http://127.0.0.1:{port}/readyz")).await {
                return Binary { process, port, client, _dir: dir };
            }
            assert!(attempt < 3, "tollgate exited during startup:\n{}", process.output());
        }
        unreachable!()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// **S9, replay-store flood.** Unique valid DPoP proofs at the maximum rate, then idle.
/// Pass: entries ≤ proofs accepted in the last 330 s (the proof window); back near 0 within
/// the window and one sweep interval after the flood; bytes per entry reported (target
/// ≤ 64 B); at the cap, refuse (503), never evict.
///
/// Scale-down: through the real router on a manual clock, the cap at 1,000 and 1,100 proofs
/// (full: a cap of 100,000 and as many proofs as 60 s allow), and the store the checker
/// uses (`MemoryStore`) flooded on a simulated clock for 60 s at the rate measured through
/// the router (at least 10,000/s), then the clock moved past the window with a trickle of
/// 100 proofs (inserts sweep; a store left with no insert at all is swept by its timer,
/// `s9_a_replay_store_left_idle_is_emptied_by_its_timed_sweep`). `src/dpop/replay/tests.rs`
/// holds the store's rules one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_replay_store_flood_stays_within_the_window_and_refuses_at_the_cap() {
    let _heavy = HEAVY.lock().await;
    use tollgate::dpop::replay::MemoryStore;
    let clock = Arc::new(ManualClock::new(now()));
    let cap = pick(1_000usize, 100_000);
    let client_key = SigningKey::p256("client").expect("key");
    let (issuer, checker, key) = router_app(
        &format!("[dpop]\nreplay_capacity = {cap}\n"),
        SigningKey::rsa("k1").expect("key"),
        clock.clone() as Arc<dyn Clock>,
    )
    .await;
    let token = issuer.token(&key, clock.now()).claim("cnf", json!({ "jkt": jkt(&client_key) })).sign();
    let auth = format!("DPoP {token}");
    let htu = "https://api.example.com/r";
    let send = |proof: String| {
        let (checker, auth) = (checker.clone(), auth.clone());
        async move {
            let headers = [
                ("host", "api.example.com"),
                ("x-forwarded-proto", "https"),
                ("authorization", auth.as_str()),
                ("dpop", proof.as_str()),
            ];
            oneshot(&checker, "/r", &headers).await
        }
    };
    // CI: just past the cap; full: 60 s at the maximum rate (well past the cap).
    let flood_for = pick(None, Some(secs(60.0)));
    let started = Instant::now();
    let mut accepted = Vec::new();
    let mut full_refusals = 0;
    let mut n = 0usize;
    while flood_for.map_or(n < cap + 100, |limit| started.elapsed() < limit) {
        let proof = ProofBuilder::new(&client_key, "GET", htu, &token, clock.now()).sign();
        let (status, body) = send(proof.clone()).await;
        match status {
            StatusCode::OK => accepted.push(proof),
            StatusCode::SERVICE_UNAVAILABLE => full_refusals += 1,
            other => panic!("proof {n}: {other} {body}"),
        }
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let mut replays_refused = 0;
    for proof in accepted.iter().take(100) {
        let (status, body) = send(proof.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "an accepted proof replayed at the cap: {body}");
        assert!(body.contains("invalid_dpop_proof"), "{body}");
        replays_refused += 1;
    }
    // Past the window, the full store makes room again.
    clock.set(clock.now() + 331);
    let fresh = ProofBuilder::new(&client_key, "GET", htu, &token, clock.now()).sign();
    let after_window = send(fresh).await.0;

    // The same store on a simulated clock: 60 s at the measured rate, then past the window.
    let store = MemoryStore::new(tollgate::dpop::replay::DEFAULT_CAPACITY);
    let per_second = (rate as u64).max(10_000);
    let (t0, window) = (1_700_000_000i64, 330i64);
    let rss_before = rss_kib(None);
    let mut key_n = 0u64;
    let mut next_key = || {
        key_n += 1;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &key_n.to_le_bytes());
        <[u8; 32]>::try_from(digest.as_ref()).expect("32 bytes")
    };
    let mut over_window = 0;
    for second in 0..60 {
        for _ in 0..per_second {
            store.insert(next_key(), t0 + second + window, t0 + second).expect("room");
        }
        // Every entry held was accepted within the last `window` seconds.
        if store.len() as u64 > per_second * (second as u64 + 1).min(window as u64 + 1) {
            over_window += 1;
        }
    }
    let held_at_peak = store.len();
    let bytes_per_entry = (rss_kib(None) as f64 - rss_before as f64) * 1024.0 / held_at_peak as f64;
    let quiet = t0 + 59 + window + 1;
    for s in 0..100 {
        store.insert(next_key(), quiet + s + window, quiet + s).expect("room");
    }
    let held_after = store.len();
    figures(
        "s9",
        format_args!(
            "router: {n} proofs at {rate:.0}/s, cap {cap}: {} accepted, {full_refusals} refused 503 at the cap, {replays_refused} replays refused | store: {per_second}/s for 60 s -> {held_at_peak} held, {bytes_per_entry:.0} B per entry (RSS), {held_after} held after the window + 100 proofs",
            accepted.len()
        ),
    );
    assert_eq!(accepted.len(), cap.min(n), "proofs accepted below the cap");
    assert!(full_refusals > 0, "the cap was never reached");
    assert_eq!(after_window, StatusCode::OK, "a new proof past the window on a full store");
    assert_eq!(over_window, 0, "entries held beyond the proofs of the window");
    assert!(held_after <= 200, "{held_after} entries held after the window passed");
}

/// **S9, idle after the flood.** A replay store flooded, then left without a single insert:
/// back near 0 within the proof window and one sweep interval after the flood, by its own
/// timed sweep (inserts sweep too, but an idle store has none). Entries live through their
/// expiry are never swept early.
///
/// Scale-down: the proofs' window is 3 s instead of 330 s and the sweep interval 1 s instead
/// of `SWEEP_EVERY` (30 s), on the system clock; 2 s of 100,000 proofs/s (full: 450,000/s,
/// close to the default capacity). The store is the one the checker uses (`MemoryStore`),
/// made inside the runtime as the checker makes it. RSS is this process's, run alone, and
/// only reported: the allocator decides when freed tables leave it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s9_a_replay_store_left_idle_is_emptied_by_its_timed_sweep() {
    use tollgate::dpop::replay::{DEFAULT_CAPACITY, MemoryStore};
    let _heavy = HEAVY.lock().await;
    if !alone("s9_a_replay_store_left_idle_is_emptied_by_its_timed_sweep").await {
        return;
    }
    let (window, every) = (3i64, Duration::from_secs(1));
    let per_second = pick(100_000u64, 450_000);
    let store = Arc::new(MemoryStore::with_sweep_interval(DEFAULT_CAPACITY, every));
    let rss_before = rss_kib(None);
    let mut n = 0u64;
    let mut expiries = (i64::MAX, i64::MIN);
    let started = Instant::now();
    // 2 s of proofs at `per_second`, in batches every 10 ms, each live for `window` s.
    while started.elapsed() < secs(2.0) {
        let due = (started.elapsed().as_secs_f64() * per_second as f64) as u64;
        while n < due {
            n += 1;
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &n.to_le_bytes());
            let key = <[u8; 32]>::try_from(digest.as_ref()).expect("32 bytes");
            let now = SystemClock.now();
            store.insert(key, now + window, now).expect("room and new");
            expiries = (expiries.0.min(now + window), expiries.1.max(now + window));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let held_at_peak = store.len();
    let rss_peak = rss_kib(None);
    // Still within the first proofs' window: nothing live was swept.
    let early = SystemClock.now() <= expiries.0;
    let held_early = store.len();
    // Idle from here: watch the store empty, polling every 0.2 ms off the runtime. Each
    // timed sweep shows as a burst of drops (a shard at a time); bursts are a tick apart.
    let watched = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + secs((window + 10) as f64);
            let (mut held, mut first_freed_wall) = (held_at_peak, None);
            // (start, last drop, entries freed) of each burst.
            let mut bursts: Vec<(Instant, Instant, usize)> = Vec::new();
            while Instant::now() < deadline {
                let now_held = store.len();
                if now_held < held {
                    let at = Instant::now();
                    first_freed_wall.get_or_insert(SystemClock.now());
                    match bursts.last_mut() {
                        Some(burst) if at.duration_since(burst.1) < Duration::from_millis(100) => {
                            burst.1 = at;
                            burst.2 += held - now_held;
                        }
                        _ => bursts.push((at, at, held - now_held)),
                    }
                    held = now_held;
                }
                if held == 0 {
                    return Some((first_freed_wall, bursts));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            None
        })
    };
    let outcome = watched.await.expect("watcher");
    let emptied_wall = SystemClock.now();
    let rss_after = rss_kib(None);
    let (first_freed_wall, bursts) = outcome.unwrap_or_else(|| panic!("{} entries still held", store.len()));
    let freed_wall = first_freed_wall.expect("a first sweep before empty");
    let sweeps: Vec<String> =
        bursts.iter().map(|(start, end, freed)| format!("{freed} in {:.1?}", end.duration_since(*start))).collect();
    figures(
        "s9-idle",
        format_args!(
            "{n} proofs in 2 s (window {window} s, timed sweep every {} s): {held_at_peak} held after the flood; timed sweeps freed [{}], a tick apart; first freed at wall second {freed_wall} (expiries {}..={}), empty at wall second {emptied_wall}, {:.1} s after the flood | RSS {rss_before} -> {rss_peak} -> {rss_after} KiB",
            every.as_secs(),
            sweeps.join(", "),
            expiries.0,
            expiries.1,
            started.elapsed().as_secs_f64() - 2.0
        ),
    );
    assert_eq!(held_at_peak as u64, n, "entries lost during the flood");
    if early {
        assert_eq!(held_early, held_at_peak, "live entries swept before their expiry");
    }
    assert!(freed_wall > expiries.0, "an entry swept at wall second {freed_wall}, live through {}", expiries.0);
    // Back to 0 within the window and one sweep interval after the flood: the last entry is
    // live through second `expiries.1`, the store tells the time under a second behind the
    // inserts' clock (`MemoryStore`'s timed sweep), then the next tick; in CI a second of
    // slack for a busy machine.
    let bound = expiries.1 + 1 + 1 + every.as_secs() as i64 + if full() { 0 } else { 1 };
    assert!(emptied_wall <= bound, "empty only at wall second {emptied_wall}, bound {bound}");
}

/// **S12, cache against expiry.** A token with `exp` = now + 2 s is cached at t0; a request
/// every 100 ms for 5 s. Pass: accepted until `exp` (+ leeway), refused after: 0 stale
/// accepts. Run with leeway 0 and 2 s side by side, on the system clock.
///
/// Not scaled: it is 5 s long as written. `tests/bearer.rs` holds the exact `exp` boundary
/// on a manual clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s12_a_cached_token_is_refused_from_its_exp_on() {
    async fn run(leeway: i64) -> (usize, usize, usize) {
        let (issuer, checker, key) = router_app_with(
            "",
            &format!("leeway = {leeway}"),
            SigningKey::rsa("k1").expect("key"),
            Arc::new(SystemClock) as Arc<dyn Clock>,
        )
        .await;
        let exp = now() + 2;
        let token = issuer.token(&key, now()).claim("exp", json!(exp)).sign();
        let auth = format!("Bearer {token}");
        let (mut accepted, mut refused, mut stale) = (0, 0, 0);
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(5) {
            let before = SystemClock.now();
            let (status, body) = oneshot(&checker, "/r", &[("authorization", &auth)]).await;
            let after = SystemClock.now();
            match status {
                StatusCode::OK => {
                    accepted += 1;
                    if before >= exp + leeway {
                        stale += 1;
                    }
                }
                StatusCode::UNAUTHORIZED => {
                    refused += 1;
                    assert!(after >= exp + leeway, "refused before exp + leeway ({leeway}): {body}");
                }
                other => panic!("{other}: {body}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (accepted, refused, stale)
    }
    let (zero, two) = tokio::join!(run(0), run(2));
    figures("s12", format_args!("leeway 0: (accepted, refused, stale) {zero:?} | leeway 2: {two:?}"));
    for (leeway, (accepted, refused, stale)) in [(0, zero), (2, two)] {
        assert_eq!(stale, 0, "leeway {leeway}: stale accepts");
        assert!(accepted >= 5 && refused >= 5, "leeway {leeway}: {accepted} accepted, {refused} refused");
    }
}

// ---------------------------------------------------------------------------------------
// S10, S13, S14: Redis, slow clients, a real gateway.

/// **S13, slowloris.** Connections that send their headers one byte at a time, held open
/// (each replaced when the server closes it), beside 100 rps of valid traffic. Pass: slow
/// connections are closed at the header timeout (its value reported); valid p99 ≤ 2× the
/// baseline measured just before; file descriptors bounded (back to the baseline after).
///
/// Scale-down: 200 connections for 4 s, a byte every 250 ms, a 1 s header timeout (full:
/// 2,000 for 5 min, a byte every second, the shipped 10 s timeout); in CI the p99 bound is
/// 3× + 5 ms. The attackers run on this machine too, on a thread of their own. A
/// connection may also end early (a reset while the listen queue overflows): the bound
/// checked is that none outlives the timeout, and that most end at it. `tests/server.rs` `a_client_that_sends_headers_slowly_is_disconnected` holds
/// one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s13_slowloris_connections_are_cut_at_the_header_timeout() {
    let _heavy = HEAVY.lock().await;
    let header_timeout = pick(secs(1.0), tollgate::server::HEADER_READ_TIMEOUT);
    let rig = Rig::start(RigOptions { header_timeout, ..RigOptions::default() }).await;
    let (conns, phase, byte_every) = pick((200usize, secs(4.0), secs(0.25)), (2_000, secs(300.0), secs(1.0)));
    let baseline = rig.load(100.0, pick(secs(3.0), secs(30.0)), rig.fresh_and_cached()).await;
    let fds_before = open_fds();

    let stop_at = Instant::now() + phase;
    let lifetimes = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let most_fds = Arc::new(AtomicUsize::new(0));
    // The attackers run on a thread of their own, not on the runtime serving and measuring.
    let attack = {
        let (addr, lifetimes) = (rig.addr, lifetimes.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let mut attackers = tokio::task::JoinSet::new();
                for _ in 0..conns {
                    attackers.spawn(slow_client(addr, stop_at, byte_every, lifetimes.clone()));
                }
                attackers.join_all().await;
            });
        })
    };
    let sampler = {
        let most_fds = most_fds.clone();
        tokio::spawn(async move {
            while Instant::now() < stop_at {
                most_fds.fetch_max(open_fds(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // Valid traffic once the slow connections are all open.
    tokio::time::sleep(header_timeout.mul_f64(0.5)).await;
    let valid = rig.load(100.0, stop_at.saturating_duration_since(Instant::now()), rig.fresh_and_cached()).await;
    tokio::task::spawn_blocking(move || attack.join().expect("attackers")).await.expect("join");
    sampler.await.expect("sampler");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fds_after = open_fds();
    let mut lifetimes = lifetimes.lock().unwrap().clone();
    lifetimes.sort();
    let q = |f: f64| lifetimes.get(((lifetimes.len().max(1) - 1) as f64 * f) as usize).copied().unwrap_or_default();
    figures(
        "s13",
        format_args!(
            "header timeout {header_timeout:?}: {} slow connections closed ({} before 0.9× the timeout), lifetime min {:?} median {:?} max {:?} | baseline: {} | under attack: {} | fds {fds_before} -> most {} -> {fds_after}",
            lifetimes.len(),
            lifetimes.iter().filter(|l| **l < header_timeout.mul_f64(0.9)).count(),
            q(0.0),
            q(0.5),
            q(1.0),
            baseline.summary(),
            valid.summary(),
            most_fds.load(Ordering::Relaxed)
        ),
    );
    assert!(lifetimes.len() >= conns, "only {} slow connections were closed", lifetimes.len());
    assert!(q(0.5) >= header_timeout.mul_f64(0.9), "slow connections closed before the timeout: median {:?}", q(0.5));
    assert!(q(1.0) <= header_timeout + secs(1.0), "a slow connection outlived the timeout: {:?}", q(1.0));
    assert_eq!(baseline.failed() + valid.failed(), 0, "{} / {}", baseline.summary(), valid.summary());
    // Both ends of every connection are in this process: two per slow connection, plus slack.
    assert!(most_fds.load(Ordering::Relaxed) <= fds_before + 2 * conns + 200, "fds grew beyond the connections");
    assert!(fds_after <= fds_before + 50, "fds not released: {fds_before} -> {fds_after}");
    assert_ratio("valid p99 beside slowloris", valid.p99(), baseline.p99(), 2.0, 3.0);
}

/// One slowloris client: opens a connection, sends a request head one byte every
/// `byte_every` without ever finishing it, records how long the server kept it, and opens
/// another, until `stop_at`.
async fn slow_client(addr: SocketAddr, stop_at: Instant, byte_every: Duration, lifetimes: Arc<Mutex<Vec<Duration>>>) {
    while Instant::now() < stop_at {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let opened = Instant::now();
        let _ = stream.write_all(b"GET /auth/r HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
        let mut buf = [0u8; 512];
        let closed = loop {
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break true,
                    Ok(_) => {} // hyper's 408, then the close
                },
                _ = tokio::time::sleep(byte_every) => {
                    if Instant::now() >= stop_at { break false; }
                    if stream.write_all(b"a").await.is_err() { break true; }
                }
            }
        };
        if closed {
            lifetimes.lock().unwrap().push(opened.elapsed());
        }
    }
}

/// **S10, replicas and Redis.** Two `tollgate` binaries sharing one `redis-server` as their
/// replay store; each proof is sent to A, then replayed to B; Redis is killed mid-run (with
/// DPoP and Bearer traffic going to both replicas) and restarted on the same port. Pass:
/// every replay to B refused; while Redis is down 0 DPoP requests accepted (503) on either
/// replica and every Bearer request accepted; DPoP accepted again ≤ 5 s after Redis returns,
/// on both.
///
/// Scale-down: 300 proofs before the outage and 200 after, a 2 s outage (full: 1,000 and
/// 1,000, 30 s). `tests/redis.rs` holds the rest at full size:
/// `a_proof_replayed_to_another_replica_is_refused` (1,000/1,000 with Redis up) and
/// `while_redis_is_down_dpop_gets_503_and_bearer_is_unaffected` (one replica, its
/// latency while Redis is down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s10_replicas_share_redis_and_refuse_dpop_while_it_is_down() {
    use support::redis_server::{DpopClient, REPLAYED, RedisServer, Tollgate};
    let port = free_port();
    let mut redis = RedisServer::start(port);
    let signer = SigningKey::rsa("k1").expect("key");
    let issuer = MockIssuer::start(&[&signer]).await;
    let dir = TempDir::new("faults-redis");
    let a = Tollgate::start(dir.path(), "a", &issuer, &redis.url()).await;
    let b = Tollgate::start(dir.path(), "b", &issuer, &redis.url()).await;
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let dpop = DpopClient::new(&issuer, &signer);
    let bearer = format!("Bearer {}", issuer.token(&signer, now()).sign());
    let (before, after, outage) = pick((300, 200, secs(2.0)), (1_000, 1_000, secs(30.0)));

    let mut replays = (0, 0);
    let mut a_then_b = async |count: usize| {
        for n in 0..count {
            let proof = dpop.proof();
            let first = a.check(&client, &dpop.authorization(), Some(&proof)).await;
            assert_eq!(first.status, 200, "proof {n} to A: {first:?}\n{}", a.log());
            let again = b.check(&client, &dpop.authorization(), Some(&proof)).await;
            replays.0 += 1;
            if again.status == 401 && again.challenges.first().map(String::as_str) == Some(REPLAYED) {
                replays.1 += 1;
            }
        }
    };
    a_then_b(before).await;

    redis.kill();
    let down = Instant::now();
    let (mut dpop_down, mut dpop_accepted, mut bearer_down, mut bearer_failed) = (0, 0, 0, 0);
    while down.elapsed() < outage {
        for replica in [&a, &b] {
            let reply = replica.check(&client, &dpop.authorization(), Some(&dpop.proof())).await;
            dpop_down += 1;
            if reply.status != 503 {
                dpop_accepted += usize::from(reply.status == 200);
                assert_eq!(reply.status, 503, "DPoP with Redis down: {reply:?}");
            }
            let reply = replica.check(&client, &bearer, None).await;
            bearer_down += 1;
            bearer_failed += usize::from(reply.status != 200);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let _redis = RedisServer::start(port);
    let restarted = Instant::now();
    let mut recovered = Vec::new();
    for replica in [&a, &b] {
        loop {
            let reply = replica.check(&client, &dpop.authorization(), Some(&dpop.proof())).await;
            if reply.status == 200 {
                recovered.push(restarted.elapsed());
                break;
            }
            assert_eq!(reply.status, 503, "while Redis comes back: {reply:?}");
            assert!(restarted.elapsed() < Duration::from_secs(5), "DPoP still refused 5 s after Redis returned");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    a_then_b(after).await;
    figures(
        "s10",
        format_args!(
            "replays refused {}/{} | Redis down {outage:?}: DPoP {dpop_down} sent, {dpop_accepted} accepted; Bearer {bearer_down} sent, {bearer_failed} failed | DPoP back after {recovered:?} (A, B)",
            replays.1, replays.0
        ),
    );
    assert_eq!(replays.1, replays.0, "replays to B accepted");
    assert_eq!(dpop_accepted, 0);
    assert_eq!(bearer_failed, 0, "Bearer requests failed while Redis was down");
}

/// `trusted` for `Options`, with the public origin pinned (it goes in `[proxy]`).
const PINNED: &str = "[\"127.0.0.1/32\", \"::1/128\"]\npublic_origins = [\"https://api.example.com\"]";

/// **S14, through a real gateway.** nginx from Debian in front of tollgate, the shipped
/// `deploy/nginx/tollgate.conf` unchanged but for its addresses, an echo upstream. Pass:
/// research rows 48, 76, 78, 86, 92 and 95 reproduce at the client with the status and
/// challenge tollgate gives. Here: rows 48 and 76 with DPoP required and disabled, and row 86
/// (a spoofed `Host` with the origin pinned). Not scaled.
///
/// `tests/nginx.rs` holds the rest through the same stack: rows 48 and 76 with DPoP allowed
/// (`no_token_gets_bare_bearer_challenge`,
/// `replayed_wrong_url_and_bearer_used_bound_tokens_get_401_with_the_dpop_challenge`), row
/// 78 (the same test), row 92 (`paths_are_judged_as_upstream_routers_read_them`) and row 95
/// (`client_sent_auth_headers_never_reach_upstream`); `tests/traefik.rs` and
/// `tests/caddy.rs` hold them behind Traefik and Caddy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s14_refusals_reach_the_client_unchanged_through_nginx() {
    use e2e::gateways::nginx::Nginx;
    use e2e::{BEARER, DPOP, Options, Stack};
    let first = |reply: &e2e::Reply| reply.challenges().first().cloned().unwrap_or_default();

    // DPoP required: no credentials get the DPoP challenge alone; a bound token as Bearer
    // is refused with it too (the contract: where DPoP is required a 401 carries the DPoP
    // challenge only, so the Bearer scheme is answered as no DPoP credentials, `unauthorized`).
    let required =
        Stack::start(&Nginx::new(), Options { extra: "[dpop]\nrequired = true\n", ..Options::default() }).await;
    let bare = required.send("GET", "/orders", &[]).await;
    assert_eq!(bare.status, StatusCode::UNAUTHORIZED, "{bare:?}{}", required.logs());
    assert_eq!(first(&bare), DPOP, "row 48, DPoP required: {bare:?}");
    assert!(bare.challenges().iter().all(|c| !c.starts_with("Bearer")), "{bare:?}");
    let bound = required.issuer.bound_token("read");
    let as_bearer = required.send("GET", "/orders", &[("authorization", &format!("Bearer {bound}"))]).await;
    assert_eq!(as_bearer.status, StatusCode::UNAUTHORIZED, "{as_bearer:?}");
    assert_eq!(as_bearer.challenges(), vec![DPOP.to_string()], "row 76, DPoP required: {as_bearer:?}");
    assert_eq!(as_bearer.error().as_deref(), Some("unauthorized"), "{as_bearer:?}");
    drop(required);

    // DPoP disabled: only the Bearer challenge; a bound token as Bearer still refused.
    let disabled =
        Stack::start(&Nginx::new(), Options { extra: "[dpop]\nenabled = false\n", ..Options::default() }).await;
    let bare = disabled.send("GET", "/orders", &[]).await;
    assert_eq!(bare.status, StatusCode::UNAUTHORIZED, "{bare:?}{}", disabled.logs());
    assert_eq!(bare.challenges(), vec![BEARER.to_string()], "row 48, DPoP disabled");
    let bound = disabled.issuer.bound_token("read");
    let as_bearer = disabled.send("GET", "/orders", &[("authorization", &format!("Bearer {bound}"))]).await;
    assert_eq!(as_bearer.status, StatusCode::UNAUTHORIZED, "row 76, DPoP disabled (fail closed): {as_bearer:?}");
    assert!(first(&as_bearer).starts_with("Bearer realm=\"api\", error=\"invalid_token\""), "{as_bearer:?}");
    drop(disabled);

    // The origin pinned: a client-chosen Host and a proof for it are refused.
    let pinned = Stack::start(&Nginx::new(), Options { trusted: PINNED, ..Options::default() }).await;
    let token = pinned.issuer.bound_token("read");
    let port = pinned.base.rsplit(':').next().expect("port").to_string();
    let evil_host = format!("evil.example:{port}");
    let proof = pinned.issuer.proof("GET", &format!("http://{evil_host}/orders"), &token);
    let spoofed = pinned
        .send("GET", "/orders", &[("host", &evil_host), ("authorization", &format!("DPoP {token}")), ("dpop", &proof)])
        .await;
    assert_eq!(spoofed.status, StatusCode::UNAUTHORIZED, "row 86, origin pinned: {spoofed:?}{}", pinned.logs());
    assert!(
        first(&spoofed).starts_with("DPoP error=\"invalid_dpop_proof\", error_description=\"DPoP proof htu mismatch\""),
        "{spoofed:?}"
    );
    figures(
        "s14",
        format_args!(
            "nginx: rows 48/76 with DPoP required and disabled, row 86 pinned: {} {}",
            spoofed.status,
            first(&spoofed)
        ),
    );
}
