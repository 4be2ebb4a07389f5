//! The gRPC front door (Envoy ext_authz, `envoy.service.auth.v3.Authorization/Check`)
//! over a real tonic server on 127.0.0.1, asked by a real tonic client with
//! `CheckRequest`s built as Envoy builds them, and held to the same answers as `/auth`.
//!
//! What Envoy puts in a `CheckRequest` (envoy/service/auth/v3/attribute_context.proto,
//! `AttributeContext.HttpRequest`):
//! - `method`: "The HTTP request method, such as GET, POST."
//! - `headers`: "All header keys must be lower-cased"; "If multiple headers share the
//!   same key, they must be merged according to the HTTP spec" (joined with `,`); Envoy
//!   includes the pseudo-headers (`:authority`, `:method`, `:path`).
//! - `header_map`: used instead of `headers` with `encode_raw_headers: true`; "headers
//!   with the same key are not combined", values in `raw_value`.
//! - `path`: "The request target, as it appears in the first line of the HTTP request.
//!   This includes the URL path and query-string. No decoding is performed."
//! - `host`: "The HTTP request Host or :authority header value."
//! - `scheme`: "The HTTP URL scheme, such as http and https."
//!
//! And what it reads back (external_auth.proto): `status` (OK allows), `ok_response`
//! (`headers` set on the upstream request, `headers_to_remove`, `response_headers_to_add`
//! for the client), `denied_response` (`status`, `headers`, `body` for the client), and
//! `dynamic_metadata` ("emitted as dynamic metadata to be consumed by the next filter").

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::StatusCode;
use envoy_types::ext_authz::v3::pb::{CheckRequest, CheckResponse, HeaderValue as EnvoyHeader, HttpResponse};
use envoy_types::pb::envoy::config::core::v3::HeaderMap as EnvoyHeaderMap;
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as EnvoyRequest};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::google::protobuf::value::Kind;
use serde_json::json;
use support::*;
use tollgate::clock::{Clock, ManualClock};
use tollgate::config::Config;
use tollgate::decision::Checker;
use tollgate::signing::SigningKey;
use tonic::Code;
use tonic::transport::Channel;

const HOST: &str = "api.example.com";

const ROUTES: &str = r#"
default = "deny"

[[routes]]
path_prefix = "/public"
public = true

[[routes]]
path_prefix = "/admin"
scopes = ["write:admin"]

[[routes]]
path_prefix = "/orders"

[[routes]]
path_prefix = "/perm"
permissions = ["read:x"]

[[routes]]
path_prefix = "/bound"
dpop = "required"

[headers]
"X-Auth-Email" = "email"
"#;

/// A running gRPC door over `checker`, and a client of it.
struct Door {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Door {
    async fn start(checker: Arc<Checker>) -> Door {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = tollgate::grpc::serve(checker, listener, std::future::pending()).await;
        });
        Door { addr, task }
    }

    async fn client(&self) -> AuthorizationClient<Channel> {
        AuthorizationClient::connect(format!("http://{}", self.addr)).await.expect("connect")
    }

    async fn check(&self, request: CheckRequest) -> Result<CheckResponse, tonic::Status> {
        self.client().await.check(request).await.map(tonic::Response::into_inner)
    }
}

impl Drop for Door {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One original request, sent to either door.
#[derive(Clone)]
struct Input {
    method: &'static str,
    scheme: &'static str,
    path: String,
    headers: Vec<(String, String)>,
}

impl Input {
    fn new(method: &'static str, path: &str) -> Input {
        Input { method, scheme: "https", path: path.to_string(), headers: vec![] }
    }

    fn header(mut self, name: &str, value: &str) -> Input {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn bearer(self, token: &str) -> Input {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// As Envoy's HTTP ext_authz sends it: the method, `/auth` + the original path,
    /// `Host`, `X-Forwarded-Proto`.
    fn http(&self) -> axum::http::Request<axum::body::Body> {
        let mut headers: Vec<(&str, &str)> = vec![("host", HOST), ("x-forwarded-proto", self.scheme)];
        headers.extend(self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        request(self.method, &format!("/auth{}", self.path), &headers)
    }

    /// As Envoy's gRPC ext_authz sends it: `headers` merged per name with the
    /// pseudo-headers, or with `raw` every header in `header_map`.
    fn grpc(&self, raw: bool) -> CheckRequest {
        let mut http = HttpRequest {
            method: self.method.to_string(),
            scheme: self.scheme.to_string(),
            host: HOST.to_string(),
            path: self.path.clone(),
            protocol: "HTTP/1.1".to_string(),
            size: -1,
            ..Default::default()
        };
        if raw {
            let header = |k: &str, v: &str| EnvoyHeader { key: k.into(), value: String::new(), raw_value: v.into() };
            let mut list =
                vec![header(":authority", HOST), header(":path", &self.path), header(":method", self.method)];
            list.extend(self.headers.iter().map(|(n, v)| header(n, v)));
            http.header_map = Some(EnvoyHeaderMap { headers: list });
        } else {
            let mut merged: HashMap<String, String> = HashMap::new();
            merged.insert(":authority".into(), HOST.into());
            merged.insert(":path".into(), self.path.clone());
            merged.insert(":method".into(), self.method.into());
            for (name, value) in &self.headers {
                merged.entry(name.clone()).and_modify(|v| *v = format!("{v},{value}")).or_insert_with(|| value.clone());
            }
            http.headers = merged;
        }
        let request = EnvoyRequest { http: Some(http), ..Default::default() };
        CheckRequest { attributes: Some(AttributeContext { request: Some(request), ..Default::default() }) }
    }
}

/// An answer in one shape for both doors: status, headers sorted (DPoP-Nonce values
/// masked: each call mints its own), body. For gRPC the allow headers are `ok.headers`
/// plus each removed tollgate header as empty, and the nonce from
/// `response_headers_to_add`.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn masked(name: &str, value: &str) -> (String, String) {
    let value = if name == "dpop-nonce" { "<nonce>".to_string() } else { value.to_string() };
    (name.to_string(), value)
}

fn seen_http(answer: &Answer) -> Seen {
    let mut headers: Vec<(String, String)> = answer
        .headers
        .iter()
        .filter(|(n, _)| n.as_str() != "content-type" && n.as_str() != "content-length")
        .map(|(n, v)| masked(n.as_str(), v.to_str().unwrap()))
        .collect();
    headers.sort();
    Seen { status: answer.status.as_u16(), headers, body: answer.body.clone() }
}

const TOLLGATE_HEADERS: &[&str] =
    &["x-auth-subject", "x-auth-scheme", "x-auth-claims", "x-auth-email", "x-auth-actor", "x-auth-delegation-chain"];

fn seen_grpc(response: &CheckResponse) -> Seen {
    let code = response.status.as_ref().map_or(-1, |s| s.code);
    let pairs = |options: &[envoy_types::ext_authz::v3::pb::HeaderValueOption]| -> Vec<(String, String)> {
        options.iter().filter_map(|o| o.header.as_ref()).map(|h| masked(&h.key, &h.value)).collect()
    };
    match response.http_response.as_ref() {
        Some(HttpResponse::OkResponse(ok)) => {
            assert_eq!(code, Code::Ok as i32);
            let mut headers = pairs(&ok.headers);
            headers.extend(pairs(&ok.response_headers_to_add));
            headers.extend(
                ok.headers_to_remove
                    .iter()
                    .filter(|n| TOLLGATE_HEADERS.contains(&n.as_str()))
                    .map(|n| (n.clone(), String::new())),
            );
            headers.sort();
            Seen { status: 200, headers, body: String::new() }
        }
        Some(HttpResponse::DeniedResponse(denied)) => {
            let status = denied.status.as_ref().map_or(0, |s| s.code as u16);
            let expected = tollgate::grpc::grpc_code(StatusCode::from_u16(status).unwrap());
            assert_eq!(code, expected as i32, "gRPC status for HTTP {status}");
            let mut headers = pairs(&denied.headers);
            headers.sort();
            Seen { status, headers, body: denied.body.clone() }
        }
        other => panic!("not an ok or denied response: {other:?}"),
    }
}

/// Sends `input` through `/auth` and through `Check` (both header encodings) and asserts
/// the three answers are the same; returns it.
async fn same_through_both(app: &TestApp, door: &Door, input: &Input) -> Seen {
    let http = seen_http(&app.send(input.http()).await);
    for raw in [false, true] {
        let grpc = seen_grpc(&door.check(input.grpc(raw)).await.expect("Check answers"));
        assert_eq!(grpc, http, "{} {} (header_map: {raw}): gRPC vs /auth", input.method, input.path);
    }
    http
}

async fn app(extra: &str) -> (TestApp, Door) {
    let app = TestApp::with_gateway("envoy", extra).await;
    let door = Door::start(app.checker.clone()).await;
    (app, door)
}

#[tokio::test]
async fn every_outcome_is_the_same_through_auth_and_check() {
    let (app, door) = app(ROUTES).await;
    let valid = app.token().claim("scope", json!("read")).claim("email", json!("u@example.com")).sign();
    let expired = app.token().claim("exp", json!(app.now() - 10)).sign();
    let permitted = app.token().claim("permissions", json!(["read:x"])).sign();
    let cases = [
        (Input::new("GET", "/orders/1?page=2"), 401),
        (Input::new("GET", "/orders/1").bearer(&valid), 200),
        (Input::new("GET", "/orders/1").bearer("not-a-token"), 401),
        (Input::new("GET", "/orders/1").bearer(&expired), 401),
        (Input::new("GET", "/orders/1").header("authorization", "Basic dXNlcjpwYXNz"), 401),
        (Input::new("GET", "/orders/1").header("authorization", &format!("Bearer {valid}, Bearer {valid}")), 400),
        (Input::new("POST", "/admin/x").bearer(&valid), 403),
        (Input::new("GET", "/admin/x").bearer(&valid).header("x-http-method-override", "DELETE"), 403),
        (Input::new("GET", "/perm").bearer(&valid), 403),
        (Input::new("GET", "/perm").bearer(&permitted), 200),
        (Input::new("GET", "/nowhere").bearer(&valid), 403),
        (Input::new("GET", "/public/status").header("x-auth-subject", "admin"), 200),
        (Input::new("GET", "/bound/x").bearer(&valid), 401),
        (Input::new("GET", "/a%2fb").bearer(&valid), 400),
        (Input { scheme: "ftp", ..Input::new("GET", "/orders/1").bearer(&valid) }, 400),
        (Input::new("GET", "/orders/1").header("dpop", "a.b.c"), 400),
    ];
    for (input, status) in cases {
        let seen = same_through_both(&app, &door, &input).await;
        assert_eq!(seen.status, status, "{} {}: {seen:?}", input.method, input.path);
    }
}

#[tokio::test]
async fn dpop_answers_replays_and_wrong_urls_are_the_same_through_both_doors() {
    let (app, door) = app(ROUTES).await;
    let client = SigningKey::p256("client").unwrap();
    let token = app.token().claim("cnf", json!({ "jkt": jkt(&client) })).sign();
    let input = |proof: &str| {
        Input::new("POST", "/orders/1?x=1").header("authorization", &format!("DPoP {token}")).header("dpop", proof)
    };
    let fresh = |htu: &str| ProofBuilder::new(&client, "POST", htu, &token, app.now()).sign();
    for (htu, status) in [(format!("https://{HOST}/orders/1"), 200), (format!("https://{HOST}/other"), 401)] {
        // A fresh proof per door: one proof may be used once.
        let http = seen_http(&app.send(input(&fresh(&htu)).http()).await);
        let grpc = seen_grpc(&door.check(input(&fresh(&htu)).grpc(false)).await.unwrap());
        assert_eq!(grpc, http, "{htu}");
        assert_eq!(http.status, status, "{htu}: {http:?}");
    }
    // The same proof twice through gRPC: the second is a replay, answered as /auth does.
    let proof = fresh(&format!("https://{HOST}/orders/1"));
    assert_eq!(seen_grpc(&door.check(input(&proof).grpc(true)).await.unwrap()).status, 200);
    let replayed = seen_grpc(&door.check(input(&proof).grpc(true)).await.unwrap());
    let http_replay = seen_http(&app.send(input(&proof).http()).await);
    assert_eq!(replayed, http_replay);
    assert_eq!(replayed.status, 401);
    assert!(replayed.headers.iter().any(|(n, v)| n == "www-authenticate" && v.contains("DPoP proof replayed")));
    // A bound token sent as Bearer.
    let bearer = Input::new("GET", "/orders/1").bearer(&token);
    assert_eq!(same_through_both(&app, &door, &bearer).await.status, 401);
}

#[tokio::test]
async fn with_nonces_the_client_gets_dpop_nonce_on_refusal_and_on_success() {
    let nonces = format!("{ROUTES}\n[dpop]\nnonce = true\nnonce_secret = \"0123456789abcdef0123456789abcdef\"\n");
    let (app, door) = app(&nonces).await;
    let client = SigningKey::p256("client").unwrap();
    let token = app.token().claim("cnf", json!({ "jkt": jkt(&client) })).sign();
    let htu = format!("https://{HOST}/orders/1");
    let input = |proof: &str| {
        Input::new("GET", "/orders/1").header("authorization", &format!("DPoP {token}")).header("dpop", proof)
    };

    let without = ProofBuilder::new(&client, "GET", &htu, &token, app.now()).sign();
    let http = seen_http(&app.send(input(&without).http()).await);
    let response = door.check(input(&without).grpc(false)).await.unwrap();
    assert_eq!(seen_grpc(&response), http);
    assert_eq!(http.status, 401);
    let Some(HttpResponse::DeniedResponse(denied)) = &response.http_response else { panic!("{response:?}") };
    let nonce =
        denied.headers.iter().filter_map(|h| h.header.as_ref()).find(|h| h.key == "dpop-nonce").unwrap().value.clone();

    let with = ProofBuilder::new(&client, "GET", &htu, &token, app.now()).claim("nonce", json!(nonce)).sign();
    let response = door.check(input(&with).grpc(false)).await.unwrap();
    let Some(HttpResponse::OkResponse(ok)) = &response.http_response else { panic!("{response:?}") };
    // The next nonce is for the client (response_headers_to_add), never for the upstream.
    assert!(ok.response_headers_to_add.iter().any(|h| h.header.as_ref().is_some_and(|h| h.key == "dpop-nonce")));
    assert!(!ok.headers.iter().any(|h| h.header.as_ref().is_some_and(|h| h.key == "dpop-nonce")));
}

#[tokio::test]
async fn allow_sets_identity_headers_removes_forged_ones_and_emits_metadata() {
    let (app, door) = app(ROUTES).await;
    let token = app.token().claim("scope", json!("read write:admin")).sign();
    let input = Input::new("POST", "/admin/x")
        .bearer(&token)
        .header("x-auth-subject", "admin")
        .header("x-auth-role", "root")
        .header("x_auth_subject", "admin");
    let response = door.check(input.grpc(true)).await.unwrap();
    let Some(HttpResponse::OkResponse(ok)) = &response.http_response else { panic!("{response:?}") };
    let set: HashMap<&str, &str> =
        ok.headers.iter().filter_map(|h| h.header.as_ref()).map(|h| (h.key.as_str(), h.value.as_str())).collect();
    assert_eq!(set["x-auth-subject"], "user1");
    assert_eq!(set["x-auth-scheme"], "Bearer");
    // Set over the client's value (OVERWRITE_IF_EXISTS_OR_ADD), never appended.
    assert!(ok.headers.iter().all(|h| h.append_action == 2), "{ok:?}");
    for forged in ["x-auth-role", "x_auth_subject", "x-auth-email"] {
        assert!(ok.headers_to_remove.iter().any(|n| n == forged), "{forged} not removed: {ok:?}");
    }
    let metadata = response.dynamic_metadata.expect("dynamic_metadata");
    let text = |k: &str| match metadata.fields.get(k).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) => s.clone(),
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(text("sub"), "user1");
    assert_eq!(text("scope"), "read write:admin");
    assert_eq!(text("scheme"), "Bearer");
    assert_eq!(text("issuer"), app.issuer.issuer());
}

#[tokio::test]
async fn a_peer_outside_the_trust_list_gets_permission_denied_and_no_decision() {
    let (app, door) = app(ROUTES).await;
    let mut config = app.checker.config().clone();
    config.proxy.trusted = vec!["10.0.0.0/8".parse().unwrap()];
    let clock = Arc::new(ManualClock::new(app.now()));
    let untrusting = Checker::from_config(config, fast_timings(), clock as Arc<dyn Clock>).expect("checker");
    untrusting.issuer().refresh().await.unwrap();
    let other = Door::start(untrusting.clone()).await;
    let token = app.token().sign();
    let status = other.check(Input::new("GET", "/orders").bearer(&token).grpc(false)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let metrics = untrusting.metrics().render();
    let counted: Vec<&str> = metrics.lines().filter(|l| l.contains(r#"door="grpc""#) && !l.ends_with(" 0")).collect();
    assert!(counted.is_empty(), "no decision was counted: {counted:?}");
    // The trusting door answers the same request.
    assert_eq!(
        seen_grpc(&door.check(Input::new("GET", "/orders").bearer(&token).grpc(false)).await.unwrap()).status,
        200
    );
}

#[tokio::test]
async fn malformed_and_oversized_check_requests_are_invalid_argument() {
    let (app, door) = app(ROUTES).await;
    let token = app.token().sign();
    let status = door.check(CheckRequest { attributes: None }).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let mut many = Input::new("GET", "/orders").bearer(&token);
    for i in 0..300 {
        many = many.header(&format!("x-h{i}"), "v");
    }
    let bad = [
        many,
        Input::new("GET", "orders").bearer(&token),
        Input::new("GE T", "/orders").bearer(&token),
        Input::new("GET", "*").bearer(&token),
        Input::new("GET", "/orders").bearer(&token).header("x-http-method-override", "DEL ETE"),
    ];
    for input in bad {
        let response = door.check(input.grpc(false)).await.unwrap();
        let seen = seen_grpc(&response);
        assert_eq!(seen.status, 400, "{} {}: {seen:?}", input.method, input.path);
        assert_eq!(response.status.unwrap().code, Code::InvalidArgument as i32);
    }
    // Past the decoding bound: refused by the transport, and the door keeps serving.
    let huge = Input::new("GET", "/orders").header("x-big", &"v".repeat(400 * 1024));
    assert!(door.check(huge.grpc(false)).await.is_err());
    assert_eq!(
        seen_grpc(&door.check(Input::new("GET", "/orders").bearer(&token).grpc(false)).await.unwrap()).status,
        200
    );
}

#[tokio::test]
async fn checks_are_counted_by_front_door() {
    let (app, door) = app(ROUTES).await;
    let token = app.token().sign();
    app.send(Input::new("GET", "/orders").bearer(&token).http()).await;
    door.check(Input::new("GET", "/orders").bearer(&token).grpc(false)).await.unwrap();
    door.check(Input::new("GET", "/orders").grpc(false)).await.unwrap();
    let metrics = app.checker.metrics().render();
    for line in [
        r#"tollgate_checks_total{door="http",outcome="allow",reason="none"} 1"#,
        r#"tollgate_checks_total{door="grpc",outcome="allow",reason="none"} 1"#,
        r#"tollgate_checks_total{door="grpc",outcome="deny",reason="missing_credentials"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing {line}:\n{metrics}");
    }
}

#[tokio::test]
async fn health_is_serving_once_keys_are_loaded() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let (app, door) = app(ROUTES).await;
    let ask = |addr: SocketAddr, service: &'static str| async move {
        let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.expect("connect");
        let mut client = HealthClient::new(channel);
        let request = HealthCheckRequest { service: service.to_string() };
        for _ in 0..100 {
            if let Ok(r) = client.check(request.clone()).await {
                return r.into_inner().status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no health answer")
    };
    let serving = |addr, service| async move {
        for _ in 0..100 {
            if ask(addr, service).await == ServingStatus::Serving as i32 {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        false
    };
    assert!(serving(door.addr, "").await);
    assert!(serving(door.addr, tollgate::grpc::SERVICE_NAME).await);

    // Without keys: NOT_SERVING, and checks answer 503 UNAVAILABLE as /auth does.
    let clock = Arc::new(ManualClock::new(app.now()));
    let config: Config = app.checker.config().clone();
    let keyless =
        Door::start(Checker::from_config(config, fast_timings(), clock as Arc<dyn Clock>).expect("checker")).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(ask(keyless.addr, tollgate::grpc::SERVICE_NAME).await, ServingStatus::NotServing as i32);
    let response = keyless.check(Input::new("GET", "/orders").bearer(&app.token().sign()).grpc(false)).await.unwrap();
    assert_eq!(response.status.as_ref().unwrap().code, Code::Unavailable as i32);
    let seen = seen_grpc(&response);
    assert_eq!(seen.status, 503);
    assert!(seen.headers.contains(&("retry-after".to_string(), "5".to_string())), "{seen:?}");
}

/// The binary: `tollgate serve` with `[grpc] listen` answers `Check` beside `/auth`, and
/// SIGTERM stops both doors.
#[tokio::test]
async fn serve_answers_check_on_the_grpc_listener_and_stops_on_sigterm() {
    use std::process::{Command, Stdio};
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let (http, grpc) = (free_port(), free_port());
    let text = format!(
        "listen = \"127.0.0.1:{http}\"\n[grpc]\nlisten = \"127.0.0.1:{grpc}\"\n{}",
        config_text(&issuer.issuer(), "envoy", "[shutdown]\ndrain_delay = 0\n")
    );
    let dir = TempDir::new("grpc");
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, text).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    command.args(["serve", "--config"]).arg(&path).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = ProcessGuard::new("tollgate", command.spawn().unwrap());
    let ready = format!("http://127.0.0.1:{http}/readyz");
    assert!(wait_until_ok(&mut child, &reqwest::Client::new(), &ready).await, "tollgate exited");

    let mut client = AuthorizationClient::connect(format!("http://127.0.0.1:{grpc}")).await.expect("connect");
    let token = issuer.token(&key, now()).sign();
    let response = client.check(Input::new("GET", "/orders").bearer(&token).grpc(false)).await.unwrap().into_inner();
    assert_eq!(response.status.unwrap().code, Code::Ok as i32);
    let response = client.check(Input::new("GET", "/orders").grpc(false)).await.unwrap().into_inner();
    assert_eq!(response.status.unwrap().code, Code::Unauthenticated as i32);

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.child().try_wait().unwrap() {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "tollgate did not stop on SIGTERM");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
}
