//! Memory of the in-process DPoP replay store under a flood of unique proofs.
//!
//! A [`MemoryStore`] with the default capacity is fed unique replay keys on a simulated clock
//! (the store takes `now` as a parameter, so 60 s of flood take well under a second), with
//! the expiry tollgate gives a fresh proof: `iat + iat_offset + iat_leeway` = now + 330 s by
//! default. Three phases:
//!
//! 1. flood: `--rate` new proofs per simulated second for `--flood-seconds` (60);
//! 2. the clock jumps past the expiry of every flooded entry, then a trickle of
//!    `--trickle-rate` proofs per second for `--trickle-seconds` (sweeping is lazy: only
//!    inserts sweep);
//! 3. a steady `--steady-rate` proofs per second for `--steady-seconds`, to see whether the
//!    store stays near the number of live proofs (rate × window) or keeps expired ones.
//!
//! It prints, along the way, the entries held (`MemoryStore::len`, expired ones not yet swept
//! included), the entries still live, the refusals (`ReplayStoreFull`: tollgate answers 503),
//! and the resident memory of this process (`VmRSS`, `/proc/self/status`), with the growth
//! over the empty store per entry held. Then the real wall-clock insert rate, and the longest
//! single insert (an insert that sweeps holds the store's lock for the whole sweep).
//!
//! ```text
//! cargo run --release --example replay_flood                  # two scenarios, one process each
//! cargo run --release --example replay_flood -- --rate 10000  # one scenario
//! ```
//!
//! Without `--rate`, it runs itself once per default scenario, so that every figure comes from
//! a fresh process: 10,000 proofs/s (600,000 in 60 s, under the capacity) and 50,000
//! proofs/s (full after 20 s).

use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use tollgate::dpop::replay::{DEFAULT_CAPACITY, MemoryStore};
use tollgate::refusal::Reason;

/// Flood rates run when no `--rate` is given.
const SCENARIOS: [u64; 2] = [10_000, 50_000];

/// Any fixed starting second; only differences matter.
const T0: i64 = 1_700_000_000;

#[derive(Parser, Clone)]
#[command(about = "Resident memory of the DPoP replay store under a flood of unique proofs")]
struct Args {
    /// New proofs per simulated second during the flood (default: two scenarios, 10000 and 50000).
    #[arg(long)]
    rate: Option<u64>,
    #[arg(long, default_value_t = 60)]
    flood_seconds: i64,
    #[arg(long, default_value_t = 100)]
    trickle_rate: u64,
    #[arg(long, default_value_t = 60)]
    trickle_seconds: i64,
    #[arg(long, default_value_t = 1000)]
    steady_rate: u64,
    #[arg(long, default_value_t = 1500)]
    steady_seconds: i64,
    /// Seconds an entry lives: dpop.iat_offset + dpop.iat_leeway (300 + 30 by default).
    #[arg(long, default_value_t = 330)]
    window: i64,
    #[arg(long, default_value_t = DEFAULT_CAPACITY)]
    capacity: usize,
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The store, the simulated clock, and what was accepted in which second.
struct Flood {
    store: MemoryStore,
    window: i64,
    next_key: u64,
    /// Accepted inserts per simulated second since `T0`.
    accepted: Vec<u64>,
    refused_full: u64,
    baseline_kib: u64,
    /// Wall-clock time and calls of the flood's seconds in which every insert was taken,
    /// and of those in which every insert was refused (full), for the insert rates.
    taken_busy: (Duration, u64),
    refused_busy: (Duration, u64),
    /// The slowest single inserts timed (trickle and steady phases): the lock is held as long.
    slowest: Vec<Pause>,
}

/// One slow insert: how long, when, and the entries held before and after it.
struct Pause {
    took: Duration,
    phase: &'static str,
    second: i64,
    before: usize,
    after: usize,
}

impl Flood {
    /// `count` new keys at simulated second `second` (since `T0`), one `insert` each.
    fn second(&mut self, phase: &'static str, second: i64, count: u64) {
        let now = T0 + second;
        let index = usize::try_from(second).expect("seconds from T0");
        if self.accepted.len() <= index {
            self.accepted.resize(index + 1, 0);
        }
        // Single inserts are timed only at low rates, so that the flood's rate is not.
        let timed = count <= 1000;
        let (taken0, refused0) = (self.accepted[index], self.refused_full);
        let started = Instant::now();
        for _ in 0..count {
            let mut key = [0xa5u8; 32];
            key[..8].copy_from_slice(&self.next_key.to_le_bytes());
            self.next_key += 1;
            let before = if timed { self.store.len() } else { 0 };
            let one = Instant::now();
            let result = self.store.insert(key, now + self.window, now);
            if timed {
                let took = one.elapsed();
                if self.slowest.len() < 3 || took > self.slowest[2].took {
                    let after = self.store.len();
                    self.slowest.push(Pause { took, phase, second, before, after });
                    self.slowest.sort_by_key(|p| std::cmp::Reverse(p.took));
                    self.slowest.truncate(3);
                }
            }
            match result {
                Ok(()) => self.accepted[index] += 1,
                Err(Reason::ReplayStoreFull) => self.refused_full += 1,
                Err(other) => panic!("unexpected refusal of a new key: {other:?}"),
            }
        }
        let elapsed = started.elapsed();
        if !timed && self.accepted[index] - taken0 == count {
            self.taken_busy = (self.taken_busy.0 + elapsed, self.taken_busy.1 + count);
        } else if !timed && self.refused_full - refused0 == count {
            self.refused_busy = (self.refused_busy.0 + elapsed, self.refused_busy.1 + count);
        }
    }

    /// Entries that are still live at simulated second `second`: accepted at `s` with
    /// `s + window >= second`.
    fn live(&self, second: i64) -> u64 {
        let from = usize::try_from((second - self.window).max(0)).unwrap_or(0);
        self.accepted.iter().skip(from).sum()
    }

    fn report(&self, phase: &str, second: i64) {
        let (rss, hwm) = memory_kib();
        let held = self.store.len();
        let growth = rss.saturating_sub(self.baseline_kib);
        let per_entry = if held > 0 { format!("{:.0}", growth as f64 * 1024.0 / held as f64) } else { "-".into() };
        println!(
            "  {phase:<8} t={second:>5} s  held {held:>9}  live {:>9}  refused(full) {:>9}  RSS {:>6.1} MiB (+{:>5.1}, {per_entry:>4} B/held entry)  peak {:>6.1} MiB",
            self.live(second),
            self.refused_full,
            mib(rss),
            mib(growth),
            mib(hwm),
        );
    }
}

fn scenario(args: &Args, rate: u64) {
    println!(
        "== flood of {rate} unique proofs/s for {} s (simulated clock), window {} s, capacity {}",
        args.flood_seconds, args.window, args.capacity
    );
    let store = MemoryStore::new(args.capacity);
    let (baseline_kib, _) = memory_kib();
    println!("  empty store: RSS {:.1} MiB", mib(baseline_kib));
    let mut flood = Flood {
        store,
        window: args.window,
        next_key: 0,
        accepted: Vec::new(),
        refused_full: 0,
        baseline_kib,
        taken_busy: (Duration::ZERO, 0),
        refused_busy: (Duration::ZERO, 0),
        slowest: Vec::new(),
    };

    let mut full_at = None;
    for second in 0..args.flood_seconds {
        flood.second("flood", second, rate);
        if full_at.is_none() && flood.refused_full > 0 {
            full_at = Some(second);
            flood.report("full", second);
        }
        if (second + 1) % 10 == 0 || second + 1 == args.flood_seconds {
            flood.report("flood", second);
        }
    }
    let (peak_rss, _) = memory_kib();
    let peak_held = flood.store.len();
    let refused_in_flood = flood.refused_full;

    // Every flooded entry has expired once the clock is past the last flood second's expiry.
    let quiet = args.flood_seconds - 1 + args.window + 1;
    flood.report("expired", quiet);
    for s in 0..args.trickle_seconds {
        flood.second("trickle", quiet + s, args.trickle_rate);
        if s == 0 || s == 1 || s + 1 == args.trickle_seconds {
            flood.report("trickle", quiet + s);
        }
    }
    let (after_expiry_rss, _) = memory_kib();
    let after_expiry_held = flood.store.len();

    let steady_from = quiet + args.trickle_seconds;
    let mut steady_max_held = 0;
    for s in 0..args.steady_seconds {
        flood.second("steady", steady_from + s, args.steady_rate);
        steady_max_held = steady_max_held.max(flood.store.len());
        if (s + 1) % 150 == 0 || s + 1 == args.steady_seconds {
            flood.report("steady", steady_from + s);
        }
    }
    let (end_rss, hwm) = memory_kib();

    let growth = peak_rss.saturating_sub(baseline_kib);
    println!("  summary:");
    println!(
        "    flood: {peak_held} entries held at the end ({:.1} MiB over the empty store, {:.0} B per entry); \
         {refused_in_flood} refused as full{}",
        mib(growth),
        growth as f64 * 1024.0 / peak_held.max(1) as f64,
        full_at.map(|s| format!(" (full from second {s})")).unwrap_or_default(),
    );
    println!(
        "    after expiry and {} s of trickle: {after_expiry_held} entries held, RSS {:.1} MiB (was {:.1} at the flood's end)",
        args.trickle_seconds,
        mib(after_expiry_rss),
        mib(peak_rss)
    );
    println!(
        "    steady {} proofs/s for {} s: live about {}, held up to {steady_max_held}; RSS {:.1} MiB at the end, peak {:.1} MiB",
        args.steady_rate,
        args.steady_seconds,
        args.steady_rate * (args.window as u64 + 1),
        mib(end_rss),
        mib(hwm)
    );
    let per_second = |(busy, calls): (Duration, u64)| {
        if calls == 0 {
            "-".to_string()
        } else {
            format!("{:.2} M/s ({calls} in {:.3} s)", calls as f64 / busy.as_secs_f64() / 1e6, busy.as_secs_f64())
        }
    };
    println!(
        "    wall clock, one thread, flood: new keys taken {}; refused as full {}",
        per_second(flood.taken_busy),
        per_second(flood.refused_busy)
    );
    for pause in &flood.slowest {
        let what = if pause.after < pause.before {
            "a sweep"
        } else {
            "no sweep: a table growth, or the thread was descheduled"
        };
        println!(
            "    slow insert: {:.2} ms at {} t={} s, held {} -> {} ({what})",
            pause.took.as_secs_f64() * 1e3,
            pause.phase,
            pause.second,
            pause.before,
            pause.after
        );
    }
}

fn main() {
    let args = Args::parse();
    if let Some(rate) = args.rate {
        scenario(&args, rate);
        return;
    }
    // One fresh process per scenario: RSS is not shared between them.
    let me = std::env::current_exe().expect("own executable");
    let passed: Vec<String> = std::env::args().skip(1).collect();
    for rate in SCENARIOS {
        let status =
            Command::new(&me).args(&passed).arg("--rate").arg(rate.to_string()).status().expect("run scenario");
        assert!(status.success(), "scenario {rate} failed");
    }
}
