//! A real `redis-server` and real `tollgate` replicas using it as their DPoP replay store,
//! for `tests/redis.rs` and scenario S10 of `tests/faults.rs`. Every process is killed by
//! its pid when its guard drops.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tollgate::signing::SigningKey;

use super::{MockIssuer, ProcessGuard, ProofBuilder, config_text, free_port, jkt, now, spawn, wait_until_ok};

pub const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

/// The URL the client calls; sent as `Host: api.example.com` and `X-Forwarded-Proto: https`
/// to `/auth/r` (the envoy dialect), so both replicas see the same URL.
pub const HTU: &str = "https://api.example.com/r";

/// How long DPoP may stay refused after Redis is back (the brief: about 5 s).
pub const RECOVERY_LIMIT: Duration = Duration::from_secs(5);

// --- A real redis-server ---

/// A `redis-server` on 127.0.0.1:`port`, without persistence; killed by pid when dropped.
pub struct RedisServer {
    process: Option<ProcessGuard>,
    pub port: u16,
}

impl RedisServer {
    /// Starts one and waits until it answers `PING`.
    pub fn start(port: u16) -> RedisServer {
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("redis-server is not installed; these tests need it: apt-get install redis-server")
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        let mut server = RedisServer { process: Some(ProcessGuard::new("redis-server", child)), port };
        server.wait_until_it_answers();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn wait_until_it_answers(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if ping(self.port) {
                return;
            }
            if let Some(status) = self.process.as_mut().and_then(ProcessGuard::exited) {
                panic!("redis-server on port {} exited: {status}", self.port);
            }
            assert!(Instant::now() < deadline, "redis-server on port {} never answered PING", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (`STOP`, `CONT`) to it by pid.
    pub fn signal(&self, signal: &str) {
        let pid = self.process.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// Kills it (SIGKILL, by pid, stopped or not) and reaps it: its port is closed when this
    /// returns.
    pub fn kill(&mut self) {
        self.process = None;
    }
}

/// Whether something on 127.0.0.1:`port` answers `PING` with `+PONG`.
pub fn ping(port: u16) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}

// --- Real tollgate processes ---

/// `tollgate serve` with the envoy dialect and the Redis replay store; killed by pid when
/// dropped. Its log goes to a file in `dir`, shown when an assertion fails.
pub struct Tollgate {
    pub process: ProcessGuard,
    pub port: u16,
}

impl Tollgate {
    pub async fn start(dir: &Path, name: &str, issuer: &MockIssuer, redis_url: &str) -> Tollgate {
        let port = free_port();
        let extra = format!("listen = \"127.0.0.1:{port}\"\n[dpop]\nreplay_store = \"{redis_url}\"\n");
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, config_text(&issuer.issuer(), "envoy", &extra)).unwrap();
        let mut command = Command::new(BIN);
        command.args(["serve", "--config"]).arg(&config).env("TOLLGATE_LOG__LEVEL", "info");
        let mut process = spawn("tollgate", command, dir.join(format!("{name}.log")));
        let ready = format!("http://127.0.0.1:{port}/readyz");
        let up = wait_until_ok(&mut process, &reqwest::Client::new(), &ready).await;
        assert!(up, "tollgate on port {port} exited before it became ready; its log:\n{}", process.output());
        Tollgate { process, port }
    }

    pub fn log(&self) -> String {
        self.process.output()
    }

    /// `GET /auth/r` as the envoy gateway sends it for `GET https://api.example.com/r`.
    pub async fn check(&self, client: &reqwest::Client, authorization: &str, proof: Option<&str>) -> Reply {
        let mut request = client
            .get(format!("http://127.0.0.1:{}/auth/r", self.port))
            .header("host", "api.example.com")
            .header("x-forwarded-proto", "https")
            .header("authorization", authorization);
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        let started = Instant::now();
        let response = request.send().await.unwrap_or_else(|e| panic!("{e}; log:\n{}", self.log()));
        let status = response.status().as_u16();
        let challenges =
            response.headers().get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_string()).collect();
        let body = response.text().await.unwrap();
        Reply { status, challenges, body, took: started.elapsed() }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub challenges: Vec<String>,
    pub body: String,
    pub took: Duration,
}

/// A client, its key, and a token bound to that key (`cnf.jkt`).
pub struct DpopClient {
    pub key: SigningKey,
    pub token: String,
}

impl DpopClient {
    pub fn new(issuer: &MockIssuer, signer: &SigningKey) -> DpopClient {
        let key = SigningKey::p256("client").unwrap();
        let token = issuer.token(signer, now()).claim("cnf", json!({ "jkt": jkt(&key) })).sign();
        DpopClient { key, token }
    }

    pub fn authorization(&self) -> String {
        format!("DPoP {}", self.token)
    }

    /// A fresh proof (new `jti`) for `GET https://api.example.com/r`.
    pub fn proof(&self) -> String {
        ProofBuilder::new(&self.key, "GET", HTU, &self.token, now()).sign()
    }
}

pub const REPLAYED: &str =
    "DPoP error=\"invalid_dpop_proof\", error_description=\"DPoP proof replayed\", algs=\"ES256\"";
