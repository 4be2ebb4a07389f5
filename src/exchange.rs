//! Downstream tokens: once a request is allowed on a route with an `exchange`, tollgate
//! trades the incoming access token at the issuer's token endpoint (from discovery) for a
//! token the upstream can use to call the next API, and hands it over in the route's
//! header. The upstream holds no client secret: tollgate is the confidential client.
//!
//! The grants, with the form fields the seeds' SDK sends:
//! - on-behalf-of (RFC 8693 §2.1, `get_token_on_behalf_of`): `grant_type` token-exchange,
//!   the access token as `subject_token` with `subject_token_type` and
//!   `requested_token_type` both `…:token-type:access_token`, `audience`, `scope`;
//! - a custom exchange profile (`get_token_by_exchange_profile`): the same grant with the
//!   route's `subject_token_type`, optional `audience`, `scope`, `requested_token_type` and
//!   `extra` fields;
//! - the token vault (`get_access_token_for_connection`): Auth0's
//!   federated-connection grant with `connection` and the access token as subject.
//!
//! Client authentication (RFC 6749 §2.3.1, RFC 7523 §2.2): `client_secret_post`,
//! `client_secret_basic`, or `private_key_jwt` (a 60-second assertion signed with the
//! configured key, `aud` the token endpoint).
//!
//! Results are cached per (incoming token, route) until shortly before they expire and
//! never past the incoming token's `exp`; concurrent checks for one key wait for a single
//! call. Failures are cached briefly too, so a burst against a failing issuer makes one
//! call, not one per request; a 429's `Retry-After` stops every call until it has passed.
//! The secret, the key and the tokens are never logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use base64::Engine as _;
use http::HeaderValue;
use quick_cache::sync::Cache;
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::config::{ClientAuth, ClientConfig, Exchange, Grant};
use crate::issuer::Issuer;
use crate::metrics::Metrics;
use crate::refusal::Reason;
use crate::signing::SigningKey;
use crate::token_cache;

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const CONNECTION_GRANT: &str = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
pub const CONNECTION_TOKEN_TYPE: &str = "http://auth0.com/oauth/token-type/federated-connection-access-token";
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The token endpoint's answer is read up to this size.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// `expires_in` when the answer has none (the seed's default).
const DEFAULT_EXPIRES_IN: i64 = 3600;
/// A refusal is remembered this long (seconds): the same token would be refused again.
const REFUSAL_TTL: i64 = 30;
/// An unreachable or failing endpoint is asked again after this long (seconds).
const FAILURE_TTL: i64 = 1;
/// `Retry-After` of a 429 is honoured up to this long (seconds).
const MAX_RETRY_AFTER: i64 = 3600;

/// What a cached exchange gave, and until when (Unix seconds) it may be served.
#[derive(Clone)]
struct Entry {
    outcome: Result<HeaderValue, Reason>,
    until: i64,
}

/// The runtime form of `ClientAuth`: the key parsed once.
enum Credentials {
    Post(String),
    Basic(String),
    Jwt { key: SigningKey, algorithm: &'static str },
}

/// Why an exchanger could not be made (config validation makes both unlikely).
#[derive(Debug, thiserror::Error)]
pub enum ExchangerError {
    #[error("the client key cannot sign: {0}")]
    Key(#[from] crate::signing::SignError),
    #[error("no HTTP client for the token endpoint: {0}")]
    Http(reqwest::Error),
}

/// Trades incoming tokens for downstream ones; one per checker.
pub struct Exchanger {
    client_id: String,
    credentials: Credentials,
    http: reqwest::Client,
    issuer: Arc<Issuer>,
    cache: Cache<(token_cache::Key, usize), Entry>,
    /// No calls before this (Unix seconds): the issuer's last `Retry-After`.
    quiet_until: AtomicI64,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
}

impl Exchanger {
    pub fn new(
        client: &ClientConfig,
        issuer: Arc<Issuer>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ExchangerError> {
        let credentials = match &client.auth {
            ClientAuth::SecretPost(secret) => Credentials::Post(secret.expose().to_string()),
            ClientAuth::SecretBasic(secret) => Credentials::Basic(secret.expose().to_string()),
            ClientAuth::PrivateKeyJwt { pem, algorithm } => {
                Credentials::Jwt { key: crate::config::exchange_signing_key(pem.expose(), algorithm)?, algorithm }
            }
        };
        let http = crate::issuer::http_client(client.timeout).map_err(ExchangerError::Http)?;
        Ok(Exchanger {
            client_id: client.client_id.clone(),
            credentials,
            http,
            issuer,
            cache: Cache::new(client.cache_max.max(1)),
            quiet_until: AtomicI64::new(0),
            metrics,
            clock,
        })
    }

    /// The downstream token for `exchange` (the `route`-th route's) of the verified access
    /// token `subject` (whose token-cache key is `subject_key`), which expires at
    /// `subject_exp`: from the cache, or one call that concurrent checks of the same key share.
    pub async fn token(
        &self,
        route: usize,
        exchange: &Exchange,
        subject: &str,
        subject_key: &token_cache::Key,
        subject_exp: i64,
    ) -> Result<HeaderValue, Reason> {
        let key = (*subject_key, route);
        let now = self.clock.now();
        match self.cache.get(&key) {
            Some(entry) if entry.until > now => return self.hit(entry),
            Some(_) => {
                self.cache.remove(&key);
            }
            None => {}
        }
        let guard = match self.cache.get_value_or_guard_async(&key).await {
            Ok(entry) if entry.until > self.clock.now() => return self.hit(entry),
            Ok(_) => None,
            Err(guard) => Some(guard),
        };
        self.metrics.exchange_cache_misses.inc();
        let started = Instant::now();
        let outcome = self.call(exchange, subject).await;
        self.metrics.exchange_duration.observe(started.elapsed().as_secs_f64());
        let label = match &outcome {
            Ok(_) => "ok",
            Err(Reason::ExchangeRefused { .. }) => "refused",
            Err(Reason::ExchangeRateLimited { .. }) => "rate_limited",
            Err(_) => "unavailable",
        };
        self.metrics.exchanges.with_label_values(&[label]).inc();
        let now = self.clock.now();
        let entry = match outcome {
            Ok((value, expires_in)) => Entry { outcome: Ok(value), until: now + expires_in - margin(expires_in) },
            Err(reason @ Reason::ExchangeRefused { .. }) => Entry { outcome: Err(reason), until: now + REFUSAL_TTL },
            Err(reason @ Reason::ExchangeRateLimited { .. }) => {
                Entry { outcome: Err(reason), until: self.quiet_until.load(Ordering::Relaxed) }
            }
            Err(reason) => Entry { outcome: Err(reason), until: now + FAILURE_TTL },
        };
        let entry = Entry { until: entry.until.min(subject_exp), ..entry };
        if let Some(guard) = guard
            && entry.until > now
        {
            let _ = guard.insert(entry.clone());
        }
        entry.outcome
    }

    fn hit(&self, entry: Entry) -> Result<HeaderValue, Reason> {
        self.metrics.exchange_cache_hits.inc();
        match entry.outcome {
            // A rate limit passes with time, not with the entry: say how long is left.
            Err(Reason::ExchangeRateLimited { .. }) => Err(self.rate_limited(self.clock.now())),
            other => other,
        }
    }

    fn rate_limited(&self, now: i64) -> Reason {
        let left = self.quiet_until.load(Ordering::Relaxed) - now;
        Reason::ExchangeRateLimited { retry_after: left.max(1) }
    }

    /// One call to the token endpoint; the token and its lifetime in seconds.
    async fn call(&self, exchange: &Exchange, subject: &str) -> Result<(HeaderValue, i64), Reason> {
        let now = self.clock.now();
        if now < self.quiet_until.load(Ordering::Relaxed) {
            return Err(self.rate_limited(now));
        }
        let Some(endpoint) = self.issuer.token_endpoint() else {
            tracing::warn!(issuer = %self.issuer.config().issuer, "cannot exchange: discovery named no token endpoint (yet)");
            return Err(Reason::ExchangeUnavailable);
        };
        let (body, basic) = self.form(&exchange.grant, subject, &endpoint, now)?;
        let mut request = self
            .http
            .post(endpoint.as_str())
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json")
            .body(body);
        if let Some(basic) = basic {
            request = request.header(http::header::AUTHORIZATION, basic);
        }
        let response = request.send().await.map_err(|e| {
            tracing::warn!(cause = %crate::issuer::cause(&e), "token exchange failed");
            Reason::ExchangeUnavailable
        })?;
        self.answer(response, now).await
    }

    /// The form body, and the `Authorization` value with `client_secret_basic`.
    fn form(&self, grant: &Grant, subject: &str, endpoint: &str, now: i64) -> Result<(String, Option<String>), Reason> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in grant_fields(grant, subject) {
            form.append_pair(name, value);
        }
        if let Grant::Profile { extra, .. } = grant {
            for (name, values) in extra {
                for value in values {
                    form.append_pair(name, value);
                }
            }
        }
        // The token vault names the client in the form whatever the authentication.
        let client_in_form = matches!(grant, Grant::Connection { .. });
        let basic = match &self.credentials {
            Credentials::Post(secret) => {
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_secret", secret);
                None
            }
            Credentials::Basic(secret) => {
                if client_in_form {
                    form.append_pair("client_id", &self.client_id);
                }
                Some(basic_authorization(&self.client_id, secret))
            }
            Credentials::Jwt { key, algorithm } => {
                let assertion = client_assertion(key, algorithm, &self.client_id, endpoint, now)?;
                form.append_pair("client_id", &self.client_id);
                form.append_pair("client_assertion_type", JWT_BEARER_ASSERTION);
                form.append_pair("client_assertion", &assertion);
                None
            }
        };
        Ok((form.finish(), basic))
    }

    /// Reads the token endpoint's answer (RFC 6749 §5.1 and §5.2).
    async fn answer(&self, response: reqwest::Response, now: i64) -> Result<(HeaderValue, i64), Reason> {
        let status = response.status();
        let retry_after =
            response.headers().get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = read_bounded(response).await;
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let seconds = retry_after.and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(5).clamp(1, MAX_RETRY_AFTER);
            self.quiet_until.store(now + seconds, Ordering::Relaxed);
            tracing::warn!(retry_after = seconds, "token endpoint answered 429: no exchanges until then");
            return Err(Reason::ExchangeRateLimited { retry_after: seconds });
        }
        let json: Option<Value> = body.and_then(|b| serde_json::from_slice(&b).ok());
        if status.is_client_error() {
            let code = json.as_ref().and_then(|j| j.get("error")).and_then(Value::as_str).and_then(error_code);
            return match code {
                Some(code) => {
                    tracing::debug!(status = status.as_u16(), error = code, "token exchange refused");
                    Err(Reason::ExchangeRefused { code: code.to_string() })
                }
                None => {
                    tracing::warn!(status = status.as_u16(), "token endpoint refused without an OAuth error");
                    Err(Reason::ExchangeUnavailable)
                }
            };
        }
        if !status.is_success() {
            tracing::warn!(status = status.as_u16(), "token endpoint failed");
            return Err(Reason::ExchangeUnavailable);
        }
        issued_token(json.as_ref()).ok_or_else(|| {
            tracing::warn!("token endpoint answered 200 without a usable access_token and expires_in");
            Reason::ExchangeUnavailable
        })
    }
}

/// The grant's own form fields, before client authentication and `extra`.
pub fn grant_fields<'a>(grant: &'a Grant, subject: &'a str) -> Vec<(&'static str, &'a str)> {
    let mut fields = Vec::with_capacity(8);
    match grant {
        Grant::OnBehalfOf { audience, scope } => {
            fields.extend([
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", subject),
                ("subject_token_type", ACCESS_TOKEN_TYPE),
                ("requested_token_type", ACCESS_TOKEN_TYPE),
                ("audience", audience.as_str()),
            ]);
            fields.extend(scope.as_deref().map(|s| ("scope", s)));
        }
        Grant::Profile { subject_token_type, audience, scope, requested_token_type, .. } => {
            fields.extend([
                ("grant_type", TOKEN_EXCHANGE),
                ("subject_token", subject),
                ("subject_token_type", subject_token_type.as_str()),
            ]);
            fields.extend(audience.as_deref().map(|a| ("audience", a)));
            fields.extend(scope.as_deref().map(|s| ("scope", s)));
            fields.extend(requested_token_type.as_deref().map(|t| ("requested_token_type", t)));
        }
        Grant::Connection { connection } => fields.extend([
            ("grant_type", CONNECTION_GRANT),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("requested_token_type", CONNECTION_TOKEN_TYPE),
            ("connection", connection.as_str()),
        ]),
    }
    fields
}

/// RFC 6749 §2.3.1: `Basic base64(urlencode(id) ":" urlencode(secret))`.
pub fn basic_authorization(client_id: &str, secret: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(secret));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

/// RFC 7523 §3: a short-lived JWT naming the client as `iss` and `sub`, the token endpoint
/// as `aud`, with a fresh `jti`.
fn client_assertion(
    key: &SigningKey,
    algorithm: &str,
    client_id: &str,
    endpoint: &str,
    now: i64,
) -> Result<String, Reason> {
    let mut jti = [0u8; 16];
    aws_lc_rs::rand::fill(&mut jti).map_err(|_| Reason::ExchangeUnavailable)?;
    let header = json!({ "alg": algorithm, "typ": "JWT" });
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": endpoint,
        "jti": crate::jws::encode(&jti),
        "iat": now,
        "exp": now + 60,
    });
    key.sign_jws(&header, &claims).map_err(|_| Reason::ExchangeUnavailable)
}

/// Reads at most [`MAX_ANSWER_BYTES`]; `None` past that or on a broken body.
async fn read_bounded(mut response: reqwest::Response) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// An OAuth error code as it may go into tollgate's answer: RFC 6749 §5.2's characters,
/// and short. Anything else is not passed on.
fn error_code(code: &str) -> Option<&str> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E));
    ok.then_some(code)
}

/// `access_token` (a non-empty string that fits a header) and `expires_in` (seconds, a
/// non-negative number or numeric string; 3600 when absent).
fn issued_token(json: Option<&Value>) -> Option<(HeaderValue, i64)> {
    let json = json?;
    let token = json.get("access_token")?.as_str().filter(|t| !t.is_empty())?;
    let mut value = HeaderValue::from_str(token).ok()?;
    value.set_sensitive(true);
    let expires_in = match json.get("expires_in") {
        None => DEFAULT_EXPIRES_IN,
        Some(Value::Number(n)) => n.as_i64()?,
        Some(Value::String(s)) => s.trim().parse().ok()?,
        Some(_) => return None,
    };
    (expires_in >= 0).then_some((value, expires_in))
}

/// How long before its expiry a downstream token stops being served: a tenth of its
/// lifetime, at most a minute, so the upstream never receives one about to lapse.
fn margin(expires_in: i64) -> i64 {
    (expires_in / 10).min(60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_authorization_form_encodes_both_parts() {
        // RFC 6749 §2.3.1 example character handling: ':' and ' ' are encoded.
        let header = basic_authorization("my client", "s:cr%t");
        let decoded = base64::engine::general_purpose::STANDARD.decode(header.trim_start_matches("Basic ")).unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "my+client:s%3Acr%25t");
    }

    #[test]
    fn issued_tokens_need_a_token_and_a_lifetime() {
        let ok = |v: Value| issued_token(Some(&v)).map(|(t, e)| (t.to_str().unwrap().to_string(), e));
        assert_eq!(ok(json!({ "access_token": "t", "expires_in": 60 })), Some(("t".into(), 60)));
        assert_eq!(ok(json!({ "access_token": "t", "expires_in": "60" })), Some(("t".into(), 60)));
        assert_eq!(ok(json!({ "access_token": "t" })), Some(("t".into(), 3600)));
        for bad in [
            json!({ "expires_in": 60 }),
            json!({ "access_token": "", "expires_in": 60 }),
            json!({ "access_token": 7 }),
            json!({ "access_token": "t", "expires_in": -1 }),
            json!({ "access_token": "t", "expires_in": "soon" }),
            json!({ "access_token": "t", "expires_in": [60] }),
            json!({ "access_token": "line\nbreak" }),
        ] {
            assert_eq!(ok(bad.clone()), None, "{bad}");
        }
    }

    #[test]
    fn only_plain_error_codes_are_passed_on() {
        assert_eq!(error_code("invalid_grant"), Some("invalid_grant"));
        assert_eq!(error_code("consent_required"), Some("consent_required"));
        for bad in ["", "a\"b", "back\\slash", "new\nline", &"x".repeat(65)] {
            assert_eq!(error_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_margin_is_a_tenth_at_most_a_minute() {
        assert_eq!(margin(3600), 60);
        assert_eq!(margin(300), 30);
        assert_eq!(margin(5), 0);
    }
}
