//! The HTTP server itself over real sockets: slow headers are cut off, oversized headers
//! are refused, and normal checks keep working meanwhile (research rows 57, 115).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn start(app: &TestApp, header_timeout: Duration) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let checker = Arc::clone(&app.checker);
    tokio::spawn(tollgate::server::serve(checker, listener, header_timeout, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

#[tokio::test]
async fn a_client_that_sends_headers_slowly_is_disconnected() {
    let app = TestApp::new("").await;
    let (addr, _stop) = start(&app, Duration::from_millis(300)).await;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /auth/r HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();

    // Meanwhile a normal check is answered.
    let token = app.token().sign();
    let ok = reqwest::Client::new().get(format!("http://{addr}/auth/r")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);

    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf)).await.expect("closed by the server");
    // Closed without a response, or with hyper's 408.
    match read {
        Ok(0) | Err(_) => {}
        Ok(n) => assert!(
            String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
    }
    assert!(started.elapsed() >= Duration::from_millis(250));
}

/// Reads one whole response (this server sends `content-length` on every answer).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed before a whole response: {}", String::from_utf8_lossy(&text));
        text.extend_from_slice(&buf[..n]);
        let head_end = text.windows(4).position(|w| w == b"\r\n\r\n");
        if let Some(end) = head_end {
            let head = String::from_utf8_lossy(&text[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if text.len() >= end + 4 + length {
                return String::from_utf8_lossy(&text).into_owned();
            }
        }
    }
}

/// The header-read deadline runs from the connect and again from the end of each answer:
/// a keep-alive connection that keeps sending requests is never cut, however long it
/// lives, and one left idle is closed once the timeout passes.
#[tokio::test]
async fn the_header_timeout_restarts_after_each_answer_and_closes_an_idle_connection() {
    let app = TestApp::new("").await;
    let (addr, _stop) = start(&app, Duration::from_millis(400)).await;
    let request = format!("GET /auth/r HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n", app.token().sign());
    let mut client = TcpStream::connect(addr).await.unwrap();
    let connected = Instant::now();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        client.write_all(request.as_bytes()).await.unwrap();
        let response = read_response(&mut client).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    assert!(connected.elapsed() >= Duration::from_millis(1000), "four requests on one connection past the timeout");

    let idle = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await.expect("closed by the server");
    assert!(matches!(read, Ok(0) | Err(_)), "closed without an answer: {read:?}");
    let waited = idle.elapsed();
    assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(2), "closed after {waited:?}");
}

#[tokio::test]
async fn an_oversized_authorization_header_is_refused_by_the_http_layer() {
    let app = TestApp::new("").await;
    let (addr, _stop) = start(&app, Duration::from_secs(5)).await;
    let huge = format!("Bearer {}", "a".repeat(1024 * 1024));
    let answer = reqwest::Client::new().get(format!("http://{addr}/auth/r")).header("authorization", huge).send().await;
    match answer {
        Ok(response) => assert_eq!(response.status(), 431),
        Err(error) => assert!(error.is_request() || error.is_body() || error.is_connect(), "{error}"),
    }
    // The server is still fine.
    let token = app.token().sign();
    let ok = reqwest::Client::new().get(format!("http://{addr}/auth/r")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let app = TestApp::new("").await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tollgate::server::serve(app.checker.clone(), listener, Duration::from_secs(5), async {
        let _ = stopped.await;
    }));
    assert_eq!(reqwest::get(format!("http://{addr}/healthz")).await.unwrap().status(), 200);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("serve returns").unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn ops_listen_serves_the_ops_endpoints_alone_and_listen_keeps_them() {
    let app = TestApp::new("").await;
    let (main, ops) =
        (TcpListener::bind("127.0.0.1:0").await.unwrap(), TcpListener::bind("127.0.0.1:0").await.unwrap());
    let (main_addr, ops_addr) = (main.local_addr().unwrap(), ops.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tollgate::server::serve_with_ops(
        app.checker.clone(),
        main,
        Some(ops),
        Duration::from_secs(5),
        async {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    let status = |addr: std::net::SocketAddr, path: &str| {
        let request = client.get(format!("http://{addr}{path}")).bearer_auth(app.token().sign()).send();
        async move { request.await.unwrap().status().as_u16() }
    };
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(status(ops_addr, path).await, 200, "{path} on ops_listen");
        assert_eq!(status(main_addr, path).await, 200, "{path} on listen");
    }
    assert_eq!(status(ops_addr, "/auth/r").await, 404, "no check on ops_listen");
    assert_eq!(status(main_addr, "/auth/r").await, 200);

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("serve returns").unwrap().unwrap();
    assert!(TcpStream::connect(main_addr).await.is_err());
    assert!(TcpStream::connect(ops_addr).await.is_err());
}

/// Over a connection `/auth` is answered without axum's router (`server::Routes`), by the
/// same function the router's `/auth` routes call: every answer must be the one the router
/// gives, and every other path must still reach the router.
#[tokio::test]
async fn a_connection_answers_every_path_as_the_router_does() {
    let app = TestApp::new("").await;
    let (addr, stop) = start(&app, Duration::from_secs(5)).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let token = format!("Bearer {}", app.token().sign());
    let cases: &[(&str, &str, bool)] = &[
        ("GET", "/auth/orders", true),
        ("GET", "/auth/orders?page=2&_method=DELETE", true),
        ("HEAD", "/auth/orders", true),
        ("POST", "/auth/orders/7", true),
        ("GET", "/auth", true),
        ("GET", "/auth/", true),
        ("GET", "/auth/orders", false),
        ("GET", "/auth/a%2fb", true),
        ("GET", "/authx", true),
        ("GET", "/authorize", true),
        ("GET", "/healthz", false),
        ("GET", "/readyz", false),
        ("GET", "/nowhere", false),
    ];
    for &(method, path, with_token) in cases {
        let mut headers = vec![("host", "api.example.com"), ("accept", "*/*")];
        if with_token {
            headers.push(("authorization", &token));
        }
        let routed = app.send(request(method, path, &headers)).await;
        let mut wire = client.request(method.parse().unwrap(), format!("http://{addr}{path}"));
        for (name, value) in &headers {
            wire = wire.header(*name, *value);
        }
        let wire = wire.send().await.unwrap();
        let (status, mut wire_headers) = (wire.status(), wire.headers().clone());
        let body = wire.text().await.unwrap();
        let case = format!("{method} {path} (token: {with_token})");
        assert_eq!(status, routed.status, "{case}");
        assert_eq!(body, routed.body, "{case}");
        // `date` is hyper's, on the wire only; `content-length` is framing (hyper writes it
        // on the wire, axum's router writes it for HEAD), and the bodies are compared above.
        let mut routed_headers = routed.headers.clone();
        for name in ["date", "content-length"] {
            wire_headers.remove(name);
            routed_headers.remove(name);
        }
        assert_eq!(wire_headers, routed_headers, "{case}");
    }
    stop.send(()).unwrap();
}
