//! A bare tonic `Check` server: the baseline that `scripts/cpu.sh` compares tollgate's
//! gRPC door with.
//!
//! `envoy.service.auth.v3.Authorization/Check` answers `OK` with an `ok_response` that sets
//! the three headers tollgate sends upstream on an allow (`x-auth-subject`, `x-auth-scheme`,
//! `x-auth-claims`, the claims the same 271-character payload as `examples/bare.rs`), and
//! does nothing else: it does not look at the request, no token, no cache, no policy. The
//! transport is set up as `tollgate::grpc::serve` sets up its own (tonic's server,
//! `TCP_NODELAY`), without the health service.
//!
//! ```text
//! cargo run --release --example bare_grpc -- 18483     # listens on 127.0.0.1:18483
//! ```

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, HeaderAppendAction, HeaderValue,
    HeaderValueOption, HttpResponse, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use tonic::{Request, Response, Status};

/// base64url of a 203-byte payload shaped like the ones `tollgate dev` mints (as in `bare.rs`).
const CLAIMS: &str = "eyJhdWQiOiJodHRwczovL2FwaS5leGFtcGxlLmNvbSIsImNsaWVudF9pZCI6InRvbGxnYXRlLWRldiIsImV4cCI6MTc5NTYwMzIwMCwiaWF0IjoxNzk1NTk2MDAwLCJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjQwMDAwLyIsImp0aSI6ImRldi0xNzk1NTk2MDAwLXVzZXItMDAwMDQyIiwic2NvcGUiOiJyZWFkOm9yZGVycyIsInN1YiI6InVzZXItMDAwMDQyIn0";

struct Bare;

fn header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue { key: key.to_string(), value: value.to_string(), raw_value: Vec::new() }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}

#[tonic::async_trait]
impl Authorization for Bare {
    async fn check(&self, _request: Request<CheckRequest>) -> Result<Response<CheckResponse>, Status> {
        let ok = OkHttpResponse {
            headers: vec![
                header("x-auth-subject", "user-000042"),
                header("x-auth-scheme", "Bearer"),
                header("x-auth-claims", CLAIMS),
            ],
            ..Default::default()
        };
        Ok(Response::new(CheckResponse {
            status: Some(rpc::Status { code: tonic::Code::Ok as i32, ..Default::default() }),
            dynamic_metadata: None,
            http_response: Some(HttpResponse::OkResponse(ok)),
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        Some(Ok(port)) => port,
        None => 18483,
        Some(Err(_)) => {
            eprintln!("usage: bare_grpc [PORT]");
            std::process::exit(2);
        }
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("bare_grpc: listening on {}", listener.local_addr()?);
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .add_service(AuthorizationServer::new(Bare))
        .serve_with_incoming(incoming)
        .await?;
    Ok(())
}
