use super::*;

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
