//! The soak driver of `scripts/soak.sh` (issue 14): a development issuer, the API nginx
//! proxies to, and steady mixed traffic through nginx at a fixed rate for a long time,
//! sampled every 10 s, with a growth verdict at the end.
//!
//! A Rust driver rather than wrk, because half the mix must be made per request: a DPoP
//! proof is good for one request, so each gets a fresh one (a new `jti`, `iat` = now), the
//! valid tokens are re-minted as the run goes (each lives two minutes, so the verified-token
//! cache keeps turning over instead of holding one token), and every unknown-kid token names
//! a kid never seen before. What a long run could leak on is exercised: cache entries that
//! expire, replay-store entries that age out of the window, per-kid bookkeeping, connections.
//!
//! The mix, per 20 requests: 8 valid Bearer tokens (200), 2 expired (401), 2 with a bad
//! signature (401), 2 with an unknown `kid` (401), 3 DPoP with a fresh proof (200), 1 DPoP
//! replaying an earlier proof (401), 2 on a public route (200). Every answer is checked
//! against that: a wrong status counts as `unexpected`, a failed request as `errors`.
//!
//! Order of events: it starts the issuer (`--issuer-port`) and the API (`--api-port`),
//! prints `READY`, waits for `--pid-file` (tollgate's pid, written once tollgate is ready)
//! and for `--target` (nginx) to answer, then sends `--rate` requests per second for
//! `--minutes`. Every 10 s it writes a CSV row (`--csv`): tollgate's RSS, open file
//! descriptors and threads (from `/proc/PID`), the replay-store and token-cache entries
//! when tollgate's `/metrics` (`--metrics`) exports `tollgate_replay_store_entries` and
//! `tollgate_token_cache_entries` (empty cells otherwise), and the window's request count,
//! rate, p50/p99/max latency seen here, unexpected answers and errors.
//!
//! The verdict compares the warm part of the run (after `--warmup-minutes`, by default
//! the replay window of 330 s plus a minute, capped at half the run) in two halves: it
//! fails (exit 1) when the second half's mean RSS is more than `--rss-tolerance-kb` (and
//! `--rss-tolerance-pct`) above the first's, when open fds grow by more than
//! `--fd-tolerance`, when the entry counts grow by more than 10 % + 100, or when any
//! answer was unexpected or any request failed. The least-squares slopes are printed too.
//! p99 is reported, not judged: on a shared machine a neighbour's burst moves it.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use tollgate::clock::{Clock, SystemClock};
use tollgate::dev::{self, DevIssuer};
use tollgate::signing::SigningKey;

const AUDIENCE: &str = "https://api.example.com";
/// How long each valid token lives: the cache must let expired ones go.
const TOKEN_TTL: i64 = 120;
/// Seconds between samples.
const SAMPLE: u64 = 10;

#[derive(Parser)]
#[command(about = "Soak driver: steady mixed traffic through nginx, sampled every 10 s")]
struct Args {
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Requests per second, all kinds together.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Most requests in flight; a tick finding all busy is counted as `skipped`.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, required_unless_present = "recheck")]
    issuer_port: Option<u16>,
    #[arg(long, required_unless_present = "recheck")]
    api_port: Option<u16>,
    /// nginx, as clients reach it: `http://127.0.0.1:PORT`.
    #[arg(long, required_unless_present = "recheck")]
    target: Option<String>,
    /// tollgate's `/metrics` URL (asked directly, not through nginx).
    #[arg(long, required_unless_present = "recheck")]
    metrics: Option<String>,
    /// A file that will hold tollgate's pid once it is ready.
    #[arg(long, required_unless_present = "recheck")]
    pid_file: Option<PathBuf>,
    #[arg(long, required_unless_present = "recheck")]
    csv: Option<PathBuf>,
    /// Where the verdict and figures go (also printed).
    #[arg(long)]
    summary: Option<PathBuf>,
    /// No traffic: the verdict of an earlier run's CSV (with its `--minutes` and `--rate`).
    #[arg(long)]
    recheck: Option<PathBuf>,
    /// Minutes left out of the verdict at the start (default: 6.5, at most half the run).
    #[arg(long)]
    warmup_minutes: Option<f64>,
    #[arg(long, default_value_t = 2048)]
    rss_tolerance_kb: u64,
    #[arg(long, default_value_t = 5.0)]
    rss_tolerance_pct: f64,
    #[arg(long, default_value_t = 8)]
    fd_tolerance: u64,
}

/// What each request is, and the status it must get through nginx.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Valid,
    Expired,
    BadSignature,
    UnknownKid,
    Dpop,
    DpopReplay,
    Public,
}

/// One cycle of 20: the mix, spread so that every second carries all kinds.
const CYCLE: [Kind; 20] = {
    use Kind::*;
    [
        Valid,
        Dpop,
        Expired,
        Valid,
        Public,
        BadSignature,
        Valid,
        UnknownKid,
        Dpop,
        Valid,
        Valid,
        DpopReplay,
        Expired,
        Valid,
        Public,
        BadSignature,
        Dpop,
        Valid,
        UnknownKid,
        Valid,
    ]
};

impl Kind {
    fn expected(self) -> u16 {
        match self {
            Kind::Valid | Kind::Dpop | Kind::Public => 200,
            Kind::Expired | Kind::BadSignature | Kind::UnknownKid | Kind::DpopReplay => 401,
        }
    }
}

/// The credentials of the run: tokens re-minted as they age, proofs made per request.
struct Credentials {
    issuer: DevIssuer,
    /// Signs tokens that claim the issuer's kid: their signature cannot verify.
    forger: SigningKey,
    dpop: SigningKey,
    expired: String,
    bad_signature: String,
    state: Mutex<Fresh>,
    next_kid: AtomicU64,
}

struct Fresh {
    /// Valid tokens, newest last; one minted per second of the run, kept while valid.
    valid: VecDeque<(i64, String)>,
    /// The DPoP-bound token and when it was minted.
    bound: (i64, String),
    /// Proofs already accepted once: replays.
    used: VecDeque<(String, String)>,
    minted: u64,
}

impl Credentials {
    fn new(issuer: DevIssuer) -> Credentials {
        let now = SystemClock.now();
        let forger = SigningKey::rsa(issuer.key().kid()).expect("key");
        let dpop = SigningKey::p256("soak-dpop").expect("key");
        let expired = issuer.mint(AUDIENCE, "soak-expired", "read", None, now - 7200, 3600).expect("mint");
        let claims = json!({
            "iss": issuer.issuer(), "aud": AUDIENCE, "sub": "soak-forged", "scope": "read",
            "iat": now, "exp": now + 86_400, "client_id": "soak", "jti": "soak-forged",
        });
        let header = json!({ "alg": "RS256", "typ": "at+jwt", "kid": issuer.key().kid() });
        let bad_signature = forger.sign_jws(&header, &claims).expect("sign");
        let bound = issuer.mint(AUDIENCE, "soak-dpop", "read", Some(&dpop.jkt()), now, 600).expect("mint");
        let valid = issuer.mint(AUDIENCE, "soak-0", "read", None, now, TOKEN_TTL).expect("mint");
        let state =
            Fresh { valid: VecDeque::from([(now, valid)]), bound: (now, bound), used: VecDeque::new(), minted: 1 };
        Credentials {
            issuer,
            forger,
            dpop,
            expired,
            bad_signature,
            state: Mutex::new(state),
            next_kid: AtomicU64::new(0),
        }
    }

    /// Once a second: a new valid token; tokens near their end dropped; the bound token
    /// renewed every five minutes.
    fn refresh(&self) {
        let now = SystemClock.now();
        let mut state = self.state.lock().expect("lock");
        state.minted += 1;
        let subject = format!("soak-{}", state.minted);
        let token = self.issuer.mint(AUDIENCE, &subject, "read", None, now, TOKEN_TTL).expect("mint");
        state.valid.push_back((now, token));
        while state.valid.front().is_some_and(|(at, _)| *at + TOKEN_TTL - 10 < now) {
            state.valid.pop_front();
        }
        if state.bound.0 + 300 < now {
            let bound = self.issuer.mint(AUDIENCE, "soak-dpop", "read", Some(&self.dpop.jkt()), now, 600);
            state.bound = (now, bound.expect("mint"));
        }
    }

    /// The headers of one request of `kind` for `GET url`; `n` picks among the valid tokens.
    fn headers(&self, kind: Kind, url: &str, n: usize) -> Vec<(&'static str, String)> {
        let now = SystemClock.now();
        match kind {
            Kind::Public => vec![],
            Kind::Valid => {
                let state = self.state.lock().expect("lock");
                let (_, token) = &state.valid[n % state.valid.len()];
                vec![("authorization", format!("Bearer {token}"))]
            }
            Kind::Expired => vec![("authorization", format!("Bearer {}", self.expired))],
            Kind::BadSignature => vec![("authorization", format!("Bearer {}", self.bad_signature))],
            Kind::UnknownKid => {
                let kid = format!("soak-unknown-{}", self.next_kid.fetch_add(1, Ordering::Relaxed));
                let header = json!({ "alg": "RS256", "typ": "at+jwt", "kid": kid });
                let claims = json!({
                    "iss": self.issuer.issuer(), "aud": AUDIENCE, "sub": "soak-kid", "scope": "read",
                    "iat": now, "exp": now + 600, "client_id": "soak", "jti": kid,
                });
                vec![("authorization", format!("Bearer {}", self.forger.sign_jws(&header, &claims).expect("sign")))]
            }
            Kind::Dpop => {
                let token = self.state.lock().expect("lock").bound.1.clone();
                let proof = dev::proof(&self.dpop, "GET", url, &token, None, now).expect("proof");
                let mut state = self.state.lock().expect("lock");
                state.used.push_back((token.clone(), proof.clone()));
                if state.used.len() > 100 {
                    state.used.pop_front();
                }
                vec![("authorization", format!("DPoP {token}")), ("dpop", proof)]
            }
            Kind::DpopReplay => {
                let state = self.state.lock().expect("lock");
                // The oldest kept: certainly answered by now (a proof still in flight could
                // reach tollgate after its replay).
                match state.used.front() {
                    Some((token, proof)) => vec![("authorization", format!("DPoP {token}")), ("dpop", proof.clone())],
                    None => vec![],
                }
            }
        }
    }
}

/// What one 10 s window saw.
#[derive(Default)]
struct Window {
    latencies_us: Vec<u64>,
    unexpected: u64,
    errors: u64,
    skipped: u64,
    /// A few examples, for the log.
    notes: Vec<String>,
}

/// One CSV row.
struct Sample {
    t: f64,
    rss_kb: u64,
    fds: u64,
    threads: u64,
    replay: Option<f64>,
    cache: Option<f64>,
    requests: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    unexpected: u64,
    errors: u64,
    skipped: u64,
}

fn proc_value(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count() as u64)
}

/// The sum of every series of `name` in Prometheus text, if there is one.
fn gauge(text: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{')))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index] as f64 / 1000.0
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 }
}

/// Least-squares slope of `ys` over `xs`, per unit of `xs`.
fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let (mx, my) = (mean(xs), mean(ys));
    let num: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if den == 0.0 { 0.0 } else { num / den }
}

/// An API for nginx to proxy allowed requests to: 200 `ok`.
async fn api(port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let app = axum::Router::new().fallback(|| async { "ok\n" });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(())
}

async fn wait_for_start(args: &Args, client: &reqwest::Client) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pid_file = args.pid_file.as_ref().expect("--pid-file");
        let pid = std::fs::read_to_string(pid_file).ok().and_then(|t| t.trim().parse::<u32>().ok());
        let up = client.get(format!("{}/public/ready", args.target.as_deref().expect("--target"))).send().await;
        if let (Some(pid), Ok(response)) = (pid, up)
            && response.status() == 200
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "tollgate's pid file or nginx did not come within 120 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    if let Some(csv) = &args.recheck {
        let samples = read_csv(&std::fs::read_to_string(csv)?);
        let (verdict, ok) = verdict(&args, &samples);
        print!("{verdict}");
        if let Some(summary) = &args.summary {
            std::fs::write(summary, &verdict)?;
        }
        std::process::exit(if ok { 0 } else { 1 });
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(args))
}

/// The samples of a CSV this driver wrote.
fn read_csv(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let cell = |i: usize| cells.get(i).and_then(|c| c.parse::<f64>().ok());
        let number = |i: usize| cell(i).unwrap_or_default();
        samples.push(Sample {
            t: number(0),
            rss_kb: number(1) as u64,
            fds: number(2) as u64,
            threads: number(3) as u64,
            replay: cell(4),
            cache: cell(5),
            requests: number(6) as usize,
            p50_ms: number(8),
            p99_ms: number(9),
            max_ms: number(10),
            unexpected: number(11) as u64,
            errors: number(12) as u64,
            skipped: number(13) as u64,
        });
    }
    samples
}

async fn run(args: Args) -> std::io::Result<()> {
    let (issuer_port, api_port) = (args.issuer_port.expect("--issuer-port"), args.api_port.expect("--api-port"));
    let (target, metrics_url) = (args.target.clone().expect("--target"), args.metrics.clone().expect("--metrics"));
    let key = SigningKey::rsa("soak-1").map_err(std::io::Error::other)?;
    let issuer = DevIssuer::start_at(([127, 0, 0, 1], issuer_port).into(), key).await?;
    api(api_port).await?;
    println!("ISSUER={}", issuer.issuer());
    println!("READY");
    std::io::stdout().flush()?;

    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .map_err(std::io::Error::other)?;
    let pid = wait_for_start(&args, &client).await;
    let credentials = Arc::new(Credentials::new(issuer));
    let window = Arc::new(Mutex::new(Window::default()));
    let permits = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let total = Duration::from_secs_f64(args.minutes * 60.0);
    let started = Instant::now();
    println!("soak: {} requests/s for {:.1} min through {target}, tollgate pid {pid}", args.rate, args.minutes);

    // Tokens age on their own clock.
    let refresher = {
        let credentials = credentials.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let credentials = credentials.clone();
                let _ = tokio::task::spawn_blocking(move || credentials.refresh()).await;
            }
        })
    };

    // The sender: one request per tick, kinds in the fixed cycle.
    let sender = {
        let (credentials, window, permits, client) =
            (credentials.clone(), window.clone(), permits.clone(), client.clone());
        let (target, rate) = (target.clone(), args.rate.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n: usize = 0;
            loop {
                tick.tick().await;
                let kind = CYCLE[n % CYCLE.len()];
                n += 1;
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    window.lock().expect("lock").skipped += 1;
                    continue;
                };
                let path =
                    if kind == Kind::Public { "/public/health".to_string() } else { format!("/orders/{}", n % 97) };
                let url = format!("{target}{path}");
                let (credentials, window, client) = (credentials.clone(), window.clone(), client.clone());
                tokio::spawn(async move {
                    let headers = credentials.headers(kind, &url, n);
                    let mut request = client.get(&url);
                    for (name, value) in headers {
                        request = request.header(name, value);
                    }
                    let sent = Instant::now();
                    let answer = request.send().await;
                    let status = match answer {
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let _ = response.bytes().await;
                            Ok(status)
                        }
                        Err(error) => Err(error.to_string()),
                    };
                    let took = sent.elapsed().as_micros() as u64;
                    let mut w = window.lock().expect("lock");
                    w.latencies_us.push(took);
                    match status {
                        Ok(status) if status == kind.expected() => {}
                        Ok(status) => {
                            w.unexpected += 1;
                            if w.notes.len() < 5 {
                                w.notes.push(format!("{kind:?} got {status}, expected {}", kind.expected()));
                            }
                        }
                        Err(error) => {
                            w.errors += 1;
                            if w.notes.len() < 5 {
                                w.notes.push(format!("{kind:?} failed: {error}"));
                            }
                        }
                    }
                    drop(permit);
                });
            }
        })
    };

    // The sampler: every 10 s, one row.
    let mut csv = std::io::BufWriter::new(std::fs::File::create(args.csv.as_ref().expect("--csv"))?);
    writeln!(
        csv,
        "t_s,rss_kb,fds,threads,replay_entries,token_cache_entries,requests,rps,p50_ms,p99_ms,max_ms,unexpected,errors,skipped"
    )?;
    let mut samples: Vec<Sample> = Vec::new();
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(SAMPLE),
        Duration::from_secs(SAMPLE),
    );
    let mut gauges_reported = false;
    while started.elapsed() < total {
        tick.tick().await;
        let w = std::mem::take(&mut *window.lock().expect("lock"));
        let mut latencies = w.latencies_us;
        latencies.sort_unstable();
        // Once more on a failure: tollgate closes a keep-alive connection idle for its
        // 10 s header timeout, and this one is used every 10 s, so a request can meet the
        // close.
        let mut metrics = String::new();
        for _ in 0..2 {
            if let Ok(response) = client.get(&metrics_url).send().await
                && let Ok(text) = response.text().await
            {
                metrics = text;
                break;
            }
        }
        let sample = Sample {
            t: started.elapsed().as_secs_f64(),
            rss_kb: proc_value(pid, "VmRSS:"),
            fds: open_fds(pid),
            threads: proc_value(pid, "Threads:"),
            replay: gauge(&metrics, "tollgate_replay_store_entries")
                .or_else(|| gauge(&metrics, "tollgate_replay_entries")),
            cache: gauge(&metrics, "tollgate_token_cache_entries"),
            requests: latencies.len(),
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            max_ms: percentile(&latencies, 1.0),
            unexpected: w.unexpected,
            errors: w.errors,
            skipped: w.skipped,
        };
        if !gauges_reported {
            gauges_reported = true;
            if sample.replay.is_none() {
                println!("soak: /metrics has no tollgate_replay_store_entries: that column stays empty");
            }
            if sample.cache.is_none() {
                println!("soak: /metrics has no tollgate_token_cache_entries: that column stays empty");
            }
        }
        let cell = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.0}"));
        writeln!(
            csv,
            "{:.0},{},{},{},{},{},{},{:.1},{:.2},{:.2},{:.2},{},{},{}",
            sample.t,
            sample.rss_kb,
            sample.fds,
            sample.threads,
            cell(sample.replay),
            cell(sample.cache),
            sample.requests,
            sample.requests as f64 / SAMPLE as f64,
            sample.p50_ms,
            sample.p99_ms,
            sample.max_ms,
            sample.unexpected,
            sample.errors,
            sample.skipped
        )?;
        csv.flush()?;
        println!(
            "t={:>5.0}s rss={:.1}MB fds={} threads={} replay={} cache={} rps={:.0} p50={:.2}ms p99={:.2}ms unexpected={} errors={} skipped={}{}",
            sample.t,
            sample.rss_kb as f64 / 1024.0,
            sample.fds,
            sample.threads,
            cell(sample.replay),
            cell(sample.cache),
            sample.requests as f64 / SAMPLE as f64,
            sample.p50_ms,
            sample.p99_ms,
            sample.unexpected,
            sample.errors,
            sample.skipped,
            if w.notes.is_empty() { String::new() } else { format!(" e.g. {}", w.notes.join("; ")) }
        );
        samples.push(sample);
    }
    sender.abort();
    refresher.abort();

    let (verdict, ok) = verdict(&args, &samples);
    print!("{verdict}");
    if let Some(summary) = &args.summary {
        std::fs::write(summary, &verdict)?;
    }
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// The figures and whether the run shows no growth once warm.
fn verdict(args: &Args, samples: &[Sample]) -> (String, bool) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut ok = true;
    let run_s = args.minutes * 60.0;
    let warmup_s = args.warmup_minutes.map_or(390.0, |m| m * 60.0).min(run_s / 2.0);
    let warm: Vec<&Sample> = samples.iter().filter(|s| s.t > warmup_s).collect();
    let requests: usize = samples.iter().map(|s| s.requests).sum();
    let unexpected: u64 = samples.iter().map(|s| s.unexpected).sum();
    let errors: u64 = samples.iter().map(|s| s.errors).sum();
    let skipped: u64 = samples.iter().map(|s| s.skipped).sum();
    let _ = writeln!(
        out,
        "== soak verdict ({:.1} min at {} requests/s, {} samples)",
        args.minutes,
        args.rate,
        samples.len()
    );
    let _ = writeln!(
        out,
        "  requests {requests}, unexpected answers {unexpected}, failed requests {errors}, ticks skipped (driver busy) {skipped}"
    );
    if unexpected + errors > 0 {
        ok = false;
        let _ = writeln!(out, "  FAIL: every answer must be the expected one");
    }
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let _ = writeln!(
            out,
            "  start (t={:.0}s): RSS {:.1} MB, fds {}, threads {}; end (t={:.0}s): RSS {:.1} MB, fds {}, threads {}",
            first.t,
            first.rss_kb as f64 / 1024.0,
            first.fds,
            first.threads,
            last.t,
            last.rss_kb as f64 / 1024.0,
            last.fds,
            last.threads
        );
        let all_p99: Vec<f64> = samples.iter().map(|s| s.p99_ms).collect();
        let mut sorted = all_p99.clone();
        sorted.sort_by(f64::total_cmp);
        let _ = writeln!(
            out,
            "  p99 per 10 s window: median {:.2} ms, max {:.2} ms (reported, not judged)",
            sorted[sorted.len() / 2],
            sorted[sorted.len() - 1]
        );
    }
    if warm.len() < 4 {
        let _ = writeln!(out, "  too short for a growth verdict: {} warm samples after {warmup_s:.0} s", warm.len());
        let _ = writeln!(out, "verdict: {}", if ok { "PASS (no growth verdict)" } else { "FAIL" });
        return (out, ok);
    }
    let (first, second) = warm.split_at(warm.len() / 2);
    let xs: Vec<f64> = warm.iter().map(|s| s.t / 60.0).collect();
    // A series with a gap (a /metrics request that failed) is judged on the samples it has;
    // one missing in most samples is not judged at all.
    let series = |f: &dyn Fn(&Sample) -> Option<f64>| -> Option<(f64, f64, f64)> {
        let a: Vec<f64> = first.iter().filter_map(|s| f(s)).collect();
        let b: Vec<f64> = second.iter().filter_map(|s| f(s)).collect();
        let (x, all): (Vec<f64>, Vec<f64>) = warm.iter().zip(&xs).filter_map(|(s, x)| Some((*x, f(s)?))).unzip();
        (2 * a.len() >= first.len() && 2 * b.len() >= second.len() && !a.is_empty() && !b.is_empty())
            .then(|| (mean(&a), mean(&b), slope(&x, &all)))
    };
    let _ = writeln!(
        out,
        "  warm: t > {warmup_s:.0} s, {} samples in two halves (means), least-squares slope per minute",
        warm.len()
    );
    if let Some((a, b, m)) = series(&|s| Some(s.rss_kb as f64)) {
        let allowed = (args.rss_tolerance_kb as f64).max(a * args.rss_tolerance_pct / 100.0);
        let pass = b - a <= allowed;
        ok &= pass;
        let _ = writeln!(
            out,
            "  RSS       {:.1} MB -> {:.1} MB ({:+.0} kB; allowed +{allowed:.0} kB), slope {m:+.1} kB/min: {}",
            a / 1024.0,
            b / 1024.0,
            b - a,
            if pass { "ok" } else { "GROWTH" }
        );
    }
    if let Some((a, b, m)) = series(&|s| Some(s.fds as f64)) {
        let pass = b - a <= args.fd_tolerance as f64;
        ok &= pass;
        let _ = writeln!(
            out,
            "  fds       {a:.1} -> {b:.1} ({:+.1}; allowed +{}), slope {m:+.2}/min: {}",
            b - a,
            args.fd_tolerance,
            if pass { "ok" } else { "GROWTH" }
        );
    }
    if let Some((a, b, m)) = series(&|s| Some(s.threads as f64)) {
        let _ = writeln!(out, "  threads   {a:.1} -> {b:.1}, slope {m:+.2}/min (reported)");
    }
    for (name, f) in [
        ("replay entries", &(|s: &Sample| s.replay) as &dyn Fn(&Sample) -> Option<f64>),
        ("cache entries", &|s: &Sample| s.cache),
    ] {
        match series(f) {
            Some((a, b, m)) => {
                let pass = b <= a * 1.10 + 100.0;
                ok &= pass;
                let _ = writeln!(
                    out,
                    "  {name:<15} {a:.0} -> {b:.0}, slope {m:+.1}/min: {}",
                    if pass { "ok" } else { "GROWTH" }
                );
            }
            None => {
                let _ = writeln!(out, "  {name:<15} not exported by /metrics: not sampled");
            }
        }
    }
    if let Some((a, b, m)) = series(&|s| Some(s.p99_ms)) {
        let _ = writeln!(out, "  p99       {a:.2} ms -> {b:.2} ms, slope {m:+.3} ms/min (reported)");
    }
    let _ = writeln!(out, "verdict: {}", if ok { "PASS: no growth once warm" } else { "FAIL" });
    (out, ok)
}
