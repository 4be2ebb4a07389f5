//! A gRPC load generator for Envoy's ext_authz `Check`: `scripts/cpu.sh` drives tollgate's
//! gRPC door and `examples/bare_grpc.rs` with it, as it drives `/auth` with wrk.
//!
//! `--connections` HTTP/2 connections (Envoy keeps one per worker thread), `--concurrency`
//! requests in flight over them in total, for `--duration` seconds; every request the same
//! `CheckRequest`, built as Envoy builds one for `GET --path` (method, scheme, host, path,
//! and `headers` with Envoy's pseudo-headers, lower-cased names, an `x-request-id`), with
//! `Authorization: Bearer <first line of --token-file>` when given.
//!
//! ```text
//! cargo run --release --example grpc_load -- --url http://127.0.0.1:18482 --token-file tokens.txt
//! ```
//!
//! Ends with one machine-readable line (the fields of `scripts/load/report.lua`):
//! `RESULT requests=N duration_us=N rps=N p50_us=N p90_us=N p99_us=N max_us=N
//! status_errors=N socket_errors=N allowed=N`, where `status_errors` counts answers that are
//! not `OK` and `socket_errors` calls that failed (transport or gRPC status).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use envoy_types::ext_authz::v3::pb::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as EnvoyRequest};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use tonic::transport::{Channel, Endpoint};

#[derive(Parser)]
#[command(about = "Sends the same ext_authz CheckRequest over and over, for a bounded time")]
struct Args {
    /// The gRPC server, e.g. http://127.0.0.1:18482 (loopback only).
    #[arg(long)]
    url: String,
    /// Bearer token: the first line of this file. Without it, no Authorization header.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// HTTP/2 connections.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Requests in flight, over all connections.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// Worker threads of this client.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// The original request's host (`:authority`).
    #[arg(long, default_value = "api.example.com")]
    host: String,
    /// The original request's path.
    #[arg(long, default_value = "/orders")]
    path: String,
}

/// `GET path` as Envoy describes it in `attributes.request.http`.
fn check_request(host: &str, path: &str, token: Option<&str>) -> CheckRequest {
    let mut headers: HashMap<String, String> = [
        (":authority", host),
        (":method", "GET"),
        (":path", path),
        (":scheme", "http"),
        ("accept", "*/*"),
        ("user-agent", "curl/8.14.1"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "6f1c2a9e-3d4b-4c8a-9e2f-0b7d5a1c3e4f"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(token) = token {
        headers.insert("authorization".into(), format!("Bearer {token}"));
    }
    let http = HttpRequest {
        id: "1234567890123456789".into(),
        method: "GET".into(),
        headers,
        path: path.into(),
        host: host.into(),
        scheme: "http".into(),
        protocol: "HTTP/1.1".into(),
        ..Default::default()
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(EnvoyRequest { http: Some(http), ..Default::default() }),
            ..Default::default()
        }),
    }
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    allowed: u64,
    status_errors: u64,
    socket_errors: u64,
}

async fn run(mut client: AuthorizationClient<Channel>, request: CheckRequest, stop: Arc<AtomicBool>) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match client.check(request.clone()).await {
            Ok(response) => {
                let ok = response.into_inner().status.is_some_and(|s| s.code == 0);
                if ok { tally.allowed += 1 } else { tally.status_errors += 1 }
            }
            Err(_) => tally.socket_errors += 1,
        }
        tally.latencies_us.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    tally
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let loopback = ["http://127.0.0.1:", "http://[::1]:", "http://localhost:"];
    if !loopback.iter().any(|prefix| args.url.starts_with(prefix)) {
        return Err(format!("--url must be a loopback address (http://127.0.0.1:PORT), not {}", args.url).into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()?;
    runtime.block_on(async {
        let token = match &args.token_file {
            Some(path) => Some(std::fs::read_to_string(path)?.lines().next().unwrap_or_default().to_string()),
            None => None,
        };
        let request = check_request(&args.host, &args.path, token.as_deref());
        let mut channels = Vec::new();
        for _ in 0..args.connections.max(1) {
            channels.push(Endpoint::from_shared(args.url.clone())?.tcp_nodelay(true).connect().await?);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks: Vec<_> = (0..args.concurrency.max(1))
            .map(|i| {
                let client = AuthorizationClient::new(channels[i % channels.len()].clone());
                tokio::spawn(run(client, request.clone(), stop.clone()))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
        stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for task in tasks {
            // A call still in flight when the time is up gets 5 s more, then is given up.
            let abort = task.abort_handle();
            let Ok(tally) = tokio::time::timeout(Duration::from_secs(5), task).await else {
                abort.abort();
                total.socket_errors += 1;
                continue;
            };
            let tally = tally?;
            total.latencies_us.extend(tally.latencies_us);
            total.allowed += tally.allowed;
            total.status_errors += tally.status_errors;
            total.socket_errors += tally.socket_errors;
        }
        let elapsed = started.elapsed();
        let mut sorted = total.latencies_us;
        sorted.sort_unstable();
        let requests = sorted.len();
        println!(
            "RESULT requests={requests} duration_us={} rps={:.1} p50_us={} p90_us={} p99_us={} max_us={} status_errors={} socket_errors={} allowed={}",
            elapsed.as_micros(),
            requests as f64 / elapsed.as_secs_f64(),
            percentile(&sorted, 50.0),
            percentile(&sorted, 90.0),
            percentile(&sorted, 99.0),
            sorted.last().copied().unwrap_or(0),
            total.status_errors,
            total.socket_errors,
            total.allowed,
        );
        Ok(())
    })
}
