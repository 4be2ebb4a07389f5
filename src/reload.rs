//! Startup and reload (CONTRACT "Reload"): the checker in service, and how a new config
//! replaces it.
//!
//! [`Service::start`] builds the first [`Checker`] and starts its issuers' key loops;
//! `serve`, `dev` and the tests share it. [`Service::reload`] builds the next checker from
//! a config that already validated, keeping every part of the old one whose settings did
//! not change (an issuer's keys and key loop, the verified-token cache, the replay store,
//! the nonce minter, the exchanger and its cache), fetches the keys of issuers it has not
//! seen before, and swaps the new checker in with one atomic store: a check loads the
//! checker once, so it is decided wholly by the old config or wholly by the new.
//!
//! [`Reloader`] triggers reloads: on SIGHUP, and with `serve --watch` when the config
//! file's content changes (an edit in place, a rename over it, or the `..data` symlink
//! swap of a Kubernetes ConfigMap volume, all seen as events in its directory).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::clock::Clock;
use crate::config::{Config, ConfigError};
use crate::decision::{self, Checker, StartError, State};
use crate::issuer::{Issuer, Timings};
use crate::token_cache::TokenCache;

/// The checker in service. Cloning shares it; [`Live::current`] is one atomic load.
#[derive(Clone)]
pub struct Live(Arc<ArcSwap<Checker>>);

impl Live {
    pub fn new(checker: Arc<Checker>) -> Self {
        Live(Arc::new(ArcSwap::new(checker)))
    }

    /// The checker to decide one check with, from start to end.
    pub fn current(&self) -> Arc<Checker> {
        self.0.load_full()
    }

    fn store(&self, checker: Arc<Checker>) {
        self.0.store(checker);
    }
}

impl From<Arc<Checker>> for Live {
    fn from(checker: Arc<Checker>) -> Self {
        Live::new(checker)
    }
}

/// How often the live checker's verified-token cache drops its expired entries.
pub const TOKEN_CACHE_SWEEP: Duration = Duration::from_secs(30);

/// The live checker, the key loops of its issuers, and the token cache's sweep.
pub struct Service {
    live: Live,
    loops: Vec<(Arc<Issuer>, tokio::task::AbortHandle)>,
    sweeper: tokio::task::AbortHandle,
    timings: Timings,
    clock: Arc<dyn Clock>,
}

/// What a reload changed, for the log and the tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Issuers that kept their keys and key loop.
    pub issuers_kept: usize,
    /// Issuers that are new, or whose settings changed.
    pub issuers_started: usize,
    /// Issuers no longer configured, or replaced by their successors.
    pub issuers_retired: usize,
    pub token_cache_kept: bool,
    pub replay_store_kept: bool,
    /// Settings that only a restart applies (`listen`, `ops_listen`, `grpc.listen`,
    /// `log`): named here, and left as they were.
    pub need_restart: Vec<&'static str>,
}

impl Service {
    /// The first checker for `config`, with its issuers' key loops running. Call inside
    /// a Tokio runtime.
    pub fn start(config: Config, timings: Timings, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let state = State::fresh(&config, timings.clone(), Arc::new(crate::metrics::Metrics::new()), &clock)?;
        let issuers = state.issuers.clone();
        let live = Live::new(Arc::new(Checker::new(config, state, clock.clone())));
        let sweeper = tokio::spawn(sweep_token_cache(live.clone())).abort_handle();
        let mut service = Service { live, loops: Vec::new(), sweeper, timings, clock };
        service.start_loops(issuers);
        Ok(service)
    }

    pub fn live(&self) -> Live {
        self.live.clone()
    }

    /// Swaps in a checker for `config` (validated already), keeping what did not change.
    /// New issuers' keys are fetched first (each within its fetch timeout), so no check
    /// waits for them; one that cannot be reached stays not ready, as at startup. On an
    /// error nothing is swapped.
    pub async fn reload(&mut self, mut config: Config) -> Result<Changes, StartError> {
        let old = self.live.current();
        let mut changes =
            Changes { need_restart: keep_restart_settings(old.config(), &mut config), ..Changes::default() };
        let (state, started) = self.next_state(&old, &config, &mut changes)?;
        self.fetch_new_keys(&started).await;
        let retired: Vec<Arc<Issuer>> =
            old.issuers().iter().filter(|o| !state.issuers.iter().any(|n| Arc::ptr_eq(o, n))).cloned().collect();
        changes.issuers_retired = retired.len();
        self.live.store(Arc::new(Checker::new(config, state, self.clock.clone())));
        self.stop_loops(&retired);
        self.start_loops(started);
        Ok(changes)
    }

    /// The state for `config`: each part of `old`'s kept when its settings are equal.
    fn next_state(
        &self,
        old: &Checker,
        config: &Config,
        changes: &mut Changes,
    ) -> Result<(State, Vec<Arc<Issuer>>), StartError> {
        let (before, kept) = (old.config(), old.state());
        // Cached tokens were verified under the issuers' settings, carry the claims the
        // routes read, and name their issuer by index: all three must be unchanged.
        changes.token_cache_kept = before.issuers == config.issuers
            && before.cache.max_tokens == config.cache.max_tokens
            && decision::claims_to_keep(before) == decision::claims_to_keep(config);
        let cache = if changes.token_cache_kept {
            kept.cache.clone()
        } else {
            Arc::new(TokenCache::new(config.cache.max_tokens))
        };
        let Issuers { issuers, started, kept: kept_issuers } = self.issuers(kept, config, &cache)?;
        changes.issuers_kept = kept_issuers.len();
        changes.issuers_started = started.len();
        changes.replay_store_kept = before.dpop.replay == config.dpop.replay;
        let replay = if changes.replay_store_kept {
            kept.replay.clone()
        } else {
            Arc::new(crate::dpop::replay::ReplayStore::new(&config.dpop.replay))
        };
        let nonces_kept = before.dpop.nonce == config.dpop.nonce;
        // The exchange cache is keyed by route index: the routes' exchanges must be the
        // same at the same places, and the client and its issuer unchanged.
        let exchanges = |c: &Config| c.routes.iter().map(|r| r.exchange.clone()).collect::<Vec<_>>();
        let exchanger_kept = before.client == config.client
            && exchanges(before) == exchanges(config)
            && matches!((kept.issuers.first(), issuers.first()), (Some(a), Some(b)) if Arc::ptr_eq(a, b));
        let exchanger = if exchanger_kept {
            kept.exchanger.clone()
        } else {
            decision::exchanger(config, issuers.first(), &kept.metrics, &self.clock)?
        };
        // Nothing can fail from here on: kept issuers may now clear the new cache.
        for issuer in kept_issuers {
            issuer.use_cache(cache.clone());
        }
        let state = State {
            exchanger,
            nonces: if nonces_kept { kept.nonces.clone() } else { decision::nonces(config) },
            replay,
            issuers,
            cache,
            metrics: kept.metrics.clone(),
        };
        Ok((state, started))
    }

    /// The issuers of `config`: the same one where its settings are equal, a successor
    /// with the current keys where only its other settings changed, a new one otherwise.
    fn issuers(&self, kept: &State, config: &Config, cache: &Arc<TokenCache>) -> Result<Issuers, StartError> {
        let mut issuers = Issuers::default();
        for settings in &config.issuers {
            let issuer = match kept.issuers.iter().find(|i| i.config().issuer == settings.issuer) {
                Some(same) if same.config() == settings => {
                    issuers.kept.push(same.clone());
                    issuers.issuers.push(same.clone());
                    continue;
                }
                Some(previous) => previous.succeed(settings.clone(), cache.clone()),
                None => decision::issuer(settings, &self.timings, cache, &kept.metrics)?,
            };
            let issuer = Arc::new(issuer);
            issuers.started.push(issuer.clone());
            issuers.issuers.push(issuer);
        }
        Ok(issuers)
    }

    /// The first keys of issuers that have none yet, fetched side by side.
    async fn fetch_new_keys(&self, started: &[Arc<Issuer>]) {
        let mut fetches = tokio::task::JoinSet::new();
        for issuer in started.iter().filter(|i| i.keys().is_none()) {
            let issuer = issuer.clone();
            fetches.spawn(async move {
                if let Err(error) = issuer.refresh().await {
                    tracing::warn!(issuer = %issuer.config().issuer, %error, "new issuer's keys not loaded; its tokens answer 503 until they are");
                }
            });
        }
        while fetches.join_next().await.is_some() {}
    }

    fn start_loops(&mut self, issuers: Vec<Arc<Issuer>>) {
        for issuer in issuers {
            let handle = tokio::spawn(issuer.clone().run()).abort_handle();
            self.loops.push((issuer, handle));
        }
    }

    fn stop_loops(&mut self, retired: &[Arc<Issuer>]) {
        self.loops.retain(|(issuer, handle)| {
            let keep = !retired.iter().any(|r| Arc::ptr_eq(r, issuer));
            if !keep {
                handle.abort();
            }
            keep
        });
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        for (_, handle) in &self.loops {
            handle.abort();
        }
        self.sweeper.abort();
    }
}

/// Every [`TOKEN_CACHE_SWEEP`], drops the expired tokens of whichever checker is live:
/// tokens that clients stopped presenting would otherwise stay until evicted, and the
/// process would grow towards `cache.max_tokens` under a steady stream of new tokens.
async fn sweep_token_cache(live: Live) {
    let mut ticks = tokio::time::interval(TOKEN_CACHE_SWEEP);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let checker = live.current();
        // `retain` takes each shard's lock in turn: off the runtime's workers.
        let _ = tokio::task::spawn_blocking(move || checker.sweep_token_cache()).await;
    }
}

/// The issuers of a new config, in its order, and which of them are kept or new.
#[derive(Default)]
struct Issuers {
    issuers: Vec<Arc<Issuer>>,
    /// New, or successors: their key loops start with the swap.
    started: Vec<Arc<Issuer>>,
    /// The old ones, key loops running.
    kept: Vec<Arc<Issuer>>,
}

/// Settings a running process cannot change: the new config takes the old values, and
/// their names are returned when they differed.
fn keep_restart_settings(old: &Config, new: &mut Config) -> Vec<&'static str> {
    let mut differ = Vec::new();
    if new.listen != old.listen {
        differ.push("listen");
        new.listen = old.listen;
    }
    if new.ops_listen != old.ops_listen {
        differ.push("ops_listen");
        new.ops_listen = old.ops_listen;
    }
    if new.grpc != old.grpc {
        differ.push("grpc.listen");
        new.grpc = old.grpc.clone();
    }
    if new.log.format != old.log.format || new.log.level != old.log.level {
        differ.push("log");
        new.log = old.log.clone();
    }
    differ
}

/// Where the config comes from: a file (and the environment over it), or the
/// environment alone.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    Environment,
}

impl Source {
    pub fn load(&self) -> Result<Config, ConfigError> {
        match self {
            Source::File(path) => Config::from_file(path),
            Source::Environment => Config::load("", &std::env::vars().collect()),
        }
    }

    fn content(&self) -> Option<Vec<u8>> {
        match self {
            Source::File(path) => std::fs::read(path).ok(),
            Source::Environment => None,
        }
    }
}

/// Why a reload did not happen; the old config keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("the new config is refused, the old one keeps serving: {0}")]
    Invalid(#[from] ConfigError),
    #[error("the new config cannot start, the old one keeps serving: {0}")]
    Start(#[from] StartError),
}

/// Reads the config again and swaps it in when it validates; logs and counts either way.
pub async fn reload_from(service: &mut Service, source: &Source) -> Result<Changes, ReloadError> {
    let started = Instant::now();
    let metrics = service.live.current().metrics().clone();
    let reloaded = match source.load() {
        Ok(config) => {
            let routes = config.routes.len();
            service.reload(config).await.map(|changes| (routes, changes)).map_err(ReloadError::from)
        }
        Err(error) => Err(ReloadError::from(error)),
    };
    let (routes, changes) = match reloaded {
        Ok(reloaded) => reloaded,
        Err(error) => {
            metrics.config_reloads.with_label_values(&["error"]).inc();
            tracing::error!("{}", error.to_string().trim_end());
            return Err(error);
        }
    };
    metrics.config_reloads.with_label_values(&["ok"]).inc();
    for setting in &changes.need_restart {
        tracing::warn!(setting, "changed in the config, but only a restart applies it: still the old value");
    }
    tracing::info!(
        routes,
        issuers_kept = changes.issuers_kept,
        issuers_started = changes.issuers_started,
        issuers_retired = changes.issuers_retired,
        token_cache_kept = changes.token_cache_kept,
        replay_store_kept = changes.replay_store_kept,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "config reloaded"
    );
    Ok(changes)
}

/// How long file events must be quiet before the file is read: an editor's or
/// Kubernetes' several steps become one reload.
const SETTLE: Duration = Duration::from_millis(200);

/// Reloads on SIGHUP and, when watching, on a change of the config file's content.
pub struct Reloader {
    service: Service,
    source: Source,
    hangup: Option<tokio::signal::unix::Signal>,
    events: Option<(notify::RecommendedWatcher, tokio::sync::mpsc::UnboundedReceiver<()>)>,
    applied: Option<Vec<u8>>,
}

/// Why `--watch` could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("--watch needs --config FILE: the environment alone cannot change")]
    NoFile,
    #[error("cannot watch {dir}: {error}")]
    Notify { dir: String, error: notify::Error },
}

impl Reloader {
    /// Registers SIGHUP now (a SIGHUP during startup must not end the process) and, with
    /// `watch`, the file watch.
    pub fn new(service: Service, source: Source, watch: bool) -> Result<Self, WatchError> {
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .inspect_err(|error| tracing::warn!(%error, "cannot listen for SIGHUP: reload by signal is off"))
            .ok();
        let events = match (&source, watch) {
            (_, false) => None,
            (Source::Environment, true) => return Err(WatchError::NoFile),
            (Source::File(path), true) => Some(watch_dirs(path)?),
        };
        let applied = source.content();
        Ok(Reloader { service, source, hangup, events, applied })
    }

    pub fn live(&self) -> Live {
        self.service.live()
    }

    /// Runs until dropped: every SIGHUP reloads; a settled file change reloads when the
    /// content differs from what was last applied.
    pub async fn run(mut self) {
        loop {
            let forced = tokio::select! {
                () = hangup(&mut self.hangup) => true,
                () = file_changed(&mut self.events) => false,
            };
            let content = self.source.content();
            if !forced && (content.is_none() || content == self.applied) {
                continue;
            }
            if reload_from(&mut self.service, &self.source).await.is_ok() {
                self.applied = content;
            }
        }
    }
}

async fn hangup(signal: &mut Option<tokio::signal::unix::Signal>) {
    let Some(signal) = signal else { return std::future::pending().await };
    if signal.recv().await.is_none() {
        return std::future::pending().await;
    }
    tracing::info!("SIGHUP: reloading the config");
}

/// Resolves once file events have arrived and then stayed quiet for [`SETTLE`].
async fn file_changed(events: &mut Option<(notify::RecommendedWatcher, tokio::sync::mpsc::UnboundedReceiver<()>)>) {
    let Some((_, rx)) = events else { return std::future::pending().await };
    if rx.recv().await.is_none() {
        return std::future::pending().await;
    }
    while let Ok(Some(())) = tokio::time::timeout(SETTLE, rx.recv()).await {}
}

/// Watches the directory of `path` and, when `path` is a symlink, the directory of the
/// file it resolves to: a ConfigMap's `tollgate.toml -> ..data/tollgate.toml` changes by
/// a rename of `..data` in the first, an editor's save by a rename in the second.
fn watch_dirs(
    path: &Path,
) -> Result<(notify::RecommendedWatcher, tokio::sync::mpsc::UnboundedReceiver<()>), WatchError> {
    use notify::Watcher as _;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            let _ = tx.send(());
        }
    })
    .map_err(|error| WatchError::Notify { dir: path.display().to_string(), error })?;
    let mut dirs = vec![parent(path)];
    if let Ok(resolved) = std::fs::canonicalize(path) {
        dirs.push(parent(&resolved));
    }
    dirs.dedup();
    for dir in dirs {
        watcher
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .map_err(|error| WatchError::Notify { dir: dir.display().to_string(), error })?;
    }
    Ok((watcher, rx))
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
