//! The binary's commands: `check`, `serve` (with graceful shutdown on SIGTERM) and `dev`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;
use tollgate::signing::SigningKey;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn write_config(text: &str) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("cli");
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// Waits until the tollgate on `port` has its keys (`/readyz`); fails if it exits first.
async fn wait_readyz(process: &mut ProcessGuard, port: u16) {
    let ready = format!("http://127.0.0.1:{port}/readyz");
    let up = wait_until_ok(process, &reqwest::Client::new(), &ready).await;
    assert!(up, "tollgate on port {port} exited before it became ready");
}

#[test]
fn check_prints_the_resolved_config_and_exits_zero() {
    let (_dir, path) = write_config(
        "[issuer]\ndomain = \"t.auth0.com\"\naudience = \"a\"\n[proxy]\ngateway = \"traefik\"\n[[routes]]\npath_prefix = \"/admin\"\nscopes = [\"w\"]\n",
    );
    let out = Command::new(BIN).args(["check", "--config"]).arg(&path).env_remove("AUTH0_DOMAIN").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("issuer            https://t.auth0.com/"), "{text}");
    assert!(text.contains("gateway           traefik"), "{text}");
    assert!(text.contains("/admin/** -> a valid token, scopes w"), "{text}");
}

#[test]
fn check_names_every_bad_key_and_exits_non_zero() {
    let (_dir, path) = write_config(
        "[issuer]\nurl = \"nope\"\naudience = []\n[proxy]\ngateway = \"nginx\"\ntrusted = [\"10.0.0.0/40\"]\n",
    );
    let out = Command::new(BIN).args(["check", "--config"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8(out.stderr).unwrap();
    for key in ["issuer.url", "issuer.audience", "proxy.trusted"] {
        assert!(text.contains(key), "{key} in {text}");
    }
}

#[test]
fn check_reports_an_unreadable_file() {
    let out = Command::new(BIN).args(["check", "--config", "no-such-file.toml"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("cannot read no-such-file.toml"));
}

#[tokio::test]
async fn serve_answers_checks_and_stops_cleanly_on_sigterm() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let port = free_port();
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\n{}",
        config_text(&issuer.issuer(), "envoy", "[shutdown]\ndrain_delay = 0\n")
    );
    let (_dir, path) = write_config(&text);
    let mut child = ProcessGuard::new(
        "tollgate",
        Command::new(BIN).args(["serve", "--config"]).arg(&path).stderr(Stdio::null()).spawn().unwrap(),
    );
    wait_readyz(&mut child, port).await;
    let token = issuer.token(&key, now()).sign();
    let client = reqwest::Client::new();
    let ok = client.get(format!("http://127.0.0.1:{port}/auth/r")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-auth-subject"], "user1");
    let refused = client.get(format!("http://127.0.0.1:{port}/auth/r")).send().await.unwrap();
    assert_eq!(refused.status(), 401);

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.child().try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "tollgate did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
}

/// Starts `tollgate dev` with `args` and reads its tour, up to its last `curl` line.
async fn start_dev(args: &[&str]) -> (ProcessGuard, Vec<String>) {
    let mut child = ProcessGuard::new(
        "tollgate dev",
        Command::new(BIN).arg("dev").args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap(),
    );
    let stdout = child.child().stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line.contains("actor not allowed");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    })
    .await
    .unwrap();
    (child, lines)
}

/// The value a tour line assigns: `TOKEN=` gives the token.
fn printed(lines: &[String], name: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix(name).map(str::to_string))
        .unwrap_or_else(|| panic!("dev prints {name}: {lines:?}"))
}

#[tokio::test]
async fn dev_shows_a_downstream_token_and_delegation() {
    let port = free_port();
    let (mut child, lines) = start_dev(&["--listen", &format!("127.0.0.1:{port}")]).await;
    let (token, delegated) = (printed(&lines, "TOKEN="), printed(&lines, "DELEGATED="));
    wait_readyz(&mut child, port).await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let calendar = client.get(format!("{base}/auth/calendar/events")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(calendar.status(), 200);
    let downstream = calendar.headers()["x-auth-downstream-token"].to_str().unwrap();
    let payload = tollgate::jws::decode(downstream.split('.').nth(1).unwrap()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["aud"], "https://calendar.example.com");
    assert_eq!(claims["sub"], "dev-user");
    assert_eq!(claims["act"]["sub"], "tollgate-dev");

    let agent = client.get(format!("{base}/auth/agent/tasks")).bearer_auth(&delegated).send().await.unwrap();
    assert_eq!(agent.status(), 200);
    assert_eq!(agent.headers()["x-auth-actor"], "mcp-agent");
    let refused = client.get(format!("{base}/auth/agent/tasks")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(lines.iter().any(|l| l.contains("/auth/agent/tasks") && l.contains("# 403")), "{lines:?}");
}

#[tokio::test]
async fn dev_prints_a_token_that_works_and_curl_lines() {
    let port = free_port();
    let (mut child, lines) = start_dev(&["--listen", &format!("127.0.0.1:{port}")]).await;
    let value = |name: &str| printed(&lines, name);
    let token = value("TOKEN=");
    assert!(lines.iter().any(|l| l.contains("curl") && l.contains("# 403")), "{lines:?}");
    wait_readyz(&mut child, port).await;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let ok = client.get(format!("{base}/auth/orders")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-auth-subject"], "dev-user");
    assert_eq!(client.get(format!("{base}/auth/orders")).send().await.unwrap().status(), 401);
    assert_eq!(client.get(format!("{base}/auth/admin")).bearer_auth(&token).send().await.unwrap().status(), 403);
    assert_eq!(client.get(format!("{base}/auth/public/status")).send().await.unwrap().status(), 200);

    let (dpop_token, proof) = (value("DPOP_TOKEN="), value("PROOF="));
    let dpop = || {
        client
            .get(format!("{base}/auth/orders"))
            .header("authorization", format!("DPoP {dpop_token}"))
            .header("dpop", &proof)
            .send()
    };
    let ok = dpop().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-auth-scheme"], "DPoP");
    let replayed = dpop().await.unwrap();
    assert_eq!(replayed.status(), 401);
    assert!(replayed.headers()["www-authenticate"].to_str().unwrap().contains("DPoP proof replayed"));
    assert_eq!(client.get(format!("{base}/auth/orders")).bearer_auth(&dpop_token).send().await.unwrap().status(), 401);

    // The printed command calls this very binary and makes a fresh proof that works.
    assert!(lines.iter().any(|l| l.contains("within 5 minutes")), "the proof's lifetime is told: {lines:?}");
    assert!(lines.iter().any(|l| l == &format!("tollgate dev: this binary is {BIN}")), "{lines:?}");
    let command = lines.iter().find(|l| l.contains(" proof --key")).unwrap();
    assert!(command.trim().starts_with(&format!("PROOF=$({BIN} proof --key ")), "{command}");
    let key_file = command.split("--key ").nth(1).unwrap().split(' ').next().unwrap();
    let out = Command::new(BIN)
        .args([
            "proof",
            "--key",
            key_file,
            "--method",
            "GET",
            "--url",
            &format!("{base}/orders"),
            "--token",
            &dpop_token,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fresh = String::from_utf8(out.stdout).unwrap();
    let answer = client
        .get(format!("{base}/auth/orders"))
        .header("authorization", format!("DPoP {dpop_token}"))
        .header("dpop", fresh.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let _ = std::fs::remove_file(key_file);
}

#[test]
fn proof_makes_a_key_prints_its_thumbprint_and_builds_proofs() {
    let dir = TempDir::new("cli");
    let key = dir.path().join("client.pem");
    let run = |args: &[&str]| Command::new(BIN).arg("proof").arg("--key").arg(&key).args(args).output().unwrap();
    let made = run(&["--new"]);
    assert!(made.status.success());
    let jkt = String::from_utf8(made.stdout).unwrap().trim().to_string();
    assert_eq!(jkt.len(), 43);
    assert!(!run(&["--new"]).status.success(), "never overwrites a key");
    assert_eq!(String::from_utf8(run(&["--jkt"]).stdout).unwrap().trim(), jkt);

    let out = run(&["--method", "POST", "--url", "https://api.example.com/orders", "--token", "tok", "--nonce", "n1"]);
    assert!(out.status.success());
    let proof = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let expected = tollgate::dpop::proof::Expected {
        method: "POST",
        htu: "https://api.example.com/orders",
        access_token: "tok",
        jkt: &jkt,
    };
    let settings = tollgate::dpop::proof::ProofSettings {
        algorithms: vec![tollgate::config::ProofAlgorithm::Es256],
        iat_leeway: 30,
        iat_offset: 300,
    };
    let verified = tollgate::dpop::proof::verify(&proof, &expected, &settings, now()).expect("a valid proof");
    assert_eq!(verified.nonce(), Some("n1"));

    let missing = Command::new(BIN).args(["proof", "--key", "no-such.pem", "--jkt"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8(missing.stderr).unwrap().contains("cannot read no-such.pem"));
}

#[test]
fn check_explain_names_the_matching_route() {
    let (_dir, path) = write_config(
        "[issuer]\ndomain = \"t.auth0.com\"\naudience = \"a\"\n[proxy]\ngateway = \"nginx\"\n[[routes]]\npath_prefix = \"/admin\"\nmethods = [\"POST\"]\nscopes = [\"w\"]\n",
    );
    let explain = |method: &str, url: &str| {
        let out =
            Command::new(BIN).args(["check", "--config"]).arg(&path).args(["--explain", method, url]).output().unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap())
    };
    let (ok, text) = explain("POST", "https://api.example.com/admin/x");
    assert!(ok);
    assert!(
        text.contains("read as POST /admin/x -> route 1: POST any host /admin/** -> a valid token, scopes w"),
        "{text}"
    );
    assert!(text.contains("decision: a valid token meeting route 1"), "{text}");
    let (_, text) = explain("GET", "https://api.example.com/admin/x");
    assert!(text.contains("read as GET /admin/x -> no route: default = \"authenticated\""), "{text}");
    assert!(text.contains("decision: a valid token is enough"), "{text}");
    // The readings that decided: the override and the case-folded path.
    let (_, text) = explain("GET", "https://api.example.com/ADMIN/x?_method=post");
    assert!(text.contains("read as POST /ADMIN/x (case folded) -> route 1"), "{text}");
    assert!(text.contains("decision: a valid token meeting route 1"), "{text}");
    assert!(!explain("GET", "/relative").0);
}

#[test]
fn dev_on_a_busy_port_says_so_before_printing_the_tour() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = busy.local_addr().unwrap().to_string();
    let out = Command::new(BIN).args(["dev", "--listen", &listen]).output().unwrap();
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "nothing printed before the port check");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains(&format!("cannot listen on {listen}")) && err.contains("--listen"), "{err}");
}

#[tokio::test]
async fn dev_keeps_its_issuer_port_and_key_across_restarts() {
    let dir = TempDir::new("cli");
    let key = dir.path().join("issuer.pem");
    let (issuer_port, first_port, second_port) = (free_port(), free_port(), free_port());
    let args = |port: u16| {
        let listen = format!("127.0.0.1:{port}");
        let key = key.to_str().unwrap().to_string();
        ["--listen".into(), listen, "--issuer-port".into(), issuer_port.to_string(), "--issuer-key".into(), key]
    };
    let (mut first, lines) = start_dev(&args(first_port).each_ref().map(String::as_str)).await;
    let token = printed(&lines, "TOKEN=");
    assert!(lines.iter().any(|l| l.contains(&format!("issuer at http://127.0.0.1:{issuer_port}/"))), "{lines:?}");
    wait_readyz(&mut first, first_port).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    drop(first);

    let (mut second, _) = start_dev(&args(second_port).each_ref().map(String::as_str)).await;
    wait_readyz(&mut second, second_port).await;
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{second_port}/auth/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "a token from the first run verifies in the second");
}

#[test]
fn proof_new_writes_a_key_only_its_owner_can_read() {
    let dir = TempDir::new("cli");
    let key = dir.path().join("client.pem");
    assert!(Command::new(BIN).arg("proof").arg("--key").arg(&key).arg("--new").output().unwrap().status.success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn proof_refuses_a_url_without_a_scheme() {
    let dir = TempDir::new("cli");
    let key = dir.path().join("client.pem");
    assert!(Command::new(BIN).arg("proof").arg("--key").arg(&key).arg("--new").output().unwrap().status.success());
    let out = Command::new(BIN)
        .arg("proof")
        .arg("--key")
        .arg(&key)
        .args(["--method", "GET", "--url", "api.example.com/orders", "--token", "t"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert!(String::from_utf8(out.stderr).unwrap().contains("absolute http(s) URL"));
}

#[tokio::test]
async fn health_asks_the_configured_ops_address_and_fails_when_nothing_answers() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let (port, ops) = (free_port(), free_port());
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\nops_listen = \"127.0.0.1:{ops}\"\n{}",
        config_text(&issuer.issuer(), "envoy", "")
    );
    let (_dir, path) = write_config(&text);
    let health = |extra: &[&str]| {
        Command::new(BIN).args(["health", "--config"]).arg(&path).args(extra).env_remove("TOLLGATE_OPS_LISTEN").output()
    };
    let down = health(&[]).unwrap();
    assert!(!down.status.success());
    let err = String::from_utf8(down.stderr).unwrap();
    assert!(err.contains(&format!("http://127.0.0.1:{ops}/healthz")) && err.contains("cannot connect"), "{err}");

    let mut child = ProcessGuard::new(
        "tollgate",
        Command::new(BIN).args(["serve", "--config"]).arg(&path).stderr(Stdio::null()).spawn().unwrap(),
    );
    wait_readyz(&mut child, ops).await;
    assert!(health(&[]).unwrap().status.success());
    assert!(health(&["--ready"]).unwrap().status.success());
}

/// Starts `tollgate serve` on a free port with `issuer`, its stderr in a file.
fn serve_logging_to_file(dir: &TempDir, issuer: &str) -> (ProcessGuard, u16) {
    let port = free_port();
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, format!("listen = \"127.0.0.1:{port}\"\n{}", config_text(issuer, "envoy", ""))).unwrap();
    let mut command = Command::new(BIN);
    command.args(["serve", "--config"]).arg(&path);
    (spawn("tollgate", command, dir.path().join("stderr.log")), port)
}

#[tokio::test]
async fn logs_to_a_file_carry_no_colour_codes_and_say_when_keys_load() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let dir = TempDir::new("cli");
    let (mut child, port) = serve_logging_to_file(&dir, &issuer.issuer());
    wait_readyz(&mut child, port).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !child.output().contains("keys loaded: 1 keys") {
        assert!(Instant::now() < deadline, "no recovery line: {}", child.output());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!child.output().contains('\u{1b}'), "ANSI codes in a file: {:?}", child.output());
}

#[tokio::test]
async fn a_key_fetch_failure_without_keys_says_so_and_names_its_cause() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let dir = TempDir::new("cli");
    let (child, _) = serve_logging_to_file(&dir, &issuer);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !child.output().contains("key fetch failed") {
        assert!(Instant::now() < deadline, "no failure logged: {}", child.output());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = child.output();
    let line = log.lines().find(|l| l.contains("key fetch failed")).unwrap();
    assert!(line.contains("no keys yet") && !line.contains("keeping the previous keys"), "{line}");
    assert!(line.contains("cannot connect: Connection refused"), "{line}");
}

#[test]
fn check_warns_on_stderr_and_still_exits_zero() {
    let (_dir, path) = write_config(
        "[issuer]\ndomain = \"your-tenant.us.auth0.com\"\naudience = \"a\"\n[proxy]\ngateway = \"nginx\"\n",
    );
    let out = Command::new(BIN).args(["check", "--config"]).arg(&path).env_remove("AUTH0_DOMAIN").output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("tollgate: warning: issuer https://your-tenant.us.auth0.com/ looks like a placeholder"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid_request_status = 401"), "{stderr}");
}

#[test]
fn check_reads_the_environment_alone_without_a_file() {
    let out = Command::new(BIN)
        .arg("check")
        .env("AUTH0_DOMAIN", "env-only.eu.auth0.com")
        .env("AUTH0_AUDIENCE", "https://api.example.com")
        .env("TOLLGATE_PROXY__GATEWAY", "traefik")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8(out.stdout).unwrap().contains("issuer            https://env-only.eu.auth0.com/"));
    let help = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for text in ["--config <CONFIG>", "TOLLGATE_<SECTION>__<KEY>", "AUTH0_DOMAIN", "environment alone"] {
        assert!(help.contains(text), "{text} in:\n{help}");
    }
}

#[test]
fn explain_says_why_a_request_is_refused_before_any_route_and_calls_out_method_case() {
    let (_dir, path) = write_config(
        "[issuer]\ndomain = \"t.auth0.com\"\naudience = \"a\"\n[proxy]\ngateway = \"traefik\"\n[[routes]]\npath_prefix = \"/admin\"\nmethods = [\"GET\"]\nscopes = [\"w\"]\n",
    );
    let explain = |method: &str, url: &str| {
        let out =
            Command::new(BIN).args(["check", "--config"]).arg(&path).args(["--explain", method, url]).output().unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap())
    };
    let (ok, text) = explain("GET", "https://api.example.com/public/..;/admin");
    assert!(ok);
    assert!(text.contains("refused before any route: ambiguous request path (400 invalid_request)"), "{text}");
    let (_, text) = explain("get", "https://api.example.com/admin/x");
    assert!(text.contains(r#"note: "get" is not "GET""#), "{text}");
    assert!(text.contains("read as GET /admin/x -> route 1"), "{text}");
}

/// At debug, a refusal on a mismatched value says what was expected and what came.
#[tokio::test]
async fn debug_logs_name_the_expected_and_found_issuer_and_audience() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let port = free_port();
    let dir = TempDir::new("cli-debug");
    let extra = format!("listen = \"127.0.0.1:{port}\"\n[log]\nlevel = \"tollgate=debug\"\n");
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, config_text(&issuer.issuer(), "envoy", &extra)).unwrap();
    let mut command = Command::new(BIN);
    command.args(["serve", "--config"]).arg(&path);
    let log = dir.path().join("tollgate.log");
    let mut child = spawn("tollgate", command, log.clone());
    wait_readyz(&mut child, port).await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/auth/r");
    let wrong_aud = issuer.token(&key, now()).claim("aud", serde_json::json!("https://other-api.example")).sign();
    let wrong_iss = issuer.token(&key, now()).claim("iss", serde_json::json!("https://other.example/")).sign();
    for token in [&wrong_aud, &wrong_iss] {
        assert_eq!(client.get(&url).bearer_auth(token).send().await.unwrap().status(), 401);
    }
    drop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("check refused")).collect();
    let aud = lines.iter().find(|l| l.contains("wrong_audience")).unwrap_or_else(|| panic!("{text}"));
    assert!(aud.contains(AUDIENCE) && aud.contains("other-api.example"), "{aud}");
    let iss = lines.iter().find(|l| l.contains("wrong_issuer")).unwrap_or_else(|| panic!("{text}"));
    assert!(iss.contains(&issuer.issuer()) && iss.contains("https://other.example/"), "{iss}");
    assert!(!text.contains(&wrong_aud) && !text.contains(&wrong_iss), "tokens are never logged");
}
