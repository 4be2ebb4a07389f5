//! One issuer: its OIDC discovery document (OpenID Connect Discovery 1.0 §4) and its key
//! set (RFC 7517), kept fresh in the background.
//!
//! - The discovery `issuer` must equal the configured issuer (§4.3), and `jwks_uri` may
//!   use http only when the issuer itself was written out as http.
//! - Fetches time out after 5 s, read at most 1 MiB, follow no redirect, and are
//!   coalesced: concurrent callers wait for the one fetch in flight.
//! - A new key set replaces the old one atomically; readers never lock. A failed fetch
//!   keeps the old keys (stale-on-error).
//! - Refresh every 10 minutes, or per the JWKS `Cache-Control: max-age` clamped to
//!   [60 s, 24 h]; after a failure, retry with capped exponential backoff.
//! - An unknown `kid` may trigger one refetch at most every 30 s, so a flood of bogus
//!   `kid`s cannot hammer the issuer; callers inside the cooldown are answered at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde_json::Value;
use tokio::sync::Mutex as AsyncMutex;

use crate::config::IssuerConfig;
pub use crate::jwks::{IssuerKey, KeySet};
use crate::metrics::Metrics;
use crate::token_cache::TokenCache;

/// Fetch and refresh timings; the defaults are those of the contract.
#[derive(Debug, Clone)]
pub struct Timings {
    pub fetch_timeout: Duration,
    pub unknown_kid_cooldown: Duration,
    pub default_refresh: Duration,
    pub min_refresh: Duration,
    pub max_refresh: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
    pub max_body_bytes: usize,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            fetch_timeout: Duration::from_secs(5),
            unknown_kid_cooldown: Duration::from_secs(30),
            default_refresh: Duration::from_secs(600),
            min_refresh: Duration::from_secs(60),
            max_refresh: Duration::from_secs(24 * 3600),
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Why a discovery or JWKS fetch failed. Logged; never shown to clients.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("GET {url}: {message}")]
    Transport { url: String, message: String },
    #[error("GET {url}: status {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: body larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
    #[error("discovery document at {url} is not a JSON object with issuer and jwks_uri")]
    BadDiscovery { url: String },
    #[error("discovery issuer {found:?} is not the configured issuer {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("jwks_uri {0:?} is not https (only an http issuer may use an http jwks_uri)")]
    InsecureJwksUri(String),
    #[error("JWKS at {url}: {error}")]
    Jwks { url: String, error: crate::jwks::JwksError },
}

/// The result of the last fetch, shared by callers that waited on it.
struct FetchState {
    jwks_uri: Option<String>,
    finished: Option<Instant>,
    last: Result<Duration, FetchError>,
}

/// An issuer and its current keys.
pub struct Issuer {
    config: IssuerConfig,
    timings: Timings,
    http: reqwest::Client,
    keys: ArcSwapOption<KeySet>,
    /// When the current keys were fetched: their age is a metric.
    loaded_at: Mutex<Option<Instant>>,
    /// The discovery document's `token_endpoint`, for token exchange.
    token_endpoint: ArcSwapOption<String>,
    fetch: AsyncMutex<FetchState>,
    last_unknown_kid_refetch: Mutex<Option<Instant>>,
    /// The verified-token cache to clear when a key leaves the set: the checker's, which a
    /// reload may replace while this issuer stays.
    cache: ArcSwap<TokenCache>,
    metrics: Arc<Metrics>,
}

impl Issuer {
    /// Fails only when no HTTP client can be built (the TLS backend did not start).
    pub fn new(
        config: IssuerConfig,
        timings: Timings,
        cache: Arc<TokenCache>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        let http = http_client(timings.fetch_timeout)?;
        Ok(Issuer::with_client(config, timings, http, cache, metrics))
    }

    /// The same issuer under new settings (audiences, algorithms, leeway, required
    /// claims), for a reload: it starts with this one's keys, key age, discovery results
    /// and metrics, so no check waits for a fetch.
    pub fn succeed(&self, config: IssuerConfig, cache: Arc<TokenCache>) -> Self {
        let successor =
            Issuer::with_client(config, self.timings.clone(), self.http.clone(), cache, self.metrics.clone());
        successor.keys.store(self.keys.load_full());
        successor.token_endpoint.store(self.token_endpoint.load_full());
        if let (Ok(mut to), Ok(from)) = (successor.loaded_at.lock(), self.loaded_at.lock()) {
            *to = *from;
        }
        successor
    }

    /// An issuer without keys yet, fetching with `http`.
    fn with_client(
        config: IssuerConfig,
        timings: Timings,
        http: reqwest::Client,
        cache: Arc<TokenCache>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Issuer {
            config,
            timings,
            http,
            keys: ArcSwapOption::empty(),
            token_endpoint: ArcSwapOption::empty(),
            loaded_at: Mutex::new(None),
            fetch: AsyncMutex::new(FetchState { jwks_uri: None, finished: None, last: Ok(Duration::ZERO) }),
            last_unknown_kid_refetch: Mutex::new(None),
            cache: ArcSwap::new(cache),
            metrics,
        }
    }

    /// Clear `cache` from now on when a key leaves the set.
    pub fn use_cache(&self, cache: Arc<TokenCache>) {
        self.cache.store(cache);
    }

    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The current keys; `None` until the first successful fetch.
    pub fn keys(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    /// The token endpoint from discovery (https, or http beside an http issuer); `None`
    /// until discovery answered, or when it names none.
    pub fn token_endpoint(&self) -> Option<Arc<String>> {
        self.token_endpoint.load_full()
    }

    /// Keeps the keys fresh forever: first load with backoff, then refresh per max-age.
    pub async fn run(self: Arc<Self>) {
        let mut backoff = self.timings.retry_min;
        let mut healthy = self.keys().is_some();
        // Keys fetched before the loop started (a reload fetches a new issuer's keys
        // before it swaps the config in) stay for their max-age; otherwise fetch now.
        let mut wait = match (healthy, &self.fetch.lock().await.last) {
            (true, Ok(max_age)) => *max_age,
            _ => Duration::ZERO,
        };
        loop {
            tokio::time::sleep(wait).await;
            wait = match self.refresh().await {
                Ok(max_age) => {
                    // The first load and each recovery are logged; quiet refreshes are not.
                    if !healthy {
                        let keys = self.keys().map_or(0, |k| k.len());
                        tracing::info!(issuer = %self.config.issuer, "keys loaded: {keys} keys");
                    }
                    healthy = true;
                    backoff = self.timings.retry_min;
                    max_age
                }
                Err(error) => {
                    self.log_failure(&error, backoff);
                    healthy = false;
                    let wait = backoff;
                    backoff = (backoff * 2).min(self.timings.retry_max);
                    wait
                }
            };
        }
    }

    fn log_failure(&self, error: &FetchError, retry_in: Duration) {
        let issuer = &self.config.issuer;
        match self.keys() {
            Some(_) => tracing::warn!(%issuer, %error, ?retry_in, "issuer key fetch failed; keeping the previous keys"),
            None => {
                tracing::warn!(%issuer, %error, ?retry_in, "issuer key fetch failed; no keys yet, checks answer 503")
            }
        }
    }

    /// On an unknown `kid`: refetch unless one was started within the cooldown, in which
    /// case wait for it if it is still in flight. Returns whether the keys may have changed
    /// since the caller looked, so that it verifies once more.
    pub async fn refetch_for_unknown_kid(&self) -> bool {
        let in_cooldown = {
            let Ok(mut last) = self.last_unknown_kid_refetch.lock() else { return false };
            let now = Instant::now();
            let cooling = last.is_some_and(|t| now.duration_since(t) < self.timings.unknown_kid_cooldown);
            if !cooling {
                *last = Some(now);
            }
            cooling
        };
        if in_cooldown {
            return self.wait_for_fetch_in_flight().await;
        }
        self.refresh().await.is_ok()
    }

    /// Inside the cooldown no new fetch starts, but a fetch already in flight (the one the
    /// first token of a new key started) may bring the key: wait for it, and say whether
    /// there was one, so its callers verify again with the keys it installed.
    async fn wait_for_fetch_in_flight(&self) -> bool {
        if self.fetch.try_lock().is_ok() {
            return false;
        }
        let state = self.fetch.lock().await;
        state.last.is_ok()
    }

    /// Fetches discovery (when needed) and the JWKS, and installs the keys. Concurrent
    /// callers share one fetch. Returns how long the keys may be kept.
    pub async fn refresh(&self) -> Result<Duration, FetchError> {
        let asked = Instant::now();
        let mut state = self.fetch.lock().await;
        if state.finished.is_some_and(|done| done >= asked) {
            return state.last.clone();
        }
        let result = self.fetch_keys(&mut state).await;
        self.metrics.jwks_fetches.with_label_values(&[self.config.issuer.as_str()]).inc();
        if result.is_err() {
            self.metrics.jwks_fetch_failures.with_label_values(&[self.config.issuer.as_str()]).inc();
            state.jwks_uri = None; // discover again next time: the JWKS may have moved
        }
        state.finished = Some(Instant::now());
        state.last = result.clone();
        result
    }

    async fn fetch_keys(&self, state: &mut FetchState) -> Result<Duration, FetchError> {
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => self.discover().await?,
        };
        state.jwks_uri = Some(jwks_uri.clone());
        let (body, max_age) = self.get(&jwks_uri).await?;
        let (keys, skipped) =
            KeySet::parse(&body).map_err(|error| FetchError::Jwks { url: jwks_uri.clone(), error })?;
        for s in &skipped {
            tracing::warn!(issuer = %self.config.issuer, kid = ?s.kid, why = s.why, "skipped a JWKS key");
        }
        self.install(keys);
        Ok(self.refresh_interval(max_age))
    }

    fn install(&self, keys: KeySet) {
        let previous = self.keys.load_full();
        self.metrics.issuer_keys.with_label_values(&[self.config.issuer.as_str()]).set(keys.len() as i64);
        if previous.as_ref().is_some_and(|old| old.loses_keys_in(&keys)) {
            // A key left the set (rotation or compromise): tokens it signed must be re-verified.
            self.cache.load().clear();
            tracing::info!(issuer = %self.config.issuer, "a signing key was removed; verified-token cache cleared");
        }
        self.keys.store(Some(Arc::new(keys)));
        if let Ok(mut loaded) = self.loaded_at.lock() {
            *loaded = Some(Instant::now());
        }
    }

    /// How long ago the current keys were fetched (kept keys grow older while the issuer
    /// is unreachable); `None` before the first load.
    pub fn keys_age(&self) -> Option<Duration> {
        self.loaded_at.lock().ok().and_then(|loaded| loaded.map(|at| at.elapsed()))
    }

    async fn discover(&self) -> Result<String, FetchError> {
        let url = self.config.discovery_url();
        let (body, _) = self.get(&url).await?;
        let bad = || FetchError::BadDiscovery { url: url.clone() };
        let document: Value = serde_json::from_slice(&body).map_err(|_| bad())?;
        let issuer = document.get("issuer").and_then(Value::as_str).ok_or_else(bad)?;
        if issuer != self.config.issuer {
            return Err(FetchError::IssuerMismatch { expected: self.config.issuer.clone(), found: issuer.into() });
        }
        let jwks_uri = document.get("jwks_uri").and_then(Value::as_str).ok_or_else(bad)?;
        let secure = jwks_uri.starts_with("https://");
        let http_allowed = self.config.issuer.starts_with("http://") && jwks_uri.starts_with("http://");
        if !secure && !http_allowed {
            return Err(FetchError::InsecureJwksUri(jwks_uri.into()));
        }
        let token_endpoint = document.get("token_endpoint").and_then(Value::as_str).filter(|url| {
            url.starts_with("https://") || (self.config.issuer.starts_with("http://") && url.starts_with("http://"))
        });
        self.token_endpoint.store(token_endpoint.map(|url| Arc::new(url.to_string())));
        Ok(jwks_uri.to_string())
    }

    /// GET with a size cap; returns the body and the `Cache-Control: max-age`, if any.
    async fn get(&self, url: &str) -> Result<(Vec<u8>, Option<u64>), FetchError> {
        let transport = |e: reqwest::Error| FetchError::Transport { url: url.into(), message: cause(&e) };
        let limit = self.timings.max_body_bytes;
        let mut response = self.http.get(url).send().await.map_err(transport)?;
        if !response.status().is_success() {
            return Err(FetchError::Status { url: url.into(), status: response.status().as_u16() });
        }
        let too_large = || FetchError::TooLarge { url: url.into(), limit };
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let max_age =
            response.headers().get(reqwest::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).and_then(max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, max_age))
    }

    fn refresh_interval(&self, max_age: Option<u64>) -> Duration {
        match max_age {
            None => self.timings.default_refresh,
            Some(seconds) => Duration::from_secs(seconds).clamp(self.timings.min_refresh, self.timings.max_refresh),
        }
    }
}

/// An HTTP client for an issuer's endpoints: `timeout` per request, no redirect followed,
/// tollgate's user agent. Fails only when the TLS backend cannot start.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// What went wrong with a request, without its URL (reqwest's own message repeats it):
/// the kind, then the innermost cause, such as "cannot connect: Connection refused (os
/// error 111)", a DNS or TLS failure, or "timed out".
pub fn cause(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "cannot read the answer"
    } else {
        "request failed"
    };
    let mut root: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(next) = root.and_then(std::error::Error::source) {
        root = Some(next);
    }
    match root.map(ToString::to_string) {
        Some(root) if !error.is_timeout() || !root.contains("timed out") => format!("{kind}: {root}"),
        _ => kind.to_string(),
    }
}

/// `max-age` from a `Cache-Control` value; `no-store` and `no-cache` count as 0.
fn max_age(cache_control: &str) -> Option<u64> {
    cache_control.split(',').map(str::trim).find_map(|directive| {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(0);
        }
        lower.strip_prefix("max-age=").and_then(|v| v.trim_matches('"').parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::max_age;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=300"), Some(300));
        assert_eq!(max_age("Max-Age=\"60\""), Some(60));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("max-age=abc"), None);
        assert_eq!(max_age("public"), None);
    }
}
