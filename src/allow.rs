//! A successful check, turned into the headers the gateway hands the upstream.
//!
//! `X-Auth-Actor` is the current actor (outermost `act.sub`, RFC 8693 §4.1) and
//! `X-Auth-Delegation-Chain` every actor, outermost first, joined with `,`: both empty
//! without `act`, both encoded like the subject (commas inside an actor escaped).
//!
//! `X-Auth-Subject` is the `sub` claim; bytes outside visible ASCII, and `%` itself, are
//! percent-encoded (UTF-8), so a subject never carries raw non-ASCII bytes into a header
//! (control characters were refused at verification). `X-Auth-Claims` is the verified
//! payload, base64url without padding. On a public route the headers are present and
//! empty, so a gateway that copies them overwrites anything the client sent.
//!
//! `[headers]` claim headers follow the same rules: strings as they are, numbers and
//! booleans as JSON text, arrays of those joined with `,`; bytes outside visible ASCII,
//! `%` (and `,` inside an array element) percent-encoded, so no control character or raw
//! non-ASCII byte ever reaches a header. A claim that is absent, an object, or would
//! encode to more than 4 KiB gives an empty header.

use std::fmt::Write as _;

use http::StatusCode;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use serde_json::Value;

use crate::config::ClaimHeader;
use crate::refusal::{Answer, DPOP_NONCE, Scheme};
use crate::token::VerifiedToken;

pub const X_AUTH_SUBJECT: HeaderName = HeaderName::from_static("x-auth-subject");
pub const X_AUTH_SCHEME: HeaderName = HeaderName::from_static("x-auth-scheme");
pub const X_AUTH_CLAIMS: HeaderName = HeaderName::from_static("x-auth-claims");
pub const X_AUTH_ACTOR: HeaderName = HeaderName::from_static("x-auth-actor");
pub const X_AUTH_DELEGATION_CHAIN: HeaderName = HeaderName::from_static("x-auth-delegation-chain");

/// A request that may pass.
#[derive(Debug, Clone)]
pub enum Allow {
    /// A public route: no credentials were looked at.
    Anonymous,
    /// A verified token that met the route's requirements; `claims` is the payload segment
    /// of the token as the request carried it (the verified JSON, base64url), as the
    /// `X-Auth-Claims` value; with `dpop.nonce`, the nonce the client should put in its
    /// next proof.
    Token {
        scheme: Scheme,
        token: VerifiedToken,
        claims: HeaderValue,
        next_nonce: Option<String>,
        /// The routes' downstream tokens (`exchange`), each in its header; marked sensitive.
        downstream: Vec<(HeaderName, HeaderValue)>,
    },
}

impl Allow {
    /// Status 200 and the upstream headers, `claim_headers` included.
    pub fn respond(self, claim_headers: &[ClaimHeader]) -> Answer {
        let Allow::Token { scheme, token, claims, next_nonce, downstream } = self else {
            // Every header present and empty, so none a client sent reaches the upstream.
            let empty = || HeaderValue::from_static("");
            let named = [X_AUTH_SUBJECT, X_AUTH_SCHEME, X_AUTH_CLAIMS, X_AUTH_ACTOR, X_AUTH_DELEGATION_CHAIN];
            let claimed = claim_headers.iter().map(|h| h.name.clone());
            let headers = named.into_iter().chain(claimed).map(|name| (name, empty())).collect();
            return Answer { status: StatusCode::OK, headers, body: String::new() };
        };
        let (actor, chain) = match token.actors() {
            [] => (HeaderValue::from_static(""), HeaderValue::from_static("")),
            actors @ [current, ..] => (header_value(&encode_subject(current)), header_value(&delegation_chain(actors))),
        };
        let mut headers = HeaderMap::with_capacity(5 + claim_headers.len() + downstream.len() + 1);
        headers.extend([
            (X_AUTH_SUBJECT, header_value(&encode_subject(token.subject()))),
            (X_AUTH_SCHEME, HeaderValue::from_static(scheme.as_str())),
            (X_AUTH_CLAIMS, claims),
            (X_AUTH_ACTOR, actor),
            (X_AUTH_DELEGATION_CHAIN, chain),
        ]);
        for h in claim_headers {
            let value = token.claim(&h.claim).and_then(claim_text).unwrap_or_default();
            headers.append(h.name.clone(), header_value(&value));
        }
        for (name, value) in downstream {
            headers.append(name, value);
        }
        if let Some(nonce) = next_nonce {
            headers.append(DPOP_NONCE, header_value(&nonce));
        }
        Answer { status: StatusCode::OK, headers, body: String::new() }
    }
}

/// Every actor, the current one first, each encoded like `X-Auth-Subject` and its commas
/// escaped, joined with `,`.
fn delegation_chain(actors: &[Box<str>]) -> String {
    let encoded: Vec<String> = actors.iter().map(|a| encode_subject(a).replace(',', "%2C")).collect();
    encoded.join(",")
}

/// Longest claim header value passed upstream.
pub const MAX_CLAIM_HEADER: usize = 4096;

/// A claim as header text, or `None` when it has no safe text form.
fn claim_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::Array(items) => {
            let parts: Option<Vec<String>> =
                items.iter().map(|v| scalar_text(v).map(|t| t.replace(',', "%2C"))).collect();
            parts?.join(",")
        }
        other => scalar_text(other)?,
    };
    (text.len() <= MAX_CLAIM_HEADER).then_some(text)
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(encode_subject(s).into_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
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
    use super::{claim_text, encode_subject};
    use serde_json::json;

    #[test]
    fn claims_become_header_text() {
        assert_eq!(claim_text(&json!("gold")).as_deref(), Some("gold"));
        assert_eq!(claim_text(&json!(42)).as_deref(), Some("42"));
        assert_eq!(claim_text(&json!(true)).as_deref(), Some("true"));
        assert_eq!(claim_text(&json!(["admin", "a,b", 7])).as_deref(), Some("admin,a%2Cb,7"));
        assert_eq!(claim_text(&json!("x\r\nX-Admin: 1")).as_deref(), Some("x%0D%0AX-Admin:%201"));
        assert_eq!(claim_text(&json!({"a": 1})), None);
        assert_eq!(claim_text(&json!([["nested"]])), None);
        assert_eq!(claim_text(&json!(null)), None);
        assert_eq!(claim_text(&json!("x".repeat(5000))), None);
    }

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
