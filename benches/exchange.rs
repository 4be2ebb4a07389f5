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

use http::{HeaderMap, HeaderValue, Method, header::AUTHORIZATION};
use tollgate::clock::{Clock, SystemClock};
use tollgate::config::Config;
use tollgate::decision::Checker;
use tollgate::dev::{DEV_CLIENT_ID, DEV_CLIENT_SECRET, DevIssuer};
use tollgate::gateway::CheckRequest;
use tollgate::issuer::Timings;

#[path = "support/side_by_side.rs"]
mod side_by_side;
use side_by_side::{Paired, alternate, block};

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

    let paired =
        alternate(blocks, || block(&runtime, &checker, &with, checks), || block(&runtime, &checker, &without, checks));
    let Paired { a: with_ns, b: without_ns, difference: mid, q1, q3, blocks: measured } = paired;
    println!("check with a cached exchange   {with_ns:>8.0} ns");
    println!("check without exchange         {without_ns:>8.0} ns");
    println!("added by the cached exchange   {mid:>8.0} ns (IQR {q1:.0} .. {q3:.0} ns, {measured} blocks)");
}
