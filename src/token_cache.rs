//! A bounded cache of verified tokens, so a token seen again costs a hash and a lookup
//! instead of a signature check.
//!
//! Keyed by SHA-256 of the exact token string (a collision would be a forgery, so the hash
//! must be cryptographic). It stores what was verified, never a decision: scheme, binding
//! and routes are checked again on every request. An entry is served only while the
//! token's `exp` (plus leeway) lies in the future, checked on every hit; capacity is
//! bounded in entries, so a flood of distinct valid tokens evicts, never grows.
//! Only successes are inserted: garbage tokens never reach it.
//!
//! Memory, per cached token (the goal: a process under 30 MB with 100,000 cached): the
//! [`VerifiedToken`], one malloc chunk of 24 bytes and its `sub` and `scope` (48 bytes in
//! all for short ones, 80 for an Auth0 `sub`); quick_cache's slot, 64 bytes (the 32-byte
//! key, the token's pointer and length, its state and list links); its hash table's index, 5 bytes a
//! bucket; and the ghosts, [`GHOST_SHARE`].

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::{DefaultHashBuilder, OptionsBuilder, UnitWeighter};

use crate::token::VerifiedToken;

/// Ghosts (keys recently evicted, remembered so that a token seen again soon is admitted
/// straight into the protected part of the cache) as a share of the capacity; quick_cache's
/// default is 0.5. A ghost takes a whole 64-byte slot, as a cached token's does: at 0.5, a
/// full cache of 100,000 tokens under churn spends 3.2 MB on 50,000 ghosts, a sixth of its
/// memory. A quarter held the hit ratio within 0.1 point of the default, or above it, in
/// simulated token traffic (clients Zipf-popular at 0.8, 1.0 and 1.2 over three times the
/// capacity; a hot set of half the capacity beside one-off tokens; uniform clients at 1.5
/// times the capacity), and 1.6 points below it (47.4% against 49.0%) in the worst case
/// tried, a working set at 90% of the capacity under a flood of one-off tokens making half
/// the traffic (docs/performance.md, "The verified-token cache's memory").
pub const GHOST_SHARE: f64 = 0.25;

/// SHA-256 of the exact token string.
pub type Key = [u8; 32];

pub struct TokenCache {
    entries: Option<Cache<Key, VerifiedToken>>,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens; 0 disables caching.
    pub fn new(capacity: usize) -> Self {
        TokenCache { entries: (capacity > 0).then(|| cache(capacity)) }
    }

    /// The verified token under `key`, if cached and still unexpired at `now` with `leeway`.
    pub fn get(&self, key: &Key, now: i64, leeway: i64) -> Option<VerifiedToken> {
        let entries = self.entries.as_ref()?;
        let hit = entries.get(key)?;
        if now >= hit.expires_at().saturating_add(leeway) {
            entries.remove(key);
            return None;
        }
        Some(hit)
    }

    pub fn insert(&self, key: Key, verified: VerifiedToken) {
        if let Some(entries) = &self.entries {
            entries.insert(key, verified);
        }
    }

    /// Drops every entry expired at `now` with `leeway`: tokens nobody presents again
    /// would otherwise stay until evicted. One shard locked at a time.
    pub fn sweep(&self, now: i64, leeway: i64) {
        if let Some(entries) = &self.entries {
            entries.retain(|_, token| now < token.expires_at().saturating_add(leeway));
        }
    }

    pub fn clear(&self) {
        if let Some(entries) = &self.entries {
            entries.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, Cache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// quick_cache's defaults (its shard count, its hot share) but [`GHOST_SHARE`].
fn cache(capacity: usize) -> Cache<Key, VerifiedToken> {
    let options = OptionsBuilder::new()
        .estimated_items_capacity(capacity)
        .weight_capacity(u64::try_from(capacity).unwrap_or(u64::MAX))
        .ghost_allocation(GHOST_SHARE)
        .build();
    match options {
        Ok(options) => {
            Cache::with_options(options, UnitWeighter, DefaultHashBuilder::default(), DefaultLifecycle::default())
        }
        // Only if a capacity were left unset, which the builder above never does.
        Err(_) => Cache::new(capacity),
    }
}

/// The cache key of a token.
pub fn key(token: &str) -> Key {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn token(n: usize) -> (Key, VerifiedToken) {
        (key(&format!("token-{n}")), VerifiedToken::for_tests(&format!("user{n}"), "read", NOW + 60))
    }

    #[test]
    fn the_cache_holds_about_its_capacity_and_never_more() {
        let cache = TokenCache::new(10_000);
        for n in 0..10_000 {
            let (key, token) = token(n);
            cache.insert(key, token);
        }
        // Each shard holds its share of the capacity: an uneven spread evicts a little early.
        assert!(cache.len() >= 9_000, "only {} of 10,000 held", cache.len());
        for n in 10_000..40_000 {
            let (key, token) = token(n);
            cache.insert(key, token);
            assert!(cache.len() <= 10_000, "{} held over a capacity of 10,000", cache.len());
        }
        let (recent, _) = token(39_999);
        assert_eq!(cache.get(&recent, NOW, 0).map(|t| t.subject().to_string()).as_deref(), Some("user39999"));
    }

    #[test]
    fn a_sweep_drops_the_expired_entries_and_keeps_the_others() {
        let cache = TokenCache::new(100);
        for n in 0..10 {
            let key = key(&format!("token-{n}"));
            cache.insert(key, VerifiedToken::for_tests("user", "read", NOW + n));
        }
        cache.sweep(NOW + 5, 2);
        // Kept while NOW + 5 < exp + 2: tokens 4 to 9.
        assert_eq!(cache.len(), 6);
        let kept: Vec<bool> = (0..10).map(|n| cache.get(&key(&format!("token-{n}")), NOW, 0).is_some()).collect();
        assert_eq!(kept, [false, false, false, false, true, true, true, true, true, true]);
    }

    #[test]
    fn an_entry_is_served_until_its_exp_and_leeway_then_dropped() {
        let cache = TokenCache::new(10);
        let (key, token) = token(1);
        cache.insert(key, token);
        assert!(cache.get(&key, NOW + 59, 0).is_some());
        assert!(cache.get(&key, NOW + 60, 1).is_some());
        assert!(cache.get(&key, NOW + 60, 0).is_none());
        assert!(cache.is_empty(), "an expired entry stays after a refused hit");
    }

    #[test]
    fn a_capacity_of_zero_caches_nothing() {
        let cache = TokenCache::new(0);
        let (key, token) = token(1);
        cache.insert(key, token);
        assert!(cache.get(&key, NOW, 0).is_none());
        assert_eq!(cache.len(), 0);
    }
}
