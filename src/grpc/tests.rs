use super::*;

#[test]
fn http_statuses_map_to_the_grpc_codes_envoy_maps_back() {
    assert_eq!(grpc_code(StatusCode::BAD_REQUEST), Code::InvalidArgument);
    assert_eq!(grpc_code(StatusCode::UNAUTHORIZED), Code::Unauthenticated);
    assert_eq!(grpc_code(StatusCode::FORBIDDEN), Code::PermissionDenied);
    assert_eq!(grpc_code(StatusCode::SERVICE_UNAVAILABLE), Code::Unavailable);
    assert_eq!(grpc_code(StatusCode::INTERNAL_SERVER_ERROR), Code::Internal);
}

#[test]
fn names_a_backend_reads_as_x_auth_are_aliases() {
    for name in ["x-auth-subject", "x-auth-email", "x_auth_subject", "x.auth.subject", "X-Auth-Tenant"] {
        assert!(is_auth_alias(name), "{name}");
    }
    for name in ["x-authorization", "authorization", "x-aut", "xx-auth-subject"] {
        assert!(!is_auth_alias(name), "{name}");
    }
}

#[test]
fn pseudo_headers_are_skipped_and_bounds_hold() {
    let pairs = [(":authority", "a"), (":path", "/"), ("authorization", "Bearer t")];
    let map = bounded(pairs.iter().map(|(k, v)| (*k, v.as_bytes()))).unwrap();
    assert_eq!(map.len(), 1);
    let many: Vec<(String, String)> = (0..=MAX_HEADERS).map(|i| (format!("h{i}"), "v".into())).collect();
    let got = bounded(many.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    assert_eq!(got.err(), Some(Reason::OversizedRequest));
    let big = "v".repeat(MAX_REQUEST_BYTES);
    assert_eq!(bounded([("a", big.as_bytes())].into_iter()).err(), Some(Reason::OversizedRequest));
    for (name, value) in [("bad name", "v"), ("n", "a\nb")] {
        assert_eq!(bounded([(name, value.as_bytes())].into_iter()).err(), Some(Reason::BadForwardedHeader), "{name}");
    }
}

#[test]
fn raw_header_maps_keep_repeats() {
    let header = |k: &str, v: &[u8]| EnvoyHeader { key: k.into(), value: String::new(), raw_value: v.to_vec() };
    let map = raw_headers(&[header("dpop", b"a"), header("dpop", b"b")]).unwrap();
    assert_eq!(map.get_all("dpop").iter().count(), 2);
}
