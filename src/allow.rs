//! A successful check, turned into the headers the gateway hands the upstream.
//!
//! `X-Auth-Subject` is the `sub` claim; bytes outside visible ASCII, and `%` itself, are
//! percent-encoded (UTF-8), so a subject never carries raw non-ASCII bytes into a header
//! (control characters were refused at verification). `X-Auth-Claims` is the verified
//! payload, base64url without padding. On a public route the headers are present and
//! empty, so a gateway that copies them overwrites anything the client sent.

use std::fmt::Write as _;
use std::sync::Arc;

use http::StatusCode;
use http::header::{HeaderName, HeaderValue};

use crate::refusal::{Answer, DPOP_NONCE, Scheme};
use crate::token::VerifiedToken;

pub const X_AUTH_SUBJECT: HeaderName = HeaderName::from_static("x-auth-subject");
pub const X_AUTH_SCHEME: HeaderName = HeaderName::from_static("x-auth-scheme");
pub const X_AUTH_CLAIMS: HeaderName = HeaderName::from_static("x-auth-claims");

/// A request that may pass.
#[derive(Debug, Clone)]
pub enum Allow {
    /// A public route: no credentials were looked at.
    Anonymous,
    /// A verified token that met the route's requirements; with `dpop.nonce`, the nonce
    /// the client should put in its next proof.
    Token { scheme: Scheme, token: Arc<VerifiedToken>, next_nonce: Option<String> },
}

impl Allow {
    /// Status 200 and the upstream headers.
    pub fn respond(&self) -> Answer {
        let mut headers = match self {
            Allow::Anonymous => vec![
                (X_AUTH_SUBJECT, HeaderValue::from_static("")),
                (X_AUTH_SCHEME, HeaderValue::from_static("")),
                (X_AUTH_CLAIMS, HeaderValue::from_static("")),
            ],
            Allow::Token { scheme, token, .. } => vec![
                (X_AUTH_SUBJECT, header_value(&encode_subject(token.subject()))),
                (X_AUTH_SCHEME, HeaderValue::from_static(scheme.as_str())),
                (X_AUTH_CLAIMS, header_value(token.claims_b64())),
            ],
        };
        if let Allow::Token { next_nonce: Some(nonce), .. } = self {
            headers.push((DPOP_NONCE, header_value(nonce)));
        }
        Answer { status: StatusCode::OK, headers, body: String::new() }
    }
}

/// Values here are visible ASCII by construction; an empty value is the safe fallback.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Percent-encodes every byte outside `!`..`~`, and `%`.
pub fn encode_subject(subject: &str) -> std::borrow::Cow<'_, str> {
    let plain = |b: u8| (0x21..=0x7E).contains(&b) && b != b'%';
    if subject.bytes().all(plain) {
        return subject.into();
    }
    let mut out = String::with_capacity(subject.len() * 3);
    for b in subject.bytes() {
        if plain(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::encode_subject;

    #[test]
    fn plain_subjects_pass_unchanged() {
        assert_eq!(encode_subject("auth0|5f7c8ec7c33c6c004bbafe82"), "auth0|5f7c8ec7c33c6c004bbafe82");
    }

    #[test]
    fn non_ascii_spaces_and_percent_are_percent_encoded() {
        assert_eq!(encode_subject("élodie"), "%C3%A9lodie");
        assert_eq!(encode_subject("a b%"), "a%20b%25");
    }
}
