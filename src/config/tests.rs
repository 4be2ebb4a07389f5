use super::*;

const MINIMAL: &str = r#"
[issuer]
domain = "tenant.auth0.com"
audience = "https://api.example.com"
[proxy]
gateway = "nginx"
"#;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn problems(text: &str, vars: &[(&str, &str)]) -> Vec<Problem> {
    Config::load(text, &env(vars)).unwrap_err().problems
}

fn keys(text: &str, vars: &[(&str, &str)]) -> Vec<String> {
    problems(text, vars).into_iter().map(|p| p.key).collect()
}

#[test]
fn a_minimal_config_gets_the_contract_defaults() {
    let c = Config::load(MINIMAL, &HashMap::new()).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.issuers[0].issuer, "https://tenant.auth0.com/");
    assert_eq!(c.issuers[0].discovery_url(), "https://tenant.auth0.com/.well-known/openid-configuration");
    assert_eq!(c.issuers[0].algorithms, vec![jsonwebtoken::Algorithm::RS256]);
    assert_eq!(c.issuers[0].leeway, 0);
    assert_eq!(c.dpop.mode, DpopMode::Allowed);
    assert_eq!(c.dpop.algorithms, vec![ProofAlgorithm::Es256]);
    assert_eq!((c.dpop.iat_leeway, c.dpop.iat_offset), (30, 300));
    assert_eq!(c.errors.invalid_request_status, http::StatusCode::BAD_REQUEST);
    assert_eq!(c.default, DefaultAction::Authenticated);
    assert_eq!(c.proxy.trusted.len(), 2);
}

#[test]
fn environment_overrides_the_file() {
    let c = Config::load(
        MINIMAL,
        &env(&[
            ("TOLLGATE_DPOP__REQUIRED", "true"),
            ("TOLLGATE_ISSUER__LEEWAY", "5"),
            ("TOLLGATE_PROXY__TRUSTED", "10.0.0.0/8, 192.168.1.1"),
            ("TOLLGATE_ERRORS__INVALID_REQUEST_STATUS", "401"),
            ("AUTH0_DOMAIN", "other.eu.auth0.com"),
            ("AUTH0_AUDIENCE", "https://a.example,https://b.example"),
            ("PATH", "/usr/bin"),
        ]),
    )
    .unwrap();
    assert_eq!(c.dpop.mode, DpopMode::Required);
    assert_eq!(c.issuers[0].leeway, 5);
    assert_eq!(c.proxy.trusted.len(), 2);
    assert_eq!(c.errors.invalid_request_status, http::StatusCode::UNAUTHORIZED);
    assert_eq!(c.issuers[0].issuer, "https://other.eu.auth0.com/");
    assert_eq!(c.issuers[0].audiences, vec!["https://a.example", "https://b.example"]);
}

#[test]
fn auth0_variables_alone_with_a_gateway_make_a_config() {
    let c = Config::load(
        "",
        &env(&[("AUTH0_DOMAIN", "t.auth0.com"), ("AUTH0_AUDIENCE", "aud"), ("TOLLGATE_PROXY__GATEWAY", "caddy")]),
    )
    .unwrap();
    assert_eq!(c.proxy.gateway, Gateway::Caddy);
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    let text = format!("{MINIMAL}\nlisten_port = 1\n");
    assert!(problems(&text, &[])[0].message.contains("listen_port"));
    let text = MINIMAL.replace("[proxy]", "[proxy]\ntrusted_peers = []");
    let p = problems(&text, &[]);
    assert_eq!(p[0].key, "proxy.trusted_peers");
    assert!(p[0].message.contains("trusted_peers"));
    assert_eq!(keys(MINIMAL, &[("TOLLGATE_ISSUER__AUDIENCES", "x")]), vec!["TOLLGATE_ISSUER__AUDIENCES"]);
}

#[test]
fn every_bad_value_is_reported_at_once_naming_its_key() {
    let text = r#"
listen = "nowhere"
[issuer]
url = "not a url"
audience = ""
algorithms = ["HS256", "none"]
leeway = -1
[dpop]
algorithms = ["HS256"]
nonce = true
[proxy]
gateway = "apache"
trusted = ["10.0.0.0/33"]
public_origins = ["https://a.example/path"]
[errors]
invalid_request_status = 418
realm = "a\"b"
[[routes]]
path_prefix = "admin"
scopes = ["a b"]
"#;
    let got = keys(text, &[]);
    for key in [
        "listen",
        "issuer.url",
        "issuer.audience",
        "issuer.algorithms",
        "issuer.leeway",
        "dpop.algorithms",
        "dpop.nonce_secret",
        "proxy.gateway",
        "proxy.trusted",
        "proxy.public_origins",
        "errors.invalid_request_status",
        "errors.realm",
        "routes[0].path_prefix",
        "routes[0].scopes",
    ] {
        assert!(got.iter().any(|k| k == key), "{key} missing from {got:?}");
    }
}

#[test]
fn issuer_needs_exactly_one_of_domain_and_url() {
    let both = MINIMAL.replace("[issuer]", "[issuer]\nurl = \"https://x.example/\"");
    assert_eq!(keys(&both, &[]), vec!["issuer"]);
    let neither = MINIMAL.replace("domain = \"tenant.auth0.com\"", "");
    assert_eq!(keys(&neither, &[]), vec!["issuer"]);
}

#[test]
fn an_empty_audience_list_is_refused() {
    let text = MINIMAL.replace("audience = \"https://api.example.com\"", "audience = []");
    assert_eq!(keys(&text, &[]), vec!["issuer.audience"]);
    let text = MINIMAL.replace("audience = \"https://api.example.com\"", "");
    assert_eq!(keys(&text, &[]), vec!["issuer.audience"]);
}

#[test]
fn the_gateway_is_required() {
    let text = MINIMAL.replace("gateway = \"nginx\"", "");
    assert_eq!(keys(&text, &[]), vec!["proxy.gateway"]);
}

#[test]
fn a_bad_environment_value_names_the_variable() {
    assert_eq!(keys(MINIMAL, &[("TOLLGATE_DPOP__ENABLED", "yes")]), vec!["TOLLGATE_DPOP__ENABLED"]);
    assert_eq!(keys(MINIMAL, &[("TOLLGATE_ISSUER__LEEWAY", "ten")]), vec!["TOLLGATE_ISSUER__LEEWAY"]);
}

#[test]
fn routes_are_parsed_into_the_policy() {
    let text = format!(
        "{MINIMAL}\n[[routes]]\nhost = \"*.example.com\"\npath = \"/exact\"\nmethods = [\"GET\"]\nany_scopes = [\"a\", \"b\"]\n[[routes]]\npath_prefix = \"/public\"\npublic = true\n"
    );
    let c = Config::load(&text, &HashMap::new()).unwrap();
    assert_eq!(c.routes.len(), 2);
    assert_eq!(c.routes[0].path, PathMatch::Exact("/exact".into()));
    assert_eq!(c.routes[0].host, Some(HostPattern::Subdomains(".example.com".into())));
    assert!(c.routes[1].public);
}

#[test]
fn a_route_host_with_a_port_is_refused_naming_the_key() {
    let text = format!("{MINIMAL}\n[[routes]]\nhost = \"admin.example.com:8000\"\nscopes = [\"admin\"]\n");
    let found = problems(&text, &[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "routes[0].host");
    assert!(found[0].message.contains("no port"), "{}", found[0].message);
    let text = format!("{MINIMAL}\n[[routes]]\nhost = \"Admin.Example.com.\"\n");
    let c = Config::load(&text, &HashMap::new()).unwrap();
    assert_eq!(c.routes[0].host, Some(HostPattern::Exact("admin.example.com".into())));
}

#[test]
fn route_paths_must_be_normalized() {
    let text = format!("{MINIMAL}\n[[routes]]\npath_prefix = \"/a/../b\"\n");
    assert_eq!(keys(&text, &[]), vec!["routes[0].path_prefix"]);
}

#[test]
fn describe_lists_what_was_resolved() {
    let text =
        format!("{MINIMAL}\n[[routes]]\npath_prefix = \"/admin\"\nmethods = [\"POST\"]\nscopes = [\"write:admin\"]\n");
    let out = describe(&Config::load(&text, &HashMap::new()).unwrap());
    assert!(out.contains("issuer            https://tenant.auth0.com/"), "{out}");
    assert!(out.contains("POST any host /admin/** -> a valid token, scopes write:admin"), "{out}");
}

#[test]
fn public_origins_are_normalized_once_at_load() {
    let text = MINIMAL
        .replace("gateway = \"nginx\"", "gateway = \"nginx\"\npublic_origins = [\"HTTPS://API.example.com:443/\"]");
    let c = Config::load(&text, &HashMap::new()).unwrap();
    assert_eq!(c.proxy.public_origins, vec!["https://api.example.com"]);
}

#[test]
fn ops_listen_is_absent_unless_set() {
    assert_eq!(Config::load(MINIMAL, &HashMap::new()).unwrap().ops_listen, None);
    let c = Config::load(&format!("ops_listen = \"0.0.0.0:9090\"\n{MINIMAL}"), &HashMap::new()).unwrap();
    assert_eq!(c.ops_listen, Some("0.0.0.0:9090".parse().unwrap()));
    assert!(describe(&c).contains("ops_listen        0.0.0.0:9090 (/healthz, /readyz, /metrics only)"));
    let c = Config::load(MINIMAL, &env(&[("TOLLGATE_OPS_LISTEN", "127.0.0.1:9091")])).unwrap();
    assert_eq!(c.ops_listen, Some("127.0.0.1:9091".parse().unwrap()));
}

#[test]
fn ops_listen_must_be_an_address_listen_does_not_hold() {
    for ops in ["nope", "127.0.0.1:8080", "0.0.0.0:8080"] {
        assert_eq!(keys(&format!("ops_listen = \"{ops}\"\n{MINIMAL}"), &[]), vec!["ops_listen"], "{ops}");
    }
    let text = format!("listen = \"0.0.0.0:8080\"\nops_listen = \"127.0.0.1:8080\"\n{MINIMAL}");
    assert_eq!(keys(&text, &[]), vec!["ops_listen"]);
    let text = format!("listen = \"127.0.0.1:8080\"\nops_listen = \"0.0.0.0:9090\"\n{MINIMAL}");
    assert!(Config::load(&text, &HashMap::new()).is_ok());
}

#[test]
fn grpc_listens_on_an_address_of_its_own() {
    assert_eq!(Config::load(MINIMAL, &HashMap::new()).unwrap().grpc, None);
    let text = format!("[grpc]\nlisten = \"127.0.0.1:9001\"\n{MINIMAL}");
    let config = Config::load(&text, &HashMap::new()).unwrap();
    assert_eq!(config.grpc, Some(GrpcConfig { listen: "127.0.0.1:9001".parse().unwrap() }));
    assert!(describe(&config).contains("grpc listen       127.0.0.1:9001"), "{}", describe(&config));
    let from_env = Config::load(MINIMAL, &env(&[("TOLLGATE_GRPC__LISTEN", "127.0.0.1:9002")])).unwrap();
    assert_eq!(from_env.grpc.map(|g| g.listen.port()), Some(9002));
    for (listen, message) in [("0.0.0.0:8080", "overlaps listen"), ("nine", "not an address")] {
        let text = format!("[grpc]\nlisten = \"{listen}\"\n{MINIMAL}");
        let found = problems(&text, &[]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].key, "grpc.listen");
        assert!(found[0].message.contains(message), "{}", found[0].message);
    }
}

const CLIENT: &str = "[client]\nclient_id = \"c\"\nclient_secret = \"s\"\n";

fn with_route(route: &str, client: &str) -> String {
    format!("{MINIMAL}\n{client}\n[[routes]]\npath_prefix = \"/x\"\n{route}\n")
}

#[test]
fn exchanges_are_read_in_their_three_forms() {
    use crate::config::{Exchange, Grant};
    let obo = r#"exchange = { audience = "https://down.example.com", scope = "a b" }"#;
    let c = Config::load(&with_route(obo, CLIENT), &HashMap::new()).unwrap();
    let expected = Grant::OnBehalfOf { audience: "https://down.example.com".into(), scope: Some("a b".into()) };
    assert_eq!(
        c.routes[0].exchange,
        Some(Exchange { grant: expected, header: "x-auth-downstream-token".parse().unwrap() })
    );
    let vault = r#"exchange = { connection = "google-oauth2", header = "X-Auth-Google" }"#;
    let c = Config::load(&with_route(vault, CLIENT), &HashMap::new()).unwrap();
    assert!(
        matches!(&c.routes[0].exchange, Some(Exchange { grant: Grant::Connection { .. }, header }) if header == "x-auth-google")
    );
    let profile =
        r#"exchange = { subject_token_type = "urn:acme:mcp", extra = { n = 1, on = true, list = ["a", 2] } }"#;
    let c = Config::load(&with_route(profile, CLIENT), &HashMap::new()).unwrap();
    let Some(Exchange { grant: Grant::Profile { extra, .. }, .. }) = &c.routes[0].exchange else { panic!() };
    assert_eq!(
        extra,
        &vec![
            ("list".to_string(), vec!["a".to_string(), "2".to_string()]),
            ("n".into(), vec!["1".into()]),
            ("on".into(), vec!["true".into()])
        ]
    );
}

#[test]
fn every_bad_exchange_is_refused_naming_its_key() {
    let too_many: Vec<String> = (0..21).map(|n| format!("\"v{n}\"")).collect();
    let cases = [
        (r#"exchange = { audience = "a" }"#, "", "routes[0].exchange"),
        (r#"exchange = { scope = "a" }"#, CLIENT, "routes[0].exchange.audience"),
        (
            r#"exchange = { subject_token_type = "urn:ietf:params:oauth:token-type:jwt" }"#,
            CLIENT,
            "routes[0].exchange.subject_token_type",
        ),
        (
            r#"exchange = { subject_token_type = "https://auth0.com/x" }"#,
            CLIENT,
            "routes[0].exchange.subject_token_type",
        ),
        (
            r#"exchange = { subject_token_type = "urn:acme:x", extra = { Scope = "x" } }"#,
            CLIENT,
            "routes[0].exchange.extra.Scope",
        ),
        (
            r#"exchange = { subject_token_type = "urn:acme:x", extra = { grant_type = "x" } }"#,
            CLIENT,
            "routes[0].exchange.extra.grant_type",
        ),
        (
            r#"exchange = { subject_token_type = "urn:acme:x", extra = { t = { a = 1 } } }"#,
            CLIENT,
            "routes[0].exchange.extra.t",
        ),
        (r#"exchange = { audience = "a", header = "X-Downstream" }"#, CLIENT, "routes[0].exchange.header"),
        (r#"exchange = { audience = "a", header = "X-Auth-Subject" }"#, CLIENT, "routes[0].exchange.header"),
        (r#"exchange = { connection = "c", audience = "a" }"#, CLIENT, "routes[0].exchange"),
        (r#"exchange = { connection = "c", subject_token_type = "urn:acme:x" }"#, CLIENT, "routes[0].exchange"),
        ("public = true\nexchange = { audience = \"a\" }", CLIENT, "routes[0].exchange"),
    ];
    for (route, client, key) in cases {
        assert_eq!(keys(&with_route(route, client), &[]), vec![key], "{route}");
    }
    let route =
        format!("exchange = {{ subject_token_type = \"urn:acme:x\", extra = {{ many = [{}] }} }}", too_many.join(", "));
    assert_eq!(keys(&with_route(&route, CLIENT), &[]), vec!["routes[0].exchange.extra.many"]);
}

#[test]
fn the_client_is_checked_at_load_and_its_secret_never_printed() {
    let bad = [
        ("[client]\nclient_id = \"c\"\n", "client"),
        ("[client]\nclient_id = \"c\"\nclient_secret = \"s\"\nclient_secret_file = \"f\"\n", "client"),
        ("[client]\nclient_id = \"c\"\nclient_secret_file = \"no-such-file\"\n", "client.client_secret_file"),
        ("[client]\nclient_id = \"c\"\nclient_secret = \"s\"\nauth = \"magic\"\n", "client.auth"),
        ("[client]\nclient_id = \"c\"\nauth = \"private_key_jwt\"\n", "client.private_key_file"),
        (
            "[client]\nclient_id = \"c\"\nauth = \"private_key_jwt\"\nprivate_key_file = \"Cargo.toml\"\n",
            "client.private_key_file",
        ),
        ("[client]\nclient_id = \"c\"\nclient_secret = \"s\"\ntimeout = 0\n", "client.timeout"),
    ];
    for (client, key) in bad {
        assert_eq!(keys(&format!("{MINIMAL}\n{client}"), &[]), vec![key], "{client}");
    }
    let vars = [("TOLLGATE_CLIENT__CLIENT_SECRET", "from-env-9f3a")];
    let c = Config::load(&format!("{MINIMAL}\n[client]\nclient_id = \"c\"\n"), &env(&vars)).unwrap();
    let printed = format!("{c:?}\n{}", describe(&c));
    assert!(!printed.contains("from-env-9f3a"), "{printed}");
}

#[test]
fn every_unknown_key_type_error_and_missing_section_is_named_in_one_run() {
    let text = r#"
listen_port = 1
default = 7
[issuer]
domain = "tenant.auth0.com"
audience = "https://api.example.com"
leeway = "ten"
audiance = "typo"
[dpop]
enabled = "yes"
[[routes]]
path_prefix = "/a"
scope = ["x"]
"#;
    let found = keys(text, &[]);
    for key in [
        "listen_port",
        "default",
        "issuer.leeway",
        "issuer.audiance",
        "dpop.enabled",
        "routes[0].scope",
        "proxy.gateway",
    ] {
        assert!(found.iter().any(|k| k == key), "{key} not named: {found:?}");
    }
    assert_eq!(found.len(), 7, "{found:?}");
}

#[test]
fn an_empty_file_names_every_missing_section() {
    let found = keys("", &[]);
    assert!(found.contains(&"issuer".to_string()), "{found:?}");
    assert!(found.contains(&"proxy.gateway".to_string()), "{found:?}");
}

#[test]
fn check_warns_about_likely_mistakes_and_the_example_has_none() {
    let example = Config::load(include_str!("../../config/tollgate.toml"), &HashMap::new()).unwrap();
    assert_eq!(warnings(&example), Vec::<String>::new());
    let placeholder = MINIMAL.replace("tenant.auth0.com", "your-tenant.us.auth0.com");
    let nginx_400 = Config::load(&placeholder, &HashMap::new()).unwrap();
    let found = warnings(&nginx_400);
    assert!(found.iter().any(|w| w.contains("placeholder")), "{found:?}");
    assert!(found.iter().any(|w| w.contains("invalid_request_status = 400")), "{found:?}");
    let hosts = format!("{MINIMAL}[errors]\ninvalid_request_status = 401\n[[routes]]\nhost = \"a.example.com\"\n");
    let found = warnings(&Config::load(&hosts.replace("tenant.auth0.com", "t.eu.auth0.com"), &HashMap::new()).unwrap());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("default = \"deny\""), "{found:?}");
}

#[test]
fn describe_names_every_setting_and_no_secret() {
    let text = MINIMAL.replace("[proxy]", "[dpop]\nreplay_store = \"redis://:hunter2@127.0.0.1:6379/0\"\n[proxy]")
        + "[headers]\n\"X-Auth-Email\" = \"email\"\n";
    let out = describe(&Config::load(&text, &HashMap::new()).unwrap());
    for key in [
        "replay_store",
        "nonce",
        "public_origins",
        "forwarded_prefix",
        "header",
        "cache",
        "log",
        "realm",
        "required_claims",
        "gateway           nginx",
    ] {
        assert!(out.contains(key), "{key} in:\n{out}");
    }
    assert!(!out.contains("hunter2"), "{out}");
}

#[test]
fn shutdown_defaults_give_endpoints_time_to_update_and_bound_the_exit() {
    let c = Config::load(MINIMAL, &HashMap::new()).unwrap();
    assert_eq!(c.shutdown.drain_delay, std::time::Duration::from_secs(5));
    assert_eq!(c.shutdown.drain_timeout, std::time::Duration::from_secs(10));
    assert!(
        describe(&c).contains("shutdown          drain_delay 5 s, drain_timeout 10 s (exit within 15 s of SIGTERM)")
    );
}

#[test]
fn shutdown_waits_come_from_the_file_and_the_environment() {
    let text = format!("{MINIMAL}[shutdown]\ndrain_delay = 0\ndrain_timeout = 30\n");
    let c = Config::load(&text, &HashMap::new()).unwrap();
    assert_eq!((c.shutdown.drain_delay.as_secs(), c.shutdown.drain_timeout.as_secs()), (0, 30));
    let vars = [("TOLLGATE_SHUTDOWN__DRAIN_DELAY", "2"), ("TOLLGATE_SHUTDOWN__DRAIN_TIMEOUT", "3")];
    let c = Config::load(&text, &env(&vars)).unwrap();
    assert_eq!((c.shutdown.drain_delay.as_secs(), c.shutdown.drain_timeout.as_secs()), (2, 3));
}

#[test]
fn shutdown_waits_out_of_range_are_refused_naming_their_key() {
    let text = format!("{MINIMAL}[shutdown]\ndrain_delay = -1\ndrain_timeout = 3601\n");
    assert_eq!(keys(&text, &[]), vec!["shutdown.drain_delay", "shutdown.drain_timeout"]);
    let text = format!("{MINIMAL}[shutdown]\ndrain_delay = \"5s\"\ngrace = 1\n");
    assert_eq!(keys(&text, &[]), vec!["shutdown.drain_delay", "shutdown.grace"]);
    assert_eq!(keys(MINIMAL, &[("TOLLGATE_SHUTDOWN__DRAIN_TIMEOUT", "ten")]), vec!["TOLLGATE_SHUTDOWN__DRAIN_TIMEOUT"]);
}
