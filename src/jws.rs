//! Compact JWS framing shared by access tokens and DPoP proofs: three strict base64url
//! segments (RFC 7515 §7.1, §2: no padding, no stray bits) and JSON objects with unique
//! member names at every depth (RFC 7515 §4, RFC 7519 §4: tollgate refuses rather than
//! picking the last duplicate, so no two parsers can read one token differently).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a compact serialization could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsError {
    /// Longer than the caller's cap; nothing was decoded.
    TooLarge,
    /// Not exactly three segments, or a segment is not strict base64url.
    Encoding,
    /// The header is not a JSON object with unique members.
    Header,
    /// The payload is not a JSON object with unique members.
    Payload,
}

/// A compact JWS split into its segments, the header decoded.
#[derive(Debug)]
pub struct Compact<'a> {
    pub header: Map<String, Value>,
    /// `BASE64URL(header) '.' BASE64URL(payload)`: what the signature covers.
    pub signing_input: &'a str,
    pub payload_b64: &'a str,
    pub signature_b64: &'a str,
}

/// Splits and checks the framing, decodes the header. The payload is left for
/// [`Compact::payload`] so that callers can refuse on the header (e.g. `alg`) first.
pub fn parse(compact: &str, max_len: usize) -> Result<Compact<'_>, JwsError> {
    if compact.len() > max_len {
        return Err(JwsError::TooLarge);
    }
    let mut dots = memchr::memchr_iter(b'.', compact.as_bytes());
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(JwsError::Encoding);
    };
    let header_b64 = &compact[..first];
    let payload_b64 = &compact[first + 1..second];
    let signature_b64 = &compact[second + 1..];
    if header_b64.is_empty() || payload_b64.is_empty() || !is_strict_b64(signature_b64) || !is_strict_b64(payload_b64) {
        return Err(JwsError::Encoding);
    }
    let header_bytes = decode(header_b64)?;
    let header = object(&header_bytes).ok_or(JwsError::Header)?;
    Ok(Compact { header, signing_input: &compact[..second], payload_b64, signature_b64 })
}

/// The payload segment of a compact JWS (between its first two dots), not decoded; empty
/// when there is none. For a token already verified, whose framing [`parse`] checked.
pub fn payload_segment(compact: &str) -> &str {
    let mut dots = memchr::memchr_iter(b'.', compact.as_bytes());
    match (dots.next(), dots.next()) {
        // Dots are ASCII: both ends are character boundaries.
        (Some(first), Some(second)) => &compact[first + 1..second],
        _ => "",
    }
}

impl Compact<'_> {
    /// Decodes the payload into a JSON object with unique members.
    pub fn payload(&self) -> Result<Map<String, Value>, JwsError> {
        let bytes = decode(self.payload_b64)?;
        object(&bytes).ok_or(JwsError::Payload)
    }

    /// The raw signature bytes.
    pub fn signature(&self) -> Result<Vec<u8>, JwsError> {
        decode(self.signature_b64)
    }
}

/// A NumericDate (RFC 7519 §2): a JSON number, possibly fractional, within ±2^53.
/// `Err` when the member is there with another JSON type or out of range (CVE-2026-25537:
/// a wrong-typed `exp` must never count as absent).
pub fn numeric_date(value: Option<&Value>) -> Result<Option<f64>, JwsError> {
    const LIMIT: f64 = 9_007_199_254_740_992.0;
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(t) if t.is_finite() && t.abs() <= LIMIT => Ok(Some(t)),
            _ => Err(JwsError::Payload),
        },
        Some(_) => Err(JwsError::Payload),
    }
}

/// Strict base64url: the alphabet only, no padding, unused bits zero.
pub fn decode(segment: &str) -> Result<Vec<u8>, JwsError> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| JwsError::Encoding)
}

pub fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Cheap pre-check of a segment's alphabet and length (a length of 4n+1 is never valid).
fn is_strict_b64(segment: &str) -> bool {
    segment.len() % 4 != 1 && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Parses a JSON object, refusing duplicate member names at any depth.
pub fn object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<UniqueValue>(bytes) {
        Ok(UniqueValue(Value::Object(map))) => Some(map),
        _ => None,
    }
}

/// A JSON value whose objects have unique member names.
struct UniqueValue(Value);

impl<'de> Deserialize<'de> for UniqueValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(UniqueValue)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let UniqueValue(value) = access.next_value()?;
            if map.insert(key, value).is_some() {
                return Err(de::Error::custom("duplicate member name"));
            }
        }
        Ok(Value::Object(map))
    }
}

/// The RFC 7638 JWK thumbprint: base64url SHA-256 of the required members in
/// lexicographic order, no whitespace (§3.2–3.3). Other members (`kid`, `alg`, `use`)
/// do not count. `None` when a required member is not a string, or for an unknown `kty`.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let required: &[&str] = match jwk.get("kty").and_then(Value::as_str) {
        Some("EC") => &["crv", "kty", "x", "y"],
        Some("OKP") => &["crv", "kty", "x"],
        Some("RSA") => &["e", "kty", "n"],
        Some("oct") => &["k", "kty"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, name) in required.iter().enumerate() {
        let value = jwk.get(*name).and_then(Value::as_str)?;
        if i > 0 {
            canonical.push(',');
        }
        // serde_json writes a JSON string with the minimal escaping RFC 7638 §3.3 asks for.
        canonical.push_str(&Value::from(*name).to_string());
        canonical.push(':');
        canonical.push_str(&Value::from(value).to_string());
    }
    canonical.push('}');
    Some(encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref()))
}

#[cfg(test)]
mod tests;
