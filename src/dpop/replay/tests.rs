use super::*;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const NOW: i64 = 1_700_000_000;

fn key(n: u32) -> [u8; 32] {
    let mut key = [0; 32];
    key[..4].copy_from_slice(&n.to_be_bytes());
    key
}

/// Drives a future that never waits (the memory store) to completion.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(future)
}

#[test]
fn a_second_insert_of_the_same_key_is_a_replay() {
    let store = MemoryStore::new(10);
    assert_eq!(store.insert(key(1), NOW + 330, NOW), Ok(()));
    assert_eq!(store.insert(key(1), NOW + 330, NOW), Err(Reason::ProofReplayed));
    assert_eq!(store.insert(key(1), NOW + 400, NOW + 330), Err(Reason::ProofReplayed));
    assert_eq!(store.insert(key(2), NOW + 330, NOW), Ok(()));
    assert_eq!(store.len(), 2);
}

#[test]
fn after_its_expiry_the_same_key_is_accepted_again() {
    let store = MemoryStore::new(10);
    assert_eq!(store.insert(key(1), NOW, NOW - 330), Ok(()));
    // Live through the second `expires_at` itself.
    assert_eq!(store.insert(key(1), NOW + 330, NOW), Err(Reason::ProofReplayed));
    assert_eq!(store.insert(key(1), NOW + 331, NOW + 1), Ok(()));
    assert_eq!(store.insert(key(1), NOW + 331, NOW + 2), Err(Reason::ProofReplayed));
    assert_eq!(store.len(), 1);
}

#[test]
fn a_full_store_refuses_new_keys_and_keeps_its_live_entries() {
    let store = MemoryStore::new(3);
    for n in 0..3 {
        assert_eq!(store.insert(key(n), NOW + 300, NOW), Ok(()));
    }
    assert_eq!(store.insert(key(3), NOW + 300, NOW), Err(Reason::ReplayStoreFull));
    assert_eq!(store.insert(key(3), NOW + 300, NOW + 100), Err(Reason::ReplayStoreFull));
    assert_eq!(store.len(), 3);
    // Nothing was evicted: every earlier proof is still a replay.
    for n in 0..3 {
        assert_eq!(store.insert(key(n), NOW + 300, NOW + 100), Err(Reason::ProofReplayed));
    }
}

#[test]
fn a_full_store_frees_expired_entries_when_it_needs_room() {
    let store = MemoryStore::new(3);
    assert_eq!(store.insert(key(0), NOW + 10, NOW), Ok(()));
    assert_eq!(store.insert(key(1), NOW + 300, NOW), Ok(()));
    assert_eq!(store.insert(key(2), NOW + 300, NOW), Ok(()));
    assert_eq!(store.insert(key(3), NOW + 300, NOW + 10), Err(Reason::ReplayStoreFull));
    assert_eq!(store.insert(key(3), NOW + 300, NOW + 11), Ok(()));
    assert_eq!(store.len(), 3);
    assert_eq!(store.insert(key(1), NOW + 300, NOW + 11), Err(Reason::ProofReplayed));
}

#[test]
fn sweeping_frees_expired_entries_only() {
    let store = MemoryStore::new(100);
    for n in 0..50 {
        assert_eq!(store.insert(key(n), NOW + i64::from(n), NOW), Ok(()));
    }
    store.sweep(NOW + 20);
    assert_eq!(store.len(), 30);
    assert_eq!(store.insert(key(20), NOW + 400, NOW + 20), Err(Reason::ProofReplayed));
    assert_eq!(store.insert(key(19), NOW + 400, NOW + 20), Ok(()));
    store.sweep(NOW + 1000);
    assert!(store.is_empty());
}

#[test]
fn expired_entries_are_swept_lazily_as_inserts_go_on() {
    let store = MemoryStore::new(1_000_000);
    let batch = MIN_SWEEP_INTERVAL as u32;
    for n in 0..batch {
        assert_eq!(store.insert(key(n), NOW, NOW), Ok(()));
    }
    // A later wave of inserts triggers a sweep without the store being full.
    for n in batch..3 * batch {
        assert_eq!(store.insert(key(n), NOW + 1000, NOW + 500), Ok(()));
    }
    assert!(store.len() < 3 * MIN_SWEEP_INTERVAL, "len {}", store.len());
    assert_eq!(store.insert(key(batch), NOW + 1000, NOW + 500), Err(Reason::ProofReplayed));
}

#[test]
fn the_default_store_holds_a_million_entries() {
    assert_eq!(MemoryStore::default().capacity(), DEFAULT_CAPACITY);
    assert_eq!(DEFAULT_CAPACITY, 1_000_000);
}

#[test]
fn the_replay_store_enum_inserts_through_its_memory_store() {
    let store = ReplayStore::Memory(MemoryStore::new(1));
    assert_eq!(block_on(store.insert(key(1), NOW + 1, NOW)), Ok(()));
    assert_eq!(block_on(store.insert(key(1), NOW + 1, NOW)), Err(Reason::ProofReplayed));
    assert_eq!(block_on(store.insert(key(2), NOW + 1, NOW)), Err(Reason::ReplayStoreFull));
}

#[test]
fn the_replay_store_can_be_shared_across_tasks() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let store = std::sync::Arc::new(ReplayStore::Memory(MemoryStore::default()));
    assert_send_sync(&store);
    let future = store.insert(key(1), NOW, NOW);
    assert_send(&future);
    assert_eq!(block_on(future), Ok(()));
}

#[test]
fn debug_output_shows_the_size_not_the_keys() {
    let store = MemoryStore::new(5);
    assert_eq!(store.insert(key(1), NOW, NOW), Ok(()));
    assert_eq!(format!("{store:?}"), "MemoryStore { capacity: 5, len: 1 }");
}

// --- The timed sweep: an idle store gives its memory back, and the task ends with it ---

/// Polls `done` every 10 ms for up to 5 s (real time: the timed sweep runs on Tokio's
/// clock and the blocking pool); whether it came true.
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..500 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

#[tokio::test]
async fn an_idle_store_is_emptied_by_its_timed_sweep() {
    let store = MemoryStore::with_sweep_interval(1000, Duration::from_millis(20));
    for n in 0..100 {
        assert_eq!(store.insert(key(n), NOW + 1, NOW), Ok(()));
    }
    // A later insert says it is now NOW + 10: the first hundred have expired, and too few
    // inserts were made for an insert to sweep them.
    assert_eq!(store.insert(key(1000), NOW + 400, NOW + 10), Ok(()));
    assert_eq!(store.len(), 101);
    // No insert from here on: only the timer can sweep.
    assert!(eventually(|| store.len() == 1).await, "still {} entries", store.len());
    assert_eq!(store.insert(key(1000), NOW + 400, NOW + 10), Err(Reason::ProofReplayed));
    assert_eq!(store.insert(key(0), NOW + 400, NOW + 10), Ok(()));
}

#[tokio::test]
async fn the_timed_sweep_lets_time_pass_on_the_monotonic_clock() {
    let store = MemoryStore::with_sweep_interval(1000, Duration::from_millis(20));
    let inserted = Instant::now();
    for n in 0..10 {
        // Live through the second NOW itself.
        assert_eq!(store.insert(key(n), NOW, NOW), Ok(()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let held = store.len();
    if inserted.elapsed() < Duration::from_millis(900) {
        // Well within the second NOW: many ticks passed, nothing was dropped.
        assert_eq!(held, 10, "a live entry was swept");
    }
    // About a second after the inserts it is NOW + 1 for the store, and no insert came.
    assert!(eventually(|| store.is_empty()).await, "still {} entries", store.len());
    assert!(inserted.elapsed() >= Duration::from_secs(1), "swept before its expiry: {:?}", inserted.elapsed());
}

#[test]
fn the_timed_sweep_tells_the_time_from_the_inserts_and_never_past_the_system_clock() {
    let core = Core::new(10);
    assert_eq!(core.timed_now(), None, "no insert yet, no time to sweep by");
    core.note_now(NOW);
    assert_eq!(core.timed_now(), Some(NOW));
    // An older `now` (another thread's insert a moment late) does not move it back.
    core.note_now(NOW - 5);
    assert_eq!(core.timed_now(), Some(NOW));
    // Inserts on a clock far ahead of the system's: the system clock bounds the estimate.
    let system = SystemClock.now();
    core.note_now(system + 1000);
    let estimate = core.timed_now().expect("an estimate");
    assert!(estimate <= SystemClock.now() && estimate >= system, "{estimate} against {system}");
}

#[tokio::test]
async fn the_timed_sweep_ends_when_its_store_is_dropped() {
    let store = MemoryStore::with_sweep_interval(10, Duration::from_millis(20));
    let task = store.sweeper.clone().expect("made inside a runtime: a timed sweep");
    assert_eq!(store.insert(key(1), NOW, NOW), Ok(()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!task.is_finished(), "the task ended while its store lives");
    drop(store);
    assert!(eventually(|| task.is_finished()).await, "the task outlived its store");
}

#[tokio::test]
async fn the_timed_sweep_holds_its_store_only_weakly_and_ends_without_it() {
    let core = Arc::new(Core::new(10));
    let task = spawn_sweeper(&core, Duration::from_millis(20)).expect("a runtime");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let weak = Arc::downgrade(&core);
    drop(core);
    // Between ticks the task holds no strong reference: the store is gone at once.
    assert!(weak.upgrade().is_none(), "the task keeps the store alive");
    // And the task ends by itself at its next tick, without being aborted.
    assert!(eventually(|| task.is_finished()).await, "the task outlived its store");
}

#[test]
fn a_store_made_outside_a_runtime_has_no_timed_sweep_and_still_works() {
    let store = MemoryStore::new(10);
    assert!(store.sweeper.is_none());
    assert_eq!(store.insert(key(1), NOW, NOW), Ok(()));
    store.sweep(NOW + 1);
    assert!(store.is_empty());
}

#[tokio::test]
async fn a_memory_store_from_the_config_sweeps_itself_and_a_redis_store_has_nothing_to_sweep() {
    match for_setting("memory") {
        ReplayStore::Memory(store) => assert!(store.sweeper.is_some(), "no timed sweep"),
        other => panic!("expected the memory store, got {other:?}"),
    }
    let redis = for_setting(&format!("redis://127.0.0.1:{}/0", closed_port()));
    assert_eq!(redis.entries(), None);
}

// --- Choosing the store, and the Redis store without a Redis server (tests/redis.rs has one) ---

/// A runtime with I/O and timers, which the Redis store needs. One per test: the store's
/// connection belongs to the runtime it was made on.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// A port on 127.0.0.1 with nothing listening (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The store for a `dpop.replay_store` value, as loading and `ReplayStore::new` make it.
fn for_setting(value: &str) -> ReplayStore {
    let setting = match value {
        "memory" => ReplayStoreSetting::Memory { capacity: DEFAULT_CAPACITY },
        url => ReplayStoreSetting::Redis(RedisUrl::parse(url).expect("a usable Redis URL")),
    };
    ReplayStore::new(&setting)
}

#[test]
fn memory_selects_the_in_process_store() {
    assert!(matches!(for_setting("memory"), ReplayStore::Memory(_)));
}

#[test]
fn a_redis_url_selects_the_redis_store_without_connecting_or_a_runtime() {
    // No Tokio runtime here, and nothing listens on the port: creation does no I/O.
    let url = format!("redis://127.0.0.1:{}/0", closed_port());
    assert!(matches!(for_setting(&url), ReplayStore::Redis(_)));
}

#[test]
fn a_password_in_the_url_is_never_shown() {
    let store = for_setting("redis://user:hunter2@127.0.0.1:6379/0");
    let shown = format!("{store:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("redis://user:REDACTED@127.0.0.1:6379/0"), "{shown}");
    let plain = RedisUrl::parse("redis://127.0.0.1:6379/2").expect("a usable Redis URL");
    assert_eq!(plain.to_string(), "redis://127.0.0.1:6379/2");
}

#[test]
fn a_redis_url_is_what_the_client_can_use() {
    assert!(RedisUrl::parse("redis://127.0.0.1:6379/0").is_ok());
    assert!(RedisUrl::parse("redis://:pw@redis.internal/3").is_ok());
    assert!(RedisUrl::parse("memory").is_err());
    assert!(RedisUrl::parse("http://127.0.0.1:6379/0").is_err());
    assert!(RedisUrl::parse("redis://127.0.0.1:6379/not-a-database").is_err());
}

#[test]
fn a_url_the_client_cannot_use_never_becomes_a_store() {
    // A redis:// URL with a host that names no database, and values that are no Redis URL:
    // refused when the config loads (`dpop.replay_store`), never a store, never memory.
    for value in ["redis://127.0.0.1:6379/not-a-database", "", "Memory", "redis:/nohost", "http://127.0.0.1:6379/0"] {
        assert!(RedisUrl::parse(value).is_err(), "{value:?}");
    }
}

#[test]
fn an_unreachable_redis_answers_unavailable_within_the_timeout() {
    let rt = runtime();
    let store = for_setting(&format!("redis://127.0.0.1:{}/0", closed_port()));
    for n in 0..3 {
        let started = Instant::now();
        assert_eq!(rt.block_on(store.insert(key(n), NOW + 300, NOW)), Err(Reason::ReplayStoreUnavailable));
        let took = started.elapsed();
        assert!(took <= REDIS_TIMEOUT + Duration::from_millis(300), "insert {n} took {took:?}");
    }
}

#[test]
fn a_redis_that_never_answers_is_unavailable_after_the_timeout() {
    let rt = runtime();
    // Accepts connections and reads nothing, answers nothing.
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    rt.spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let store = for_setting(&format!("redis://127.0.0.1:{port}/0"));
    let timed = |n: u32| {
        let started = Instant::now();
        assert_eq!(rt.block_on(store.insert(key(n), NOW + 300, NOW)), Err(Reason::ReplayStoreUnavailable));
        started.elapsed()
    };
    let first = timed(0);
    assert!(first >= REDIS_TIMEOUT - Duration::from_millis(50), "{first:?}");
    assert!(first <= REDIS_TIMEOUT + Duration::from_millis(300), "{first:?}");
    // Right after a timeout: refused at once, without waiting on Redis again.
    let paused = timed(1);
    assert!(paused < Duration::from_millis(50), "{paused:?}");
    // After the pause Redis is tried again, still within the bound.
    std::thread::sleep(REDIS_RETRY_PAUSE + Duration::from_millis(20));
    let again = timed(2);
    assert!(again <= REDIS_TIMEOUT + Duration::from_millis(300), "{again:?}");
}

#[test]
fn an_outage_costs_a_few_connection_attempts_a_second_not_one_per_insert() {
    let rt = runtime();
    // Accepts each connection and closes it at once: every attempt fails.
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    rt.spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(socket);
        }
    });
    let store = for_setting(&format!("redis://127.0.0.1:{port}/0"));
    let started = Instant::now();
    let mut inserts = 0;
    while started.elapsed() < Duration::from_millis(500) {
        let one = Instant::now();
        assert_eq!(rt.block_on(store.insert(key(inserts), NOW + 300, NOW)), Err(Reason::ReplayStoreUnavailable));
        assert!(one.elapsed() < Duration::from_millis(200), "insert {inserts} took {:?}", one.elapsed());
        inserts += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    let attempts = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(inserts > 50, "{inserts} inserts");
    // One attempt per pause, and the one that starts it.
    assert!((1..=12).contains(&attempts), "{attempts} connection attempts for {inserts} inserts");
}

/// A fake Redis on 127.0.0.1: parses RESP commands, answers `+OK` to every command but
/// `SET` (the client's handshake), and `set_reply` to `SET`. Records each connection as
/// `["(connected)"]` and each `SET` with its arguments.
fn fake_redis(rt: &tokio::runtime::Runtime, set_reply: &'static str) -> (u16, std::sync::Arc<Mutex<Vec<Vec<String>>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let sets = std::sync::Arc::new(Mutex::new(Vec::new()));
    let recorded = sets.clone();
    rt.spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            recorded.lock().unwrap().push(vec!["(connected)".to_string()]);
            let recorded = recorded.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut read = BufReader::new(read);
                loop {
                    let mut line = String::new();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let count: usize = line.trim_start_matches('*').trim().parse().expect("array header");
                    let mut args = Vec::new();
                    for _ in 0..count {
                        line.clear();
                        read.read_line(&mut line).await.expect("bulk header");
                        let len: usize = line.trim_start_matches('$').trim().parse().expect("bulk length");
                        let mut arg = vec![0; len + 2];
                        read.read_exact(&mut arg).await.expect("bulk");
                        arg.truncate(len);
                        args.push(String::from_utf8(arg).expect("utf-8"));
                    }
                    let reply = if args[0].eq_ignore_ascii_case("SET") {
                        recorded.lock().unwrap().push(args);
                        set_reply
                    } else {
                        "+OK\r\n"
                    };
                    write.write_all(reply.as_bytes()).await.expect("write");
                }
            });
        }
    });
    (port, sets)
}

#[test]
fn an_insert_is_one_set_nx_px_through_the_end_of_expires_at() {
    let rt = runtime();
    let (port, sets) = fake_redis(&rt, "+OK\r\n");
    let store = for_setting(&format!("redis://127.0.0.1:{port}/0"));
    assert_eq!(rt.block_on(store.insert(key(7), NOW + 330, NOW)), Ok(()));
    let expected_key = format!("tollgate:dpop:jti:00000007{}", "0".repeat(56));
    assert_eq!(*sets.lock().unwrap(), vec![vec!["(connected)"], vec!["SET", &expected_key, "1", "NX", "PX", "331000"]]);
}

#[test]
fn redis_replies_map_to_new_replayed_or_unavailable() {
    for (reply, expected) in [
        ("+OK\r\n", Ok(())),
        ("$-1\r\n", Err(Reason::ProofReplayed)),
        ("_\r\n", Err(Reason::ProofReplayed)),
        (":1\r\n", Err(Reason::ReplayStoreUnavailable)),
        ("+QUEUED\r\n", Err(Reason::ReplayStoreUnavailable)),
        ("$2\r\nOK\r\n", Err(Reason::ReplayStoreUnavailable)),
        ("-OOM command not allowed when used memory > 'maxmemory'.\r\n", Err(Reason::ReplayStoreUnavailable)),
        ("-ERR invalid expire time in 'set' command\r\n", Err(Reason::ReplayStoreUnavailable)),
    ] {
        let rt = runtime();
        let (port, _) = fake_redis(&rt, reply);
        let store = for_setting(&format!("redis://127.0.0.1:{port}/0"));
        assert_eq!(rt.block_on(store.insert(key(1), NOW + 300, NOW)), expected, "reply {reply:?}");
    }
}

#[test]
fn a_read_only_replica_is_left_for_a_new_connection_other_error_replies_are_not() {
    for (reply, connections) in
        [("-READONLY You can't write against a read only replica.\r\n", 2), ("-OOM full\r\n", 1)]
    {
        let rt = runtime();
        let (port, log) = fake_redis(&rt, reply);
        let store = for_setting(&format!("redis://127.0.0.1:{port}/0"));
        assert_eq!(rt.block_on(store.insert(key(1), NOW + 300, NOW)), Err(Reason::ReplayStoreUnavailable));
        std::thread::sleep(REDIS_RETRY_PAUSE + Duration::from_millis(20));
        assert_eq!(rt.block_on(store.insert(key(2), NOW + 300, NOW)), Err(Reason::ReplayStoreUnavailable));
        let log = log.lock().unwrap();
        assert_eq!(log.iter().filter(|e| e[0] == "(connected)").count(), connections, "{reply:?}: {log:?}");
        assert_eq!(log.iter().filter(|e| e[0] == "SET").count(), 2, "{reply:?}: {log:?}");
    }
}

#[test]
fn redis_keys_are_the_prefix_and_the_key_in_hex() {
    let mut k = [0xab; 32];
    k[0] = 0x01;
    assert_eq!(redis_key(&k), format!("tollgate:dpop:jti:01{}", "ab".repeat(31)));
    assert_eq!(redis_key(&k).len(), REDIS_KEY_PREFIX.len() + 64);
}

#[test]
fn the_redis_expiry_keeps_an_entry_through_expires_at() {
    assert_eq!(ttl_millis(NOW + 330, NOW), 331_000);
    assert_eq!(ttl_millis(NOW, NOW), 1_000);
    // Not a case a verified proof can reach; never shorter than the current second.
    assert_eq!(ttl_millis(NOW - 5, NOW), 1_000);
    assert_eq!(ttl_millis(i64::MAX, i64::MIN), i64::MAX);
    assert_eq!(ttl_millis(i64::MIN, i64::MAX), 1_000);
}

#[test]
fn the_redis_store_can_be_shared_across_tasks() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let store = std::sync::Arc::new(for_setting(&format!("redis://127.0.0.1:{}/0", closed_port())));
    assert_send_sync(&store);
    let future = store.insert(key(1), NOW, NOW);
    assert_send(&future);
    assert_eq!(runtime().block_on(future), Err(Reason::ReplayStoreUnavailable));
}

#[test]
fn a_rediss_url_works_only_with_tls_support_built_in() {
    // With TLS support, a Redis store (never memory); without, refused at load, naming TLS.
    match RedisUrl::parse("rediss://redis.example.com:6380/0") {
        Ok(url) => assert!(matches!(ReplayStore::new(&ReplayStoreSetting::Redis(url)), ReplayStore::Redis(_))),
        Err(error) => assert!(error.to_lowercase().contains("tls"), "{error}"),
    }
}

#[test]
fn steady_traffic_keeps_the_store_near_its_live_window() {
    // 100 proofs a second for 1,000 s, each live for 10 s: about 1,000 live at any time.
    let store = MemoryStore::new(1_000_000);
    let mut n = 0u32;
    for second in 0..1000 {
        for _ in 0..100 {
            assert_eq!(store.insert(key(n), NOW + second + 10, NOW + second), Ok(()));
            n += 1;
        }
    }
    // Live entries plus at most one sweep interval of expired ones, never the whole history.
    assert!(store.len() < 5_000, "len {} after {n} inserts", store.len());
}

// --- Sharding: the same semantics as one map, with no lock held for a whole-store sweep ---

#[test]
fn keys_spread_over_every_shard() {
    let mut counts = [0usize; SHARDS];
    for n in 0..(SHARDS as u32 * 100) {
        counts[shard_of(&key(n))] += 1;
    }
    let (least, most) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(*least > 50 && *most < 200, "uneven shards: {least}..{most}");
}

#[test]
fn concurrent_inserts_of_the_same_keys_accept_each_key_exactly_once() {
    let store = std::sync::Arc::new(MemoryStore::new(1_000_000));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || (0..20_000).filter(|&n| store.insert(key(n), NOW + 300, NOW).is_ok()).count())
        })
        .collect();
    let accepted: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(accepted, 20_000);
    assert_eq!(store.len(), 20_000);
}

#[test]
fn concurrent_inserts_never_take_the_store_past_its_capacity_nor_evict() {
    let store = std::sync::Arc::new(MemoryStore::new(1000));
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mine = t * 10_000..t * 10_000 + 1000;
                mine.filter(|&n| store.insert(key(n), NOW + 300, NOW).is_ok()).collect::<Vec<_>>()
            })
        })
        .collect();
    let accepted: Vec<u32> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert_eq!(accepted.len(), 1000);
    assert_eq!(store.len(), 1000);
    assert_eq!(store.insert(key(999_999), NOW + 300, NOW + 1), Err(Reason::ReplayStoreFull));
    for n in accepted {
        assert_eq!(store.insert(key(n), NOW + 300, NOW + 1), Err(Reason::ProofReplayed));
    }
}

#[test]
fn after_a_flood_a_trickle_sweeps_the_whole_store_not_shard_by_shard() {
    let store = MemoryStore::new(1_000_000);
    for n in 0..100_000 {
        assert_eq!(store.insert(key(n), NOW + 330, NOW), Ok(()));
    }
    // Everything has expired; a handful of inserts later the whole store is back near 0.
    for n in 100_000..100_010 {
        assert_eq!(store.insert(key(n), NOW + 1000, NOW + 400), Ok(()));
    }
    assert!(store.len() <= 10, "len {}", store.len());
}

#[test]
fn the_replay_store_enum_reports_and_sweeps_its_memory_store() {
    let store = ReplayStore::Memory(MemoryStore::new(10));
    assert_eq!(block_on(store.insert(key(1), NOW, NOW)), Ok(()));
    assert_eq!(store.entries(), Some(1));
    store.sweep(NOW + 1);
    assert_eq!(store.entries(), Some(0));
    assert_eq!(for_setting("redis://127.0.0.1:1/0").entries(), None);
}

#[test]
fn a_full_store_frees_room_in_other_shards_before_it_refuses() {
    // Expired entries spread over every shard; a new key finds room whichever its shard.
    let store = MemoryStore::new(SHARDS * 4);
    for n in 0..(SHARDS * 4) as u32 {
        assert_eq!(store.insert(key(n), NOW + 1, NOW), Ok(()));
    }
    assert_eq!(store.insert(key(100_000), NOW + 300, NOW + 1), Err(Reason::ReplayStoreFull));
    for n in 100_000..100_000 + SHARDS as u32 * 2 {
        assert_eq!(store.insert(key(n), NOW + 300, NOW + 2), Ok(()), "key {n}");
    }
    // Only what was needed was swept; a full sweep drops the rest.
    store.sweep(NOW + 2);
    assert_eq!(store.len(), SHARDS * 2);
}

#[test]
fn a_sweep_holds_one_shard_lock_at_a_time() {
    // While a sweep of a large store runs, an insert into another shard is not blocked for
    // the whole sweep: here it is simply correct meanwhile (the timing is in
    // examples/replay_flood.rs --latency).
    let store = std::sync::Arc::new(MemoryStore::new(1_000_000));
    for n in 0..200_000 {
        assert_eq!(store.insert(key(n), NOW + 1, NOW), Ok(()));
    }
    let sweeper = {
        let store = store.clone();
        std::thread::spawn(move || store.sweep(NOW + 2))
    };
    for n in 200_000..201_000 {
        assert_eq!(store.insert(key(n), NOW + 300, NOW + 2), Ok(()));
    }
    sweeper.join().unwrap();
    assert_eq!(store.len(), 1000);
}
