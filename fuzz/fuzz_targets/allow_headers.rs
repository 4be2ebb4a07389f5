//! Claim-header formatting (`tollgate::allow::Allow::respond`) from arbitrary claim JSON.
//!
//! Input: a first byte (bit 0: the DPoP scheme; bit 1: a next nonce), then a JSON object
//! whose members are merged over valid claims (`iss`, `aud`, `exp` and `iat` stay valid;
//! `sub`, `scope` and anything else may be replaced), signed by the fuzz key and verified
//! with `token::verify_keeping`, as `decision` does. A `[headers]` entry is made for each
//! member (its name, and `name.member` for each member of an object), plus the README's.
//!
//! Asserted: no panic; status 200; every header value is visible ASCII (`!`..`~`) or
//! empty; `X-Auth-Subject` percent-decodes to the subject; `X-Auth-Claims` is the payload
//! segment; each claim header is empty for an absent, null, object or over-long claim,
//! the JSON text of a number or boolean, the percent-encoded string (decoding gives the
//! claim back), or the elements of an array joined with `,`, each decoding to its element.
//! A public route's headers are all empty.
#![no_main]

use http::HeaderName;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use tollgate::allow::{self, Allow};
use tollgate::config::ClaimHeader;
use tollgate::refusal::Scheme;
use tollgate::token;
use tollgate_fuzz::{FUZZ_KID, NOW, issuer_config, keys, percent_decode, sign_es256, visible};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Ok(Value::Object(extra)) = serde_json::from_slice::<Value>(rest) else { return };
    let config = issuer_config();
    let mut claims = Map::new();
    claims.insert("sub".into(), json!("user"));
    claims.extend(extra.clone());
    for (name, value) in [
        ("iss", json!(config.issuer)),
        ("aud", json!(config.audiences[0])),
        ("exp", json!(NOW + 60)),
        ("iat", json!(NOW)),
    ] {
        claims.insert(name.into(), value);
    }
    let mut names: Vec<String> =
        ["email", "app_metadata.tenant", "https://example.com/roles"].map(String::from).to_vec();
    for (name, value) in extra.iter().take(6) {
        names.push(name.clone());
        if let Value::Object(inner) = value {
            names.extend(inner.keys().take(2).map(|k| format!("{name}.{k}")));
        }
    }
    let headers: Vec<ClaimHeader> = names
        .iter()
        .enumerate()
        .map(|(i, claim)| ClaimHeader {
            name: HeaderName::try_from(format!("x-auth-c{i}")).expect("a name"),
            claim: claim.clone(),
        })
        .collect();
    let keep = token::claims_to_keep(names.iter().map(String::as_str));
    let payload = Value::Object(claims).to_string();
    let header = format!(r#"{{"alg":"ES256","typ":"at+jwt","kid":"{FUZZ_KID}"}}"#);
    let jws = sign_es256(header.as_bytes(), payload.as_bytes());
    let Ok(verified) = token::verify_keeping(&jws, keys(), config, NOW, &keep) else { return };
    let claims_b64 = jws.split('.').nth(1).expect("a payload segment").to_string();
    let scheme = if flags & 1 == 0 { Scheme::Bearer } else { Scheme::DPoP };
    let next_nonce = (flags & 2 != 0).then(|| tollgate::dpop::nonce::Nonces::new("fuzz").issue(NOW));
    let allow = Allow::Token {
        scheme,
        token: verified.clone(),
        claims: http::HeaderValue::from_str(&claims_b64).expect("base64url is a header value"),
        next_nonce,
        downstream: Vec::new(),
    };
    let answer = allow.respond(&headers);
    assert_eq!(answer.status, http::StatusCode::OK);
    for (name, value) in &answer.headers {
        assert!(visible(value.as_bytes()), "{name}: {value:?}");
    }
    let get = |name: &HeaderName| {
        let value = answer.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.to_str().expect("ASCII"));
        value.expect("the header is sent")
    };
    assert_eq!(percent_decode(get(&allow::X_AUTH_SUBJECT)).as_deref(), Some(verified.subject()));
    assert_eq!(get(&allow::X_AUTH_SCHEME), scheme.as_str());
    assert_eq!(get(&allow::X_AUTH_CLAIMS), claims_b64);
    for h in &headers {
        check_claim_header(get(&h.name), verified.claim(&h.claim), &h.claim);
    }
    for (name, value) in &Allow::Anonymous.respond(&headers).headers {
        assert!(value.is_empty(), "{name} on a public route");
    }
});

fn check_claim_header(value: &str, claim: Option<&Value>, name: &str) {
    assert!(value.len() <= allow::MAX_CLAIM_HEADER, "{name}: {} bytes", value.len());
    let scalar = |v: &Value| match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => true,
        _ => false,
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match claim {
        None | Some(Value::Null | Value::Object(_)) => assert_eq!(value, "", "{name}"),
        Some(Value::Array(items)) if !items.iter().all(scalar) => assert_eq!(value, "", "{name}"),
        Some(claim) if value.is_empty() => {
            let length = encoded_len(claim);
            assert!(length == 0 || length > allow::MAX_CLAIM_HEADER, "{name}: {claim} gave an empty header");
        }
        Some(Value::Array(items)) => {
            let parts: Vec<Option<String>> = value.split(',').map(percent_decode).collect();
            let wanted: Vec<Option<String>> = items.iter().map(|v| Some(text(v))).collect();
            assert_eq!(parts, wanted, "{name}");
        }
        Some(other) => assert_eq!(percent_decode(value), Some(text(other)), "{name}"),
    }
}

/// The length of a claim's header text: one byte for each of `!`..`~` but `%` (and `,`
/// inside an array), three for each other byte, and the commas between elements.
fn encoded_len(claim: &Value) -> usize {
    let len = |s: &str, in_array: bool| {
        s.bytes().map(|b| if (0x21..=0x7E).contains(&b) && b != b'%' && !(in_array && b == b',') { 1 } else { 3 }).sum()
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match claim {
        Value::Array(items) => items.iter().map(|v| len(&text(v), true)).sum::<usize>() + items.len().saturating_sub(1),
        other => len(&text(other), false),
    }
}
