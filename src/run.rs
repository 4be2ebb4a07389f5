//! Running tollgate: bind every listener first (a busy port fails before anything is
//! fetched), start the service (the issuers' keys load in the background), serve the
//! HTTP and gRPC doors through the shutdown sequence ([`crate::server::Shutdown`]), and
//! reload on SIGHUP or file changes ([`crate::reload::Reloader`]). `tollgate serve` and
//! `tollgate dev` both run through here.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::decision::StartError;
use crate::issuer::Timings;
use crate::reload::{Reloader, Service, Source, WatchError};
use crate::server::{HEADER_READ_TIMEOUT, Shutdown, Signals};

/// The sockets tollgate serves on.
pub struct Listeners {
    pub main: TcpListener,
    pub ops: Option<TcpListener>,
    pub grpc: Option<TcpListener>,
}

/// Why tollgate could not run, or stopped other than by its shutdown sequence.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot listen on {addr}: {error}")]
    Bind { addr: SocketAddr, error: std::io::Error },
    #[error("cannot start: {0}")]
    Start(#[from] StartError),
    #[error("cannot watch the config: {0}")]
    Watch(#[from] WatchError),
    #[error("server failed: {0}")]
    Serve(#[from] std::io::Error),
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr).await.map_err(|error| RunError::Bind { addr, error })
}

/// `listen`, and `ops_listen` and `grpc.listen` when set.
pub async fn bind_all(config: &Config) -> Result<Listeners, RunError> {
    let main = bind(config.listen).await?;
    let ops = match config.ops_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let grpc = match &config.grpc {
        Some(grpc) => Some(bind(grpc.listen).await?),
        None => None,
    };
    Ok(Listeners { main, ops, grpc })
}

/// Serves `config` on `listeners` until the shutdown sequence ends (SIGTERM: `/readyz`
/// 503 at once, listeners closed after `drain_delay`, exit within `drain_delay +
/// drain_timeout`); with `reload`, reloads from that source on SIGHUP, and on changes of
/// the file when watching.
pub async fn serve(config: Config, listeners: Listeners, reload: Option<(Source, bool)>) -> Result<(), RunError> {
    let (listen, ops_listen, drain) = (config.listen, config.ops_listen, config.shutdown);
    let issuer: Vec<&str> = config.issuers.iter().map(|i| i.issuer.as_str()).collect();
    let issuer = issuer.join(", ");
    let service = Service::start(config, Timings::default(), Arc::new(SystemClock) as Arc<dyn Clock>)?;
    let live = service.live();
    // The service owns the issuers' key loops: it lives in the reloader, or here.
    let (reloader, _service) = match reload {
        Some((source, watch)) => (Some(tokio::spawn(Reloader::new(service, source, watch)?.run())), None),
        None => (None, Some(service)),
    };
    match ops_listen {
        Some(ops) => tracing::info!(%listen, %ops, %issuer, "tollgate listening (ops endpoints also on ops_listen)"),
        None => tracing::info!(%listen, %issuer, "tollgate listening"),
    }
    let shutdown = Shutdown::new(drain.drain_timeout);
    let signal = shutdown.clone().on_signals(Signals::new(), drain.drain_delay);
    let http = crate::server::serve_with_shutdown(
        live.clone(),
        listeners.main,
        listeners.ops,
        HEADER_READ_TIMEOUT,
        shutdown.clone(),
    );
    let grpc = async {
        let Some(listener) = listeners.grpc else { return Ok(()) };
        tracing::info!(grpc = %listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()), "gRPC ext_authz listening");
        crate::grpc::serve_with_shutdown(live, listener, shutdown).await.map_err(std::io::Error::other)
    };
    let (http, grpc, ()) = tokio::join!(http, grpc, signal);
    if let Some(reloader) = reloader {
        reloader.abort();
    }
    Ok(http.and(grpc)?)
}
