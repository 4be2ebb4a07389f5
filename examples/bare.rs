//! A bare axum server: the baseline that `scripts/load.sh` compares tollgate's `/auth` with.
//!
//! `/auth` and `/auth/{*path}` answer 200 with the three headers tollgate sends on an allow
//! (`x-auth-subject`, `x-auth-scheme`, `x-auth-claims`, the last a realistic 271-character
//! base64url payload) and do nothing else: no token, no cache, no policy.
//!
//! ```text
//! cargo run --release --example bare -- 18481     # listens on 127.0.0.1:18481
//! ```

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::HeaderName;
use axum::response::IntoResponse;
use axum::routing::any;

const X_AUTH_SUBJECT: HeaderName = HeaderName::from_static("x-auth-subject");
const X_AUTH_SCHEME: HeaderName = HeaderName::from_static("x-auth-scheme");
const X_AUTH_CLAIMS: HeaderName = HeaderName::from_static("x-auth-claims");

/// base64url of a 203-byte payload shaped like the ones `tollgate dev` mints.
const CLAIMS: &str = "eyJhdWQiOiJodHRwczovL2FwaS5leGFtcGxlLmNvbSIsImNsaWVudF9pZCI6InRvbGxnYXRlLWRldiIsImV4cCI6MTc5NTYwMzIwMCwiaWF0IjoxNzk1NTk2MDAwLCJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjQwMDAwLyIsImp0aSI6ImRldi0xNzk1NTk2MDAwLXVzZXItMDAwMDQyIiwic2NvcGUiOiJyZWFkOm9yZGVycyIsInN1YiI6InVzZXItMDAwMDQyIn0";

async fn auth() -> impl IntoResponse {
    [
        (X_AUTH_SUBJECT, HeaderValue::from_static("user-000042")),
        (X_AUTH_SCHEME, HeaderValue::from_static("Bearer")),
        (X_AUTH_CLAIMS, HeaderValue::from_static(CLAIMS)),
    ]
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        Some(Ok(port)) => port,
        None => 18481,
        Some(Err(_)) => {
            eprintln!("usage: bare [PORT]");
            std::process::exit(2);
        }
    };
    let app = Router::new().route("/auth", any(auth)).route("/auth/{*path}", any(auth));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("bare: listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
