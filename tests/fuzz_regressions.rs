//! Inputs the fuzz targets (fuzz/) stopped on, kept as tests: each names its target and
//! what the input showed, whether it found a bug in tollgate (fixed) or a property of the
//! target that had to be stated more exactly (the behaviour pinned, so it stays deliberate).
//! The IPv6 `htu` finding is tested beside its fix, in `src/dpop/htu/tests.rs`.

use std::collections::HashMap;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use tollgate::config::{Config, Gateway, ProxyConfig};
use tollgate::dpop::htu::normalize;
use tollgate::gateway::{self, CheckRequest};
use tollgate::refusal::{self, Reason, Refusal, Scheme};

const CONFIG: &str = r#"
[issuer]
domain = "tenant.auth0.com"
audience = "https://api.example.com"
[proxy]
gateway = "nginx"
"#;

/// htu_differential, `https://a.exampl#e/%4g`: the query and fragment of an `htu` are
/// ignored (RFC 9449 §4.3), their syntax included, so a client that writes a raw `%` in
/// its query still has its proof compared on the rest.
#[test]
fn an_htu_query_or_fragment_is_ignored_whatever_its_syntax() {
    assert_eq!(normalize("https://a.exampl#e/%4g").as_deref(), Some("https://a.exampl/"));
    assert_eq!(normalize("https://a.example/r?discount=50%").as_deref(), Some("https://a.example/r"));
    assert_eq!(normalize("https://a.example/r?%zz#%"), normalize("https://a.example/r"));
    // The compared part is still held to RFC 3986.
    assert_eq!(normalize("https://a.example/%4g?x"), None);
}

/// refusal_respond: a realm with bytes over 0x7F (`rw#iteƙdmrs wrcrcret`) would give a
/// `WWW-Authenticate` value that is not visible ASCII; the config refuses such a realm,
/// so every challenge a deployment sends is.
#[test]
fn a_realm_outside_visible_ascii_is_refused_by_the_config() {
    let text = format!("{CONFIG}[errors]\nrealm = \"rw#ite\u{199}dmrs wrcrcret\"\n");
    let problems = Config::load(&text, &HashMap::new()).unwrap_err().problems;
    assert_eq!(problems.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), ["errors.realm"]);

    let text = format!("{CONFIG}[errors]\nrealm = \"rw#ite dmrs wrcrcret\"\n");
    let settings = Config::load(&text, &HashMap::new()).unwrap().challenge_settings();
    let refused = Refusal::new(Reason::Expired).with_scheme(Some(Scheme::Bearer));
    let answer = refusal::respond(&refused, &settings);
    let challenges: Vec<&str> = answer.headers.iter().map(|(_, v)| v.to_str().unwrap()).collect();
    assert_eq!(
        challenges,
        [
            "Bearer realm=\"rw#ite dmrs wrcrcret\", error=\"invalid_token\", error_description=\"token expired\"",
            "DPoP algs=\"ES256\""
        ]
    );
}

/// config_load, `''='''c'' ='''`: a key written as an empty literal string was refused
/// as unknown under an empty name, which names nothing. Fixed: it is named `""`, wherever
/// it stands.
#[test]
fn a_key_written_as_an_empty_string_is_named_in_the_refusal() {
    for (text, key) in
        [(format!("''='''c'' ='''\n{CONFIG}"), "\"\""), (format!("{CONFIG}[dpop]\n\"\" = 1\n"), "dpop.\"\"")]
    {
        let problems = Config::load(&text, &HashMap::new()).unwrap_err().problems;
        assert_eq!(problems.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), [key], "{text}");
    }
}

/// gateway_original_request, `X-Forwarded-Prefix: /api#/` (Traefik, `forwarded_prefix`):
/// the prefix was taken as a path, so routes were judged on `/api#/x` while the DPoP
/// `htu` was compared with `/api` (cut at the `#`): one proof for `/api` would have
/// matched every path under the prefix. Fixed: a path holds no `?` or `#`.
#[test]
fn a_forwarded_prefix_with_a_query_or_fragment_is_refused() {
    let proxy = ProxyConfig {
        gateway: Gateway::Traefik,
        trusted: vec!["127.0.0.1/32".parse().unwrap()],
        forwarded_prefix: true,
        public_origins: vec![],
    };
    for prefix in ["/api#/", "/api#", "/api?x=1", "/a/b?"] {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-forwarded-method", "GET"),
            ("x-forwarded-uri", "/x"),
            ("x-forwarded-host", "h"),
            ("x-forwarded-prefix", prefix),
        ] {
            headers.append(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        }
        let check = CheckRequest { peer: [127, 0, 0, 1].into(), method: Method::GET, path: String::new(), headers };
        assert_eq!(gateway::original_request(&proxy, &check), Err(Reason::BadForwardedHeader), "{prefix}");
    }
    for path in ["/api#", "/api#/x", "/a?b", "/?"] {
        assert_eq!(tollgate::uri::normalize_path(path), Err(Reason::AmbiguousPath), "{path}");
    }
}

/// path_normalize, `/.;Fa23b..`: RFC 3986 reads `.;Fa23b..` as a plain segment; tollgate
/// refuses it as a dot segment with a path parameter (Tomcat and Jetty read `.;x` as `.`,
/// see `dot_segments_with_path_parameters_are_ambiguous` in `src/gateway/tests.rs`). The
/// target's property now names that refusal beside the ambiguous escapes.
#[test]
fn a_dot_segment_with_path_parameters_is_refused_where_rfc_3986_sees_a_name() {
    assert_eq!(tollgate::uri::normalize_path("/.;Fa23b.."), Err(Reason::AmbiguousPath));
}
