//! Challenge formatting (`tollgate::refusal::respond`) over every `Reason`, with the
//! deployment settings and the data a refusal carries (the scope of a route, a nonce).
//!
//! Input: a first byte picking the reason (modulo their number), a second with flags
//! (bits 0-1: the scheme the request used, none, Bearer or DPoP; bit 2: the route
//! requires DPoP; bits 3-4: `dpop` disabled, allowed or required; bit 5:
//! `invalid_request_status = 401`; bits 6-7: which proof algorithms), then lines: the
//! realm, the route's scopes (space-separated), and the rest: the nonce secret, which is
//! also an exchange's error code, its first four bytes the exchange's `retry_after`.
//!
//! The realm and scopes reach `respond` only through the config, so they are loaded with
//! `Config::load` first. When the config accepts them (what a deployment can reach):
//! every challenge is well-formed (`Scheme k="v", …`, values RFC 6750 §3 quoted text),
//! none is dropped (one per offered scheme, on every 400, 401 and insufficient_scope),
//! exactly one carries the error code and it is the reason's, the scheme the request
//! used comes first when offered, `realm`, `algs` and `scope` are the configured ones,
//! `DPoP-Nonce` is the nonce, a 503 carries a `Retry-After` of digits, and the body is
//! the JSON error. When the config refuses them, the same values are passed directly and
//! only "no panic" is asserted (a realm with bytes over 0x7F, which the config refuses,
//! would make a valid but non-ASCII `HeaderValue`).
#![no_main]

use http::StatusCode;
use libfuzzer_sys::fuzz_target;
use tollgate::config::{Config, ProofAlgorithm};
use tollgate::dpop::nonce::Nonces;
use tollgate::refusal::{self, ChallengeSettings, DpopMode, Reason, Refusal, Scheme};
use tollgate_fuzz::{NOW, text_line};

fuzz_target!(|data: &[u8]| {
    let [pick, flags, rest @ ..] = data else { return };
    let Some((realm, rest)) = text_line(rest) else { return };
    let Some((scopes, rest)) = text_line(rest) else { return };
    let Ok(secret) = std::str::from_utf8(rest) else { return };
    let scheme = [None, Some(Scheme::Bearer), Some(Scheme::DPoP), None][usize::from(flags & 3)];
    let dpop_required = flags & 4 != 0;
    let mode =
        [DpopMode::Disabled, DpopMode::Allowed, DpopMode::Required, DpopMode::Allowed][usize::from(flags >> 3 & 3)];
    let status_401 = flags & 32 != 0;
    let algs: Vec<&str> = match flags >> 6 {
        0 => vec!["ES256"],
        1 => vec!["ES256", "EdDSA"],
        2 => ProofAlgorithm::ALL.iter().map(|alg| alg.name()).collect(),
        _ => vec!["PS256"],
    };
    let scopes: Vec<&str> = scopes.split(' ').collect();
    let loaded = load(realm, &scopes, mode, status_401, &algs);
    let (settings, scope) = match &loaded {
        Some(config) => (config.challenge_settings(), config.routes[0].scopes.join(" ")),
        None => {
            let settings = ChallengeSettings {
                realm: realm.to_string(),
                dpop: mode,
                dpop_algs: algs.join(" "),
                invalid_request_status: if status_401 { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST },
            };
            (settings, scopes.join(" "))
        }
    };
    let nonce = Nonces::new(secret).issue(NOW);
    let retry_after = i64::from(u32::from_le_bytes(*secret.as_bytes().first_chunk().unwrap_or(&[0; 4])));
    let all = reasons(&scope, &nonce, secret, retry_after);
    let reason = all[usize::from(*pick) % all.len()].clone();
    let refused = Refusal::new(reason).with_scheme(scheme).with_dpop_required(dpop_required);
    let answer = refusal::respond(&refused, &settings);
    if loaded.is_some() {
        well_formed(&refused, dpop_required, &settings, &answer, &scope, &nonce);
    }
});

/// A config with `realm`, a route requiring `scopes`, the DPoP mode and algorithms.
fn load(realm: &str, scopes: &[&str], mode: DpopMode, status_401: bool, algs: &[&str]) -> Option<Config> {
    let quote = |s: &str| serde_json::to_string(s).expect("a JSON string is a TOML string");
    let (enabled, required) = match mode {
        DpopMode::Disabled => (false, false),
        DpopMode::Allowed => (true, false),
        DpopMode::Required => (true, true),
    };
    let scopes: Vec<String> = scopes.iter().map(|s| quote(s)).collect();
    let algs: Vec<String> = algs.iter().map(|s| quote(s)).collect();
    let text = format!(
        "[issuer]\ndomain = \"tenant.auth0.com\"\naudience = \"https://api.example.com\"\n\
         [proxy]\ngateway = \"nginx\"\n\
         [errors]\nrealm = {}\ninvalid_request_status = {}\n\
         [dpop]\nenabled = {enabled}\nrequired = {required}\nalgorithms = [{}]\n\
         [[routes]]\npath_prefix = \"/x\"\nscopes = [{}]\n",
        quote(realm),
        if status_401 { 401 } else { 400 },
        algs.join(", "),
        scopes.join(", "),
    );
    Config::load(&text, &Default::default()).ok()
}

fn well_formed(
    refused: &Refusal,
    dpop_required: bool,
    settings: &ChallengeSettings,
    answer: &refusal::Answer,
    scope: &str,
    nonce: &str,
) {
    let reason = refused.reason();
    let status = answer.status.as_u16();
    assert!(matches!(status, 400 | 401 | 403 | 500 | 503), "status {status}");
    let challenges: Vec<&str> = answer
        .headers
        .iter()
        .filter(|(name, _)| *name == http::header::WWW_AUTHENTICATE)
        .map(|(_, value)| value.to_str().expect("visible ASCII"))
        .collect();
    let offered = match settings.dpop {
        DpopMode::Disabled => vec![Scheme::Bearer],
        DpopMode::Required => vec![Scheme::DPoP],
        DpopMode::Allowed if dpop_required => vec![Scheme::DPoP],
        DpopMode::Allowed => vec![Scheme::Bearer, Scheme::DPoP],
    };
    let challenged = matches!(status, 400 | 401) || (status == 403 && reason.code().is_some());
    assert_eq!(challenges.len(), if challenged { offered.len() } else { 0 }, "{reason:?}: {challenges:?}");
    let mut with_error = 0;
    for (i, challenge) in challenges.iter().enumerate() {
        let (name, params) = parse(challenge).unwrap_or_else(|| panic!("malformed challenge {challenge:?}"));
        if i == 0
            && let Some(used) = refused.scheme().filter(|s| offered.contains(s))
        {
            assert_eq!(name, used.as_str(), "the scheme used comes first");
        }
        let get = |key: &str| params.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        match name {
            "Bearer" => assert_eq!(get("realm"), Some(settings.realm.as_str())),
            "DPoP" => assert_eq!(get("algs"), Some(settings.dpop_algs.as_str())),
            other => panic!("scheme {other}"),
        }
        if let Some(error) = get("error") {
            with_error += 1;
            assert_eq!(Some(error), reason.code().map(|c| c.as_str()));
            assert_eq!(get("error_description"), Some(reason.description()));
            if let Reason::InsufficientScope { .. } = reason {
                assert_eq!(get("scope"), Some(scope));
            }
        }
    }
    if challenged {
        assert_eq!(with_error, usize::from(reason.code().is_some()), "{challenges:?}");
    }
    let header = |name: &str| answer.headers.get(name).map(|v| v.to_str().expect("ASCII"));
    if let Reason::UseDpopNonce { .. } = reason {
        assert_eq!(header("dpop-nonce"), Some(nonce));
    }
    if status == 503 {
        let retry = header("retry-after").expect("a 503 says when to retry");
        assert!(!retry.is_empty() && retry.bytes().all(|b| b.is_ascii_digit()), "Retry-After: {retry}");
    }
    let body: serde_json::Value = serde_json::from_str(&answer.body).expect("a JSON body");
    let description = match reason {
        Reason::ExchangeRefused { code } => code.as_str(),
        other => other.description(),
    };
    assert!(body["error"].is_string() && body["error_description"] == description, "{body}");
}

/// `Scheme k="v", k="v"`: the scheme and its parameters, values being RFC 6750 §3 quoted
/// text (`%x20-21 / %x23-5B / %x5D-7E`); `None` when the challenge is not of that form.
fn parse(challenge: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let (scheme, mut rest) = challenge.split_once(' ')?;
    let mut params = Vec::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let (value, after) = after.split_once('"')?;
        let quoted = |b: u8| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E);
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') || !value.bytes().all(quoted) {
            return None;
        }
        params.push((key, value));
        rest = match after {
            "" => "",
            _ => after.strip_prefix(", ")?,
        };
    }
    Some((scheme, params))
}

/// Every reason, those that carry data with `scope`, `nonce`, the issuer's exchange error
/// `code` and its `retry_after`.
fn reasons(scope: &str, nonce: &str, code: &str, retry_after: i64) -> Vec<Reason> {
    use Reason::*;
    let all = vec![
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
        OversizedRequest,
        ConflictingHost,
        BadMethodOverride,
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
        InvalidActClaim,
        BoundTokenAsBearer,
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
        MissingPermission,
        WrongOrganization,
        ClaimMismatch,
        ActorNotAllowed,
        IssuerNotAllowed,
        NoRouteAllows,
        NoIssuerKeys,
        UseDpopNonce { nonce: nonce.to_string() },
        InsufficientScope { scope: scope.to_string() },
        ExchangeRefused { code: code.to_string() },
        ExchangeRateLimited { retry_after },
        ExchangeUnavailable,
    ];
    // A new variant must be added above: this match stops compiling until it is.
    for reason in &all {
        match reason {
            MissingCredentials
            | UnsupportedScheme
            | MalformedAuthorization
            | ProofWithoutToken
            | TwoAuthorizationHeaders
            | MultipleCredentials
            | EmptyToken
            | DpopDisabled
            | BearerNotAllowed
            | ProofWithBearer
            | MissingProof
            | MultipleProofs
            | BadForwardedHeader
            | OversizedRequest
            | ConflictingHost
            | BadMethodOverride
            | AmbiguousPath
            | GatewayHeadersMissing
            | UntrustedGateway
            | TokenTooLarge
            | MalformedToken
            | MalformedHeader
            | AlgorithmNotAllowed
            | CriticalHeader
            | WrongTokenType
            | UnknownKey
            | KeyAlgorithmMismatch
            | BadSignature
            | MalformedClaims
            | WrongIssuer
            | WrongAudience
            | Expired
            | NotYetValid
            | MissingClaim
            | BadSubject
            | UnusableConfirmation
            | InvalidActClaim
            | BoundTokenAsBearer
            | ProofTooLarge
            | MalformedProof
            | WrongProofType
            | ProofAlgorithmNotAllowed
            | BadProofKey
            | ProofCriticalHeader
            | BadProofSignature
            | ProofClaimMissing
            | MalformedProofClaim
            | WrongProofMethod
            | WrongProofUrl
            | ProofNotYetValid
            | ProofTooOld
            | WrongAccessTokenHash
            | ProofReplayed
            | KeyBindingMismatch
            | TokenNotBound
            | ReplayStoreFull
            | ReplayStoreUnavailable
            | MissingPermission
            | WrongOrganization
            | ClaimMismatch
            | ActorNotAllowed
            | IssuerNotAllowed
            | NoRouteAllows
            | NoIssuerKeys
            | UseDpopNonce { .. }
            | InsufficientScope { .. }
            | ExchangeRefused { .. }
            | ExchangeRateLimited { .. }
            | ExchangeUnavailable => {}
        }
    }
    all
}
