//! Credentials extraction (`tollgate::credentials::extract`) from arbitrary headers: one
//! `name: value` per line.
//!
//! Asserted: no panic; accepted credentials come from exactly one `Authorization` header
//! naming their scheme (case-insensitively) and ending in the token, a non-empty token
//! without a comma; DPoP credentials from exactly one `DPoP` header, Bearer ones from none.
//! Every refusal turns into an answer whose headers are visible ASCII.
#![no_main]

use http::header::AUTHORIZATION;
use libfuzzer_sys::fuzz_target;
use tollgate::credentials::{self, Credentials};
use tollgate::refusal::{self, ChallengeSettings, DpopMode};

fuzz_target!(|data: &[u8]| {
    let headers = tollgate_fuzz::headers(data);
    match credentials::extract(&headers) {
        Ok(found) => {
            let values: Vec<_> = headers.get_all(AUTHORIZATION).iter().collect();
            assert_eq!(values.len(), 1);
            let authorization = values[0].to_str().expect("visible ASCII");
            let token = found.token();
            assert!(!token.is_empty() && !token.contains(',') && !token.starts_with(' '), "token {token:?}");
            assert!(authorization.ends_with(token));
            let scheme = found.scheme().as_str();
            let named = authorization.get(..scheme.len()).is_some_and(|s| s.eq_ignore_ascii_case(scheme));
            assert!(named && authorization[scheme.len()..].starts_with(' '), "{authorization:?} as {scheme}");
            let proofs: Vec<_> = headers.get_all("dpop").iter().collect();
            match found {
                Credentials::Bearer { .. } => assert!(proofs.is_empty()),
                Credentials::DPoP { proof, .. } => {
                    assert_eq!(proofs.len(), 1);
                    assert_eq!(proofs[0].as_bytes(), proof.as_bytes());
                    assert!(!proof.contains(','));
                }
            }
            for mode in [DpopMode::Disabled, DpopMode::Allowed, DpopMode::Required] {
                if let Err(refused) = credentials::admit(&found, mode) {
                    answer_is_clean(&refused, mode);
                }
            }
        }
        Err(refused) => {
            for mode in [DpopMode::Disabled, DpopMode::Allowed, DpopMode::Required] {
                answer_is_clean(&refused, mode);
            }
        }
    }
});

fn answer_is_clean(refused: &refusal::Refusal, dpop: DpopMode) {
    let settings = ChallengeSettings {
        realm: "api".into(),
        dpop,
        dpop_algs: "ES256".into(),
        invalid_request_status: http::StatusCode::BAD_REQUEST,
    };
    let answer = refusal::respond(refused, &settings);
    assert!(matches!(answer.status.as_u16(), 400 | 401));
    for (_, value) in &answer.headers {
        assert!(value.as_bytes().iter().all(|b| (0x20..=0x7E).contains(b)), "{value:?}");
    }
}
