//! A development issuer on loopback: its own keys, OIDC discovery and JWKS, and a way to
//! mint tokens. `tollgate dev` runs the sidecar against it so a newcomer sees tollgate work
//! with no tenant; the behaviour tests use the same signer to make their tokens.
//! [`proof`] builds DPoP proofs (RFC 9449 §4.2) for `tollgate proof` and `tollgate dev`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::clock::Clock as _;
use crate::jws;

/// A private signing key with its key id. RSA signs RS256 and PS256; P-256 signs ES256.
pub struct SigningKey {
    kid: String,
    pair: Pair,
}

enum Pair {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
}

/// Why a key could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("key generation failed")]
    KeyGeneration,
    #[error("algorithm {0} does not fit this key")]
    WrongAlgorithm(String),
    #[error("signing failed")]
    Signing,
    #[error("not a PKCS#8 PEM P-256 private key (make one with `tollgate proof --key FILE --new`)")]
    KeyFile,
    #[error("not a PKCS#8 PEM RSA private key of 2048 bits or more (remove it to get a new one)")]
    RsaKeyFile,
}

impl SigningKey {
    /// A fresh 2048-bit RSA key.
    pub fn rsa(kid: &str) -> Result<Self, SignError> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| SignError::KeyGeneration)?;
        Ok(SigningKey { kid: kid.into(), pair: Pair::Rsa(pair) })
    }

    /// A fresh P-256 key.
    pub fn p256(kid: &str) -> Result<Self, SignError> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| SignError::KeyGeneration)?;
        Self::p256_from_pkcs8(kid, pkcs8.as_ref()).map_err(|_| SignError::KeyGeneration)
    }

    fn p256_from_pkcs8(kid: &str, der: &[u8]) -> Result<Self, SignError> {
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| SignError::KeyFile)?;
        Ok(SigningKey { kid: kid.into(), pair: Pair::P256(pair) })
    }

    /// A P-256 key from PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey` writes).
    pub fn p256_from_pem(kid: &str, pem: &str) -> Result<Self, SignError> {
        let der = pem_der(pem).ok_or(SignError::KeyFile)?;
        Self::p256_from_pkcs8(kid, &der)
    }

    /// An RSA key from PKCS#8 PEM, as [`to_pem`](Self::to_pem) writes it.
    pub fn rsa_from_pem(kid: &str, pem: &str) -> Result<Self, SignError> {
        let der = pem_der(pem).ok_or(SignError::RsaKeyFile)?;
        let pair = RsaKeyPair::from_pkcs8(&der).map_err(|_| SignError::RsaKeyFile)?;
        Ok(SigningKey { kid: kid.into(), pair: Pair::Rsa(pair) })
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<String, SignError> {
        use aws_lc_rs::encoding::AsDer;
        use base64::Engine as _;
        let der: Vec<u8> = match &self.pair {
            Pair::P256(pair) => pair.to_pkcs8v1().map_err(|_| SignError::KeyFile)?.as_ref().to_vec(),
            Pair::Rsa(pair) => pair.as_der().map_err(|_| SignError::RsaKeyFile)?.as_ref().to_vec(),
        };
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).filter_map(|c| std::str::from_utf8(c).ok()).collect();
        Ok(format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n")))
    }

    /// The RFC 7638 thumbprint of the public key: what a bound token's `cnf.jkt` holds.
    pub fn jkt(&self) -> String {
        let members = self.thumbprint_members();
        let Value::Object(members) = members else { return String::new() };
        crate::dpop::proof::thumbprint(&members).unwrap_or_default()
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The same key again (through its PKCS#8 form).
    pub fn clone_key(&self) -> Result<SigningKey, std::io::Error> {
        let pem = self.to_pem().map_err(std::io::Error::other)?;
        let copy = match self.pair {
            Pair::Rsa(_) => Self::rsa_from_pem(&self.kid, &pem),
            Pair::P256(_) => Self::p256_from_pem(&self.kid, &pem),
        };
        copy.map_err(std::io::Error::other)
    }

    /// The algorithm this key signs with by default.
    pub fn default_alg(&self) -> &'static str {
        match self.pair {
            Pair::Rsa(_) => "RS256",
            Pair::P256(_) => "ES256",
        }
    }

    /// The public JWK, with `kid`, `use` and no `alg` (so RSA serves RS256 and PS256).
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.thumbprint_members();
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk
    }

    /// The required public members only (RFC 7638 §3.2), e.g. for a DPoP proof's `jwk`.
    pub fn thumbprint_members(&self) -> Value {
        match &self.pair {
            Pair::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": jws::encode(public.modulus().big_endian_without_leading_zero()),
                    "e": jws::encode(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Pair::P256(pair) => {
                let point = pair.public_key().as_ref();
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": jws::encode(&point[1..33]),
                    "y": jws::encode(&point[33..65]),
                })
            }
        }
    }

    /// Signs `message` with `alg`.
    pub fn sign(&self, alg: &str, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let rng = SystemRandom::new();
        match (&self.pair, alg) {
            (Pair::Rsa(pair), "RS256" | "PS256") => {
                let padding: &'static dyn signature::RsaEncoding =
                    if alg == "RS256" { &signature::RSA_PKCS1_SHA256 } else { &signature::RSA_PSS_SHA256 };
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &rng, message, &mut sig).map_err(|_| SignError::Signing)?;
                Ok(sig)
            }
            (Pair::P256(pair), "ES256") => {
                pair.sign(&rng, message).map(|s| s.as_ref().to_vec()).map_err(|_| SignError::Signing)
            }
            _ => Err(SignError::WrongAlgorithm(alg.into())),
        }
    }

    /// A compact JWS of `header` and `payload` as given (the header's `alg` is used as is).
    pub fn sign_jws(&self, header: &Value, payload: &Value) -> Result<String, SignError> {
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or(self.default_alg());
        let signing_input =
            format!("{}.{}", jws::encode(header.to_string().as_bytes()), jws::encode(payload.to_string().as_bytes()));
        let sig = self.sign(alg, signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", jws::encode(&sig)))
    }
}

/// The DER inside a `PRIVATE KEY` PEM block.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
        .skip(1)
        .take_while(|l| *l != "-----END PRIVATE KEY-----")
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Writes a private key to a new file (never over an existing one), readable by its owner
/// only (0600 on Unix).
pub fn write_key_file(path: &Path, pem: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, pem.as_bytes())
}

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
