//! tollgate: a forward-auth sidecar that verifies OAuth 2.0 / OIDC access tokens.
//!
//! A gateway asks `/auth` whether a request may pass. Every check is the same pipeline,
//! sequenced in one place, [`decision::Checker::decide`]:
//!
//! ```text
//! gateway request ─► gateway ─► policy::route ─► credentials ─► token ─────► dpop::proof ─► policy::check ─► replay, nonce ─► allow
//!                    original    which route     scheme, token   issuer keys,  htm, htu,      scopes, perms,  one use per     headers for
//!                    request     applies         and proof       claims, cache ath, jkt       org, claims     proof           the upstream
//!                        └──────────────────── any stage may refuse: refusal::Refusal ─► refusal::respond ─┘
//! ```
//!
//! - [`gateway`] rebuilds the original request from the one dialect named by `proxy.gateway`.
//! - [`credentials`] reads `Authorization` / `DPoP` (RFC 6750 §2.1, RFC 9449 §7.1).
//! - [`token`] verifies the access token (RFC 9068, RFC 7519, RFC 8725) with keys from
//!   [`issuer`] (OIDC discovery, JWKS) and remembers successes in [`token_cache`]; [`jws`]
//!   is the strict compact-JWS framing it shares with DPoP proofs.
//! - [`dpop`] verifies proofs (RFC 9449 §4.3), records them once ([`dpop::replay`], in
//!   memory or Redis) and mints server nonces ([`dpop::nonce`]).
//! - [`policy`] picks the route and checks its requirements.
//! - [`allow`] turns a success into upstream headers; [`refusal`] turns every failure into
//!   status, `WWW-Authenticate` and body, in one function.
//! - [`server`] is the thin HTTP adapter and [`grpc`] the Envoy ext_authz gRPC one; [`metrics`] names every metric; [`dev`] runs a
//!   development issuer and builds proofs for `tollgate dev` and `tollgate proof`;
//!   [`health`] is the probe behind `tollgate health`.

pub mod allow;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod decision;
pub mod delegation;
pub mod dev;
pub mod dpop;
pub mod exchange;
pub mod gateway;
pub mod grpc;
pub mod health;
pub mod issuer;
pub mod jws;
pub mod metrics;
pub mod policy;
pub mod refusal;
pub mod server;
pub mod token;
pub mod token_cache;
