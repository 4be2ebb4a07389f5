//! The token stage: an access token's verified claims, from the verified-token cache or
//! by verification ([`token::verify_keeping`], RFC 9068 / RFC 7519) with the keys of the
//! issuer its `iss` names, chosen before any key lookup. An unknown `kid` may refetch that
//! issuer's keys once (rate-limited, [`Issuer::refetch_for_unknown_kid`]) and verify again.

use std::sync::Arc;

use crate::issuer::Issuer;
use crate::metrics::Metrics;
use crate::refusal::Reason;
use crate::token::{self, VerifiedToken};
use crate::token_cache::{self, TokenCache};

/// The issuers, the cache in front of them, and what a verified token keeps.
pub struct Verifier {
    /// One per configured issuer, in the config's order; cached tokens name theirs by index.
    pub issuers: Vec<Arc<Issuer>>,
    pub cache: Arc<TokenCache>,
    /// Top-level claims that routes and `[headers]` read, kept in each verified token.
    pub keep: Vec<String>,
    /// The largest `leeway` of any issuer: how long the cache may keep a token.
    pub max_leeway: i64,
    pub metrics: Arc<Metrics>,
}

impl Verifier {
    /// The verified token, from the cache or by verifying it with the keys of the issuer
    /// its `iss` names (with one rate-limited refetch of those keys on an unknown `kid`).
    /// Returns the token's cache key too: the exchange cache is keyed by it.
    pub async fn verified(&self, raw: &str, now: i64) -> Result<(token_cache::Key, VerifiedToken), Reason> {
        if raw.len() > token::MAX_TOKEN_LEN {
            return Err(Reason::TokenTooLarge);
        }
        let key = token_cache::key(raw);
        if let Some(hit) = self.cache.get(&key, now, self.max_leeway) {
            let leeway = self.issuers[hit.issuer_index()].config().leeway;
            if now < hit.expires_at().saturating_add(leeway) {
                self.metrics.token_cache_hits.inc();
                return Ok((key, hit));
            }
        }
        self.metrics.token_cache_misses.inc();
        let index = self.issuer_of(raw)?;
        let issuer = &self.issuers[index];
        let keys = issuer.keys().ok_or(Reason::NoIssuerKeys)?;
        let verified = match token::verify_keeping(raw, &keys, issuer.config(), now, &self.keep) {
            Err(Reason::UnknownKey) if issuer.refetch_for_unknown_kid().await => {
                let keys = issuer.keys().ok_or(Reason::NoIssuerKeys)?;
                token::verify_keeping(raw, &keys, issuer.config(), now, &self.keep)
            }
            other => other,
        }?;
        let verified = verified.from_issuer(index);
        self.cache.insert(key, verified.clone());
        Ok((key, verified))
    }

    /// Which configured issuer a token names in `iss`, decided before any key lookup: a
    /// token from another tenant is a wrong issuer, and costs no fetch and no signature
    /// check. Only on cache misses, which verify a signature anyway.
    fn issuer_of(&self, raw: &str) -> Result<usize, Reason> {
        let iss = token::peek_issuer(raw)?;
        self.issuers.iter().position(|i| i.config().issuer == iss).ok_or(Reason::WrongIssuer)
    }
}
