//! The HTTP adapter: `/auth`, `/auth/{path}`, `/healthz`, `/readyz`, `/metrics`.
//! Thin on purpose: it turns an HTTP request into a [`CheckRequest`] and an [`Answer`]
//! back into a response; every decision lives in [`crate::decision`].
//!
//! With `ops_listen`, [`ops_app`] serves the three ops endpoints alone on a second address
//! (say `0.0.0.0:9090` for the kubelet's probes) while `/auth` stays where only the gateway
//! reaches it; the main address keeps serving them as well.
//!
//! Shutdown (CONTRACT "Shutdown") is a sequence rather than a stop, because the gateway in
//! front learns late that a replica is going away: a Kubernetes endpoint removal takes
//! seconds to reach kube-proxy and ingress controllers, and a gateway keeps sending to a
//! listener until it refuses. [`Shutdown`] holds the phase every server of the process
//! follows: on the first SIGTERM (or Ctrl-C) `/readyz` answers 503 on both addresses while
//! checks are answered as before, each answer with `Connection: close` so keep-alive
//! connections go away one by one; after `shutdown.drain_delay` (or at a second signal)
//! the listeners close and open connections finish their request; whatever is still open
//! `shutdown.drain_timeout` later is cut, so the exit is bounded by the two settings.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use crate::decision::Checker;
use crate::gateway::CheckRequest;
use crate::refusal::Answer;
use crate::reload::Live;

/// The router over the live checker (or one fixed `Arc<Checker>`). Needs the peer
/// address as `ConnectInfo<SocketAddr>`: [`serve`] adds it (tests use `MockConnectInfo`).
pub fn app(live: impl Into<Live>) -> Router {
    main_routes(live.into(), None)
}

/// [`app`], whose `/readyz` answers 503 once `shutdown` drains.
fn main_routes(live: Live, shutdown: Option<Shutdown>) -> Router {
    Router::new()
        .route("/auth", any(auth))
        .route("/auth/", any(auth))
        .route("/auth/{*path}", any(auth))
        .merge(ops_routes(shutdown))
        .with_state(live)
}

/// The router for `ops_listen`: `/healthz`, `/readyz` and `/metrics`, never `/auth`.
pub fn ops_app(live: impl Into<Live>) -> Router {
    ops_routes(None).with_state(live.into())
}

fn ops_routes(shutdown: Option<Shutdown>) -> Router<Live> {
    // The shutdown handle is captured by the one handler that reads it: `/auth` pays nothing.
    let readyz = move |State(live): State<Live>| {
        let draining = shutdown.as_ref().is_some_and(Shutdown::is_draining);
        async move { readyz(&live, draining) }
    };
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

async fn auth(State(live): State<Live>, ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request) -> Response {
    check(&live.current(), peer, request.into_parts().0).await
}

/// The paths the `/auth` routes match: `/auth`, `/auth/` and `/auth/{path}`.
fn is_auth_path(path: &str) -> bool {
    path.strip_prefix("/auth").is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// `/auth`: the check of the request the gateway describes. The request's parts are moved
/// in, not copied (the `HeaderMap` and `Uri` extractors would clone the whole header map
/// and the URI on every check); the body is never read.
///
/// `checker` is the live one when the request came: one checker from start to end, so a
/// reload never mixes two configs in one check.
async fn check(checker: &Checker, peer: SocketAddr, parts: axum::http::request::Parts) -> Response {
    // The query stays: Envoy appends the original request's path and query after `/auth`.
    let target = parts.uri.path_and_query().map_or(parts.uri.path(), |pq| pq.as_str());
    let path = target.strip_prefix("/auth").unwrap_or_default().to_string();
    let request = CheckRequest { peer: peer.ip().to_canonical(), method: parts.method, path, headers: parts.headers };
    into_response(checker.check(&request).await)
}

fn into_response(answer: Answer) -> Response {
    let Answer { status, mut headers, body } = answer;
    let json = !body.is_empty();
    // An allow has no body: `Body::empty()` costs no allocation, a body from a `String` does.
    let body = if json { Body::from(body) } else { Body::empty() };
    if json {
        headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    }
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// 503 while draining, whatever the keys: the orchestrator must stop routing here.
/// `/healthz` stays 200 meanwhile, so a liveness probe does not kill a draining process.
fn readyz(live: &Live, draining: bool) -> Response {
    if draining {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready: draining, shutting down\n").into_response();
    }
    match live.current().ready() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(waiting) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: issuer keys not loaded for {waiting}\n"))
            .into_response(),
    }
}

async fn metrics(State(live): State<Live>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], live.current().render_metrics()).into_response()
}

/// How long a client may take to send its request headers before the connection is
/// closed: slow-header connections (slowloris) cannot pile up.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves [`app`] over HTTP/1.1 until `shutdown` resolves, then drains open connections
/// (with no time limit: [`serve_with_shutdown`] bounds it).
/// Each connection must deliver its request headers within `header_read_timeout`.
pub async fn serve(
    live: impl Into<Live>,
    listener: TcpListener,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_ops(live, listener, None, header_read_timeout, shutdown).await
}

/// Serves [`app`] on `listener` and, when given, [`ops_app`] on `ops`, until `shutdown`
/// resolves; both then drain their open connections (with no time limit).
pub async fn serve_with_ops(
    live: impl Into<Live>,
    listener: TcpListener,
    ops: Option<TcpListener>,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (live, phase) = (live.into(), Shutdown::unbounded());
    let main = Routes { router: app(live.clone()), checks: Some(live.clone()) };
    let main = serve_router(main, listener, header_read_timeout, phase.clone());
    let ops = async {
        match ops {
            Some(ops) => serve_router(Routes::ops(ops_app(live)), ops, header_read_timeout, phase.clone()).await,
            None => Ok(()),
        }
    };
    let signal = async {
        shutdown.await;
        phase.close();
    };
    let (main, ops, ()) = tokio::join!(main, ops, signal);
    main.and(ops)
}

/// Serves [`app`] on `listener` and, when given, [`ops_app`] on `ops` through the phases of
/// `shutdown`: `/readyz` answers 503 on both once it drains, both listeners close once it
/// closes, and connections still open its drain timeout later are cut.
pub async fn serve_with_shutdown(
    live: impl Into<Live>,
    listener: TcpListener,
    ops: Option<TcpListener>,
    header_read_timeout: Duration,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let live = live.into();
    let main = Routes { router: main_routes(live.clone(), Some(shutdown.clone())), checks: Some(live.clone()) };
    let main = serve_router(main, listener, header_read_timeout, shutdown.clone());
    let ops = async {
        let Some(ops) = ops else { return Ok(()) };
        let router = ops_routes(Some(shutdown.clone())).with_state(live);
        serve_router(Routes::ops(router), ops, header_read_timeout, shutdown.clone()).await
    };
    let (main, ops) = tokio::join!(main, ops);
    main.and(ops)
}

// ---------------------------------------------------------------------------------------
// The shutdown sequence.

/// Where the process is in its shutdown; phases only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// `/readyz` (and gRPC health) say "not ready", checks are answered with
    /// `Connection: close`, the listeners still accept.
    Draining,
    /// The listeners are closed; open connections finish within the drain timeout.
    Closing,
}

/// The shutdown phase shared by every server of one process (HTTP, ops and gRPC), and how
/// long open connections may take once the listeners close. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown(Arc<ShutdownState>);

#[derive(Debug)]
struct ShutdownState {
    phase: tokio::sync::watch::Sender<Phase>,
    /// `phase >= Draining`, read on every request without a lock.
    draining: AtomicBool,
    /// `None`: wait for every connection, however long.
    drain_timeout: Option<Duration>,
}

impl Shutdown {
    /// Serving; once closing, connections still open after `drain_timeout` are cut.
    pub fn new(drain_timeout: Duration) -> Shutdown {
        Shutdown::with_timeout(Some(drain_timeout))
    }

    fn unbounded() -> Shutdown {
        Shutdown::with_timeout(None)
    }

    fn with_timeout(drain_timeout: Option<Duration>) -> Shutdown {
        let (phase, _) = tokio::sync::watch::channel(Phase::Serving);
        Shutdown(Arc::new(ShutdownState { phase, draining: AtomicBool::new(false), drain_timeout }))
    }

    /// True from the start of draining on.
    pub fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::Relaxed)
    }

    /// Starts draining: `/readyz` 503, gRPC health NOT_SERVING, `Connection: close`.
    pub fn drain(&self) {
        self.advance(Phase::Draining);
    }

    /// Closes the listeners (draining first, if not yet).
    pub fn close(&self) {
        self.advance(Phase::Closing);
    }

    fn advance(&self, to: Phase) {
        self.0.draining.store(true, Ordering::Relaxed);
        self.0.phase.send_if_modified(|phase| {
            let later = *phase < to;
            if later {
                *phase = to;
            }
            later
        });
    }

    /// Resolves once draining has started.
    pub fn draining(&self) -> impl Future<Output = ()> + Send + 'static {
        self.reached(Phase::Draining)
    }

    /// Resolves once the listeners are to close.
    pub fn closing(&self) -> impl Future<Output = ()> + Send + 'static {
        self.reached(Phase::Closing)
    }

    /// Resolves `drain_timeout` after closing began; never without a timeout.
    pub fn cut_off(&self) -> impl Future<Output = ()> + Send + 'static {
        let (closing, timeout) = (self.closing(), self.0.drain_timeout);
        async move {
            closing.await;
            match timeout {
                Some(timeout) => tokio::time::sleep(timeout).await,
                None => std::future::pending().await,
            }
        }
    }

    /// How long open connections may take once the listeners close (`None`: no limit).
    pub fn drain_timeout(&self) -> Option<Duration> {
        self.0.drain_timeout
    }

    fn reached(&self, phase: Phase) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.phase.subscribe();
        async move {
            // The sender lives as long as this handle's state: an error cannot happen, and
            // would mean nobody can ever move the phase.
            if rx.wait_for(|now| *now >= phase).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The sequence on `signals`: the first starts draining; `drain_delay` later, or at
    /// the next signal, the listeners close. Returns once they are told to.
    pub async fn on_signals(self, mut signals: Signals, drain_delay: Duration) {
        let first = signals.next().await;
        self.drain();
        let timeout = self.0.drain_timeout.unwrap_or(Duration::MAX);
        tracing::info!(
            signal = first,
            drain_delay_s = drain_delay.as_secs_f64(),
            drain_timeout_s = timeout.as_secs_f64(),
            "draining: /readyz answers 503, checks go on; the listeners close after drain_delay (at once on a second signal)"
        );
        tokio::select! {
            () = tokio::time::sleep(drain_delay) => {}
            second = signals.next() => tracing::info!(signal = second, "second signal: closing the listeners now"),
        }
        self.close();
        tracing::info!(
            drain_timeout_s = timeout.as_secs_f64(),
            "listeners closed; open connections finish their request, or are cut after drain_timeout"
        );
    }
}

/// SIGTERM and SIGINT (Ctrl-C), registered when made: a signal that arrives while the
/// servers start is seen, never the default action that kills the process outright.
pub struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    pub fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals { term: signal(SignalKind::terminate()).ok(), interrupt: signal(SignalKind::interrupt()).ok() }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal's name.
    pub async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            async fn one(signal: &mut Option<tokio::signal::unix::Signal>) {
                let received = match signal {
                    Some(signal) => signal.recv().await.is_some(),
                    None => false,
                };
                if !received {
                    // Not registered, or the driver is gone: this one never comes.
                    std::future::pending::<()>().await;
                }
            }
            let Signals { term, interrupt } = self;
            tokio::select! {
                () = one(term) => "SIGTERM",
                () = one(interrupt) => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

impl Default for Signals {
    fn default() -> Self {
        Signals::new()
    }
}

/// Resolves on SIGTERM or Ctrl-C (registered now, not when first polled).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let mut signals = Signals::new();
    async move {
        signals.next().await;
        tracing::info!("shutting down");
    }
}

// ---------------------------------------------------------------------------------------
// One listener.

/// What one listener serves: its router and, on the main address, the live checker that
/// `/auth` requests go to straight, to the same [`check`] the router's `/auth` routes call.
/// Straight, because axum's routing costs a check a third of its allocations (the path
/// parameters, the `ConnectInfo` extension, a boxed route future) and about a tenth of its
/// CPU, for a decision it does not take: which of two handlers answers.
#[derive(Clone)]
struct Routes {
    router: Router,
    checks: Option<Live>,
}

impl Routes {
    fn ops(router: Router) -> Routes {
        Routes { router, checks: None }
    }

    /// Who answers a request for `path`.
    fn handler(&self, path: &str) -> Handler {
        match &self.checks {
            Some(live) if is_auth_path(path) => Handler::Check(live.current()),
            _ => Handler::Route(self.router.clone()),
        }
    }
}

/// The one that answers one request: [`check`], or the router.
enum Handler {
    Check(Arc<Checker>),
    Route(Router),
}

impl Handler {
    async fn answer(self, peer: SocketAddr, mut request: axum::http::Request<Incoming>) -> Response {
        match self {
            Handler::Check(checker) => check(&checker, peer, request.into_parts().0).await,
            Handler::Route(router) => {
                request.extensions_mut().insert(ConnectInfo(peer));
                match router.oneshot(request.map(Body::new)).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }
        }
    }
}

/// Accepts on `listener` until `shutdown` closes, then answers what is still open: each
/// connection finishes the request it is on (a fresh one its first request) and closes;
/// those still open after the drain timeout are cut and counted in the log.
async fn serve_router(
    routes: Routes,
    listener: TcpListener,
    header_read_timeout: Duration,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let mut connections = JoinSet::new();
    let serve = |connections: &mut JoinSet<()>, stream: TcpStream, peer: SocketAddr| {
        // Finished connections leave the set as new ones come: it holds open ones only.
        while connections.try_join_next().is_some() {}
        connections.spawn(connection(routes.clone(), stream, peer, header_read_timeout, shutdown.clone()));
    };
    let addr = listener.local_addr().ok();
    let mut accepted = accept_until(&listener, shutdown.closing(), &mut connections, &serve).await;
    accepted += accept_backlog(listener, &mut connections, &serve);
    tracing::info!(listener = ?addr, accepted, "listener closed; {accepted} connections accepted in all");
    drain(connections, shutdown.drain_timeout(), addr).await;
    Ok(())
}

/// Accepts and serves connections until `closing` resolves; returns how many.
async fn accept_until(
    listener: &TcpListener,
    closing: impl Future<Output = ()>,
    connections: &mut JoinSet<()>,
    serve: &impl Fn(&mut JoinSet<()>, TcpStream, SocketAddr),
) -> u64 {
    let mut accepted = 0;
    let mut closing = std::pin::pin!(closing);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut closing => return accepted,
        };
        serve(connections, stream, peer);
        accepted += 1;
    }
}

/// Connections the kernel completed but nobody accepted yet are reset when the listener
/// closes, their requests unanswered: takes them in to answer them too, and returns how
/// many. The accept calls go to the kernel itself (the reactor may not have reported them
/// yet). One that completes between the last call and the close is still reset: the client
/// sees its connection reset, never a half answer (nginx retries it on another server).
fn accept_backlog(
    listener: TcpListener,
    connections: &mut JoinSet<()>,
    serve: &impl Fn(&mut JoinSet<()>, TcpStream, SocketAddr),
) -> u64 {
    let listener = match listener.into_std() {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(%error, "cannot take the last connections before closing");
            return 0;
        }
    };
    let mut accepted = 0;
    while let Ok((stream, peer)) = listener.accept() {
        match stream.set_nonblocking(true).and_then(|()| TcpStream::from_std(stream)) {
            Ok(stream) => serve(connections, stream, peer),
            Err(error) => tracing::warn!(%error, "cannot serve a connection accepted at close"),
        }
        accepted += 1;
    }
    accepted
}

/// Waits for the open connections to finish, at most `limit` (none: as long as they
/// take); then cuts those still open and says how many in the log.
async fn drain(mut connections: JoinSet<()>, limit: Option<Duration>, addr: Option<SocketAddr>) {
    let drained = async { while connections.join_next().await.is_some() {} };
    let Some(limit) = limit else {
        return drained.await;
    };
    if tokio::time::timeout(limit, drained).await.is_ok() {
        return;
    }
    while connections.try_join_next().is_some() {}
    let cut = connections.len();
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    tracing::warn!(
        listener = ?addr,
        cut,
        drain_timeout_s = limit.as_secs_f64(),
        "drain_timeout passed: {cut} connection(s) still open were cut"
    );
}

/// The header-read deadline of one connection: a client gets `header_read_timeout` to
/// send a complete request head, from its connect and again from the end of each answer
/// (slow-header connections cannot pile up). hyper's own timeout would register a timer
/// for every request; this is one timer per connection, re-armed when it fires, so a
/// keep-alive connection answering many requests a second touches the timer wheel once
/// every `header_read_timeout` at most. An idle keep-alive connection is closed when its
/// timeout passes, as hyper closes it.
struct HeadWait {
    accepted: tokio::time::Instant,
    /// Milliseconds from `accepted` to when the head now awaited began to be awaited, or
    /// [`HeadWait::ANSWERING`] while a request is being answered.
    since: AtomicU64,
}

impl HeadWait {
    const ANSWERING: u64 = u64::MAX;

    fn new(accepted: tokio::time::Instant) -> Self {
        HeadWait { accepted, since: AtomicU64::new(0) }
    }

    /// A complete head arrived: no deadline while it is answered.
    fn answering(&self) {
        self.since.store(Self::ANSWERING, Ordering::Relaxed);
    }

    /// The answer is done: the next head is awaited from now.
    fn awaiting_next(&self) {
        let since = u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(Self::ANSWERING - 1);
        self.since.store(since, Ordering::Relaxed);
    }

    /// Resolves once a head has been awaited for `timeout`.
    async fn expired(&self, timeout: Duration) {
        let mut wake = self.accepted + timeout;
        loop {
            tokio::time::sleep_until(wake).await;
            wake = match self.since.load(Ordering::Relaxed) {
                Self::ANSWERING => tokio::time::Instant::now() + timeout,
                since => {
                    let deadline = self.accepted + Duration::from_millis(since) + timeout;
                    if tokio::time::Instant::now() >= deadline {
                        return;
                    }
                    deadline
                }
            };
        }
    }
}

/// How long after its accept a connection may take to send the first bytes of its first
/// request and still be answered once the listeners close: far more than the moment a
/// client takes between its connect and its write.
const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// Serves one connection. While draining, every answer carries `Connection: close`, so a
/// keep-alive client reconnects (to another replica, once this one's listener closes)
/// instead of finding its idle connection closed under a request. Once closing, hyper's
/// graceful shutdown closes the connection if idle, or after the answer in progress.
async fn connection(
    routes: Routes,
    stream: TcpStream,
    peer: SocketAddr,
    header_read_timeout: Duration,
    shutdown: Shutdown,
) {
    let accepted = tokio::time::Instant::now();
    let closing = shutdown.closing();
    let head = Arc::new(HeadWait::new(accepted));
    let waiting = head.clone();
    let service = hyper::service::service_fn(move |request: axum::http::Request<Incoming>| {
        waiting.answering();
        let last = shutdown.is_draining();
        let (handler, waiting) = (routes.handler(request.uri().path()), waiting.clone());
        async move {
            let mut response = handler.answer(peer, request).await;
            if last {
                response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
            }
            waiting.awaiting_next();
            Ok::<_, Infallible>(response)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => Some(result),
        () = closing => None,
        () = head.expired(header_read_timeout) => {
            tracing::debug!(%peer, "no complete request head within the header read timeout: connection closed");
            return;
        }
    };
    let result = match result {
        Some(result) => result,
        None => {
            // hyper closes at once a connection it has read nothing from, even when the
            // request is already on its way: one accepted a moment ago gets the time for
            // its first request to arrive (answered, then closed), bounded by the cut-off.
            let first_request = tokio::time::sleep_until(accepted + FIRST_REQUEST_GRACE);
            let early = tokio::select! {
                result = connection.as_mut() => Some(result),
                () = first_request => None,
            };
            match early {
                Some(result) => result,
                None => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection closed with an error");
    }
}
