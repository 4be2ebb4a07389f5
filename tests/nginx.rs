//! End to end behind real nginx: the shipped `deploy/nginx/tollgate.conf`, as it ships
//! (only its three placeholder addresses replaced), in front of an echo upstream, with the
//! real `tollgate` binary checking tokens from the mock issuer.
//!
//! nginx must be installed (`apt-get install nginx`); without it these tests fail.

mod support;

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};
use support::{AUDIENCE, JwksMode, MockIssuer};
use tollgate::dev::SigningKey;

/// The example as it ships; the test only swaps the placeholder addresses.
const SHIPPED_CONF: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx/tollgate.conf"));
const SHIPPED_TOLLGATE: &str = "127.0.0.1:8080";
const SHIPPED_API: &str = "127.0.0.1:3000";
const SHIPPED_LISTEN: &str = "listen 8000;";

/// How long a process may take to become ready.
const STARTUP: Duration = Duration::from_secs(15);
/// Attempts per process: a free port found by binding :0 can be taken before it is used.
const PORT_ATTEMPTS: usize = 3;

// ---------------------------------------------------------------------------------------
// Processes and files that clean up after themselves.

/// A child process killed (by its pid) and reaped when the guard drops.
struct ProcessGuard {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl ProcessGuard {
    /// The process's output so far, for failure messages.
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("tollgate-nginx-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        // nginx may drop privileges for some work; let it read its own prefix.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        }
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").expect("bind :0").local_addr().expect("addr").port()
}

/// The nginx binary, or a failure telling how to install it.
fn nginx_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let candidates = std::env::split_paths(&path).chain(["/usr/sbin".into(), "/usr/local/sbin".into()]);
    for dir in candidates {
        let file = dir.join("nginx");
        if file.is_file() {
            return file;
        }
    }
    panic!(
        "nginx is not installed (not on PATH nor in /usr/sbin): these tests need real nginx; install it with `apt-get install nginx` (or run scripts/test.sh as root)"
    );
}

/// Spawns `command` with its output in `log`.
fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> ProcessGuard {
    let out = File::create(&log).expect("create log");
    let err = out.try_clone().expect("clone log");
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    // Hermetic: no config from the environment this test runs in.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("TOLLGATE_") || name.starts_with("AUTH0_") {
            command.env_remove(&*name);
        }
    }
    let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    ProcessGuard { name, child, log }
}

/// Polls `ready` until it holds; fails if the process exits or `STARTUP` passes.
/// Returns false (process exited) so the caller may retry on another port.
async fn wait_ready<F, Fut>(process: &mut ProcessGuard, mut ready: F) -> bool
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

// ---------------------------------------------------------------------------------------
// The issuer: the shared mock (discovery and JWKS on 127.0.0.1) and its signing key.

struct Issuer {
    mock: MockIssuer,
    key: SigningKey,
}

impl Issuer {
    async fn start(jwks: JwksMode) -> Issuer {
        let key = SigningKey::rsa("k1").expect("key");
        let mock = MockIssuer::start(&[&key]).await;
        mock.set_mode(jwks);
        Issuer { mock, key }
    }

    fn url(&self) -> String {
        self.mock.issuer()
    }

    /// A token for user1 with scope `scope`, signed by `key`, valid for ten minutes.
    fn token_signed_by(&self, key: &SigningKey, scope: &str) -> String {
        self.token_with(key, scope, json!({}))
    }

    /// Same, with `extra` claims added.
    fn token_with(&self, key: &SigningKey, scope: &str, extra: Value) -> String {
        let mut token = self.mock.token(key, support::now()).claim("scope", json!(scope));
        for (name, value) in extra.as_object().into_iter().flatten() {
            token = token.claim(name, value.clone());
        }
        token.sign()
    }

    fn token(&self, scope: &str) -> String {
        self.token_signed_by(&self.key, scope)
    }
}

// ---------------------------------------------------------------------------------------
// The echo upstream: answers 200 with every request header it received.

/// `{"header-name": ["value", …], …, ":method": "GET", ":uri": "/path?query", ":body": "…"}`.
async fn echo(method: Method, uri: Uri, headers: HeaderMap, request_body: String) -> axum::Json<Value> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &headers {
        seen.entry(name.as_str().to_string()).or_default().push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let mut body = serde_json::to_value(seen).expect("json");
    body[":method"] = json!(method.as_str());
    body[":uri"] = json!(uri.to_string());
    body[":body"] = json!(request_body);
    axum::Json(body)
}

async fn start_echo() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("addr");
    let app = Router::new().fallback(echo);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

// ---------------------------------------------------------------------------------------
// The whole stack.

/// Client → nginx (shipped config) → tollgate → mock issuer; nginx → echo upstream.
/// Fields drop in order: nginx and tollgate are killed before their directory goes.
struct Stack {
    nginx: ProcessGuard,
    tollgate: ProcessGuard,
    echo: tokio::task::JoinHandle<()>,
    issuer: Issuer,
    base: String,
    client: reqwest::Client,
    _dir: TempDir,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.echo.abort();
    }
}

/// tollgate's config for the stack, with `extra` TOML tables appended.
fn tollgate_config(issuer: &str, port: u16, extra: &str) -> String {
    format!(
        r#"listen = "127.0.0.1:{port}"

[issuer]
url = "{issuer}"
audience = "{AUDIENCE}"

[proxy]
gateway = "nginx"
trusted = ["127.0.0.1/32", "::1/128"]

[errors]
invalid_request_status = 401

[[routes]]
path_prefix = "/public"
public = true

[[routes]]
path_prefix = "/admin"
scopes = ["write:admin"]

{extra}
"#
    )
}

/// The shipped file with only its placeholder addresses replaced.
fn site_config(tollgate: u16, api: u16, listen: u16) -> String {
    for placeholder in [SHIPPED_TOLLGATE, SHIPPED_API, SHIPPED_LISTEN] {
        assert_eq!(
            SHIPPED_CONF.matches(placeholder).count(),
            // Once in its upstream block (or listen line), once in the header comment.
            if placeholder == SHIPPED_LISTEN { 1 } else { 2 },
            "deploy/nginx/tollgate.conf: placeholder {placeholder:?} changed; update tests/nginx.rs"
        );
    }
    SHIPPED_CONF
        .replace(SHIPPED_TOLLGATE, &format!("127.0.0.1:{tollgate}"))
        .replace(SHIPPED_API, &format!("127.0.0.1:{api}"))
        .replace(SHIPPED_LISTEN, &format!("listen 127.0.0.1:{listen};"))
}

/// A minimal main config: everything nginx writes stays inside `dir`; one process, so
/// killing its pid stops it all.
fn main_config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{
    worker_connections 256;
}}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/tollgate.conf;
}}
"#
    )
}

impl Stack {
    /// The stack with an issuer that serves its key.
    async fn start() -> Stack {
        Stack::start_with(JwksMode::Serve, true, "").await
    }

    /// The stack; `jwks` is how the issuer answers; `wait_keys` waits for `/readyz`
    /// (otherwise for `/healthz` only).
    async fn start_with(jwks: JwksMode, wait_keys: bool, extra: &str) -> Stack {
        let nginx_bin = nginx_binary();
        let issuer = Issuer::start(jwks).await;
        let (echo_addr, echo) = start_echo().await;
        let dir = TempDir::new();
        let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().expect("client");

        // tollgate
        let mut attempt = 0;
        let (tollgate, tollgate_port) = loop {
            attempt += 1;
            let port = free_port();
            let config = dir.path().join("tollgate.toml");
            std::fs::write(&config, tollgate_config(&issuer.url(), port, extra)).expect("write tollgate config");
            let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
            command.arg("serve").arg("--config").arg(&config);
            let mut process = spawn("tollgate", command, dir.path().join("tollgate.log"));
            let probe = if wait_keys { "readyz" } else { "healthz" };
            let url = format!("http://127.0.0.1:{port}/{probe}");
            let up = wait_ready(&mut process, || {
                let request = client.get(&url).send();
                async move { matches!(request.await, Ok(r) if r.status() == StatusCode::OK) }
            })
            .await;
            if up {
                break (process, port);
            }
            assert!(attempt < PORT_ATTEMPTS, "tollgate exited during startup; its output:\n{}", process.output());
        };

        // nginx
        let mut attempt = 0;
        let (nginx, nginx_port) = loop {
            attempt += 1;
            let port = free_port();
            std::fs::write(dir.path().join("tollgate.conf"), site_config(tollgate_port, echo_addr.port(), port))
                .expect("write site config");
            let main = dir.path().join("nginx.conf");
            std::fs::write(&main, main_config(dir.path())).expect("write nginx config");
            let _ = std::fs::remove_file(dir.path().join("error.log"));
            let mut command = Command::new(&nginx_bin);
            let prefix = format!("{}/", dir.path().display());
            command.arg("-p").arg(&prefix).arg("-e").arg(dir.path().join("error.log")).arg("-c").arg(&main);
            let mut process = spawn("nginx", command, dir.path().join("nginx.log"));
            process.log = dir.path().join("error.log");
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let up = wait_ready(&mut process, || {
                let ok = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
                async move { ok }
            })
            .await;
            if up {
                break (process, port);
            }
            let output = format!(
                "{}{}",
                std::fs::read_to_string(dir.path().join("nginx.log")).unwrap_or_default(),
                process.output()
            );
            assert!(attempt < PORT_ATTEMPTS, "nginx exited during startup; its output:\n{output}");
        };

        Stack { nginx, tollgate, echo, issuer, base: format!("http://127.0.0.1:{nginx_port}"), client, _dir: dir }
    }

    /// A valid token for user1 with scope `read`.
    fn token(&self) -> String {
        self.issuer.token("read")
    }

    /// Sends `method path` through nginx with these headers (repeats allowed).
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send_body(method, path, headers, "").await
    }

    /// Same, with a request body (none when empty).
    async fn send_body(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        let mut map = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        request = request.headers(map);
        if !body.is_empty() {
            request = request.body(body.to_string());
        }
        let response =
            request.send().await.unwrap_or_else(|e| panic!("request through nginx failed: {e}{}", self.logs()));
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        Reply { status, headers, body }
    }

    /// Everything nginx and tollgate logged, for failure messages.
    fn logs(&self) -> String {
        format!("\n--- nginx error log ---\n{}\n--- tollgate ---\n{}", self.nginx.output(), self.tollgate.output())
    }
}

/// An answer at the client.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn all(&self, name: &str) -> Vec<String> {
        self.headers.get_all(name).iter().map(|v| v.to_str().expect("ascii header").to_string()).collect()
    }

    /// The `WWW-Authenticate` headers, in order.
    fn challenges(&self) -> Vec<String> {
        self.all("www-authenticate")
    }

    /// The echo upstream's view: what it received.
    fn upstream(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "expected the upstream's answer; got: {self:?}");
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("upstream body is not JSON ({e}): {}", self.body))
    }
}

/// Every value the upstream received for header `name`.
fn received(upstream: &Value, name: &str) -> Vec<String> {
    upstream
        .get(name)
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A 401's challenges: auth_request copies the check's `WWW-Authenticate` itself, only
/// the first before nginx 1.23 (tollgate puts the one carrying the error first), all of
/// them from 1.23 on. Exactly one copy of each either way.
fn expect_challenge(reply: &Reply, first: &str) {
    let challenges = reply.challenges();
    let all = [first, r#"DPoP algs="ES256""#];
    assert!(
        challenges == [first] || challenges == all,
        "WWW-Authenticate: expected exactly [{first:?}] (or {all:?} from nginx 1.23), got {challenges:?}; reply: {reply:?}"
    );
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test]
async fn valid_token_reaches_upstream_with_tollgate_headers() {
    let stack = Stack::start().await;
    let token = stack.token();
    let reply = stack.send("GET", "/orders/7?x=1", &[("authorization", &format!("Bearer {token}"))]).await;
    let upstream = reply.upstream();
    assert_eq!(upstream[":method"], "GET");
    assert_eq!(upstream[":uri"], "/orders/7?x=1");
    assert_eq!(received(&upstream, "x-auth-subject"), ["user1"], "{}", stack.logs());
    assert_eq!(received(&upstream, "x-auth-scheme"), ["Bearer"]);
    let claims = received(&upstream, "x-auth-claims");
    assert_eq!(claims.len(), 1, "exactly one X-Auth-Claims: {claims:?}");
    assert!(!claims[0].is_empty(), "X-Auth-Claims is empty");
    let payload = tollgate::jws::decode(&claims[0]).expect("X-Auth-Claims is base64url");
    let payload: Value = serde_json::from_slice(&payload).expect("X-Auth-Claims is JSON");
    assert_eq!(payload["sub"], "user1");
    assert_eq!(payload["aud"], AUDIENCE);
    // The check's own headers stay on the check.
    assert!(received(&upstream, "x-original-uri").is_empty());
    assert!(reply.all("dpop-nonce").is_empty(), "no nonce configured, none sent: {reply:?}");
    assert!(reply.challenges().is_empty());
}

#[tokio::test]
async fn large_claims_reach_upstream() {
    // A token near tollgate's 8 KiB limit: the client's header line needs
    // large_client_header_buffers, the check's answer proxy_buffer_size.
    let stack = Stack::start().await;
    let padded = |pad: usize| stack.issuer.token_with(&stack.issuer.key, "read", json!({ "pad": "x".repeat(pad) }));
    let mut pad = 5000;
    let mut token = padded(pad);
    for _ in 0..4 {
        // Base64url: 3 payload bytes become 4 token characters.
        pad = (pad as i64 + (8180 - token.len() as i64) * 3 / 4) as usize;
        token = padded(pad);
    }
    assert!(token.len() > 8100 && token.len() <= 8192, "token length {}", token.len());
    let reply = stack.send("GET", "/orders", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}{}", stack.logs());
    let upstream = reply.upstream();
    assert_eq!(received(&upstream, "x-auth-subject"), ["user1"]);
    let claims = received(&upstream, "x-auth-claims");
    assert!(claims[0].len() > 6000, "X-Auth-Claims length {}", claims[0].len());
}

#[tokio::test]
async fn no_token_gets_bare_bearer_challenge() {
    let stack = Stack::start().await;
    let reply = stack.send("GET", "/orders", &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}{}", stack.logs());
    expect_challenge(&reply, r#"Bearer realm="api""#);
    let body: Value = serde_json::from_str(&reply.body).expect("JSON body");
    assert!(body["error"].is_string(), "{body}");
    assert!(reply.all("dpop-nonce").is_empty());
}

#[tokio::test]
async fn bad_token_gets_invalid_token_challenge() {
    let stack = Stack::start().await;
    let reply = stack.send("GET", "/orders", &[("authorization", "Bearer not-a-token")]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}{}", stack.logs());
    expect_challenge(
        &reply,
        r#"Bearer realm="api", error="invalid_token", error_description="malformed access token""#,
    );

    // A well-formed token signed by a key the issuer does not publish.
    let stranger = SigningKey::rsa("k1").expect("key");
    let forged = stack.issuer.token_signed_by(&stranger, "read");
    let reply = stack.send("GET", "/orders", &[("authorization", &format!("Bearer {forged}"))]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    expect_challenge(&reply, r#"Bearer realm="api", error="invalid_token", error_description="invalid signature""#);
}

#[tokio::test]
async fn missing_scope_gets_403_with_insufficient_scope() {
    let stack = Stack::start().await;
    let token = stack.token();
    let reply = stack.send("POST", "/admin/x", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}{}", stack.logs());
    let challenges = reply.challenges();
    assert_eq!(challenges.len(), 1, "one WWW-Authenticate: {challenges:?}");
    assert!(challenges[0].starts_with(r#"Bearer realm="api""#), "{challenges:?}");
    assert!(challenges[0].contains(r#"error="insufficient_scope""#), "{challenges:?}");
    assert!(challenges[0].contains(r#"scope="write:admin""#), "{challenges:?}");

    // With the scope, the same request passes, its body untouched by the bodiless check.
    let token = stack.issuer.token("read write:admin");
    let reply =
        stack.send_body("POST", "/admin/x", &[("authorization", &format!("Bearer {token}"))], r#"{"n":1}"#).await;
    let upstream = reply.upstream();
    assert_eq!(upstream[":body"], r#"{"n":1}"#);
    assert_eq!(received(&upstream, "x-auth-subject"), ["user1"]);
}

#[tokio::test]
async fn client_sent_auth_headers_never_reach_upstream() {
    let stack = Stack::start().await;
    let token = stack.token();
    let spoofed = [("x-auth-subject", "admin"), ("x-auth-scheme", "DPoP"), ("x-auth-claims", "eyJzdWIiOiJhZG1pbiJ9")];

    // With a valid token for user1: tollgate's values replace the client's.
    let mut headers = vec![("authorization", format!("Bearer {token}"))];
    headers.extend(spoofed.iter().map(|(n, v)| (*n, (*v).to_string())));
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let upstream = stack.send("GET", "/orders", &headers).await.upstream();
    assert_eq!(received(&upstream, "x-auth-subject"), ["user1"]);
    assert_eq!(received(&upstream, "x-auth-scheme"), ["Bearer"]);
    assert_ne!(received(&upstream, "x-auth-claims"), ["eyJzdWIiOiJhZG1pbiJ9"]);

    // On a public route with no token: the headers are removed altogether.
    let upstream = stack.send("GET", "/public/status", &spoofed).await.upstream();
    assert_eq!(upstream[":uri"], "/public/status");
    for (name, _) in spoofed {
        assert!(received(&upstream, name).is_empty(), "{name} reached the upstream: {upstream}");
    }

    // A protected route with no token never reaches the upstream at all.
    let reply = stack.send("GET", "/orders", &spoofed).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
}

#[tokio::test]
async fn other_dialect_headers_change_no_decision() {
    let stack = Stack::start().await;
    let token = stack.token();
    let authorization = format!("Bearer {token}");
    let spoofs: [&[(&str, &str)]; 6] = [
        &[("x-original-url", "/public")],
        &[("x-forwarded-uri", "/public")],
        &[("x-original-uri", "/public")],
        &[("x-original-method", "GET"), ("x-forwarded-method", "GET")],
        &[("x-forwarded-prefix", "/public")],
        &[
            ("x-original-url", "http://127.0.0.1/public"),
            ("x-forwarded-uri", "/public"),
            ("x-original-uri", "/public"),
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

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let stack = Stack::start().await;
    let token = stack.token();
    let authorization = format!("Bearer {token}");
    let reply =
        stack.send("GET", "/orders", &[("authorization", &authorization), ("authorization", &authorization)]).await;
    match reply.status {
        // nginx treats Authorization as a single header and refuses a repeat itself
        // ("client sent duplicate header line"), before auth_request runs.
        StatusCode::BAD_REQUEST => assert!(reply.challenges().is_empty(), "{reply:?}"),
        // A gateway that passed both on would get tollgate's invalid_request, as 401.
        StatusCode::UNAUTHORIZED => expect_challenge(
            &reply,
            r#"Bearer realm="api", error="invalid_request", error_description="more than one Authorization header""#,
        ),
        _ => panic!(
            "two Authorization headers: expected 400 from nginx or 401 from tollgate, got {reply:?}{}",
            stack.logs()
        ),
    }
}

#[tokio::test]
async fn invalid_request_is_401_with_challenge() {
    // `errors.invalid_request_status = 401`: auth_request would turn tollgate's 400 into 500.
    let stack = Stack::start().await;
    let token = stack.token();
    let cases = [
        (
            format!("Bearer {token}, Bearer {token}"),
            r#"Bearer realm="api", error="invalid_request", error_description="more than one credential in the Authorization header""#,
        ),
        (
            "Bearer".to_string(),
            r#"Bearer realm="api", error="invalid_request", error_description="empty access token""#,
        ),
    ];
    for (authorization, challenge) in cases {
        let reply = stack.send("GET", "/orders", &[("authorization", &authorization)]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{authorization:?}: {reply:?}{}", stack.logs());
        expect_challenge(&reply, challenge);
    }
    // Two DPoP proofs pass nginx (it is not a single header there) and reach tollgate.
    let reply = stack
        .send("GET", "/orders", &[("authorization", &format!("DPoP {token}")), ("dpop", "a.b.c"), ("dpop", "d.e.f")])
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    let challenges = reply.challenges();
    assert!(
        challenges[0] == r#"DPoP error="invalid_request", error_description="more than one DPoP proof", algs="ES256""#,
        "{challenges:?}"
    );
}

#[tokio::test]
async fn check_that_cannot_decide_is_500() {
    // No issuer keys: tollgate answers the check 503, which auth_request turns into 500.
    let stack = Stack::start_with(JwksMode::Fail, false, "").await;
    let token = stack.token();
    let reply = stack.send("GET", "/orders", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{reply:?}{}", stack.logs());
    assert!(reply.challenges().is_empty(), "{reply:?}");
}

#[test]
fn shipped_tollgate_toml_matches_the_nginx_example() {
    let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx/tollgate.toml"));
    let config = tollgate::config::Config::load(text, &Default::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.listen.to_string(), SHIPPED_TOLLGATE, "tollgate.toml listens where tollgate.conf points");
    assert_eq!(config.proxy.gateway, tollgate::config::Gateway::Nginx);
    assert_eq!(config.errors.invalid_request_status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn check_location_is_internal() {
    let stack = Stack::start().await;
    let reply = stack.send("GET", "/_tollgate", &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");
}

// ---------------------------------------------------------------------------------------
// DPoP through nginx: the proof names the URL the client used, which tollgate rebuilds
// from the shipped config's X-Forwarded-Proto, X-Forwarded-Host and X-Original-URI.

impl Stack {
    /// A token bound to `client`'s key.
    fn bound_token(&self, client: &SigningKey) -> String {
        self.issuer.token_with(&self.issuer.key, "read", json!({ "cnf": { "jkt": support::jkt(client) } }))
    }
}

/// A proof by `client` for `method` on `path` at this nginx.
fn proof_for<'k>(
    client: &'k SigningKey,
    stack: &Stack,
    method: &str,
    path: &str,
    token: &str,
) -> support::ProofBuilder<'k> {
    support::ProofBuilder::new(client, method, &format!("{}{path}", stack.base), token, support::now())
}

/// The first `WWW-Authenticate` the client got starts with `prefix`.
fn expect_first_challenge(reply: &Reply, prefix: &str) {
    let challenges = reply.challenges();
    assert!(challenges.first().is_some_and(|c| c.starts_with(prefix)), "expected {prefix:?} first, got {challenges:?}");
}

async fn dpop_send(stack: &Stack, path: &str, token: &str, proof: &str) -> Reply {
    let auth = format!("DPoP {token}");
    stack.send("GET", path, &[("authorization", &auth), ("dpop", proof)]).await
}

#[tokio::test]
async fn a_valid_dpop_request_reaches_the_upstream() {
    let stack = Stack::start().await;
    let client = SigningKey::p256("client").expect("key");
    let token = stack.bound_token(&client);
    let proof = proof_for(&client, &stack, "GET", "/orders?page=2", &token).sign();
    let reply = dpop_send(&stack, "/orders?page=2", &token, &proof).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", stack.logs());
    assert_eq!(received(&reply.upstream(), "x-auth-scheme"), vec!["DPoP"]);
    assert_eq!(received(&reply.upstream(), "x-auth-subject"), vec!["user1"]);
}

#[tokio::test]
async fn replayed_wrong_url_and_bearer_used_bound_tokens_get_401_with_the_dpop_challenge() {
    let stack = Stack::start().await;
    let client = SigningKey::p256("client").expect("key");
    let token = stack.bound_token(&client);
    let proof = proof_for(&client, &stack, "GET", "/orders", &token).sign();
    assert_eq!(dpop_send(&stack, "/orders", &token, &proof).await.status, StatusCode::OK);

    let replayed = dpop_send(&stack, "/orders", &token, &proof).await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    expect_first_challenge(&replayed, "DPoP error=\"invalid_dpop_proof\", error_description=\"DPoP proof replayed\"");

    let elsewhere = proof_for(&client, &stack, "GET", "/other", &token).sign();
    let wrong_url = dpop_send(&stack, "/orders", &token, &elsewhere).await;
    assert_eq!(wrong_url.status, StatusCode::UNAUTHORIZED);
    expect_first_challenge(
        &wrong_url,
        "DPoP error=\"invalid_dpop_proof\", error_description=\"DPoP proof htu mismatch\"",
    );

    let as_bearer = stack.send("GET", "/orders", &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(as_bearer.status, StatusCode::UNAUTHORIZED);
    expect_first_challenge(
        &as_bearer,
        "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"DPoP-bound token sent as a Bearer token\"",
    );
}

#[tokio::test]
async fn with_nonces_on_the_client_sees_dpop_nonce_and_succeeds_with_it() {
    let stack = Stack::start_with(
        JwksMode::Serve,
        true,
        "[dpop]\nnonce = true\nnonce_secret = \"0123456789abcdef0123456789abcdef\"",
    )
    .await;
    let client = SigningKey::p256("client").expect("key");
    let token = stack.bound_token(&client);
    let first =
        dpop_send(&stack, "/orders", &token, &proof_for(&client, &stack, "GET", "/orders", &token).sign()).await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    expect_first_challenge(&first, "DPoP error=\"use_dpop_nonce\"");
    let nonce = first.all("dpop-nonce").into_iter().next().expect("DPoP-Nonce at the client");
    let proof = proof_for(&client, &stack, "GET", "/orders", &token).claim("nonce", json!(nonce)).sign();
    let ok = dpop_send(&stack, "/orders", &token, &proof).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", stack.logs());
    assert_eq!(ok.all("dpop-nonce").len(), 1, "the next nonce reaches the client on success");
}
