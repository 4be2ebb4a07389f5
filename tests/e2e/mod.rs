//! Shared harness for the end-to-end tests behind real gateways (`tests/nginx.rs`,
//! `tests/traefik.rs`, `tests/caddy.rs`): the mock issuer from `tests/support`, an echo
//! upstream, the real `tollgate` binary (or a stub check, to see what a gateway sends and
//! copies), and the gateway itself running a shipped config with only its addresses
//! replaced. Every process is killed by its pid when its guard drops; every wait is bounded.
//!
//! The scenarios a gateway must pass live here too, so the gateways are held to the same
//! list (nginx, whose `auth_request` rewrites refusals, runs those it passes as they are
//! and its own variants of the others).
#![allow(dead_code)]

pub mod gateways;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};
use tollgate::signing::SigningKey;

use super::support::{
    self, AUDIENCE, JwksMode, MockIssuer, ProcessGuard, ProofBuilder, TempDir, free_port, jkt, spawn, wait_ready,
    wait_until_ok,
};

/// Attempts per process: a free port found by binding :0 can be taken before it is used.
pub const PORT_ATTEMPTS: usize = 3;

// ---------------------------------------------------------------------------------------
// The gateway binaries (processes, temp dirs and ports come from `tests/support`).

/// `name` on PATH (or in `extra` directories), or a failure telling how to install it: a
/// missing gateway fails its tests, it never skips them.
pub fn find_binary(name: &str, extra: &[&str], install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(extra.iter().map(PathBuf::from));
    for dir in dirs {
        let file = dir.join(name);
        if file.is_file() {
            return file;
        }
    }
    panic!(
        "{name} is not installed (not on PATH): these tests drive the real gateway; install it with `{install}` (scripts/test.sh does, run as root)"
    );
}

/// The first line `binary args` prints, e.g. `caddy version`.
pub fn version_line(binary: &Path, args: &[&str]) -> String {
    let out = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
    String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_string()
}

/// `(major, minor, patch)` from text such as `2.6.2`, `v2.10.0 h1:…` or `Version: 3.7.15`.
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let word = text[start..].split(|c: char| !(c.is_ascii_digit() || c == '.')).next()?;
    let mut parts = word.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next().flatten().unwrap_or(0)))
}

// ---------------------------------------------------------------------------------------
// The issuer (the shared mock), its signing key, and a client's DPoP key.

pub struct Issuer {
    pub mock: MockIssuer,
    pub key: SigningKey,
    /// The client's DPoP key (P-256).
    pub client_key: SigningKey,
}

impl Issuer {
    pub async fn start(jwks: JwksMode) -> Issuer {
        let key = SigningKey::rsa("k1").expect("key");
        let mock = MockIssuer::start(&[&key]).await;
        mock.set_mode(jwks);
        Issuer { mock, key, client_key: SigningKey::p256("client").expect("client key") }
    }

    pub fn url(&self) -> String {
        self.mock.issuer()
    }

    /// A token for user1 with scope `scope`, signed by `key`, with `extra` claims.
    pub fn token_with(&self, key: &SigningKey, scope: &str, extra: Value) -> String {
        let mut token = self.mock.token(key, support::now()).claim("scope", json!(scope));
        for (name, value) in extra.as_object().into_iter().flatten() {
            token = token.claim(name, value.clone());
        }
        token.sign()
    }

    pub fn token(&self, scope: &str) -> String {
        self.token_with(&self.key, scope, json!({}))
    }

    /// A token bound to the client's DPoP key (`cnf.jkt`).
    pub fn bound_token(&self, scope: &str) -> String {
        self.token_with(&self.key, scope, json!({ "cnf": { "jkt": jkt(&self.client_key) } }))
    }

    /// A fresh proof (new `jti`) by the client's key for `method htu`, bound to `token`.
    pub fn proof(&self, method: &str, htu: &str, token: &str) -> String {
        ProofBuilder::new(&self.client_key, method, htu, token, support::now()).sign()
    }
}

// ---------------------------------------------------------------------------------------
// The echo upstream: answers 200 with every request header it received, and records
// every request it got (a HEAD answer has no body to read it from).

/// Every request the echo upstream received, in order.
type Received = Arc<Mutex<Vec<Seen>>>;

/// `{"header-name": ["value", …], …, ":method": "GET", ":uri": "/path?query", ":body": "…"}`.
/// The request is recorded before its body is read, so a body that fails to arrive
/// (a framing a gateway and the upstream disagree on) still counts as received.
async fn echo(
    axum::extract::State(received): axum::extract::State<Received>,
    request: axum::extract::Request,
) -> axum::Json<Value> {
    let (parts, body) = request.into_parts();
    let seen = Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: header_lists(&parts.headers),
        body: String::new(),
    };
    let index = {
        let mut all = received.lock().unwrap();
        all.push(seen.clone());
        all.len() - 1
    };
    let request_body = match axum::body::to_bytes(body, 1 << 20).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("<body unreadable: {e}>"),
    };
    received.lock().unwrap()[index].body = request_body.clone();
    let mut body = serde_json::to_value(&seen.headers).expect("json");
    body[":method"] = json!(seen.method);
    body[":uri"] = json!(seen.uri);
    body[":body"] = json!(request_body);
    axum::Json(body)
}

fn header_lists(headers: &HeaderMap) -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        seen.entry(name.as_str().to_string()).or_default().push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    seen
}

async fn serve(app: Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

// ---------------------------------------------------------------------------------------
// The check: the real tollgate, or a stub that records what the gateway sent it.

/// The host route of these tests: any path on it needs the `admin` scope.
pub const ADMIN_HOST: &str = "admin.example.com";

/// Loopback, where the gateways run: the trust list of these tests unless one says otherwise.
pub const LOOPBACK: &str = r#"["127.0.0.1/32", "::1/128"]"#;

/// The tollgate config of these tests: the routes and the claim header the scenarios rely
/// on, `trusted` as the peers whose gateway headers are believed, then `extra` TOML tables.
pub fn tollgate_config(issuer: &str, port: u16, gateway: &str, trusted: &str, extra: &str) -> String {
    format!(
        r#"listen = "127.0.0.1:{port}"

[issuer]
url = "{issuer}"
audience = "{AUDIENCE}"

[proxy]
gateway = "{gateway}"
trusted = {trusted}

[[routes]]
host = "{ADMIN_HOST}"
scopes = ["admin"]

[[routes]]
path_prefix = "/public"
public = true

[[routes]]
path_prefix = "/admin"
scopes = ["write:admin"]

[[routes]]
path_prefix = "/reports"
methods = ["GET"]
scopes = ["read:reports"]

[[routes]]
path_prefix = "/orders"
methods = ["DELETE"]
scopes = ["delete:orders"]

[headers]
"X-Auth-Email" = "email"

{extra}
"#
    )
}

/// Starts tollgate in `gateway`'s dialect, with the tables the gateway needs and then
/// `options.extra`; waits for `/readyz` (keys loaded) or only `/healthz`.
pub async fn start_tollgate(
    dir: &Path,
    issuer: &str,
    gateway: &dyn Gateway,
    options: &Options,
    client: &reqwest::Client,
) -> (ProcessGuard, u16) {
    let extra = [gateway.tollgate_toml(), options.extra].concat();
    for attempt in 1..=PORT_ATTEMPTS {
        let port = free_port();
        let config = dir.join("tollgate.toml");
        let text = tollgate_config(issuer, port, gateway.name(), options.trusted, &extra);
        std::fs::write(&config, text).expect("write tollgate config");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command.arg("serve").arg("--config").arg(&config);
        let mut process = spawn("tollgate", command, dir.join("tollgate.log"));
        let url = format!("http://127.0.0.1:{port}/{}", if options.wait_keys { "readyz" } else { "healthz" });
        if wait_until_ok(&mut process, client, &url).await {
            return (process, port);
        }
        assert!(attempt < PORT_ATTEMPTS, "tollgate exited during startup; its output:\n{}", process.output());
    }
    unreachable!()
}

/// One request as a check endpoint or the echo upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Lower-case names, values in order.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The body, as text (the echo upstream only; empty at a check).
    pub body: String,
}

impl Seen {
    pub fn get(&self, name: &str) -> Vec<String> {
        self.headers.get(name).cloned().unwrap_or_default()
    }
}

#[derive(Clone, Default)]
struct StubState {
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<Mutex<Vec<(String, String)>>>,
}

/// A check endpoint that records every request and answers 200 with set headers.
pub struct StubCheck {
    pub addr: SocketAddr,
    state: StubState,
    task: tokio::task::JoinHandle<()>,
}

async fn stub_check(
    axum::extract::State(state): axum::extract::State<StubState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> axum::response::Response {
    state.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: header_lists(&headers),
        body: String::new(),
    });
    let mut response = axum::response::Response::new(axum::body::Body::empty());
    for (name, value) in state.answer.lock().unwrap().iter() {
        response
            .headers_mut()
            .append(axum::http::HeaderName::from_bytes(name.as_bytes()).expect("name"), value.parse().expect("value"));
    }
    response
}

impl StubCheck {
    async fn start() -> StubCheck {
        let state = StubState::default();
        let app = Router::new().fallback(stub_check).with_state(state.clone());
        let (addr, task) = serve(app).await;
        StubCheck { addr, state, task }
    }

    /// The headers of every following 200.
    pub fn answer_with(&self, headers: &[(&str, &str)]) {
        *self.state.answer.lock().unwrap() = headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    }

    /// Every check received so far, and forget them.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.state.seen.lock().unwrap())
    }
}

impl Drop for StubCheck {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------------------
// The gateways.

/// Where each piece listens.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// The check endpoint (tollgate or the stub).
    pub check: u16,
    /// The echo upstream (the API).
    pub api: u16,
    /// Where the gateway accepts clients.
    pub listen: u16,
}

/// A gateway under test.
pub trait Gateway {
    /// Its name, which is also tollgate's `proxy.gateway` for it.
    fn name(&self) -> &'static str;

    /// Writes its configuration for `ports` into `dir`; returns the command that runs it
    /// in the foreground, as one process.
    fn prepare(&self, dir: &Path, ports: Ports) -> Command;

    /// TOML tables tollgate needs behind this gateway (its shipped tollgate.toml has them),
    /// added to the tests' tollgate config before `Options::extra`.
    fn tollgate_toml(&self) -> &'static str {
        ""
    }

    /// A file in `dir` the gateway logs to besides its output (nginx's error log), shown
    /// with its output in failure messages.
    fn log_file(&self, _dir: &Path) -> Option<PathBuf> {
        None
    }
}

/// Replaces each placeholder of a shipped file, checking it occurs exactly as often as expected.
pub fn substitute(file: &str, text: &str, replacements: &[(&str, usize, &str)]) -> String {
    let mut out = text.to_string();
    for (placeholder, count, value) in replacements {
        assert_eq!(
            text.matches(placeholder).count(),
            *count,
            "{file}: placeholder {placeholder:?} changed; update the test that runs it"
        );
        out = out.replace(placeholder, value);
    }
    out
}

/// What to start.
pub struct Options {
    /// How the issuer answers JWKS requests.
    pub jwks: JwksMode,
    /// Wait until tollgate has keys (`/readyz`), or only until it runs (`/healthz`).
    pub wait_keys: bool,
    /// A recording stub in place of tollgate.
    pub stub: bool,
    /// TOML tables added to tollgate's config.
    pub extra: &'static str,
    /// tollgate's `proxy.trusted`, a TOML array.
    pub trusted: &'static str,
}

impl Default for Options {
    fn default() -> Options {
        Options { jwks: JwksMode::Serve, wait_keys: true, stub: false, extra: "", trusted: LOOPBACK }
    }
}

/// tollgate's `[dpop]` with server nonces (RFC 9449 §9).
pub const NONCES: &str = "[dpop]\nnonce = true\nnonce_secret = \"0123456789abcdef0123456789abcdef\"\n";

/// Client → gateway → check (tollgate → mock issuer, or the stub); gateway → echo upstream.
/// Fields drop in order: the gateway and tollgate are killed before their directory goes.
pub struct Stack {
    gateway: ProcessGuard,
    tollgate: Option<ProcessGuard>,
    stub: Option<StubCheck>,
    /// `http://127.0.0.1:PORT` of the check (tollgate or the stub).
    check_base: String,
    echo: tokio::task::JoinHandle<()>,
    /// What the echo upstream received.
    received: Received,
    pub issuer: Issuer,
    /// `http://127.0.0.1:PORT`, the gateway as the client sees it.
    pub base: String,
    client: reqwest::Client,
    dir: TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.echo.abort();
    }
}

impl Stack {
    pub async fn start(gateway: &dyn Gateway, options: Options) -> Stack {
        let issuer = Issuer::start(options.jwks.clone()).await;
        let received = Received::default();
        let (echo_addr, echo) = serve(Router::new().fallback(echo).with_state(received.clone())).await;
        let dir = TempDir::new(gateway.name());
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().expect("client");

        let (tollgate, stub, check_port) = if options.stub {
            let stub = StubCheck::start().await;
            stub.answer_with(&[("x-auth-subject", ""), ("x-auth-scheme", ""), ("x-auth-claims", "")]);
            let port = stub.addr.port();
            (None, Some(stub), port)
        } else {
            let (process, port) = start_tollgate(dir.path(), &issuer.url(), gateway, &options, &client).await;
            (Some(process), None, port)
        };

        let mut attempt = 0;
        let (process, port) = loop {
            attempt += 1;
            let port = free_port();
            let command = gateway.prepare(dir.path(), Ports { check: check_port, api: echo_addr.port(), listen: port });
            let mut process = spawn(gateway.name(), command, dir.path().join(format!("{}.log", gateway.name())));
            if let Some(log) = gateway.log_file(dir.path()) {
                process.also_log(log);
            }
            // Ready once a request goes through to the check: a gateway that listens but
            // has not loaded its routes yet answers 404 (Traefik's file provider).
            let url = format!("http://127.0.0.1:{port}/public/ready");
            let up = wait_ready(&mut process, || {
                let request = client.get(&url).send();
                async move { matches!(request.await, Ok(r) if r.status() != StatusCode::NOT_FOUND) }
            })
            .await;
            if up {
                break (process, port);
            }
            assert!(
                attempt < PORT_ATTEMPTS,
                "{} exited during startup; its output:\n{}",
                gateway.name(),
                process.output()
            );
        };
        if let Some(stub) = &stub {
            stub.take();
        }

        let base = format!("http://127.0.0.1:{port}");
        let check_base = format!("http://127.0.0.1:{check_port}");
        Stack { gateway: process, tollgate, stub, check_base, echo, received, issuer, base, client, dir }
    }

    /// Every request the echo upstream received so far (the readiness probes included), in order.
    pub fn upstream_received(&self) -> Vec<Seen> {
        self.received.lock().unwrap().clone()
    }

    /// The recording stub (when started with `stub: true`).
    pub fn stub(&self) -> &StubCheck {
        self.stub.as_ref().expect("started without the stub check")
    }

    /// A valid token for user1 with scope `read`.
    pub fn token(&self) -> String {
        self.issuer.token("read")
    }

    /// The URL a client uses for `path`: what a DPoP proof's `htu` names.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `method path` through the gateway with these headers (repeats allowed).
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send_body(method, path, headers, "").await
    }

    /// Same, with a request body (none when empty).
    pub async fn send_body(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        let mut request = self.client.request(method, self.url(path)).headers(map);
        if !body.is_empty() {
            request = request.body(body.to_string());
        }
        let response =
            request.send().await.unwrap_or_else(|e| panic!("request through the gateway failed: {e}{}", self.logs()));
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        Reply { status, headers, body }
    }

    /// Sends `head` (request line and headers, `\r\n`-separated, without the blank line)
    /// through the gateway byte for byte, with `Connection: close`: for requests an HTTP
    /// client library will not write, such as an absolute-form target.
    pub async fn send_raw(&self, head: &str) -> Reply {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let addr = self.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the gateway");
        let request = format!("{head}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write request");
        let mut raw = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
        read.expect("the gateway answers within 10 s").expect("read answer");
        parse_reply(&raw)
            .unwrap_or_else(|| panic!("not an HTTP answer: {:?}{}", String::from_utf8_lossy(&raw), self.logs()))
    }

    /// Stops tollgate (killed by its pid): the gateway's checks find nobody listening.
    pub fn stop_tollgate(&mut self) {
        self.tollgate.take();
    }

    /// tollgate's `/metrics` text, fetched directly (not through the gateway).
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.check_base);
        let response = self.client.get(&url).send().await.expect("GET /metrics");
        response.text().await.expect("metrics body")
    }

    /// What tollgate printed so far.
    pub fn tollgate_output(&self) -> String {
        self.tollgate.as_ref().map(ProcessGuard::output).unwrap_or_default()
    }

    /// Everything the gateway and tollgate logged, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "\n--- {} ---\n{}\n--- tollgate ---\n{}",
            self.gateway.name,
            self.gateway.output(),
            self.tollgate.as_ref().map(ProcessGuard::output).unwrap_or_default()
        )
    }
}

/// An answer at the client.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers.get_all(name).iter().map(|v| v.to_str().expect("ascii header").to_string()).collect()
    }

    /// The `WWW-Authenticate` headers, in order.
    pub fn challenges(&self) -> Vec<String> {
        self.all("www-authenticate")
    }

    /// The `error` member of a JSON body.
    pub fn error(&self) -> Option<String> {
        serde_json::from_str::<Value>(&self.body).ok()?.get("error")?.as_str().map(str::to_owned)
    }

    /// The echo upstream's view: what it received.
    pub fn upstream(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "expected the upstream's answer; got: {self:?}");
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("upstream body is not JSON ({e}): {}", self.body))
    }
}

/// An HTTP/1.1 answer read to the end of the connection (`Content-Length` or chunked).
fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        headers.append(name, value.trim().parse().ok()?);
    }
    let chunked = headers.get("transfer-encoding").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let body = if chunked { dechunk(body)? } else { body.to_string() };
    Some(Reply { status: StatusCode::from_u16(status).ok()?, headers, body })
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size + 2..)?;
    }
}

/// Every value the upstream received for header `name` (lower case).
pub fn received(upstream: &Value, name: &str) -> Vec<String> {
    upstream
        .get(name)
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Header names the upstream received that a CGI/WSGI/PHP backend would read as `name`
/// (every character but letters and digits becomes `_`), other than `name` itself.
pub fn aliases_received(upstream: &Value, name: &str) -> Vec<String> {
    let fold = |s: &str| {
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect::<String>()
    };
    let target = fold(name);
    upstream
        .as_object()
        .map(|o| o.keys().filter(|k| k.as_str() != name && fold(k) == target).cloned().collect())
        .unwrap_or_default()
}

/// A header that must not carry a client's value: absent, or present once and empty.
pub fn assert_empty_or_absent(upstream: &Value, name: &str) {
    let values = received(upstream, name);
    assert!(
        values.is_empty() || values == [""],
        "{name}: expected no value or one empty value, got {values:?}: {upstream}"
    );
}

// ---------------------------------------------------------------------------------------
// Challenges as tollgate writes them (realm "api", DPoP enabled with ES256).

pub const BEARER: &str = r#"Bearer realm="api""#;
pub const DPOP: &str = r#"DPoP algs="ES256""#;

pub fn bearer_error(error: &str, description: &str) -> String {
    format!(r#"Bearer realm="api", error="{error}", error_description="{description}""#)
}

pub fn dpop_error(error: &str, description: &str) -> String {
    format!(r#"DPoP error="{error}", error_description="{description}", algs="ES256""#)
}

/// A refusal at the client: this status, exactly these challenges in this order, and
/// tollgate's JSON body with `error` (when given).
pub fn assert_refused(stack: &Stack, reply: &Reply, status: StatusCode, challenges: &[&str], error: Option<&str>) {
    assert_eq!(reply.status, status, "{reply:?}{}", stack.logs());
    assert_eq!(reply.challenges(), challenges, "WWW-Authenticate at the client: {reply:?}");
    assert_eq!(reply.error().as_deref(), error, "body: {reply:?}");
}

// ---------------------------------------------------------------------------------------
// The scenarios every gateway must pass.

/// A valid Bearer token: the upstream gets the request as sent plus tollgate's headers.
/// Returns the reply, for a gateway's own checks on it.
pub async fn valid_token_reaches_upstream(stack: &Stack) -> Reply {
    let token = stack.token();
    let reply = stack.send("GET", "/orders/7?x=1", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}{}", stack.logs());
    let upstream = reply.upstream();
    assert_eq!(upstream[":method"], "GET");
    assert_eq!(upstream[":uri"], "/orders/7?x=1");
    assert_eq!(received(&upstream, "x-auth-subject"), ["user1"], "{upstream}");
    assert_eq!(received(&upstream, "x-auth-scheme"), ["Bearer"], "{upstream}");
    let claims = received(&upstream, "x-auth-claims");
    assert_eq!(claims.len(), 1, "exactly one X-Auth-Claims: {claims:?}");
    let payload = tollgate::jws::decode(&claims[0]).expect("X-Auth-Claims is base64url");
    let payload: Value = serde_json::from_slice(&payload).expect("X-Auth-Claims is JSON");
    assert_eq!(payload["sub"], "user1");
    assert_eq!(payload["aud"], AUDIENCE);
    assert!(reply.challenges().is_empty(), "{reply:?}");
    reply
}

/// A `[headers]` entry (`X-Auth-Email` from `email`): the claim reaches the upstream,
/// replacing the client's; without the claim the header arrives empty or not at all.
pub async fn claim_header_reaches_upstream(stack: &Stack) {
    let token = stack.issuer.token_with(&stack.issuer.key, "read", json!({ "email": "user1@example.com" }));
    let headers = [("authorization", format!("Bearer {token}")), ("x-auth-email", "admin@example.com".into())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let upstream = stack.send("GET", "/orders", &headers).await.upstream();
    assert_eq!(received(&upstream, "x-auth-email"), ["user1@example.com"], "{upstream}{}", stack.logs());

    let token = stack.token();
    let headers = [("authorization", format!("Bearer {token}")), ("x-auth-email", "admin@example.com".into())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let upstream = stack.send("GET", "/orders", &headers).await.upstream();
    assert_empty_or_absent(&upstream, "x-auth-email");
}

/// No credentials: 401 with both bare challenges, Bearer first, each exactly once.
pub async fn no_token_gets_bare_challenges(stack: &Stack) {
    let reply = stack.send("GET", "/orders", &[]).await;
    assert_refused(stack, &reply, StatusCode::UNAUTHORIZED, &[BEARER, DPOP], Some("unauthorized"));
    assert!(reply.all("dpop-nonce").is_empty(), "{reply:?}");
}

/// A malformed and a wrongly signed token: 401 `invalid_token`.
pub async fn bad_token_gets_invalid_token(stack: &Stack) {
    let reply = stack.send("GET", "/orders", &[("authorization", "Bearer not-a-token")]).await;
    let challenge = bearer_error("invalid_token", "malformed access token");
    assert_refused(stack, &reply, StatusCode::UNAUTHORIZED, &[&challenge, DPOP], Some("invalid_token"));

    let stranger = SigningKey::rsa("k1").expect("key");
    let forged = stack.issuer.token_with(&stranger, "read", json!({}));
    let reply = stack.send("GET", "/orders", &[("authorization", &format!("Bearer {forged}"))]).await;
    let challenge = bearer_error("invalid_token", "invalid signature");
    assert_refused(stack, &reply, StatusCode::UNAUTHORIZED, &[&challenge, DPOP], Some("invalid_token"));
}

/// `POST /admin/x` needs `write:admin`: 403 naming it; with it, the request and its body pass.
pub async fn missing_scope_gets_403(stack: &Stack) {
    let token = stack.token();
    let reply = stack.send_body("POST", "/admin/x", &[("authorization", &format!("Bearer {token}"))], "{}").await;
    // Both challenges pass (nginx's auth_request keeps only the first): the error in the
    // scheme the request used, then the DPoP offer.
    let challenge = r#"Bearer realm="api", error="insufficient_scope", error_description="insufficient scope", scope="write:admin""#;
    assert_refused(stack, &reply, StatusCode::FORBIDDEN, &[challenge, DPOP], Some("insufficient_scope"));

    let token = stack.issuer.token("read write:admin");
    let reply =
        stack.send_body("POST", "/admin/x", &[("authorization", &format!("Bearer {token}"))], r#"{"n":1}"#).await;
    let upstream = reply.upstream();
    assert_eq!(upstream[":method"], "POST");
    assert_eq!(upstream[":body"], r#"{"n":1}"#, "the bodiless check leaves the body to the API");
    assert_eq!(received(&upstream, "x-auth-subject"), ["user1"]);
}

/// The identity headers a client forges (and their aliases) never reach the upstream.
pub async fn forged_auth_headers_never_reach_upstream(stack: &Stack) {
    let token = stack.token();
    let forged = [
        ("x-auth-subject", "admin"),
        ("x-auth-scheme", "DPoP"),
        ("x-auth-claims", "eyJzdWIiOiJhZG1pbiJ9"),
        ("x-auth-email", "admin@example.com"),
        // Names a CGI/WSGI/PHP backend reads as X-Auth-Subject.
        ("x_auth_subject", "admin"),
        ("x.auth.subject", "admin"),
        ("x-auth~subject", "admin"),
    ];

    // A valid token for user1: tollgate's values replace the client's.
    let authorization = format!("Bearer {token}");
    let mut headers = vec![("authorization", authorization.as_str())];
    headers.extend(forged);
    let upstream = stack.send("GET", "/orders", &headers).await.upstream();
    assert_eq!(received(&upstream, "x-auth-subject"), ["user1"], "{upstream}");
    assert_eq!(received(&upstream, "x-auth-scheme"), ["Bearer"], "{upstream}");
    let claims = received(&upstream, "x-auth-claims");
    assert_eq!(claims.len(), 1, "{upstream}");
    assert_ne!(claims[0], "eyJzdWIiOiJhZG1pbiJ9");
    // The token has no email claim: tollgate sends X-Auth-Email empty.
    assert_empty_or_absent(&upstream, "x-auth-email");
    assert!(aliases_received(&upstream, "x-auth-subject").is_empty(), "{upstream}");

    // A public route, no token: tollgate sends the identity headers empty; the client's
    // values are gone either way.
    let upstream = stack.send("GET", "/public/status", &forged).await.upstream();
    assert_eq!(upstream[":uri"], "/public/status");
    for name in ["x-auth-subject", "x-auth-scheme", "x-auth-claims", "x-auth-email"] {
        assert_empty_or_absent(&upstream, name);
    }
    assert!(aliases_received(&upstream, "x-auth-subject").is_empty(), "{upstream}");

    // A protected route with no token never reaches the upstream.
    let reply = stack.send("GET", "/orders", &forged).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
}

/// Other dialects' headers (and forged ones of this dialect) describe nothing: `POST
/// /admin/x` stays `POST /admin/x`.
pub async fn other_dialect_headers_change_no_decision(stack: &Stack) {
    let token = stack.token();
    let authorization = format!("Bearer {token}");
    let spoofs: [&[(&str, &str)]; 7] = [
        &[("x-original-url", "/public")],
        &[("x-original-uri", "/public")],
        &[("x-forwarded-uri", "/public")],
        &[("x-original-method", "GET"), ("x-forwarded-method", "GET")],
        &[("x-forwarded-prefix", "/public")],
        &[("x-forwarded-host", "public.example"), ("x-forwarded-proto", "https")],
        &[
            ("x-original-url", "http://127.0.0.1/public"),
            ("x-original-uri", "/public"),
            ("x-forwarded-uri", "/public"),
            ("x-forwarded-method", "GET"),
            ("x-forwarded-prefix", "/public"),
        ],
    ];
    for spoof in spoofs {
        let mut headers = vec![("authorization", authorization.as_str())];
        headers.extend_from_slice(spoof);
        let reply = stack.send("POST", "/admin/x", &headers).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "spoof {spoof:?}: {reply:?}{}", stack.logs());
        assert!(reply.challenges()[0].contains(r#"scope="write:admin""#), "{reply:?}");

        // Without a token the spoof does not open the public route either.
        let reply = stack.send("POST", "/admin/x", spoof).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "spoof {spoof:?}: {reply:?}");
    }
}

/// A DPoP request: the proof names the URL the client used; the upstream sees `DPoP`.
pub async fn dpop_request_passes_with_dpop_scheme(stack: &Stack) {
    let token = stack.issuer.bound_token("read");
    // The query is not part of htu (RFC 9449 §4.2).
    let proof = stack.issuer.proof("GET", &stack.url("/orders"), &token);
    let authorization = format!("DPoP {token}");
    let reply = stack.send("GET", "/orders?page=2", &[("authorization", &authorization), ("dpop", &proof)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}{}", stack.logs());
    let upstream = reply.upstream();
    assert_eq!(upstream[":uri"], "/orders?page=2");
    assert_eq!(received(&upstream, "x-auth-subject"), ["user1"], "{upstream}");
    assert_eq!(received(&upstream, "x-auth-scheme"), ["DPoP"], "{upstream}");

    // POST: htm is the client's method, although the gateway's check is a GET.
    let proof = stack.issuer.proof("POST", &stack.url("/orders"), &token);
    let reply = stack.send_body("POST", "/orders", &[("authorization", &authorization), ("dpop", &proof)], "{}").await;
    assert_eq!(received(&reply.upstream(), "x-auth-scheme"), ["DPoP"]);
}

/// A proof used twice: 401 `invalid_dpop_proof`, the DPoP challenge first.
pub async fn replayed_proof_is_refused(stack: &Stack) {
    let token = stack.issuer.bound_token("read");
    let proof = stack.issuer.proof("GET", &stack.url("/orders"), &token);
    let headers = [("authorization", format!("DPoP {token}")), ("dpop", proof)];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let reply = stack.send("GET", "/orders", &headers).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}{}", stack.logs());
    let reply = stack.send("GET", "/orders", &headers).await;
    let challenge = dpop_error("invalid_dpop_proof", "DPoP proof replayed");
    assert_refused(stack, &reply, StatusCode::UNAUTHORIZED, &[&challenge, BEARER], Some("invalid_dpop_proof"));
}

/// A proof for another URL than the one the client used: 401 `invalid_dpop_proof`.
pub async fn wrong_htu_is_refused(stack: &Stack) {
    let token = stack.issuer.bound_token("read");
    let port = stack.base.rsplit(':').next().expect("port");
    let wrong = [
        stack.url("/other"),
        format!("https://127.0.0.1:{port}/orders"),
        "http://127.0.0.1/orders".to_string(),
        format!("http://api.example.com:{port}/orders"),
    ];
    let challenge = dpop_error("invalid_dpop_proof", "DPoP proof htu mismatch");
    for htu in wrong {
        let proof = stack.issuer.proof("GET", &htu, &token);
        let reply =
            stack.send("GET", "/orders", &[("authorization", &format!("DPoP {token}")), ("dpop", &proof)]).await;
        assert_refused(stack, &reply, StatusCode::UNAUTHORIZED, &[&challenge, BEARER], Some("invalid_dpop_proof"));
    }
}

/// With `dpop.nonce` (start the stack with `extra: NONCES`): a proof without a nonce gets
/// 401 `use_dpop_nonce` and a `DPoP-Nonce` at the client; the retry with it passes.
/// Returns the successful reply, whose headers differ by gateway.
pub async fn nonce_reaches_client_on_401(stack: &Stack) -> Reply {
    let token = stack.issuer.bound_token("read");
    let authorization = format!("DPoP {token}");
    let proof = stack.issuer.proof("GET", &stack.url("/orders"), &token);
    let reply = stack.send("GET", "/orders", &[("authorization", &authorization), ("dpop", &proof)]).await;
    let challenge = dpop_error("use_dpop_nonce", "DPoP nonce required");
    assert_refused(stack, &reply, StatusCode::UNAUTHORIZED, &[&challenge, BEARER], Some("use_dpop_nonce"));
    let nonces = reply.all("dpop-nonce");
    assert_eq!(nonces.len(), 1, "one DPoP-Nonce at the client: {reply:?}");

    let proof = ProofBuilder::new(&stack.issuer.client_key, "GET", &stack.url("/orders"), &token, support::now())
        .claim("nonce", json!(nonces[0]))
        .sign();
    let reply = stack.send("GET", "/orders", &[("authorization", &authorization), ("dpop", &proof)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}{}", stack.logs());
    assert_eq!(received(&reply.upstream(), "x-auth-scheme"), ["DPoP"]);
    // tollgate's next nonce is for the client, not the API.
    assert!(received(&reply.upstream(), "dpop-nonce").is_empty(), "{reply:?}");
    reply
}

/// A DPoP-bound token sent as a Bearer token: 401 `invalid_token`.
pub async fn bound_token_as_bearer_is_refused(stack: &Stack) {
    let token = stack.issuer.bound_token("read");
    let reply = stack.send("GET", "/orders", &[("authorization", &format!("Bearer {token}"))]).await;
    let challenge = bearer_error("invalid_token", "DPoP-bound token sent as a Bearer token");
    assert_refused(stack, &reply, StatusCode::UNAUTHORIZED, &[&challenge, DPOP], Some("invalid_token"));
}

/// Malformed requests reach the client as RFC 6750's 400: these gateways pass any status.
pub async fn invalid_request_is_400(stack: &Stack) {
    let token = stack.token();
    let authorization = format!("Bearer {token}");
    let reply =
        stack.send("GET", "/orders", &[("authorization", &authorization), ("authorization", &authorization)]).await;
    let challenge = bearer_error("invalid_request", "more than one Authorization header");
    assert_refused(stack, &reply, StatusCode::BAD_REQUEST, &[&challenge, DPOP], Some("invalid_request"));

    let token = stack.issuer.bound_token("read");
    let proof = stack.issuer.proof("GET", &stack.url("/orders"), &token);
    let authorization = format!("DPoP {token}");
    let headers = [("authorization", authorization.as_str()), ("dpop", proof.as_str()), ("dpop", proof.as_str())];
    let reply = stack.send("GET", "/orders", &headers).await;
    let challenge = dpop_error("invalid_request", "more than one DPoP proof");
    assert_refused(stack, &reply, StatusCode::BAD_REQUEST, &[&challenge, BEARER], Some("invalid_request"));
}

/// tollgate without issuer keys answers 503 with `Retry-After`; the client gets exactly that.
pub async fn undecidable_check_is_503(stack: &Stack) {
    let token = stack.token();
    let reply = stack.send("GET", "/orders", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}{}", stack.logs());
    assert_eq!(reply.all("retry-after"), ["5"], "{reply:?}");
    assert!(reply.challenges().is_empty(), "{reply:?}");
    assert_eq!(reply.error().as_deref(), Some("temporarily_unavailable"), "{reply:?}");
}

/// A host route holds whatever way the client writes the host the gateway routes on: case,
/// the listener's port, a default port on the wrong scheme, a trailing dot. Each answer is
/// 403 naming the route's scope; with the scope the request passes.
pub async fn host_route_holds_for_every_written_host(stack: &Stack) {
    let port = stack.base.rsplit(':').next().expect("port").to_string();
    let hosts = [
        ADMIN_HOST.to_string(),
        ADMIN_HOST.to_uppercase(),
        format!("{ADMIN_HOST}:{port}"),
        format!("{ADMIN_HOST}:443"),
        format!("{ADMIN_HOST}."),
        format!("{}.:{port}", ADMIN_HOST.to_uppercase()),
    ];
    let reader = format!("Bearer {}", stack.token());
    let admin = format!("Bearer {}", stack.issuer.token("read admin"));
    for host in &hosts {
        let reply = stack.send("GET", "/secret", &[("host", host), ("authorization", &reader)]).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "Host: {host}: {reply:?}{}", stack.logs());
        let challenges = reply.challenges();
        assert!(challenges.first().is_some_and(|c| c.contains(r#"scope="admin""#)), "Host: {host}: {reply:?}");

        let reply = stack.send("GET", "/secret", &[("host", host), ("authorization", &admin)]).await;
        assert_eq!(reply.upstream()[":uri"], "/secret", "Host: {host}");
    }
}

/// A DPoP proof names the URL the client used, port and all, while the route is decided on
/// the host without it: `Host: admin.example.com:PORT` needs `admin`, and the proof for
/// `http://admin.example.com:PORT/secret` passes.
pub async fn dpop_htu_keeps_the_port_of_a_routed_host(stack: &Stack) {
    let port = stack.base.rsplit(':').next().expect("port").to_string();
    let host = format!("{ADMIN_HOST}:{port}");
    let htu = format!("http://{host}/secret");
    for (scope, status) in [("read", StatusCode::FORBIDDEN), ("read admin", StatusCode::OK)] {
        let token = stack.issuer.bound_token(scope);
        let proof = stack.issuer.proof("GET", &htu, &token);
        let authorization = format!("DPoP {token}");
        let headers = [("host", host.as_str()), ("authorization", &authorization), ("dpop", &proof)];
        let reply = stack.send("GET", "/secret", &headers).await;
        assert_eq!(reply.status, status, "scope {scope}: {reply:?}{}", stack.logs());
    }
}

/// Started with a trust list that misses the gateway (`trusted: UNTRUSTED`): every check
/// is refused with 500 and never reaches the upstream, tollgate logs an error naming the
/// peer and the setting, and `/metrics` counts it under its own reason.
pub async fn a_trust_list_missing_the_gateway_fails_closed(stack: &Stack) {
    a_trust_list_missing_the_gateway_fails_closed_with(stack, StatusCode::INTERNAL_SERVER_ERROR).await;
}

/// The same, for a gateway that answers a failed check with `status` (nginx: 503).
pub async fn a_trust_list_missing_the_gateway_fails_closed_with(stack: &Stack, status: StatusCode) {
    let token = format!("Bearer {}", stack.token());
    for (method, path) in [("POST", "/admin/x"), ("GET", "/orders"), ("GET", "/public/status")] {
        let reply = stack.send(method, path, &[("authorization", &token)]).await;
        assert_eq!(reply.status, status, "{method} {path}: {reply:?}{}", stack.logs());
    }
    let output = without_ansi(&stack.tollgate_output());
    assert!(
        output.contains("ERROR") && output.contains("proxy.trusted") && output.contains("peer=127.0.0.1"),
        "tollgate must log an error naming the peer and proxy.trusted; it printed:\n{output}"
    );
    let metrics = stack.metrics().await;
    let counted = metrics
        .lines()
        .find(|l| l.starts_with("tollgate_checks_total") && l.contains(r#"reason="untrusted_gateway""#))
        .unwrap_or_else(|| panic!("no untrusted_gateway count in /metrics:\n{metrics}"));
    assert!(counted.contains(r#"outcome="error""#), "{counted}");
    let count: f64 = counted.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a count");
    assert!(count >= 3.0, "{counted}");
}

/// `text` without terminal colour sequences (`ESC [ … m`).
pub fn without_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

/// Methods as the upstream acts on them: HEAD is held to the GET route of /reports, and a
/// method override (each header, lower case, several at once, `_method`) to the DELETE
/// route of /orders. The override headers never reach the upstream (the shipped configs
/// drop them); a `_method` parameter does, and was judged.
pub async fn method_readings_hold(stack: &Stack) {
    let reader = format!("Bearer {}", stack.token());
    let reply = stack.send("HEAD", "/reports/q", &[("authorization", &reader)]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "HEAD /reports/q: {reply:?}{}", stack.logs());
    let reports = format!("Bearer {}", stack.issuer.token("read read:reports"));
    let reply = stack.send("HEAD", "/reports/q", &[("authorization", &reports)]).await;
    assert_eq!(reply.status, StatusCode::OK, "HEAD with read:reports: {reply:?}{}", stack.logs());

    let overridden: [&[(&str, &str)]; 5] = [
        &[("x-http-method-override", "DELETE")],
        &[("x-http-method", "DELETE")],
        &[("x-method-override", "delete")],
        &[("x-http-method-override", "PUT"), ("x-method-override", "DELETE")],
        &[("x-http-method-override", "PATCH, DELETE")],
    ];
    for headers in overridden {
        let mut all = vec![("authorization", reader.as_str())];
        all.extend_from_slice(headers);
        let reply = stack.send("GET", "/orders/1", &all).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{headers:?}: {reply:?}{}", stack.logs());
        assert!(reply.challenges()[0].contains(r#"scope="delete:orders""#), "{reply:?}");
    }
    let reply = stack.send("POST", "/orders/1?_method=DELETE", &[("authorization", &reader)]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "_method=DELETE: {reply:?}");

    let deleter = format!("Bearer {}", stack.issuer.token("read delete:orders"));
    let headers = [
        ("authorization", deleter.as_str()),
        ("x-http-method-override", "DELETE"),
        ("x-http-method", "DELETE"),
        ("x-method-override", "DELETE"),
    ];
    let upstream = stack.send("GET", "/orders/1", &headers).await.upstream();
    for name in ["x-http-method-override", "x-http-method", "x-method-override"] {
        assert_empty_or_absent(&upstream, name);
    }
    // An override to a method no route names: the routes of GET still decide.
    let headers = [("authorization", reader.as_str()), ("x-http-method-override", "PURGE")];
    assert_eq!(stack.send("GET", "/orders/1", &headers).await.status, StatusCode::OK);
}

/// Paths as upstream routers read them (`path_matching = "strict"`): case folded and
/// without a format suffix, `/admin` still needs `write:admin`.
pub async fn path_readings_hold(stack: &Stack) {
    let reader = format!("Bearer {}", stack.token());
    for path in ["/ADMIN/users", "/Admin", "/admin.json", "/Admin/users.xml"] {
        let reply = stack.send("GET", path, &[("authorization", &reader)]).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}: {reply:?}{}", stack.logs());
        assert!(reply.challenges()[0].contains(r#"scope="write:admin""#), "{path}: {reply:?}");
    }
    // A public route stays public for its own path, and only for it.
    assert_eq!(stack.send("GET", "/public/status.json", &[]).await.status, StatusCode::OK);
    assert_eq!(stack.send("GET", "/PUBLIC/status", &[]).await.status, StatusCode::UNAUTHORIZED);
}

/// tollgate's `[client]` and a route that exchanges the incoming token (on-behalf-of) at
/// the mock issuer's token endpoint.
pub const EXCHANGE: &str = r#"
[client]
client_id = "tollgate-e2e"
client_secret = "e2e-secret"

[[routes]]
path_prefix = "/calendar"
exchange = { audience = "https://calendar-api.example.com", header = "X-Auth-Downstream-Token" }
"#;

/// Started with `extra: EXCHANGE`: the upstream receives the downstream token tollgate
/// obtained, never a client's, and on other routes none at all; the delegation headers
/// (current actor, chain) reach it on every allowed request.
pub async fn downstream_token_and_delegation_reach_upstream(stack: &Stack) {
    let token = stack.issuer.token_with(
        &stack.issuer.key,
        "read",
        json!({ "act": { "sub": "mcp_server", "act": { "sub": "agent" } } }),
    );
    let authorization = format!("Bearer {token}");
    let forged = [("authorization", authorization.as_str()), ("x-auth-downstream-token", "forged-by-client")];
    let upstream = stack.send("GET", "/calendar/events", &forged).await.upstream();
    assert_eq!(received(&upstream, "x-auth-downstream-token"), ["downstream-1"], "{upstream}{}", stack.logs());
    assert_eq!(received(&upstream, "x-auth-actor"), ["mcp_server"], "{upstream}");
    assert_eq!(received(&upstream, "x-auth-delegation-chain"), ["mcp_server,agent"], "{upstream}");
    assert!(aliases_received(&upstream, "x-auth-downstream-token").is_empty(), "{upstream}");

    let upstream = stack.send("GET", "/orders", &forged).await.upstream();
    assert_empty_or_absent(&upstream, "x-auth-downstream-token");
    let calls = stack.issuer.mock.token_calls();
    assert_eq!(calls.len(), 1, "one exchange, for the route that has one");
    assert_eq!(calls[0].field("subject_token"), [token.as_str()]);
}

/// A trust list that leaves the loopback gateway out.
pub const UNTRUSTED: &str = r#"["10.0.0.5/32"]"#;

/// One test per shared scenario, for a gateway test file that defines
/// `async fn stack() -> Stack` and `async fn stack_with(Options) -> Stack` and passes tollgate's refusals to the client unchanged
/// (Traefik, Caddy). nginx rewrites refusals, so it calls the scenarios it can share itself.
#[allow(unused_macros)] // nginx.rs shares the harness but not this macro
macro_rules! common_scenarios {
    () => {
        #[tokio::test]
        async fn valid_token_reaches_upstream_with_tollgate_headers() {
            e2e::valid_token_reaches_upstream(&stack().await).await;
        }

        #[tokio::test]
        async fn claim_header_reaches_upstream() {
            e2e::claim_header_reaches_upstream(&stack().await).await;
        }

        #[tokio::test]
        async fn no_token_gets_both_bare_challenges() {
            e2e::no_token_gets_bare_challenges(&stack().await).await;
        }

        #[tokio::test]
        async fn bad_token_gets_invalid_token_challenge() {
            e2e::bad_token_gets_invalid_token(&stack().await).await;
        }

        #[tokio::test]
        async fn missing_scope_gets_403_with_insufficient_scope() {
            e2e::missing_scope_gets_403(&stack().await).await;
        }

        #[tokio::test]
        async fn client_sent_auth_headers_never_reach_upstream() {
            e2e::forged_auth_headers_never_reach_upstream(&stack().await).await;
        }

        #[tokio::test]
        async fn other_dialect_headers_change_no_decision() {
            e2e::other_dialect_headers_change_no_decision(&stack().await).await;
        }

        #[tokio::test]
        async fn dpop_request_reaches_upstream_with_dpop_scheme() {
            e2e::dpop_request_passes_with_dpop_scheme(&stack().await).await;
        }

        #[tokio::test]
        async fn replayed_dpop_proof_is_refused() {
            e2e::replayed_proof_is_refused(&stack().await).await;
        }

        #[tokio::test]
        async fn dpop_proof_for_another_url_is_refused() {
            e2e::wrong_htu_is_refused(&stack().await).await;
        }

        #[tokio::test]
        async fn dpop_bound_token_as_bearer_is_refused() {
            e2e::bound_token_as_bearer_is_refused(&stack().await).await;
        }

        #[tokio::test]
        async fn invalid_request_reaches_client_as_400() {
            e2e::invalid_request_is_400(&stack().await).await;
        }

        #[tokio::test]
        async fn host_route_holds_for_every_written_host() {
            e2e::host_route_holds_for_every_written_host(&stack().await).await;
        }

        #[tokio::test]
        async fn dpop_htu_keeps_the_port_of_a_routed_host() {
            e2e::dpop_htu_keeps_the_port_of_a_routed_host(&stack().await).await;
        }

        #[tokio::test]
        async fn methods_are_judged_as_the_upstream_acts_on_them() {
            e2e::method_readings_hold(&stack().await).await;
        }

        #[tokio::test]
        async fn paths_are_judged_as_upstream_routers_read_them() {
            e2e::path_readings_hold(&stack().await).await;
        }

        #[tokio::test]
        async fn downstream_token_and_delegation_reach_upstream() {
            let stack = stack_with(e2e::Options { extra: e2e::EXCHANGE, ..e2e::Options::default() }).await;
            e2e::downstream_token_and_delegation_reach_upstream(&stack).await;
        }

        #[tokio::test]
        async fn a_trust_list_missing_the_gateway_fails_closed() {
            let stack = stack_with(e2e::Options { trusted: e2e::UNTRUSTED, ..e2e::Options::default() }).await;
            e2e::a_trust_list_missing_the_gateway_fails_closed(&stack).await;
        }
    };
}

/// Credentials plus every header a client might send to pass for a gateway or for
/// tollgate: what the gateway tests send to see what reaches the check.
pub const CLIENT_HEADERS: &[(&str, &str)] = &[
    ("authorization", "Bearer abc"),
    ("dpop", "a.b.c"),
    ("x-original-url", "/public"),
    ("x-original-uri", "/public"),
    ("x-original-method", "GET"),
    ("x-forwarded-uri", "/public"),
    ("x-forwarded-method", "GET"),
    ("x-forwarded-host", "public.example"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-prefix", "/public"),
    ("x-auth-subject", "admin"),
];
