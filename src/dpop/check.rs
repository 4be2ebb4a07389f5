//! A request's DPoP proof, checked end to end for one checker: whether the credentials
//! call for one (a bound token never works as a bearer token, §7.2), the URL it must name
//! (RFC 9449 §4.3 step 9, at a pinned public origin when `proxy.public_origins` is set),
//! the proof itself with its key binding ([`proof::verify`], §4.3 and §6.1), and last its
//! one-time use: the server nonce (§8) and the replay record (§11.1).

use std::sync::Arc;

use crate::credentials::Credentials;
use crate::dpop::htu;
use crate::dpop::nonce::Nonces;
use crate::dpop::proof::{self, Expected, ProofSettings, VerifiedProof};
use crate::dpop::replay::ReplayStore;
use crate::gateway::OriginalRequest;
use crate::refusal::Reason;
use crate::token::VerifiedToken;

/// The DPoP settings and state of one checker. The nonce minter and the replay store are
/// shared with the checker a reload replaces when their settings did not change.
pub struct ProofCheck {
    pub settings: ProofSettings,
    /// `proxy.public_origins`: when set, the only origins a proof may name.
    pub public_origins: Vec<String>,
    pub nonces: Option<Arc<Nonces>>,
    pub replay: Arc<ReplayStore>,
}

impl ProofCheck {
    /// The proof the credentials carry for their verified `token`, checked: none with a
    /// Bearer token, which must not be bound to a key (§7.2); with a DPoP token, which
    /// must be bound (`cnf.jkt`, §6.1), a proof by that key for `original`.
    pub fn binding(
        &self,
        credentials: &Credentials<'_>,
        token: &VerifiedToken,
        original: &OriginalRequest,
        now: i64,
    ) -> Result<Option<VerifiedProof>, Reason> {
        match credentials {
            Credentials::Bearer { .. } if token.jkt().is_some() => Err(Reason::BoundTokenAsBearer),
            Credentials::Bearer { .. } => Ok(None),
            Credentials::DPoP { token: raw, proof } => {
                let jkt = token.jkt().ok_or(Reason::TokenNotBound)?;
                self.verify(original, raw, proof, jkt, now).map(Some)
            }
        }
    }

    /// The proof `proof` for the request `original` with the access token `token` (whose
    /// `cnf.jkt` is `jkt`), checked at `now`.
    pub fn verify(
        &self,
        original: &OriginalRequest,
        token: &str,
        proof: &str,
        jkt: &str,
        now: i64,
    ) -> Result<VerifiedProof, Reason> {
        let htu = self.expected_htu(original)?;
        let expected = Expected { method: original.method(), htu: &htu, access_token: token, jkt };
        proof::verify(proof, &expected, &self.settings, now)
    }

    /// The URL a proof must name: the original request's, normalized as `htu` is, and
    /// only at a pinned public origin when `proxy.public_origins` is set.
    pub fn expected_htu(&self, original: &OriginalRequest) -> Result<String, Reason> {
        let origin = original.origin().ok_or(Reason::WrongProofUrl)?;
        if !self.public_origins.is_empty() && !self.public_origins.contains(&origin) {
            return Err(Reason::WrongProofUrl);
        }
        htu::normalize(&format!("{origin}{}", original.path())).ok_or(Reason::WrongProofUrl)
    }

    /// Checks the server nonce and records the proof as used; returns the next nonce.
    /// Call after every other check, so a refused request never takes a replay slot.
    pub async fn use_once(&self, proof: &VerifiedProof, now: i64) -> Result<Option<String>, Reason> {
        let next_nonce = match &self.nonces {
            Some(nonces) if !proof.nonce().is_some_and(|n| nonces.is_current(n, now)) => {
                return Err(Reason::UseDpopNonce { nonce: nonces.issue(now) });
            }
            Some(nonces) => Some(nonces.issue(now)),
            None => None,
        };
        self.replay.insert(proof.replay_key(), proof.expires_at(&self.settings), now).await?;
        Ok(next_nonce)
    }
}
