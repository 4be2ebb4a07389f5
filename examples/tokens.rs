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
//!
//! DPoP (RFC 9449), on request. With `--dpop-out FILE` it also writes to FILE a token bound
//! to a P-256 proof key (`cnf.jkt`; subject `user-dpop`) on the first line, then
//! `--dpop-proofs` unique ES256 proofs (one per line, each with a random `jti` and `iat` =
//! now) for `GET --dpop-url`. The proof key is kept in `--dpop-key` (PKCS#8 PEM; made when the
//! file does not exist), so that later runs with `--proofs-only` can mint more proofs for
//! the same token without an issuer: proofs are good for `dpop.iat_offset` (300 s) and each
//! is accepted once, so a load script mints them just before it sends them.
//!
//! ```text
//! cargo run --release --example tokens -- --count 10 --out tokens.txt \
//!     --dpop-key dpop.pem --dpop-out dpop.txt --dpop-url http://127.0.0.1:18480/orders
//! cargo run --release --example tokens -- --proofs-only --dpop-key dpop.pem \
//!     --dpop-token dpop.txt --dpop-proofs 100000 --dpop-out proofs.txt --dpop-url http://127.0.0.1:18480/orders
//! ```
//!
//! With DPoP it prints `DPOP <n> proofs in <s> s (<threads> threads, <µs> us per proof per
//! thread)` before `READY` (or alone, with `--proofs-only`, which then exits).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use tollgate::clock::{Clock, SystemClock};
use tollgate::dev::{self, DevIssuer};
use tollgate::signing::SigningKey;

#[derive(Parser)]
#[command(about = "Development issuer that mints many distinct tokens for load runs")]
struct Args {
    /// How many distinct tokens to mint (subjects user-000000, user-000001, ...).
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Where to write them, one per line.
    #[arg(long, required_unless_present = "proofs_only")]
    out: Option<PathBuf>,
    /// The `aud` claim.
    #[arg(long, default_value = "https://api.example.com")]
    audience: String,
    /// Lifetime of each token, in seconds.
    #[arg(long, default_value_t = 7200)]
    ttl: i64,
    /// Signing threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Write a DPoP-bound token (first line) and `--dpop-proofs` proofs (one per line) here.
    #[arg(long, requires = "dpop_key")]
    dpop_out: Option<PathBuf>,
    /// The DPoP proof key, PKCS#8 PEM: read if the file exists, else made and written there.
    #[arg(long)]
    dpop_key: Option<PathBuf>,
    /// How many unique proofs to write after the token.
    #[arg(long, default_value_t = 0)]
    dpop_proofs: usize,
    /// The `htu` of the proofs (their `htm` is GET): the URL tollgate rebuilds for the request.
    #[arg(long, default_value = "http://127.0.0.1:18480/orders")]
    dpop_url: String,
    /// Only mint proofs, for the token in the first line of `--dpop-token`, and exit.
    #[arg(long, requires_all = ["dpop_out", "dpop_token"], conflicts_with = "out")]
    proofs_only: bool,
    /// With `--proofs-only`: a file whose first line is the bound token (an earlier `--dpop-out`).
    #[arg(long)]
    dpop_token: Option<PathBuf>,
}

/// The DPoP proof key in `path`, made and written there if the file does not exist.
fn dpop_key(path: &std::path::Path) -> std::io::Result<SigningKey> {
    match std::fs::read_to_string(path) {
        Ok(pem) => SigningKey::p256_from_pem("load-dpop", &pem).map_err(std::io::Error::other),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::p256("load-dpop").map_err(std::io::Error::other)?;
            std::fs::write(path, key.to_pem().map_err(std::io::Error::other)?)?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

/// Writes `token` and then `count` fresh unique proofs for `GET url`, signed on `threads`
/// threads; prints the `DPOP` line.
fn write_proofs(args: &Args, key: &SigningKey, token: &str, threads: usize) -> std::io::Result<()> {
    let out = args.dpop_out.as_ref().expect("--dpop-out");
    let count = args.dpop_proofs;
    let threads = threads.clamp(1, count.max(1));
    let started = Instant::now();
    let chunks: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * count / threads)..((t + 1) * count / threads);
                scope.spawn(move || {
                    let mut out = Vec::with_capacity(range.len() * 600);
                    for _ in range {
                        // `iat` is the second each proof is made in: as fresh as can be.
                        let proof =
                            dev::proof(key, "GET", &args.dpop_url, token, None, SystemClock.now()).expect("sign proof");
                        out.extend_from_slice(proof.as_bytes());
                        out.push(b'\n');
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("proof thread")).collect()
    });
    let elapsed = started.elapsed();
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    writeln!(file, "{token}")?;
    for chunk in &chunks {
        file.write_all(chunk)?;
    }
    file.flush()?;
    let per_proof_us = elapsed.as_secs_f64() * 1e6 * threads as f64 / count.max(1) as f64;
    println!(
        "DPOP {count} proofs in {:.2} s ({threads} threads, {per_proof_us:.0} us per proof per thread)",
        elapsed.as_secs_f64()
    );
    Ok(())
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.proofs_only {
        let key = dpop_key(args.dpop_key.as_ref().expect("--dpop-key"))?;
        let text = std::fs::read_to_string(args.dpop_token.as_ref().expect("--dpop-token"))?;
        let token = text.lines().next().filter(|t| !t.is_empty()).ok_or(std::io::ErrorKind::InvalidData)?;
        return write_proofs(&args, &key, token, args.threads.unwrap_or(cores));
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let issuer = runtime.block_on(DevIssuer::start())?;
    println!("ISSUER={}", issuer.issuer());
    println!("AUDIENCE={}", args.audience);

    let threads = args.threads.unwrap_or(cores).clamp(1, args.count.max(1));
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
    let mut file = std::io::BufWriter::new(std::fs::File::create(args.out.as_ref().expect("--out"))?);
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
    if args.dpop_out.is_some() {
        let key = dpop_key(args.dpop_key.as_ref().expect("--dpop-key"))?;
        let bound = issuer
            .mint(&args.audience, "user-dpop", "read:orders", Some(&key.jkt()), SystemClock.now(), args.ttl)
            .map_err(std::io::Error::other)?;
        write_proofs(&args, &key, &bound, args.threads.unwrap_or(cores))?;
    }
    println!("READY");
    std::io::stdout().flush()?;
    runtime.block_on(std::future::pending::<()>());
    Ok(())
}
