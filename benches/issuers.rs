//! What several issuers and a reload cost (issue 12's figures):
//!
//! - a cached check with 10 configured issuers against one with 1 (the token of the last
//!   issuer, so a lookup by `iss` would go the furthest), measured alternately in blocks;
//! - the `iss` peek an uncached check makes first (`token::peek_issuer` and the search
//!   among 10 identifiers), on its own;
//! - a reload of a config with 1,000 routes: `Config::load` of the text, then
//!   `Service::reload` (build the policy, keep the issuers and caches, swap).
//!
//! ```text
//! cargo bench --bench issuers
//! ```
//!
//! `cargo test --all-targets` runs it once as a smoke test, with a few small blocks.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, Method, header::AUTHORIZATION};
use tokio::runtime::Runtime;
use tollgate::clock::{Clock, SystemClock};
use tollgate::config::Config;
use tollgate::decision::Checker;
use tollgate::dev::DevIssuer;
use tollgate::gateway::CheckRequest;
use tollgate::issuer::Timings;
use tollgate::reload::Service;

#[path = "support/side_by_side.rs"]
mod side_by_side;
use side_by_side::{Paired, alternate, block, median, quartiles};

const AUDIENCE: &str = "https://api.example.com";

/// Blocks, checks per block and reloads under `cargo bench`; fewer as a smoke test.
fn sizes() -> (usize, usize, usize) {
    if std::env::args().any(|a| a == "--bench") { (201, 2000, 41) } else { (3, 20, 3) }
}

fn issuers_toml(issuers: &[DevIssuer]) -> String {
    issuers.iter().map(|i| format!("[[issuers]]\nurl = \"{}\"\naudience = \"{AUDIENCE}\"\n\n", i.issuer())).collect()
}

fn checker(runtime: &Runtime, issuers: &[DevIssuer]) -> Arc<Checker> {
    let toml = format!("{}[proxy]\ngateway = \"envoy\"\n", issuers_toml(issuers));
    let config = Config::load(&toml, &HashMap::new()).unwrap_or_else(|e| panic!("bench config: {e}"));
    let checker =
        Checker::from_config(config, Timings::default(), Arc::new(SystemClock) as Arc<dyn Clock>).expect("checker");
    for issuer in checker.issuers() {
        runtime.block_on(issuer.refresh()).expect("initial key fetch");
    }
    checker
}

fn request(token: &str) -> CheckRequest {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).expect("header value"));
    CheckRequest { peer: [127, 0, 0, 1].into(), method: Method::GET, path: "/orders".into(), headers }
}

/// A config with `routes` routes over `issuers`, route `n` differing by `version`.
fn many_routes(issuers: &[DevIssuer], routes: usize, version: usize) -> String {
    let mut toml = format!("{}[proxy]\ngateway = \"envoy\"\n", issuers_toml(issuers));
    for n in 0..routes {
        let route = match n % 4 {
            0 => format!("path_prefix = \"/api/v{version}/r{n}\"\nscopes = [\"read:r{n}\"]\n"),
            1 => format!("path = \"/exact/r{n}\"\nmethods = [\"GET\", \"POST\"]\nany_scopes = [\"a\", \"b\"]\n"),
            2 => format!("host = \"t{n}.example.com\"\npath_prefix = \"/\"\npublic = true\n"),
            _ => format!("path_prefix = \"/claims/r{n}\"\nclaims = {{ org_id = \"org_{n}\" }}\n"),
        };
        toml.push_str(&format!("\n[[routes]]\n{route}"));
    }
    toml
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let issuers: Vec<DevIssuer> =
        (0..10).map(|_| runtime.block_on(DevIssuer::start()).expect("development issuer")).collect();
    let now = SystemClock.now();
    let (one, ten) = (checker(&runtime, &issuers[..1]), checker(&runtime, &issuers));
    let first = issuers[0].mint(AUDIENCE, "bench-user", "read", None, now, 3600).expect("token");
    let last = issuers[9].mint(AUDIENCE, "bench-user", "read", None, now, 3600).expect("token");
    let (first, last) = (request(&first), request(&last));
    let (blocks, checks, reloads) = sizes();
    block(&runtime, &one, &first, checks);
    block(&runtime, &ten, &last, checks);
    assert_eq!(ten.metrics().token_cache_misses.get(), 1, "cached after the first check");

    let paired = alternate(blocks, || block(&runtime, &ten, &last, checks), || block(&runtime, &one, &first, checks));
    let Paired { a: ten_ns, b: one_ns, difference: mid, q1, q3, blocks: measured } = paired;
    println!("cached check, 10 issuers (last) {ten_ns:>8.0} ns");
    println!("cached check, 1 issuer          {one_ns:>8.0} ns");
    println!("added by 9 more issuers         {mid:>8.0} ns (IQR {q1:.0} .. {q3:.0} ns, {measured} blocks)");

    // The peek an uncached check makes before any key lookup, as `Checker` makes it.
    let names: Vec<String> = issuers.iter().map(|i| i.issuer().to_string()).collect();
    let raw = issuers[9].mint(AUDIENCE, "bench-user", "read", None, now, 3600).expect("token");
    let peeks = checks * 50;
    let mut peek = Vec::new();
    for _ in 0..blocks {
        let started = Instant::now();
        for _ in 0..peeks {
            let iss = tollgate::token::peek_issuer(black_box(&raw)).expect("iss");
            black_box(names.iter().position(|n| *n == iss));
        }
        peek.push(started.elapsed().as_nanos() as f64 / peeks as f64);
    }
    let peek_ns = median(&mut peek);
    let (q1, q3) = quartiles(&mut peek);
    println!("iss peek + lookup among 10      {peek_ns:>8.0} ns (IQR {q1:.0} .. {q3:.0} ns)");

    // Reload of 1,000 routes, every route's path changing each time (so nothing is a no-op).
    let mut service = {
        let _entered = runtime.enter();
        let config = Config::load(&many_routes(&issuers, 1000, 0), &HashMap::new()).expect("1,000 routes");
        Service::start(config, Timings::default(), Arc::new(SystemClock) as Arc<dyn Clock>).expect("service")
    };
    while service.live().current().ready().is_err() {
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(10)).await });
    }
    let (mut load, mut swap) = (Vec::new(), Vec::new());
    for version in 1..=reloads {
        let text = many_routes(&issuers, 1000, version);
        let started = Instant::now();
        let config = Config::load(&text, &HashMap::new()).expect("1,000 routes");
        let loaded = started.elapsed();
        let changes = runtime.block_on(service.reload(config)).expect("reload");
        swap.push((started.elapsed() - loaded).as_secs_f64() * 1e3);
        load.push(loaded.as_secs_f64() * 1e3);
        assert_eq!(changes.issuers_kept, 10, "{changes:?}");
    }
    let (load_ms, swap_ms) = (median(&mut load), median(&mut swap));
    println!(
        "reload of 1,000 routes          {:>8.2} ms (Config::load {load_ms:.2} ms + Service::reload {swap_ms:.2} ms, median of {reloads})",
        load_ms + swap_ms
    );
}
