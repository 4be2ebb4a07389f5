//! The image is the tested artefact (issue 14): the repository's own Dockerfile, built with
//! podman and no registry by `scripts/image.sh` (a static binary built here stands in for
//! the Dockerfile's build stage), run as it ships against issuers on 127.0.0.1.
//!
//! Needs podman and runc (and openssl for the https issuer). As root with apt-get they are
//! installed; elsewhere, without them, each test says why on stderr and passes without
//! running. The image is built once per run (the static release build is the slow part,
//! cached in target/static) in a storage directory of its own, removed afterwards.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;
use tollgate::signing::SigningKey;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/image.sh");
/// Where the image's CMD and HEALTHCHECK read the config.
const CONFIG: &str = "/etc/tollgate/tollgate.toml";
const BIN: &str = "/usr/local/bin/tollgate";
const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The image's user and group, numeric (there is no /etc/passwd in the image).
const USER: &str = "65532:65532";
/// The issuer's host name for the https test, known inside the container only through the
/// /etc/hosts entry podman writes for `--add-host`.
const ISSUER_HOST: &str = "issuer.tollgate.test";

/// One line on the test process's own stderr, past the harness's capture: the image size
/// and a skip belong in every run's output.
fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "tests/image.rs: {line}");
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// `scripts/image.sh ARGS` with the image storage in `storage`.
fn script(storage: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("bash");
    command.arg(SCRIPT).args(args).env("IMAGE_STORAGE", storage);
    command
}

/// Makes sure podman, runc and `extra` are installed (the script installs them as root with
/// apt-get). False, with the reason reported, only where they are missing and cannot be.
fn tools_available(extra: &[&str]) -> bool {
    let out = Command::new("bash").arg(SCRIPT).arg("setup").args(extra).output().expect("run scripts/image.sh");
    match out.status.code() {
        Some(0) => true,
        Some(3) => {
            report(&format!("skipped: {}", text(&out.stderr)));
            false
        }
        _ => panic!("scripts/image.sh setup failed ({}):\n{}", out.status, text(&out.stderr)),
    }
}

/// The image built from the Dockerfile, in a podman storage of its own; removed with it.
struct Image {
    tag: String,
    /// `podman image inspect --format {{.Size}}`, bytes.
    size: u64,
    storage: TempDir,
}

/// The image the tests share; built by the first test that asks, removed after the last.
static IMAGE: Mutex<Weak<Image>> = Mutex::new(Weak::new());

/// The shared image, or None where podman is not available (see `tools_available`).
fn image() -> Option<Arc<Image>> {
    let mut shared =
        IMAGE.lock().unwrap_or_else(|_| panic!("building the image failed in another test; see its output"));
    if let Some(image) = shared.upgrade() {
        return Some(image);
    }
    if !tools_available(&[]) {
        return None;
    }
    let image = Arc::new(Image::build());
    *shared = Arc::downgrade(&image);
    Some(image)
}

impl Image {
    fn build() -> Image {
        let storage = TempDir::new("image");
        let tag = format!("localhost/tollgate-test:{}", std::process::id());
        let started = Instant::now();
        let out = script(storage.path(), &["build", &tag]).output().expect("run scripts/image.sh build");
        assert!(out.status.success(), "scripts/image.sh build failed ({}):\n{}", out.status, text(&out.stderr));
        let mut image = Image { tag, size: 0, storage };
        let size = image.podman_ok(&["image", "inspect", "--format", "{{.Size}}", &image.tag]);
        image.size = size.parse().unwrap_or_else(|e| panic!("image size {size:?}: {e}"));
        report(&format!(
            "built {} from the Dockerfile in {:.0?} (static release build included): {} bytes ({:.1} MB)",
            image.tag,
            started.elapsed(),
            image.size,
            image.size as f64 / 1e6
        ));
        image
    }

    /// `podman ARGS` with the script's storage and flags.
    fn podman(&self, args: &[&str]) -> Output {
        script(self.storage.path(), &["podman"]).args(args).output().expect("run scripts/image.sh podman")
    }

    /// `podman ARGS`, which must succeed; its stdout.
    fn podman_ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert!(out.status.success(), "podman {args:?} failed ({}):\n{}", out.status, text(&out.stderr));
        text(&out.stdout)
    }

    /// Starts the image detached in the host's network (`scripts/image.sh run`), with
    /// `options` before the image and `command` after it.
    fn start(&self, options: &[&str], command: &[&str]) -> Container<'_> {
        let out = script(self.storage.path(), &["run", "--detach"])
            .args(options)
            .arg(&self.tag)
            .args(command)
            .output()
            .expect("run scripts/image.sh run");
        assert!(out.status.success(), "podman run failed ({}):\n{}", out.status, text(&out.stderr));
        let stdout = text(&out.stdout);
        let id = stdout.lines().last().unwrap_or_default().to_string();
        assert!(!id.is_empty(), "podman run printed no container id:\n{}", text(&out.stderr));
        Container { image: self, id }
    }

    /// Every path in the image's filesystem, with its numeric owner (`tar -tv`), from a
    /// container created but never started, exported to `dir`.
    fn files(&self, dir: &Path) -> Vec<(String, String)> {
        let id = self.podman_ok(&["create", &self.tag]);
        let container = Container { image: self, id: id.lines().last().unwrap_or_default().to_string() };
        let tar = dir.join("image.tar");
        self.podman_ok(&["export", "--output", &tar.display().to_string(), &container.id]);
        let out = Command::new("tar").arg("--numeric-owner").arg("-tvf").arg(&tar).output().expect("run tar");
        assert!(out.status.success(), "tar -tvf: {}", text(&out.stderr));
        let extract = Command::new("tar").arg("-xf").arg(&tar).arg("-C").arg(dir).output().expect("run tar");
        assert!(extract.status.success(), "tar -xf: {}", text(&extract.stderr));
        text(&out.stdout)
            .lines()
            .map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.last().unwrap_or(&"").trim_end_matches('/').to_string(), fields[1].to_string())
            })
            .collect()
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // The storage directory goes with `self.storage`, after the image.
        let _ = self.podman(&["rmi", "--force", &self.tag]);
    }
}

/// A container of the image, killed and removed by its id when dropped.
struct Container<'i> {
    image: &'i Image,
    id: String,
}

impl Container<'_> {
    fn inspect(&self, format: &str) -> String {
        self.image.podman_ok(&["inspect", "--format", format, &self.id])
    }

    /// What the container wrote to stdout and stderr so far.
    fn logs(&self) -> String {
        let out = self.image.podman(&["logs", &self.id]);
        format!("{}\n{}", text(&out.stdout), text(&out.stderr))
    }

    fn running(&self) -> bool {
        self.inspect("{{.State.Running}}") == "true"
    }

    /// Polls `GET url` until it answers 200; fails with the container's output if the
    /// container exits or `STARTUP` passes.
    async fn wait_for_200(&self, url: &str) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + STARTUP;
        loop {
            if matches!(client.get(url).send().await, Ok(r) if r.status() == 200) {
                return;
            }
            assert!(self.running(), "the container exited before {url} answered 200; its output:\n{}", self.logs());
            assert!(
                Instant::now() < deadline,
                "{url} not 200 after {STARTUP:?}; the container's output:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls the container's output until it holds `needle`.
    async fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + STARTUP;
        loop {
            let logs = self.logs();
            if logs.contains(needle) {
                return logs;
            }
            assert!(self.running(), "the container exited; its output:\n{logs}");
            assert!(Instant::now() < deadline, "no {needle:?} after {STARTUP:?}; the container's output:\n{logs}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The Uid and Gid lines of the container's process, as the host sees them.
    fn host_ids(&self) -> (Vec<String>, Vec<String>) {
        let pid = self.inspect("{{.State.Pid}}");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/status of the container's process: {e}"));
        let ids = |name: &str| -> Vec<String> {
            let line = status.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {status}"));
            line.split_whitespace().skip(1).map(str::to_string).collect()
        };
        (ids("Uid:"), ids("Gid:"))
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.image.podman(&["rm", "--force", "--time", "0", &self.id]);
    }
}

/// Whether this test runs as root, so podman is rootful and ids in the container are the
/// host's.
fn root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with("Uid:")).is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
}

/// A tollgate config for `issuer` listening on 127.0.0.1:`port`, in `dir`; mounted where
/// the image's CMD and HEALTHCHECK read it.
fn config_file(dir: &Path, port: u16, issuer: &str) -> PathBuf {
    let path = dir.join("tollgate.toml");
    std::fs::write(&path, format!("listen = \"127.0.0.1:{port}\"\n{}", config_text(issuer, "envoy", ""))).unwrap();
    path
}

fn mount(host: &Path, inside: &str) -> String {
    format!("{}:{inside}:ro", host.display())
}

/// True when the ELF file `bytes` has no program interpreter (PT_INTERP): statically linked.
fn static_elf(bytes: &[u8]) -> bool {
    assert!(bytes.len() > 64 && &bytes[..4] == b"\x7fELF" && bytes[4] == 2, "not a 64-bit ELF file");
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()) as usize;
    let (entry_size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).all(|i| {
        let at = phoff + i * entry_size;
        u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) != 3
    })
}

#[test]
fn the_image_holds_only_the_static_binary_and_the_ca_roots_owned_by_root() {
    let Some(image) = image() else { return };
    let dir = TempDir::new("image-files");
    let files = image.files(dir.path());
    let regular: Vec<&str> =
        files.iter().map(|(path, _)| path.as_str()).filter(|path| dir.path().join(path).is_file()).collect();
    assert_eq!(regular, ["etc/ssl/certs/ca-certificates.crt", "usr/local/bin/tollgate"], "{files:?}");
    assert!(files.iter().all(|(_, owner)| owner == "0/0"), "everything root's, not the runtime user's: {files:?}");

    let binary = std::fs::read(dir.path().join(&BIN[1..])).unwrap();
    assert!(static_elf(&binary), "the binary names a program interpreter: it is not static");
    let bundle = std::fs::read_to_string(dir.path().join(&BUNDLE[1..])).unwrap();
    let certificates = bundle.matches("-----BEGIN CERTIFICATE-----").count();
    assert!(certificates > 0, "no certificate in the image's CA bundle");
    assert_eq!(bundle, std::fs::read_to_string(BUNDLE).unwrap(), "the build machine's CA roots");
    report(&format!("the image holds the binary ({} bytes) and {certificates} CA roots", binary.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_as_non_root_is_ready_answers_checks_and_reports_healthy() {
    let Some(image) = image() else { return };
    assert_eq!(image.podman_ok(&["image", "inspect", "--format", "{{.Config.User}}", &image.tag]), USER);
    let health = image.podman_ok(&["image", "inspect", "--format", "{{json .Config.Healthcheck.Test}}", &image.tag]);
    assert_eq!(
        health,
        format!("[\"CMD\",\"{BIN}\",\"health\",\"--config\",\"{CONFIG}\"]"),
        "the image keeps HEALTHCHECK"
    );

    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let dir = TempDir::new("image-run");
    let port = free_port();
    let config = config_file(dir.path(), port, &issuer.issuer());
    let container = image.start(&["--volume", &mount(&config, CONFIG)], &[]);
    let base = format!("http://127.0.0.1:{port}");
    container.wait_for_200(&format!("{base}/readyz")).await;
    assert!(issuer.jwks_fetches() >= 1, "the keys came from the mock issuer");

    let client = reqwest::Client::new();
    let token = issuer.token(&key, now()).sign();
    let ok = client.get(format!("{base}/auth/r")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-auth-subject"], "user1");
    assert_eq!(ok.headers()["x-auth-scheme"], "Bearer");
    let refused = client.get(format!("{base}/auth/r")).send().await.unwrap();
    assert_eq!(refused.status(), 401, "a check without a token");
    drop(client);

    // The image's HEALTHCHECK, and the readiness probe, run inside the container: no shell.
    let healthcheck = image.podman(&["healthcheck", "run", &container.id]);
    assert!(healthcheck.status.success(), "HEALTHCHECK: {}\n{}", text(&healthcheck.stdout), text(&healthcheck.stderr));
    let ready = image.podman(&["exec", &container.id, BIN, "health", "--ready", "--config", CONFIG]);
    assert!(ready.status.success(), "tollgate health --ready inside: {}", text(&ready.stderr));

    // Not root, as the image says and as the kernel sees the process.
    assert_eq!(container.inspect("{{.Config.User}}"), USER);
    let (uids, gids) = container.host_ids();
    assert!(uids.iter().chain(&gids).all(|id| id != "0"), "uids {uids:?}, gids {gids:?}");
    if root() {
        assert!(uids.iter().chain(&gids).all(|id| id == "65532"), "rootful: the image's ids; {uids:?} {gids:?}");
    }

    // SIGTERM to PID 1 stops it cleanly.
    let started = Instant::now();
    image.podman_ok(&["stop", "--time", "30", &container.id]);
    assert_eq!(
        container.inspect("{{.State.ExitCode}}"),
        "0",
        "exit status after SIGTERM; output:\n{}",
        container.logs()
    );
    report(&format!(
        "the container answered /readyz and /auth as {USER}; it stopped on SIGTERM in {:.1?}; image {} bytes",
        started.elapsed(),
        image.size
    ));
}

/// A CA and a server certificate for `host` signed by it, made with the openssl command line.
struct TestCa {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl TestCa {
    fn new(dir: &Path, host: &str) -> TestCa {
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
            assert!(out.status.success(), "openssl {args:?}: {}", text(&out.stderr));
        };
        let new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let subject = format!("/CN={host}");
        openssl(
            &[
                &["req", "-x509", "-days", "1", "-subj", "/CN=tollgate test CA"][..],
                &new_key,
                &["-keyout", "ca.key", "-out", "ca.pem"],
            ]
            .concat(),
        );
        openssl(
            &[&["req", "-subj", &subject][..], &new_key, &["-keyout", "server.key", "-out", "server.csr"]].concat(),
        );
        let extensions =
            format!("subjectAltName = DNS:{host}\nbasicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n");
        std::fs::write(dir.join("server.ext"), extensions).unwrap();
        openssl(&[
            "x509",
            "-req",
            "-days",
            "1",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        TestCa { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key") }
    }
}

/// A static https issuer: `openssl s_server -WWW` serving discovery and a JWKS with `key`
/// from `dir`, on 127.0.0.1:`port` under `ISSUER_HOST`'s certificate.
fn https_issuer(dir: &Path, ca: &TestCa, port: u16, key: &SigningKey) -> ProcessGuard {
    let issuer = format!("https://{ISSUER_HOST}:{port}/");
    let www = dir.join("www");
    std::fs::create_dir_all(www.join(".well-known")).unwrap();
    let discovery = json!({ "issuer": issuer, "jwks_uri": format!("{issuer}jwks") });
    std::fs::write(www.join(".well-known/openid-configuration"), discovery.to_string()).unwrap();
    std::fs::write(www.join("jwks"), json!({ "keys": [key.public_jwk()] }).to_string()).unwrap();
    let mut command = Command::new("openssl");
    command.args(["s_server", "-WWW", "-quiet", "-accept", &format!("127.0.0.1:{port}"), "-cert"]);
    command.arg(&ca.cert).arg("-key").arg(&ca.key).current_dir(&www);
    let server = spawn("openssl s_server", command, dir.join("s_server.log"));
    let deadline = Instant::now() + STARTUP;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "openssl s_server not listening; its output:\n{}", server.output());
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_verifies_an_https_issuer_found_by_name_against_its_ca_bundle() {
    let Some(image) = image() else { return };
    if !tools_available(&["openssl"]) {
        return;
    }
    let dir = TempDir::new("image-https");
    let ca = TestCa::new(dir.path(), ISSUER_HOST);
    let key = SigningKey::rsa("k1").unwrap();
    let issuer_port = free_port();
    let issuer = format!("https://{ISSUER_HOST}:{issuer_port}/");
    let _server = https_issuer(dir.path(), &ca, issuer_port, &key);
    let port = free_port();
    let config = config_file(dir.path(), port, &issuer);
    let base = format!("http://127.0.0.1:{port}");
    // The name is known inside the container only through the /etc/hosts podman writes.
    let host = format!("--add-host={ISSUER_HOST}:127.0.0.1");

    // With the image's own bundle (public CAs), the test CA is unknown: the issuer reached
    // by name is refused, and tollgate is not ready.
    {
        let container = image.start(&[&host, "--volume", &mount(&config, CONFIG)], &[]);
        container.wait_for_log("UnknownIssuer").await;
        let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
        assert_eq!(ready.status(), 503, "not ready without the issuer's keys");
    }

    // With the test CA mounted over the bundle, the same issuer is trusted.
    let (config_mount, bundle_mount) = (mount(&config, CONFIG), mount(&ca.ca, BUNDLE));
    let container = image.start(&[&host, "--volume", &config_mount, "--volume", &bundle_mount], &[]);
    container.wait_for_200(&format!("{base}/readyz")).await;
    let token = TokenBuilder::new(&key, &issuer, now()).sign();
    let ok = reqwest::Client::new().get(format!("{base}/auth/r")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200, "{}", container.logs());
    assert_eq!(ok.headers()["x-auth-subject"], "user1");
}
