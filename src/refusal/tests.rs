use super::*;

fn settings(dpop: DpopMode) -> ChallengeSettings {
    ChallengeSettings {
        realm: "api".into(),
        dpop,
        dpop_algs: "ES256 PS256".into(),
        invalid_request_status: StatusCode::BAD_REQUEST,
    }
}

fn challenges(answer: &Answer) -> Vec<&str> {
    answer.headers.iter().filter(|(n, _)| *n == WWW_AUTHENTICATE).map(|(_, v)| v.to_str().unwrap()).collect()
}

#[test]
fn missing_credentials_get_bare_challenges_bearer_first() {
    let answer = respond(&Refusal::new(Reason::MissingCredentials), &settings(DpopMode::Allowed));
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenges(&answer), vec![r#"Bearer realm="api""#, r#"DPoP algs="ES256 PS256""#]);
    assert_eq!(answer.body, r#"{"error":"unauthorized","error_description":"no access token"}"#.to_string() + "\n");
}

#[test]
fn dpop_disabled_offers_only_the_bearer_challenge() {
    let answer = respond(&Refusal::new(Reason::MissingCredentials), &settings(DpopMode::Disabled));
    assert_eq!(challenges(&answer), vec![r#"Bearer realm="api""#]);
}

#[test]
fn dpop_required_offers_only_the_dpop_challenge() {
    let answer = respond(&Refusal::new(Reason::MissingCredentials), &settings(DpopMode::Required));
    assert_eq!(challenges(&answer), vec![r#"DPoP algs="ES256 PS256""#]);
    let route = Refusal::new(Reason::MissingCredentials).with_dpop_required(true);
    assert_eq!(challenges(&respond(&route, &settings(DpopMode::Allowed))), vec![r#"DPoP algs="ES256 PS256""#]);
}

#[test]
fn invalid_token_goes_on_the_scheme_used_and_that_challenge_comes_first() {
    let bearer = Refusal::new(Reason::Expired).with_scheme(Some(Scheme::Bearer));
    assert_eq!(
        challenges(&respond(&bearer, &settings(DpopMode::Allowed))),
        vec![
            r#"Bearer realm="api", error="invalid_token", error_description="token expired""#,
            r#"DPoP algs="ES256 PS256""#,
        ]
    );
    let dpop = Refusal::new(Reason::Expired).with_scheme(Some(Scheme::DPoP));
    assert_eq!(
        challenges(&respond(&dpop, &settings(DpopMode::Allowed))),
        vec![
            r#"DPoP error="invalid_token", error_description="token expired", algs="ES256 PS256""#,
            r#"Bearer realm="api""#,
        ]
    );
}

#[test]
fn insufficient_scope_is_403_with_the_scope_in_the_challenge() {
    let refusal =
        Refusal::new(Reason::InsufficientScope { scope: "write:admin read".into() }).with_scheme(Some(Scheme::Bearer));
    let answer = respond(&refusal, &settings(DpopMode::Disabled));
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenges(&answer),
        vec![
            r#"Bearer realm="api", error="insufficient_scope", error_description="insufficient scope", scope="write:admin read""#
        ]
    );
}

#[test]
fn invalid_request_status_follows_the_setting() {
    let refusal = Refusal::new(Reason::TwoAuthorizationHeaders);
    assert_eq!(respond(&refusal, &settings(DpopMode::Disabled)).status, StatusCode::BAD_REQUEST);
    let mut compat = settings(DpopMode::Disabled);
    compat.invalid_request_status = StatusCode::UNAUTHORIZED;
    let answer = respond(&refusal, &compat);
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&answer),
        vec![r#"Bearer realm="api", error="invalid_request", error_description="more than one Authorization header""#]
    );
}

#[test]
fn outages_are_503_with_retry_after_and_no_challenge() {
    let answer = respond(&Refusal::new(Reason::NoIssuerKeys), &settings(DpopMode::Allowed));
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(challenges(&answer).is_empty());
    assert!(answer.headers.iter().any(|(n, v)| *n == RETRY_AFTER && v == "5"));
    assert_eq!(
        answer.body,
        r#"{"error":"temporarily_unavailable","error_description":"issuer keys not available"}"#.to_string() + "\n"
    );
}

#[test]
fn a_misconfigured_gateway_is_a_500_without_challenge() {
    for reason in [Reason::GatewayHeadersMissing, Reason::UntrustedGateway] {
        let answer = respond(&Refusal::new(reason.clone()), &settings(DpopMode::Allowed));
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR, "{reason:?}");
        assert!(challenges(&answer).is_empty(), "{reason:?}");
        assert!(reason.is_outage(), "{reason:?}: counted as an error, not a deny");
    }
}

#[test]
fn default_deny_is_a_403_without_challenge() {
    let answer = respond(&Refusal::new(Reason::NoRouteAllows), &settings(DpopMode::Allowed));
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(challenges(&answer).is_empty());
}

#[test]
fn bad_proofs_are_invalid_dpop_proof_on_the_dpop_challenge() {
    let refusal = Refusal::new(Reason::ProofReplayed).with_scheme(Some(Scheme::DPoP));
    let answer = respond(&refusal, &settings(DpopMode::Allowed));
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&answer),
        vec![
            r#"DPoP error="invalid_dpop_proof", error_description="DPoP proof replayed", algs="ES256 PS256""#,
            r#"Bearer realm="api""#,
        ]
    );
}

/// Every reason, so the charset and uniqueness checks below cover the whole table.
fn all_reasons() -> Vec<Reason> {
    use Reason::*;
    vec![
        MissingCredentials,
        UnsupportedScheme,
        MalformedAuthorization,
        ProofWithoutToken,
        TwoAuthorizationHeaders,
        MultipleCredentials,
        EmptyToken,
        DpopDisabled,
        BearerNotAllowed,
        ProofWithBearer,
        MissingProof,
        MultipleProofs,
        BadForwardedHeader,
        BadMethodOverride,
        ConflictingHost,
        OversizedRequest,
        AmbiguousPath,
        GatewayHeadersMissing,
        UntrustedGateway,
        TokenTooLarge,
        MalformedToken,
        MalformedHeader,
        AlgorithmNotAllowed,
        CriticalHeader,
        WrongTokenType,
        UnknownKey,
        KeyAlgorithmMismatch,
        BadSignature,
        MalformedClaims,
        WrongIssuer,
        WrongAudience,
        Expired,
        NotYetValid,
        MissingClaim,
        BadSubject,
        UnusableConfirmation,
        BoundTokenAsBearer,
        InvalidActClaim,
        ProofTooLarge,
        MalformedProof,
        WrongProofType,
        ProofAlgorithmNotAllowed,
        BadProofKey,
        ProofCriticalHeader,
        BadProofSignature,
        ProofClaimMissing,
        MalformedProofClaim,
        WrongProofMethod,
        WrongProofUrl,
        ProofNotYetValid,
        ProofTooOld,
        WrongAccessTokenHash,
        ProofReplayed,
        KeyBindingMismatch,
        TokenNotBound,
        ReplayStoreFull,
        ReplayStoreUnavailable,
        UseDpopNonce { nonce: "n".into() },
        InsufficientScope { scope: "s".into() },
        MissingPermission,
        WrongOrganization,
        ClaimMismatch,
        ActorNotAllowed,
        IssuerNotAllowed,
        NoRouteAllows,
        ExchangeRefused { code: "invalid_grant".into() },
        ExchangeRateLimited { retry_after: 30 },
        ExchangeUnavailable,
        NoIssuerKeys,
    ]
}

#[test]
fn every_reason_with_a_row_in_facts_is_listed_above() {
    // The compiler makes every variant have a row in `Reason::facts`; this keeps the hand
    // list above from missing one, so the table-wide tests below cover new reasons too.
    let source = include_str!("../refusal.rs");
    let start = source.find("fn facts(&self) -> Facts {").expect("facts");
    let end = start + source[start..].find("Facts { answer, description, label }").expect("facts' end");
    let rows = &source[start..end];
    let listed = all_reasons();
    assert_eq!(rows.matches(" => ").count(), listed.len(), "a reason in facts is missing from all_reasons");
    for reason in &listed {
        assert!(rows.contains(&format!("\"{}\")", reason.label())), "{reason:?} has no row in facts");
    }
}

#[test]
fn every_description_fits_the_rfc_6750_charset() {
    for reason in all_reasons() {
        let d = reason.description();
        assert!(
            !d.is_empty() && d.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)),
            "{reason:?}: {d:?}"
        );
    }
}

#[test]
fn every_label_is_distinct_snake_case() {
    let mut labels: Vec<&str> = all_reasons().iter().map(Reason::label).collect();
    assert!(labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    let total = labels.len();
    labels.sort();
    labels.dedup();
    assert_eq!(labels.len(), total);
}

#[test]
fn no_reason_turns_into_a_success_status() {
    for reason in all_reasons() {
        let answer = respond(&Refusal::new(reason.clone()), &settings(DpopMode::Allowed));
        assert!(answer.status.as_u16() >= 400, "{reason:?}");
    }
}

#[test]
fn use_dpop_nonce_carries_the_fresh_nonce() {
    let refusal = Refusal::new(Reason::UseDpopNonce { nonce: "abc_-123".into() }).with_scheme(Some(Scheme::DPoP));
    let answer = respond(&refusal, &settings(DpopMode::Allowed));
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenges(&answer)[0],
        r#"DPoP error="use_dpop_nonce", error_description="DPoP nonce required", algs="ES256 PS256""#
    );
    assert!(answer.headers.iter().any(|(n, v)| *n == DPOP_NONCE && v == "abc_-123"));
}

#[test]
fn exchange_failures_answer_as_the_contract_says() {
    let refused =
        respond(&Refusal::new(Reason::ExchangeRefused { code: "invalid_grant".into() }), &settings(DpopMode::Allowed));
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(challenges(&refused).is_empty());
    assert_eq!(refused.body, r#"{"error":"exchange_refused","error_description":"invalid_grant"}"#.to_string() + "\n");

    let limited = respond(&Refusal::new(Reason::ExchangeRateLimited { retry_after: 42 }), &settings(DpopMode::Allowed));
    assert_eq!(limited.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(limited.headers.iter().any(|(n, v)| *n == RETRY_AFTER && v == "42"));
    assert_eq!(limited.headers.iter().filter(|(n, _)| *n == RETRY_AFTER).count(), 1);

    let down = respond(&Refusal::new(Reason::ExchangeUnavailable), &settings(DpopMode::Allowed));
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.headers.iter().any(|(n, v)| *n == RETRY_AFTER && v == "5"));
    assert!(challenges(&down).is_empty());
}
