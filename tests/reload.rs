//! Reload (CONTRACT "Reload"): a new config swapped in atomically, keeping the keys,
//! caches and replay store whose settings did not change; SIGHUP and `serve --watch`
//! (with a ConfigMap's `..data` symlink swap) on the real binary; a bad config refused
//! while the old one serves; routes changed 20 times under load with no failed check and
//! no check decided by a mixture of two configs.

mod support;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::connect_info::MockConnectInfo;
use axum::http::StatusCode;
use serde_json::json;
use support::*;
use tollgate::clock::{Clock, SystemClock};
use tollgate::config::Config;
use tollgate::reload::{Changes, Live, Service};
use tollgate::signing::SigningKey;
use tower::ServiceExt as _;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn config(issuer: &str, extra: &str) -> Config {
    Config::load(&config_text(issuer, "envoy", extra), &Default::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// A started service whose issuers all have their keys.
async fn started(config: Config, timings: tollgate::issuer::Timings) -> Service {
    let service = Service::start(config, timings, Arc::new(SystemClock) as Arc<dyn Clock>).expect("service");
    let deadline = Instant::now() + STARTUP;
    while service.live().current().ready().is_err() {
        assert!(Instant::now() < deadline, "keys not loaded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    service
}

/// `GET /auth{path}` through the real router over the live checker.
async fn get(live: &Live, path: &str, headers: &[(&str, &str)]) -> Answer {
    let app = tollgate::server::app(live.clone())
        .layer(MockConnectInfo("127.0.0.1:40000".parse::<std::net::SocketAddr>().unwrap()));
    Answer::read(app.oneshot(request("GET", &format!("/auth{path}"), headers)).await.unwrap()).await
}

async fn bearer(live: &Live, path: &str, token: &str) -> Answer {
    get(live, path, &[("authorization", &format!("Bearer {token}"))]).await
}

#[tokio::test]
async fn a_route_change_keeps_the_issuers_keys_and_the_token_cache_without_a_fetch() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let mut service = started(
        config(&issuer.issuer(), "[[routes]]\npath_prefix = \"/admin\"\nscopes = [\"admin\"]\n"),
        fast_timings(),
    )
    .await;
    let live = service.live();
    let token = issuer.token(&key, now()).sign();
    assert_eq!(bearer(&live, "/orders", &token).await.status, StatusCode::OK);
    assert_eq!(bearer(&live, "/admin", &token).await.status, StatusCode::FORBIDDEN);
    let fetches = issuer.jwks_fetches();
    let hits = live.current().metrics().token_cache_hits.get();

    let changes = service
        .reload(config(&issuer.issuer(), "[[routes]]\npath_prefix = \"/orders\"\nscopes = [\"admin\"]\n"))
        .await
        .expect("reload");

    assert_eq!(
        changes,
        Changes {
            issuers_kept: 1,
            issuers_started: 0,
            issuers_retired: 0,
            token_cache_kept: true,
            replay_store_kept: true,
            need_restart: vec![]
        }
    );
    assert_eq!(bearer(&live, "/orders", &token).await.status, StatusCode::FORBIDDEN, "the new routes decide");
    assert_eq!(bearer(&live, "/admin", &token).await.status, StatusCode::OK);
    assert_eq!(issuer.jwks_fetches(), fetches, "kept keys need no fetch");
    assert_eq!(live.current().metrics().token_cache_hits.get(), hits + 2, "the cached token stayed cached");
}

#[tokio::test]
async fn a_new_issuer_has_its_keys_before_the_swap_and_the_old_keeps_its_own() {
    let key = SigningKey::rsa("a-1").unwrap();
    let own = MockIssuer::start(&[&key]).await;
    let partner_key = SigningKey::rsa("b-1").unwrap();
    let partner = MockIssuer::start(&[&partner_key]).await;
    let mut service = started(config(&own.issuer(), ""), fast_timings()).await;
    let live = service.live();
    let partner_token = partner.token(&partner_key, now()).sign();
    assert_eq!(bearer(&live, "/r", &partner_token).await.status, StatusCode::UNAUTHORIZED);
    let own_fetches = own.jwks_fetches();

    let text = format!(
        "[[issuers]]\nurl = \"{}\"\naudience = \"{AUDIENCE}\"\n\n[[issuers]]\nurl = \"{}\"\naudience = \"{AUDIENCE}\"\n\n[proxy]\ngateway = \"envoy\"\n",
        own.issuer(),
        partner.issuer()
    );
    let changes = service.reload(Config::load(&text, &Default::default()).unwrap()).await.expect("reload");

    assert_eq!((changes.issuers_kept, changes.issuers_started, changes.issuers_retired), (1, 1, 0));
    assert!(!changes.token_cache_kept, "cached tokens name their issuer by its place in the list");
    // Right after the swap, with no wait: the new issuer's keys were fetched before it.
    assert_eq!(bearer(&live, "/r", &partner_token).await.status, StatusCode::OK);
    assert_eq!(bearer(&live, "/r", &own.token(&key, now()).sign()).await.status, StatusCode::OK);
    assert_eq!(own.jwks_fetches(), own_fetches);
    assert!(live.current().ready().is_ok());
}

#[tokio::test]
async fn an_issuer_whose_settings_change_keeps_its_keys_through_the_swap() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    issuer.set_jwks_delay(Duration::from_millis(300));
    let mut service = started(config(&issuer.issuer(), ""), fast_timings()).await;
    let live = service.live();
    let other_audience = issuer.token(&key, now()).claim("aud", json!("https://other.example.com")).sign();
    assert_eq!(bearer(&live, "/r", &other_audience).await.status, StatusCode::UNAUTHORIZED);

    let text = format!(
        "[issuer]\nurl = \"{}\"\naudience = [\"{AUDIENCE}\", \"https://other.example.com\"]\n[proxy]\ngateway = \"envoy\"\n",
        issuer.issuer()
    );
    let changes = service.reload(Config::load(&text, &Default::default()).unwrap()).await.expect("reload");

    assert_eq!((changes.issuers_kept, changes.issuers_started, changes.issuers_retired), (0, 1, 1));
    // The successor's own refresh takes 300 ms; it starts with its predecessor's keys.
    assert_eq!(bearer(&live, "/r", &other_audience).await.status, StatusCode::OK);
    assert_eq!(bearer(&live, "/r", &issuer.token(&key, now()).sign()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_removed_issuer_stops_fetching_and_its_tokens_are_refused() {
    let key = SigningKey::rsa("a-1").unwrap();
    let own = MockIssuer::start(&[&key]).await;
    let partner_key = SigningKey::rsa("b-1").unwrap();
    let partner = MockIssuer::start(&[&partner_key]).await;
    // Keys refreshed every 50 ms, so a running key loop shows in the fetch count.
    for issuer in [&own, &partner] {
        issuer.set_cache_control("max-age=0");
    }
    let timings = tollgate::issuer::Timings { min_refresh: Duration::from_millis(50), ..fast_timings() };
    let both = format!(
        "[[issuers]]\nurl = \"{}\"\naudience = \"{AUDIENCE}\"\n\n[[issuers]]\nurl = \"{}\"\naudience = \"{AUDIENCE}\"\n\n[proxy]\ngateway = \"envoy\"\n",
        own.issuer(),
        partner.issuer()
    );
    let mut service = started(Config::load(&both, &Default::default()).unwrap(), timings).await;
    let live = service.live();
    let partner_token = partner.token(&partner_key, now()).sign();
    assert_eq!(bearer(&live, "/r", &partner_token).await.status, StatusCode::OK);

    let text =
        format!("[[issuers]]\nurl = \"{}\"\naudience = \"{AUDIENCE}\"\n\n[proxy]\ngateway = \"envoy\"\n", own.issuer());
    let changes = service.reload(Config::load(&text, &Default::default()).unwrap()).await.expect("reload");
    assert_eq!((changes.issuers_kept, changes.issuers_retired), (1, 1));

    let answer = bearer(&live, "/r", &partner_token).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(answer.body.contains("issuer"), "{}", answer.body);
    // A fetch in flight at the swap may finish; none starts afterwards.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (partner_fetches, own_fetches) = (partner.jwks_fetches(), own.jwks_fetches());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(partner.jwks_fetches(), partner_fetches, "the removed issuer's key loop stopped");
    assert!(own.jwks_fetches() > own_fetches, "the kept issuer's key loop goes on");
}

#[tokio::test]
async fn a_proof_used_before_a_reload_is_still_a_replay_after_it() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let mut service = started(config(&issuer.issuer(), ""), fast_timings()).await;
    let live = service.live();
    let client = SigningKey::p256("client").unwrap();
    let token = issuer.token(&key, now()).claim("cnf", json!({ "jkt": jkt(&client) })).sign();
    let proof = ProofBuilder::new(&client, "GET", "https://api.example.com/r", &token, now()).sign();
    let auth = format!("DPoP {token}");
    let headers =
        [("host", "api.example.com"), ("x-forwarded-proto", "https"), ("authorization", &auth), ("dpop", &proof)];
    assert_eq!(get(&live, "/r", &headers).await.status, StatusCode::OK);

    let changes = service
        .reload(config(&issuer.issuer(), "[[routes]]\npath_prefix = \"/x\"\npublic = true\n"))
        .await
        .expect("reload");

    assert!(changes.replay_store_kept);
    let again = get(&live, "/r", &headers).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED);
    assert!(again.challenges()[0].contains("DPoP proof replayed"), "{:?}", again.challenges());
}

#[tokio::test]
async fn the_replay_store_is_replaced_only_when_its_setting_changes() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let dpop =
        |store: &str, capacity: u32| format!("[dpop]\nreplay_store = \"{store}\"\nreplay_capacity = {capacity}\n");
    let mut service = started(config(&issuer.issuer(), &dpop("memory", 1000)), fast_timings()).await;
    // (new setting, kept?): a memory store's capacity is part of it, a Redis store's is not.
    let steps = [
        (dpop("memory", 1000), true),
        (dpop("memory", 2000), false),
        (dpop("redis://127.0.0.1:1/0", 2000), false),
        (dpop("redis://127.0.0.1:1/0", 5000), true),
        (dpop("redis://127.0.0.1:1/1", 5000), false),
        (dpop("memory", 5000), false),
    ];
    for (text, kept) in steps {
        let changes = service.reload(config(&issuer.issuer(), &text)).await.expect("reload");
        assert_eq!(changes.replay_store_kept, kept, "{text}");
    }
}

#[tokio::test]
async fn listen_and_log_changes_are_kept_as_they_were_and_named() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let mut service = started(config(&issuer.issuer(), "listen = \"127.0.0.1:7001\""), fast_timings()).await;
    let changes = service
        .reload(config(
            &issuer.issuer(),
            "listen = \"127.0.0.1:7002\"\nops_listen = \"127.0.0.1:7003\"\n[log]\nlevel = \"debug\"\n",
        ))
        .await
        .expect("reload");
    assert_eq!(changes.need_restart, vec!["listen", "ops_listen", "log"]);
    let live = service.live().current();
    assert_eq!(live.config().listen.port(), 7001);
    assert_eq!(live.config().ops_listen, None);
}

#[tokio::test]
async fn the_live_checker_sweeps_tokens_expired_by_its_clock_and_its_leeway() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let clock = Arc::new(tollgate::clock::ManualClock::new(now()));
    let text = format!(
        "[issuer]\nurl = \"{}\"\naudience = \"{AUDIENCE}\"\nleeway = 30\n[proxy]\ngateway = \"envoy\"\n",
        issuer.issuer()
    );
    let config = Config::load(&text, &Default::default()).unwrap();
    let service = Service::start(config, fast_timings(), clock.clone() as Arc<dyn Clock>).expect("service");
    while service.live().current().ready().is_err() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let live = service.live();
    for (n, ttl) in [(1, 60), (2, 600)] {
        let token =
            issuer.token(&key, now()).claim("exp", json!(now() + ttl)).claim("sub", json!(format!("u{n}"))).sign();
        assert_eq!(bearer(&live, "/r", &token).await.status, StatusCode::OK);
    }
    assert_eq!(live.current().cache().len(), 2);
    clock.advance(80);
    live.current().sweep_token_cache();
    assert_eq!(live.current().cache().len(), 2, "within exp + leeway: kept");
    clock.advance(20);
    live.current().sweep_token_cache();
    assert_eq!(live.current().cache().len(), 1, "past exp + leeway: dropped");
}

/// One check's answer and which config's claim header it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Seen {
    Allowed(&'static str),
    Forbidden,
}

/// Routes changed 20 times while four clients send checks over real connections: no
/// check fails, and each is decided by one config. Even configs require scope `even` and
/// send the subject as `X-Auth-Even`; odd ones require `odd` and send `X-Auth-Odd`. A token with
/// only `even` is either allowed with `X-Auth-Even` (an even config decided) or forbidden (an
/// odd one did); allowed with `X-Auth-Odd`, or with neither, would be a mixture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_change_20_times_under_load_with_no_failed_check_and_no_mixture() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let version = |n: usize| {
        let (scope, header) = if n.is_multiple_of(2) { ("even", "X-Auth-Even") } else { ("odd", "X-Auth-Odd") };
        config(
            &issuer.issuer(),
            &format!(
                "[[routes]]\npath_prefix = \"/api\"\nscopes = [\"{scope}\"]\n\n[headers]\n\"{header}\" = \"sub\"\n"
            ),
        )
    };
    let mut service = started(version(0), fast_timings()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/auth/api", listener.local_addr().unwrap());
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tollgate::server::serve(service.live(), listener, Duration::from_secs(10), async {
        let _ = stopped.await;
    }));

    let running = Arc::new(AtomicBool::new(true));
    let mut clients = Vec::new();
    for (n, scope) in ["even", "odd", "even odd", "even"].into_iter().enumerate() {
        let token = issuer.token(&key, now()).claim("scope", json!(scope)).claim("sub", json!(format!("u{n}"))).sign();
        let (running, base) = (running.clone(), base.clone());
        clients.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut seen: HashMap<Seen, usize> = HashMap::new();
            let mut failures = Vec::new();
            while running.load(Ordering::Relaxed) {
                match client.get(&base).bearer_auth(&token).send().await {
                    Ok(r) if r.status() == 200 => {
                        let headers = (r.headers().contains_key("x-auth-even"), r.headers().contains_key("x-auth-odd"));
                        match headers {
                            (true, false) => *seen.entry(Seen::Allowed("even")).or_default() += 1,
                            (false, true) => *seen.entry(Seen::Allowed("odd")).or_default() += 1,
                            other => failures.push(format!("allowed with headers (even, odd) = {other:?}")),
                        }
                    }
                    Ok(r) if r.status() == 403 => *seen.entry(Seen::Forbidden).or_default() += 1,
                    Ok(r) => failures.push(format!("status {}", r.status())),
                    Err(e) => failures.push(format!("request failed: {e}")),
                }
            }
            (scope, seen, failures)
        }));
    }

    let mut reload_times = Vec::new();
    for n in 1..=20 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        let started = Instant::now();
        let changes = service.reload(version(n)).await.expect("reload");
        reload_times.push(started.elapsed());
        assert!(changes.token_cache_kept && changes.issuers_kept == 1, "{changes:?}");
    }
    tokio::time::sleep(Duration::from_millis(40)).await;
    running.store(false, Ordering::Relaxed);

    for client in clients {
        let (scope, seen, failures) = client.await.unwrap();
        assert!(failures.is_empty(), "scope {scope:?}: {failures:?}");
        match scope {
            "even" => {
                assert!(!seen.contains_key(&Seen::Allowed("odd")), "{scope}: a mixture: {seen:?}");
                assert!(seen[&Seen::Allowed("even")] > 0 && seen[&Seen::Forbidden] > 0, "{scope}: {seen:?}");
            }
            "odd" => {
                assert!(!seen.contains_key(&Seen::Allowed("even")), "{scope}: a mixture: {seen:?}");
                assert!(seen[&Seen::Allowed("odd")] > 0 && seen[&Seen::Forbidden] > 0, "{scope}: {seen:?}");
            }
            _ => {
                assert!(!seen.contains_key(&Seen::Forbidden), "{scope}: {seen:?}");
                assert!(seen[&Seen::Allowed("even")] > 0 && seen[&Seen::Allowed("odd")] > 0, "{scope}: {seen:?}");
            }
        }
    }
    let _ = stop_server.send(());
    server.await.unwrap().unwrap();
    println!("FIGURES reload of a 1-route config: max {:?}", reload_times.iter().max().unwrap());
}

/// The real binary serving `config` from a file in `dir`, with `args` after `serve`.
async fn serve(dir: &TempDir, file: &std::path::Path, port: u16, args: &[&str]) -> ProcessGuard {
    let mut command = Command::new(BIN);
    command.arg("serve").args(args).arg("--config").arg(file);
    let mut process = spawn("tollgate", command, dir.path().join("tollgate.log"));
    let up = wait_until_ok(&mut process, &reqwest::Client::new(), &format!("http://127.0.0.1:{port}/readyz")).await;
    assert!(up, "tollgate exited: {}", process.output());
    process
}

fn serving(port: u16, issuer: &str, extra: &str) -> String {
    format!("listen = \"127.0.0.1:{port}\"\n{}", config_text(issuer, "envoy", extra))
}

const OPEN: &str = "[[routes]]\npath_prefix = \"/open\"\npublic = true\n";

/// Polls `/auth/open` without a token until it answers `status`.
async fn wait_for_open(process: &mut ProcessGuard, port: u16, status: u16) {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/auth/open");
    let ok = wait_ready(process, || {
        let request = client.get(&url).send();
        async move { matches!(request.await, Ok(r) if r.status() == status) }
    })
    .await;
    assert!(ok, "tollgate exited: {}", process.output());
}

async fn reloads(port: u16, result: &str) -> u64 {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    let series = format!("tollgate_config_reloads_total{{result=\"{result}\"}} ");
    let line = text.lines().find_map(|l| l.strip_prefix(&series)).unwrap_or_else(|| panic!("no {series} in {text}"));
    line.parse().unwrap()
}

fn hangup(process: &ProcessGuard) {
    assert!(Command::new("kill").args(["-HUP", &process.id().to_string()]).status().unwrap().success());
}

#[tokio::test]
async fn sighup_reloads_and_a_bad_config_is_refused_while_the_old_one_serves() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let dir = TempDir::new("reload-hup");
    let file = dir.path().join("tollgate.toml");
    let port = free_port();
    std::fs::write(&file, serving(port, &issuer.issuer(), "")).unwrap();
    let mut process = serve(&dir, &file, port, &[]).await;
    wait_for_open(&mut process, port, 401).await;
    assert_eq!(reloads(port, "ok").await, 0);

    // A new route and a new listen address: the route applies, the address needs a restart.
    let elsewhere = free_port();
    std::fs::write(&file, serving(elsewhere, &issuer.issuer(), OPEN)).unwrap();
    hangup(&process);
    wait_for_open(&mut process, port, 200).await;
    assert_eq!(reloads(port, "ok").await, 1);
    assert!(process.output().contains("only a restart applies it"), "{}", process.output());
    assert!(reqwest::get(format!("http://127.0.0.1:{elsewhere}/healthz")).await.is_err());

    std::fs::write(&file, serving(port, &issuer.issuer(), "[[routes]]\npath_prefix = \"/open\"\npublic = \"yes\"\n"))
        .unwrap();
    hangup(&process);
    let deadline = Instant::now() + STARTUP;
    while reloads(port, "error").await == 0 {
        assert!(Instant::now() < deadline, "no refused reload counted: {}", process.output());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = process.output();
    assert!(log.contains("the old one keeps serving") && log.contains("routes[0].public"), "{log}");
    let open = reqwest::get(format!("http://127.0.0.1:{port}/auth/open")).await.unwrap();
    assert_eq!(open.status(), 200, "the old config still serves");
    assert_eq!(reloads(port, "ok").await, 1);
    assert!(process.exited().is_none());
}

/// A ConfigMap volume: `tollgate.toml -> ..data/tollgate.toml`, `..data -> ..<version>`;
/// an update writes a new version directory and renames a new `..data` link over the old.
#[tokio::test]
async fn watch_follows_a_configmap_symlink_swap_and_ignores_unchanged_content() {
    let key = SigningKey::rsa("k1").unwrap();
    let issuer = MockIssuer::start(&[&key]).await;
    let dir = TempDir::new("reload-watch");
    let port = free_port();
    let mount = dir.path().join("mount");
    let version = |name: &str, text: &str| {
        std::fs::create_dir_all(mount.join(name)).unwrap();
        std::fs::write(mount.join(name).join("tollgate.toml"), text).unwrap();
        let link = mount.join("..data_tmp");
        std::os::unix::fs::symlink(name, &link).unwrap();
        std::fs::rename(&link, mount.join("..data")).unwrap();
    };
    version("..v1", &serving(port, &issuer.issuer(), ""));
    std::os::unix::fs::symlink("..data/tollgate.toml", mount.join("tollgate.toml")).unwrap();
    let mut process = serve(&dir, &mount.join("tollgate.toml"), port, &["--watch"]).await;
    wait_for_open(&mut process, port, 401).await;

    version("..v2", &serving(port, &issuer.issuer(), OPEN));
    wait_for_open(&mut process, port, 200).await;
    assert_eq!(reloads(port, "ok").await, 1);

    // Another key of the same ConfigMap changed: a swap, but the same tollgate.toml.
    version("..v3", &serving(port, &issuer.issuer(), OPEN));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(reloads(port, "ok").await, 1, "unchanged content is not reloaded");

    version("..v4", &serving(port, &issuer.issuer(), ""));
    wait_for_open(&mut process, port, 401).await;
    assert_eq!(reloads(port, "ok").await, 2);
}

#[test]
fn watch_needs_a_config_file() {
    let out = Command::new(BIN).args(["serve", "--watch"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"), "{}", String::from_utf8_lossy(&out.stderr));
}
