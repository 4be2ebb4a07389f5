//! Replay protection for DPoP proofs (RFC 9449 §11.1): each (proof key, `jti`) is accepted
//! once within the proof window.
//!
//! The store records [`super::proof::VerifiedProof::replay_key`] until
//! [`super::proof::VerifiedProof::expires_at`] (inclusive). It is consulted last, after
//! every other check, so a proof refused for any other reason never takes a slot. A store
//! that cannot say whether a proof is new refuses (503): it never guesses "new".
//!
//! Two stores, chosen by `dpop.replay_store`:
//!
//! - `"memory"`, [`MemoryStore`]: in this process only, right for a single replica. It never
//!   evicts a live entry: a full store refuses (503, [`Reason::ReplayStoreFull`]) rather than
//!   forget a proof that could then be replayed. Expired entries are dropped by inserts and,
//!   so that an idle store gives its memory back, by a sweep every [`SWEEP_EVERY`].
//! - `redis://HOST:PORT/DB`, [`RedisStore`]: shared by every replica. Behind one gateway a
//!   client's requests are spread over the replicas, and §11.1 asks that a proof be accepted
//!   once per resource server, not once per process: with per-process stores a proof replayed
//!   to another replica would pass. Each insert is one atomic `SET key 1 NX PX ttl`, so two
//!   replicas racing with the same proof cannot both win. Redis memory is bounded by the
//!   expiry on every key: live keys are at most the proof rate times the window
//!   (`iat_offset + iat_leeway + 1` s), about 180 B each (measured on Redis 7.0), so
//!   1,000 proofs/s with the default window hold about 60 MB. Hence no "full" for this
//!   store; but Redis must never evict a live key, so run it with `maxmemory-policy
//!   noeviction` (Redis's default; managed services often default to `volatile-lru`, which
//!   would evict these keys, all of which have a TTL): a full Redis then answers errors,
//!   which are 503s. Unreachable, slow (over [`REDIS_TIMEOUT`]) or misbehaving Redis:
//!   [`Reason::ReplayStoreUnavailable`], 503 for DPoP requests; Bearer requests never touch
//!   the store. A Redis restarted without persistence forgets the window it held: proofs
//!   accepted before the restart could be replayed until they expire (at most
//!   `iat_offset + iat_leeway` seconds).
//!
//! [`ReplayStore`] is an enum rather than a trait object so that `insert` can be a plain
//! `async fn`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::clock::{Clock, SystemClock};
use crate::refusal::Reason;

/// Default capacity of [`MemoryStore`] (`dpop.replay_capacity`).
pub use crate::config::DEFAULT_REPLAY_CAPACITY as DEFAULT_CAPACITY;
use crate::config::{RedisUrl, ReplayStoreSetting};

/// A store is swept (expired entries dropped) at the latest after this many inserts, or
/// after as many inserts as it holds entries, whichever is larger: O(1) amortized.
const MIN_SWEEP_INTERVAL: usize = 1024;

/// How often a [`MemoryStore`] made inside a Tokio runtime sweeps itself, inserts or not:
/// without it, a store left idle after a flood would hold its entries (up to its capacity,
/// tens of MB) until the next inserts. A tenth of the default proof window (330 s), so an
/// idle store is back near empty at most 31 s after its last entry expired (see
/// `Core::timed_now`); a tick that finds nothing expired costs a few atomic loads and two
/// clock reads.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Where replay keys live.
#[derive(Debug)]
// One per process, behind an `Arc`: the size of the Redis variant is of no account.
#[allow(clippy::large_enum_variant)]
pub enum ReplayStore {
    /// In this process only: right for a single replica.
    Memory(MemoryStore),
    /// In Redis, shared by every replica.
    Redis(RedisStore),
}

impl ReplayStore {
    /// The store `dpop.replay_store` names. No I/O: Redis is connected on first use.
    pub fn new(setting: &ReplayStoreSetting) -> ReplayStore {
        match setting {
            ReplayStoreSetting::Memory { capacity } => ReplayStore::Memory(MemoryStore::new(*capacity)),
            ReplayStoreSetting::Redis(url) => ReplayStore::Redis(RedisStore::new(url)),
        }
    }

    /// Records `key` until `expires_at` (inclusive, seconds since the epoch).
    ///
    /// `Err(ProofReplayed)` if the key is already recorded and unexpired,
    /// `Err(ReplayStoreFull)` when the store is full of live entries,
    /// `Err(ReplayStoreUnavailable)` when a shared store cannot be reached.
    pub async fn insert(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<(), Reason> {
        match self {
            ReplayStore::Memory(store) => store.insert(key, expires_at, now),
            ReplayStore::Redis(store) => store.insert(key, expires_at, now).await,
        }
    }
}

impl ReplayStore {
    /// Entries held by the in-memory store (expired ones not yet swept included); `None`
    /// for Redis, which expires its keys itself. Exported as `tollgate_replay_store_entries`.
    pub fn entries(&self) -> Option<usize> {
        match self {
            ReplayStore::Memory(store) => Some(store.len()),
            ReplayStore::Redis(_) => None,
        }
    }

    /// Drops the in-memory store's expired entries now (inserts and the store's own timer,
    /// [`SWEEP_EVERY`], do so by themselves). Nothing for Redis.
    pub fn sweep(&self, now: i64) {
        if let ReplayStore::Memory(store) = self {
            store.sweep(now);
        }
    }
}

/// The bound on one insert into Redis, waiting for a connection included: a slow or hung
/// Redis costs a DPoP request at most this long, then a 503.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Redis keys are this prefix and the replay key in lower-case hex.
pub const REDIS_KEY_PREFIX: &str = "tollgate:dpop:jti:";

/// After a connection failure or a timeout, inserts answer 503 at once for this long
/// instead of waiting on Redis: an outage costs DPoP requests no latency, and Redis (and
/// DNS) see a few connection attempts a second, not one per request. It is also about
/// how long DPoP stays refused after Redis is back (two pauses and a connect, at most).
const REDIS_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// A connection that timed out is replaced by a fresh one, but not more often than this:
/// a half-open TCP connection (Redis moved, a firewall dropped the flow) would otherwise
/// time out every request until the kernel gives up on it, many minutes later.
const REDIS_RESET_AFTER: Duration = Duration::from_secs(2);

/// A replay store in Redis, shared by every replica (see the module docs).
///
/// Connection handling: one [`ConnectionManager`] (a multiplexed connection, shared by all
/// concurrent inserts, that starts a reconnect, one attempt bounded by [`REDIS_TIMEOUT`],
/// whenever an insert finds the connection dropped or the last attempt failed), created
/// without I/O on the first insert, connected by it. Every insert is bounded by
/// [`REDIS_TIMEOUT`]. After a connection error or timeout, inserts fail fast for
/// `REDIS_RETRY_PAUSE`; an insert that times out on a connection older than
/// `REDIS_RESET_AFTER` drops it, so a later insert starts a fresh one.
pub struct RedisStore {
    client: redis::Client,
    /// The URL without its password, for logs.
    target: String,
    slot: Mutex<Slot>,
    /// Last outcome was an answer from Redis: log only the changes, not every failure.
    reachable: AtomicBool,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Slot {
    connection: Option<Connection>,
    /// Until then, inserts answer unavailable without trying Redis.
    paused_until: Option<Instant>,
}

/// Whether a failure drops the connection ([`RedisStore::pause`]).
#[derive(Clone, Copy)]
enum Reset {
    /// The manager reconnects by itself (the connection dropped, or connecting failed).
    No,
    /// A timeout: maybe a half-open connection; drop it if older than [`REDIS_RESET_AFTER`].
    IfOld,
    /// Connected to a read-only replica.
    Now,
}

struct Connection {
    manager: ConnectionManager,
    id: u64,
    since: Instant,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .field("reachable", &self.reachable.load(Ordering::Relaxed))
            .finish()
    }
}

impl RedisStore {
    /// A store for `url`; no I/O.
    pub fn new(url: &RedisUrl) -> RedisStore {
        RedisStore {
            client: url.client().clone(),
            target: url.to_string(),
            slot: Mutex::new(Slot::default()),
            reachable: AtomicBool::new(true),
            next_id: AtomicU64::new(0),
        }
    }

    /// Records `key` until `expires_at` (inclusive); see [`ReplayStore::insert`].
    ///
    /// One `SET tollgate:dpop:jti:<hex key> 1 NX PX <ms>`: OK, new; nil, a replay; anything
    /// else, or no answer within [`REDIS_TIMEOUT`], unavailable. Never retried: a `SET` that
    /// reached Redis before its connection broke would make the retry look like a replay.
    ///
    /// The expiry is relative to `now`, the checker's clock, which also judged the proof's
    /// `iat`: Redis's own clock never shortens the window (with `PXAT`, a Redis clock running
    /// ahead would, and one more than the window ahead would drop every entry at once).
    pub async fn insert(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<(), Reason> {
        let (mut manager, id) = match self.manager() {
            Ok(current) => current,
            Err(error) => return self.failed(error),
        };
        let mut command = redis::cmd("SET");
        command.arg(redis_key(&key)).arg(1).arg("NX").arg("PX").arg(ttl_millis(expires_at, now));
        let answer = tokio::time::timeout(REDIS_TIMEOUT, command.query_async::<redis::Value>(&mut manager)).await;
        match answer {
            Ok(Ok(redis::Value::Okay)) => self.answered(Ok(())),
            Ok(Ok(redis::Value::SimpleString(s))) if s == "OK" => self.answered(Ok(())),
            Ok(Ok(redis::Value::Nil)) => self.answered(Err(Reason::ProofReplayed)),
            Ok(Ok(other)) => self.failed(format!("unexpected reply to SET: {other:?}")),
            Ok(Err(error)) => {
                if error.code() == Some("READONLY") {
                    // A replica, since a failover: reconnect, the name may now lead to the primary.
                    self.pause(id, Reset::Now);
                } else if error.is_timeout() {
                    self.pause(id, Reset::IfOld);
                } else if error.is_io_error() || error.is_connection_dropped() {
                    self.pause(id, Reset::No);
                }
                // Any other error reply (OOM, …) says nothing about the connection.
                self.failed(error.to_string())
            }
            Err(_elapsed) => {
                self.pause(id, Reset::IfOld);
                self.failed(format!("no answer within {} ms", REDIS_TIMEOUT.as_millis()))
            }
        }
    }

    /// The shared connection manager, made on first use (it needs the Tokio runtime);
    /// `Err` while paused after a failure.
    fn manager(&self) -> Result<(ConnectionManager, u64), String> {
        let mut slot = self.lock();
        if slot.paused_until.is_some_and(|until| Instant::now() < until) {
            return Err("paused after a failure".into());
        }
        if let Some(connection) = slot.connection.as_ref() {
            return Ok((connection.manager.clone(), connection.id));
        }
        // The manager spawns a task: outside a Tokio runtime that would panic.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err("not called from a Tokio runtime".into());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            // Requests are bounded by `REDIS_TIMEOUT` around the whole insert instead.
            .set_response_timeout(None)
            // One attempt per reconnect: the pause between attempts is `REDIS_RETRY_PAUSE`,
            // and no insert waits on a retry loop.
            .set_number_of_retries(0);
        let manager =
            ConnectionManager::new_lazy_with_config(self.client.clone(), config).map_err(|e| e.to_string())?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        slot.connection = Some(Connection { manager: manager.clone(), id, since: Instant::now() });
        Ok((manager, id))
    }

    /// After a failure on connection `id`: fail fast for [`REDIS_RETRY_PAUSE`], and drop the
    /// connection as `reset` says (only if it is still the current one), so that a later
    /// insert connects afresh.
    fn pause(&self, id: u64, reset: Reset) {
        let mut slot = self.lock();
        slot.paused_until = Some(Instant::now() + REDIS_RETRY_PAUSE);
        let drop_it = |c: &Connection| {
            c.id == id
                && match reset {
                    Reset::No => false,
                    Reset::IfOld => c.since.elapsed() >= REDIS_RESET_AFTER,
                    Reset::Now => true,
                }
        };
        if slot.connection.as_ref().is_some_and(drop_it) {
            slot.connection = None;
        }
    }

    fn answered(&self, outcome: Result<(), Reason>) -> Result<(), Reason> {
        if !self.reachable.swap(true, Ordering::Relaxed) {
            tracing::info!(store = %self.target, "DPoP replay store answers again");
        }
        outcome
    }

    fn failed(&self, error: impl std::fmt::Display) -> Result<(), Reason> {
        if self.reachable.swap(false, Ordering::Relaxed) {
            tracing::error!(store = %self.target, %error,
                "DPoP replay store unavailable: DPoP requests are refused with 503 until it answers");
        } else {
            tracing::debug!(store = %self.target, %error, "DPoP replay store still unavailable");
        }
        Err(Reason::ReplayStoreUnavailable)
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        // Every update is a plain field store, never left half-done: a poisoned lock is sound.
        self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `tollgate:dpop:jti:` and the 64 lower-case hex digits of `key`.
fn redis_key(key: &[u8; 32]) -> String {
    use std::fmt::Write;
    let mut text = String::with_capacity(REDIS_KEY_PREFIX.len() + 64);
    text.push_str(REDIS_KEY_PREFIX);
    for byte in key {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Milliseconds from `now` until the end of second `expires_at`, at least one second:
/// the entry is live through `expires_at`, like [`MemoryStore`]'s, and never shorter than
/// the current second (an already past `expires_at` cannot occur for a verified proof).
fn ttl_millis(expires_at: i64, now: i64) -> i64 {
    expires_at.saturating_sub(now).saturating_add(1).max(1).saturating_mul(1000)
}

/// A bounded in-process replay store: a map from replay key to expiry, split into
/// [`SHARDS`] shards by key, each under its own mutex, with shared counts for the capacity
/// and the sweep schedule.
///
/// Every lock is one shard's, held for O(1) work, except while that shard is swept (O(its
/// entries)) or its table grows (the same order), about 1/[`SHARDS`] of the store: with a
/// million entries a lock is held for a fraction of a millisecond, where one map under one
/// lock was held 7 ms by a sweep and up to 46 ms by a table growth, stalling every DPoP
/// check meanwhile. The store is swept, one shard at a time, at the latest after
/// `MIN_SWEEP_INTERVAL` inserts, or after as many inserts as it held after its last sweep,
/// whichever is larger (O(1) amortized), and when full, before it refuses; only when some
/// entry has expired.
///
/// Inserts alone would leave an idle store at its peak: a store made inside a Tokio runtime
/// also sweeps itself every [`SWEEP_EVERY`]. That task holds only a [`Weak`] reference, so it
/// never keeps the store alive, and it is aborted when the store is dropped (a config
/// reload that replaces the store ends its task too). Each of its sweeps runs on Tokio's
/// blocking pool, one shard lock at a time like any other: sweeping a full store takes
/// milliseconds, which on a runtime worker would delay every check queued behind it.
///
/// The semantics are those of one map: a key is accepted once until its expiry, the
/// capacity bounds the entries of the whole store, and a full store refuses rather than
/// evict.
pub struct MemoryStore {
    core: Arc<Core>,
    /// The timed sweep, when the store was made inside a Tokio runtime.
    sweeper: Option<tokio::task::AbortHandle>,
}

struct Core {
    capacity: usize,
    shards: Box<[Shard]>,
    /// Entries held in every shard, expired ones not yet swept included; never above
    /// `capacity` (a slot is reserved here before an entry is added).
    held: AtomicUsize,
    /// No entry expires before this second (a lower bound): a sweep before it frees nothing.
    earliest_expiry: AtomicI64,
    inserts_since_sweep: AtomicUsize,
    /// Entries the last sweep left: the next sweep is due after as many new inserts.
    len_after_sweep: AtomicUsize,
    /// Held by the one sweep going through the store, shard after shard.
    sweeping: Mutex<()>,
    /// The store has no clock: inserts bring the checker's `now`. The latest they brought
    /// (`i64::MIN` before any), and when it was first brought, in milliseconds since `born`
    /// on Tokio's monotonic clock, let a timed sweep tell the time ([`Core::timed_now`]).
    latest_now: AtomicI64,
    latest_at_ms: AtomicU64,
    born: tokio::time::Instant,
}

/// How many shards a [`MemoryStore`] has: enough that one shard of a full default store
/// (about 16,000 entries) is swept or grown in a fraction of a millisecond.
pub const SHARDS: usize = 64;

/// One shard, alone on its cache lines so that locking one does not slow its neighbours.
#[repr(align(128))]
struct Shard(Mutex<Inner>);

struct Inner {
    /// Replay key → last second (inclusive) in which the entry is live.
    entries: HashMap<[u8; 32], i64>,
    /// No entry of this shard expires before this second: sweeping it before frees nothing.
    earliest_expiry: i64,
}

/// Capacity and size only: the keys are of no use in a log, and there may be a million.
impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("capacity", &self.capacity()).field("len", &self.len()).finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(DEFAULT_CAPACITY)
    }
}

/// The timed sweep ends with its store.
impl Drop for MemoryStore {
    fn drop(&mut self) {
        if let Some(sweeper) = &self.sweeper {
            sweeper.abort();
        }
    }
}

/// What an insert into its shard found.
enum Attempt {
    Done(Result<(), Reason>),
    /// A new key, and the store is full of entries (some perhaps expired).
    Full,
}

impl MemoryStore {
    /// A store holding at most `capacity` live entries (memory grows with use, not upfront),
    /// swept every [`SWEEP_EVERY`] when made inside a Tokio runtime.
    pub fn new(capacity: usize) -> Self {
        MemoryStore::with_sweep_interval(capacity, SWEEP_EVERY)
    }

    /// [`MemoryStore::new`] with the timed sweep every `every` instead (tests, tools).
    pub fn with_sweep_interval(capacity: usize, every: Duration) -> Self {
        let core = Arc::new(Core::new(capacity));
        let sweeper = spawn_sweeper(&core, every);
        MemoryStore { core, sweeper }
    }

    pub fn capacity(&self) -> usize {
        self.core.capacity
    }

    /// Entries held, including expired ones not yet swept.
    pub fn len(&self) -> usize {
        self.core.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records `key` until `expires_at` (inclusive); see [`ReplayStore::insert`].
    pub fn insert(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<(), Reason> {
        self.core.insert(key, expires_at, now)
    }

    /// Drops every expired entry now (normally done by inserts and the timed sweep).
    pub fn sweep(&self, now: i64) {
        self.core.sweep(now);
    }
}

/// Starts the timed sweep of `core` if a Tokio runtime is at hand: every `every`, when the
/// store's estimate of the time ([`Core::timed_now`]) is past its earliest expiry, one sweep
/// on the blocking pool. The task holds `core` only while it sweeps, and ends at the first
/// tick after `core` is gone (if it was not aborted first).
fn spawn_sweeper(core: &Arc<Core>, every: Duration) -> Option<tokio::task::AbortHandle> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let store: Weak<Core> = Arc::downgrade(core);
    let every = every.max(Duration::from_millis(1));
    let task = runtime.spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(core) = store.upgrade() else { return };
            let Some(now) = core.timed_now() else { continue };
            if core.earliest_expiry.load(Ordering::Acquire) >= now {
                continue;
            }
            // An error is a sweep that panicked (no shard is left half-updated, see `lock`)
            // or a runtime shutting down: either way, nothing to do but try at the next tick.
            let _ = tokio::task::spawn_blocking(move || core.sweep(now)).await;
        }
    });
    Some(task.abort_handle())
}

impl Core {
    fn new(capacity: usize) -> Self {
        let shards = (0..SHARDS)
            .map(|_| Shard(Mutex::new(Inner { entries: HashMap::new(), earliest_expiry: i64::MAX })))
            .collect();
        Core {
            capacity,
            shards,
            held: AtomicUsize::new(0),
            earliest_expiry: AtomicI64::new(i64::MAX),
            inserts_since_sweep: AtomicUsize::new(0),
            len_after_sweep: AtomicUsize::new(0),
            sweeping: Mutex::new(()),
            latest_now: AtomicI64::new(i64::MIN),
            latest_at_ms: AtomicU64::new(0),
            born: tokio::time::Instant::now(),
        }
    }

    fn len(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// Records that it is `now` (an insert's clock): once per second, not per insert.
    fn note_now(&self, now: i64) {
        if now > self.latest_now.load(Ordering::Acquire) {
            // The instant first, then the second it belongs to: a reader that sees this
            // `now` sees this instant or a later one, so its estimate can only come out low.
            let since_born = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.latest_at_ms.store(since_born, Ordering::Release);
            self.latest_now.fetch_max(now, Ordering::AcqRel);
        }
    }

    /// The `now` of a timed sweep: the latest `now` an insert brought, plus the whole
    /// seconds elapsed since on the monotonic clock, and never past the system clock; `None`
    /// before the first insert. With the checker on the system clock (in service) this is at
    /// most the checker's `now`, so a timed sweep never drops an entry the checker still
    /// counts as live, even across a wall-clock step backwards. (A test clock that stands
    /// still while real time passes is, to this estimate, a clock that runs.)
    fn timed_now(&self) -> Option<i64> {
        let latest = self.latest_now.load(Ordering::Acquire);
        if latest == i64::MIN {
            return None;
        }
        let at = self.born + Duration::from_millis(self.latest_at_ms.load(Ordering::Acquire));
        let elapsed = tokio::time::Instant::now().saturating_duration_since(at).as_secs();
        let estimate = latest.saturating_add(i64::try_from(elapsed).unwrap_or(i64::MAX));
        Some(estimate.min(SystemClock.now()))
    }

    fn insert(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<(), Reason> {
        self.note_now(now);
        let outcome = match self.attempt(key, expires_at, now) {
            Attempt::Done(outcome) => outcome,
            Attempt::Full => {
                // Free what has expired, then try once more; still full: refuse.
                if self.earliest_expiry.load(Ordering::Acquire) < now {
                    self.make_room(shard_of(&key), now);
                }
                match self.attempt(key, expires_at, now) {
                    Attempt::Done(outcome) => outcome,
                    Attempt::Full => Err(Reason::ReplayStoreFull),
                }
            }
        };
        let due = self.inserts_since_sweep.load(Ordering::Acquire)
            >= self.len_after_sweep.load(Ordering::Acquire).max(MIN_SWEEP_INTERVAL);
        if due && self.earliest_expiry.load(Ordering::Acquire) < now {
            // Due, not needed: if another insert is sweeping already, leave it to that one.
            self.sweep_when_due(now);
        }
        outcome
    }

    fn attempt(&self, key: [u8; 32], expires_at: i64, now: i64) -> Attempt {
        let mut shard = lock(&self.shards[shard_of(&key)]);
        if let Some(recorded) = shard.entries.get_mut(&key) {
            if *recorded >= now {
                return Attempt::Done(Err(Reason::ProofReplayed));
            }
            // Expired but not yet swept: reuse the slot.
            *recorded = expires_at;
        } else {
            self.inserts_since_sweep.fetch_add(1, Ordering::AcqRel);
            // Reserve a slot first, so that concurrent inserts into other shards never take
            // the store past its capacity.
            let capacity = self.capacity;
            let reserved = self
                .held
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| (held < capacity).then_some(held + 1));
            if reserved.is_err() {
                return Attempt::Full;
            }
            shard.entries.insert(key, expires_at);
        }
        shard.earliest_expiry = shard.earliest_expiry.min(expires_at);
        self.earliest_expiry.fetch_min(expires_at, Ordering::AcqRel);
        Attempt::Done(Ok(()))
    }

    /// In a full store: sweeps the shards that hold an expired entry, from `first` on, one
    /// lock at a time, until there is room, so that an insert into a full store waits for a
    /// few shards' sweeps, not the whole store's. A walk through every shard that found no
    /// room leaves nothing expired before `now`: the next inserts in this second refuse at
    /// once (at most one walk per second that has something to expire).
    fn make_room(&self, first: usize, now: i64) {
        for i in 0..SHARDS {
            if self.len() < self.capacity {
                return;
            }
            let mut inner = lock(&self.shards[(first + i) % SHARDS]);
            if inner.earliest_expiry < now {
                let freed = inner.sweep(now);
                self.held.fetch_sub(freed, Ordering::AcqRel);
            }
        }
        if self.len() >= self.capacity {
            // Still a lower bound: every entry swept or left expires at `now` or later.
            self.earliest_expiry.fetch_max(now, Ordering::AcqRel);
        }
    }

    /// Sweeps every shard that holds an expired entry, one shard's lock at a time, unless
    /// another sweep is under way.
    fn sweep_when_due(&self, now: i64) {
        let _alone = match self.sweeping.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        self.sweep_shards(now);
    }

    /// Drops every expired entry now, after any sweep under way.
    fn sweep(&self, now: i64) {
        let _alone = self.sweeping.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.sweep_shards(now);
    }

    fn sweep_shards(&self, now: i64) {
        // Counted from the start: inserts made while the shards are swept count for the next.
        self.inserts_since_sweep.store(0, Ordering::Release);
        let mut earliest = i64::MAX;
        for shard in self.shards.iter() {
            let mut inner = lock(shard);
            if inner.earliest_expiry < now {
                let freed = inner.sweep(now);
                self.held.fetch_sub(freed, Ordering::AcqRel);
            }
            earliest = earliest.min(inner.earliest_expiry);
        }
        // A lower bound still: an insert made meanwhile into a shard already passed may have
        // lowered it below `earliest`; then, at worst, the next sweep comes a little late.
        self.earliest_expiry.store(earliest, Ordering::Release);
        self.len_after_sweep.store(self.len(), Ordering::Release);
    }
}

/// The shard of `key`: the top bits of a multiplicative hash of its first 8 bytes (replay
/// keys are SHA-256 digests, but any keys spread, even ones that differ in one byte).
fn shard_of(key: &[u8; 32]) -> usize {
    let mut head = [0; 8];
    head.copy_from_slice(&key[..8]);
    let mixed = u64::from_le_bytes(head).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> (64 - SHARDS.trailing_zeros())) as usize
}

fn lock(shard: &Shard) -> MutexGuard<'_, Inner> {
    // No operation can leave a shard half-updated, so a poisoned lock is still sound.
    shard.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Inner {
    /// Drops this shard's expired entries; returns how many.
    fn sweep(&mut self, now: i64) -> usize {
        let before = self.entries.len();
        let mut earliest = i64::MAX;
        self.entries.retain(|_, &mut expires_at| {
            let live = expires_at >= now;
            if live {
                earliest = earliest.min(expires_at);
            }
            live
        });
        self.earliest_expiry = earliest;
        // After a flood, give the memory back rather than keep the table at its peak size.
        let wanted = self.entries.len().max(MIN_SWEEP_INTERVAL / SHARDS) * 2;
        if self.entries.capacity() > wanted * 2 {
            self.entries.shrink_to(wanted);
        }
        before - self.entries.len()
    }
}

#[cfg(test)]
mod tests;
