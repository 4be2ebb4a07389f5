//! The HTTP adapter: `/auth`, `/auth/{path}`, `/healthz`, `/readyz`, `/metrics`.
//! Thin on purpose: it turns an HTTP request into a [`CheckRequest`] and an [`Answer`]
//! back into a response; every decision lives in [`crate::decision`].
//!
//! With `ops_listen`, [`ops_app`] serves the three ops endpoints alone on a second address
//! (say `0.0.0.0:9090` for the kubelet's probes) while `/auth` stays where only the gateway
//! reaches it; the main address keeps serving them as well.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::decision::Checker;
use crate::gateway::CheckRequest;
use crate::refusal::Answer;

/// The router. Needs the peer address as `ConnectInfo<SocketAddr>`: [`serve`] adds it
/// (tests use `MockConnectInfo`).
pub fn app(checker: Arc<Checker>) -> Router {
    Router::new()
        .route("/auth", any(auth))
        .route("/auth/", any(auth))
        .route("/auth/{*path}", any(auth))
        .merge(ops_routes())
        .with_state(checker)
}

/// The router for `ops_listen`: `/healthz`, `/readyz` and `/metrics`, never `/auth`.
pub fn ops_app(checker: Arc<Checker>) -> Router {
    ops_routes().with_state(checker)
}

fn ops_routes() -> Router<Arc<Checker>> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

async fn auth(
    State(checker): State<Arc<Checker>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    // The request's parts are moved, not copied: the `HeaderMap` and `Uri` extractors
    // would clone the whole header map and the URI on every check.
    let (parts, _body) = request.into_parts();
    // The query stays: Envoy appends the original request's path and query after `/auth`.
    let target = parts.uri.path_and_query().map_or(parts.uri.path(), |pq| pq.as_str());
    let path = target.strip_prefix("/auth").unwrap_or_default().to_string();
    let request = CheckRequest { peer: peer.ip().to_canonical(), method: parts.method, path, headers: parts.headers };
    into_response(checker.check(&request).await)
}

fn into_response(answer: Answer) -> Response {
    let json = !answer.body.is_empty();
    // An allow has no body: `Body::empty()` costs no allocation, a body from a `String` does.
    let body = if json { Body::from(answer.body) } else { Body::empty() };
    let mut headers = HeaderMap::with_capacity(answer.headers.len() + usize::from(json));
    if json {
        headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    }
    for (name, value) in answer.headers {
        headers.append(name, value);
    }
    let mut response = Response::new(body);
    *response.status_mut() = answer.status;
    *response.headers_mut() = headers;
    response
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(checker): State<Arc<Checker>>) -> Response {
    match checker.ready() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(waiting) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: issuer keys not loaded for {waiting}\n"))
            .into_response(),
    }
}

async fn metrics(State(checker): State<Arc<Checker>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], checker.render_metrics()).into_response()
}

/// How long a client may take to send its request headers before the connection is
/// closed: slow-header connections (slowloris) cannot pile up.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves [`app`] over HTTP/1.1 until `shutdown` resolves, then drains open connections.
/// Each connection must deliver its request headers within `header_read_timeout`.
pub async fn serve(
    checker: Arc<Checker>,
    listener: TcpListener,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_router(app(checker), listener, header_read_timeout, shutdown).await
}

/// Serves [`app`] on `listener` and, when given, [`ops_app`] on `ops`, until `shutdown`
/// resolves; both then drain their open connections.
pub async fn serve_with_ops(
    checker: Arc<Checker>,
    listener: TcpListener,
    ops: Option<TcpListener>,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(ops) = ops else { return serve(checker, listener, header_read_timeout, shutdown).await };
    let (signal, stop) = broadcast(shutdown);
    let ops = serve_router(ops_app(checker.clone()), ops, header_read_timeout, stop.wait());
    let main = serve_router(app(checker), listener, header_read_timeout, stop.wait());
    let (main, ops, ()) = tokio::join!(main, ops, signal);
    main.and(ops)
}

/// One shutdown signal for several servers. Drive the returned future beside them; each
/// [`Stop::wait`] resolves once `shutdown` has.
pub fn broadcast(shutdown: impl Future<Output = ()> + Send + 'static) -> (impl Future<Output = ()>, Stop) {
    let (stop, stopped) = tokio::sync::watch::channel(());
    // Dropping the sender wakes every receiver.
    let signal = async move {
        shutdown.await;
        drop(stop);
    };
    (signal, Stop(stopped))
}

/// A handle on a [`broadcast`] shutdown.
#[derive(Clone)]
pub struct Stop(tokio::sync::watch::Receiver<()>);

impl Stop {
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.changed().await;
        }
    }
}

async fn serve_router(
    router: Router,
    listener: TcpListener,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
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
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: axum::http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(Body::new))
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    // Registered now, not when first polled: a SIGTERM that arrives while the servers
    // start must stop them, never kill the process outright.
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        #[cfg(unix)]
        let term = async move {
            match term {
                Some(mut term) => {
                    term.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            () = ctrl_c => {},
            () = term => {},
        }
        tracing::info!("shutting down");
    }
}
