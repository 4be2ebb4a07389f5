//! A development issuer on loopback: its own keys, OIDC discovery and JWKS, and a way to
//! mint tokens. `tollgate dev` runs the sidecar against it so a newcomer sees tollgate work
//! with no tenant; the behaviour tests use the same signer to make their tokens.
//! [`proof`] builds DPoP proofs (RFC 9449 §4.2) for `tollgate proof` and `tollgate dev`;
//! [`tour`] is what `tollgate dev` sets up and prints.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::clock::Clock as _;
use crate::jws;
use crate::signing::{SignError, SigningKey};

pub mod tour;

/// A DPoP proof by `key` for `method` and `url`, bound to `access_token` (`ath`), with a
/// random `jti` and `iat = now`, and the server `nonce` when one was handed out.
pub fn proof(
    key: &SigningKey,
    method: &str,
    url: &str,
    access_token: &str,
    nonce: Option<&str>,
    now: i64,
) -> Result<String, SignError> {
    let mut jti = [0u8; 16];
    aws_lc_rs::rand::fill(&mut jti).map_err(|_| SignError::Signing)?;
    let ath = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
    let header = json!({ "typ": "dpop+jwt", "alg": key.default_alg(), "jwk": key.thumbprint_members() });
    let mut payload =
        json!({ "jti": jws::encode(&jti), "htm": method, "htu": url, "iat": now, "ath": jws::encode(ath.as_ref()) });
    if let Some(nonce) = nonce {
        payload["nonce"] = json!(nonce);
    }
    key.sign_jws(&header, &payload)
}

/// The development client that `tollgate dev` configures as its `[client]`.
pub const DEV_CLIENT_ID: &str = "tollgate-dev";
pub const DEV_CLIENT_SECRET: &str = "dev-secret-not-for-production";

/// The development token endpoint: an RFC 8693 on-behalf-of exchange for the dev client
/// (`client_secret_post` or `client_secret_basic`). It reads the subject token's `sub`
/// (tokens it signed itself; a dev tool, not a verifier) and mints a token for the
/// requested `audience` with `act: {"sub": "tollgate-dev"}`, valid 10 minutes.
async fn token_endpoint(
    State(issuer): State<Arc<DevIssuer>>,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str);
    let basic = crate::exchange::basic_authorization(DEV_CLIENT_ID, DEV_CLIENT_SECRET);
    let authenticated =
        headers.get(axum::http::header::AUTHORIZATION).is_some_and(|v| v.as_bytes() == basic.as_bytes())
            || (field("client_id") == Some(DEV_CLIENT_ID) && field("client_secret") == Some(DEV_CLIENT_SECRET));
    let error = |status: axum::http::StatusCode, code: &str| (status, Json(json!({ "error": code }))).into_response();
    if !authenticated {
        return error(axum::http::StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if field("grant_type") != Some(crate::exchange::TOKEN_EXCHANGE) {
        return error(axum::http::StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let subject = field("subject_token")
        .and_then(|t| t.split('.').nth(1))
        .and_then(|payload| jws::decode(payload).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|claims| claims.get("sub").and_then(Value::as_str).map(str::to_string));
    let (Some(subject), Some(audience)) = (subject, field("audience")) else {
        return error(axum::http::StatusCode::BAD_REQUEST, "invalid_request");
    };
    let now = crate::clock::SystemClock.now();
    let scope = field("scope").unwrap_or_default();
    match issuer.mint_delegated(audience, &subject, scope, DEV_CLIENT_ID, now, 600) {
        Ok(token) => Json(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 600,
            "issued_token_type": crate::exchange::ACCESS_TOKEN_TYPE,
        }))
        .into_response(),
        Err(_) => error(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    }
}

/// A running development issuer.
pub struct DevIssuer {
    issuer: String,
    key: SigningKey,
    jwks: Arc<RwLock<Value>>,
}

impl DevIssuer {
    /// Starts serving discovery and JWKS on `127.0.0.1` at a free port, with a new key.
    pub async fn start() -> std::io::Result<DevIssuer> {
        let key = SigningKey::rsa("dev-1").map_err(std::io::Error::other)?;
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0)), key).await
    }

    /// Starts serving discovery and JWKS at `addr` (port 0: a free one), signing with `key`.
    pub async fn start_at(addr: SocketAddr, key: SigningKey) -> std::io::Result<DevIssuer> {
        let listener = TcpListener::bind(addr).await?;
        let issuer = format!("http://{}/", listener.local_addr()?);
        let jwks = Arc::new(RwLock::new(json!({ "keys": [key.public_jwk()] })));
        let discovery = json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}.well-known/jwks.json"),
            "token_endpoint": format!("{issuer}oauth/token"),
        });
        let jwks_route = get(|State(jwks): State<Arc<RwLock<Value>>>| async move {
            Json(jwks.read().map(|j| j.clone()).unwrap_or_default())
        });
        let exchanges = Arc::new(DevIssuer { issuer: issuer.clone(), key: key.clone_key()?, jwks: jwks.clone() });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(move || async move { Json(discovery) }))
            .route("/.well-known/jwks.json", jwks_route.with_state(jwks.clone()))
            .route("/oauth/token", axum::routing::post(token_endpoint).with_state(exchanges));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(DevIssuer { issuer, key, jwks })
    }

    /// The issuer identifier (`http://127.0.0.1:PORT/`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The JWKS served, for inspection.
    pub fn jwks(&self) -> Value {
        self.jwks.read().map(|j| j.clone()).unwrap_or_default()
    }

    /// An RS256 access token (RFC 9068 shape) for `audience`, valid for `ttl` seconds;
    /// bound to a DPoP key when `jkt` is given (`cnf.jkt`, RFC 9449 §6.1).
    pub fn mint(
        &self,
        audience: &str,
        subject: &str,
        scope: &str,
        jkt: Option<&str>,
        now: i64,
        ttl: i64,
    ) -> Result<String, SignError> {
        let header = json!({ "alg": "RS256", "typ": "at+jwt", "kid": self.key.kid() });
        let mut payload = json!({
            "iss": self.issuer, "aud": audience, "sub": subject, "scope": scope,
            "iat": now, "exp": now + ttl, "client_id": "tollgate-dev", "jti": format!("dev-{now}-{subject}"),
        });
        if let Some(jkt) = jkt {
            payload["cnf"] = json!({ "jkt": jkt });
        }
        self.key.sign_jws(&header, &payload)
    }

    /// Like [`mint`](Self::mint), with `act: {"sub": actor}` (RFC 8693 §4.1): a token
    /// `actor` obtained to act for `subject`.
    pub fn mint_delegated(
        &self,
        audience: &str,
        subject: &str,
        scope: &str,
        actor: &str,
        now: i64,
        ttl: i64,
    ) -> Result<String, SignError> {
        let header = json!({ "alg": "RS256", "typ": "at+jwt", "kid": self.key.kid() });
        let payload = json!({
            "iss": self.issuer, "aud": audience, "sub": subject, "scope": scope,
            "iat": now, "exp": now + ttl, "client_id": actor, "jti": format!("dev-{now}-{subject}-{actor}"),
            "act": { "sub": actor },
        });
        self.key.sign_jws(&header, &payload)
    }
}
