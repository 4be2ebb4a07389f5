//! The HTTP adapter: `/auth`, `/auth/{path}`, `/healthz`, `/readyz`, `/metrics`.
//! Thin on purpose: it turns an HTTP request into a [`CheckRequest`] and an [`Answer`]
//! back into a response; every decision lives in [`crate::decision`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio::net::TcpListener;

use crate::decision::Checker;
use crate::gateway::CheckRequest;
use crate::refusal::Answer;

/// The router. Needs the peer address: serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` (or `MockConnectInfo` in tests).
pub fn app(checker: Arc<Checker>) -> Router {
    Router::new()
        .route("/auth", any(auth))
        .route("/auth/", any(auth))
        .route("/auth/{*path}", any(auth))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(checker)
}

async fn auth(
    State(checker): State<Arc<Checker>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path().strip_prefix("/auth").unwrap_or_default().to_string();
    let request = CheckRequest { peer: peer.ip().to_canonical(), method, path, headers };
    into_response(checker.check(&request).await)
}

fn into_response(answer: Answer) -> Response {
    let mut response = Response::new(Body::from(answer.body.clone()));
    *response.status_mut() = answer.status;
    let headers = response.headers_mut();
    if !answer.body.is_empty() {
        headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    }
    for (name, value) in answer.headers {
        headers.append(name, value);
    }
    response
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(checker): State<Arc<Checker>>) -> Response {
    match checker.issuer().keys() {
        Some(_) => (StatusCode::OK, "ready\n").into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "not ready: issuer keys not loaded\n").into_response(),
    }
}

async fn metrics(State(checker): State<Arc<Checker>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], checker.metrics().render()).into_response()
}

/// Serves until `shutdown` resolves, then drains open requests.
pub async fn serve(
    checker: Arc<Checker>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = app(checker).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown).await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
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
