//! The gateway dialects: rebuilds the original request (method, scheme, host, path) from
//! the headers of the one gateway named by `proxy.gateway`. The only reader of
//! `X-Original-*` and `X-Forwarded-*`.
//!
//! Those headers are believed only from peers in `proxy.trusted` (RFC 7239 §8.1), and only
//! in the configured dialect: gateways pass client headers through to the check, so a
//! client could otherwise send `X-Original-URL: /public` and have its `POST /admin` judged
//! as a request for `/public`. A trusted peer that omits its dialect's method or URI header
//! is a misconfigured gateway: the check fails (500) rather than judge the request as one
//! for `/auth`. So is a peer *outside* the list that sends them: a gateway missing from
//! `proxy.trusted` would otherwise have every check judged as a request for `/auth`.
//!
//! With nginx, an absolute-form request target whose host disagrees with `Host` is
//! refused ([`Reason::ConflictingHost`]), since nginx routes on the former.
//!
//! The host has two readings. Routes are decided on the host the gateway routed on
//! (nginx's `server_name`, Traefik's `Host()`, Envoy's virtual hosts): lower-cased, without
//! its port and without one trailing dot. The DPoP `htu` is compared with the authority the
//! client wrote, port included (RFC 9449 §4.3, RFC 3986 §6.2.3).
//!
//! Method overrides (`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override`, a
//! `_method` query parameter) are read here too, from the client's own headers, so that
//! [`crate::policy`] can hold the request to the routes of every method the upstream may
//! act on.
//!
//! Paths are normalized once here (RFC 3986 §6.2.2: escape case, unreserved escapes
//! decoded, §5.2.4 dot segments removed; `//` merged as nginx does) so that route matching
//! sees what the upstream serves. Escapes an upstream might read differently (`%2F`, `%5C`,
//! `%00`, encoded dot segments) are refused instead of guessed.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, Method};

use crate::config::{Gateway, ProxyConfig};
use crate::refusal::Reason;
use crate::uri::{Authority, normalize_path, parse_scheme};

/// The request as it reached `/auth`: the peer, the check's own method and the path
/// after `/auth`, and every header. Plain values, so every front door can build one.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub peer: IpAddr,
    pub method: Method,
    /// The path and query after `/auth` (Envoy appends the original request here).
    pub path: String,
    pub headers: HeaderMap,
}

/// The client's request as tollgate understands it, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRequest {
    /// As sent, case included; `Method` keeps the standard ones and short extensions
    /// without an allocation.
    method: Method,
    scheme: &'static str,
    /// The authority as the client wrote it: lower-cased, default port removed.
    authority: Option<Authority>,
    /// With no client-written authority, the one the gateway routed on (nginx's `$host`).
    routed: Option<Authority>,
    /// Normalized, without query or fragment.
    path: String,
    /// `method` upper-cased, when that differs.
    upper: Option<String>,
    /// Methods the request asks the upstream to act on instead of `method`, upper-cased:
    /// the method-override headers and `_method` query parameters.
    overrides: Vec<String>,
}

impl OriginalRequest {
    /// Builds one from parts, normalizing like the gateway readers do; for tests and tools.
    pub fn new(method: &str, scheme: &str, host: Option<&str>, uri: &str) -> Result<Self, Reason> {
        let scheme = parse_scheme(scheme)?;
        let authority = host.map(|h| Authority::parse(h, scheme)).transpose()?;
        let (path, query) = split_target(uri);
        let (method, path) = (parse_method(method)?, normalize_path(path)?);
        // CONNECT's target is an authority, not a path (RFC 9110 §9.3.6): there is no path
        // to judge, whatever the gateway put in the URI header (Caddy sends `/`).
        if method.as_str().eq_ignore_ascii_case("CONNECT") {
            return Err(Reason::AmbiguousPath);
        }
        let text = method.as_str();
        let upper = text.bytes().any(|b| b.is_ascii_lowercase()).then(|| text.to_ascii_uppercase());
        let mut request =
            OriginalRequest { method, upper, scheme, authority, routed: None, path, overrides: Vec::new() };
        for value in query_values(query, "_method") {
            request.add_override(&value)?;
        }
        Ok(request)
    }

    /// From a method and an absolute URL, as ingress-nginx describes a request.
    pub fn from_url(method: &str, url: &str) -> Result<Self, Reason> {
        from_url(method, url)
    }

    pub fn method(&self) -> &str {
        self.method.as_str()
    }

    pub fn scheme(&self) -> &str {
        self.scheme
    }

    /// The host routes are matched against: the one the gateway routed on.
    pub fn host(&self) -> Option<&str> {
        self.authority.as_ref().or(self.routed.as_ref()).map(Authority::routed_host)
    }

    /// `host[:port]` as the client wrote it (normalized): what the DPoP `htu` names.
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_ref().map(Authority::origin_form)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The method upper-cased, when that differs from it (`Delete`, `get`): some frameworks
    /// act on it so (Django, Flask), though RFC 9110 §9.1 makes methods case-sensitive.
    pub fn upper_method(&self) -> Option<&str> {
        self.upper.as_deref()
    }

    /// The method overrides the request carries (`X-HTTP-Method-Override`, `X-HTTP-Method`,
    /// `X-Method-Override`, `_method` in the query), upper-cased as frameworks read them.
    pub fn method_overrides(&self) -> &[String] {
        &self.overrides
    }

    /// Records an override; empty values are ignored, as frameworks ignore them.
    fn add_override(&mut self, value: &str) -> Result<(), Reason> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(());
        }
        let method = value.to_ascii_uppercase();
        if !is_token(&method) {
            return Err(Reason::BadMethodOverride);
        }
        if !self.overrides.contains(&method) {
            if self.overrides.len() == MAX_OVERRIDES {
                return Err(Reason::BadMethodOverride);
            }
            self.overrides.push(method);
        }
        Ok(())
    }

    /// `scheme://host[:port]`, when the host is known.
    pub fn origin(&self) -> Option<String> {
        self.authority().map(|authority| format!("{}://{authority}", self.scheme))
    }
}

const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_ORIGINAL_HOST: HeaderName = HeaderName::from_static("x-original-host");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// The headers with which frameworks let a request name the method to act on.
const METHOD_OVERRIDE_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// More distinct overrides than any client needs: refused rather than read.
const MAX_OVERRIDES: usize = 4;

/// Reconstructs the original request from the configured dialect.
pub fn original_request(proxy: &ProxyConfig, check: &CheckRequest) -> Result<OriginalRequest, Reason> {
    let trusted = proxy.trusted.iter().any(|net| net.contains(&check.peer));
    let h = &check.headers;
    if !trusted {
        if describes_a_request(proxy.gateway, h) {
            // A gateway that `proxy.trusted` misses: judging the check as a request for
            // `/auth` would skip every route rule.
            return Err(Reason::UntrustedGateway);
        }
        // Nobody vouches for forwarding headers: judge the check request itself.
        let mut request = own_view(check)?;
        add_header_overrides(&mut request, h)?;
        return Ok(request);
    }
    let mut request = match proxy.gateway {
        Gateway::Nginx => {
            let request = from_parts(
                required(h, &X_ORIGINAL_METHOD)?,
                required(h, &X_ORIGINAL_URI)?,
                one(h, &X_FORWARDED_PROTO)?,
                one(h, &X_FORWARDED_HOST)?,
            )?;
            agreeing_on_host(request, one(h, &X_ORIGINAL_HOST)?)?
        }
        Gateway::IngressNginx => from_url(required(h, &X_ORIGINAL_METHOD)?, required(h, &X_ORIGINAL_URL)?)?,
        Gateway::Traefik | Gateway::Caddy => from_parts(
            required(h, &X_FORWARDED_METHOD)?,
            required(h, &X_FORWARDED_URI)?,
            one(h, &X_FORWARDED_PROTO)?,
            one(h, &X_FORWARDED_HOST)?,
        )?,
        Gateway::Envoy => from_parts(
            check.method.as_str(),
            envoy_uri(&check.path),
            one(h, &X_FORWARDED_PROTO)?,
            one(h, &http::header::HOST)?,
        )?,
    };
    if proxy.forwarded_prefix
        && let Some(prefix) = one(h, &X_FORWARDED_PREFIX)?
    {
        request.path = prefixed(prefix, &request.path)?;
    }
    add_header_overrides(&mut request, h)?;
    Ok(request)
}

/// The method-override headers, every occurrence and every comma-separated value: the
/// client's own headers, which gateways pass to the check as they pass them upstream.
fn add_header_overrides(request: &mut OriginalRequest, headers: &HeaderMap) -> Result<(), Reason> {
    // One pass over the headers present (a name comparison each) rather than a lookup per
    // override header (each hashes its name): most requests carry none.
    for (name, value) in headers {
        if !METHOD_OVERRIDE_HEADERS.contains(name) {
            continue;
        }
        let text = value.to_str().map_err(|_| Reason::BadMethodOverride)?;
        for item in text.split(',') {
            request.add_override(item)?;
        }
    }
    Ok(())
}

/// The original request as a front door describes it field by field (Envoy's gRPC
/// `attributes.request.http`): method, scheme, `Host`, the request target with its query,
/// and the client's headers, for the method overrides. Under the same rules as the
/// dialects: the target must be an absolute path, the host is read both ways.
pub fn described(
    method: &str,
    scheme: &str,
    host: Option<&str>,
    target: &str,
    headers: &HeaderMap,
) -> Result<OriginalRequest, Reason> {
    let mut request = from_parts(method, target, Some(scheme), host)?;
    add_header_overrides(&mut request, headers)?;
    Ok(request)
}

/// Whether the check carries its dialect's method or URI header, as only a gateway's does.
/// Envoy describes the request with the check's own method and path: it has none.
fn describes_a_request(gateway: Gateway, headers: &HeaderMap) -> bool {
    let names: &[&HeaderName] = match gateway {
        Gateway::Nginx => &[&X_ORIGINAL_METHOD, &X_ORIGINAL_URI],
        Gateway::IngressNginx => &[&X_ORIGINAL_METHOD, &X_ORIGINAL_URL],
        Gateway::Traefik | Gateway::Caddy => &[&X_FORWARDED_METHOD, &X_FORWARDED_URI],
        Gateway::Envoy => &[],
    };
    names.iter().any(|name| headers.contains_key(*name))
}

/// The check request judged as itself: its method, the path after `/auth`, its `Host`.
fn own_view(check: &CheckRequest) -> Result<OriginalRequest, Reason> {
    from_parts(check.method.as_str(), envoy_uri(&check.path), None, one(&check.headers, &http::header::HOST)?)
}

fn envoy_uri(path: &str) -> &str {
    if path.is_empty() || path.starts_with('?') { "/" } else { path }
}

fn from_parts(method: &str, uri: &str, proto: Option<&str>, host: Option<&str>) -> Result<OriginalRequest, Reason> {
    if !uri.starts_with('/') {
        return Err(Reason::BadForwardedHeader);
    }
    OriginalRequest::new(method, proto.unwrap_or("http"), host, uri)
}

/// nginx routes on the request line's host when the target is in absolute form (RFC 9112
/// §3.2.2: `GET http://admin.example.com/x` with `Host: other.example.com` goes to
/// `admin.example.com`), while `X-Forwarded-Host: $http_host` carries the `Host` header,
/// which the DPoP `htu` needs for its port. The shipped config also sends
/// `X-Original-Host: $host`, the host nginx routed on: when the two disagree the request
/// is refused, so the route is never decided on a host nginx did not route on.
///
/// A request without `Host` (HTTP/1.0) leaves `$http_host` empty, and nginx sends no
/// `X-Forwarded-Host`; `$host` is then the request line's host (`GET
/// http://admin.example.com/x HTTP/1.0`) or the `server_name` that took the request, and
/// nginx hands it to the upstream as `Host`: the route is decided on it. The request keeps
/// no client-written authority, so a DPoP proof still cannot name its URL.
fn agreeing_on_host(mut request: OriginalRequest, routed: Option<&str>) -> Result<OriginalRequest, Reason> {
    let Some(routed) = routed else { return Ok(request) };
    let routed = Authority::parse(routed, request.scheme)?;
    match request.host() {
        Some(host) if routed.routed_host() != host => Err(Reason::ConflictingHost),
        Some(_) => Ok(request),
        None => {
            request.routed = Some(routed);
            Ok(request)
        }
    }
}

/// ingress-nginx sends the whole URL: `X-Original-URL: https://host/path?query`.
fn from_url(method: &str, url: &str) -> Result<OriginalRequest, Reason> {
    let (scheme, rest) = url.split_once("://").ok_or(Reason::BadForwardedHeader)?;
    let (authority, uri) = match rest.find(['/', '?', '#']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], &rest[i..]),
        Some(i) => (&rest[..i], "/"),
        None => (rest, "/"),
    };
    OriginalRequest::new(method, scheme, Some(authority), uri)
}

/// A header of the dialect that must be there when the peer is a trusted gateway. URIs may
/// hold commas, so only the method is checked for a list (by `parse_method`).
fn required<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<&'a str, Reason> {
    single(headers, name)?.ok_or(Reason::GatewayHeadersMissing)
}

/// At most one occurrence, visible ASCII: anything else cannot describe one request.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, Reason> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Reason::BadForwardedHeader);
    }
    value.to_str().map(Some).map_err(|_| Reason::BadForwardedHeader)
}

/// [`single`], and not a list (`X-Forwarded-Host: evil.example, api.example.com`): a proxy
/// chain appended to a client's value, whose leftmost entry the client chose.
fn one<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, Reason> {
    match single(headers, name)? {
        Some(text) if text.contains(',') => Err(Reason::BadForwardedHeader),
        other => Ok(other),
    }
}

/// A method is a token (RFC 9110 §9.1, §5.6.2).
fn is_token(method: &str) -> bool {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !method.is_empty() && method.bytes().all(tchar)
}

fn parse_method(method: &str) -> Result<Method, Reason> {
    if !is_token(method) {
        return Err(Reason::BadForwardedHeader);
    }
    // `Method` accepts exactly the tokens: the fallback is never taken.
    Method::from_bytes(method.as_bytes()).map_err(|_| Reason::BadForwardedHeader)
}

/// A request target's path and its query, if any; a fragment ends either. One pass: the
/// bytes are ASCII delimiters, so both ends are character boundaries.
fn split_target(uri: &str) -> (&str, Option<&str>) {
    let Some(i) = uri.bytes().position(|b| b == b'?' || b == b'#') else { return (uri, None) };
    let query = (uri.as_bytes()[i] == b'?').then(|| {
        let rest = &uri[i + 1..];
        rest.split_once('#').map_or(rest, |(query, _)| query)
    });
    (&uri[..i], query)
}

/// Every value of the query parameter `name`, percent- and `+`-decoded as form parsers do
/// (names too: `%5Fmethod` is `_method`); `&` and `;` both separate parameters.
fn query_values(query: Option<&str>, name: &str) -> Vec<String> {
    let Some(query) = query else { return Vec::new() };
    query
        .split(';')
        .flat_map(|part| url::form_urlencoded::parse(part.as_bytes()))
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .collect()
}

/// `X-Forwarded-Prefix` in front of the path; it must itself be a plain absolute path.
fn prefixed(prefix: &str, path: &str) -> Result<String, Reason> {
    let clean = prefix.trim_end_matches('/');
    if clean.is_empty() {
        return Ok(path.to_string());
    }
    if !prefix.starts_with('/') || prefix.starts_with("//") || normalize_path(clean).as_deref() != Ok(clean) {
        return Err(Reason::BadForwardedHeader);
    }
    Ok(if path == "/" { format!("{clean}/") } else { format!("{clean}{path}") })
}

#[cfg(test)]
mod tests;
