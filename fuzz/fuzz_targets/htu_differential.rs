//! The DPoP `htu` comparison (`tollgate::dpop::htu::normalize`), differentially against a
//! second RFC 3986 implementation (fluent-uri; see `rfc3986_htu` in src/lib.rs).
//!
//! tollgate compares a proof's `htu` with the request URL by normalizing both and
//! comparing the strings. It may refuse more than RFC 3986 does (userinfo, schemes other
//! than http/https, hosts with escapes, IPvFuture: such an `htu` matches nothing), never
//! less. For every input `u` that tollgate normalizes to `n`, asserted:
//! 1. fluent-uri parses `u` without its query and fragment (tollgate accepts nothing
//!    outside RFC 3986 syntax in the part it compares; the query and fragment are
//!    ignored, RFC 9449 §4.3, and so is their syntax: `?100%` is let through);
//! 2. sound: `n` is RFC 3986-equivalent to `u` (`F(n) == F(u)`, `F` fluent-uri's normal
//!    form). So two URLs tollgate judges equal are equivalent URLs: a proof is never
//!    accepted for a URL the RFC says is another;
//! 3. complete: `n` is already in RFC 3986 normal form (`F(n) == n`). With 2 this gives
//!    `n == F(u)`, so two URLs fluent-uri judges equivalent, each accepted by tollgate,
//!    are never judged different: a proof for an equivalent spelling is never refused;
//! 4. idempotence: `normalize(n) == Some(n)`;
//! 5. the same, on the input respelled in ways RFC 3986 makes equivalent (scheme and host
//!    case, an explicit default port, an escaped unreserved character, lower-case hex, a
//!    `./` segment, a query and fragment): when tollgate accepts both, the two agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::dpop::htu::normalize;
use tollgate_fuzz::rfc3986_htu;

fuzz_target!(|data: &[u8]| {
    let Ok(url) = std::str::from_utf8(data) else { return };
    let Some(ours) = normalize(url) else { return };
    let theirs = rfc3986_htu(url);
    assert!(theirs.is_some(), "tollgate accepts {url:?}, which is not an RFC 3986 URI");
    assert_eq!(rfc3986_htu(&ours), theirs, "{url:?} and its normal form {ours:?} are not equivalent");
    assert_eq!(theirs.as_deref(), Some(ours.as_str()), "{url:?}: {ours:?} is not in RFC 3986 normal form");
    assert_eq!(normalize(&ours).as_deref(), Some(ours.as_str()), "not idempotent for {url:?}");
    for respelled in respellings(url) {
        if rfc3986_htu(&respelled) != theirs {
            continue; // not an equivalent spelling after all (e.g. the input has odd parts)
        }
        if let Some(again) = normalize(&respelled) {
            assert_eq!(again, ours, "{url:?} and {respelled:?} are equivalent");
        }
    }
});

/// Equivalent spellings of `url` (RFC 3986 §6.2.2–6.2.3, RFC 9449 §4.3 for the query).
fn respellings(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else { return Vec::new() };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let default_port = if scheme.eq_ignore_ascii_case("https") { "443" } else { "80" };
    let mut out = vec![
        format!("{}://{rest}", scheme.to_ascii_uppercase()),
        format!("{scheme}://{}{tail}", authority.to_ascii_uppercase()),
        format!("{url}?query#fragment"),
    ];
    if !authority.contains(':') || authority.ends_with(']') {
        out.push(format!("{scheme}://{authority}:{default_port}{tail}"));
    }
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    let (path, after) = tail.split_at(path_end);
    if path.starts_with('/') {
        out.push(format!("{scheme}://{authority}/.{path}{after}"));
        if let Some(i) = path.find(|c: char| c.is_ascii_alphanumeric() || "-._~".contains(c)) {
            let escaped = format!("{}%{:02X}{}", &path[..i], path.as_bytes()[i], &path[i + 1..]);
            out.push(format!("{scheme}://{authority}{escaped}{after}"));
        }
        out.push(format!("{scheme}://{authority}{}{after}", lower_hex(path)));
    }
    out
}

/// Escapes with lower-case hex digits (`%2F` as `%2f`).
fn lower_hex(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let escape: String = rest[i..].chars().take(3).collect();
        out.push_str(&escape.to_ascii_lowercase());
        rest = &rest[i + escape.len()..];
    }
    out.push_str(rest);
    out
}
