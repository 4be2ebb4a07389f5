//! Shared test support: a real mock OIDC issuer over HTTP on 127.0.0.1, a token builder
//! with valid defaults, a harness that drives the real router with `oneshot`, and child
//! processes and temp dirs that clean up after themselves.
#![allow(dead_code)]

pub mod redis_server;

use std::ffi::OsString;
use std::fs::File;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tollgate::clock::{Clock, ManualClock, SystemClock};
use tollgate::config::Config;
use tollgate::decision::Checker;
use tollgate::issuer::Timings;
use tollgate::signing::SigningKey;
use tower::ServiceExt;

pub const AUDIENCE: &str = "https://api.example.com";

/// How the mock issuer answers JWKS requests.
#[derive(Debug, Clone, PartialEq)]
pub enum JwksMode {
    Serve,
    /// 500 on every request.
    Fail,
    /// 200 with this body.
    Body(String),
    /// Never answers (until the client gives up).
    Hang,
    /// 200 with this body, shared rather than copied per request (a 50 MiB body served
    /// many times costs no memory per request).
    Shared(axum::body::Bytes),
}

/// How the mock token endpoint answers.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenMode {
    /// 200 with `downstream-N` (N counting calls from 1) and this `expires_in`.
    Issue { expires_in: i64 },
    /// 400 with this OAuth `error`.
    Refuse(String),
    /// 429 with this `Retry-After`.
    RateLimit(u64),
    /// 500.
    Fail,
    /// 200 with a body that is not JSON.
    Malformed,
    /// Never answers (until the client gives up).
    Hang,
}

/// One request the token endpoint received.
#[derive(Debug, Clone)]
pub struct TokenCall {
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    /// The form fields, in order, decoded.
    pub form: Vec<(String, String)>,
}

impl TokenCall {
    /// Every value of form field `name`.
    pub fn field(&self, name: &str) -> Vec<&str> {
        self.form.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The field names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.form.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        names
    }
}

struct MockState {
    token_mode: TokenMode,
    token_delay: Duration,
    token_calls: Vec<TokenCall>,
    issuer: String,
    discovery_issuer: Option<String>,
    keys: Vec<Value>,
    mode: JwksMode,
    discovery_up: bool,
    cache_control: Option<String>,
    /// Each JWKS answer waits this long first.
    jwks_delay: Duration,
    /// When each JWKS request arrived.
    jwks_times: Vec<Instant>,
}

/// A real discovery + JWKS server on 127.0.0.1, with per-instance counters and switches.
#[derive(Clone)]
pub struct MockIssuer {
    addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
    jwks_fetches: Arc<AtomicUsize>,
    discovery_fetches: Arc<AtomicUsize>,
    server: Arc<tokio::task::JoinHandle<()>>,
}

impl MockIssuer {
    /// Starts an issuer serving the public halves of `keys`.
    pub async fn start(keys: &[&SigningKey]) -> MockIssuer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mock issuer");
        let addr = listener.local_addr().expect("local addr");
        let issuer = format!("http://{addr}/");
        let state = Arc::new(Mutex::new(MockState {
            issuer: issuer.clone(),
            discovery_issuer: None,
            keys: keys.iter().map(|k| k.public_jwk()).collect(),
            mode: JwksMode::Serve,
            discovery_up: true,
            cache_control: None,
            jwks_delay: Duration::ZERO,
            jwks_times: Vec::new(),
            token_mode: TokenMode::Issue { expires_in: 3600 },
            token_delay: Duration::ZERO,
            token_calls: Vec::new(),
        }));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let discovery_fetches = Arc::new(AtomicUsize::new(0));
        let shared = (state.clone(), jwks_fetches.clone(), discovery_fetches.clone());
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/oauth/token", axum::routing::post(token_endpoint))
            .with_state(shared);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockIssuer { addr, state, jwks_fetches, discovery_fetches, server: Arc::new(server) }
    }

    pub fn issuer(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// When each JWKS request this issuer received arrived, in order.
    pub fn jwks_fetch_times(&self) -> Vec<Instant> {
        self.state.lock().unwrap().jwks_times.clone()
    }

    pub fn discovery_fetches(&self) -> usize {
        self.discovery_fetches.load(Ordering::SeqCst)
    }

    pub fn set_mode(&self, mode: JwksMode) {
        self.state.lock().unwrap().mode = mode;
    }

    pub fn set_discovery_up(&self, up: bool) {
        self.state.lock().unwrap().discovery_up = up;
    }

    /// Make discovery claim another issuer identifier.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        self.state.lock().unwrap().discovery_issuer = Some(issuer.into());
    }

    /// Each JWKS answer waits this long first (a slow issuer, or a fetch in flight that
    /// other requests can overlap).
    pub fn set_jwks_delay(&self, delay: Duration) {
        self.state.lock().unwrap().jwks_delay = delay;
    }

    pub fn set_cache_control(&self, value: &str) {
        self.state.lock().unwrap().cache_control = Some(value.into());
    }

    /// Replace the served JWKS entries.
    pub fn set_keys(&self, keys: Vec<Value>) {
        self.state.lock().unwrap().keys = keys;
    }

    pub fn add_key(&self, key: &SigningKey) {
        self.state.lock().unwrap().keys.push(key.public_jwk());
    }

    pub fn remove_key(&self, kid: &str) {
        self.state.lock().unwrap().keys.retain(|k| k["kid"] != kid);
    }

    /// The token endpoint discovery names (`token_endpoint`).
    pub fn token_endpoint(&self) -> String {
        format!("{}oauth/token", self.issuer())
    }

    pub fn set_token_mode(&self, mode: TokenMode) {
        self.state.lock().unwrap().token_mode = mode;
    }

    /// Each token endpoint answer waits this long first (to make calls overlap).
    pub fn set_token_delay(&self, delay: Duration) {
        self.state.lock().unwrap().token_delay = delay;
    }

    /// Every request the token endpoint received so far.
    pub fn token_calls(&self) -> Vec<TokenCall> {
        self.state.lock().unwrap().token_calls.clone()
    }

    /// A token signed by `key` with valid defaults for this issuer at `now`.
    pub fn token<'k>(&self, key: &'k SigningKey, now: i64) -> TokenBuilder<'k> {
        TokenBuilder::new(key, &self.issuer(), now)
    }
}

impl Drop for MockIssuer {
    fn drop(&mut self) {
        if Arc::strong_count(&self.server) == 1 {
            self.server.abort();
        }
    }
}

type Shared = (Arc<Mutex<MockState>>, Arc<AtomicUsize>, Arc<AtomicUsize>);

async fn discovery(State((state, _, count)): State<Shared>) -> Response {
    count.fetch_add(1, Ordering::SeqCst);
    let s = state.lock().unwrap();
    if !s.discovery_up {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let issuer = s.discovery_issuer.clone().unwrap_or(s.issuer.clone());
    let token_endpoint = format!("{}oauth/token", s.issuer);
    axum::Json(json!({ "issuer": issuer, "jwks_uri": format!("{}jwks", s.issuer), "token_endpoint": token_endpoint }))
        .into_response()
}

/// Records the request, then answers as `token_mode` says.
async fn token_endpoint(State((state, _, _)): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let call = TokenCall {
        authorization: header("authorization"),
        content_type: header("content-type"),
        form: url::form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
    };
    let (mode, delay, n) = {
        let mut s = state.lock().unwrap();
        s.token_calls.push(call);
        (s.token_mode.clone(), s.token_delay, s.token_calls.len())
    };
    tokio::time::sleep(delay).await;
    match mode {
        TokenMode::Issue { expires_in } => axum::Json(json!({
            "access_token": format!("downstream-{n}"),
            "token_type": "Bearer",
            "expires_in": expires_in,
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        }))
        .into_response(),
        TokenMode::Refuse(error) => {
            (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": error, "error_description": "no" }))).into_response()
        }
        TokenMode::RateLimit(seconds) => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", seconds.to_string())], "slow down").into_response()
        }
        TokenMode::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        TokenMode::Malformed => (StatusCode::OK, "{not json").into_response(),
        TokenMode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

async fn jwks(State((state, count, _)): State<Shared>) -> Response {
    count.fetch_add(1, Ordering::SeqCst);
    let (mode, keys, cache_control, delay) = {
        let mut s = state.lock().unwrap();
        s.jwks_times.push(Instant::now());
        (s.mode.clone(), s.keys.clone(), s.cache_control.clone(), s.jwks_delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match mode {
        JwksMode::Serve => {
            let mut response = axum::Json(json!({ "keys": keys })).into_response();
            if let Some(cc) = cache_control {
                response.headers_mut().insert("cache-control", cc.parse().unwrap());
            }
            response
        }
        JwksMode::Fail => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        JwksMode::Body(body) => body.into_response(),
        JwksMode::Shared(body) => body.into_response(),
        JwksMode::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

/// Builds signed tokens; every field settable, defaults valid (T0 of the research notes).
pub struct TokenBuilder<'k> {
    key: &'k SigningKey,
    header: Value,
    claims: Value,
    raw_header: Option<String>,
    raw_payload: Option<String>,
}

impl<'k> TokenBuilder<'k> {
    pub fn new(key: &'k SigningKey, issuer: &str, now: i64) -> Self {
        TokenBuilder {
            key,
            header: json!({ "alg": key.default_alg(), "typ": "at+jwt", "kid": key.kid() }),
            claims: json!({
                "iss": issuer, "aud": AUDIENCE, "sub": "user1", "iat": now, "exp": now + 600,
                "scope": "read", "client_id": "client-1", "jti": "jti-1",
            }),
            raw_header: None,
            raw_payload: None,
        }
    }

    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims[name] = value;
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.claims.as_object_mut().unwrap().remove(name);
        self
    }

    pub fn header(mut self, name: &str, value: Value) -> Self {
        self.header[name] = value;
        self
    }

    pub fn header_without(mut self, name: &str) -> Self {
        self.header.as_object_mut().unwrap().remove(name);
        self
    }

    /// Use this exact JSON text as the header (e.g. duplicate members).
    pub fn raw_header(mut self, text: &str) -> Self {
        self.raw_header = Some(text.into());
        self
    }

    /// Use this exact JSON text as the payload.
    pub fn raw_payload(mut self, text: &str) -> Self {
        self.raw_payload = Some(text.into());
        self
    }

    /// Signs with the builder's key and the header's `alg`.
    pub fn sign(self) -> String {
        let header = self.raw_header.unwrap_or_else(|| self.header.to_string());
        let payload = self.raw_payload.unwrap_or_else(|| self.claims.to_string());
        let alg = serde_json::from_str::<Value>(&header)
            .ok()
            .and_then(|h| h.get("alg").and_then(Value::as_str).map(str::to_owned))
            .filter(|a| ["RS256", "PS256", "ES256"].contains(&a.as_str()))
            .unwrap_or_else(|| self.key.default_alg().to_string());
        let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let sig = self.key.sign(&alg, input.as_bytes()).expect("sign");
        format!("{input}.{}", b64(&sig))
    }
}

pub fn b64(bytes: &[u8]) -> String {
    tollgate::jws::encode(bytes)
}

/// The real router over a real mock issuer, driven with `oneshot`.
pub struct TestApp {
    pub issuer: MockIssuer,
    pub key: SigningKey,
    pub checker: Arc<Checker>,
    pub clock: Arc<ManualClock>,
    pub peer: SocketAddr,
}

/// Test timings: the contract's rules, with the waits shortened.
pub fn fast_timings() -> Timings {
    Timings {
        fetch_timeout: Duration::from_millis(500),
        retry_min: Duration::from_millis(50),
        retry_max: Duration::from_millis(200),
        ..Timings::default()
    }
}

pub fn now() -> i64 {
    SystemClock.now()
}

/// `extra` TOML (top-level keys or whole tables), then `[issuer]` and `[proxy]` for `issuer`.
pub fn config_text(issuer: &str, gateway: &str, extra: &str) -> String {
    format!("{extra}\n[issuer]\nurl = \"{issuer}\"\naudience = \"{AUDIENCE}\"\n[proxy]\ngateway = \"{gateway}\"\n")
}

impl TestApp {
    /// An app with the envoy dialect (the check path is the original path) and `extra` config.
    pub async fn new(extra: &str) -> TestApp {
        TestApp::with_gateway("envoy", extra).await
    }

    pub async fn with_gateway(gateway: &str, extra: &str) -> TestApp {
        let key = SigningKey::rsa("k1").expect("key");
        let issuer = MockIssuer::start(&[&key]).await;
        let config = Config::load(&config_text(&issuer.issuer(), gateway, extra), &Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        TestApp::from_config(issuer, key, config, fast_timings()).await
    }

    pub async fn from_config(issuer: MockIssuer, key: SigningKey, config: Config, timings: Timings) -> TestApp {
        let clock = Arc::new(ManualClock::new(now()));
        let checker = Checker::from_config(config, timings, clock.clone() as Arc<dyn Clock>).expect("checker");
        checker.issuer().refresh().await.expect("initial key fetch");
        TestApp { issuer, key, checker, clock, peer: "127.0.0.1:40000".parse().unwrap() }
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// A valid token (T0) for this app's issuer.
    pub fn token(&self) -> TokenBuilder<'_> {
        self.issuer.token(&self.key, self.now())
    }

    /// Sends `request` through the real router from `self.peer`.
    pub async fn send(&self, request: Request<Body>) -> Answer {
        let app = tollgate::server::app(self.checker.clone()).layer(MockConnectInfo(self.peer));
        let response = app.oneshot(request).await.expect("infallible");
        Answer::read(response).await
    }

    /// `GET /auth{path}` with these headers.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send(request("GET", &format!("/auth{path}"), headers)).await
    }

    /// `GET /auth/r` with `Authorization: Bearer {token}`.
    pub async fn bearer(&self, token: &str) -> Answer {
        self.get("/r", &[("authorization", &format!("Bearer {token}"))]).await
    }
}

pub fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

/// A whole answer, for asserting everything at once.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub async fn read(response: Response) -> Answer {
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        Answer { status: parts.status, headers: parts.headers, body: String::from_utf8_lossy(&bytes).into() }
    }

    /// Every `WWW-Authenticate` value, in order.
    pub fn challenges(&self) -> Vec<String> {
        self.headers.get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The `error` member of the JSON body.
    pub fn error(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.body).ok()?.get("error")?.as_str().map(str::to_owned)
    }

    /// Asserts a 401 `invalid_token` for a Bearer request, with the exact description.
    pub fn assert_invalid_token(&self, description: &str) {
        assert_eq!(self.status, StatusCode::UNAUTHORIZED, "body: {}", self.body);
        assert_eq!(
            self.challenges(),
            vec![
                format!("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"{description}\""),
                "DPoP algs=\"ES256\"".to_string(),
            ]
        );
        assert_eq!(self.error().as_deref(), Some("invalid_token"));
    }
}

/// Builds DPoP proofs (RFC 9449 §4.2); defaults valid for `GET {htu}` with `token`.
pub struct ProofBuilder<'k> {
    key: &'k SigningKey,
    header: Value,
    claims: Value,
}

impl<'k> ProofBuilder<'k> {
    pub fn new(key: &'k SigningKey, method: &str, htu: &str, token: &str, now: i64) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        ProofBuilder {
            key,
            header: json!({ "typ": "dpop+jwt", "alg": key.default_alg(), "jwk": key.thumbprint_members() }),
            claims: json!({
                "jti": format!("jti-{}", unique()), "htm": method, "htu": htu, "iat": now,
                "ath": b64(digest.as_ref()),
            }),
        }
    }

    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims[name] = value;
        self
    }

    pub fn without(mut self, name: &str) -> Self {
        self.claims.as_object_mut().unwrap().remove(name);
        self
    }

    pub fn header(mut self, name: &str, value: Value) -> Self {
        self.header[name] = value;
        self
    }

    pub fn sign(self) -> String {
        self.key.sign_jws(&self.header, &self.claims).expect("sign proof")
    }
}

/// The RFC 7638 thumbprint of a key, for `cnf.jkt`.
pub fn jkt(key: &SigningKey) -> String {
    let members = key.thumbprint_members();
    tollgate::dpop::proof::thumbprint(members.as_object().unwrap()).expect("thumbprint")
}

fn unique() -> u64 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst) as u64 + (std::process::id() as u64) * 1_000_000
}

// ---------------------------------------------------------------------------------------
// Processes and files that clean up after themselves.

/// How long a process may take to become ready.
pub const STARTUP: Duration = Duration::from_secs(20);

/// A child process killed (by its pid) and reaped when the guard drops.
pub struct ProcessGuard {
    pub name: &'static str,
    child: Child,
    /// The files its output goes to, read by `output`.
    logs: Vec<PathBuf>,
}

impl ProcessGuard {
    /// Guards a child spawned elsewhere; its output goes wherever its command sent it.
    pub fn new(name: &'static str, child: Child) -> ProcessGuard {
        ProcessGuard { name, child, logs: Vec::new() }
    }

    /// Another file the process writes to (say nginx's error log), shown by `output`.
    pub fn also_log(&mut self, log: PathBuf) {
        self.logs.push(log);
    }

    /// The process's output so far, for failure messages.
    pub fn output(&self) -> String {
        self.logs.iter().map(|log| std::fs::read_to_string(log).unwrap_or_default()).collect()
    }

    /// Its exit status, once it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child itself, say to take a piped stdout.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("tollgate-{prefix}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").expect("bind :0").local_addr().expect("addr").port()
}

/// Spawns `command` with its output in `log`, without tollgate settings from the
/// environment (other than those set on `command` itself).
pub fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> ProcessGuard {
    let out = File::create(&log).expect("create log");
    let err = out.try_clone().expect("clone log");
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    let set: Vec<OsString> = command.get_envs().map(|(var, _)| var.to_os_string()).collect();
    for (var, _) in std::env::vars_os() {
        let text = var.to_string_lossy();
        if (text.starts_with("TOLLGATE_") || text.starts_with("AUTH0_")) && !set.contains(&var) {
            command.env_remove(&var);
        }
    }
    let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let mut process = ProcessGuard::new(name, child);
    process.also_log(log);
    process
}

/// Polls `ready` until it holds; fails if `STARTUP` passes. Returns false when the process
/// exited, so the caller may retry on another port.
pub async fn wait_ready<F, Fut>(process: &mut ProcessGuard, mut ready: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + STARTUP;
    loop {
        if ready().await {
            return true;
        }
        if process.exited().is_some() {
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "{} not ready after {STARTUP:?}; its output:\n{}",
            process.name,
            process.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `wait_ready` until `GET url` answers 200 (tollgate's `/readyz` or `/healthz`).
pub async fn wait_until_ok(process: &mut ProcessGuard, client: &reqwest::Client, url: &str) -> bool {
    wait_ready(process, || {
        let request = client.get(url).send();
        async move { matches!(request.await, Ok(r) if r.status() == StatusCode::OK) }
    })
    .await
}
