//! DPoP proof parse + verify (`tollgate::dpop::proof::verify`).
//!
//! The first byte picks the mode (its value modulo 3; seeds use `0`, `1`, `2`):
//! - `0`: five lines of what the proof must match (method, request URL, access token,
//!   the token's `cnf.jkt`, `now`), then the proof as the request carried it; the URL is
//!   normalized as `decision` does. The interop proofs verify.
//! - `1`: the rest is the payload, signed ES256 by the fuzz key under a valid header that
//!   carries its `jwk`, so every claim check is reached;
//! - `2`: a header line, then the payload, both signed as given.
//!
//! Modes 1 and 2 expect `POST https://api.example.com/orders` with the token `TOKEN`
//! bound to the fuzz key. Asserted: no panic; an accepted proof has the expected key,
//! lies in the `iat` window, and (modes 1, 2) its `htm`, `htu` and `ath` as any JSON
//! reader sees them match what was expected.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate::dpop::htu;
use tollgate::dpop::proof::{self, Expected};
use tollgate_fuzz::{NOW, fuzz_key, line, proof_settings, sign_es256, text_line};

const METHOD: &str = "POST";
const URL: &str = "https://api.example.com/orders";
const TOKEN: &str = "TOKEN";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let settings = proof_settings();
    if mode % 3 == 0 {
        let Some((method, rest)) = text_line(rest) else { return };
        let Some((url, rest)) = text_line(rest) else { return };
        let Some((token, rest)) = text_line(rest) else { return };
        let Some((jkt, rest)) = text_line(rest) else { return };
        let Some((now, rest)) = text_line(rest) else { return };
        let Ok(proof) = std::str::from_utf8(rest) else { return };
        let (Some(url), Ok(now)) = (htu::normalize(url), now.parse::<i64>()) else { return };
        let expected = Expected { method, htu: &url, access_token: token, jkt };
        if let Ok(verified) = proof::verify(proof, &expected, &settings, now) {
            assert_eq!(verified.jkt(), jkt);
            assert!(verified.expires_at(&settings) >= now);
        }
        return;
    }
    let (header, payload) = match mode % 3 {
        1 => {
            let jwk = fuzz_key().thumbprint_members();
            (format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{jwk}}}"#).into_bytes(), rest)
        }
        _ => {
            let (header, payload) = line(rest);
            (header.to_vec(), payload)
        }
    };
    let proof = sign_es256(&header, payload);
    let jkt = fuzz_key().jkt();
    let expected = Expected { method: METHOD, htu: URL, access_token: TOKEN, jkt: &jkt };
    let Ok(verified) = proof::verify(&proof, &expected, &settings, NOW) else { return };
    assert_eq!(verified.jkt(), jkt);
    assert!(verified.expires_at(&settings) >= NOW);
    // tollgate refuses duplicate members, so any JSON reader sees the claims it checked.
    let claims: Value = serde_json::from_slice(payload).expect("an accepted payload is JSON");
    assert_eq!(claims["htm"], METHOD);
    let url = claims["htu"].as_str().expect("htu is a string");
    assert_eq!(htu::normalize(url).as_deref(), Some(URL), "accepted htu {url:?}");
    assert_eq!(claims["ath"], expected_ath());
    let iat = claims["iat"].as_f64().expect("iat is a number");
    assert!(iat <= (NOW + settings.iat_leeway) as f64 && iat >= (NOW - settings.iat_offset) as f64, "iat {iat}");
});

/// The `ath` of `TOKEN` as a second route computes it: the one `dev::proof` writes.
fn expected_ath() -> &'static str {
    use std::sync::OnceLock;
    static ATH: OnceLock<String> = OnceLock::new();
    ATH.get_or_init(|| {
        let proof = tollgate::dev::proof(fuzz_key(), METHOD, URL, TOKEN, None, NOW).expect("a proof");
        let payload = proof.split('.').nth(1).expect("a payload");
        let claims: Value = serde_json::from_slice(&tollgate::jws::decode(payload).expect("base64url")).expect("JSON");
        claims["ath"].as_str().expect("ath").to_string()
    })
}
