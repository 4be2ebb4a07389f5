//! The command line: parse arguments, load the config, start the server. No logic here.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tollgate::clock::{Clock, SystemClock};
use tollgate::config::{Config, LogFormat};
use tollgate::dev::tour;
use tollgate::reload::Source;
use tollgate::run::{self, RunError};

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "Forward-auth sidecar: verifies OAuth 2.0 / OIDC access tokens for your gateway",
    after_help = ENVIRONMENT
)]
struct Cli {
    /// TOML config file (same as `tollgate serve --config FILE`).
    #[arg(long, global = false)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// How settings come from the environment, for every command's help.
const ENVIRONMENT: &str = "\
Configuration: a TOML file (--config FILE) and environment variables, the environment
winning: TOLLGATE_<SECTION>__<KEY> for any key (TOLLGATE_PROXY__GATEWAY=nginx,
TOLLGATE_DPOP__REQUIRED=true, TOLLGATE_PROXY__TRUSTED=10.0.0.5/32,::1/128,
TOLLGATE_CLIENT__CLIENT_SECRET=...), and AUTH0_DOMAIN and AUTH0_AUDIENCE for issuer.domain
and issuer.audience. Without --config, serve and check read the environment alone:

  AUTH0_DOMAIN=tenant.eu.auth0.com AUTH0_AUDIENCE=https://api.example.com \\
  TOLLGATE_PROXY__GATEWAY=nginx tollgate serve";

#[derive(Subcommand)]
enum Command {
    /// Run the sidecar.
    #[command(after_help = ENVIRONMENT)]
    Serve {
        /// TOML config file; without it, the environment alone.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Reload when the config file's content changes (also a ConfigMap's symlink
        /// swap). SIGHUP reloads with or without it.
        #[arg(long, requires = "config")]
        watch: bool,
    },
    /// Validate a config file and print what it resolved to (warnings on stderr).
    #[command(after_help = ENVIRONMENT)]
    Check {
        /// TOML config file; without it, the environment alone.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Say which route a request matches and what it requires: --explain GET https://host/path
        #[arg(long, num_args = 2, value_names = ["METHOD", "URL"])]
        explain: Option<Vec<String>>,
    },
    /// Build a DPoP proof (RFC 9449) for a request, to debug a DPoP setup from a shell.
    Proof {
        /// The client's P-256 private key, PKCS#8 PEM.
        #[arg(long)]
        key: PathBuf,
        /// Create the key file (it must not exist) and print its thumbprint.
        #[arg(long, conflicts_with_all = ["jkt", "method", "url", "token"])]
        new: bool,
        /// Print the key's RFC 7638 thumbprint: the `cnf.jkt` of tokens bound to it.
        #[arg(long, conflicts_with_all = ["method", "url", "token"])]
        jkt: bool,
        /// The request method, e.g. GET.
        #[arg(long, required_unless_present_any = ["new", "jkt"])]
        method: Option<String>,
        /// The URL the client calls, e.g. https://api.example.com/orders.
        #[arg(long, required_unless_present_any = ["new", "jkt"])]
        url: Option<String>,
        /// The access token the proof goes with (its hash becomes `ath`).
        #[arg(long, required_unless_present_any = ["new", "jkt"])]
        token: Option<String>,
        /// The server nonce from a `DPoP-Nonce` header, when the server asks for one.
        #[arg(long)]
        nonce: Option<String>,
    },
    /// Run against a built-in development issuer and print tokens and curl lines.
    Dev {
        /// Address for the check endpoint.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The development issuer's port on 127.0.0.1 (default: any free port). With
        /// --issuer-key, a gateway or client can be pointed at it across restarts.
        #[arg(long, default_value_t = 0)]
        issuer_port: u16,
        /// The development issuer's RSA key, PKCS#8 PEM: read if the file exists, else
        /// created (mode 0600), so its JWKS and tokens stay valid across restarts.
        #[arg(long)]
        issuer_key: Option<PathBuf>,
    },
    /// Ask a running tollgate for /healthz (or /readyz) at the address its config serves
    /// it on; exit 0 on 200. For container health checks with no shell or curl.
    Health {
        /// TOML config file; without it, the environment alone.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Ask /readyz (issuer keys loaded) instead of /healthz.
        #[arg(long)]
        ready: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match (cli.command, cli.config) {
        (Some(Command::Serve { config, watch }), _) => runtime.block_on(serve(config, watch)),
        (None, Some(config)) => runtime.block_on(serve(Some(config), false)),
        (Some(Command::Check { config, explain }), _) => check(config.as_deref(), explain.as_deref()),
        (Some(Command::Proof { key, new, jkt, method, url, token, nonce }), _) => {
            proof(&key, new, jkt, method.zip(url).zip(token), nonce.as_deref())
        }
        (Some(Command::Dev { listen, issuer_port, issuer_key }), _) => {
            runtime.block_on(dev(listen, issuer_port, issuer_key.as_deref()))
        }
        (Some(Command::Health { config, ready }), _) => runtime.block_on(health(config.as_deref(), ready)),
        (None, None) => {
            eprintln!("tollgate: give a command (serve --config FILE, check --config FILE, dev, health); see --help");
            ExitCode::from(2)
        }
    }
}

/// The config from `path` and the environment, or from the environment alone.
fn load(path: Option<&std::path::Path>) -> Option<Config> {
    let loaded = match path {
        Some(path) => Config::from_file(path),
        None => Config::load("", &std::env::vars().collect()),
    };
    match loaded {
        Ok(config) => Some(config),
        Err(e) => {
            eprint!("tollgate: {e}");
            None
        }
    }
}

fn check(path: Option<&std::path::Path>, explain: Option<&[String]>) -> ExitCode {
    let Some(config) = load(path) else { return ExitCode::FAILURE };
    match explain {
        None => {
            print!("{}", tollgate::config::describe(&config));
            for warning in tollgate::config::warnings(&config) {
                eprintln!("tollgate: warning: {warning}");
            }
            ExitCode::SUCCESS
        }
        Some([method, url]) => explain_request(config, method, url),
        Some(_) => ExitCode::from(2),
    }
}

/// `tollgate proof`: make a key, print its thumbprint, or build a proof.
fn proof(
    path: &std::path::Path,
    new: bool,
    jkt: bool,
    request: Option<((String, String), String)>,
    nonce: Option<&str>,
) -> ExitCode {
    use tollgate::dev;
    use tollgate::signing::SigningKey;
    let fail = |message: String| {
        eprintln!("tollgate proof: {message}");
        ExitCode::FAILURE
    };
    if new {
        return match new_client_key(path) {
            Ok(jkt) => {
                println!("{jkt}");
                ExitCode::SUCCESS
            }
            Err(message) => fail(message),
        };
    }
    let key = match std::fs::read_to_string(path) {
        Ok(pem) => SigningKey::p256_from_pem("client", &pem),
        Err(e) => return fail(format!("cannot read {}: {e}", path.display())),
    };
    let key = match key {
        Ok(k) => k,
        Err(e) => return fail(e.to_string()),
    };
    if jkt {
        println!("{}", key.jkt());
        return ExitCode::SUCCESS;
    }
    let Some(((method, url), token)) = request else { return fail("--method, --url and --token are required".into()) };
    if !is_absolute_http_url(&url) {
        return fail(format!(
            "--url must be the absolute http(s) URL the client calls, e.g. https://api.example.com/orders, not {url:?}"
        ));
    }
    match dev::proof(&key, &method, &url, &token, nonce, SystemClock.now()) {
        Ok(proof) => {
            println!("{proof}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
    }
}

/// `tollgate proof --new`: a P-256 key in a new file only its owner can read; its thumbprint.
fn new_client_key(path: &std::path::Path) -> Result<String, String> {
    let key = tollgate::signing::SigningKey::p256("client").map_err(|e| e.to_string())?;
    let pem = key.to_pem().map_err(|e| e.to_string())?;
    tollgate::signing::write_key_file(path, &pem).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    Ok(key.jkt())
}

/// A DPoP `htu` names a scheme and a host: `api.example.com/orders` cannot match any.
fn is_absolute_http_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log.level);
    // Colour codes only for a person at a terminal, never into files or log collectors.
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(path: Option<PathBuf>, watch: bool) -> ExitCode {
    let Some(config) = load(path.as_deref()) else { return ExitCode::FAILURE };
    init_logging(&config);
    let source = path.map_or(Source::Environment, Source::File);
    let served = match run::bind_all(&config).await {
        Ok(listeners) => run::serve(config, listeners, Some((source, watch))).await,
        Err(error) => Err(error),
    };
    exit_code(served)
}

/// 0 after a clean shutdown; the error logged and 1 otherwise.
fn exit_code(served: Result<(), RunError>) -> ExitCode {
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "tollgate stopped");
            ExitCode::FAILURE
        }
    }
}

/// `tollgate check --explain METHOD URL`: the readings, the routes they match and the
/// decision; or why tollgate would refuse the request before any route.
fn explain_request(config: Config, method: &str, url: &str) -> ExitCode {
    if !url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
        eprintln!(
            "tollgate: --explain needs a method and an absolute http(s) URL, e.g. GET https://api.example.com/orders"
        );
        return ExitCode::from(2);
    }
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        println!(
            "note: {method:?} is not {:?}: methods are case-sensitive (RFC 9110 §9.1); tollgate also reads it upper-cased, as Django and Flask do",
            method.to_ascii_uppercase()
        );
    }
    match tollgate::gateway::OriginalRequest::from_url(method, url) {
        Ok(request) => {
            let policy = tollgate::policy::Policy::new(config.routes, config.default, config.path_matching);
            println!("{}", policy.explain(&request));
        }
        Err(reason) => println!(
            "{method} {url}\n  refused before any route: {} ({} {})",
            reason.description(),
            tollgate::refusal::respond(&reason.clone().into(), &config.challenge_settings()).status.as_u16(),
            reason.code().map_or("", |c| c.as_str()),
        ),
    }
    ExitCode::SUCCESS
}

/// `tollgate health`: exit 0 when the configured tollgate answers 200.
async fn health(path: Option<&std::path::Path>, ready: bool) -> ExitCode {
    use tollgate::health::{self, Probe};
    let Some(config) = load(path) else { return ExitCode::FAILURE };
    let probe = if ready { Probe::Ready } else { Probe::Live };
    match health::check(health::probe_address(&config), probe).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate health: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `tollgate dev`: binds `listen` first, so a busy port fails before anything is printed,
/// then starts the development issuer, prints the tour and serves.
async fn dev(listen: SocketAddr, issuer_port: u16, issuer_key: Option<&std::path::Path>) -> ExitCode {
    let fail = |message: &dyn std::fmt::Display| {
        // A config error lists its problems one a line, the last with its newline.
        eprintln!("tollgate dev: {}", message.to_string().trim_end());
        ExitCode::FAILURE
    };
    let main = match run::bind(listen).await {
        Ok(l) => l,
        Err(error) => return fail(&format_args!("{error}; choose another address with --listen 127.0.0.1:PORT")),
    };
    let issuer = match tour::start_issuer(issuer_port, issuer_key).await {
        Ok(i) => i,
        Err(e) => return fail(&e),
    };
    let config = match tour::config(listen, &issuer) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    init_logging(&config);
    if let Err(e) = tour::print(&mut std::io::stdout().lock(), &issuer, listen, config.dpop.iat_offset) {
        return fail(&e);
    }
    exit_code(run::serve(config, run::Listeners { main, ops: None, grpc: None }, None).await)
}
