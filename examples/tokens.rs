//! A development issuer for load runs: serves OIDC discovery and JWKS on loopback, writes
//! `--count` distinct RS256 access tokens to a file (one per line), then keeps serving
//! until killed. `scripts/load.sh` points a release `tollgate serve` at it, so the
//! tollgate process measured holds nothing but tollgate.
//!
//! ```text
//! cargo run --release --example tokens -- --count 10000 --out tokens.txt
//! ```
//!
//! Prints, in order: `ISSUER=<url>`, `AUDIENCE=<aud>`, `MINTED <count> tokens in <s> s
//! (<threads> threads, <µs> us per token per thread)`, `READY`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use tollgate::clock::{Clock, SystemClock};
use tollgate::dev::DevIssuer;

#[derive(Parser)]
#[command(about = "Development issuer that mints many distinct tokens for load runs")]
struct Args {
    /// How many distinct tokens to mint (subjects user-000000, user-000001, ...).
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Where to write them, one per line.
    #[arg(long)]
    out: PathBuf,
    /// The `aud` claim.
    #[arg(long, default_value = "https://api.example.com")]
    audience: String,
    /// Lifetime of each token, in seconds.
    #[arg(long, default_value_t = 7200)]
    ttl: i64,
    /// Signing threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    let issuer = runtime.block_on(DevIssuer::start())?;
    println!("ISSUER={}", issuer.issuer());
    println!("AUDIENCE={}", args.audience);

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, args.count.max(1));
    let now = SystemClock.now();
    let started = Instant::now();
    // Contiguous ranges, one per thread, written back in order.
    let chunks: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (issuer, args) = (&issuer, &args);
                let range = (t * args.count / threads)..((t + 1) * args.count / threads);
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(range.len() * 640);
                    for i in range {
                        let subject = format!("user-{i:06}");
                        let token =
                            issuer.mint(&args.audience, &subject, "read:orders", None, now, args.ttl).expect("sign");
                        out.extend_from_slice(token.as_bytes());
                        out.push(b'\n');
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("minting thread")).collect()
    });
    let elapsed = started.elapsed();
    let mut file = std::io::BufWriter::new(std::fs::File::create(&args.out)?);
    for chunk in &chunks {
        file.write_all(chunk)?;
    }
    file.flush()?;
    drop(chunks);
    let per_token_us = elapsed.as_secs_f64() * 1e6 * threads as f64 / args.count.max(1) as f64;
    println!(
        "MINTED {} tokens in {:.2} s ({threads} threads, {per_token_us:.0} us per token per thread)",
        args.count,
        elapsed.as_secs_f64()
    );
    println!("READY");
    std::io::stdout().flush()?;
    runtime.block_on(std::future::pending::<()>());
    Ok(())
}
