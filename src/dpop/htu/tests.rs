use super::*;

const TARGET: &str = "https://api.example.com/r";

fn same(a: &str, b: &str) -> bool {
    matches!((normalize(a), normalize(b)), (Some(x), Some(y)) if x == y)
}

#[test]
fn a_normalized_url_is_its_own_normal_form() {
    assert_eq!(normalize(TARGET).as_deref(), Some(TARGET));
    assert_eq!(normalize("http://127.0.0.1:8080/a/b").as_deref(), Some("http://127.0.0.1:8080/a/b"));
}

/// Security anchors row 89: each pair must compare equal.
#[test]
fn the_rfc_3986_equivalent_spellings_of_row_89_compare_equal() {
    let rows = [
        ("HTTPS://API.Example.COM/r", TARGET),
        ("https://api.example.com:443/r", TARGET),
        ("http://api.example.com:80/r", "http://api.example.com/r"),
        ("https://api.example.com:/r", TARGET),
        ("https://api.example.com", "https://api.example.com/"),
        ("https://api.example.com?x=1", "https://api.example.com/"),
        ("https://api.example.com/a%2fb", "https://api.example.com/a%2Fb"),
        ("https://api.example.com/%7Euser", "https://api.example.com/~user"),
        ("https://api.example.com/%7euser", "https://api.example.com/~user"),
        ("https://api.example.com/%41", "https://api.example.com/A"),
        ("https://api.example.com/a/../r", TARGET),
        ("https://api.example.com/./r", TARGET),
        ("https://api.example.com/a/b/../../r", TARGET),
        ("https://api.example.com/../r", TARGET),
        ("https://api.example.com/a/%2E%2E/r", TARGET),
        ("https://api.example.com/r?x=1", TARGET),
        ("https://api.example.com/r#frag", TARGET),
        ("https://api.example.com/r?x=1#frag", "https://api.example.com/r?y=2"),
        ("https://[::1]:443/r", "https://[::1]/r"),
        ("https://[FE80::1]/r", "https://[fe80::1]/r"),
    ];
    for (a, b) in rows {
        assert!(same(a, b), "{a} should equal {b}: {:?} vs {:?}", normalize(a), normalize(b));
    }
}

/// Security anchors row 90: each pair must differ (or the first is refused outright).
#[test]
fn the_distinct_urls_of_row_90_never_compare_equal() {
    let rows = [
        ("https://api.example.com/r/", TARGET),
        ("https://api.example.com/R", TARGET),
        ("https://api.example.com/a%2Fr", "https://api.example.com/a/r"),
        ("https://api.example.com./r", TARGET),
        ("https://api.example.com:8443/r", TARGET),
        ("http://api.example.com/r", TARGET),
        ("https://api.example.com:80/r", "http://api.example.com/r"),
        ("wss://api.example.com/r", TARGET),
        ("https://x@api.example.com/r", TARGET),
        ("https://api.example.com\t/r", TARGET),
        ("https://api.example.com/r\t", TARGET),
        ("https://api.example.com/r\r", TARGET),
        ("https://api.example.com/r\n", TARGET),
        ("https://api.example.com\\r", TARGET),
        ("https://api.example.com/\\r", TARGET),
        ("/r", TARGET),
        ("//api.example.com/r", TARGET),
        ("api.example.com/r", TARGET),
        ("https://api.example.com//r", TARGET),
    ];
    for (a, b) in rows {
        assert!(!same(a, b), "{a} must not equal {b}: {:?}", normalize(a));
    }
}

#[test]
fn userinfo_whitespace_controls_and_backslashes_are_refused_outright() {
    for htu in [
        "https://x@api.example.com/r",
        "https://x:y@api.example.com/r",
        "https://api.example.com/r x",
        "https://api.example.com/\u{0}r",
        "https://api.example.com/\u{7f}r",
        "https://api.example.com/r\u{a0}",
        "https://api.example.com/\\r",
        " https://api.example.com/r",
        "https://api.example.com/\"r\"",
        "https://api.example.com/<r>",
    ] {
        assert_eq!(normalize(htu), None, "{htu:?}");
    }
}

#[test]
fn relative_references_and_other_schemes_are_refused() {
    for htu in [
        "",
        "/r",
        "r",
        "//api.example.com/r",
        "https:/r",
        "https:r",
        "wss://api.example.com/r",
        "ftp://a/r",
        "javascript:alert(1)",
        "https://",
    ] {
        assert_eq!(normalize(htu), None, "{htu:?}");
    }
}

#[test]
fn empty_hosts_and_odd_ports_are_refused() {
    for htu in [
        "https:///r",
        "https://:443/r",
        "https://api.example.com:0443/r",
        "https://api.example.com:0/r",
        "https://api.example.com:65536/r",
        "https://api.example.com:123456/r",
        "https://api.example.com:-1/r",
        "https://api.example.com:+443/r",
        "https://api.example.com:443:443/r",
        "https://a%2Eexample.com/r",
        "https://[]/r",
        "https://[::1/r",
        "https://[::1]x/r",
        "https://[v1.x]/r",
        // Not IPv6 addresses (found by fuzz/ htu_differential).
        "https://[1]/r",
        "https://[:::]/r",
        "https://[1.2.3.4]/r",
        "https://[1:2:3:4:5:6:7:8:9]/r",
        "https://[fe80::1%25eth0]/r",
    ] {
        assert_eq!(normalize(htu), None, "{htu:?}");
    }
}

/// Found by the htu_differential fuzz target: `[::0]` and `[::]` are one address, which
/// an RFC 3986 normalizer writes one way; so does tollgate, in the RFC 5952 form.
#[test]
fn ipv6_literals_are_written_in_their_rfc_5952_form() {
    let rows = [
        ("http://[::0]:8080/a/./b", "http://[::]:8080/a/b"),
        ("https://[0:0:0:0:0:0:0:1]/r", "https://[::1]/r"),
        ("https://[2001:DB8:0:0:0:0:0:1]/r", "https://[2001:db8::1]/r"),
        ("https://[::FFFF:192.0.2.1]/r", "https://[::ffff:192.0.2.1]/r"),
    ];
    for (htu, normal) in rows {
        assert_eq!(normalize(htu).as_deref(), Some(normal), "{htu:?}");
        assert_eq!(normalize(normal).as_deref(), Some(normal), "{normal:?}");
    }
}

#[test]
fn malformed_percent_escapes_and_brackets_in_the_path_are_refused() {
    for htu in [
        "https://a.example/%",
        "https://a.example/%4",
        "https://a.example/%zz",
        "https://a.example/%4g",
        "https://a.example/[x]",
    ] {
        assert_eq!(normalize(htu), None, "{htu:?}");
    }
}

#[test]
fn a_non_default_port_is_kept_and_the_host_lower_cased() {
    assert_eq!(normalize("HTTP://Api.Example.com:8080").as_deref(), Some("http://api.example.com:8080/"));
    assert_eq!(normalize("https://api.example.com:80/r").as_deref(), Some("https://api.example.com:80/r"));
}

#[test]
fn reserved_escapes_stay_encoded_with_upper_case_hex() {
    assert_eq!(normalize("https://a.example/a%2fb%3a%c3%a9").as_deref(), Some("https://a.example/a%2Fb%3A%C3%A9"));
}

#[test]
fn dot_segments_follow_rfc_3986_section_5_2_4() {
    // The RFC 3986 §5.2.4 worked examples, as paths.
    assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
    assert_eq!(remove_dot_segments("mid/content=5/../6"), "mid/6");
    assert_eq!(remove_dot_segments("/.."), "/");
    assert_eq!(remove_dot_segments("/a/.."), "/");
    assert_eq!(remove_dot_segments("/a/."), "/a/");
    assert_eq!(remove_dot_segments("/a/..b/.c"), "/a/..b/.c");
}

#[test]
fn normalizing_twice_changes_nothing() {
    for htu in ["HTTPS://A.example:443/x/%7e/../%2f?q", "http://[::1]:8080/a/./b", "https://a.example"] {
        let once = normalize(htu);
        assert!(once.is_some(), "{htu}");
        assert_eq!(once.as_deref().and_then(normalize), once, "{htu}");
    }
}

/// A small deterministic generator (xorshift64) for the no-panic sweep below.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn arbitrary_url_like_strings_never_panic_and_normal_forms_are_stable() {
    const PIECES: [&str; 24] = [
        "https://", "http://", "HTTP://", "a", "B", "/", ".", "..", "%", "%2e", "%7E", "%2F", ":", ":443", "@", "[",
        "]", "::1", "?", "#", "\\", "\t", "é", "0",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let len = next(&mut state) % 12;
        let input: String = (0..len).map(|_| PIECES[(next(&mut state) % PIECES.len() as u64) as usize]).collect();
        if let Some(normal) = normalize(&input) {
            assert_eq!(normalize(&normal).as_deref(), Some(normal.as_str()), "{input:?}");
            assert!(normal.starts_with("http://") || normal.starts_with("https://"), "{input:?}");
        }
    }
}
