//! tollgate: a forward-auth sidecar that verifies OAuth 2.0 / OIDC access tokens.
//!
//! A gateway asks `/auth` (or Envoy asks the gRPC `Check`) whether a request may pass.
//! Every check is the same pipeline, sequenced in one place,
//! [`decision::Checker::decide_original`]:
//!
//! ```text
//! front door ─► gateway ─► policy::route ─► credentials ─► token ─────► dpop::proof ─► policy::check ─► replay, nonce ─► exchange ─► allow
//!               original    every reading,  scheme, token   iss picks     htm, htu,      scopes, perms,  one use per     downstream   headers for
//!               request     its routes      and proof       the issuer;   ath, jkt       org, claims,    proof           token        the upstream
//!                                                           keys, claims                 actors, issuers
//!                   └──────────────────── any stage may refuse: refusal::Refusal ─► refusal::respond ─┘
//! ```
//!
//! - [`server`] (HTTP, `/auth`) and [`grpc`] (Envoy ext_authz) are the front doors: thin
//!   adapters into [`decision::Checker::judge`] and back.
//! - [`gateway`] rebuilds the original request from the one dialect named by `proxy.gateway`
//!   (or from Envoy's gRPC fields), with the host the gateway routed on.
//! - [`policy`] holds the request to the routes of every [`policy::readings`] of it (HEAD as
//!   GET, method overrides, folded case, format suffixes) and checks their requirements.
//! - [`credentials`] reads `Authorization` / `DPoP` (RFC 6750 §2.1, RFC 9449 §7.1).
//! - [`token`] verifies the access token (RFC 9068, RFC 7519, RFC 8725) with keys from the
//!   [`issuer`] its `iss` names (OIDC discovery, JWKS), reads `act` ([`delegation`],
//!   RFC 8693 §4.1) and remembers successes in [`token_cache`]; [`jws`] is the strict
//!   compact-JWS framing it shares with DPoP proofs.
//! - [`dpop`] verifies proofs (RFC 9449 §4.3), records them once ([`dpop::replay`], in
//!   memory or Redis) and mints server nonces ([`dpop::nonce`]).
//! - [`exchange`] obtains a route's downstream token at the issuer's token endpoint
//!   (RFC 8693 token exchange, the token vault), cached.
//! - [`allow`] turns a success into upstream headers; [`refusal`] turns every failure into
//!   status, `WWW-Authenticate` and body, in one function.
//! - [`config`] reads and validates the settings; [`metrics`] names every metric; [`dev`]
//!   runs a development issuer (with a token endpoint) and builds proofs for `tollgate dev`
//!   and `tollgate proof`; [`health`] is the probe behind `tollgate health`.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

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
pub mod jwks;
pub mod jws;
pub mod metrics;
pub mod policy;
pub mod refusal;
pub mod reload;
pub mod run;
pub mod server;
pub mod signing;
pub mod token;
pub mod token_cache;
pub mod uri;
pub mod verifier;
