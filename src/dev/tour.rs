//! `tollgate dev`: the development issuer at a kept port and key when asked, the sidecar's
//! configuration pointed at it, and the tour printed for a newcomer: tokens, a DPoP proof
//! and the `curl` lines that show each answer. The command line only binds and serves.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::DevIssuer;
use crate::clock::{Clock as _, SystemClock};
use crate::config::{Config, ConfigError};
use crate::signing::{self, SignError, SigningKey};

/// The audience of the tour's tokens.
pub const AUDIENCE: &str = "https://api.tollgate.dev";

/// The downstream API of the tour's exchange step.
const CALENDAR: &str = "https://calendar.example.com";

/// Why the tour could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TourError {
    #[error("cannot start the development issuer: {0}")]
    Issuer(#[source] io::Error),
    #[error("cannot read {}: {source}", path.display())]
    ReadKey { path: PathBuf, source: io::Error },
    #[error("cannot create {}: {source}", path.display())]
    WriteKey { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    BadKey { path: PathBuf, source: SignError },
    #[error("cannot prepare the examples: {0}")]
    Sign(#[from] SignError),
    #[error("cannot prepare the examples: {0}")]
    ClientKey(#[source] io::Error),
    #[error("cannot print the tour: {0}")]
    Print(#[source] io::Error),
}

/// The issuer on 127.0.0.1 at `port` (0: any free one), signing with the key in
/// `key_file` (created when missing) or with a new key.
pub async fn start_issuer(port: u16, key_file: Option<&Path>) -> Result<DevIssuer, TourError> {
    let key = match key_file {
        Some(path) => kept_key(path)?,
        None => SigningKey::rsa("dev-1")?,
    };
    DevIssuer::start_at(SocketAddr::from(([127, 0, 0, 1], port)), key).await.map_err(TourError::Issuer)
}

/// The key in `path`, or a new one written there (mode 0600).
fn kept_key(path: &Path) -> Result<SigningKey, TourError> {
    match std::fs::read_to_string(path) {
        Ok(pem) => SigningKey::rsa_from_pem("dev-1", &pem)
            .map_err(|source| TourError::BadKey { path: path.to_path_buf(), source }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = SigningKey::rsa("dev-1")?;
            signing::write_key_file(path, &key.to_pem()?)
                .map_err(|source| TourError::WriteKey { path: path.to_path_buf(), source })?;
            Ok(key)
        }
        Err(source) => Err(TourError::ReadKey { path: path.to_path_buf(), source }),
    }
}

/// The sidecar's configuration for the tour: the Envoy dialect (curl calls `/auth/<path>`
/// directly, as Envoy's ext_authz does), a public, an admin, an exchange and an agent route.
pub fn config(listen: SocketAddr, issuer: &DevIssuer) -> Result<Config, ConfigError> {
    let text = format!(
        r#"
listen = "{listen}"
[issuer]
url = "{issuer}"
audience = "{AUDIENCE}"
[proxy]
gateway = "envoy"
[[routes]]
path_prefix = "/public"
public = true
[[routes]]
path_prefix = "/admin"
scopes = ["admin"]
[[routes]]
path_prefix = "/calendar"
exchange = {{ audience = "{CALENDAR}", scope = "calendar:read", header = "X-Auth-Downstream-Token" }}
[[routes]]
path_prefix = "/agent"
actors = ["mcp-agent"]
[client]
client_id = "{client_id}"
client_secret = "{client_secret}"
[shutdown]
drain_delay = 0     # no load balancer to tell: Ctrl-C stops at once
"#,
        issuer = issuer.issuer(),
        client_id = super::DEV_CLIENT_ID,
        client_secret = super::DEV_CLIENT_SECRET,
    );
    Config::load(&text, &Default::default())
}

/// Writes the tour to `out`: the tokens and the `curl` lines, for the sidecar at `listen`
/// started with [`config`]. `proof_lifetime` is `dpop.iat_offset`, in seconds.
pub fn print(
    out: &mut impl Write,
    issuer: &DevIssuer,
    listen: SocketAddr,
    proof_lifetime: i64,
) -> Result<(), TourError> {
    let now = SystemClock.now();
    let token = issuer.mint(AUDIENCE, "dev-user", "read:orders", None, now, 3600)?;
    let dpop = DpopExample::new(issuer, listen, now)?;
    let delegated = issuer.mint_delegated(AUDIENCE, "dev-user", "read:orders", "mcp-agent", now, 3600)?;
    let base = format!("http://{listen}");
    let binary = shell_word(&binary());
    let text = format!(
        r#"tollgate dev: development issuer at {issuer}
tollgate dev: (--issuer-port and --issuer-key keep its address and key across restarts)
tollgate dev: sidecar at {base} (gateway dialect: envoy, so /auth/<path> is the request checked)
tollgate dev: this binary is {binary}

A token for audience {AUDIENCE}, subject dev-user, scope read:orders, valid 1 hour:

  TOKEN={token}

Try:
  curl -i {base}/auth/orders -H "Authorization: Bearer $TOKEN"   # 200, X-Auth-Subject: dev-user
  curl -i {base}/auth/orders                                     # 401, bare challenge
  curl -i {base}/auth/orders -H "Authorization: Bearer nope"     # 401 invalid_token
  curl -i {base}/auth/admin -H "Authorization: Bearer $TOKEN"    # 403 insufficient_scope, scope="admin"
  curl -i {base}/auth/public/status                              # 200, public route
  curl -s {base}/metrics | grep tollgate_checks_total

{dpop}
Downstream tokens: /calendar trades the token at the dev issuer's token endpoint (RFC 8693)
for one for {CALENDAR}, acting for dev-user; the upstream receives it:

  curl -i {base}/auth/calendar/events -H "Authorization: Bearer $TOKEN"   # 200, X-Auth-Downstream-Token: eyJ…

Delegation: a token that mcp-agent holds for dev-user (act.sub = mcp-agent); /agent admits only
that actor:

  DELEGATED={delegated}

  curl -i {base}/auth/agent/tasks -H "Authorization: Bearer $DELEGATED"  # 200, X-Auth-Actor: mcp-agent
  curl -i {base}/auth/agent/tasks -H "Authorization: Bearer $TOKEN"      # 403, actor not allowed
"#,
        issuer = issuer.issuer(),
        dpop = dpop.text(&base, &binary, proof_lifetime),
    );
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(TourError::Print)
}

/// The path of this very binary, for lines that call it again (it may not be on PATH).
fn binary() -> String {
    std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "tollgate".into())
}

/// `text` as one shell word: quoted when it holds anything but plain path characters.
fn shell_word(text: &str) -> String {
    let plain = text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:=@,".contains(c));
    if plain && !text.is_empty() { text.into() } else { format!("'{}'", text.replace('\'', r"'\''")) }
}

/// A client key, a token bound to it, and one proof for GET /orders.
struct DpopExample {
    key_file: PathBuf,
    token: String,
    proof: String,
}

impl DpopExample {
    fn new(issuer: &DevIssuer, listen: SocketAddr, now: i64) -> Result<Self, TourError> {
        let key = SigningKey::p256("dev-client")?;
        let key_file = std::env::temp_dir().join(format!("tollgate-dev-client-{}.pem", std::process::id()));
        let _ = std::fs::remove_file(&key_file);
        signing::write_key_file(&key_file, &key.to_pem()?).map_err(TourError::ClientKey)?;
        let token = issuer.mint(AUDIENCE, "dev-user", "read:orders", Some(&key.jkt()), now, 3600)?;
        let proof = super::proof(&key, "GET", &format!("http://{listen}/orders"), &token, None, now)?;
        Ok(DpopExample { key_file, token, proof })
    }

    fn text(&self, base: &str, binary: &str, proof_lifetime: i64) -> String {
        let key_file = shell_word(&self.key_file.display().to_string());
        format!(
            r#"DPoP (RFC 9449): a token bound to the client key in {key_file}:

  DPOP_TOKEN={token}

A proof for GET {base}/orders, good for one request within {minutes} minutes (dpop.iat_offset):

  PROOF={proof}

  curl -i {base}/auth/orders -H "Authorization: DPoP $DPOP_TOKEN" -H "DPoP: $PROOF"   # 200, X-Auth-Scheme: DPoP
  (the same proof again: 401 invalid_dpop_proof, replayed; a proof is good for one request)
  curl -i {base}/auth/orders -H "Authorization: Bearer $DPOP_TOKEN"   # 401: a bound token is no bearer token

A fresh proof for each request (or once the one above is too old):

  PROOF=$({binary} proof --key {key_file} --method GET --url {base}/orders --token $DPOP_TOKEN)
"#,
            token = self.token,
            proof = self.proof,
            minutes = proof_lifetime / 60,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_with_shell_characters_is_quoted() {
        assert_eq!(shell_word("/usr/local/bin/tollgate"), "/usr/local/bin/tollgate");
        assert_eq!(shell_word("/tmp/my dir/tollgate"), "'/tmp/my dir/tollgate'");
        assert_eq!(shell_word("/tmp/it's"), r"'/tmp/it'\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[tokio::test]
    async fn the_tour_loads_and_every_curl_line_calls_the_sidecar() {
        let issuer = DevIssuer::start().await.unwrap();
        let listen: SocketAddr = "127.0.0.1:18080".parse().unwrap();
        let config = config(listen, &issuer).unwrap();
        assert_eq!(config.listen, listen);
        let mut out = Vec::new();
        print(&mut out, &issuer, listen, config.dpop.iat_offset).unwrap();
        let text = String::from_utf8(out).unwrap();
        let curls: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("curl ")).collect();
        assert_eq!(curls.len(), 11, "{text}");
        assert!(curls.iter().all(|l| l.contains("http://127.0.0.1:18080/")), "{curls:?}");
        assert!(text.contains("within 5 minutes (dpop.iat_offset)"), "{text}");
    }

    #[test]
    fn a_print_that_cannot_be_written_is_an_error_not_a_panic() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let issuer = runtime.block_on(DevIssuer::start()).unwrap();
        let listen: SocketAddr = "127.0.0.1:18080".parse().unwrap();
        assert!(matches!(print(&mut Closed, &issuer, listen, 300), Err(TourError::Print(_))));
    }
}
