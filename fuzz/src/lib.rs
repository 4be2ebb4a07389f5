//! What the fuzz targets share: how an input becomes headers, the fixed issuer keys and
//! settings the token and proof targets verify against, a signer that lets fuzzed claims
//! past the signature check, and the second RFC 3986 implementation (fluent-uri).
//!
//! Input formats are plain text on purpose, so that a crasher or a seed reads as what it
//! is: one header per line (`name: value`), fields one per line.

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tollgate::config::IssuerConfig;
use tollgate::signing::SigningKey;
use tollgate::dpop::proof::ProofSettings;
use tollgate::gateway::OriginalRequest;
use tollgate::issuer::KeySet;

/// The time every token and proof target verifies at: the interop vectors' `now`.
pub const NOW: i64 = 1_800_000_000;

/// The interop vectors (tokens and proofs made by PyJWT), whose JWKS the token target
/// verifies against and whose tokens and proofs seed the corpus.
pub const INTEROP: &str = include_str!("../../tests/vectors/interop.json");

/// A P-256 key that exists only to sign fuzzed tokens and proofs, so that fuzzed claims
/// reach the checks behind the signature. Its public half is in [`keys`] as `fuzz-ec`.
const FUZZ_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgMqHbypLTgbp8AQIQ
V0EIMNwYbs7BplW4jqcHxxMYkGihRANCAATRSb9ZDD3WZEw8NI4u2PArkVI3O15u
6OVvQ53pBEnrOKwpYTzQJEJTPPQHt5cO0NjBBikSqTYiN4Y+Vmj+k18E
-----END PRIVATE KEY-----
";

/// The `kid` of the fuzz key in the key set.
pub const FUZZ_KID: &str = "fuzz-ec";

/// The fixed fuzz signing key.
pub fn fuzz_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::p256_from_pem(FUZZ_KID, FUZZ_KEY_PEM).expect("the fuzz key parses"))
}

fn interop() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::from_str(INTEROP).expect("interop.json parses"))
}

/// The interop issuer's JWKS (RSA, P-256 and Ed25519 keys) plus the fuzz key.
pub fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut jwks = interop()["jwks"].clone();
        jwks["keys"].as_array_mut().expect("a JWKS").push(fuzz_key().public_jwk());
        KeySet::parse(jwks.to_string().as_bytes()).expect("the fixed JWKS parses").0
    })
}

/// The interop issuer and audience, every token algorithm tollgate can verify, no leeway.
pub fn issuer_config() -> &'static IssuerConfig {
    static CONFIG: OnceLock<IssuerConfig> = OnceLock::new();
    CONFIG.get_or_init(|| IssuerConfig {
        issuer: interop()["issuer"].as_str().expect("an issuer").to_string(),
        audiences: vec![interop()["audience"].as_str().expect("an audience").to_string()],
        algorithms: tollgate::config::TOKEN_ALGORITHMS.iter().map(|a| a.parse().expect("an algorithm")).collect(),
        leeway: 0,
        required_claims: Vec::new(),
    })
}

/// Every proof algorithm, the default `iat` window.
pub fn proof_settings() -> ProofSettings {
    ProofSettings {
        algorithms: tollgate::config::ProofAlgorithm::ALL.to_vec(),
        iat_leeway: 30,
        iat_offset: 300,
    }
}

/// A compact JWS of `header` and `payload` exactly as given (bytes, not re-serialized
/// JSON: duplicate members and odd spacing reach the parser), signed ES256 by the fuzz key.
pub fn sign_es256(header: &[u8], payload: &[u8]) -> String {
    let b64 = tollgate::jws::encode;
    let signing_input = format!("{}.{}", b64(header), b64(payload));
    let signature = fuzz_key().sign("ES256", signing_input.as_bytes()).expect("ES256 signs");
    format!("{signing_input}.{}", b64(&signature))
}

/// Headers from lines of `name: value` (or `name:value`). Lines that are not a valid
/// header are skipped: `HeaderMap` is what a server hands tollgate, and it never holds
/// an invalid name or value. Repeated names are appended, in order.
pub fn headers(text: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in text.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            map.append(name, value);
        }
    }
    map
}

/// `data` cut at the first `\n`: the line and the rest (empty when there is none).
pub fn line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// [`line`] as text; `None` when the line is not UTF-8.
pub fn text_line(data: &[u8]) -> Option<(&str, &[u8])> {
    let (first, rest) = line(data);
    Some((std::str::from_utf8(first).ok()?, rest))
}

/// Whether every byte is visible ASCII (`!`..`~`): what tollgate promises for each value
/// it writes into a header for the upstream.
pub fn visible(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| (0x21..=0x7E).contains(b))
}

/// Percent-decoding (no `+`), for checking that an encoded header gives back its claim.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The second RFC 3986 implementation's reading of an `http`/`https` URL for an `htu`
/// comparison: what RFC 9449 §4.3 compares (the URL without its query and fragment, which
/// are cut before parsing: they are ignored, so their syntax does not matter), normalized
/// by fluent-uri (RFC 3986 §6.2.2 syntax-based: case, percent encoding, dot segments;
/// §6.2.3: default and empty port), plus the one scheme-based rule fluent-uri leaves out
/// (an empty path with an authority is `/`, RFC 3986 §6.2.3). `None` when fluent-uri does
/// not parse it as a URI.
pub fn rfc3986_htu(text: &str) -> Option<String> {
    let compared = text.split(['?', '#']).next().unwrap_or_default();
    let uri = fluent_uri::Uri::parse(compared).ok()?;
    let normalized = fluent_uri::normalize::Normalizer::new().normalize(&uri).ok()?;
    let has_authority = normalized.authority().is_some();
    let mut out = normalized.as_str().to_string();
    let scheme_len = normalized.scheme().as_str().len();
    let after_authority = match normalized.authority() {
        Some(authority) => scheme_len + 3 + authority.as_str().len(),
        None => scheme_len + 1,
    };
    if has_authority && out.len() == after_authority {
        out.push('/');
    }
    Some(out)
}

/// fluent-uri's normalized path of `scheme://host` + `path`, for comparing path
/// normalization; `None` when it does not parse (or `path` holds a query or fragment).
pub fn rfc3986_path(path: &str) -> Option<String> {
    if path.contains(['?', '#']) {
        return None;
    }
    let uri = fluent_uri::Uri::parse(format!("http://h{path}")).ok()?;
    let normalized = fluent_uri::normalize::Normalizer::new().normalize(&uri).ok()?;
    Some(normalized.path().as_str().to_string())
}

/// What holds for every original request a front door accepts (the gateway dialects and
/// the gRPC mapping): its path is normalized; its method and overrides are method tokens
/// (overrides upper-case, distinct, at most 4); its scheme is `http` or `https`; its
/// routed host is lower-case, without port or trailing dot; its origin is a fixed point of
/// `parse_origin`; and the URL a DPoP `htu` is compared with, `htu::normalize(origin +
/// path)` as `decision` builds it, is `origin + path` itself when there is one (but for
/// an IPv6 literal, which it writes in RFC 5952 form).
pub fn check_original_request(request: &OriginalRequest) {
    let path = request.path();
    assert_eq!(tollgate::uri::normalize_path(path).as_deref(), Ok(path), "path {path:?} is not normalized");
    let token =
        |m: &str| !m.is_empty() && m.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    assert!(token(request.method()), "method {:?}", request.method());
    let overrides = request.method_overrides();
    assert!(overrides.len() <= 4);
    for (i, m) in overrides.iter().enumerate() {
        assert!(token(m) && *m == m.to_ascii_uppercase() && !overrides[..i].contains(m), "overrides {overrides:?}");
    }
    assert!(matches!(request.scheme(), "http" | "https"));
    if let Some(host) = request.host() {
        assert_eq!(tollgate::uri::routed_host(host), Some(host), "routed host {host:?}");
        assert_eq!(host, host.to_ascii_lowercase());
    }
    let Some(origin) = request.origin() else { return };
    assert_eq!(tollgate::uri::parse_origin(&origin).as_deref(), Some(origin.as_str()), "origin {origin:?}");
    let url = format!("{origin}{path}");
    if let Some(expected) = tollgate::dpop::htu::normalize(&url) {
        // The htu form writes an IPv6 literal in its RFC 5952 form; routing keeps it as sent.
        if !origin.contains('[') {
            assert_eq!(expected, url, "the request URL and its htu form differ");
        }
        assert_eq!(tollgate::dpop::htu::normalize(&expected).as_ref(), Some(&expected));
    }
}
