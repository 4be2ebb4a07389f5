//! Path normalization (`tollgate::uri::normalize_path`), and differentially against
//! a second RFC 3986 implementation (fluent-uri).
//!
//! Asserted: no panic, and for an accepted path `p`:
//! - idempotence: `normalize_path(p) == Ok(p)`;
//! - `p` is absolute, visible ASCII without `\`, with no empty, `.` or `..` segment except
//!   a final empty one (a trailing `/`), and its escapes are upper-case and never of an
//!   unreserved character;
//! - where RFC 3986 §6.2.2 applies the same rules, it gives the same path: for an input
//!   with no `//` (tollgate merges them, as nginx does; RFC 3986 keeps them) that
//!   fluent-uri parses, both normalized paths are equal;
//! - tollgate refuses an input fluent-uri accepts only for an escape (`%2F`, `%5C`, `%00`
//!   or an encoded dot segment) or a dot segment with path parameters (`..;x`, which
//!   Tomcat reads as `..`): nothing else RFC 3986 allows in a path is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::uri::normalize_path;
use tollgate_fuzz::rfc3986_path;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    let ours = normalize_path(raw);
    if let Ok(path) = &ours {
        assert_eq!(normalize_path(path).as_ref(), Ok(path), "not idempotent for {raw:?}");
        assert!(path.starts_with('/') && path.bytes().all(|b| (0x21..=0x7E).contains(&b) && b != b'\\'));
        let segments: Vec<&str> = path[1..].split('/').collect();
        let (last, inner) = segments.split_last().expect("one segment at least");
        assert!(inner.iter().all(|s| !matches!(*s, "" | "." | "..")), "segments of {path:?}");
        assert!(!matches!(*last, "." | ".."), "last segment of {path:?}");
        check_escapes(path);
    }
    if !raw.starts_with('/') || raw.contains("//") {
        return;
    }
    let Some(theirs) = rfc3986_path(raw) else { return };
    match ours {
        Ok(path) => assert_eq!(path, theirs, "RFC 3986 reads {raw:?} as {theirs:?}"),
        Err(_) => {
            // Tomcat and Jetty read `..;x` as `..` with a path parameter.
            let dot_with_parameters = raw.split('/').any(|s| s.starts_with(".;") || s.starts_with("..;"));
            assert!(raw.contains('%') || dot_with_parameters, "{raw:?} refused, RFC 3986 reads {theirs:?}");
        }
    }
});

fn check_escapes(path: &str) {
    let bytes = path.as_bytes();
    for (i, _) in path.match_indices('%') {
        let hex = &bytes[i + 1..i + 3];
        assert!(hex.iter().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b)), "escape in {path:?}");
        let value = u8::from_str_radix(std::str::from_utf8(hex).expect("hex"), 16).expect("hex");
        let unreserved = value.is_ascii_alphanumeric() || b"-._~".contains(&value);
        assert!(!unreserved, "an unreserved character left escaped in {path:?}");
    }
}
