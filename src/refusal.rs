//! Every way a check can fail, and the one place that turns a failure into an HTTP answer.
//!
//! [`Reason`] has one variant per exact cause. [`respond`] maps it to a status, an error
//! code, `WWW-Authenticate` challenge(s) and a JSON body:
//! - RFC 6750 §3 and §3.1: `Bearer realm="…"`, `error`, `error_description`, `scope`;
//!   no error code when the request carried no credentials.
//! - RFC 9449 §7.1: `DPoP algs="…"`, with the error on the challenge of the scheme the
//!   request used, that challenge first (nginx before 1.23 passes only the first header).
//!
//! Descriptions come from a fixed table: nothing from the request is ever echoed, so a
//! challenge stays well-formed whatever the token holds. Logging and counting happen where
//! the decision is returned ([`crate::decision`]), not here: this conversion is pure.

use http::StatusCode;
use http::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};

/// The authentication scheme a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    DPoP,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Bearer => "Bearer",
            Scheme::DPoP => "DPoP",
        }
    }
}

/// How DPoP is configured; decides which challenges a 401 carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpopMode {
    /// The DPoP scheme is refused; only Bearer challenges.
    Disabled,
    /// Bearer and DPoP both accepted; a 401 carries both challenges.
    Allowed,
    /// Bearer refused; a 401 carries the DPoP challenge only.
    Required,
}

/// The error codes of RFC 6750 §3.1 and RFC 9449 §7.1 and §9.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
    InvalidDpopProof,
    UseDpopNonce,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
        }
    }
}

/// Why a request was refused. Each variant says when it happens and what the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    // --- The request (credentials and gateway headers) ---
    /// No `Authorization` header. 401, bare challenge(s) (RFC 6750 §3.1).
    MissingCredentials,
    /// `Authorization` with a scheme tollgate does not accept (e.g. Basic). 401, bare challenge(s).
    UnsupportedScheme,
    /// An `Authorization` header that is not visible ASCII. 400 `invalid_request`.
    MalformedAuthorization,
    /// A `DPoP` proof but no `Authorization` header carrying the token. 400 `invalid_request`.
    ProofWithoutToken,
    /// More than one `Authorization` header. 400 `invalid_request`.
    TwoAuthorizationHeaders,
    /// One `Authorization` header holding several credentials (`Bearer a, Bearer b`). 400 `invalid_request`.
    MultipleCredentials,
    /// `Bearer` or `DPoP` with no token after it. 400 `invalid_request`.
    EmptyToken,
    /// The DPoP scheme while `dpop.enabled = false`. 400 `invalid_request`.
    DpopDisabled,
    /// The Bearer scheme where DPoP is required. 401, bare DPoP challenge.
    BearerNotAllowed,
    /// A `DPoP` proof header next to the Bearer scheme. 400 `invalid_request`.
    ProofWithBearer,
    /// The DPoP scheme without a `DPoP` proof header. 400 `invalid_request`.
    MissingProof,
    /// More than one `DPoP` header, or one holding several proofs. 400 `invalid_request`.
    MultipleProofs,
    /// A gateway header that cannot describe one request: repeated, or a list where one
    /// value belongs (`X-Forwarded-Host: a, b`), an unknown scheme, a bad method. 400 `invalid_request`.
    BadForwardedHeader,
    /// A request description larger than a gateway forwards (gRPC `CheckRequest` headers
    /// or path past their bounds). 400 `invalid_request`.
    OversizedRequest,
    /// The host nginx routed on (`X-Original-Host`: an absolute-form request target's)
    /// is not the `Host` header's (`X-Forwarded-Host`). 400 `invalid_request`.
    ConflictingHost,
    /// A method override (`X-HTTP-Method-Override` and the like, `_method`) that is not a
    /// method token, or more of them than a client needs. 400 `invalid_request`.
    BadMethodOverride,
    /// An original path that the upstream might read differently from tollgate: encoded
    /// `/`, `\`, NUL or dot segments. 400 `invalid_request`.
    AmbiguousPath,
    /// A trusted gateway sent no method or URI header of its dialect (`proxy.gateway`).
    /// 500: the gateway is misconfigured; never judged as a request for `/auth`.
    GatewayHeadersMissing,
    /// A peer outside `proxy.trusted` sent its gateway's method or URI header: the gateway
    /// is missing from the trust list. 500, logged with the peer; never judged as a
    /// request for `/auth`, which would skip every route rule.
    UntrustedGateway,

    // --- The access token ---
    /// The token is longer than 8 KiB; refused before any decoding. 401 `invalid_token`.
    TokenTooLarge,
    /// Not a compact JWS of three strict base64url segments. 401 `invalid_token`.
    MalformedToken,
    /// The JOSE header is not a JSON object of the right shape (types, duplicates). 401 `invalid_token`.
    MalformedHeader,
    /// `alg` is `none`, an HMAC, or not in `issuer.algorithms`. 401 `invalid_token`.
    AlgorithmNotAllowed,
    /// The header carries `crit`; tollgate understands no extension. 401 `invalid_token`.
    CriticalHeader,
    /// `typ` is neither `at+jwt` (RFC 9068) nor `JWT`. 401 `invalid_token`.
    WrongTokenType,
    /// No issuer key has the token's `kid`, even after a (rate-limited) refetch. 401 `invalid_token`.
    UnknownKey,
    /// The `kid` names an issuer key of another type than `alg` (RFC 8725 §3.1). 401 `invalid_token`.
    KeyAlgorithmMismatch,
    /// The signature does not verify under the issuer key. 401 `invalid_token`.
    BadSignature,
    /// The payload is not a JSON object, or a claim has the wrong JSON type. 401 `invalid_token`.
    MalformedClaims,
    /// `iss` is not exactly the configured issuer. 401 `invalid_token`.
    WrongIssuer,
    /// `aud` names none of the configured audiences. 401 `invalid_token`.
    WrongAudience,
    /// `exp` is at or before now (minus leeway). 401 `invalid_token`.
    Expired,
    /// `nbf` is after now (plus leeway). 401 `invalid_token`.
    NotYetValid,
    /// A required claim (`exp`, `iat`, `sub`, or one of `issuer.required_claims`) is absent. 401 `invalid_token`.
    MissingClaim,
    /// `sub` holds control characters, which would corrupt `X-Auth-Subject`. 401 `invalid_token`.
    BadSubject,
    /// `cnf` is present but holds no usable `jkt` (RFC 7800): the binding cannot be checked. 401 `invalid_token`.
    UnusableConfirmation,
    /// `act` (RFC 8693 §4.1) is not an object with a string `sub`, or nests deeper than
    /// [`crate::delegation::MAX_DEPTH`]. 401 `invalid_token`.
    InvalidActClaim,
    /// A DPoP-bound token (`cnf.jkt`) presented with the Bearer scheme (RFC 9449 §7.2). 401 `invalid_token`.
    BoundTokenAsBearer,

    // --- The DPoP proof (RFC 9449 §4.3), each 401 `invalid_dpop_proof` unless noted ---
    /// The proof is longer than 8 KiB; refused before any decoding.
    ProofTooLarge,
    /// Not a compact JWS of three strict base64url segments with JSON-object header and payload.
    MalformedProof,
    /// `typ` is not `dpop+jwt` (§4.3 step 4).
    WrongProofType,
    /// `alg` is `none`, an HMAC, or not in `dpop.algorithms` (§4.3 step 5).
    ProofAlgorithmNotAllowed,
    /// `jwk` is absent, not a public key of a type matching `alg`, or not a valid key (§4.3 step 7).
    BadProofKey,
    /// The proof header carries `crit`.
    ProofCriticalHeader,
    /// The signature does not verify under the proof's `jwk` (§4.3 step 6).
    BadProofSignature,
    /// `jti`, `htm`, `htu` or `iat` (or `ath`) is absent (§4.2).
    ProofClaimMissing,
    /// A proof claim has the wrong JSON type, or `jti` is empty or too long (§11.1).
    MalformedProofClaim,
    /// `htm` is not the original method, compared case-sensitively (§4.3 step 8).
    WrongProofMethod,
    /// `htu` is not the original URL after RFC 3986 normalization, or names an origin
    /// outside `proxy.public_origins` (§4.3 step 9).
    WrongProofUrl,
    /// `iat` lies further in the future than `dpop.iat_leeway`, or the proof's `exp` passed.
    ProofNotYetValid,
    /// `iat` lies further in the past than `dpop.iat_offset` (§4.3 step 11).
    ProofTooOld,
    /// `ath` is not base64url(SHA-256(access token)) (§4.3 step 12).
    WrongAccessTokenHash,
    /// The proof's `jti` was already used with this key within the proof window (§11.1).
    ProofReplayed,
    /// The token's `cnf.jkt` is not the thumbprint of the proof's key (§4.3 step 12). 401 `invalid_token`.
    KeyBindingMismatch,
    /// The DPoP scheme with a token that has no `cnf.jkt` (§7.1). 401 `invalid_token`.
    TokenNotBound,
    /// `dpop.nonce` is on and the proof carries no nonce, or a stale or foreign one (§9).
    /// 401 `use_dpop_nonce` with a fresh `DPoP-Nonce`.
    UseDpopNonce { nonce: String },
    /// The replay store holds as many live proofs as it may; nothing is evicted. 503.
    ReplayStoreFull,
    /// The replay store cannot be reached (Redis down). 503; Bearer requests are unaffected.
    ReplayStoreUnavailable,

    // --- The route ---
    /// The token lacks scopes the route requires. 403 `insufficient_scope` with `scope="…"`.
    InsufficientScope { scope: String },
    /// The `permissions` claim lacks one the route requires. 403 `insufficient_scope`.
    MissingPermission,
    /// The `org_id` claim is absent or not one of the route's organizations. 403 `insufficient_scope`.
    WrongOrganization,
    /// A claim the route requires is absent or has another value. 403 `insufficient_scope`.
    ClaimMismatch,
    /// The route has `issuers` and the token comes from another configured issuer. 403
    /// `insufficient_scope`.
    IssuerNotAllowed,
    /// The route has `actors` and the token's current actor (outermost `act.sub`) is
    /// absent or not one of them. 403 `insufficient_scope`.
    ActorNotAllowed,
    /// No route matched and `default = "deny"`. 403, no challenge.
    NoRouteAllows,

    // --- The downstream token (a route's `exchange`) ---
    /// The issuer refused the exchange with this OAuth error code (4xx). 403 with body
    /// `{"error": "exchange_refused", "error_description": code}`, no challenge.
    ExchangeRefused { code: String },
    /// The token endpoint answered 429: no calls for `retry_after` seconds. 503 with that
    /// `Retry-After`.
    ExchangeRateLimited { retry_after: i64 },
    /// The token endpoint is unknown, unreachable, slow past the timeout, failing (5xx) or
    /// answered something unusable. 503 with `Retry-After`.
    ExchangeUnavailable,

    // --- tollgate itself ---
    /// No issuer keys loaded yet (start-up, issuer unreachable). 503 with `Retry-After`.
    NoIssuerKeys,
}

/// What status class and error code a reason gets on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    BadRequest,
    Unauthorized,
    Forbidden,
    Unavailable,
    GatewayError,
}

/// A reason's row in [`Reason::facts`].
struct Facts {
    answer: (Status, Option<ErrorCode>),
    description: &'static str,
    label: &'static str,
}

// The answers, by the status and error code they put on the wire.
const UNAUTHORIZED: (Status, Option<ErrorCode>) = (Status::Unauthorized, None);
const INVALID_REQUEST: (Status, Option<ErrorCode>) = (Status::BadRequest, Some(ErrorCode::InvalidRequest));
const GATEWAY_ERROR: (Status, Option<ErrorCode>) = (Status::GatewayError, None);
const INVALID_TOKEN: (Status, Option<ErrorCode>) = (Status::Unauthorized, Some(ErrorCode::InvalidToken));
const INVALID_DPOP_PROOF: (Status, Option<ErrorCode>) = (Status::Unauthorized, Some(ErrorCode::InvalidDpopProof));
const USE_DPOP_NONCE: (Status, Option<ErrorCode>) = (Status::Unauthorized, Some(ErrorCode::UseDpopNonce));
const INSUFFICIENT_SCOPE: (Status, Option<ErrorCode>) = (Status::Forbidden, Some(ErrorCode::InsufficientScope));
const FORBIDDEN: (Status, Option<ErrorCode>) = (Status::Forbidden, None);
const UNAVAILABLE: (Status, Option<ErrorCode>) = (Status::Unavailable, None);

impl Reason {
    /// Everything fixed about a reason, in one row per reason: the answer (RFC 6750 §3.1,
    /// RFC 9449 §7.1), the `error_description` (RFC 6750 §3 charset: no `"` and no `\`),
    /// and the stable snake_case name for logs and the `reason` metric label.
    fn facts(&self) -> Facts {
        use Reason::*;
        let (answer, description, label) = match self {
            MissingCredentials => (UNAUTHORIZED, "no access token", "missing_credentials"),
            UnsupportedScheme => (UNAUTHORIZED, "unsupported authentication scheme", "unsupported_scheme"),
            MalformedAuthorization => (INVALID_REQUEST, "malformed Authorization header", "malformed_authorization"),
            ProofWithoutToken => (INVALID_REQUEST, "DPoP proof without an access token", "proof_without_token"),
            TwoAuthorizationHeaders => {
                (INVALID_REQUEST, "more than one Authorization header", "two_authorization_headers")
            }
            MultipleCredentials => {
                (INVALID_REQUEST, "more than one credential in the Authorization header", "multiple_credentials")
            }
            EmptyToken => (INVALID_REQUEST, "empty access token", "empty_token"),
            DpopDisabled => (INVALID_REQUEST, "DPoP is not enabled", "dpop_disabled"),
            BearerNotAllowed => (UNAUTHORIZED, "DPoP is required", "bearer_not_allowed"),
            ProofWithBearer => (INVALID_REQUEST, "DPoP proof sent with the Bearer scheme", "proof_with_bearer"),
            MissingProof => (INVALID_REQUEST, "DPoP scheme without a DPoP proof", "missing_proof"),
            MultipleProofs => (INVALID_REQUEST, "more than one DPoP proof", "multiple_proofs"),
            BadForwardedHeader => (INVALID_REQUEST, "invalid forwarded request header", "bad_forwarded_header"),
            BadMethodOverride => (INVALID_REQUEST, "invalid method override", "bad_method_override"),
            ConflictingHost => {
                (INVALID_REQUEST, "request target and Host header name different hosts", "conflicting_host")
            }
            OversizedRequest => (INVALID_REQUEST, "request description too large", "oversized_request"),
            AmbiguousPath => (INVALID_REQUEST, "ambiguous request path", "ambiguous_path"),
            GatewayHeadersMissing => {
                (GATEWAY_ERROR, "gateway did not describe the original request", "gateway_headers_missing")
            }
            UntrustedGateway => {
                (GATEWAY_ERROR, "gateway not trusted to describe the original request", "untrusted_gateway")
            }
            TokenTooLarge => (INVALID_TOKEN, "access token too large", "token_too_large"),
            MalformedToken => (INVALID_TOKEN, "malformed access token", "malformed_token"),
            MalformedHeader => (INVALID_TOKEN, "malformed token header", "malformed_header"),
            AlgorithmNotAllowed => (INVALID_TOKEN, "token algorithm not allowed", "algorithm_not_allowed"),
            CriticalHeader => (INVALID_TOKEN, "unsupported critical header", "critical_header"),
            WrongTokenType => (INVALID_TOKEN, "wrong token type", "wrong_token_type"),
            UnknownKey => (INVALID_TOKEN, "unknown signing key", "unknown_key"),
            KeyAlgorithmMismatch => (INVALID_TOKEN, "signing key does not fit the algorithm", "key_algorithm_mismatch"),
            BadSignature => (INVALID_TOKEN, "invalid signature", "bad_signature"),
            MalformedClaims => (INVALID_TOKEN, "malformed token claims", "malformed_claims"),
            WrongIssuer => (INVALID_TOKEN, "wrong issuer", "wrong_issuer"),
            WrongAudience => (INVALID_TOKEN, "wrong audience", "wrong_audience"),
            Expired => (INVALID_TOKEN, "token expired", "expired"),
            NotYetValid => (INVALID_TOKEN, "token not yet valid", "not_yet_valid"),
            MissingClaim => (INVALID_TOKEN, "required claim missing", "missing_claim"),
            BadSubject => (INVALID_TOKEN, "invalid subject", "bad_subject"),
            UnusableConfirmation => (INVALID_TOKEN, "unsupported token binding", "unusable_confirmation"),
            BoundTokenAsBearer => (INVALID_TOKEN, "DPoP-bound token sent as a Bearer token", "bound_token_as_bearer"),
            InvalidActClaim => (INVALID_TOKEN, "invalid act claim", "invalid_act_claim"),
            ProofTooLarge => (INVALID_DPOP_PROOF, "DPoP proof too large", "proof_too_large"),
            MalformedProof => (INVALID_DPOP_PROOF, "malformed DPoP proof", "malformed_proof"),
            WrongProofType => (INVALID_DPOP_PROOF, "wrong DPoP proof type", "wrong_proof_type"),
            ProofAlgorithmNotAllowed => {
                (INVALID_DPOP_PROOF, "DPoP proof algorithm not allowed", "proof_algorithm_not_allowed")
            }
            BadProofKey => (INVALID_DPOP_PROOF, "invalid DPoP proof key", "bad_proof_key"),
            ProofCriticalHeader => {
                (INVALID_DPOP_PROOF, "unsupported critical header in DPoP proof", "proof_critical_header")
            }
            BadProofSignature => (INVALID_DPOP_PROOF, "invalid DPoP proof signature", "bad_proof_signature"),
            ProofClaimMissing => (INVALID_DPOP_PROOF, "DPoP proof claim missing", "proof_claim_missing"),
            MalformedProofClaim => (INVALID_DPOP_PROOF, "malformed DPoP proof claim", "malformed_proof_claim"),
            WrongProofMethod => (INVALID_DPOP_PROOF, "DPoP proof htm mismatch", "wrong_proof_method"),
            WrongProofUrl => (INVALID_DPOP_PROOF, "DPoP proof htu mismatch", "wrong_proof_url"),
            ProofNotYetValid => (INVALID_DPOP_PROOF, "DPoP proof issued in the future", "proof_not_yet_valid"),
            ProofTooOld => (INVALID_DPOP_PROOF, "DPoP proof too old", "proof_too_old"),
            WrongAccessTokenHash => (INVALID_DPOP_PROOF, "DPoP proof ath mismatch", "wrong_access_token_hash"),
            ProofReplayed => (INVALID_DPOP_PROOF, "DPoP proof replayed", "proof_replayed"),
            KeyBindingMismatch => (INVALID_TOKEN, "invalid DPoP key binding", "key_binding_mismatch"),
            UseDpopNonce { .. } => (USE_DPOP_NONCE, "DPoP nonce required", "use_dpop_nonce"),
            TokenNotBound => (INVALID_TOKEN, "access token is not DPoP-bound", "token_not_bound"),
            ReplayStoreFull => (UNAVAILABLE, "DPoP replay store full", "replay_store_full"),
            ReplayStoreUnavailable => (UNAVAILABLE, "DPoP replay store unavailable", "replay_store_unavailable"),
            InsufficientScope { .. } => (INSUFFICIENT_SCOPE, "insufficient scope", "insufficient_scope"),
            MissingPermission => (INSUFFICIENT_SCOPE, "required permission missing", "missing_permission"),
            WrongOrganization => (INSUFFICIENT_SCOPE, "organization not allowed", "wrong_organization"),
            ClaimMismatch => (INSUFFICIENT_SCOPE, "required claim value missing", "claim_mismatch"),
            ActorNotAllowed => (INSUFFICIENT_SCOPE, "actor not allowed", "actor_not_allowed"),
            IssuerNotAllowed => (INSUFFICIENT_SCOPE, "issuer not allowed", "issuer_not_allowed"),
            NoRouteAllows => (FORBIDDEN, "no route allows this request", "no_route_allows"),
            ExchangeRefused { .. } => (FORBIDDEN, "the issuer refused the token exchange", "exchange_refused"),
            ExchangeRateLimited { .. } => {
                (UNAVAILABLE, "token exchange rate-limited by the issuer", "exchange_rate_limited")
            }
            ExchangeUnavailable => (UNAVAILABLE, "token exchange unavailable", "exchange_unavailable"),
            NoIssuerKeys => (UNAVAILABLE, "issuer keys not available", "no_issuer_keys"),
        };
        Facts { answer, description, label }
    }

    /// The status and error code this cause is answered with.
    fn answer(&self) -> (Status, Option<ErrorCode>) {
        self.facts().answer
    }

    /// The fixed `error_description`.
    pub fn description(&self) -> &'static str {
        self.facts().description
    }

    /// A stable snake_case name for logs and the `reason` metric label.
    pub fn label(&self) -> &'static str {
        self.facts().label
    }

    /// tollgate could not decide (no keys, replay store down or full, gateway misconfigured):
    /// the fault is not the client's.
    pub fn is_outage(&self) -> bool {
        matches!(self.answer().0, Status::Unavailable | Status::GatewayError)
    }

    /// The error code on the wire, if any.
    pub fn code(&self) -> Option<ErrorCode> {
        self.answer().1
    }
}

/// A refused check: the reason, and what the challenge needs to know about the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    reason: Reason,
    scheme: Option<Scheme>,
    dpop_required: bool,
}

impl Refusal {
    pub fn new(reason: Reason) -> Self {
        Self { reason, scheme: None, dpop_required: false }
    }

    /// The scheme the request used: its challenge carries the error and comes first.
    pub fn with_scheme(mut self, scheme: Option<Scheme>) -> Self {
        self.scheme = scheme;
        self
    }

    /// The matched route requires DPoP: offer only the DPoP challenge.
    pub fn with_dpop_required(mut self, required: bool) -> Self {
        self.dpop_required = required;
        self
    }

    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    pub fn scheme(&self) -> Option<Scheme> {
        self.scheme
    }
}

impl From<Reason> for Refusal {
    fn from(reason: Reason) -> Self {
        Refusal::new(reason)
    }
}

/// Deployment settings that shape challenges; built once from the config.
#[derive(Debug, Clone)]
pub struct ChallengeSettings {
    /// `realm` of the Bearer challenge.
    pub realm: String,
    pub dpop: DpopMode,
    /// Space-separated proof algorithms for `DPoP algs="…"`.
    pub dpop_algs: String,
    /// 400 by RFC 6750; 401 for gateways that pass only 401 and 403 (nginx).
    pub invalid_request_status: StatusCode,
}

/// An HTTP answer, independent of the front door: the HTTP server sends it as it is, the
/// gRPC door translates it. The headers are already the map the HTTP response takes over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// RFC 9449 §8.1: the header that carries a server nonce.
pub const DPOP_NONCE: HeaderName = HeaderName::from_static("dpop-nonce");

/// Seconds a client or gateway should wait before retrying a 503.
const RETRY_AFTER_SECONDS: &str = "5";

/// Turns a refusal into status, challenge(s) and JSON body. The only code that writes a challenge.
pub fn respond(refusal: &Refusal, settings: &ChallengeSettings) -> Answer {
    let reason = &refusal.reason;
    let (class, code) = reason.answer();
    let status = match class {
        Status::BadRequest => settings.invalid_request_status,
        Status::Unauthorized => StatusCode::UNAUTHORIZED,
        Status::Forbidden => StatusCode::FORBIDDEN,
        Status::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Status::GatewayError => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut headers = HeaderMap::with_capacity(3);
    let challenged =
        matches!(class, Status::BadRequest | Status::Unauthorized) || code == Some(ErrorCode::InsufficientScope);
    if challenged {
        let offered = offered_schemes(refusal, settings);
        // The error belongs to the scheme the request used, when that scheme is offered.
        let errored = refusal.scheme.filter(|s| offered.contains(s)).unwrap_or(offered[0]);
        let others = offered.iter().copied().filter(|s| *s != errored);
        for scheme in std::iter::once(errored).chain(others) {
            let error = if scheme == errored { code } else { None };
            // Built in one `String` whose buffer the `HeaderValue` takes over, no copy.
            if let Ok(value) = HeaderValue::try_from(challenge(scheme, error, reason, settings)) {
                headers.append(WWW_AUTHENTICATE, value);
            }
        }
    }
    if let Reason::UseDpopNonce { nonce } = reason
        && let Ok(value) = HeaderValue::from_str(nonce)
    {
        headers.append(DPOP_NONCE, value);
    }
    match reason {
        Reason::ExchangeRateLimited { retry_after } => {
            headers.append(RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        _ if class == Status::Unavailable => {
            headers.append(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
        }
        _ => {}
    }
    let (error, description) = match reason {
        // The issuer's own code: checked against RFC 6749 §5.2's characters when read.
        Reason::ExchangeRefused { code } => ("exchange_refused", code.as_str()),
        _ => (code.map_or_else(|| fallback_error(class), ErrorCode::as_str), reason.description()),
    };
    Answer { status, headers, body: json_body(error, description) }
}

/// `{"error":"…","error_description":"…"}` and a newline, as `serde_json` writes that object (members in
/// this order, compact, strings escaped by `serde_json`), into one buffer.
fn json_body(error: &str, description: &str) -> String {
    let mut body = Vec::with_capacity(40 + error.len() + description.len());
    body.extend_from_slice(b"{\"error\":");
    let _ = serde_json::to_writer(&mut body, error);
    body.extend_from_slice(b",\"error_description\":");
    let _ = serde_json::to_writer(&mut body, description);
    // A newline after the object, as a terminal and `curl` expect of a text body.
    body.extend_from_slice(b"}\n");
    // serde_json writes UTF-8 only.
    String::from_utf8(body).unwrap_or_default()
}

/// The `error` member of the body when RFC 6750 gives no code.
fn fallback_error(class: Status) -> &'static str {
    match class {
        Status::Unauthorized => "unauthorized",
        Status::Forbidden => "access_denied",
        Status::Unavailable => "temporarily_unavailable",
        Status::GatewayError | Status::BadRequest => "server_error",
    }
}

/// The schemes whose challenges a refusal carries, in the configured order.
fn offered_schemes(refusal: &Refusal, settings: &ChallengeSettings) -> &'static [Scheme] {
    match settings.dpop {
        DpopMode::Disabled => &[Scheme::Bearer],
        DpopMode::Required => &[Scheme::DPoP],
        DpopMode::Allowed if refusal.dpop_required => &[Scheme::DPoP],
        DpopMode::Allowed => &[Scheme::Bearer, Scheme::DPoP],
    }
}

/// One challenge: the scheme, then its parameters joined with `, `, written into one buffer.
fn challenge(scheme: Scheme, code: Option<ErrorCode>, reason: &Reason, settings: &ChallengeSettings) -> String {
    let mut out = String::with_capacity(96);
    out.push_str(scheme.as_str());
    let mut separator = " ";
    let mut param = |name: &str, value: &str| {
        out.push_str(separator);
        out.push_str(name);
        out.push_str("=\"");
        out.push_str(value);
        out.push('"');
        separator = ", ";
    };
    if scheme == Scheme::Bearer {
        param("realm", &settings.realm);
    }
    if let Some(code) = code {
        param("error", code.as_str());
        param("error_description", reason.description());
        if let Reason::InsufficientScope { scope } = reason {
            param("scope", scope);
        }
    }
    if scheme == Scheme::DPoP {
        param("algs", &settings.dpop_algs);
    }
    out
}

#[cfg(test)]
mod tests;
