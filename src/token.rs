//! Access-token verification: from the compact JWS to a [`VerifiedToken`].
//!
//! Order matters, cheapest and most dangerous first: size cap (8 KiB, before any decoding),
//! framing and strict base64url, header (`alg` from the allowlist, never `none` or HMAC,
//! RFC 8725 §3.1; no `crit`, RFC 7515 §4.1.11; `typ` `at+jwt` or `JWT`, RFC 9068 §4),
//! key by `kid` and algorithm family, signature, then claims (RFC 7519 §7.2, RFC 9068 §4):
//! `iss` exact, `aud` any match, `exp` required, `nbf`, `iat` and `sub` present and typed,
//! with `leeway`; `act` read strictly ([`crate::delegation`]). `jku`, `x5u`, `x5c` and `jwk` headers are never followed.
//!
//! The signature check is jsonwebtoken's `crypto::verify` (aws-lc-rs backend); the claims
//! are read here, once, with their JSON types checked, so a wrong-typed `exp` can never be
//! mistaken for an absent one (CVE-2026-25537).

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use triomphe::{Arc, HeaderSlice};

use crate::config::IssuerConfig;
use crate::delegation;
use crate::jwks::{IssuerKey, KeySet};
use crate::jws::{self, JwsError};
use crate::refusal::Reason;

/// Tokens longer than this are refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// A token whose signature and claims were verified. Only [`verify`] makes one.
///
/// Laid out small on purpose: the verified-token cache holds up to 100,000 of these and
/// must stay within 30 MB. One allocation, shared by every clone: an 8-byte count, the
/// 16-byte `Head`, and the subject followed by the scope; the text's length lives in
/// the (fat) pointer, not in the allocation. A cached token costs one malloc chunk of 24
/// bytes plus its text, rounded up to 16 (48 bytes for `user1` and `read`, 80 for a
/// 30-byte Auth0 `sub` and `read:orders`); a `sub` in a box of its own would cost
/// another chunk.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedToken(Arc<HeaderSlice<Head, str>>);

/// What a verified token holds beside its text.
#[derive(Clone, PartialEq, Eq)]
struct Head {
    /// The rarely present parts (binding, kept claims, delegation chain), in one box.
    extra: Option<Box<Extra>>,
    /// `exp`, whole seconds, rounded down; one after 2106 is kept as 2106 (`u32::MAX`),
    /// which changes nothing for a cache that holds tokens for hours.
    expires_at: u32,
    /// Which configured issuer verified the token: an index into the config's `issuers`.
    issuer: u16,
    /// Where `sub` ends in the text; `scope` (space-delimited) follows.
    subject_len: u16,
}

/// What the token says, not how it is stored.
impl std::fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("subject", &self.subject())
            .field("scope", &self.scope())
            .field("issuer", &self.issuer_index())
            .field("expires_at", &self.expires_at())
            .field("extra", &self.head().extra)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Extra {
    /// `cnf.jkt`: the thumbprint of the key this token is bound to (RFC 9449 §6.1).
    jkt: Option<Box<str>>,
    /// The claims routes and `[headers]` read, kept from the verified payload.
    kept: Box<[(String, Value)]>,
    /// The delegation chain from `act`, the current actor first (RFC 8693 §4.1).
    actors: Box<[Box<str>]>,
}

impl VerifiedToken {
    fn new(subject: &str, scope: &str, expires_at: i64, extra: Extra) -> Self {
        let used = extra.jkt.is_some() || !extra.kept.is_empty() || !extra.actors.is_empty();
        // `sub` was checked to be a short header-safe string: it fits the 8 KiB token cap.
        let subject_len = u16::try_from(subject.len()).unwrap_or(u16::MAX);
        // A verified `exp` lies ahead of the clock, so it is never below 0.
        let expires_at = u32::try_from(expires_at.max(0)).unwrap_or(u32::MAX);
        let head = Head { extra: used.then(|| Box::new(extra)), expires_at, issuer: 0, subject_len };
        VerifiedToken(Arc::from_header_and_str(head, &[subject, scope].concat()))
    }

    /// A token as [`verify`] would make it, for other modules' tests.
    #[cfg(test)]
    pub(crate) fn for_tests(subject: &str, scope: &str, expires_at: i64) -> Self {
        VerifiedToken::new(subject, scope, expires_at, Extra::default())
    }

    /// The same token, recorded as verified by the `index`-th configured issuer.
    pub fn from_issuer(mut self, index: usize) -> Self {
        let issuer = u16::try_from(index).unwrap_or(u16::MAX);
        match Arc::get_mut(&mut self.0) {
            Some(only) => only.header.issuer = issuer,
            // Shared already (never, fresh from `verify`): a copy of its own.
            None => {
                let head = Head { issuer, ..self.head().clone() };
                self = VerifiedToken(Arc::from_header_and_str(head, &self.0.slice));
            }
        }
        self
    }

    fn head(&self) -> &Head {
        &self.0.header
    }

    /// `sub` and `scope`.
    fn parts(&self) -> (&str, &str) {
        // `sub` ends on a character boundary (it was a `&str`): the fallback is never taken.
        let text = &self.0.slice;
        text.split_at_checked(usize::from(self.head().subject_len)).unwrap_or((text, ""))
    }

    /// The index of the configured issuer that verified it.
    pub fn issuer_index(&self) -> usize {
        usize::from(self.head().issuer)
    }

    pub fn subject(&self) -> &str {
        self.parts().0
    }

    /// The `scope` claim, space-delimited; empty when absent.
    pub fn scope(&self) -> &str {
        self.parts().1
    }

    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scope().split(' ').any(|s| s == wanted)
    }

    pub fn expires_at(&self) -> i64 {
        i64::from(self.head().expires_at)
    }

    /// The delegation chain, the current actor (outermost `act.sub`) first; empty without `act`.
    pub fn actors(&self) -> &[Box<str>] {
        self.head().extra.as_ref().map_or(&[], |e| &e.actors)
    }

    pub fn jkt(&self) -> Option<&str> {
        self.head().extra.as_ref()?.jkt.as_deref()
    }

    /// A kept claim by its exact name (namespaced URL claims included) or, when no claim
    /// has that name, by dotted path (`app_metadata.tenant`).
    pub fn claim(&self, name: &str) -> Option<&Value> {
        let kept = &self.head().extra.as_ref()?.kept;
        let top = |n: &str| kept.iter().find(|(k, _)| k == n).map(|(_, v)| v);
        top(name).or_else(|| {
            let mut parts = name.split('.');
            let first = top(parts.next()?)?;
            parts.try_fold(first, |value, part| value.get(part))
        })
    }
}

/// The top-level claims to keep so that `claim(name)` can answer for `names`.
pub fn claims_to_keep<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut keep: Vec<String> = Vec::new();
    for name in names {
        for candidate in [name, name.split('.').next().unwrap_or(name)] {
            if !keep.iter().any(|k| k == candidate) {
                keep.push(candidate.to_string());
            }
        }
    }
    keep
}

/// The `iss` of an unverified token, to choose among several issuers before any key
/// lookup: the payload segment only, strictly decoded, at most [`MAX_TOKEN_LEN`]. Nothing
/// else is believed: the chosen issuer's keys and claim checks decide.
pub fn peek_issuer(token: &str) -> Result<String, Reason> {
    #[derive(serde::Deserialize)]
    struct Peek {
        iss: Option<Value>,
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(Reason::TokenTooLarge);
    }
    let mut segments = token.split('.');
    let (Some(_), Some(payload), Some(_), None) = (segments.next(), segments.next(), segments.next(), segments.next())
    else {
        return Err(Reason::MalformedToken);
    };
    let bytes = jws::decode(payload).map_err(|_| Reason::MalformedToken)?;
    let peek: Peek = serde_json::from_slice(&bytes).map_err(|_| Reason::MalformedClaims)?;
    match peek.iss {
        Some(Value::String(iss)) => Ok(iss),
        Some(_) => Err(Reason::MalformedClaims),
        None => Err(Reason::MissingClaim),
    }
}

/// Verifies `token` against the issuer's keys at time `now` (seconds since the epoch).
pub fn verify(token: &str, keys: &KeySet, config: &IssuerConfig, now: i64) -> Result<VerifiedToken, Reason> {
    verify_keeping(token, keys, config, now, &[])
}

/// [`verify`], keeping the named top-level claims (see [`claims_to_keep`]) for routes and headers.
pub fn verify_keeping(
    token: &str,
    keys: &KeySet,
    config: &IssuerConfig,
    now: i64,
    keep: &[String],
) -> Result<VerifiedToken, Reason> {
    let compact = jws::parse(token, MAX_TOKEN_LEN).map_err(|e| match e {
        JwsError::TooLarge => Reason::TokenTooLarge,
        JwsError::Header => Reason::MalformedHeader,
        JwsError::Encoding | JwsError::Payload => Reason::MalformedToken,
    })?;
    let alg = check_header(&compact.header, config)?;
    let kid = match compact.header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(Reason::MalformedHeader),
    };
    let verified = signing_keys(keys, kid, alg)?
        .iter()
        .any(|key| verify_signature(key, alg, compact.signing_input.as_bytes(), compact.signature_b64));
    if !verified {
        return Err(Reason::BadSignature);
    }
    let claims = compact.payload().map_err(|_| Reason::MalformedClaims)?;
    let checked = check_claims(&claims, config, now)?;
    let kept = keep.iter().filter_map(|name| claims.get_key_value(name)).map(|(k, v)| (k.clone(), v.clone())).collect();
    let extra = Extra { jkt: checked.jkt, kept, actors: checked.actors.into_boxed_slice() };
    Ok(VerifiedToken::new(checked.subject, checked.scope, checked.expires_at, extra))
}

/// What the claim checks extract for a [`VerifiedToken`].
struct Checked<'a> {
    subject: &'a str,
    scope: &'a str,
    expires_at: i64,
    jkt: Option<Box<str>>,
    actors: Vec<Box<str>>,
}

/// `alg`, `crit` and `typ`; returns the algorithm to verify with.
fn check_header(header: &Map<String, Value>, config: &IssuerConfig) -> Result<Algorithm, Reason> {
    let name = header.get("alg").and_then(Value::as_str).ok_or(Reason::MalformedHeader)?;
    // Only configured algorithms match, and the configuration never holds `none` or HMAC.
    let alg = name
        .parse::<Algorithm>()
        .ok()
        .filter(|alg| config.algorithms.contains(alg))
        .ok_or(Reason::AlgorithmNotAllowed)?;
    if header.contains_key("crit") {
        return Err(Reason::CriticalHeader);
    }
    match header.get("typ") {
        None => {}
        Some(Value::String(typ)) if is_access_token_type(typ) => {}
        Some(Value::String(_)) => return Err(Reason::WrongTokenType),
        Some(_) => return Err(Reason::MalformedHeader),
    }
    Ok(alg)
}

/// RFC 9068 §4 `at+jwt` (a media type: case-insensitive, `application/` optional), or `JWT`.
fn is_access_token_type(typ: &str) -> bool {
    let lower = typ.to_ascii_lowercase();
    let short = lower.strip_prefix("application/").unwrap_or(&lower);
    short == "at+jwt" || short == "jwt"
}

/// The keys to try: those with the token's `kid` that fit `alg` (at most two, RFC 7517
/// §4.5 allows a repeated kid across key types). Without a `kid`, the one key that fits.
fn signing_keys<'a>(keys: &'a KeySet, kid: Option<&'a str>, alg: Algorithm) -> Result<Vec<&'a IssuerKey>, Reason> {
    let Some(kid) = kid else {
        return keys.only_key_for(alg).map(|k| vec![k]).ok_or(Reason::UnknownKey);
    };
    let candidates: Vec<&IssuerKey> = keys.candidates(kid, alg).take(2).collect();
    match (candidates.is_empty(), keys.has_kid(kid)) {
        (false, _) => Ok(candidates),
        (true, true) => Err(Reason::KeyAlgorithmMismatch),
        (true, false) => Err(Reason::UnknownKey),
    }
}

/// The signature check itself: jsonwebtoken's `crypto::verify` with an issuer key.
/// Public so that the Wycheproof vectors run through exactly this path.
pub fn verify_signature(key: &IssuerKey, alg: Algorithm, signing_input: &[u8], signature_b64: &str) -> bool {
    key.fits(alg) && jsonwebtoken::crypto::verify(signature_b64, signing_input, &key.key, alg).unwrap_or(false)
}

fn check_claims<'a>(claims: &'a Map<String, Value>, config: &IssuerConfig, now: i64) -> Result<Checked<'a>, Reason> {
    let leeway = config.leeway;
    match claims.get("iss") {
        None => return Err(Reason::MissingClaim),
        Some(Value::String(iss)) if *iss == config.issuer => {}
        Some(Value::String(_)) => return Err(Reason::WrongIssuer),
        Some(_) => return Err(Reason::MalformedClaims),
    }
    check_audience(claims.get("aud"), &config.audiences)?;
    let expires_at = numeric_date(claims.get("exp"))?.ok_or(Reason::MissingClaim)?.floor() as i64;
    if now >= expires_at.saturating_add(leeway) {
        return Err(Reason::Expired);
    }
    if let Some(nbf) = numeric_date(claims.get("nbf"))?
        && nbf.ceil() as i64 > now.saturating_add(leeway)
    {
        return Err(Reason::NotYetValid);
    }
    numeric_date(claims.get("iat"))?.ok_or(Reason::MissingClaim)?;
    let subject = match claims.get("sub") {
        None => return Err(Reason::MissingClaim),
        Some(Value::String(sub)) if sub.is_empty() || sub.chars().any(char::is_control) => {
            return Err(Reason::BadSubject);
        }
        Some(Value::String(sub)) => sub.as_str(),
        Some(_) => return Err(Reason::MalformedClaims),
    };
    for name in ["jti", "client_id"] {
        if claims.get(name).is_some_and(|v| !v.is_string()) {
            return Err(Reason::MalformedClaims);
        }
    }
    if config.required_claims.iter().any(|c| !claims.contains_key(c)) {
        return Err(Reason::MissingClaim);
    }
    let scope = scope(claims.get("scope"));
    let jkt = confirmation(claims.get("cnf"))?;
    let actors = delegation::chain(claims.get("act"))?;
    Ok(Checked { subject, scope, expires_at, jkt, actors })
}

/// The `scope` claim if it follows RFC 6749 §3.3 (scope-tokens joined by single spaces).
/// Anything else grants no scope, which fails closed on scoped routes: an array (RFC 9068
/// §2.2.3 makes `scope` a string), stray spaces, or characters outside the grammar.
fn scope(value: Option<&Value>) -> &str {
    let Some(Value::String(scope)) = value else { return "" };
    let token_ok = |t: &str| !t.is_empty() && t.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E));
    if scope.split(' ').all(token_ok) { scope } else { "" }
}

fn check_audience(aud: Option<&Value>, accepted: &[String]) -> Result<(), Reason> {
    let named: Vec<&str> = match aud {
        None => return Err(Reason::MissingClaim),
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(items)) => {
            items.iter().map(|v| v.as_str().ok_or(Reason::MalformedClaims)).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(Reason::MalformedClaims),
    };
    if named.iter().any(|a| accepted.iter().any(|ok| ok == a)) { Ok(()) } else { Err(Reason::WrongAudience) }
}

fn numeric_date(value: Option<&Value>) -> Result<Option<f64>, Reason> {
    jws::numeric_date(value).map_err(|_| Reason::MalformedClaims)
}

/// `cnf` (RFC 7800): when present it must hold a `jkt` (RFC 9449 §6.1); a binding
/// tollgate cannot check (e.g. only `x5t#S256`) fails closed.
fn confirmation(cnf: Option<&Value>) -> Result<Option<Box<str>>, Reason> {
    match cnf {
        None => Ok(None),
        Some(Value::Object(cnf)) => match cnf.get("jkt") {
            Some(Value::String(jkt)) if !jkt.is_empty() => Ok(Some(jkt.as_str().into())),
            _ => Err(Reason::UnusableConfirmation),
        },
        Some(_) => Err(Reason::UnusableConfirmation),
    }
}

#[cfg(test)]
mod tests;
