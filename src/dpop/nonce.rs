//! Server-issued DPoP nonces (RFC 9449 §9): stateless, so every replica accepts every
//! other replica's nonce without shared state.
//!
//! A nonce is `base64url(window ‖ MAC)`: the time window it was issued in (8 bytes,
//! big-endian) and the first 16 bytes of HMAC-SHA256 over a label and that window, under
//! `dpop.nonce_secret`. A nonce is current during its window and the next one, so a nonce
//! lives between one and two windows. It carries no client data: it only proves freshness,
//! which is what §9 asks of it (pre-generated proofs are useless once the nonce moves on).
//! The 32-character form is all NQCHAR (§8.1).

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;

use crate::jws;

/// Seconds per nonce window.
pub const WINDOW: i64 = 60;

const LABEL: &[u8] = b"tollgate dpop nonce v1";
const MAC_LEN: usize = 16;

/// Mints and checks nonces under one secret.
pub struct Nonces {
    key: hmac::Key,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonces")
    }
}

impl Nonces {
    pub fn new(secret: &str) -> Self {
        Nonces { key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()) }
    }

    /// The nonce for the window containing `now`.
    pub fn issue(&self, now: i64) -> String {
        let window = now.div_euclid(WINDOW);
        let mut bytes = window.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.mac(window).as_ref()[..MAC_LEN]);
        jws::encode(&bytes)
    }

    /// Whether `nonce` was issued under this secret in the current or the previous window.
    pub fn is_current(&self, nonce: &str, now: i64) -> bool {
        let Ok(bytes) = jws::decode(nonce) else { return false };
        let Some((window, mac)) = bytes.split_first_chunk::<8>() else { return false };
        let window = i64::from_be_bytes(*window);
        let current = now.div_euclid(WINDOW);
        (window == current || window == current - 1)
            && mac.len() == MAC_LEN
            && verify_slices_are_equal(mac, &self.mac(window).as_ref()[..MAC_LEN]).is_ok()
    }

    fn mac(&self, window: i64) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(LABEL);
        ctx.update(&window.to_be_bytes());
        ctx.sign()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_fresh_nonce_is_current_for_this_window_and_the_next() {
        let nonces = Nonces::new(SECRET);
        let nonce = nonces.issue(NOW);
        assert_eq!(nonce.len(), 32);
        let start = NOW.div_euclid(WINDOW) * WINDOW;
        assert!(nonces.is_current(&nonce, start));
        assert!(nonces.is_current(&nonce, start + 2 * WINDOW - 1));
        assert!(!nonces.is_current(&nonce, start + 2 * WINDOW));
        assert!(!nonces.is_current(&nonce, start - 1), "not before its window");
    }

    #[test]
    fn another_replica_with_the_same_secret_accepts_it() {
        let nonce = Nonces::new(SECRET).issue(NOW);
        assert!(Nonces::new(SECRET).is_current(&nonce, NOW));
    }

    #[test]
    fn a_nonce_under_another_secret_or_forged_is_refused() {
        let nonces = Nonces::new(SECRET);
        assert!(!nonces.is_current(&Nonces::new("another secret of thirty-two bytes!").issue(NOW), NOW));
        let mut forged = jws::decode(&nonces.issue(NOW)).unwrap();
        forged[10] ^= 1;
        assert!(!nonces.is_current(&jws::encode(&forged), NOW));
        for junk in ["", "abc", "\"x\"", "a\r\nb", &"A".repeat(32), &"A".repeat(500)] {
            assert!(!nonces.is_current(junk, NOW), "{junk:?}");
        }
    }
}
