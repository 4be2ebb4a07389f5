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
        (Some(Command::Check { config, explain }), _) => check(&config, explain.as_deref()),
        (Some(Command::Proof { key, new, jkt, method, url, token, nonce }), _) => {
            proof(&key, new, jkt, method.zip(url).zip(token), nonce.as_deref())
        }
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

fn check(path: &std::path::Path, explain: Option<&[String]>) -> ExitCode {
    let Some(config) = load(path) else { return ExitCode::FAILURE };
    match explain {
        None => {
            print!("{}", tollgate::config::describe(&config));
            ExitCode::SUCCESS
        }
        Some([method, url]) => match tollgate::gateway::OriginalRequest::from_url(method, url) {
            Ok(request) => {
                let policy = tollgate::policy::Policy::new(config.routes, config.default, config.path_matching);
                println!("{}", policy.explain(&request));
                ExitCode::SUCCESS
            }
            Err(_) => {
                eprintln!(
                    "tollgate: --explain needs a method and an absolute http(s) URL, e.g. GET https://api.example.com/orders"
                );
                ExitCode::from(2)
            }
        },
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
    use tollgate::dev::{self, SigningKey};
    let fail = |message: String| {
        eprintln!("tollgate proof: {message}");
        ExitCode::FAILURE
    };
    if new {
        let key = match SigningKey::p256("client") {
            Ok(k) => k,
            Err(e) => return fail(e.to_string()),
        };
        let pem = match key.to_pem() {
            Ok(p) => p,
            Err(e) => return fail(e.to_string()),
        };
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, pem.as_bytes()));
        if let Err(e) = written {
            return fail(format!("cannot create {}: {e}", path.display()));
        }
        println!("{}", key.jkt());
        return ExitCode::SUCCESS;
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
    match dev::proof(&key, &method, &url, &token, nonce, SystemClock.now()) {
        Ok(proof) => {
            println!("{proof}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e.to_string()),
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
    match tollgate::server::serve(
        checker,
        listener,
        tollgate::server::HEADER_READ_TIMEOUT,
        tollgate::server::shutdown_signal(),
    )
    .await
    {
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
        let Ok(token) = issuer.mint(AUDIENCE, "dev-user", "read:orders", None, now, 3600) else {
            eprintln!("tollgate dev: cannot sign a token");
            return ExitCode::FAILURE;
        };
        let dpop = match DpopExample::new(&issuer, listen, now) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("tollgate dev: cannot prepare the DPoP example: {e}");
                return ExitCode::FAILURE;
            }
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
        dpop.print(&base);
        super::run(config).await
    }

    /// A client key, a token bound to it, and one proof for GET /orders.
    struct DpopExample {
        key_file: PathBuf,
        token: String,
        proof: String,
    }

    impl DpopExample {
        fn new(issuer: &tollgate::dev::DevIssuer, listen: &str, now: i64) -> Result<Self, Box<dyn std::error::Error>> {
            let key = tollgate::dev::SigningKey::p256("dev-client")?;
            let key_file = std::env::temp_dir().join(format!("tollgate-dev-client-{}.pem", std::process::id()));
            std::fs::write(&key_file, key.to_pem()?)?;
            let token = issuer.mint(AUDIENCE, "dev-user", "read:orders", Some(&key.jkt()), now, 3600)?;
            let proof = tollgate::dev::proof(&key, "GET", &format!("http://{listen}/orders"), &token, None, now)?;
            Ok(DpopExample { key_file, token, proof })
        }

        fn print(&self, base: &str) {
            println!("DPoP (RFC 9449): a token bound to the client key in {}:\n", self.key_file.display());
            println!("  DPOP_TOKEN={}\n", self.token);
            println!("  PROOF={}\n", self.proof);
            println!(
                "  curl -i {base}/auth/orders -H \"Authorization: DPoP $DPOP_TOKEN\" -H \"DPoP: $PROOF\"   # 200, X-Auth-Scheme: DPoP"
            );
            println!("  (the same proof again: 401 invalid_dpop_proof, replayed; a proof is good for one request)");
            println!(
                "  curl -i {base}/auth/orders -H \"Authorization: Bearer $DPOP_TOKEN\"   # 401: a bound token is no bearer token\n"
            );
            println!("A fresh proof for each request:\n");
            println!(
                "  PROOF=$(tollgate proof --key {} --method GET --url {base}/orders --token $DPOP_TOKEN)\n",
                self.key_file.display()
            );
        }
    }
}
