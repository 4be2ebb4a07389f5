//! The `htu` comparison of RFC 9449 §4.3 step 9: a small RFC 3986 normalizer.
//!
//! RFC 9449 compares `htu` with the request URL "ignoring any query and fragment parts"
//! and recommends the syntax- and scheme-based normalization of RFC 3986 §6.2.2–6.2.3.
//! [`normalize`] does exactly that and nothing more: lower-case scheme and host, default
//! port dropped, empty path as `/`, percent-escapes of unreserved characters decoded and
//! the hex of the others upper-cased, dot segments removed, query and fragment dropped.
//!
//! It is deliberately not a WHATWG URL parser (the `url` crate): that one strips tabs and
//! newlines and reads `\` as `/`, so a proof for one URL would match another. Anything
//! outside RFC 3986 syntax, userinfo (RFC 9110 §4.2.4), a relative reference, an empty
//! host, a port with leading zeros, or a scheme other than `http`/`https` yields `None`:
//! such an `htu` matches no request.

/// Normalizes an absolute `http`/`https` URL to `scheme://host[:port]/path`, or `None`
/// when it is not one tollgate will compare (see the module documentation).
pub fn normalize(htu: &str) -> Option<String> {
    // Whitespace, control characters, `\`, `"`, `<`, `>` and non-ASCII are not URI
    // characters (RFC 3986 §2); refusing them up front means no later step can skip them.
    if !htu.bytes().all(is_uri_char) {
        return None;
    }
    let before_fragment = htu.split('#').next().unwrap_or_default();
    let target = before_fragment.split('?').next().unwrap_or_default();
    // No `:` means a relative reference (including `//host/path`).
    let (scheme, rest) = target.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let rest = rest.strip_prefix("//")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // Userinfo is deprecated and a classic origin-confusion trick (RFC 9110 §4.2.4).
    if authority.contains('@') {
        return None;
    }
    let (host, port) = host_and_port(authority)?;
    let mut out = String::with_capacity(target.len() + 1);
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&host);
    if let Some(port) = port.filter(|p| *p != default_port) {
        out.push(':');
        out.push_str(port);
    }
    let path = normalize_escapes(path)?;
    let path = remove_dot_segments(&path);
    if path.is_empty() {
        out.push('/');
    } else {
        out.push_str(&path);
    }
    Some(out)
}

/// The characters RFC 3986 §2 allows anywhere in a URI (`%` checked later).
fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Splits `host[:port]`, lower-cases the host and checks both. An empty port (`host:`)
/// is the default port (RFC 3986 §6.2.3).
fn host_and_port(authority: &str) -> Option<(String, Option<&str>)> {
    let (host, port) = if let Some(literal) = authority.strip_prefix('[') {
        // IP-literal: an IPv6 address; IPvFuture and zone identifiers are not accepted.
        // Written in its RFC 5952 form, so that every spelling of one address (`[::0]`,
        // `[0:0::0]`, `[::]`) compares equal, as RFC 3986 normalizers read them.
        let (inside, after) = literal.split_once(']')?;
        let address: std::net::Ipv6Addr = inside.parse().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (format!("[{address}]"), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        // A DNS name or IPv4 address; percent-escapes and sub-delims in a host name no
        // gateway would send. A trailing dot is kept: `host.` is another name here.
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        {
            return None;
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(valid_port(p)?),
    };
    Some((host, port))
}

/// Decimal, 1–65535, no leading zeros (`:0443` would otherwise be a second spelling).
fn valid_port(port: &str) -> Option<&str> {
    let digits = port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) && !port.starts_with('0');
    match port.parse::<u16>() {
        Ok(n) if digits && n > 0 => Some(port),
        _ => None,
    }
}

/// RFC 3986 §6.2.2.1–6.2.2.2: decode escapes of unreserved characters, upper-case the hex
/// of the others. A malformed escape, or a character a path may not hold, yields `None`.
fn normalize_escapes(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let high = hex_value(*bytes.get(i + 1)?)?;
                let low = hex_value(*bytes.get(i + 2)?)?;
                let value = high << 4 | low;
                if is_unreserved(value) {
                    out.push(char::from(value));
                } else {
                    out.push('%');
                    out.push(char::from(HEX_UPPER[usize::from(high)]));
                    out.push(char::from(HEX_UPPER[usize::from(low)]));
                }
                i += 3;
            }
            // `[` and `]` are gen-delims that only an IP literal may hold.
            b'[' | b']' => return None,
            _ => {
                out.push(char::from(b));
                i += 1;
            }
        }
    }
    Some(out)
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §5.2.4, for a path that is empty or starts with `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut input = path;
    let mut output = String::with_capacity(path.len());
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest;
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest;
        } else if input.starts_with("/./") {
            input = &input[2..];
        } else if input == "/." {
            input = "/";
        } else if input.starts_with("/../") {
            input = &input[3..];
            pop_segment(&mut output);
        } else if input == "/.." {
            input = "/";
            pop_segment(&mut output);
        } else if input == "." || input == ".." {
            input = "";
        } else {
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push_str(&input[..end]);
            input = &input[end..];
        }
    }
    output
}

/// Drops the last segment of `output` and its preceding `/`.
fn pop_segment(output: &mut String) {
    let cut = output.rfind('/').unwrap_or(0);
    output.truncate(cut);
}

#[cfg(test)]
mod tests;
