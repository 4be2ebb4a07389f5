//! JWKS parsing (RFC 7517) into the keys tollgate will verify with.
//!
//! Only keys fit for signature verification are kept: RSA of 2048–8192 bits with an odd
//! exponent above 1 (RFC 7518 §3.3; e = 1 would make every message its own signature),
//! EC points that lie on their curve with full-length coordinates (RFC 7518 §6.2.1.2,
//! RFC 8725 §3.4), Ed25519 (RFC 8037). Entries with `use` other than `sig`, private
//! members, or an unknown `kty` are skipped; a set with no usable key is refused whole.

use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use crate::jws;

/// The kind of key, which decides the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyFamily {
    /// RFC 8725 §3.1: one key, one family of algorithms.
    pub fn fits(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        matches!(
            (self, alg),
            (KeyFamily::Rsa, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
                | (KeyFamily::P256, ES256)
                | (KeyFamily::P384, ES384)
                | (KeyFamily::Ed25519, EdDSA)
        )
    }
}

/// One verification key from the issuer's JWKS.
#[derive(Clone)]
pub struct IssuerKey {
    pub kid: Option<String>,
    pub family: KeyFamily,
    /// The JWK's own `alg`, which restricts the key to that algorithm (RFC 7517 §4.4).
    pub alg: Option<Algorithm>,
    pub key: DecodingKey,
}

impl IssuerKey {
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.family.fits(alg) && self.alg.is_none_or(|a| a == alg)
    }
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("alg", &self.alg)
            .finish()
    }
}

/// The usable keys of one JWKS document.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<IssuerKey>,
}

/// Why a JWKS document was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("JWKS is not a JSON object with a \"keys\" array")]
    NotAKeySet,
    #[error("JWKS holds {0} keys, more than the {max} accepted", max = MAX_KEYS)]
    TooManyKeys(usize),
    #[error("JWKS holds no usable signing key")]
    NoUsableKey,
}

/// The most keys one JWKS may hold.
pub const MAX_KEYS: usize = 100;

/// A key tollgate skipped, and why; logged once per fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub kid: Option<String>,
    pub why: &'static str,
}

impl KeySet {
    /// Parses a JWKS document, returning the usable keys and the skipped ones.
    pub fn parse(body: &[u8]) -> Result<(KeySet, Vec<Skipped>), JwksError> {
        let document: Value = serde_json::from_slice(body).map_err(|_| JwksError::NotAKeySet)?;
        let entries = document.get("keys").and_then(Value::as_array).ok_or(JwksError::NotAKeySet)?;
        if entries.len() > MAX_KEYS {
            return Err(JwksError::TooManyKeys(entries.len()));
        }
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for entry in entries {
            let Some(jwk) = entry.as_object() else {
                skipped.push(Skipped { kid: None, why: "not a JSON object" });
                continue;
            };
            match parse_key(jwk) {
                Ok(key) => keys.push(key),
                Err(why) => skipped.push(Skipped { kid: text(jwk, "kid").map(str::to_owned), why }),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey);
        }
        Ok((KeySet { keys }, skipped))
    }

    /// Keys with this `kid` that can verify `alg`.
    pub fn candidates<'a>(&'a self, kid: &'a str, alg: Algorithm) -> impl Iterator<Item = &'a IssuerKey> + 'a {
        self.keys.iter().filter(move |k| k.kid.as_deref() == Some(kid) && k.fits(alg))
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The one key that can verify `alg`, for tokens without `kid`; none if ambiguous.
    pub fn only_key_for(&self, alg: Algorithm) -> Option<&IssuerKey> {
        let mut fitting = self.keys.iter().filter(|k| k.fits(alg));
        match (fitting.next(), fitting.next()) {
            (Some(key), None) => Some(key),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether some `kid` of `self` is gone from `newer`.
    pub fn loses_keys_in(&self, newer: &KeySet) -> bool {
        self.keys.iter().filter_map(|k| k.kid.as_deref()).any(|kid| !newer.has_kid(kid))
    }
}

fn text<'a>(jwk: &'a Map<String, Value>, member: &str) -> Option<&'a str> {
    jwk.get(member).and_then(Value::as_str)
}

/// Members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn parse_key(jwk: &Map<String, Value>) -> Result<IssuerKey, &'static str> {
    if jwk.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return Err("use is not sig");
    }
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err("holds private key members");
    }
    let alg = match jwk.get("alg") {
        None => None,
        Some(v) => {
            let name = v.as_str().ok_or("alg is not a string")?;
            Some(name.parse::<Algorithm>().map_err(|_| "unknown alg")?)
        }
    };
    let kid = match jwk.get("kid") {
        None => None,
        Some(v) => Some(v.as_str().ok_or("kid is not a string")?.to_owned()),
    };
    let (family, key) = match text(jwk, "kty") {
        Some("RSA") => (KeyFamily::Rsa, rsa_key(jwk)?),
        Some("EC") => ec_key(jwk)?,
        Some("OKP") => (KeyFamily::Ed25519, ed25519_key(jwk)?),
        _ => return Err("unsupported kty"),
    };
    if alg.is_some_and(|a| !family.fits(a)) {
        return Err("alg does not fit the key type");
    }
    Ok(IssuerKey { kid, family, alg, key })
}

fn member_bytes(jwk: &Map<String, Value>, member: &str) -> Result<Vec<u8>, &'static str> {
    let b64 = text(jwk, member).ok_or("missing key member")?;
    jws::decode(b64).map_err(|_| "key member is not base64url")
}

fn rsa_key(jwk: &Map<String, Value>) -> Result<DecodingKey, &'static str> {
    let n = member_bytes(jwk, "n")?;
    let e = member_bytes(jwk, "e")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
    if !(2048..=8192).contains(&bits) {
        return Err("RSA modulus not between 2048 and 8192 bits");
    }
    let odd = e.last().is_some_and(|b| b & 1 == 1);
    if e.is_empty() || e.len() > 4 || !odd || e == [1] {
        return Err("RSA exponent not an odd number above 1");
    }
    Ok(DecodingKey::from_rsa_raw_components(n, e))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

fn ec_key(jwk: &Map<String, Value>) -> Result<(KeyFamily, DecodingKey), &'static str> {
    let (family, size, algorithm): (_, _, &'static aws_lc_rs::signature::EcdsaVerificationAlgorithm) =
        match text(jwk, "crv") {
            Some("P-256") => (KeyFamily::P256, 32, &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED),
            Some("P-384") => (KeyFamily::P384, 48, &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED),
            _ => return Err("unsupported EC curve"),
        };
    let x = member_bytes(jwk, "x")?;
    let y = member_bytes(jwk, "y")?;
    if x.len() != size || y.len() != size {
        return Err("EC coordinate of the wrong length");
    }
    let point = [&[0x04], x.as_slice(), y.as_slice()].concat();
    aws_lc_rs::signature::ParsedPublicKey::new(algorithm, &point).map_err(|_| "EC point not on the curve")?;
    let key = DecodingKey::from_ec_components(text(jwk, "x").unwrap_or_default(), text(jwk, "y").unwrap_or_default())
        .map_err(|_| "EC key rejected")?;
    Ok((family, key))
}

fn ed25519_key(jwk: &Map<String, Value>) -> Result<DecodingKey, &'static str> {
    if text(jwk, "crv") != Some("Ed25519") {
        return Err("unsupported OKP curve");
    }
    if member_bytes(jwk, "x")?.len() != 32 {
        return Err("Ed25519 key of the wrong length");
    }
    DecodingKey::from_ed_components(text(jwk, "x").unwrap_or_default()).map_err(|_| "Ed25519 key rejected")
}

#[cfg(test)]
mod tests;
