//! Every gateway dialect's reconstruction of the original request
//! (`tollgate::gateway::original_request`), from trusted and untrusted peers.
//!
//! Input: a first byte (bits 0-2: the gateway, modulo 5 in the order nginx,
//! ingress-nginx, traefik, caddy, envoy; bit 3: the peer is trusted; bit 4:
//! `proxy.forwarded_prefix`), a line with the check's own method, a line with the path
//! after `/auth`, then the check's headers, one `name: value` per line.
//!
//! Asserted: no panic, and for an accepted request:
//! - its path is normalized (`normalize_path` gives it back unchanged);
//! - its method and each override are method tokens, the overrides upper-case, distinct,
//!   at most 4; its scheme `http` or `https`;
//! - its routed host is lower-case, without port or trailing dot (`routed_host` gives it
//!   back), its origin is a fixed point of `parse_origin`;
//! - the URL a DPoP `htu` is compared with, `htu::normalize(origin + path)` as `decision`
//!   builds it, when there is one, is `origin + path` itself (an IPv6 literal aside, which
//!   it writes in RFC 5952 form): the gateway's normal form and the `htu` one agree;
//! - from an untrusted peer, the request is the check itself (its own method), and a
//!   check carrying its dialect's method or URI header is refused as `UntrustedGateway`;
//!   Envoy's method is always the check's own.
#![no_main]

use std::net::IpAddr;

use http::Method;
use libfuzzer_sys::fuzz_target;
use tollgate::config::{Gateway, ProxyConfig};
use tollgate::gateway::{self, CheckRequest};
use tollgate::refusal::Reason;
use tollgate_fuzz::{check_original_request, text_line};

const GATEWAYS: [Gateway; 5] =
    [Gateway::Nginx, Gateway::IngressNginx, Gateway::Traefik, Gateway::Caddy, Gateway::Envoy];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Some((method, rest)) = text_line(rest) else { return };
    let Some((path, rest)) = text_line(rest) else { return };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else { return };
    let gateway = GATEWAYS[usize::from(flags & 7) % GATEWAYS.len()];
    let trusted = flags & 8 != 0;
    let proxy = ProxyConfig {
        gateway,
        trusted: vec!["127.0.0.1/32".parse().expect("a CIDR")],
        forwarded_prefix: flags & 16 != 0,
        public_origins: Vec::new(),
    };
    let peer: IpAddr = if trusted { [127, 0, 0, 1].into() } else { [192, 0, 2, 1].into() };
    let check = CheckRequest { peer, method, path: path.to_string(), headers: tollgate_fuzz::headers(rest) };
    let result = gateway::original_request(&proxy, &check);
    let dialect: &[&str] = match gateway {
        Gateway::Nginx => &["x-original-method", "x-original-uri"],
        Gateway::IngressNginx => &["x-original-method", "x-original-url"],
        Gateway::Traefik | Gateway::Caddy => &["x-forwarded-method", "x-forwarded-uri"],
        Gateway::Envoy => &[],
    };
    if !trusted && dialect.iter().any(|name| check.headers.contains_key(*name)) {
        assert_eq!(result, Err(Reason::UntrustedGateway));
    }
    let Ok(request) = result else { return };
    if !trusted || gateway == Gateway::Envoy {
        assert_eq!(request.method(), check.method.as_str());
    }
    check_original_request(&request);
});
