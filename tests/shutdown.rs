//! Graceful restart (CONTRACT "Shutdown"), with the real `tollgate` binary under load: on
//! SIGTERM `/readyz` turns 503 first while `/auth` keeps answering, the listeners close
//! after `shutdown.drain_delay`, every request the server accepted gets its whole answer,
//! and the process exits 0 within `drain_delay + drain_timeout`. Also: a second signal
//! skips the delay, a stalled connection cannot hold the exit past `drain_timeout`, the
//! gRPC door follows the same phases, and behind real nginx with two replicas in one
//! `upstream` a replica can be stopped under load with no failed client request.
//!
//! The load comes from a hand-written HTTP/1.1 client (keep-alive, one request at a time
//! per connection) so that each failure is seen where it happens: a connection the server
//! never accepted (refused) is told apart from a request that was written and never
//! answered (lost). Only the first may happen, and only once the listener has closed.
//!
//! nginx must be installed for the replica test (`apt-get install nginx`); without it that
//! test fails, naming what is missing.

mod e2e;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tollgate::signing::SigningKey;

// ---------------------------------------------------------------------------------------
// A client that counts.

/// A complete HTTP/1.1 answer.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    /// The answer said `Connection: close` (the connection is dropped after it).
    close: bool,
    body: String,
}

/// What became of one request.
#[derive(Debug, Clone)]
enum Outcome {
    Answered(Answer),
    /// The connection could not be made: the request was never sent. Refused once the
    /// listener is closed; reset when the connect completed in the kernel's accept queue
    /// of a listener closing before anyone accepted it.
    NotAccepted(std::io::ErrorKind),
    /// Written (at least partly) and never answered in full.
    Lost(String),
}

/// One request's story, with when it started and ended.
#[derive(Debug, Clone)]
struct Event {
    started: Instant,
    ended: Instant,
    /// The request opened its connection, and the connect reached the server (it was not
    /// refused).
    fresh: bool,
    outcome: Outcome,
}

/// One client connection, opened on demand and kept while the server keeps it alive.
struct Client {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    fn new(addr: SocketAddr) -> Client {
        Client { addr, conn: None }
    }

    /// Sends `request` (a whole HTTP/1.1 request) and reads the answer.
    async fn send(&mut self, request: &[u8]) -> Event {
        let started = Instant::now();
        let fresh = self.conn.is_none();
        let outcome = self.exchange(request).await;
        let fresh = fresh && !refused(&outcome);
        Event { started, ended: Instant::now(), fresh, outcome }
    }

    async fn exchange(&mut self, request: &[u8]) -> Outcome {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => match TcpStream::connect(self.addr).await {
                Ok(stream) => self.conn.insert(BufReader::new(stream)),
                Err(error) => return Outcome::NotAccepted(error.kind()),
            },
        };
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            conn.get_mut().write_all(request).await?;
            read_answer(conn).await
        })
        .await;
        match answer {
            Ok(Ok(answer)) => {
                if answer.close {
                    self.conn = None;
                }
                Outcome::Answered(answer)
            }
            Ok(Err(error)) => {
                self.conn = None;
                Outcome::Lost(error.to_string())
            }
            Err(_) => {
                self.conn = None;
                Outcome::Lost("no answer within 10 s".into())
            }
        }
    }
}

/// Reads one answer: status line, headers, and a `Content-Length` body.
async fn read_answer(conn: &mut BufReader<TcpStream>) -> std::io::Result<Answer> {
    let broken = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before a whole answer"));
        }
        if line == "\r\n" {
            break;
        }
        lines.push(line.trim_end().to_string());
    }
    let status = lines.first().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok());
    let status = status.ok_or_else(|| broken("no status line"))?;
    let header = |name: &str| {
        lines
            .iter()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_ascii_lowercase())
    };
    let length: usize = header("content-length").map_or(Ok(0), |v| v.parse()).map_err(|_| broken("content-length"))?;
    let close = header("connection").is_some_and(|v| v == "close");
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await?;
    Ok(Answer { status, close, body: String::from_utf8_lossy(&body).into_owned() })
}

/// A connect refused: nothing listens any more.
fn refused(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::NotAccepted(std::io::ErrorKind::ConnectionRefused))
}

fn get(path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// `clients` connections sending `request` back to back until `stop`, each pausing
/// 20 ms after a refused connection; every request's story, per client.
fn load(
    addr: SocketAddr,
    clients: usize,
    request: Vec<u8>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Event>>> {
    let request = Arc::new(request);
    (0..clients)
        .map(|_| {
            let (request, stop) = (request.clone(), stop.clone());
            tokio::spawn(async move {
                let mut client = Client::new(addr);
                let mut events = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let event = client.send(&request).await;
                    if matches!(event.outcome, Outcome::NotAccepted(_)) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    events.push(event);
                }
                events
            })
        })
        .collect()
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Vec<Event>>>) -> Vec<Event> {
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a load task"));
    }
    all.sort_by_key(|e| e.started);
    all
}

/// `GET path` on a fresh connection every 25 ms until `stop`: `/readyz` as a probe sees it.
fn probe(addr: SocketAddr, path: &'static str, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<Event>> {
    tokio::spawn(async move {
        let request = get(path, &[("connection", "close")]);
        let mut events = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            events.push(Client::new(addr).send(&request).await);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        events
    })
}

/// How many connections tollgate's log says the listener on `port` accepted in all.
fn accepted_by(log: &str, port: u16) -> usize {
    let listener = format!("listener=Some(127.0.0.1:{port})");
    let line = log.lines().find(|l| l.contains("connections accepted in all") && l.contains(&listener));
    let line = line.unwrap_or_else(|| panic!("no 'accepted in all' line for {listener}:\n{log}"));
    let count = line.split_whitespace().find_map(|w| w.strip_prefix("accepted=")).and_then(|n| n.parse().ok());
    count.unwrap_or_else(|| panic!("no count in {line}"))
}

/// Every request lost on `port` is the first on a connection tollgate never accepted:
/// as many as the connects the client made beyond those tollgate's log says it accepted.
/// `before` connections were made to `port` before these events.
fn assert_only_unaccepted_lost(events: &[&Event], before: usize, log: &str, port: u16, term: Instant) {
    let lost: Vec<(Duration, bool, String)> = events
        .iter()
        .filter_map(|e| {
            match &e.outcome {
                Outcome::Lost(why) => Some(why.clone()),
                Outcome::NotAccepted(kind) if e.fresh => Some(format!("connect: {kind}")),
                _ => None,
            }
            .map(|why| (e.started.saturating_duration_since(term), e.fresh, why))
        })
        .collect();
    let connects = before + events.iter().filter(|e| e.fresh).count();
    let accepted = accepted_by(log, port);
    let never_accepted = connects.checked_sub(accepted).unwrap_or_else(|| panic!("{connects} < {accepted}"));
    assert!(
        lost.len() == never_accepted && lost.iter().all(|(_, fresh, _)| *fresh),
        "port {port}: {} requests lost (after SIGTERM, on a new connection, why): {lost:?}; \
         {never_accepted} of {connects} connections were not accepted:\n{log}",
        lost.len()
    );
}

/// Tallies of a run, for assertions and failure messages.
#[derive(Debug, Default)]
struct Tally {
    answered: usize,
    not_accepted: usize,
    lost: usize,
}

fn tally(events: &[Event]) -> Tally {
    let mut t = Tally::default();
    for e in events {
        match e.outcome {
            Outcome::Answered(_) => t.answered += 1,
            Outcome::NotAccepted(_) => t.not_accepted += 1,
            Outcome::Lost(_) => t.lost += 1,
        }
    }
    t
}

// ---------------------------------------------------------------------------------------
// The binary.

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

/// A running `tollgate serve`, its addresses, and its log.
struct Tollgate {
    process: ProcessGuard,
    port: u16,
    ops: u16,
    grpc: u16,
    /// Connections the wait for `/readyz` made to `port`: tollgate counts them as accepted.
    startup_connects: usize,
    _dir: TempDir,
}

impl Tollgate {
    /// Starts tollgate for `issuer` in `gateway`'s dialect with `[shutdown]` set to these
    /// seconds, `ops_listen` and a gRPC door on ports of their own, and `extra` TOML
    /// tables; waits for its keys.
    async fn start(issuer: &str, gateway: &str, delay: f64, timeout: f64, extra: &str) -> Tollgate {
        assert!(delay.fract() == 0.0 && timeout.fract() == 0.0, "whole seconds");
        for attempt in 1..=e2e::PORT_ATTEMPTS {
            let dir = TempDir::new("shutdown");
            let (port, ops, grpc) = (free_port(), free_port(), free_port());
            let text = format!(
                "listen = \"127.0.0.1:{port}\"\nops_listen = \"127.0.0.1:{ops}\"\n[grpc]\nlisten = \"127.0.0.1:{grpc}\"\n\
                 [shutdown]\ndrain_delay = {delay}\ndrain_timeout = {timeout}\n[log]\nlevel = \"info\"\n{extra}\n{}",
                config_text(issuer, gateway, "")
            );
            let config = dir.path().join("tollgate.toml");
            std::fs::write(&config, text).expect("write config");
            let mut command = Command::new(BIN);
            command.arg("serve").arg("--config").arg(&config);
            let mut process = spawn("tollgate", command, dir.path().join("tollgate.log"));
            // With the counting client, so the test knows every connection made to `port`.
            let connects = std::sync::Mutex::new(0);
            let ready = wait_ready(&mut process, || async {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let event = Client::new(addr).send(&get("/readyz", &[("connection", "close")])).await;
                *connects.lock().expect("count") += usize::from(event.fresh);
                matches!(event.outcome, Outcome::Answered(a) if a.status == 200)
            })
            .await;
            let startup_connects = connects.into_inner().expect("count");
            if ready {
                return Tollgate { process, port, ops, grpc, startup_connects, _dir: dir };
            }
            assert!(attempt < e2e::PORT_ATTEMPTS, "tollgate exited during startup:\n{}", process.output());
        }
        unreachable!()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn ops_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ops))
    }

    /// Sends SIGTERM (by pid); returns the moment just before it was sent.
    fn terminate(&self) -> Instant {
        let sent = Instant::now();
        let status = Command::new("kill").args(["-TERM", &self.process.id().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        sent
    }

    /// Waits at most `limit` for the process to exit: its status and when it was seen.
    async fn exit_within(&mut self, limit: Duration) -> (ExitStatus, Instant) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.process.exited() {
                return (status, Instant::now());
            }
            assert!(Instant::now() < deadline, "tollgate still running after {limit:?}:\n{}", self.process.output());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn log(&self) -> String {
        self.process.output()
    }
}

async fn issuer() -> (MockIssuer, SigningKey, String) {
    let key = SigningKey::rsa("k1").expect("key");
    let issuer = MockIssuer::start(&[&key]).await;
    let token = issuer.token(&key, now()).sign();
    (issuer, key, token)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

// ---------------------------------------------------------------------------------------
// Straight at tollgate.

/// The whole sequence under steady keep-alive load: 503 from `/readyz` on both addresses
/// first, `/auth` answering meanwhile, the listener closed only after the delay, no
/// accepted request lost, exit 0 within the bound.
#[tokio::test]
async fn sigterm_turns_readyz_503_first_and_loses_no_accepted_request() {
    let (delay, timeout) = (2.0, 5.0);
    let (issuer, _key, token) = issuer().await;
    let mut tollgate = Tollgate::start(&issuer.issuer(), "envoy", delay, timeout, "").await;
    let stop = Arc::new(AtomicBool::new(false));
    let bearer = format!("Bearer {token}");
    let clients = load(tollgate.addr(), 6, get("/auth/r", &[("authorization", &bearer)]), stop.clone());
    let probes = [probe(tollgate.addr(), "/readyz", stop.clone()), probe(tollgate.ops_addr(), "/readyz", stop.clone())];

    tokio::time::sleep(secs(1.0)).await;
    let term = tollgate.terminate();
    let (status, exited) = tollgate.exit_within(secs(delay + timeout + 5.0)).await;
    // Keep knocking a little after the exit: those are refused, never lost.
    tokio::time::sleep(secs(0.3)).await;
    stop.store(true, Ordering::Relaxed);
    let events = collect(clients).await;
    let [main_probe, ops_probe] = probes;
    let (main_probe, ops_probe) = (main_probe.await.expect("probe"), ops_probe.await.expect("probe"));
    let log = tollgate.log();

    assert!(status.success(), "exit status {status:?}:\n{log}");
    let took = exited - term;
    assert!(took <= secs(delay + timeout + 1.5), "exit took {took:?}, bound {delay} + {timeout} s:\n{log}");

    // Every connection tollgate accepted had its requests answered. A connect that
    // completes in the instant between tollgate's last accept and the close of its
    // listener is reset by the kernel (never accepted: the client sees a reset on its
    // first request, nginx retries it): such requests are exactly the connections the
    // client made that tollgate did not accept.
    let t = tally(&events);
    let on_main: Vec<&Event> = events.iter().chain(&main_probe).collect();
    assert_only_unaccepted_lost(&on_main, tollgate.startup_connects, &log, tollgate.port, term);
    assert_only_unaccepted_lost(&ops_probe.iter().collect::<Vec<_>>(), 0, &log, tollgate.ops, term);
    for e in &events {
        if let Outcome::Answered(a) = &e.outcome {
            assert_eq!(a.status, 200, "{a:?}");
        }
    }
    // The listener closed no sooner than the delay, and later connections were refused.
    let refused: Vec<&Event> = events.iter().filter(|e| refused(&e.outcome)).collect();
    let first_refusal = refused.first().map(|e| e.started).expect("connections refused once the listener closed");
    assert!(first_refusal >= term + secs(delay), "refused {:?} after SIGTERM, before the delay", first_refusal - term);

    // /readyz: 200 before, 503 "draining" at once after SIGTERM on both addresses, and
    // before the listener closed.
    for (name, events) in [("listen", &main_probe), ("ops_listen", &ops_probe)] {
        let draining = events
            .iter()
            .find(|e| matches!(&e.outcome, Outcome::Answered(a) if a.status == 503))
            .unwrap_or_else(|| panic!("{name}: /readyz never answered 503: {events:?}"));
        let Outcome::Answered(answer) = &draining.outcome else { unreachable!() };
        assert!(answer.body.contains("draining"), "{name}: {answer:?}");
        assert!(draining.ended > term, "{name}: 503 before SIGTERM");
        assert!(draining.ended < term + secs(1.0), "{name}: 503 only {:?} after SIGTERM", draining.ended - term);
        assert!(draining.ended < first_refusal, "{name}: the listener closed before /readyz said 503");
        for e in events.iter().filter(|e| e.ended < term) {
            assert!(matches!(&e.outcome, Outcome::Answered(a) if a.status == 200), "{name} before SIGTERM: {e:?}");
        }
    }

    // /auth kept answering 200 while /readyz said 503, each answer closing its connection.
    let first_503 = |probe: &[Event]| {
        probe.iter().find(|e| matches!(&e.outcome, Outcome::Answered(a) if a.status == 503)).map(|e| e.ended)
    };
    let readyz_503 = first_503(&main_probe).max(first_503(&ops_probe)).expect("503 seen");
    let during: Vec<&Answer> = events
        .iter()
        .filter(|e| e.started > readyz_503 && e.ended < first_refusal)
        .filter_map(|e| match &e.outcome {
            Outcome::Answered(a) => Some(a),
            _ => None,
        })
        .collect();
    assert!(during.len() >= 20, "only {} checks answered while draining; {t:?}", during.len());
    assert!(during.iter().all(|a| a.close), "an answer while draining kept the connection alive");
    let before: Vec<&Event> = events.iter().filter(|e| e.ended < term).collect();
    assert!(before.iter().any(|e| matches!(&e.outcome, Outcome::Answered(a) if !a.close)), "keep-alive before SIGTERM");
    assert!(log.contains("draining"), "{log}");
}

/// A second SIGTERM during the delay closes the listeners at once.
#[tokio::test]
async fn a_second_sigterm_skips_the_drain_delay() {
    let (delay, timeout) = (60.0, 5.0);
    let (issuer, _key, token) = issuer().await;
    let mut tollgate = Tollgate::start(&issuer.issuer(), "envoy", delay, timeout, "").await;
    let term = tollgate.terminate();
    let mut ready = Client::new(tollgate.addr());
    let deadline = term + secs(2.0);
    loop {
        let event = ready.send(&get("/readyz", &[])).await;
        if matches!(&event.outcome, Outcome::Answered(a) if a.status == 503) {
            break;
        }
        assert!(Instant::now() < deadline, "/readyz not 503 within 2 s: {event:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Draining: checks are still answered.
    let check =
        Client::new(tollgate.addr()).send(&get("/auth/r", &[("authorization", &format!("Bearer {token}"))])).await;
    assert!(matches!(&check.outcome, Outcome::Answered(a) if a.status == 200 && a.close), "{check:?}");

    let second = tollgate.terminate();
    let (status, exited) = tollgate.exit_within(secs(timeout + 5.0)).await;
    assert!(status.success(), "{status:?}");
    assert!(exited - second < secs(2.0), "exit {:?} after the second SIGTERM", exited - second);
    assert!(tollgate.log().contains("second signal"), "{}", tollgate.log());
}

/// A connection stuck halfway through its request headers (hyper would wait 10 s for
/// them) is cut at `drain_timeout`; an idle keep-alive connection is closed as soon as
/// the listeners close. The exit stays within the bound, and the log counts the cut.
#[tokio::test]
async fn a_stalled_connection_cannot_hold_the_exit_past_the_drain_timeout() {
    let (delay, timeout) = (1.0, 2.0);
    let (issuer, _key, token) = issuer().await;
    let mut tollgate = Tollgate::start(&issuer.issuer(), "envoy", delay, timeout, "").await;
    let mut stalled = TcpStream::connect(tollgate.addr()).await.expect("connect");
    stalled.write_all(b"GET /auth/r HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.expect("half a request");
    let mut idle = Client::new(tollgate.addr());
    let first = idle.send(&get("/auth/r", &[("authorization", &format!("Bearer {token}"))])).await;
    assert!(matches!(&first.outcome, Outcome::Answered(a) if a.status == 200 && !a.close), "{first:?}");
    let mut idle = idle.conn.take().expect("kept alive");

    let term = tollgate.terminate();
    // The idle connection is closed (EOF, no answer) when the listeners close.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(secs(delay + 2.0), idle.read(&mut byte)).await;
    let closed = Instant::now();
    assert!(matches!(read, Ok(Ok(0))), "idle keep-alive connection: {read:?}");
    assert!(closed >= term + secs(delay), "idle connection closed {:?} after SIGTERM", closed - term);

    let (status, exited) = tollgate.exit_within(secs(delay + timeout + 5.0)).await;
    let took = exited - term;
    let log = tollgate.log();
    assert!(status.success(), "{status:?}:\n{log}");
    assert!(took >= secs(delay + timeout - 0.2), "exit after {took:?}: the stalled connection was not waited for");
    assert!(took <= secs(delay + timeout + 1.5), "exit after {took:?}, bound {delay} + {timeout} s:\n{log}");
    assert!(took < tollgate::server::HEADER_READ_TIMEOUT, "{took:?}");
    assert!(log.contains("1 connection(s) still open were cut"), "{log}");
    // The stalled client finds its connection gone.
    let read = tokio::time::timeout(secs(1.0), stalled.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
}

/// The gRPC door: health NOT_SERVING as soon as SIGTERM arrives (with `/readyz` 503),
/// `Check` still answered during the delay, the listener closed after it, exit in time.
#[tokio::test]
async fn the_grpc_door_reports_not_serving_first_and_closes_with_the_rest() {
    use envoy_types::ext_authz::v3::pb::CheckRequest;
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request as EnvoyRequest};
    use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    let (delay, timeout) = (2.0, 5.0);
    let (issuer, _key, token) = issuer().await;
    let mut tollgate = Tollgate::start(&issuer.issuer(), "envoy", delay, timeout, "").await;
    let url = format!("http://127.0.0.1:{}", tollgate.grpc);
    let channel = tonic::transport::Channel::from_shared(url.clone()).expect("url").connect().await.expect("connect");
    let health = HealthClient::new(channel.clone());
    let mut check = AuthorizationClient::new(channel);
    let status = |health: &HealthClient<tonic::transport::Channel>| {
        let mut health = health.clone();
        async move {
            let request = HealthCheckRequest { service: tollgate::grpc::SERVICE_NAME.into() };
            health.check(request).await.map(|r| r.into_inner().status)
        }
    };
    let request = || {
        let mut headers = std::collections::HashMap::new();
        headers.insert("authorization".to_string(), format!("Bearer {token}"));
        let http = HttpRequest {
            method: "GET".into(),
            scheme: "https".into(),
            host: "api.example.com".into(),
            path: "/orders".into(),
            headers,
            ..Default::default()
        };
        let request = EnvoyRequest { http: Some(http), ..Default::default() };
        CheckRequest { attributes: Some(AttributeContext { request: Some(request), ..Default::default() }) }
    };
    // Health follows the keys every 250 ms: SERVING a moment after /readyz said 200.
    let deadline = Instant::now() + secs(2.0);
    while status(&health).await.expect("health") != ServingStatus::Serving as i32 {
        assert!(Instant::now() < deadline, "not SERVING 2 s after /readyz said 200");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let term = tollgate.terminate();
    loop {
        if status(&health).await.expect("health while draining") == ServingStatus::NotServing as i32 {
            break;
        }
        assert!(Instant::now() < term + secs(1.0), "still SERVING 1 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answered = check.check(request()).await.expect("Check while draining").into_inner();
    assert_eq!(answered.status.expect("status").code, 0, "allowed while draining");
    let ready = Client::new(tollgate.addr()).send(&get("/readyz", &[])).await;
    assert!(matches!(&ready.outcome, Outcome::Answered(a) if a.status == 503), "{ready:?}");
    assert!(Instant::now() < term + secs(delay), "the checks above ran during the delay");

    let (exit, exited) = tollgate.exit_within(secs(delay + timeout + 5.0)).await;
    assert!(exit.success(), "{exit:?}:\n{}", tollgate.log());
    assert!(exited - term >= secs(delay), "exited {:?} after SIGTERM, before the delay", exited - term);
    assert!(exited - term <= secs(delay + timeout + 1.5), "exit after {:?}", exited - term);
    let refused = tonic::transport::Channel::from_shared(url).expect("url").connect().await;
    assert!(refused.is_err(), "the gRPC listener still accepts");
}

// ---------------------------------------------------------------------------------------
// Behind nginx, two replicas.

/// An API that answers 200 `ok` to anything: what nginx proxies allowed requests to.
async fn api() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(|| async { "ok" });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}

/// nginx running the shipped `deploy/nginx/tollgate.conf` with its `upstream tollgate`
/// holding both replicas (nothing else changed but the addresses), killed by its pid when
/// dropped.
struct Nginx {
    process: ProcessGuard,
    addr: SocketAddr,
    dir: TempDir,
}

impl Nginx {
    async fn start(replicas: &[u16], api: SocketAddr) -> Nginx {
        use e2e::gateways::nginx::{SHIPPED_API, SHIPPED_CONF, SHIPPED_LISTEN};
        let binary = e2e::find_binary("nginx", &["/usr/sbin", "/usr/local/sbin"], "apt-get install nginx");
        let servers: Vec<String> = replicas.iter().map(|p| format!("server 127.0.0.1:{p};")).collect();
        for attempt in 1..=e2e::PORT_ATTEMPTS {
            let dir = TempDir::new("shutdown-nginx");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755));
            }
            let port = free_port();
            let site = e2e::substitute(
                "deploy/nginx/tollgate.conf",
                SHIPPED_CONF,
                &[
                    ("server 127.0.0.1:8080;", 1, &servers.join("\n    ")),
                    (SHIPPED_API, 2, &api.to_string()),
                    (SHIPPED_LISTEN, 1, &format!("listen 127.0.0.1:{port};")),
                ],
            );
            std::fs::write(dir.path().join("tollgate.conf"), site).expect("site config");
            let main = dir.path().join("nginx.conf");
            std::fs::write(&main, main_config(dir.path())).expect("nginx config");
            let mut command = Command::new(&binary);
            command.arg("-p").arg(format!("{}/", dir.path().display())).arg("-c").arg(&main);
            command.arg("-e").arg(dir.path().join("error.log"));
            let mut process = spawn("nginx", command, dir.path().join("nginx.log"));
            process.also_log(dir.path().join("error.log"));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let up = wait_ready(&mut process, || async move { TcpStream::connect(addr).await.is_ok() }).await;
            if up {
                return Nginx { process, addr, dir };
            }
            assert!(attempt < e2e::PORT_ATTEMPTS, "nginx exited during startup:\n{}", process.output());
        }
        unreachable!()
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

/// Everything nginx writes stays in `dir`; one process, so its pid stops it all.
fn main_config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
         events {{\n    worker_connections 1024;\n}}\nhttp {{\n    access_log off;\n\
         client_body_temp_path {d}/client_body;\n    proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
         include {d}/tollgate.conf;\n}}\n"
    )
}

/// Allowed checks a tollgate has counted (its `/metrics`).
async fn allowed(port: u16) -> f64 {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let text = reqwest::get(&url).await.expect("GET /metrics").text().await.expect("metrics");
    text.lines()
        .filter(|l| l.starts_with("tollgate_checks_total{") && l.contains("outcome=\"allow\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// SIGTERM one of two replicas behind nginx under load: nginx keeps every client request
/// whole (the draining replica's `Connection: close` answers, then its refused connects,
/// which nginx retries on the other replica by default), the other replica takes over.
#[tokio::test]
async fn behind_nginx_one_of_two_replicas_restarts_with_no_failed_request() {
    let (delay, timeout) = (1.0, 5.0);
    let (issuer, _key, token) = issuer().await;
    let nginx_toml = e2e::gateways::nginx::TOLLGATE_TOML;
    let mut leaving = Tollgate::start(&issuer.issuer(), "nginx", delay, timeout, nginx_toml).await;
    let staying = Tollgate::start(&issuer.issuer(), "nginx", delay, timeout, nginx_toml).await;
    let (api, _api_task) = api().await;
    let nginx = Nginx::start(&[leaving.port, staying.port], api).await;

    let stop = Arc::new(AtomicBool::new(false));
    let bearer = format!("Bearer {token}");
    let clients = load(nginx.addr, 6, get("/orders/7", &[("authorization", &bearer)]), stop.clone());
    tokio::time::sleep(secs(1.0)).await;
    let (leaving_before, staying_before) = (allowed(leaving.port).await, allowed(staying.port).await);
    let term = leaving.terminate();
    let (status, exited) = leaving.exit_within(secs(delay + timeout + 5.0)).await;
    let staying_at_exit = allowed(staying.port).await;
    let counted = Instant::now();
    tokio::time::sleep(secs(1.0)).await;
    stop.store(true, Ordering::Relaxed);
    let events = collect(clients).await;
    let staying_after = allowed(staying.port).await;
    let logs = || format!("\n--- nginx ---\n{}\n--- leaving ---\n{}", nginx.process.output(), leaving.log());

    assert!(status.success(), "{status:?}{}", logs());
    assert!(exited - term <= secs(delay + timeout + 1.5), "exit after {:?}{}", exited - term, logs());
    let t = tally(&events);
    let failed: Vec<&Event> =
        events.iter().filter(|e| !matches!(&e.outcome, Outcome::Answered(a) if a.status == 200)).collect();
    assert!(failed.is_empty(), "{} failed of {t:?}, e.g. {:?}{}", failed.len(), failed.first(), logs());
    let after_exit = events.iter().filter(|e| e.started > counted).count();
    assert!(after_exit >= 50, "only {after_exit} requests after the replica left; {t:?}");
    // Both served before; the one staying served everything after.
    assert!(leaving_before > 0.0 && staying_before > 0.0, "{leaving_before} {staying_before}");
    assert!(staying_after - staying_at_exit >= after_exit as f64, "{staying_after} {staying_at_exit} {after_exit}");
    // nginx did meet the closed listener (a refused connect, or a connect reset in the
    // instant of the close), and retried: the path under test was taken.
    let upstream = format!("upstream: \"http://127.0.0.1:{}/auth", leaving.port);
    let error_log = nginx.error_log();
    assert!(
        error_log.lines().any(|l| l.contains("[error]") && l.contains(&upstream)),
        "nginx never found the replica's listener closed:\n{error_log}"
    );
}

// ---------------------------------------------------------------------------------------
// The shipped manifests leave room for the sequence.

/// Kubernetes kills a container `terminationGracePeriodSeconds` (30 when unset) after
/// SIGTERM: every shipped tollgate container gets at least `drain_delay + drain_timeout`.
#[test]
fn shipped_manifests_give_tollgate_its_whole_drain() {
    for path in ["deploy/kubernetes/sidecar.yaml", "deploy/kubernetes/shared.yaml"] {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).expect("manifest");
        let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|doc| <Value as serde::Deserialize>::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
            .collect();
        let deployments: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "Deployment").collect();
        assert!(!deployments.is_empty(), "{path}: no Deployment");
        for deployment in deployments {
            let pod = &deployment["spec"]["template"]["spec"];
            let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
            let configs: Vec<&str> = docs
                .iter()
                .filter(|d| d["kind"] == "ConfigMap")
                .filter_map(|m| m["data"]["tollgate.toml"].as_str())
                .collect();
            let [config] = configs[..] else { panic!("{path}: not one tollgate.toml ConfigMap: {configs:?}") };
            let config = tollgate::config::Config::load(config, &Default::default()).expect("the shipped config loads");
            let need = (config.shutdown.drain_delay + config.shutdown.drain_timeout).as_secs();
            assert!(
                grace >= need,
                "{path}: terminationGracePeriodSeconds {grace} < drain_delay + drain_timeout {need}"
            );
        }
    }
}
