use super::*;
use crate::uri::parse_origin;
use http::HeaderValue;

fn proxy(gateway: Gateway) -> ProxyConfig {
    ProxyConfig {
        gateway,
        trusted: vec!["127.0.0.1/32".parse().unwrap()],
        forwarded_prefix: false,
        public_origins: vec![],
    }
}

fn check(peer: &str, method: &str, path: &str, pairs: &[(&str, &str)]) -> CheckRequest {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    CheckRequest { peer: peer.parse().unwrap(), method: method.parse().unwrap(), path: path.into(), headers }
}

fn original(gateway: Gateway, pairs: &[(&str, &str)]) -> Result<OriginalRequest, Reason> {
    original_request(&proxy(gateway), &check("127.0.0.1", "GET", "", pairs))
}

/// Headers of every dialect claiming the request was `GET /public` on evil.example.
const OTHER_DIALECTS: &[(&str, &str)] = &[
    ("x-original-method", "GET"),
    ("x-original-uri", "/public"),
    ("x-original-url", "https://evil.example/public"),
    ("x-forwarded-method", "GET"),
    ("x-forwarded-uri", "/public"),
];

fn with_spoofs(own: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let own_names: Vec<&str> = own.iter().map(|(n, _)| *n).collect();
    let mut all = own.to_vec();
    all.extend(OTHER_DIALECTS.iter().filter(|(n, _)| !own_names.contains(n)));
    all
}

#[test]
fn nginx_reads_x_original_headers_only() {
    let own = [
        ("x-original-method", "POST"),
        ("x-original-uri", "/admin/x?q=1"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "API.example.com:443"),
    ];
    let expected = OriginalRequest::new("POST", "https", Some("api.example.com"), "/admin/x").unwrap();
    assert_eq!(original(Gateway::Nginx, &own), Ok(expected.clone()));
    assert_eq!(original(Gateway::Nginx, &with_spoofs(&own)), Ok(expected));
}

#[test]
fn ingress_nginx_reads_the_full_original_url() {
    let own = [("x-original-method", "POST"), ("x-original-url", "https://api.example.com:8443/admin/x?q=1")];
    let expected = OriginalRequest::new("POST", "https", Some("api.example.com:8443"), "/admin/x").unwrap();
    assert_eq!(original(Gateway::IngressNginx, &own), Ok(expected.clone()));
    let spoofed = [
        own.as_slice(),
        &[("x-original-uri", "/public"), ("x-forwarded-uri", "/public"), ("x-forwarded-method", "GET")],
    ]
    .concat();
    assert_eq!(original(Gateway::IngressNginx, &spoofed), Ok(expected));
}

#[test]
fn traefik_and_caddy_read_x_forwarded_headers_only() {
    let own = [
        ("x-forwarded-method", "DELETE"),
        ("x-forwarded-uri", "/admin/x"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "api.example.com:80"),
    ];
    let expected = OriginalRequest::new("DELETE", "http", Some("api.example.com"), "/admin/x").unwrap();
    for gateway in [Gateway::Traefik, Gateway::Caddy] {
        assert_eq!(original(gateway, &own), Ok(expected.clone()));
        assert_eq!(original(gateway, &with_spoofs(&own)), Ok(expected.clone()));
    }
}

#[test]
fn envoy_reads_the_check_request_itself() {
    let request =
        check("127.0.0.1", "PUT", "/admin/x?y=1", &[("host", "api.example.com"), ("x-forwarded-proto", "https")]);
    let expected = OriginalRequest::new("PUT", "https", Some("api.example.com"), "/admin/x").unwrap();
    assert_eq!(original_request(&proxy(Gateway::Envoy), &request), Ok(expected.clone()));
    let mut spoofed = request.clone();
    for (n, v) in OTHER_DIALECTS {
        spoofed.headers.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_static(v));
    }
    assert_eq!(original_request(&proxy(Gateway::Envoy), &spoofed), Ok(expected));
}

#[test]
fn a_trusted_peer_without_its_dialect_headers_is_a_gateway_misconfiguration() {
    assert_eq!(
        original(Gateway::Nginx, &[("x-forwarded-uri", "/a"), ("x-forwarded-method", "GET")]),
        Err(Reason::GatewayHeadersMissing)
    );
    assert_eq!(original(Gateway::Nginx, &[("x-original-method", "GET")]), Err(Reason::GatewayHeadersMissing));
    assert_eq!(
        original(Gateway::Traefik, &[("x-original-uri", "/a"), ("x-original-method", "GET")]),
        Err(Reason::GatewayHeadersMissing)
    );
    assert_eq!(original(Gateway::IngressNginx, &[("x-original-method", "GET")]), Err(Reason::GatewayHeadersMissing));
}

#[test]
fn an_untrusted_peer_without_gateway_headers_is_judged_by_its_own_request() {
    let request = check("127.0.0.2", "POST", "/admin", &[("x-forwarded-host", "public.example"), ("host", "h")]);
    let got = original_request(&proxy(Gateway::Nginx), &request).unwrap();
    assert_eq!((got.method(), got.path(), got.scheme(), got.host()), ("POST", "/admin", "http", Some("h")));
}

#[test]
fn an_untrusted_peer_with_its_gateway_headers_is_a_trust_list_that_misses_the_gateway() {
    for (gateway, header) in [
        (Gateway::Nginx, "x-original-method"),
        (Gateway::Nginx, "x-original-uri"),
        (Gateway::IngressNginx, "x-original-method"),
        (Gateway::IngressNginx, "x-original-url"),
        (Gateway::Traefik, "x-forwarded-method"),
        (Gateway::Traefik, "x-forwarded-uri"),
        (Gateway::Caddy, "x-forwarded-method"),
        (Gateway::Caddy, "x-forwarded-uri"),
    ] {
        let request = check("10.1.2.3", "GET", "", &[(header, "/admin")]);
        assert_eq!(original_request(&proxy(gateway), &request), Err(Reason::UntrustedGateway), "{gateway:?} {header}");
    }
    // Another dialect's headers come from a client, not from this gateway.
    let request = check("10.1.2.3", "POST", "/admin", &[("x-forwarded-uri", "/public"), ("x-forwarded-method", "GET")]);
    assert_eq!(original_request(&proxy(Gateway::Nginx), &request).unwrap().path(), "/admin");
    // Envoy describes the request with the check's own method and path.
    let request = check("10.1.2.3", "POST", "/admin", &[("x-original-uri", "/public"), ("host", "h")]);
    assert_eq!(original_request(&proxy(Gateway::Envoy), &request).unwrap().path(), "/admin");
}

#[test]
fn the_routed_host_drops_port_and_trailing_dot_while_the_origin_keeps_the_port() {
    for (scheme, written, host, origin) in [
        ("http", "Admin.Example.COM", "admin.example.com", "http://admin.example.com"),
        ("http", "admin.example.com:8000", "admin.example.com", "http://admin.example.com:8000"),
        ("http", "admin.example.com:443", "admin.example.com", "http://admin.example.com:443"),
        ("https", "admin.example.com:443", "admin.example.com", "https://admin.example.com"),
        ("http", "admin.example.com.", "admin.example.com", "http://admin.example.com."),
        ("http", "admin.example.com.:8000", "admin.example.com", "http://admin.example.com.:8000"),
        ("http", "[::1]:8000", "[::1]", "http://[::1]:8000"),
        ("https", "[2001:DB8::1]", "[2001:db8::1]", "https://[2001:db8::1]"),
        ("http", "127.0.0.1:80", "127.0.0.1", "http://127.0.0.1"),
    ] {
        let request = OriginalRequest::new("GET", scheme, Some(written), "/").unwrap();
        assert_eq!(request.host(), Some(host), "{written}");
        assert_eq!(request.origin().as_deref(), Some(origin), "{written}");
    }
}

#[test]
fn every_dialect_gives_the_routed_host() {
    let forwarded = |method: &'static str, uri: &'static str| {
        vec![
            (method, "GET"),
            (uri, "/"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "Admin.Example.com.:8000"),
        ]
    };
    let cases = [
        (Gateway::Nginx, forwarded("x-original-method", "x-original-uri")),
        (Gateway::Traefik, forwarded("x-forwarded-method", "x-forwarded-uri")),
        (Gateway::Caddy, forwarded("x-forwarded-method", "x-forwarded-uri")),
        (
            Gateway::IngressNginx,
            vec![("x-original-method", "GET"), ("x-original-url", "http://Admin.Example.com.:8000/")],
        ),
        (Gateway::Envoy, vec![("host", "Admin.Example.com.:8000")]),
    ];
    for (gateway, pairs) in cases {
        let got = original(gateway, &pairs).unwrap();
        assert_eq!(got.host(), Some("admin.example.com"), "{gateway:?}");
        assert_eq!(got.origin().as_deref(), Some("http://admin.example.com.:8000"), "{gateway:?}");
    }
}

#[test]
fn hosts_with_empty_labels_are_refused() {
    for host in ["a..example.com", ".example.com", "example.com..", ".", "[::1", "[zz]"] {
        let pairs = [("x-original-method", "GET"), ("x-original-uri", "/"), ("x-forwarded-host", host)];
        assert_eq!(original(Gateway::Nginx, &pairs), Err(Reason::BadForwardedHeader), "{host}");
    }
}

#[test]
fn repeated_or_listed_forwarding_values_are_refused() {
    let base = [("x-original-method", "GET"), ("x-original-uri", "/r")];
    for extra in [
        vec![("x-forwarded-host", "evil.example, api.example.com")],
        vec![("x-forwarded-proto", "https, http")],
        vec![("x-forwarded-proto", "javascript")],
        vec![("x-forwarded-host", "a.example"), ("x-forwarded-host", "b.example")],
        vec![("x-forwarded-host", "api.example.com:0443")],
        vec![("x-forwarded-host", "user@api.example.com")],
    ] {
        let pairs = [base.as_slice(), extra.as_slice()].concat();
        assert_eq!(original(Gateway::Nginx, &pairs), Err(Reason::BadForwardedHeader), "{extra:?}");
    }
    let bad_method = [("x-original-method", "GE T"), ("x-original-uri", "/r")];
    assert_eq!(original(Gateway::Nginx, &bad_method), Err(Reason::BadForwardedHeader));
}

#[test]
fn the_prefix_is_honoured_only_when_configured() {
    let pairs = [("x-forwarded-method", "GET"), ("x-forwarded-uri", "/r"), ("x-forwarded-prefix", "/api")];
    assert_eq!(original(Gateway::Traefik, &pairs).unwrap().path(), "/r");
    let mut with_prefix = proxy(Gateway::Traefik);
    with_prefix.forwarded_prefix = true;
    let got = original_request(&with_prefix, &check("127.0.0.1", "GET", "", &pairs)).unwrap();
    assert_eq!(got.path(), "/api/r");
    for bad in ["../admin", "//evil.example", "http://x", "/%2e%2e", "/a/../b"] {
        let pairs = [("x-forwarded-method", "GET"), ("x-forwarded-uri", "/r"), ("x-forwarded-prefix", bad)];
        let got = original_request(&with_prefix, &check("127.0.0.1", "GET", "", &pairs));
        assert_eq!(got, Err(Reason::BadForwardedHeader), "{bad}");
    }
}

#[test]
fn paths_are_normalized_like_the_upstream_serves_them() {
    for (raw, normalized) in [
        ("/", "/"),
        ("/admin", "/admin"),
        ("/admin/", "/admin/"),
        ("//admin", "/admin"),
        ("/public/../admin", "/admin"),
        ("/a/./b/../c", "/a/c"),
        ("/%7Euser", "/~user"),
        ("/a%2dz", "/a-z"),
        ("/a%3fb", "/a%3Fb"),
        ("/admin;x=1", "/admin;x=1"),
        ("/..", "/"),
        ("/a/..", "/"),
    ] {
        assert_eq!(normalize_path(raw).as_deref(), Ok(normalized), "{raw}");
    }
}

#[test]
fn ambiguous_escapes_in_paths_are_refused() {
    for raw in [
        "/admin%2fusers",
        "/admin%2Fusers",
        "/a%5Cb",
        "/admin%00",
        "/public/%2e%2e/admin",
        "/%2E/x",
        "/a\\b",
        "/a b",
        "/bad%zz",
        "/bad%2",
        "admin",
    ] {
        assert_eq!(normalize_path(raw), Err(Reason::AmbiguousPath), "{raw}");
    }
}

#[test]
fn origins_are_normalized() {
    assert_eq!(parse_origin("HTTPS://API.example.com:443").as_deref(), Some("https://api.example.com"));
    assert_eq!(parse_origin("http://a.example:8080/").as_deref(), Some("http://a.example:8080"));
    assert_eq!(parse_origin("https://a.example/path"), None);
    assert_eq!(parse_origin("ftp://a.example"), None);
    assert_eq!(parse_origin("https://u@a.example"), None);
}

#[test]
fn arbitrary_paths_never_panic_and_normal_forms_are_stable() {
    let pieces = ["/", "a", "..", ".", "%2e", "%2F", "%7e", "%", "%zz", "//", ";", "?", "\\", " ", "é", "%00", "%41"];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..5000 {
        let mut path = String::from("/");
        for _ in 0..(state % 8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            path.push_str(pieces[(state % pieces.len() as u64) as usize]);
        }
        if let Ok(normal) = normalize_path(&path) {
            assert_eq!(normalize_path(&normal).as_deref(), Ok(normal.as_str()), "{path}");
        }
    }
}

#[test]
fn method_overrides_are_read_from_every_header_and_the_query() {
    let pairs = [
        ("x-original-method", "GET"),
        ("x-original-uri", "/admin/x?a=1&%5Fmethod=put;_method=patch"),
        ("x-http-method-override", "delete"),
        ("x-http-method", " Post , DELETE"),
        ("x-method-override", ""),
    ];
    let got = original(Gateway::Nginx, &pairs).unwrap();
    assert_eq!(got.method(), "GET");
    assert_eq!(got.method_overrides(), ["PUT", "PATCH", "DELETE", "POST"]);
    // From an untrusted peer too: an override only ever adds readings.
    let request = check("10.9.9.9", "GET", "/admin?_method=DELETE", &[("x-method-override", "PURGE")]);
    let got = original_request(&proxy(Gateway::Envoy), &request).unwrap();
    assert_eq!(got.method_overrides(), ["DELETE", "PURGE"]);
}

#[test]
fn unreadable_or_too_many_method_overrides_are_refused() {
    for (name, value) in
        [("x-http-method-override", "DEL ETE"), ("x-http-method", "GET;x"), ("x-method-override", "A,B,C,D,E")]
    {
        let pairs = [("x-original-method", "GET"), ("x-original-uri", "/"), (name, value)];
        assert_eq!(original(Gateway::Nginx, &pairs), Err(Reason::BadMethodOverride), "{name}: {value}");
    }
    let pairs = [("x-original-method", "GET"), ("x-original-uri", "/?_method=a%20b")];
    assert_eq!(original(Gateway::Nginx, &pairs), Err(Reason::BadMethodOverride));
}

#[test]
fn query_values_are_form_decoded() {
    let values = |target| query_values(split_target(target).1, "_method");
    assert_eq!(values("/p?_method=a+b%41&x=1#_method=no"), ["a bA"]);
    assert_eq!(values("/p?_method"), [""]);
    assert_eq!(values("/p?%zz=1&_method=%zz"), ["%zz"]);
    assert!(values("/p").is_empty());
}

#[test]
fn nginx_refuses_a_routed_host_other_than_the_host_header() {
    let base = [("x-original-method", "GET"), ("x-original-uri", "/secret"), ("x-forwarded-proto", "http")];
    let with = |pairs: &[(&'static str, &'static str)]| original(Gateway::Nginx, &[base.as_slice(), pairs].concat());
    // Absolute form: nginx routed on admin.example.com, the Host header says other.
    let conflicting = [("x-forwarded-host", "other.example.com"), ("x-original-host", "admin.example.com")];
    assert_eq!(with(&conflicting), Err(Reason::ConflictingHost));
    // Agreeing (nginx's $host has no port, no trailing dot, lower case): the Host header
    // keeps its port for the htu.
    let agreeing = [("x-forwarded-host", "Admin.Example.com.:8000"), ("x-original-host", "admin.example.com")];
    let got = with(&agreeing).unwrap();
    assert_eq!(
        (got.host(), got.origin().as_deref()),
        (Some("admin.example.com"), Some("http://admin.example.com.:8000"))
    );
    // Without X-Original-Host there is nothing to compare (older configs); without the
    // Host header, see below.
    assert!(with(&[("x-forwarded-host", "a.example")]).is_ok());
    assert_eq!(
        with(&[("x-forwarded-host", "a.example"), ("x-original-host", "a..b")]),
        Err(Reason::BadForwardedHeader)
    );
}

/// HTTP/1.0 without `Host` (absolute form or not): nginx sends no `X-Forwarded-Host`, but
/// routes on `$host` (the request line's host, or its `server_name`) and hands it to the
/// upstream as `Host`. The differential test found such a request judged on no host at
/// all, so a host route did not hold for `GET http://admin.example.com/x HTTP/1.0`.
#[test]
fn nginx_without_a_host_header_is_judged_on_the_host_it_routed_on() {
    let base = [("x-original-method", "GET"), ("x-original-uri", "/secret"), ("x-forwarded-proto", "http")];
    let with = |pairs: &[(&'static str, &'static str)]| original(Gateway::Nginx, &[base.as_slice(), pairs].concat());
    let got = with(&[("x-original-host", "admin.example.com")]).unwrap();
    // No authority the client wrote: a DPoP proof cannot name the URL.
    assert_eq!((got.host(), got.origin()), (Some("admin.example.com"), None));
    // The catch-all `server_name _` of the shipped config, as nginx sends it upstream.
    assert_eq!(with(&[("x-original-host", "_")]).unwrap().host(), Some("_"));
    assert_eq!(with(&[("x-original-host", "a..b")]), Err(Reason::BadForwardedHeader));
    // Neither header: no host (an older config without X-Original-Host).
    assert_eq!(with(&[]).unwrap().host(), None);
}

#[test]
fn dot_segments_with_path_parameters_are_ambiguous() {
    for raw in ["/public/..;/admin", "/public/..;jsessionid=1/admin", "/a/.;x/b", "/..;"] {
        assert_eq!(normalize_path(raw), Err(Reason::AmbiguousPath), "{raw}");
    }
    assert_eq!(normalize_path("/a/x..;y").as_deref(), Ok("/a/x..;y"));
    assert_eq!(normalize_path("/admin;v=1").as_deref(), Ok("/admin;v=1"));
}

#[test]
fn connect_has_no_path_to_judge() {
    for method in ["CONNECT", "connect"] {
        assert_eq!(OriginalRequest::new(method, "https", Some("a.example:443"), "/"), Err(Reason::AmbiguousPath));
    }
    let pairs =
        [("x-forwarded-method", "CONNECT"), ("x-forwarded-uri", "/"), ("x-forwarded-host", "admin.example.com:443")];
    assert_eq!(original(Gateway::Caddy, &pairs), Err(Reason::AmbiguousPath));
}

#[test]
fn a_method_not_in_upper_case_is_also_read_upper_cased() {
    let request = OriginalRequest::new("Delete", "https", None, "/").unwrap();
    assert_eq!((request.method(), request.upper_method()), ("Delete", Some("DELETE")));
    assert_eq!(OriginalRequest::new("DELETE", "https", None, "/").unwrap().upper_method(), None);
}

#[test]
fn a_target_splits_into_its_path_and_query_at_the_first_delimiter() {
    let cases = [
        ("/a", ("/a", None)),
        ("/a?x=1&y", ("/a", Some("x=1&y"))),
        ("/a?x#f", ("/a", Some("x"))),
        ("/a?x?y", ("/a", Some("x?y"))),
        ("/a#f?x", ("/a", None)),
        ("/a?", ("/a", Some(""))),
        ("/é/ü?q=€", ("/é/ü", Some("q=€"))),
        ("?q", ("", Some("q"))),
    ];
    for (target, parts) in cases {
        assert_eq!(split_target(target), parts, "{target}");
    }
}
