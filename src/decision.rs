//! `decide`: the one function that runs the stages in order and returns Allow or Refusal,
//! and [`Checker::check`], which adds the logging and counting and the wire answer.
//!
//! The order is deliberate: the original request first (a misconfigured gateway must fail
//! loudly before anything else), then the route (public routes need no token), then the
//! credentials' framing, the token (cached or verified), the DPoP proof and key binding,
//! the route's requirements, and last the server nonce and the replay store, so that a
//! request refused for any other reason never uses up a proof (RFC 9449 §11.1).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::allow::Allow;
use crate::clock::Clock;
use crate::config::Config;
use crate::credentials::{self, Credentials};
use crate::dpop::nonce::Nonces;
use crate::dpop::proof::{self, Expected, ProofSettings};
use crate::dpop::replay::ReplayStore;
use crate::exchange::Exchanger;
use crate::gateway::{self, CheckRequest, OriginalRequest};
use crate::issuer::Issuer;
use crate::metrics::Metrics;
use crate::policy::{self, Policy, Requirement, Route};
use crate::refusal::{self, Answer, ChallengeSettings, DpopMode, Reason, Refusal};
use crate::token::{self, VerifiedToken};
use crate::token_cache::{self, TokenCache};

/// The front door a check came through: `/auth` over HTTP, or Envoy's gRPC `Check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Http,
    Grpc,
}

impl Door {
    /// The `door` label of `tollgate_checks_total`.
    pub fn label(self) -> &'static str {
        match self {
            Door::Http => "http",
            Door::Grpc => "grpc",
        }
    }
}

/// Everything a check needs, shared by all requests.
pub struct Checker {
    config: Config,
    policy: Policy,
    challenge: ChallengeSettings,
    proof: ProofSettings,
    replay: ReplayStore,
    /// Top-level claims that routes and `[headers]` read, kept in each verified token.
    keep: Vec<String>,
    /// With `dpop.nonce`: mints and checks server nonces.
    nonces: Option<Nonces>,
    /// With `[client]`: obtains the downstream tokens of routes with an `exchange`.
    exchanger: Option<Exchanger>,
    /// One per configured issuer, in the config's order; the token's `iss` picks one.
    issuers: Vec<Arc<Issuer>>,
    /// The largest `leeway` of any issuer: how long the cache may keep a token.
    max_leeway: i64,
    cache: Arc<TokenCache>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
}

impl Checker {
    pub fn new(
        config: Config,
        issuers: Vec<Arc<Issuer>>,
        cache: Arc<TokenCache>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Checker {
            policy: Policy::new(config.routes.clone(), config.default, config.path_matching),
            challenge: config.challenge_settings(),
            proof: ProofSettings {
                algorithms: config.dpop.algorithms.clone(),
                iat_leeway: config.dpop.iat_leeway,
                iat_offset: config.dpop.iat_offset,
            },
            replay: ReplayStore::for_config(&config.dpop.replay_store, config.dpop.replay_capacity),
            keep: token::claims_to_keep(
                policy::claims_read(&config.routes)
                    .iter()
                    .map(String::as_str)
                    .chain(config.headers.iter().map(|h| h.claim.as_str())),
            ),
            nonces: config.dpop.nonce.then(|| Nonces::new(config.dpop.nonce_secret.as_deref().unwrap_or_default())),
            // `[client]` is tollgate's client at the first issuer.
            exchanger: config.client.as_ref().zip(issuers.first()).and_then(|(client, issuer)| {
                Exchanger::new(client, issuer.clone(), metrics.clone(), clock.clone())
                    .inspect_err(|e| tracing::error!(error = %e, "client key unusable: exchanges will answer 503"))
                    .ok()
            }),
            max_leeway: config.issuers.iter().map(|i| i.leeway).max().unwrap_or_default(),
            config,
            issuers,
            cache,
            metrics,
            clock,
        }
    }

    /// A checker with fresh state for `config`; call [`Issuer::run`] to load the keys.
    pub fn from_config(config: Config, timings: crate::issuer::Timings, clock: Arc<dyn Clock>) -> Arc<Self> {
        let metrics = Arc::new(Metrics::new());
        let cache = Arc::new(TokenCache::new(config.cache.max_tokens));
        let issuers = config
            .issuers
            .iter()
            .map(|issuer| Arc::new(Issuer::new(issuer.clone(), timings.clone(), cache.clone(), metrics.clone())))
            .collect();
        Arc::new(Checker::new(config, issuers, cache, metrics, clock))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The first configured issuer (the only one with `[issuer]`).
    pub fn issuer(&self) -> &Arc<Issuer> {
        &self.issuers[0]
    }

    /// Every configured issuer, in the config's order.
    pub fn issuers(&self) -> &[Arc<Issuer>] {
        &self.issuers
    }

    /// The Prometheus text, with the key sets' ages as of now.
    pub fn render_metrics(&self) -> String {
        for issuer in &self.issuers {
            if let Some(age) = issuer.keys_age() {
                let label = [issuer.config().issuer.as_str()];
                self.metrics.issuer_keys_age.with_label_values(&label).set(age.as_secs_f64());
            }
        }
        self.metrics.render()
    }

    /// Ready once every issuer has keys (they are kept through later fetch failures); the
    /// error names the issuers still without.
    pub fn ready(&self) -> Result<(), String> {
        let waiting: Vec<&str> =
            self.issuers.iter().filter(|i| i.keys().is_none()).map(|i| i.config().issuer.as_str()).collect();
        if waiting.is_empty() { Ok(()) } else { Err(waiting.join(", ")) }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn cache(&self) -> &Arc<TokenCache> {
        &self.cache
    }

    /// The HTTP front door: rebuilds the original request from the gateway's dialect,
    /// decides, logs, counts, and answers.
    pub async fn check(&self, request: &CheckRequest) -> Answer {
        let original = gateway::original_request(&self.config.proxy, request);
        match self.judge(Door::Http, request.peer, original, &request.headers).await {
            Ok(allow) => self.allow_answer(&allow),
            Err(refusal) => self.refusal_answer(&refusal),
        }
    }

    /// Decides on the original request as a front door rebuilt it (or the reason it could
    /// not), with the request's headers; logs and counts under `door`.
    pub async fn judge(
        &self,
        door: Door,
        peer: IpAddr,
        original: Result<OriginalRequest, Reason>,
        headers: &HeaderMap,
    ) -> Result<Allow, Refusal> {
        let started = Instant::now();
        let decision = match &original {
            Ok(original) => self.decide_original(original, headers).await,
            Err(reason) => Err(reason.clone().into()),
        };
        self.metrics.check_duration.observe(started.elapsed().as_secs_f64());
        match &decision {
            Ok(_) => self.metrics.allowed(door).inc(),
            Err(refusal) => {
                let reason = refusal.reason();
                let outcome = if reason.is_outage() { "error" } else { "deny" };
                self.metrics.checks.with_label_values(&[door.label(), outcome, reason.label()]).inc();
                self.log_refusal(reason, peer, original.as_ref().ok(), headers);
            }
        }
        self.log_judged(
            door,
            peer,
            original.as_ref().ok(),
            decision.as_ref().map_or_else(|r| r.reason().label(), |_| "allow"),
        );
        decision
    }

    /// The wire answer for a success: 200 and the upstream headers.
    pub fn allow_answer(&self, allow: &Allow) -> Answer {
        allow.respond(&self.config.headers)
    }

    /// The wire answer for a refusal: status, challenges, body.
    pub fn refusal_answer(&self, refusal: &Refusal) -> Answer {
        refusal::respond(refusal, &self.challenge)
    }

    /// At debug, what the check was judged on: the original request, the routes its
    /// readings matched, and the outcome.
    fn log_judged(&self, door: Door, peer: IpAddr, original: Option<&OriginalRequest>, outcome: &str) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let Some(original) = original else {
            return tracing::debug!(door = door.label(), %peer, outcome, "check judged on no request: its description was refused");
        };
        tracing::debug!(
            door = door.label(),
            method = original.method(),
            overrides = original.method_overrides().join(","),
            host = original.host().unwrap_or_default(),
            path = original.path(),
            routes = self.policy.summary(original),
            outcome,
            "check judged"
        );
    }

    /// A misconfigured gateway is an error an operator must see; other refusals are debug.
    fn log_refusal(&self, reason: &Reason, peer: IpAddr, original: Option<&OriginalRequest>, headers: &HeaderMap) {
        let gateway = self.config.proxy.gateway;
        match reason {
            Reason::GatewayHeadersMissing => tracing::error!(?gateway, %peer,
                "a trusted peer sent a check without its gateway's method or URI header: the gateway is misconfigured"),
            Reason::UntrustedGateway => tracing::error!(?gateway, %peer,
                "a peer outside proxy.trusted sent its gateway's method or URI header: add the gateway's address to proxy.trusted"),
            _ if tracing::enabled!(tracing::Level::DEBUG) => {
                let (expected, found) = self.mismatch(reason, original, headers).unwrap_or_default();
                tracing::debug!(reason = reason.label(), %peer, expected, found, "check refused");
            }
            _ => {}
        }
    }

    /// For a refusal on a value that does not match (issuer, audience, `htu`), what was
    /// expected and what the request carried: none of them is a secret. Read again from
    /// the request, only when debug logging is on.
    fn mismatch(
        &self,
        reason: &Reason,
        original: Option<&OriginalRequest>,
        headers: &HeaderMap,
    ) -> Option<(String, String)> {
        let credentials = credentials::extract(headers).ok()?;
        let claim = |jws: &str, name: &str| -> Option<String> {
            let payload = crate::jws::decode(jws.split('.').nth(1)?).ok()?;
            let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
            Some(claims.get(name)?.to_string())
        };
        match reason {
            Reason::WrongIssuer => {
                let expected: Vec<&str> = self.issuers.iter().map(|i| i.config().issuer.as_str()).collect();
                Some((expected.join(" "), claim(credentials.token(), "iss")?))
            }
            Reason::WrongAudience => {
                let expected: Vec<String> = self.issuers.iter().flat_map(|i| i.config().audiences.clone()).collect();
                Some((expected.join(" "), claim(credentials.token(), "aud")?))
            }
            Reason::WrongProofUrl => {
                let Credentials::DPoP { proof, .. } = credentials else { return None };
                let expected = original.and_then(|o| self.expected_htu(o).ok()).unwrap_or_default();
                Some((expected, claim(proof, "htu")?))
            }
            _ => None,
        }
    }

    /// Runs the pipeline on an HTTP check. No logging, no counting: a plain function of
    /// the request.
    pub async fn decide(&self, request: &CheckRequest) -> Result<Allow, Refusal> {
        let original = gateway::original_request(&self.config.proxy, request)?;
        self.decide_original(&original, &request.headers).await
    }

    /// Runs the pipeline on the original request and its headers, whichever door it came
    /// through.
    pub async fn decide_original(&self, original: &OriginalRequest, headers: &HeaderMap) -> Result<Allow, Refusal> {
        let routes = match self.policy.route(original) {
            Requirement::Public => return Ok(Allow::Anonymous),
            Requirement::Deny => return Err(Reason::NoRouteAllows.into()),
            Requirement::Token(routes) => routes,
        };
        let dpop_required = routes.iter().any(|r| r.dpop_required);
        self.authorize(headers, original, &routes, dpop_required).await.map_err(|r| r.with_dpop_required(dpop_required))
    }

    /// Credentials, token, proof, route requirements, and last the proof's one-time use.
    async fn authorize(
        &self,
        headers: &HeaderMap,
        original: &OriginalRequest,
        routes: &[&Route],
        dpop_required: bool,
    ) -> Result<Allow, Refusal> {
        let credentials = credentials::extract(headers)?;
        let mode = if dpop_required { DpopMode::Required } else { self.config.dpop.mode };
        credentials::admit(&credentials, mode)?;
        let scheme = credentials.scheme();
        let refuse = |reason: Reason| Refusal::new(reason).with_scheme(Some(scheme));
        let (token_key, token) = self.verified_token(credentials.token()).await.map_err(refuse)?;
        let proof = match credentials {
            // RFC 9449 §7.2: a bound token must never work as a bearer token.
            Credentials::Bearer { .. } if token.jkt().is_some() => return Err(refuse(Reason::BoundTokenAsBearer)),
            Credentials::Bearer { .. } => None,
            Credentials::DPoP { token: raw, proof } => {
                let jkt = token.jkt().ok_or(Reason::TokenNotBound).map_err(refuse)?;
                Some(self.verified_proof(original, raw, proof, jkt).map_err(refuse)?)
            }
        };
        let issuer = &self.issuers[token.issuer_index()].config().issuer;
        policy::check(routes, &token, issuer).map_err(refuse)?;
        let next_nonce = match proof {
            Some(proof) => self.use_proof(&proof).await.map_err(refuse)?,
            None => None,
        };
        let downstream =
            self.downstream_tokens(routes, credentials.token(), &token_key, &token).await.map_err(refuse)?;
        // The token verified (or was cached under its hash), so its payload segment is the
        // verified JSON: the cache need not keep a copy.
        let claims_b64 = credentials.token().split('.').nth(1).unwrap_or_default().to_string();
        Ok(Allow::Token { scheme, token, claims_b64, next_nonce, downstream })
    }

    /// The routes' downstream tokens, each in its header: last, once everything else
    /// passed, so a refused request never costs a call to the issuer.
    async fn downstream_tokens(
        &self,
        routes: &[&Route],
        raw: &str,
        token_key: &token_cache::Key,
        token: &VerifiedToken,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, Reason> {
        let mut headers = Vec::new();
        for route in routes {
            let Some(exchange) = &route.exchange else { continue };
            let exchanger = self.exchanger.as_ref().ok_or(Reason::ExchangeUnavailable)?;
            let index = self.policy.index_of(route);
            let value = exchanger.token(index, exchange, raw, token_key, token.expires_at()).await?;
            headers.push((exchange.header.clone(), value));
        }
        Ok(headers)
    }

    /// Checks the server nonce and records the proof as used; returns the next nonce.
    /// Runs after every other check, so a refused request never takes a replay slot.
    async fn use_proof(&self, proof: &proof::VerifiedProof) -> Result<Option<String>, Reason> {
        let now = self.clock.now();
        let next_nonce = match &self.nonces {
            Some(nonces) if !proof.nonce().is_some_and(|n| nonces.is_current(n, now)) => {
                return Err(Reason::UseDpopNonce { nonce: nonces.issue(now) });
            }
            Some(nonces) => Some(nonces.issue(now)),
            None => None,
        };
        self.replay.insert(proof.replay_key(), proof.expires_at(&self.proof), now).await?;
        Ok(next_nonce)
    }

    /// The DPoP proof for this request (RFC 9449 §4.3), checked against the URL the
    /// client used and the token's key binding.
    fn verified_proof(
        &self,
        original: &OriginalRequest,
        token: &str,
        proof: &str,
        jkt: &str,
    ) -> Result<proof::VerifiedProof, Reason> {
        let htu = self.expected_htu(original)?;
        let expected = Expected { method: original.method(), htu: &htu, access_token: token, jkt };
        proof::verify(proof, &expected, &self.proof, self.clock.now())
    }

    /// The URL a proof must name: the original request's, normalized as `htu` is, and
    /// only at a pinned public origin when `proxy.public_origins` is set.
    fn expected_htu(&self, original: &OriginalRequest) -> Result<String, Reason> {
        let origin = original.origin().ok_or(Reason::WrongProofUrl)?;
        let pinned = &self.config.proxy.public_origins;
        if !pinned.is_empty() && !pinned.contains(&origin) {
            return Err(Reason::WrongProofUrl);
        }
        crate::dpop::htu::normalize(&format!("{origin}{}", original.path())).ok_or(Reason::WrongProofUrl)
    }

    /// The verified token, from the cache or by verifying it with the keys of the issuer
    /// its `iss` names (with one rate-limited refetch of those keys on an unknown `kid`).
    /// Returns the token's cache key too: the exchange cache is keyed by it.
    async fn verified_token(&self, raw: &str) -> Result<(token_cache::Key, Arc<VerifiedToken>), Reason> {
        if raw.len() > token::MAX_TOKEN_LEN {
            return Err(Reason::TokenTooLarge);
        }
        let now = self.clock.now();
        let key = token_cache::key(raw);
        if let Some(hit) = self.cache.get(&key, now, self.max_leeway) {
            let leeway = self.issuers[hit.issuer_index()].config().leeway;
            if now < hit.expires_at().saturating_add(leeway) {
                self.metrics.token_cache_hits.inc();
                return Ok((key, hit));
            }
        }
        self.metrics.token_cache_misses.inc();
        let index = self.issuer_of(raw)?;
        let issuer = &self.issuers[index];
        let keys = issuer.keys().ok_or(Reason::NoIssuerKeys)?;
        let verified = match token::verify_keeping(raw, &keys, issuer.config(), now, &self.keep) {
            Err(Reason::UnknownKey) if issuer.refetch_for_unknown_kid().await => {
                let keys = issuer.keys().ok_or(Reason::NoIssuerKeys)?;
                token::verify_keeping(raw, &keys, issuer.config(), now, &self.keep)
            }
            other => other,
        }?;
        let verified = Arc::new(verified.from_issuer(index));
        self.cache.insert(key, verified.clone());
        Ok((key, verified))
    }

    /// Which configured issuer a token names in `iss`, decided before any key lookup: a
    /// token from another tenant is a wrong issuer, and costs no fetch and no signature
    /// check. Only on cache misses, which verify a signature anyway.
    fn issuer_of(&self, raw: &str) -> Result<usize, Reason> {
        let iss = token::peek_issuer(raw)?;
        self.issuers.iter().position(|i| i.config().issuer == iss).ok_or(Reason::WrongIssuer)
    }
}
