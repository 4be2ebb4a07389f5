//! A bounded cache of verified tokens, so a token seen again costs a hash and a lookup
//! instead of a signature check.
//!
//! Keyed by SHA-256 of the exact token string (a collision would be a forgery, so the hash
//! must be cryptographic). It stores what was verified, never a decision: scheme, binding
//! and routes are checked again on every request. An entry is served only while the
//! token's `exp` (plus leeway) lies in the future, checked on every hit; capacity is
//! bounded in entries, so a flood of distinct valid tokens evicts, never grows.
//! Only successes are inserted: garbage tokens never reach it.

use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::token::VerifiedToken;

/// SHA-256 of the exact token string.
pub type Key = [u8; 32];

pub struct TokenCache {
    entries: Option<Cache<Key, Arc<VerifiedToken>>>,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens; 0 disables caching.
    pub fn new(capacity: usize) -> Self {
        TokenCache { entries: (capacity > 0).then(|| Cache::new(capacity)) }
    }

    /// The verified token under `key`, if cached and still unexpired at `now` with `leeway`.
    pub fn get(&self, key: &Key, now: i64, leeway: i64) -> Option<Arc<VerifiedToken>> {
        let entries = self.entries.as_ref()?;
        let hit = entries.get(key)?;
        if now >= hit.expires_at().saturating_add(leeway) {
            entries.remove(key);
            return None;
        }
        Some(hit)
    }

    pub fn insert(&self, key: Key, verified: Arc<VerifiedToken>) {
        if let Some(entries) = &self.entries {
            entries.insert(key, verified);
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

/// The cache key of a token.
pub fn key(token: &str) -> Key {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}
