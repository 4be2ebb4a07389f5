//! The command line: parse arguments, load the config, start the server. No logic here.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tollgate::clock::{Clock, SystemClock};
use tollgate::config::{Config, LogFormat};
use tollgate::decision::Checker;
use tollgate::issuer::Timings;

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "Forward-auth sidecar: verifies OAuth 2.0 / OIDC access tokens for your gateway"
)]
struct Cli {
    /// Config file (same as `tollgate serve --config FILE`).
    #[arg(long, global = false)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the sidecar.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Validate a config file and print what it resolved to.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run against a built-in development issuer and print tokens and curl lines.
    Dev {
        /// Address for the check endpoint.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
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
        (Some(Command::Serve { config }), _) | (None, Some(config)) => runtime.block_on(serve(config)),
        (Some(Command::Check { config }), _) => check(&config),
        (Some(Command::Dev { listen }), _) => runtime.block_on(tollgate_dev::run(&listen)),
        (None, None) => {
            eprintln!("tollgate: give a command (serve --config FILE, check --config FILE, dev); see --help");
            ExitCode::from(2)
        }
    }
}

fn load(path: &std::path::Path) -> Option<Config> {
    match Config::from_file(path) {
        Ok(config) => Some(config),
        Err(e) => {
            eprint!("tollgate: {e}");
            None
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    match load(path) {
        Some(config) => {
            print!("{}", tollgate::config::describe(&config));
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log.level);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(path: PathBuf) -> ExitCode {
    let Some(config) = load(&path) else { return ExitCode::FAILURE };
    init_logging(&config);
    run(config).await
}

/// Binds, loads keys in the background, serves until SIGTERM.
pub async fn run(config: Config) -> ExitCode {
    let listen = config.listen;
    let checker = Checker::from_config(config, Timings::default(), Arc::new(SystemClock) as Arc<dyn Clock>);
    tokio::spawn(checker.issuer().clone().run());
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%listen, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(%listen, issuer = %checker.config().issuer.issuer, "tollgate listening");
    match tollgate::server::serve(checker, listener, tollgate::server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

mod tollgate_dev {
    //! `tollgate dev`: a development issuer, the sidecar pointed at it, and a printed tour.

    use super::*;

    const AUDIENCE: &str = "https://api.tollgate.dev";

    pub async fn run(listen: &str) -> ExitCode {
        let issuer = match tollgate::dev::DevIssuer::start().await {
            Ok(i) => i,
            Err(e) => {
                eprintln!("tollgate dev: cannot start the development issuer: {e}");
                return ExitCode::FAILURE;
            }
        };
        let toml = format!(
            r#"
listen = "{listen}"
[issuer]
url = "{issuer}"
audience = "{AUDIENCE}"
[proxy]
gateway = "envoy"   # curl talks to /auth/<path> directly, as Envoy's ext_authz does
[[routes]]
path_prefix = "/public"
public = true
[[routes]]
path_prefix = "/admin"
scopes = ["admin"]
"#,
            issuer = issuer.issuer()
        );
        let config = match Config::load(&toml, &Default::default()) {
            Ok(c) => c,
            Err(e) => {
                eprint!("tollgate dev: {e}");
                return ExitCode::FAILURE;
            }
        };
        init_logging(&config);
        let now = SystemClock.now();
        let token = issuer.mint(AUDIENCE, "dev-user", "read:orders", now, 3600);
        let Ok(token) = token else {
            eprintln!("tollgate dev: cannot sign a token");
            return ExitCode::FAILURE;
        };
        let base = format!("http://{listen}");
        println!("tollgate dev: development issuer at {}", issuer.issuer());
        println!("tollgate dev: sidecar at {base} (gateway dialect: envoy, so /auth/<path> is the request checked)\n");
        println!(
            "A token for audience {AUDIENCE}, subject dev-user, scope read:orders, valid 1 hour:\n\n  TOKEN={token}\n"
        );
        println!("Try:");
        println!("  curl -i {base}/auth/orders -H \"Authorization: Bearer $TOKEN\"   # 200, X-Auth-Subject: dev-user");
        println!("  curl -i {base}/auth/orders                                     # 401, bare challenge");
        println!("  curl -i {base}/auth/orders -H \"Authorization: Bearer nope\"     # 401 invalid_token");
        println!(
            "  curl -i {base}/auth/admin -H \"Authorization: Bearer $TOKEN\"    # 403 insufficient_scope, scope=\"admin\""
        );
        println!("  curl -i {base}/auth/public/status                              # 200, public route");
        println!("  curl -s {base}/metrics | grep tollgate_checks_total\n");
        super::run(config).await
    }
}
