//! Reads the credentials from `Authorization` and `DPoP` headers, and refuses requests
//! that cannot be read one way only.
//!
//! RFC 6750 §2.1 (`Bearer` 1*SP b64token; the scheme is case-insensitive, RFC 9110 §11.1),
//! RFC 9449 §7.1 (`DPoP` scheme plus exactly one `DPoP` proof header, §4.3 step 1).
//! The token itself is judged by [`crate::token`]; only its framing is checked here.

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};

use crate::refusal::{DpopMode, Reason, Refusal, Scheme};

const DPOP: HeaderName = HeaderName::from_static("dpop");

/// The credentials of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    Bearer { token: &'a str },
    DPoP { token: &'a str, proof: &'a str },
}

impl Credentials<'_> {
    pub fn scheme(&self) -> Scheme {
        match self {
            Credentials::Bearer { .. } => Scheme::Bearer,
            Credentials::DPoP { .. } => Scheme::DPoP,
        }
    }

    pub fn token(&self) -> &str {
        match self {
            Credentials::Bearer { token } | Credentials::DPoP { token, .. } => token,
        }
    }
}

/// Extracts the credentials, refusing ambiguous or malformed framing.
pub fn extract(headers: &HeaderMap) -> Result<Credentials<'_>, Refusal> {
    let proof = proof_header(headers)?;
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        let reason = if proof.is_some() { Reason::ProofWithoutToken } else { Reason::MissingCredentials };
        return Err(Refusal::new(reason));
    };
    if values.next().is_some() {
        return Err(Refusal::new(Reason::TwoAuthorizationHeaders));
    }
    let value = value.to_str().map_err(|_| Refusal::new(Reason::MalformedAuthorization))?;
    let (scheme_name, rest) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme_name.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme_name.eq_ignore_ascii_case("dpop") {
        Scheme::DPoP
    } else {
        return Err(Refusal::new(Reason::UnsupportedScheme));
    };
    let refuse = |reason| Refusal::new(reason).with_scheme(Some(scheme));
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(refuse(Reason::EmptyToken));
    }
    if has_comma(token) {
        return Err(refuse(Reason::MultipleCredentials));
    }
    match (scheme, proof) {
        (Scheme::Bearer, None) => Ok(Credentials::Bearer { token }),
        (Scheme::Bearer, Some(_)) => Err(refuse(Reason::ProofWithBearer)),
        (Scheme::DPoP, Some(proof)) => Ok(Credentials::DPoP { token, proof }),
        (Scheme::DPoP, None) => Err(refuse(Reason::MissingProof)),
    }
}

/// The single `DPoP` header, if any (RFC 9449 §4.3 step 1).
fn proof_header(headers: &HeaderMap) -> Result<Option<&str>, Refusal> {
    let mut values = headers.get_all(DPOP).iter();
    let Some(value) = values.next() else { return Ok(None) };
    let refuse = || Refusal::new(Reason::MultipleProofs).with_scheme(Some(Scheme::DPoP));
    if values.next().is_some() {
        return Err(refuse());
    }
    let proof = value.to_str().map_err(|_| refuse())?;
    if has_comma(proof) {
        return Err(refuse());
    }
    Ok(Some(proof))
}

/// A comma joins credentials in a list (`Bearer a, Bearer b`); never in a token or proof.
/// Tokens run to kilobytes: searched a vector at a time, not a byte.
fn has_comma(text: &str) -> bool {
    memchr::memchr(b',', text.as_bytes()).is_some()
}

/// Whether the deployment accepts the scheme the request used.
pub fn admit(credentials: &Credentials<'_>, mode: DpopMode) -> Result<(), Refusal> {
    let refuse = |reason| Err(Refusal::new(reason).with_scheme(Some(credentials.scheme())));
    match (credentials.scheme(), mode) {
        (Scheme::DPoP, DpopMode::Disabled) => refuse(Reason::DpopDisabled),
        (Scheme::Bearer, DpopMode::Required) => refuse(Reason::BearerNotAllowed),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
