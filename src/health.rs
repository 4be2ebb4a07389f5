//! `tollgate health`: one `GET /healthz` (or `/readyz`) of a running tollgate, for the
//! health checks of images that have no shell or `curl` (the scratch image runs
//! `tollgate health --config …` as its `HEALTHCHECK`).
//!
//! It asks the address the config serves the ops endpoints on: `ops_listen` when set, else
//! `listen`; a wildcard address (`0.0.0.0`, `[::]`) is asked on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::Config;

/// How long one probe may take before it counts as a failure.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Which endpoint to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `/healthz`: the process answers.
    Live,
    /// `/readyz`: issuer keys are loaded.
    Ready,
}

impl Probe {
    fn path(self) -> &'static str {
        match self {
            Probe::Live => "/healthz",
            Probe::Ready => "/readyz",
        }
    }
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("no answer from {url}: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
}

/// The address a local probe connects to for `config`.
pub fn probe_address(config: &Config) -> SocketAddr {
    let addr = config.ops_listen.unwrap_or(config.listen);
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// Asks `probe`'s endpoint at `addr`; Ok on 200.
pub async fn check(addr: SocketAddr, probe: Probe) -> Result<(), HealthError> {
    let url = format!("http://{addr}{}", probe.path());
    let unreachable =
        |e: reqwest::Error| HealthError::Unreachable { url: url.clone(), cause: crate::issuer::cause(&e) };
    let client = reqwest::Client::builder().timeout(TIMEOUT).no_proxy().build().map_err(unreachable)?;
    let response = client.get(&url).send().await.map_err(unreachable)?;
    match response.status().as_u16() {
        200 => Ok(()),
        status => Err(HealthError::Status { url, status }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(top: &str) -> Config {
        let text =
            format!("{top}\n[issuer]\ndomain = \"t.auth0.com\"\naudience = \"a\"\n[proxy]\ngateway = \"nginx\"\n");
        Config::load(&text, &HashMap::new()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_probe_asks_ops_listen_when_set_and_loopback_for_a_wildcard() {
        assert_eq!(probe_address(&config("")), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(probe_address(&config("listen = \"0.0.0.0:8080\"")), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(probe_address(&config("ops_listen = \"0.0.0.0:9090\"")), "127.0.0.1:9090".parse().unwrap());
        assert_eq!(probe_address(&config("ops_listen = \"[::]:9090\"")), "[::1]:9090".parse().unwrap());
        assert_eq!(probe_address(&config("ops_listen = \"10.1.2.3:9090\"")), "10.1.2.3:9090".parse().unwrap());
    }
}
