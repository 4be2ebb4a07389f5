use super::*;
use http::HeaderValue;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    map
}

fn reason(pairs: &[(&str, &str)]) -> Reason {
    extract(&headers(pairs)).unwrap_err().reason().clone()
}

#[test]
fn bearer_scheme_is_case_insensitive_and_allows_several_spaces() {
    for value in ["Bearer abc", "bearer abc", "BEARER abc", "Bearer   abc"] {
        assert_eq!(extract(&headers(&[("authorization", value)])), Ok(Credentials::Bearer { token: "abc" }), "{value}");
    }
}

#[test]
fn dpop_scheme_takes_the_proof_header() {
    let h = headers(&[("authorization", "DPoP tok"), ("dpop", "proof")]);
    assert_eq!(extract(&h), Ok(Credentials::DPoP { token: "tok", proof: "proof" }));
    let h = headers(&[("authorization", "dpop tok"), ("dpop", "proof")]);
    assert_eq!(extract(&h).map(|c| c.scheme()), Ok(Scheme::DPoP));
}

#[test]
fn no_authorization_is_missing_credentials() {
    assert_eq!(reason(&[]), Reason::MissingCredentials);
}

#[test]
fn a_proof_without_a_token_is_refused() {
    assert_eq!(reason(&[("dpop", "proof")]), Reason::ProofWithoutToken);
}

#[test]
fn unsupported_schemes_are_treated_as_no_credentials() {
    assert_eq!(reason(&[("authorization", "Basic dXNlcjpwYXNz")]), Reason::UnsupportedScheme);
    assert_eq!(reason(&[("authorization", "Token abc")]), Reason::UnsupportedScheme);
    assert_eq!(reason(&[("authorization", "Bearerabc")]), Reason::UnsupportedScheme);
}

#[test]
fn an_empty_token_is_refused() {
    assert_eq!(reason(&[("authorization", "Bearer")]), Reason::EmptyToken);
    assert_eq!(reason(&[("authorization", "Bearer ")]), Reason::EmptyToken);
}

#[test]
fn two_authorization_headers_are_refused() {
    assert_eq!(
        reason(&[("authorization", "Bearer a"), ("authorization", "Bearer b")]),
        Reason::TwoAuthorizationHeaders
    );
}

#[test]
fn two_credentials_in_one_header_are_refused() {
    assert_eq!(reason(&[("authorization", "Bearer a, Bearer b")]), Reason::MultipleCredentials);
}

#[test]
fn a_proof_next_to_bearer_is_refused() {
    let refusal = extract(&headers(&[("authorization", "Bearer a"), ("dpop", "p")])).unwrap_err();
    assert_eq!(refusal.reason(), &Reason::ProofWithBearer);
    assert_eq!(refusal.scheme(), Some(Scheme::Bearer));
}

#[test]
fn dpop_without_a_proof_is_refused() {
    assert_eq!(reason(&[("authorization", "DPoP a")]), Reason::MissingProof);
}

#[test]
fn two_proofs_are_refused() {
    assert_eq!(reason(&[("authorization", "DPoP a"), ("dpop", "p1"), ("dpop", "p2")]), Reason::MultipleProofs);
    assert_eq!(reason(&[("authorization", "DPoP a"), ("dpop", "p1, p2")]), Reason::MultipleProofs);
}

#[test]
fn non_ascii_authorization_is_malformed() {
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, HeaderValue::from_bytes(b"Bearer \xff").unwrap());
    assert_eq!(extract(&h).unwrap_err().reason(), &Reason::MalformedAuthorization);
}

#[test]
fn schemes_are_admitted_per_dpop_mode() {
    let bearer = Credentials::Bearer { token: "t" };
    let dpop = Credentials::DPoP { token: "t", proof: "p" };
    assert!(admit(&bearer, DpopMode::Allowed).is_ok());
    assert!(admit(&dpop, DpopMode::Allowed).is_ok());
    assert_eq!(admit(&dpop, DpopMode::Disabled).unwrap_err().reason(), &Reason::DpopDisabled);
    assert_eq!(admit(&bearer, DpopMode::Required).unwrap_err().reason(), &Reason::BearerNotAllowed);
}
