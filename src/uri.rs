//! The pieces of a URI that the config and the gateway dialects read alike: a scheme, an
//! authority (RFC 3986 §3.2.2 host, §3.2.3 port; §6.2.3 default ports dropped), an origin,
//! and the normalized path (§6.2.2 escape case and unreserved escapes, §5.2.4 dot
//! segments). Config validates `proxy.public_origins` and route paths with the same
//! functions that read requests, so a setting can never be written in a form no request
//! takes.

use crate::refusal::Reason;

/// `http` or `https`, in any case.
pub fn parse_scheme(scheme: &str) -> Result<&'static str, Reason> {
    if scheme.eq_ignore_ascii_case("https") {
        Ok("https")
    } else if scheme.eq_ignore_ascii_case("http") {
        Ok("http")
    } else {
        Err(Reason::BadForwardedHeader)
    }
}

/// A `host[:port]` from a request, validated, in its two readings. One string: the host
/// is its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// Lower-cased, as written: a name (its trailing dot kept), IPv4, or `[IPv6]`; then
    /// `:port` unless the port is the scheme's default (RFC 3986 §6.2.3).
    text: String,
    /// Where the host ends in `text`.
    host_len: usize,
}

impl Authority {
    pub fn parse(authority: &str, scheme: &str) -> Result<Authority, Reason> {
        let mut text = authority.to_ascii_lowercase();
        let (host, port) = split_port(&text).ok_or(Reason::BadForwardedHeader)?;
        if !valid_host(host) {
            return Err(Reason::BadForwardedHeader);
        }
        let host_len = host.len();
        let default = if scheme == "https" { 443 } else { 80 };
        // A port is written without leading zeros (`split_port`): as written is normalized.
        if port.is_none_or(|p| p == default) {
            text.truncate(host_len);
        }
        Ok(Authority { text, host_len })
    }

    /// `host[:port]`, the port only when not the default: the origin a DPoP `htu` names.
    pub fn origin_form(&self) -> &str {
        &self.text
    }

    /// The host as gateways route on it: no port, one trailing dot removed.
    pub fn routed_host(&self) -> &str {
        let host = &self.text[..self.host_len];
        host.strip_suffix('.').unwrap_or(host)
    }
}

/// `host` (no port, lower case) as gateways route on it, without one trailing dot; `None`
/// when it is not a valid host. For route patterns, which must match what requests give.
pub fn routed_host(host: &str) -> Option<&str> {
    valid_host(host).then(|| host.strip_suffix('.').unwrap_or(host))
}

/// A bracketed IPv6 literal, or a name or IPv4 address of non-empty labels (one trailing
/// dot allowed: the absolute form of a DNS name, which gateways route like the name).
fn valid_host(host: &str) -> bool {
    if let Some(literal) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return literal.parse::<std::net::Ipv6Addr>().is_ok();
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    // One pass, counting the current label's length: a dot must end a non-empty label.
    let mut label = 0;
    for b in name.bytes() {
        match b {
            b'.' if label == 0 => return false,
            b'.' => label = 0,
            b'-' | b'_' => label += 1,
            _ if b.is_ascii_alphanumeric() => label += 1,
            _ => return false,
        }
    }
    label > 0
}

/// Splits `host:port`; a port must be 1–65535 written without leading zeros.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let colon = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => i,
        _ => return Some((authority, None)),
    };
    let (host, port) = (&authority[..colon], &authority[colon + 1..]);
    if port.is_empty() || port.starts_with('0') || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    port.parse::<u16>().ok().map(|p| (host, Some(p)))
}

/// `scheme://host[:port]` as written in `proxy.public_origins`, normalized.
pub fn parse_origin(origin: &str) -> Option<String> {
    let (scheme, authority) = origin.split_once("://")?;
    let scheme = parse_scheme(scheme).ok()?;
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    Some(format!("{scheme}://{}", Authority::parse(authority, scheme).ok()?.origin_form()))
}

/// Normalizes an absolute path (no query): RFC 3986 §6.2.2 escape handling and §5.2.4
/// dot-segment removal, repeated slashes merged. Ambiguous escapes are refused, and so are
/// `?` and `#`, which end a path (in a request only `X-Forwarded-Prefix` can bring one,
/// and the DPoP `htu` would be cut there).
pub fn normalize_path(raw: &str) -> Result<String, Reason> {
    if is_normal(raw) {
        return Ok(raw.to_string());
    }
    normalize_segments(raw)
}

/// Whether `raw` is normalized already, as most request paths are: plain characters, no
/// escape, no `//`, no dot segment (also none before a `;`). Such a path needs no vector
/// of segments.
fn is_normal(raw: &str) -> bool {
    let plain = |b: &u8| *b > 0x20 && *b < 0x7F && !matches!(b, b'%' | b'\\' | b'?' | b'#');
    let Some(rest) = raw.strip_prefix('/') else { return false };
    let mut segments = rest.as_bytes().split(|b| *b == b'/').peekable();
    while let Some(segment) = segments.next() {
        // An empty segment before another is a `//`; only the last may be empty.
        let doubled = segment.is_empty() && segments.peek().is_some();
        let name = segment.split(|b| *b == b';').next().unwrap_or_default();
        if doubled || matches!(name, b"." | b"..") || !segment.iter().all(plain) {
            return false;
        }
    }
    true
}

/// [`normalize_path`] segment by segment.
fn normalize_segments(raw: &str) -> Result<String, Reason> {
    if !raw.starts_with('/') {
        return Err(Reason::AmbiguousPath);
    }
    let mut segments: Vec<String> = Vec::new();
    let mut trailing_slash = false;
    for part in raw[1..].split('/') {
        let (segment, had_escape) = normalize_segment(part)?;
        if had_escape && (segment == "." || segment == "..") {
            return Err(Reason::AmbiguousPath);
        }
        // `..;x` is `..` to Tomcat, Jetty and Spring (path parameters stripped first) and a
        // plain segment to the gateways and to tollgate: `/public/..;/admin` would be judged
        // as a public path and served as /admin.
        if segment.contains(';') && matches!(segment.split(';').next(), Some("." | "..")) {
            return Err(Reason::AmbiguousPath);
        }
        trailing_slash = matches!(segment.as_str(), "" | "." | "..");
        match segment.as_str() {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(raw.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// One path segment: unreserved escapes decoded, other escapes upper-cased; returns whether
/// any escape was present.
fn normalize_segment(part: &str) -> Result<(String, bool), Reason> {
    let bytes = part.as_bytes();
    let mut out = String::with_capacity(part.len());
    let mut had_escape = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(Reason::AmbiguousPath)?;
            let value = std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(Reason::AmbiguousPath)?;
            had_escape = true;
            match value {
                b'/' | b'\\' | 0 => return Err(Reason::AmbiguousPath),
                v if is_unreserved(v) => out.push(v as char),
                v => out.push_str(&format!("%{v:02X}")),
            }
            i += 3;
        } else if b > 0x20 && b < 0x7F && !matches!(b, b'\\' | b'?' | b'#') {
            out.push(b as char);
            i += 1;
        } else {
            return Err(Reason::AmbiguousPath);
        }
    }
    Ok((out, had_escape))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path of up to six characters from an alphabet of the characters that matter
    /// (separators, dots, escapes, case): the shortcut for normalized paths gives what the
    /// segment-by-segment normalization gives.
    #[test]
    fn the_shortcut_agrees_with_the_full_normalization() {
        let alphabet = ['/', '.', ';', '%', '2', 'e', 'A', 'a'];
        let mut paths = vec![String::from("/")];
        let mut shortcut = 0;
        for _ in 0..6 {
            let next: Vec<String> =
                paths.iter().flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}"))).collect();
            for path in &next {
                if is_normal(path) {
                    shortcut += 1;
                    assert_eq!(normalize_segments(path).as_deref(), Ok(path.as_str()), "{path}");
                }
            }
            paths = next;
        }
        assert!(shortcut > 10_000, "the shortcut took only {shortcut} paths");
    }

    #[test]
    fn a_host_is_bracketed_ipv6_or_non_empty_labels() {
        for host in ["a", "api.example.com", "api.example.com.", "a-b_c.d", "127.0.0.1", "[::1]", "[2001:db8::1]"] {
            assert!(valid_host(host), "{host}");
        }
        for host in ["", ".", "..", ".a", "a..b", "a..", "a b", "a/b", "a:b", "é.com", "[::1", "[zz]", "a.b%2e"] {
            assert!(!valid_host(host), "{host}");
        }
    }
}
