//! DPoP proof verification (RFC 9449 §4.2–4.3): from the `DPoP` header value to a
//! [`VerifiedProof`], or the exact [`Reason`] it was refused.
//!
//! This module owns the proof JWT itself: framing (shared strict parser, [`crate::jws`]),
//! header (`typ` `dpop+jwt`, `alg` from `dpop.algorithms`, no `crit`, a public `jwk` that
//! fits `alg`), claims (`jti`, `htm`, `htu`, `iat`, `ath`, optional `exp` and `nonce`),
//! the signature under the `jwk`, and the key binding: the RFC 7638 thumbprint of the `jwk`
//! must be the token's `cnf.jkt` (§4.3 step 12, §6.1). It does not own the replay store
//! ([`super::replay`], §11.1) nor nonces (§9); [`VerifiedProof::replay_key`] and
//! [`VerifiedProof::nonce`] hand their inputs to the caller.
//!
//! Order, cheapest first: size cap before any decoding, header, key shape (an RSA modulus is
//! measured before any RSA arithmetic, as the attacker picks the key), claims, then the
//! signature, and the binding last so that a forged proof cannot probe which keys a token
//! is bound to.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

use super::htu;
use crate::config::ProofAlgorithm;
use crate::jws::{self, JwsError};
use crate::refusal::Reason;

/// Proofs longer than this are refused before any decoding.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// Longest `jti` accepted (RFC 9449 §11.1: refuse large ones rather than store them).
pub const MAX_JTI_LEN: usize = 256;

/// JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// RSA proof keys: 2048–4096-bit moduli (RFC 7518 §3.3 floor; the ceiling bounds the work
/// an attacker-chosen key can cost). 4096 bits are 683 base64url characters.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 4096;
const RSA_MAX_B64_LEN: usize = (RSA_MAX_BITS / 8 * 4).div_ceil(3);

/// The proof part of `dpop.*`: allowed algorithms and the `iat` window in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofSettings {
    /// Accepted `alg` values (`dpop.algorithms`).
    pub algorithms: Vec<ProofAlgorithm>,
    /// How far `iat` may lie in the future.
    pub iat_leeway: i64,
    /// How far `iat` may lie in the past.
    pub iat_offset: i64,
}

/// What the proof must match; `htu` is the original request URL already normalized by
/// the gateway module as `scheme://host[:port]/path` (lower-case scheme/host, default
/// port dropped, no query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    pub method: &'a str,
    pub htu: &'a str,
    pub access_token: &'a str,
    /// The token's `cnf.jkt`.
    pub jkt: &'a str,
}

/// A proof whose signature, claims and key binding were verified. Only [`verify`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    /// RFC 7638 thumbprint of the proof key.
    jkt: String,
    jti: String,
    /// `iat`, whole seconds, rounded down.
    iat: i64,
    nonce: Option<String>,
}

impl VerifiedProof {
    /// SHA-256 over thumbprint, a 0 byte, and `jti`: what the replay store records.
    /// Never the proof bytes: ES256 signatures are malleable (`s` → `n − s`), so one proof
    /// has two valid spellings, while (key, `jti`) names it once. The 0 cannot occur in a
    /// thumbprint, so no two (thumbprint, `jti`) pairs hash the same input.
    pub fn replay_key(&self) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(self.jkt.as_bytes());
        ctx.update(&[0]);
        ctx.update(self.jti.as_bytes());
        let mut key = [0; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        key
    }

    /// When the replay entry may be dropped: `iat + iat_offset + iat_leeway`, past the
    /// last second in which this proof could still be accepted.
    pub fn expires_at(&self, settings: &ProofSettings) -> i64 {
        self.iat.saturating_add(settings.iat_offset).saturating_add(settings.iat_leeway)
    }

    /// The `nonce` claim, if the proof carried one (checked by the caller, RFC 9449 §9).
    pub fn nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }

    /// The RFC 7638 thumbprint of the proof key (equal to the token's `cnf.jkt`).
    pub fn jkt(&self) -> &str {
        &self.jkt
    }
}

/// A validated public key from the proof's `jwk`, ready for its one algorithm.
enum ProofKey {
    P256 { x: [u8; 32], y: [u8; 32] },
    P384(ParsedPublicKey),
    Ed25519([u8; 32]),
    Rsa { n: Vec<u8>, e: Vec<u8>, params: &'static RsaParameters },
}

/// The claims of a proof, typed.
struct Claims<'a> {
    jti: &'a str,
    htm: &'a str,
    htu: &'a str,
    iat: f64,
    ath: &'a str,
    exp: Option<f64>,
    nonce: Option<&'a str>,
}

/// Verifies the `DPoP` header value `proof` (RFC 9449 §4.3) at time `now` (seconds since
/// the epoch). Replay (§11.1) and nonce (§9) checks are left to the caller.
pub fn verify(
    proof: &str,
    expected: &Expected<'_>,
    settings: &ProofSettings,
    now: i64,
) -> Result<VerifiedProof, Reason> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(Reason::ProofTooLarge);
    }
    let compact = jws::parse(proof, MAX_PROOF_LEN).map_err(|e| match e {
        JwsError::TooLarge => Reason::ProofTooLarge,
        JwsError::Encoding | JwsError::Header | JwsError::Payload => Reason::MalformedProof,
    })?;
    let (jwk, key) = header_key(&compact.header, settings)?;
    let payload = compact.payload().map_err(|_| Reason::MalformedProof)?;
    let claims = claims(&payload)?;
    check_claims(&claims, expected, settings, now)?;
    let signature = compact.signature().map_err(|_| Reason::MalformedProof)?;
    if !verify_signature(&key, compact.signing_input.as_bytes(), &signature) {
        return Err(Reason::BadProofSignature);
    }
    // Only now, with possession of the key proven, is the binding compared.
    let jkt = thumbprint(jwk)?;
    if jkt != expected.jkt {
        return Err(Reason::KeyBindingMismatch);
    }
    Ok(VerifiedProof {
        jkt,
        jti: claims.jti.to_string(),
        iat: claims.iat.floor() as i64,
        nonce: claims.nonce.map(str::to_string),
    })
}

/// The header's checks (§4.3 steps 4, 5 and 7): `typ`, an allowed `alg`, no `crit`, and a
/// public key in `jwk`, fit for `alg`. Returns the `jwk` and the key.
fn header_key<'h>(
    header: &'h Map<String, Value>,
    settings: &ProofSettings,
) -> Result<(&'h Map<String, Value>, ProofKey), Reason> {
    match header.get("typ") {
        Some(Value::String(typ)) if is_dpop_type(typ) => {}
        _ => return Err(Reason::WrongProofType),
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(ProofAlgorithm::from_name)
        .filter(|alg| settings.algorithms.contains(alg))
        .ok_or(Reason::ProofAlgorithmNotAllowed)?;
    if header.contains_key("crit") {
        return Err(Reason::ProofCriticalHeader);
    }
    // The key comes only from `jwk` (§4.2); `kid`, `jku`, `x5c` and friends are never used.
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return Err(Reason::BadProofKey);
    };
    Ok((jwk, proof_key(jwk, alg)?))
}

/// The claims' checks against the request (§4.3 steps 8, 9, 11 and the `ath` of 12): `htm`,
/// `htu`, the `iat` window (and `exp` when present), and `ath`.
fn check_claims(
    claims: &Claims<'_>,
    expected: &Expected<'_>,
    settings: &ProofSettings,
    now: i64,
) -> Result<(), Reason> {
    if claims.htm != expected.method {
        return Err(Reason::WrongProofMethod);
    }
    if htu::normalize(claims.htu).as_deref() != Some(expected.htu) {
        return Err(Reason::WrongProofUrl);
    }
    // A fractional NumericDate against whole seconds: x > n iff ceil(x) > n, and
    // x < n iff floor(x) < n. Within ±2^53 the casts are exact.
    if claims.iat.ceil() as i64 > now.saturating_add(settings.iat_leeway) {
        return Err(Reason::ProofNotYetValid);
    }
    if (claims.iat.floor() as i64) < now.saturating_sub(settings.iat_offset) {
        return Err(Reason::ProofTooOld);
    }
    // x <= n iff ceil(x) <= n.
    if claims.exp.is_some_and(|exp| exp.ceil() as i64 <= now) {
        return Err(Reason::ProofTooOld);
    }
    if claims.ath != access_token_hash(expected.access_token) {
        return Err(Reason::WrongAccessTokenHash);
    }
    Ok(())
}

/// RFC 9449 §4.2 `dpop+jwt`, a media type (RFC 7515 §4.1.9): case-insensitive, with an
/// optional `application/` prefix.
fn is_dpop_type(typ: &str) -> bool {
    let lower = typ.to_ascii_lowercase();
    lower.strip_prefix("application/").unwrap_or(&lower) == "dpop+jwt"
}

/// The proof key from `jwk`: public, of the type `alg` needs, and a valid key (§4.3 step 7).
fn proof_key(jwk: &Map<String, Value>, alg: ProofAlgorithm) -> Result<ProofKey, Reason> {
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(Reason::BadProofKey);
    }
    // A key restricted to another algorithm or use may not sign this proof (RFC 7517 §4.2, §4.4).
    match jwk.get("alg") {
        None => {}
        Some(Value::String(a)) if a == alg.name() => {}
        Some(_) => return Err(Reason::BadProofKey),
    }
    match jwk.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => return Err(Reason::BadProofKey),
    }
    let kty = string_member(jwk, "kty")?;
    match alg {
        ProofAlgorithm::Es256 => {
            require(kty == "EC" && string_member(jwk, "crv")? == "P-256")?;
            let x: [u8; 32] = coordinate(jwk, "x")?;
            let y: [u8; 32] = coordinate(jwk, "y")?;
            // Invalid-curve inputs (RFC 8725 §3.4): only a point on P-256 makes a key.
            p256::PublicKey::from_sec1_bytes(&uncompressed_point(&x, &y)).map_err(|_| Reason::BadProofKey)?;
            Ok(ProofKey::P256 { x, y })
        }
        ProofAlgorithm::Es384 => {
            require(kty == "EC" && string_member(jwk, "crv")? == "P-384")?;
            let x: [u8; 48] = coordinate(jwk, "x")?;
            let y: [u8; 48] = coordinate(jwk, "y")?;
            // Parsing checks the point is on P-384.
            ParsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, uncompressed_point(&x, &y))
                .map(ProofKey::P384)
                .map_err(|_| Reason::BadProofKey)
        }
        ProofAlgorithm::EdDsa => {
            require(kty == "OKP" && string_member(jwk, "crv")? == "Ed25519")?;
            coordinate(jwk, "x").map(ProofKey::Ed25519)
        }
        ProofAlgorithm::Rs256 | ProofAlgorithm::Ps256 => {
            require(kty == "RSA")?;
            let n = string_member(jwk, "n")?;
            // Measured on the string, before decoding or any RSA operation.
            require(n.len() <= RSA_MAX_B64_LEN)?;
            let n = jws::decode(n).map_err(|_| Reason::BadProofKey)?;
            // Base64urlUInt is minimal (RFC 7518 §2): no leading zero octet.
            let first = *n.first().ok_or(Reason::BadProofKey)?;
            let bits = n.len() * 8 - first.leading_zeros() as usize;
            require(first != 0 && (RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits))?;
            let e = jws::decode(string_member(jwk, "e")?).map_err(|_| Reason::BadProofKey)?;
            require(e == [1, 0, 1])?;
            let params = if alg == ProofAlgorithm::Rs256 {
                &signature::RSA_PKCS1_2048_8192_SHA256
            } else {
                &signature::RSA_PSS_2048_8192_SHA256
            };
            Ok(ProofKey::Rsa { n, e, params })
        }
    }
}

fn require(ok: bool) -> Result<(), Reason> {
    if ok { Ok(()) } else { Err(Reason::BadProofKey) }
}

fn string_member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, Reason> {
    jwk.get(name).and_then(Value::as_str).ok_or(Reason::BadProofKey)
}

/// A full-length coordinate (RFC 7518 §6.2.1.2): shorter or longer spellings would give
/// the same point another thumbprint.
fn coordinate<const N: usize>(jwk: &Map<String, Value>, name: &str) -> Result<[u8; N], Reason> {
    let bytes = jws::decode(string_member(jwk, name)?).map_err(|_| Reason::BadProofKey)?;
    bytes.try_into().map_err(|_| Reason::BadProofKey)
}

fn uncompressed_point(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut point = Vec::with_capacity(1 + x.len() + y.len());
    point.push(0x04);
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    point
}

/// Reads and types the claims: presence first (`ProofClaimMissing`), then JSON type
/// (`MalformedProofClaim`), claim by claim.
fn claims(payload: &Map<String, Value>) -> Result<Claims<'_>, Reason> {
    let string = |name| string_claim(payload, name);
    let jti = string("jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_LEN {
        return Err(Reason::MalformedProofClaim);
    }
    let htm = string("htm")?;
    let htu = string("htu")?;
    let iat = numeric_date(payload.get("iat"))?.ok_or(Reason::ProofClaimMissing)?;
    // Always required: tollgate only sees proofs presented with an access token (§4.2).
    let ath = string("ath")?;
    let exp = numeric_date(payload.get("exp"))?;
    let nonce = match payload.get("nonce") {
        None => None,
        Some(Value::String(n)) => Some(n.as_str()),
        Some(_) => return Err(Reason::MalformedProofClaim),
    };
    Ok(Claims { jti, htm, htu, iat, ath, exp, nonce })
}

fn string_claim<'a>(payload: &'a Map<String, Value>, name: &str) -> Result<&'a str, Reason> {
    match payload.get(name) {
        None => Err(Reason::ProofClaimMissing),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(Reason::MalformedProofClaim),
    }
}

fn numeric_date(value: Option<&Value>) -> Result<Option<f64>, Reason> {
    jws::numeric_date(value).map_err(|_| Reason::MalformedProofClaim)
}

/// `ath` (§4.2): base64url (no padding) of SHA-256 over the access token's ASCII.
fn access_token_hash(token: &str) -> String {
    jws::encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

fn verify_signature(key: &ProofKey, message: &[u8], sig: &[u8]) -> bool {
    match key {
        ProofKey::P256 { x, y } => verify_es256(x, y, message, sig),
        // RFC 7518 §3.4: R ‖ S, each exactly the curve size; no DER, no trimming.
        ProofKey::P384(key) => sig.len() == 96 && key.verify_sig(message, sig).is_ok(),
        ProofKey::Ed25519(x) => {
            sig.len() == 64 && UnparsedPublicKey::new(&signature::ED25519, x).verify(message, sig).is_ok()
        }
        ProofKey::Rsa { n, e, params } => RsaPublicKeyComponents { n, e }.verify(params, message, sig).is_ok(),
    }
}

/// ES256 (RFC 7518 §3.4) with aws-lc-rs: a 64-byte R ‖ S signature over `message` under
/// the P-256 point (`x`, `y`). aws-lc-rs measured about 35 µs against 192 µs for p256 here;
/// the Wycheproof P1363 vectors run through this function (see the tests).
pub fn verify_es256(x: &[u8; 32], y: &[u8; 32], message: &[u8], sig: &[u8]) -> bool {
    sig.len() == 64
        && UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, uncompressed_point(x, y))
            .verify(message, sig)
            .is_ok()
}

/// The RFC 7638 JWK thumbprint of a proof's key ([`jws::thumbprint`]); a key without one
/// is a bad proof key.
pub fn thumbprint(jwk: &Map<String, Value>) -> Result<String, Reason> {
    jws::thumbprint(jwk).ok_or(Reason::BadProofKey)
}

#[cfg(test)]
mod tests;
