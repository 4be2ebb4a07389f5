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
//!
//! `--latency` measures instead what the store's locking costs the DPoP checks running
//! beside a flood, for the sharded [`MemoryStore`] ("after") and for [`SingleLockStore`], the
//! store as it was before sharding (one map under one mutex, kept here for the comparison):
//! one thread floods the store with new keys as fast as it can while another makes a
//! check's insert every `--check-every-us` µs (after a spin of `--verify-us` µs standing for
//! the proof's verification), timing each insert, waiting for the lock included. Two phases:
//!
//! - growth: an empty store of the default capacity filled to one million entries (its table
//!   doubles on the way, the last time near a million);
//! - sweeps: a full store whose entries expire 10,000 per simulated second, flooded at
//!   10,000 new keys per simulated second for `--sweep-seconds`: every second the full store
//!   is swept before the flood can go on (one sweep of a million entries per second).
//!
//! ```text
//! cargo run --release --example replay_flood -- --latency
//! ```

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};
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
    /// Measure the latency of checks' inserts beside a flood, before and after sharding.
    #[arg(long)]
    latency: bool,
    /// --latency: one check's insert every this many microseconds.
    #[arg(long, default_value_t = 100)]
    check_every_us: u64,
    /// --latency: busy work before each check's insert, standing for the proof's verification.
    #[arg(long, default_value_t = 20)]
    verify_us: u64,
    /// --latency: simulated seconds of the sweep phase (one sweep of the full store each).
    #[arg(long, default_value_t = 60)]
    sweep_seconds: i64,
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
    if args.latency {
        latency(&args);
        return;
    }
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

// --- Latency of checks beside a flood: the sharded store against the single-lock one ---

/// The two stores compared by `--latency`.
trait Store: Sync {
    fn insert(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<(), Reason>;
}

impl Store for MemoryStore {
    fn insert(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<(), Reason> {
        MemoryStore::insert(self, key, expires_at, now)
    }
}

/// The in-memory replay store as it was before sharding (src/dpop/replay.rs before this
/// example's `--latency` was added): one map under one mutex, swept whole by the insert that
/// finds it due or full.
struct SingleLockStore {
    capacity: usize,
    inner: Mutex<SingleInner>,
}

struct SingleInner {
    entries: HashMap<[u8; 32], i64>,
    earliest_expiry: i64,
    inserts_since_sweep: usize,
    len_after_sweep: usize,
}

impl SingleLockStore {
    fn new(capacity: usize) -> Self {
        let inner = SingleInner {
            entries: HashMap::new(),
            earliest_expiry: i64::MAX,
            inserts_since_sweep: 0,
            len_after_sweep: 0,
        };
        SingleLockStore { capacity, inner: Mutex::new(inner) }
    }

    fn lock(&self) -> MutexGuard<'_, SingleInner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for SingleLockStore {
    fn insert(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<(), Reason> {
        let mut inner = self.lock();
        if let Some(&recorded) = inner.entries.get(&key) {
            if recorded >= now {
                return Err(Reason::ProofReplayed);
            }
            inner.entries.insert(key, expires_at);
            inner.earliest_expiry = inner.earliest_expiry.min(expires_at);
            return Ok(());
        }
        inner.inserts_since_sweep += 1;
        let full = inner.entries.len() >= self.capacity;
        let due = inner.inserts_since_sweep >= inner.len_after_sweep.max(1024);
        if (full || due) && inner.earliest_expiry < now {
            let mut earliest = i64::MAX;
            inner.entries.retain(|_, &mut expires_at| {
                let live = expires_at >= now;
                if live {
                    earliest = earliest.min(expires_at);
                }
                live
            });
            inner.earliest_expiry = earliest;
            inner.inserts_since_sweep = 0;
            inner.len_after_sweep = inner.entries.len();
            let wanted = inner.entries.len().max(1024) * 2;
            if inner.entries.capacity() > wanted * 2 {
                inner.entries.shrink_to(wanted);
            }
        }
        if inner.entries.len() >= self.capacity {
            return Err(Reason::ReplayStoreFull);
        }
        inner.entries.insert(key, expires_at);
        inner.earliest_expiry = inner.earliest_expiry.min(expires_at);
        Ok(())
    }
}

fn key_of(tag: u8, n: u64) -> [u8; 32] {
    // Replay keys are SHA-256 digests: spread the counter over the first bytes.
    let mut key = [tag; 32];
    key[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
    key[8..16].copy_from_slice(&n.to_le_bytes());
    key
}

/// Latencies of the checks' inserts, and the flood's slowest insert.
struct Measured {
    checks: Vec<Duration>,
    flood_inserts: u64,
    flood_slowest: Duration,
    took: Duration,
}

/// Runs `flood` on one thread while checks insert beside it at the flood's simulated `now`.
fn beside_flood(
    args: &Args,
    store: &dyn Store,
    now: &AtomicI64,
    flood: impl FnOnce(&dyn Store) -> (u64, Duration),
) -> Measured {
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let (checks, (flood_inserts, flood_slowest)) = std::thread::scope(|scope| {
        let checker = scope.spawn(|| {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            let every = Duration::from_micros(args.check_every_us);
            let mut next = Instant::now();
            while !done.load(Ordering::Acquire) {
                let spin = Instant::now();
                while spin.elapsed() < Duration::from_micros(args.verify_us) {
                    std::hint::spin_loop();
                }
                let at = now.load(Ordering::Acquire);
                let one = Instant::now();
                let _ = store.insert(key_of(0xc4, n), at + args.window, at);
                latencies.push(one.elapsed());
                n += 1;
                next += every;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                } else {
                    next = Instant::now();
                }
            }
            latencies
        });
        let flooded = flood(store);
        done.store(true, Ordering::Release);
        (checker.join().expect("checks thread"), flooded)
    });
    Measured { checks, flood_inserts, flood_slowest, took: started.elapsed() }
}

/// An empty store filled to a million entries as fast as one thread can.
fn growth_phase(args: &Args, store: &dyn Store) -> Measured {
    let now = AtomicI64::new(T0);
    beside_flood(args, store, &now, |store| {
        let mut slowest = Duration::ZERO;
        for n in 0..1_000_000u64 {
            let one = Instant::now();
            let _ = store.insert(key_of(0xf1, n), T0 + args.window, T0);
            slowest = slowest.max(one.elapsed());
        }
        (1_000_000, slowest)
    })
}

/// A full store whose entries expire 10,000 a second, flooded at 10,000 a second.
fn sweep_phase(args: &Args, store: &dyn Store) -> Measured {
    let per_second = (args.capacity as u64 / 100).max(1);
    // Entries expiring over 100 simulated seconds fill the store (not measured).
    for n in 0..args.capacity as u64 {
        let _ = store.insert(key_of(0xf2, n), T0 + (n / per_second) as i64, T0);
    }
    let now = AtomicI64::new(T0 + 1);
    beside_flood(args, store, &now, |store| {
        let mut slowest = Duration::ZERO;
        let mut n = 0u64;
        for second in 1..=args.sweep_seconds {
            now.store(T0 + second, Ordering::Release);
            for _ in 0..per_second {
                let one = Instant::now();
                let _ = store.insert(key_of(0xf3, n), T0 + second + 100, T0 + second);
                slowest = slowest.max(one.elapsed());
                n += 1;
            }
        }
        (n, slowest)
    })
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn print_measured(phase: &str, store: &str, mut m: Measured) {
    m.checks.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  {phase:<7} {store:<12} checks {:>6}: p50 {:.4} ms  p99 {:.4} ms  p99.9 {:.3} ms  max {:.3} ms | flood {} inserts in {:.2} s, slowest {:.3} ms",
        m.checks.len(),
        ms(quantile(&m.checks, 0.5)),
        ms(quantile(&m.checks, 0.99)),
        ms(quantile(&m.checks, 0.999)),
        ms(m.checks.last().copied().unwrap_or_default()),
        m.flood_inserts,
        m.took.as_secs_f64(),
        ms(m.flood_slowest),
    );
}

fn latency(args: &Args) {
    println!(
        "== checks' inserts beside a flood: one check every {} µs after {} µs of work; capacity {}",
        args.check_every_us, args.verify_us, args.capacity
    );
    print_measured("growth", "single lock", growth_phase(args, &SingleLockStore::new(args.capacity)));
    print_measured("growth", "sharded", growth_phase(args, &MemoryStore::new(args.capacity)));
    print_measured("sweeps", "single lock", sweep_phase(args, &SingleLockStore::new(args.capacity)));
    print_measured("sweeps", "sharded", sweep_phase(args, &MemoryStore::new(args.capacity)));
}
