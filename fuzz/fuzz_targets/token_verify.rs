//! Access-token parse + verify (`tollgate::token::verify`) against a fixed JWKS: the
//! interop issuer's keys and the fuzz key.
//!
//! The first byte picks the mode (its value modulo 3; seeds use `0`, `1`, `2`):
//! - `0`: the rest is the token as the request carried it (framing, base64url, JSON,
//!   header, key lookup and signature checks; the interop tokens verify);
//! - `1`: the rest is the payload, signed ES256 by the fuzz key under a valid header, so
//!   every claim check is reached;
//! - `2`: a header line, then the payload, both signed as given.
//!
//! Asserted: no panic, and an accepted token is one the claim rules allow (a subject
//! without control characters, unexpired at `NOW`, a scope of RFC 6749 tokens or none).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::token::{self, VerifiedToken};
use tollgate_fuzz::{FUZZ_KID, NOW, issuer_config, keys, line, sign_es256};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let token = match mode % 3 {
        0 => match std::str::from_utf8(rest) {
            Ok(token) => token.to_string(),
            Err(_) => return,
        },
        1 => {
            let header = format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{FUZZ_KID}"}}"#);
            sign_es256(header.as_bytes(), rest)
        }
        _ => {
            let (header, payload) = line(rest);
            sign_es256(header, payload)
        }
    };
    let keep: Vec<String> = token::claims_to_keep(["permissions", "org_id", "app_metadata.tenant"]);
    let plain = token::verify(&token, keys(), issuer_config(), NOW);
    let kept = token::verify_keeping(&token, keys(), issuer_config(), NOW, &keep);
    // Keeping claims changes what is remembered, never the verdict.
    assert_eq!(plain.as_ref().map(VerifiedToken::subject), kept.as_ref().map(VerifiedToken::subject));
    if let Ok(verified) = plain {
        check_accepted(&verified);
    }
});

fn check_accepted(token: &VerifiedToken) {
    let subject = token.subject();
    assert!(!subject.is_empty() && !subject.chars().any(char::is_control), "accepted subject {subject:?}");
    assert!(token.expires_at() > NOW, "accepted a token expired at {}", token.expires_at());
    let scope = token.scope();
    let scope_token = |t: &str| !t.is_empty() && t.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
    assert!(scope.is_empty() || scope.split(' ').all(scope_token), "accepted scope {scope:?}");
    assert!(token.jkt().is_none_or(|jkt| !jkt.is_empty()));
}
