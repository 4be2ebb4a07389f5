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
use crate::config::Route;
use crate::credentials::{self, Credentials};
use crate::dpop::check::ProofCheck;
use crate::dpop::nonce::Nonces;
use crate::dpop::proof::ProofSettings;
use crate::dpop::replay::ReplayStore;
use crate::exchange::Exchanger;
use crate::gateway::{self, CheckRequest, OriginalRequest};
use crate::issuer::Issuer;
pub use crate::metrics::Door;
use crate::metrics::Metrics;
use crate::policy::{self, Policy, Requirement};
use crate::refusal::{self, Answer, ChallengeSettings, DpopMode, Reason, Refusal};
use crate::token::{self, VerifiedToken};
use crate::token_cache::{self, TokenCache};
use crate::verifier::Verifier;

/// Everything a check needs, shared by all requests.
pub struct Checker {
    config: Config,
    policy: Policy,
    challenge: ChallengeSettings,
    dpop: ProofCheck,
    tokens: Verifier,
    state: State,
    clock: Arc<dyn Clock>,
}

/// What a checker holds beyond its settings: keys, caches, the replay store. A reload
/// ([`crate::reload`]) builds a new checker that keeps each part whose settings did not
/// change.
#[derive(Clone)]
pub struct State {
    /// One per configured issuer, in the config's order; the token's `iss` picks one.
    pub issuers: Vec<Arc<Issuer>>,
    /// Verified tokens, each tagged with the index of its issuer in `issuers`.
    pub cache: Arc<TokenCache>,
    pub replay: Arc<ReplayStore>,
    /// With `dpop.nonce`: mints and checks server nonces.
    pub nonces: Option<Arc<Nonces>>,
    /// With `[client]`: obtains the downstream tokens of routes with an `exchange`.
    pub exchanger: Option<Arc<Exchanger>>,
    pub metrics: Arc<Metrics>,
}

impl Checker {
    /// A checker for `config` over `state`, which must have been made for it
    /// ([`State::fresh`], or [`crate::reload`] keeping parts of an older one).
    pub fn new(config: Config, state: State, clock: Arc<dyn Clock>) -> Self {
        Checker {
            policy: Policy::new(config.routes.clone(), config.default, config.path_matching),
            challenge: config.challenge_settings(),
            dpop: ProofCheck {
                settings: ProofSettings {
                    algorithms: config.dpop.algorithms.clone(),
                    iat_leeway: config.dpop.iat_leeway,
                    iat_offset: config.dpop.iat_offset,
                },
                public_origins: config.proxy.public_origins.clone(),
                nonces: state.nonces.clone(),
                replay: state.replay.clone(),
            },
            tokens: Verifier {
                issuers: state.issuers.clone(),
                cache: state.cache.clone(),
                keep: claims_to_keep(&config),
                max_leeway: config.issuers.iter().map(|i| i.leeway).max().unwrap_or_default(),
                metrics: state.metrics.clone(),
            },
            config,
            state,
            clock,
        }
    }

    /// A checker with fresh state for `config`; call [`Issuer::run`] to load the keys.
    pub fn from_config(
        config: Config,
        timings: crate::issuer::Timings,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, StartError> {
        let state = State::fresh(&config, timings, Arc::new(Metrics::new()), &clock)?;
        Ok(Arc::new(Checker::new(config, state, clock)))
    }

    /// The state this checker holds, for a reload to keep what it can.
    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The first configured issuer (the only one with `[issuer]`).
    pub fn issuer(&self) -> &Arc<Issuer> {
        &self.state.issuers[0]
    }

    /// Every configured issuer, in the config's order.
    pub fn issuers(&self) -> &[Arc<Issuer>] {
        &self.state.issuers
    }

    /// The Prometheus text, with the key sets' ages as of now.
    pub fn render_metrics(&self) -> String {
        for issuer in &self.state.issuers {
            if let Some(age) = issuer.keys_age() {
                let label = [issuer.config().issuer.as_str()];
                self.state.metrics.issuer_keys_age.with_label_values(&label).set(age.as_secs_f64());
            }
        }
        // The stores' sizes as of now too (`tollgate_replay_store_entries`, `tollgate_token_cache_entries`).
        self.state.metrics.set_sizes(self.state.replay.entries(), self.state.cache.len());
        self.state.metrics.render()
    }

    /// Ready once every issuer has keys (they are kept through later fetch failures); the
    /// error names the issuers still without.
    pub fn ready(&self) -> Result<(), String> {
        let waiting: Vec<&str> =
            self.state.issuers.iter().filter(|i| i.keys().is_none()).map(|i| i.config().issuer.as_str()).collect();
        if waiting.is_empty() { Ok(()) } else { Err(waiting.join(", ")) }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.state.metrics
    }

    /// Drops the cached tokens expired by now (with the largest leeway of any issuer).
    pub fn sweep_token_cache(&self) {
        self.tokens.cache.sweep(self.clock.now(), self.tokens.max_leeway);
    }

    pub fn cache(&self) -> &Arc<TokenCache> {
        &self.state.cache
    }

    /// The HTTP front door: rebuilds the original request from the gateway's dialect,
    /// decides, logs, counts, and answers.
    pub async fn check(&self, request: &CheckRequest) -> Answer {
        let original = gateway::original_request(&self.config.proxy, request);
        match self.judge(Door::Http, request.peer, original, &request.headers).await {
            Ok(allow) => self.allow_answer(allow),
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
        self.state.metrics.check_duration.observe(started.elapsed().as_secs_f64());
        match &decision {
            Ok(_) => self.state.metrics.allowed(door).inc(),
            Err(refusal) => {
                let reason = refusal.reason();
                let outcome = if reason.is_outage() { "error" } else { "deny" };
                self.state.metrics.checks.with_label_values(&[door.label(), outcome, reason.label()]).inc();
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
    pub fn allow_answer(&self, allow: Allow) -> Answer {
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
            let payload = crate::jws::decode(crate::jws::payload_segment(jws)).ok()?;
            let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
            Some(claims.get(name)?.to_string())
        };
        match reason {
            Reason::WrongIssuer => {
                let expected: Vec<&str> = self.state.issuers.iter().map(|i| i.config().issuer.as_str()).collect();
                Some((expected.join(" "), claim(credentials.token(), "iss")?))
            }
            Reason::WrongAudience => {
                let expected: Vec<String> =
                    self.state.issuers.iter().flat_map(|i| i.config().audiences.clone()).collect();
                Some((expected.join(" "), claim(credentials.token(), "aud")?))
            }
            Reason::WrongProofUrl => {
                let Credentials::DPoP { proof, .. } = credentials else { return None };
                let expected = original.and_then(|o| self.dpop.expected_htu(o).ok()).unwrap_or_default();
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
        // One instant for the whole check: the token, the proof's window and its replay
        // record are all judged as of the request's arrival (a key refetch may come between).
        let now = self.clock.now();
        let (token_key, token) = self.tokens.verified(credentials.token(), now).await.map_err(refuse)?;
        let proof = self.dpop.binding(&credentials, &token, original, now).map_err(refuse)?;
        let issuer = &self.state.issuers[token.issuer_index()].config().issuer;
        policy::check(routes, &token, issuer).map_err(refuse)?;
        let next_nonce = match proof {
            // After every other check, so a refused request never takes a replay slot.
            Some(proof) => self.dpop.use_once(&proof, now).await.map_err(refuse)?,
            None => None,
        };
        let downstream =
            self.downstream_tokens(routes, credentials.token(), &token_key, &token).await.map_err(refuse)?;
        // The token verified (or was cached under its hash), so its payload segment is the
        // verified JSON: the cache need not keep a copy.
        let payload = crate::jws::payload_segment(credentials.token());
        // base64url: always a valid header value.
        let claims = HeaderValue::from_str(payload).unwrap_or_else(|_| HeaderValue::from_static(""));
        Ok(Allow::Token { scheme, token, claims, next_nonce, downstream })
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
            let exchanger = self.state.exchanger.as_ref().ok_or(Reason::ExchangeUnavailable)?;
            let index = self.policy.index_of(route);
            let value = exchanger.token(index, exchange, raw, token_key, token.expires_at()).await?;
            headers.push((exchange.header.clone(), value));
        }
        Ok(headers)
    }
}

/// The top-level claims that routes and `[headers]` read: a verified token keeps these.
pub fn claims_to_keep(config: &Config) -> Vec<String> {
    token::claims_to_keep(
        policy::claims_read(&config.routes)
            .iter()
            .map(String::as_str)
            .chain(config.headers.iter().map(|h| h.claim.as_str())),
    )
}

/// Why a checker could not be built: the config validated, but the runtime could not
/// make what it asks for. Startup stops with it; a reload keeps the old config.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "no HTTP client for issuer {issuer}: {} (are CA roots readable? /etc/ssl/certs/ca-certificates.crt, or SSL_CERT_FILE)",
        crate::issuer::cause(error)
    )]
    IssuerClient { issuer: String, error: reqwest::Error },
    #[error("[client]: {0}")]
    Exchanger(#[from] crate::exchange::ExchangerError),
}

impl State {
    /// New state for `config`: issuers without keys, empty caches and replay store.
    pub fn fresh(
        config: &Config,
        timings: crate::issuer::Timings,
        metrics: Arc<Metrics>,
        clock: &Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let cache = Arc::new(TokenCache::new(config.cache.max_tokens));
        let issuers = config
            .issuers
            .iter()
            .map(|settings| issuer(settings, &timings, &cache, &metrics).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(State {
            exchanger: exchanger(config, issuers.first(), &metrics, clock)?,
            replay: Arc::new(ReplayStore::new(&config.dpop.replay)),
            nonces: nonces(config),
            issuers,
            cache,
            metrics,
        })
    }
}

/// A new issuer, without keys yet.
pub fn issuer(
    settings: &crate::config::IssuerConfig,
    timings: &crate::issuer::Timings,
    cache: &Arc<TokenCache>,
    metrics: &Arc<Metrics>,
) -> Result<Issuer, StartError> {
    Issuer::new(settings.clone(), timings.clone(), cache.clone(), metrics.clone())
        .map_err(|error| StartError::IssuerClient { issuer: settings.issuer.clone(), error })
}

/// With `dpop.nonce`, the nonce minter under `dpop.nonce_secret`.
pub fn nonces(config: &Config) -> Option<Arc<Nonces>> {
    config.dpop.nonce.as_ref().map(|secret| Arc::new(Nonces::new(secret.expose())))
}

/// With `[client]`, the exchanger: tollgate's client at the first issuer.
pub fn exchanger(
    config: &Config,
    first_issuer: Option<&Arc<Issuer>>,
    metrics: &Arc<Metrics>,
    clock: &Arc<dyn Clock>,
) -> Result<Option<Arc<Exchanger>>, StartError> {
    let Some((client, issuer)) = config.client.as_ref().zip(first_issuer) else { return Ok(None) };
    let exchanger = Exchanger::new(client, issuer.clone(), metrics.clone(), clock.clone())?;
    Ok(Some(Arc::new(exchanger)))
}
