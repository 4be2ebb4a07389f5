//! Every metric tollgate exports, with its name, help text and labels, in one place.
//! Labels come from closed sets (outcome, reason): never from tokens, subjects or paths.

use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The front door a check came through: `/auth` over HTTP, or Envoy's gRPC `Check`. The
/// `door` label of `tollgate_checks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Http,
    Grpc,
}

impl Door {
    pub fn label(self) -> &'static str {
        match self {
            Door::Http => "http",
            Door::Grpc => "grpc",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    /// `tollgate_checks_total{door, outcome, reason}`: door is http or grpc, outcome is
    /// allow, deny or error.
    pub checks: IntCounterVec,
    /// `tollgate_checks_total{door, outcome="allow",reason="none"}` per door, looked up
    /// once: the hot path.
    allowed_http: IntCounter,
    allowed_grpc: IntCounter,
    pub check_duration: Histogram,
    /// `{issuer}`: per configured issuer, as are the failures and the key count.
    pub jwks_fetches: IntCounterVec,
    pub jwks_fetch_failures: IntCounterVec,
    pub token_cache_hits: IntCounter,
    pub token_cache_misses: IntCounter,
    /// `tollgate_token_cache_entries`: verified tokens cached; set when rendered.
    pub token_cache_entries: IntGauge,
    /// `tollgate_replay_store_entries`: DPoP replay entries held in memory (expired ones not
    /// yet swept included); set when rendered. Always 0 with a Redis store, whose keys
    /// expire in Redis (count them there).
    pub replay_store_entries: IntGauge,
    pub issuer_keys: IntGaugeVec,
    /// `tollgate_issuer_keys_age_seconds{issuer}`: since the current keys were fetched.
    pub issuer_keys_age: GaugeVec,
    /// `tollgate_build_info{version}`: always 1; tells which build a scrape came from.
    pub build_info: IntGaugeVec,
    /// `tollgate_exchanges_total{outcome}`: calls to the token endpoint by outcome (ok,
    /// refused, rate_limited, unavailable).
    pub exchanges: IntCounterVec,
    pub exchange_cache_hits: IntCounter,
    pub exchange_cache_misses: IntCounter,
    pub exchange_duration: Histogram,
    /// `tollgate_config_reloads_total{result}`: ok, or error (the old config kept serving).
    pub config_reloads: IntCounterVec,
}

impl Metrics {
    // Names, help texts and labels are constants that Prometheus accepts: construction
    // cannot fail, so a failure would be a bug caught by every test.
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let registry = Registry::new();
        let checks = IntCounterVec::new(
            Opts::new(
                "tollgate_checks_total",
                "Checks answered, by front door (http, grpc), outcome (allow, deny, error) and reason.",
            ),
            &["door", "outcome", "reason"],
        )
        .expect("valid metric");
        let check_duration = Histogram::with_opts(
            HistogramOpts::new("tollgate_check_duration_seconds", "Time to decide one check.").buckets(vec![
                0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.025, 0.1, 1.0,
            ]),
        )
        .expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let gauge = |name: &str, help: &str| IntGauge::new(name, help).expect("valid metric");
        let allowed_http = checks.with_label_values(&[Door::Http.label(), "allow", "none"]);
        let allowed_grpc = checks.with_label_values(&[Door::Grpc.label(), "allow", "none"]);
        let metrics = Metrics {
            checks,
            allowed_http,
            allowed_grpc,
            check_duration,
            jwks_fetches: per_issuer("tollgate_jwks_fetches_total", "Discovery and JWKS fetches attempted, by issuer."),
            jwks_fetch_failures: per_issuer(
                "tollgate_jwks_fetch_failures_total",
                "Fetches that failed, by issuer; previous keys were kept.",
            ),
            token_cache_hits: counter(
                "tollgate_token_cache_hits_total",
                "Checks answered from the verified-token cache.",
            ),
            token_cache_misses: counter("tollgate_token_cache_misses_total", "Checks that had to verify a signature."),
            token_cache_entries: gauge("tollgate_token_cache_entries", "Verified tokens in the cache."),
            replay_store_entries: gauge(
                "tollgate_replay_store_entries",
                "DPoP replay entries held in memory, expired ones not yet swept included (0 with a Redis store).",
            ),
            issuer_keys: IntGaugeVec::new(
                Opts::new("tollgate_issuer_keys", "Usable keys in the current key set, by issuer."),
                &["issuer"],
            )
            .expect("valid metric"),
            issuer_keys_age: GaugeVec::new(
                Opts::new(
                    "tollgate_issuer_keys_age_seconds",
                    "Seconds since the current key set was fetched, by issuer (grows while the issuer is unreachable).",
                ),
                &["issuer"],
            )
            .expect("valid metric"),
            build_info: build_info(),
            exchanges: IntCounterVec::new(
                Opts::new(
                    "tollgate_exchanges_total",
                    "Token exchanges at the issuer, by outcome (ok, refused, rate_limited, unavailable).",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            exchange_cache_hits: counter(
                "tollgate_exchange_cache_hits_total",
                "Downstream tokens (or a recent failure) served from the exchange cache.",
            ),
            exchange_cache_misses: counter(
                "tollgate_exchange_cache_misses_total",
                "Downstream tokens that needed a call to the token endpoint.",
            ),
            exchange_duration: Histogram::with_opts(
                HistogramOpts::new("tollgate_exchange_duration_seconds", "Time of one call to the token endpoint.")
                    .buckets(vec![0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )
            .expect("valid metric"),
            config_reloads: config_reloads(),
            registry,
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.checks.clone()),
            Box::new(self.check_duration.clone()),
            Box::new(self.jwks_fetches.clone()),
            Box::new(self.jwks_fetch_failures.clone()),
            Box::new(self.token_cache_hits.clone()),
            Box::new(self.token_cache_misses.clone()),
            Box::new(self.token_cache_entries.clone()),
            Box::new(self.replay_store_entries.clone()),
            Box::new(self.issuer_keys.clone()),
            Box::new(self.issuer_keys_age.clone()),
            Box::new(self.build_info.clone()),
            Box::new(self.exchanges.clone()),
            Box::new(self.exchange_cache_hits.clone()),
            Box::new(self.exchange_cache_misses.clone()),
            Box::new(self.exchange_duration.clone()),
            Box::new(self.config_reloads.clone()),
        ];
        for c in collectors {
            // Names are fixed and distinct, so registration cannot fail.
            let _ = self.registry.register(c);
        }
    }

    /// The allow counter of `door`.
    pub fn allowed(&self, door: Door) -> &IntCounter {
        match door {
            Door::Http => &self.allowed_http,
            Door::Grpc => &self.allowed_grpc,
        }
    }

    /// Sets the size gauges: `replay` entries of the in-memory replay store (`None` for
    /// Redis: 0), `cache` verified tokens. Called when rendering: counting is a few atomic
    /// loads and short read locks, cheaper done once per scrape than once per check.
    pub fn set_sizes(&self, replay: Option<usize>, cache: usize) {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.replay_store_entries.set(replay.map_or(0, count));
        self.token_cache_entries.set(count(cache));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[allow(clippy::expect_used)] // constant names and labels, as in `Metrics::new`
fn per_issuer(name: &str, help: &str) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), &["issuer"]).expect("valid metric")
}

#[allow(clippy::expect_used)] // constant names and labels, as in `Metrics::new`
fn build_info() -> IntGaugeVec {
    let gauge =
        IntGaugeVec::new(Opts::new("tollgate_build_info", "1, labelled with the tollgate version."), &["version"])
            .expect("valid metric");
    gauge.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
    gauge
}

#[allow(clippy::expect_used)] // constant names and labels, as in `Metrics::new`
fn config_reloads() -> IntCounterVec {
    let reloads = IntCounterVec::new(
        Opts::new(
            "tollgate_config_reloads_total",
            "Config reloads, by result (ok; error: the old config kept serving).",
        ),
        &["result"],
    )
    .expect("valid metric");
    // Both series from the start, so that an alert on `error` sees a 0 before the first.
    for result in ["ok", "error"] {
        reloads.with_label_values(&[result]);
    }
    reloads
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    #[test]
    fn the_size_gauges_show_what_they_were_set_to_and_zero_for_redis() {
        let metrics = Metrics::new();
        let text = metrics.render();
        assert!(text.lines().any(|l| l == "tollgate_replay_store_entries 0"), "{text}");
        assert!(text.lines().any(|l| l == "tollgate_token_cache_entries 0"), "{text}");
        metrics.set_sizes(Some(1234), 56);
        let text = metrics.render();
        assert!(text.lines().any(|l| l == "tollgate_replay_store_entries 1234"), "{text}");
        assert!(text.lines().any(|l| l == "tollgate_token_cache_entries 56"), "{text}");
        metrics.set_sizes(None, 7);
        let text = metrics.render();
        assert!(text.lines().any(|l| l == "tollgate_replay_store_entries 0"), "{text}");
        assert!(text.lines().any(|l| l == "tollgate_token_cache_entries 7"), "{text}");
    }

    #[test]
    fn build_info_names_the_version() {
        let text = Metrics::new().render();
        let line = format!("tollgate_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        assert!(text.lines().any(|l| l == line), "{text}");
    }
}
