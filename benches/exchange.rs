//! What a cached downstream token adds to a check: `Checker::decide` for the same cached
//! Bearer token on a route with an `exchange` (its result cached after the first call to
//! the development issuer's token endpoint) and on a route without, measured alternately
//! in blocks so a neighbour's burst lands on both sides.
//!
//! ```text
//! cargo bench --bench exchange
//! ```
//!
//! Prints the median time of each and the median per-block difference (the goal: under
//! 1 µs added), with its interquartile range.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method, header::AUTHORIZATION};
use tokio::runtime::Runtime;
use tollgate::clock::{Clock, SystemClock};
use tollgate::config::Config;
use tollgate::decision::Checker;
use tollgate::dev::{DEV_CLIENT_ID, DEV_CLIENT_SECRET, DevIssuer};
use tollgate::gateway::CheckRequest;
use tollgate::issuer::Timings;

const AUDIENCE: &str = "https://api.example.com";
/// Blocks and checks per block under `cargo bench`; `cargo test --all-targets` runs the
/// bench once as a smoke test, with a few small blocks.
fn sizes() -> (usize, usize) {
    if std::env::args().any(|a| a == "--bench") { (201, 2000) } else { (3, 20) }
}

fn request(path: &str, token: &str) -> CheckRequest {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).expect("header value"));
    CheckRequest { peer: [127, 0, 0, 1].into(), method: Method::GET, path: path.into(), headers }
}

/// Nanoseconds per `decide` of `request`, over one block of `checks`.
fn block(runtime: &Runtime, checker: &Checker, request: &CheckRequest, checks: usize) -> f64 {
    let started = Instant::now();
    for _ in 0..checks {
        let decided = runtime.block_on(checker.decide(request));
        assert!(decided.is_ok(), "the bench request must pass");
    }
    started.elapsed().as_nanos() as f64 / checks as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let issuer = runtime.block_on(DevIssuer::start()).expect("development issuer");
    let toml = format!(
        "[issuer]\nurl = \"{}\"\naudience = \"{AUDIENCE}\"\n[proxy]\ngateway = \"envoy\"\n\
         [client]\nclient_id = \"{DEV_CLIENT_ID}\"\nclient_secret = \"{DEV_CLIENT_SECRET}\"\n\
         [[routes]]\npath_prefix = \"/calendar\"\nexchange = {{ audience = \"https://calendar.example.com\" }}\n",
        issuer.issuer()
    );
    let config = Config::load(&toml, &HashMap::new()).unwrap_or_else(|e| panic!("bench config: {e}"));
    let checker =
        Checker::from_config(config, Timings::default(), Arc::new(SystemClock) as Arc<dyn Clock>).expect("checker");
    runtime.block_on(checker.issuer().refresh()).expect("initial key fetch");
    let now = SystemClock.now();
    let token = issuer.mint(AUDIENCE, "bench-user", "read", None, now, 3600).expect("token");
    let (with, without) = (request("/calendar/events", &token), request("/orders", &token));
    let (blocks, checks) = sizes();
    // Warm: the token verified and cached, the exchange made and cached.
    block(&runtime, &checker, &with, checks);
    block(&runtime, &checker, &without, checks);
    assert_eq!(checker.metrics().exchange_cache_misses.get(), 1, "one exchange call, then cache hits");

    let (mut a, mut b, mut diff) = (Vec::new(), Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in 0..blocks {
        let (x, y) = if n % 2 == 0 {
            let x = block(&runtime, &checker, &with, checks);
            (x, block(&runtime, &checker, &without, checks))
        } else {
            let y = block(&runtime, &checker, &without, checks);
            (block(&runtime, &checker, &with, checks), y)
        };
        a.push(x);
        b.push(y);
        diff.push(x - y);
        if Instant::now() > deadline {
            break;
        }
    }
    let (with_ns, without_ns) = (median(&mut a), median(&mut b));
    let mid = median(&mut diff);
    let (q1, q3) = (diff[diff.len() / 4], diff[diff.len() * 3 / 4]);
    println!("check with a cached exchange   {with_ns:>8.0} ns");
    println!("check without exchange         {without_ns:>8.0} ns");
    println!("added by the cached exchange   {mid:>8.0} ns (IQR {q1:.0} .. {q3:.0} ns, {} blocks)", diff.len());
}
