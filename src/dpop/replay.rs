//! Replay protection for DPoP proofs (RFC 9449 §11.1): each (proof key, `jti`) is accepted
//! once within the proof window.
//!
//! The store records [`super::proof::VerifiedProof::replay_key`] until
//! [`super::proof::VerifiedProof::expires_at`]. It is consulted last, after every other
//! check, so a proof refused for any other reason never takes a slot. It never evicts a
//! live entry: a full store refuses (503, [`Reason::ReplayStoreFull`]) rather than forget a
//! proof that could then be replayed.
//!
//! [`ReplayStore`] is an enum rather than a trait object so that `insert` can be a plain
//! `async fn`; a shared backend (Redis, `SET key 1 NX PXAT …`) becomes a second variant.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::refusal::Reason;

/// Default capacity of [`MemoryStore`]: one million live proofs. A bucket is a 32-byte key,
/// an 8-byte expiry and one control byte, 41 B; hashbrown keeps its power-of-two bucket
/// count between 7/16 and 7/8 full, so a live entry costs 47–94 B, and a full store
/// takes 2^21 buckets, about 86 MB.
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// A store is swept (expired entries dropped) at the latest after this many inserts, or
/// after as many inserts as it holds entries, whichever is larger: O(1) amortized.
const MIN_SWEEP_INTERVAL: usize = 1024;

/// Where replay keys live.
#[derive(Debug)]
pub enum ReplayStore {
    /// In this process only: right for a single replica.
    Memory(MemoryStore),
}

impl ReplayStore {
    /// The store named by `dpop.replay_store`: `"memory"`, or a Redis URL.
    pub fn for_config(replay_store: &str) -> ReplayStore {
        let _ = replay_store;
        ReplayStore::Memory(MemoryStore::default())
    }

    /// Records `key` until `expires_at` (inclusive, seconds since the epoch).
    ///
    /// `Err(ProofReplayed)` if the key is already recorded and unexpired,
    /// `Err(ReplayStoreFull)` when the store is full of live entries,
    /// `Err(ReplayStoreUnavailable)` when a shared store cannot be reached.
    pub async fn insert(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<(), Reason> {
        match self {
            ReplayStore::Memory(store) => store.insert(key, expires_at, now),
        }
    }
}

/// A bounded in-process replay store: a map from replay key to expiry under one mutex.
/// Every operation holds the lock for O(1) work, except a sweep (O(entries)), which runs
/// at most once per [`MIN_SWEEP_INTERVAL`]-or-more inserts, and when full at most once per
/// second that has something to expire.
pub struct MemoryStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Replay key → last second (inclusive) in which the entry is live.
    entries: HashMap<[u8; 32], i64>,
    /// No entry expires before this second: a sweep before it would free nothing.
    earliest_expiry: i64,
    inserts_since_sweep: usize,
}

/// Capacity and size only: the keys are of no use in a log, and there may be a million.
impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("capacity", &self.capacity).field("len", &self.len()).finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(DEFAULT_CAPACITY)
    }
}

impl MemoryStore {
    /// A store holding at most `capacity` live entries (memory grows with use, not upfront).
    pub fn new(capacity: usize) -> Self {
        MemoryStore { capacity, inner: Mutex::new(Inner { earliest_expiry: i64::MAX, ..Inner::default() }) }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries held, including expired ones not yet swept.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records `key` until `expires_at` (inclusive); see [`ReplayStore::insert`].
    pub fn insert(&self, key: [u8; 32], expires_at: i64, now: i64) -> Result<(), Reason> {
        let mut inner = self.lock();
        if let Some(&recorded) = inner.entries.get(&key) {
            if recorded >= now {
                return Err(Reason::ProofReplayed);
            }
            // Expired but not yet swept: reuse the slot.
            inner.entries.insert(key, expires_at);
            inner.earliest_expiry = inner.earliest_expiry.min(expires_at);
            return Ok(());
        }
        inner.inserts_since_sweep += 1;
        let full = inner.entries.len() >= self.capacity;
        let due = inner.inserts_since_sweep >= inner.entries.len().max(MIN_SWEEP_INTERVAL);
        if (full || due) && inner.earliest_expiry < now {
            inner.sweep(now);
        }
        if inner.entries.len() >= self.capacity {
            return Err(Reason::ReplayStoreFull);
        }
        inner.entries.insert(key, expires_at);
        inner.earliest_expiry = inner.earliest_expiry.min(expires_at);
        Ok(())
    }

    /// Drops every expired entry now (normally done lazily by [`MemoryStore::insert`]).
    pub fn sweep(&self, now: i64) {
        self.lock().sweep(now);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No operation can leave the map half-updated, so a poisoned lock is still sound.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn sweep(&mut self, now: i64) {
        let mut earliest = i64::MAX;
        self.entries.retain(|_, &mut expires_at| {
            let live = expires_at >= now;
            if live {
                earliest = earliest.min(expires_at);
            }
            live
        });
        self.earliest_expiry = earliest;
        self.inserts_since_sweep = 0;
    }
}

#[cfg(test)]
mod tests;
