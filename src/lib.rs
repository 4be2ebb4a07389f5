//! tollgate: a forward-auth sidecar that verifies OAuth 2.0 / OIDC access tokens.
//!
//! A gateway asks `/auth` whether a request may pass. Every check is the same pipeline,
//! sequenced in one place, [`decision::decide`]:
//!
//! ```text
//! gateway request ─► gateway ─► policy::route ─► credentials ─► token (+ token_cache) ─► policy::check ─► allow
//!                    original    which route     scheme, token   issuer keys, claims       scopes          headers
//!                    request     applies                                                                   for upstream
//!                        └──────────────── any stage may refuse: refusal::Refusal ─► refusal::respond ─┘
//! ```
//!
//! - [`gateway`] rebuilds the original request from the one dialect named by `proxy.gateway`.
//! - [`credentials`] reads `Authorization` / `DPoP` (RFC 6750 §2.1, RFC 9449 §7.1).
//! - [`token`] verifies the access token (RFC 9068, RFC 7519, RFC 8725) with keys from
//!   [`issuer`] (OIDC discovery, JWKS) and remembers successes in [`token_cache`].
//! - [`policy`] picks the route and checks its requirements.
//! - [`allow`] turns a success into upstream headers; [`refusal`] turns every failure into
//!   status, `WWW-Authenticate` and body, in one function.
//! - [`server`] is the thin HTTP adapter; [`dev`] runs a development issuer.

pub mod allow;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod decision;
pub mod dev;
pub mod dpop;
pub mod gateway;
pub mod issuer;
pub mod jws;
pub mod metrics;
pub mod policy;
pub mod refusal;
pub mod server;
pub mod token;
pub mod token_cache;
