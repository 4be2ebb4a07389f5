//! The second front door: Envoy's external authorization over gRPC
//! (`envoy.service.auth.v3.Authorization/Check`), as Istio's `envoyExtAuthzGrpc`, Envoy
//! Gateway, Contour and Gloo call it, with the gRPC health service beside it.
//!
//! Translation only. A `CheckRequest` carries the original request as structured fields
//! (`attributes.request.http`: method, scheme, host, path with query, and `headers`, or
//! `header_map` with Envoy's `encode_raw_headers`), which [`gateway::described`] turns into
//! the same [`OriginalRequest`] the HTTP dialects rebuild; [`Checker::judge`] makes the one
//! decision `/auth` makes; the answer goes back as `ok_response` or `denied_response`
//! with the same status, headers and body. Only peers in `proxy.trusted` may ask: others
//! get `PERMISSION_DENIED` and no decision.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction,
    HeaderValue as EnvoyHeader, HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{Struct, Value, value::Kind};
use envoy_types::pb::google::rpc;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tonic::{Code, Request, Response, Status};

use crate::allow::Allow;
use crate::decision::{Checker, Door};
use crate::gateway::{self, OriginalRequest};
use crate::refusal::{Answer, DPOP_NONCE, Reason, Refusal};
use crate::reload::Live;

/// At most this many request headers, and this many bytes of names, values and path:
/// more than Envoy forwards by default (60 KiB of headers), refused before any work.
pub const MAX_HEADERS: usize = 256;
pub const MAX_REQUEST_BYTES: usize = 96 * 1024;

/// The `Authorization` service over the live [`Checker`] (or one fixed `Arc<Checker>`).
#[derive(Clone)]
pub struct AuthorizationService {
    live: Live,
}

impl AuthorizationService {
    pub fn new(live: impl Into<Live>) -> Self {
        AuthorizationService { live: live.into() }
    }

    /// The tonic service, with decoding bounded to what a `CheckRequest` may hold.
    pub fn server(self) -> AuthorizationServer<Self> {
        AuthorizationServer::new(self).max_decoding_message_size(MAX_REQUEST_BYTES * 2)
    }

    /// Answers one `CheckRequest` from `peer`: the whole door, without tonic's wrapping.
    pub async fn answer(&self, peer: Option<SocketAddr>, request: CheckRequest) -> Result<CheckResponse, Status> {
        // One checker from start to end: a reload never mixes two configs in one check.
        let checker = self.live.current();
        let peer = peer.map(|p| p.ip().to_canonical());
        let trusted = peer.is_some_and(|ip| checker.config().proxy.trusted.iter().any(|net| net.contains(&ip)));
        let Some(peer) = peer.filter(|_| trusted) else {
            tracing::error!(peer = ?peer, "a gRPC Check from a peer outside proxy.trusted: refused without a decision");
            return Err(Status::permission_denied("peer not in proxy.trusted"));
        };
        let http = request
            .attributes
            .and_then(|a| a.request)
            .and_then(|r| r.http)
            .ok_or_else(|| Status::invalid_argument("CheckRequest without attributes.request.http"))?;
        let (original, headers) = match translate(&http) {
            Ok(parts) => (Ok(parts.0), parts.1),
            Err(reason) => (Err(reason), HeaderMap::new()),
        };
        let decision = checker.judge(Door::Grpc, peer, original, &headers).await;
        Ok(respond(&checker, decision, &headers))
    }
}

fn respond(checker: &Checker, decision: Result<Allow, Refusal>, request_headers: &HeaderMap) -> CheckResponse {
    match decision {
        Ok(allow) => {
            let issuer = match &allow {
                Allow::Token { token, .. } => checker.issuers()[token.issuer_index()].config().issuer.as_str(),
                Allow::Anonymous => "",
            };
            let metadata = metadata(&allow, issuer);
            ok_response(checker.allow_answer(allow), request_headers, metadata)
        }
        Err(refusal) => denied_response(checker.refusal_answer(&refusal)),
    }
}

#[tonic::async_trait]
impl Authorization for AuthorizationService {
    async fn check(&self, request: Request<CheckRequest>) -> Result<Response<CheckResponse>, Status> {
        let peer = request.remote_addr();
        self.answer(peer, request.into_inner()).await.map(Response::new)
    }
}

/// The original request and its headers from Envoy's `HttpRequest`, within bounds.
/// Public only for the fuzz target over this mapping (`fuzz/`); not part of the API.
#[doc(hidden)]
pub fn translate(
    http: &envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest,
) -> Result<(OriginalRequest, HeaderMap), Reason> {
    let headers = match &http.header_map {
        Some(map) if !map.headers.is_empty() => raw_headers(&map.headers)?,
        _ => merged_headers(&http.headers)?,
    };
    let host = (!http.host.is_empty()).then_some(http.host.as_str());
    let scheme = if http.scheme.is_empty() { "http" } else { http.scheme.as_str() };
    if http.path.len() > MAX_REQUEST_BYTES {
        return Err(Reason::OversizedRequest);
    }
    let original = gateway::described(&http.method, scheme, host, &http.path, &headers)?;
    Ok((original, headers))
}

/// `headers`: one value per lower-case name, repeated headers already joined with `,`.
/// Pseudo-headers (`:authority`, `:path`) are Envoy's own and already in the fields.
fn merged_headers(headers: &HashMap<String, String>) -> Result<HeaderMap, Reason> {
    bounded(headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())))
}

/// `header_map` (`encode_raw_headers`): every header as sent, repeats kept, bytes raw.
fn raw_headers(headers: &[EnvoyHeader]) -> Result<HeaderMap, Reason> {
    fn value(h: &EnvoyHeader) -> &[u8] {
        if h.raw_value.is_empty() { h.value.as_bytes() } else { &h.raw_value }
    }
    bounded(headers.iter().map(|h| (h.key.as_str(), value(h))))
}

fn bounded<'a>(pairs: impl Iterator<Item = (&'a str, &'a [u8])>) -> Result<HeaderMap, Reason> {
    let mut map = HeaderMap::new();
    let mut bytes = 0;
    for (name, value) in pairs {
        bytes += name.len() + value.len();
        if map.len() >= MAX_HEADERS || bytes > MAX_REQUEST_BYTES {
            return Err(Reason::OversizedRequest);
        }
        if name.starts_with(':') {
            continue;
        }
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Reason::BadForwardedHeader)?;
        let value = HeaderValue::from_bytes(value).map_err(|_| Reason::BadForwardedHeader)?;
        map.append(name, value);
    }
    Ok(map)
}

/// Allow: the upstream headers set over the client's (an empty one removes the client's),
/// every other client-sent `x-auth-*` header removed, `DPoP-Nonce` for the client.
fn ok_response(answer: Answer, request_headers: &HeaderMap, metadata: Struct) -> CheckResponse {
    let mut ok = OkHttpResponse::default();
    for (name, value) in &answer.headers {
        if name == DPOP_NONCE {
            ok.response_headers_to_add.push(option(name, value, HeaderAppendAction::OverwriteIfExistsOrAdd));
        } else if value.is_empty() {
            ok.headers_to_remove.push(name.as_str().to_string());
        } else {
            ok.headers.push(option(name, value, HeaderAppendAction::OverwriteIfExistsOrAdd));
        }
    }
    for name in request_headers.keys() {
        let set = ok.headers.iter().any(|h| h.header.as_ref().is_some_and(|h| h.key == name.as_str()));
        if is_auth_alias(name.as_str()) && !set && !ok.headers_to_remove.iter().any(|r| r == name.as_str()) {
            ok.headers_to_remove.push(name.as_str().to_string());
        }
    }
    CheckResponse {
        status: Some(rpc::Status { code: Code::Ok as i32, ..Default::default() }),
        dynamic_metadata: Some(metadata),
        http_response: Some(HttpResponse::OkResponse(ok)),
    }
}

/// A header name a backend may read as `X-Auth-*`: CGI, WSGI and PHP fold every
/// character but letters and digits to `_`.
fn is_auth_alias(name: &str) -> bool {
    // Character by character, without building the folded prefix: a name shorter than
    // seven characters never matches.
    let folded = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' });
    let mut prefix = "x_auth_".chars();
    folded.zip(prefix.by_ref()).all(|(c, p)| c.eq_ignore_ascii_case(&p)) && prefix.next().is_none()
}

/// Refusal: the gRPC code for the HTTP status, and the HTTP answer `/auth` gives.
fn denied_response(answer: Answer) -> CheckResponse {
    let code = grpc_code(answer.status);
    let headers = answer
        .headers
        .iter()
        .map(|(name, value)| option(name, value, HeaderAppendAction::AppendIfExistsOrAdd))
        .collect();
    let denied = DeniedHttpResponse {
        status: Some(HttpStatus { code: i32::from(answer.status.as_u16()) }),
        headers,
        body: answer.body,
    };
    CheckResponse {
        status: Some(rpc::Status { code: code as i32, message: code.description().to_string(), details: Vec::new() }),
        dynamic_metadata: None,
        http_response: Some(HttpResponse::DeniedResponse(denied)),
    }
}

/// The gRPC status Envoy maps back to the client's HTTP status.
pub fn grpc_code(status: StatusCode) -> Code {
    match status {
        StatusCode::BAD_REQUEST => Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        _ => Code::Internal,
    }
}

fn option(name: &HeaderName, value: &HeaderValue, action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(EnvoyHeader {
            key: name.as_str().to_string(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            raw_value: Vec::new(),
        }),
        append_action: action as i32,
        ..Default::default()
    }
}

/// `dynamic_metadata` for Envoy's RBAC filter and access logs: `sub`, `scope`, `scheme`
/// and the issuer; empty strings on a public route.
fn metadata(allow: &Allow, issuer: &str) -> Struct {
    let (sub, scope, scheme) = match allow {
        Allow::Anonymous => ("", "", ""),
        Allow::Token { scheme, token, .. } => (token.subject(), token.scope(), scheme.as_str()),
    };
    let text = |s: &str| Value { kind: Some(Kind::StringValue(s.to_string())) };
    let issuer = if matches!(allow, Allow::Anonymous) { "" } else { issuer };
    let fields = [("sub", sub), ("scope", scope), ("scheme", scheme), ("issuer", issuer)];
    Struct { fields: fields.into_iter().map(|(k, v)| (k.to_string(), text(v))).collect() }
}

/// Serves `Check` and the gRPC health service on `listener` until `shutdown` resolves,
/// then waits for open connections (with no time limit: [`serve_with_shutdown`] bounds it).
/// Health is SERVING once the issuer keys are loaded, NOT_SERVING while they are not.
pub async fn serve(
    live: impl Into<Live>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    serve_until(live.into(), listener, shutdown, None).await
}

/// [`serve`] through the phases of `shutdown`, as the HTTP listeners follow them: health
/// turns NOT_SERVING as soon as it drains (Envoy's health checks stop sending here) while
/// `Check` is answered as before; once it closes the listener closes and tonic sends
/// GOAWAY on open connections, which finish their calls; connections still open its drain
/// timeout later are cut (their number is not known here: tonic keeps its connections).
pub async fn serve_with_shutdown(
    live: impl Into<Live>,
    listener: tokio::net::TcpListener,
    shutdown: crate::server::Shutdown,
) -> Result<(), tonic::transport::Error> {
    let closing = shutdown.closing();
    let cut_off = shutdown.cut_off();
    let served = serve_until(live.into(), listener, closing, Some(shutdown));
    tokio::select! {
        served = served => served,
        () = cut_off => {
            tracing::warn!("drain_timeout passed: gRPC connections still open were cut");
            Ok(())
        }
    }
}

async fn serve_until(
    live: Live,
    listener: tokio::net::TcpListener,
    closing: impl std::future::Future<Output = ()> + Send + 'static,
    shutdown: Option<crate::server::Shutdown>,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let watcher = tokio::spawn(report_health(live.clone(), health, shutdown));
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let served = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(AuthorizationService::new(live).server())
        .serve_with_incoming_shutdown(incoming, closing)
        .await;
    watcher.abort();
    served
}

/// Keeps the health status of the service (and of the server, `""`) in step with the keys,
/// and NOT_SERVING for good once `shutdown` drains.
async fn report_health(
    live: Live,
    health: tonic_health::server::HealthReporter,
    shutdown: Option<crate::server::Shutdown>,
) {
    let mut serving = None;
    loop {
        let draining = shutdown.as_ref().is_some_and(crate::server::Shutdown::is_draining);
        let now = !draining && live.current().ready().is_ok();
        if serving != Some(now) {
            let status =
                if now { tonic_health::ServingStatus::Serving } else { tonic_health::ServingStatus::NotServing };
            health.set_service_status("", status).await;
            health.set_service_status(SERVICE_NAME, status).await;
            serving = Some(now);
        }
        if draining {
            return;
        }
        let pause = tokio::time::sleep(Duration::from_millis(250));
        match &shutdown {
            Some(shutdown) => {
                tokio::select! {
                    () = pause => {}
                    () = shutdown.draining() => {}
                }
            }
            None => pause.await,
        }
    }
}

/// The fully qualified name health checks ask about.
pub const SERVICE_NAME: &str = "envoy.service.auth.v3.Authorization";

#[cfg(test)]
mod tests;
