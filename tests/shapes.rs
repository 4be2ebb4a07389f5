//! Gateways that cannot run on the test machines (Envoy, Istio, ingress-nginx): tollgate is
//! sent the exact request shapes their documentation describes, and the shipped configs
//! for them are parsed.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::*;
use tollgate::signing::SigningKey;

const ROUTES: &str = "[[routes]]\npath_prefix = \"/public\"\npublic = true\n[[routes]]\npath_prefix = \"/admin\"\nscopes = [\"write:admin\"]\n";

/// Envoy ext_authz, HTTP mode. Per the v3 API reference
/// (envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/ext_authz/v3/ext_authz.proto,
/// `HttpService` and `AuthorizationRequest`): the check uses the original request's method,
/// its path prefixed with `path_prefix`, the `Host` header, `Content-Length: 0`, and only the
/// headers matched by `allowed_headers` (here authorization, dpop, x-forwarded-proto as in
/// deploy/envoy/envoy.yaml); Envoy adds `x-envoy-*` and `x-request-id` of its own.
fn envoy_check<'a>(
    method: &'a str,
    path_and_query: &'a str,
    extra: &[(&'a str, &'a str)],
) -> axum::http::Request<axum::body::Body> {
    let mut headers = vec![
        ("host", "api.example.com"),
        ("content-length", "0"),
        ("x-forwarded-proto", "https"),
        ("x-request-id", "8f4e2d1c-0000-4000-8000-000000000000"),
        ("x-envoy-expected-rq-timeout-ms", "2000"),
        ("x-envoy-internal", "true"),
    ];
    headers.extend_from_slice(extra);
    request(method, &format!("/auth{path_and_query}"), &headers)
}

#[tokio::test]
async fn envoy_ext_authz_requests_are_judged_as_the_original_request() {
    let app = TestApp::with_gateway("envoy", ROUTES).await;
    let reader = format!("Bearer {}", app.token().sign());
    let ok = app.send(envoy_check("GET", "/orders/1?expand=items", &[("authorization", &reader)])).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.header("x-auth-subject"), Some("user1"));
    let denied = app.send(envoy_check("POST", "/admin/users", &[("authorization", &reader)])).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert!(denied.challenges()[0].contains("scope=\"write:admin\""));
    let public = app.send(envoy_check("GET", "/public/status", &[])).await;
    assert_eq!(public.status, StatusCode::OK);
    let missing = app.send(envoy_check("GET", "/orders", &[])).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    // A client header that Envoy would drop (not in allowed_headers) changes nothing anyway.
    let spoofed = app
        .send(envoy_check("POST", "/admin/users", &[("authorization", &reader), ("x-original-url", "/public")]))
        .await;
    assert_eq!(spoofed.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn envoy_dpop_uses_the_host_and_forwarded_proto_of_the_check() {
    let app = TestApp::with_gateway("envoy", ROUTES).await;
    let client = SigningKey::p256("c").unwrap();
    let token = app.token().claim("cnf", json!({"jkt": jkt(&client)})).sign();
    let proof = ProofBuilder::new(&client, "GET", "https://api.example.com/orders/1", &token, app.now()).sign();
    let auth = format!("DPoP {token}");
    let answer = app.send(envoy_check("GET", "/orders/1?x=1", &[("authorization", &auth), ("dpop", &proof)])).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header("x-auth-scheme"), Some("DPoP"));
}

/// ingress-nginx `auth-url`. Per its annotation docs
/// (kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/annotations/#external-authentication)
/// and its nginx template (rootfs/etc/nginx/template/nginx.tmpl, the auth location): the
/// subrequest carries the client's headers plus `X-Original-URL $scheme://$http_host$request_uri`,
/// `X-Original-Method $request_method`, `X-Sent-From nginx-ingress-controller`,
/// `X-Real-IP`, `X-Forwarded-For` and `X-Auth-Request-Redirect $request_uri`.
fn ingress_check<'a>(
    method: &'a str,
    url: &'a str,
    extra: &[(&'a str, &'a str)],
) -> axum::http::Request<axum::body::Body> {
    let mut headers = vec![
        ("host", "tollgate.auth.svc.cluster.local:8080"),
        ("x-original-url", url),
        ("x-original-method", method),
        ("x-sent-from", "nginx-ingress-controller"),
        ("x-real-ip", "203.0.113.7"),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-auth-request-redirect", "/ignored"),
    ];
    headers.extend_from_slice(extra);
    request("GET", "/auth", &headers)
}

#[tokio::test]
async fn ingress_nginx_auth_url_requests_are_judged_by_x_original_url() {
    let app = TestApp::with_gateway("ingress-nginx", ROUTES).await;
    let reader = format!("Bearer {}", app.token().sign());
    let ok = app.send(ingress_check("GET", "https://api.example.com/orders?x=1", &[("authorization", &reader)])).await;
    assert_eq!(ok.status, StatusCode::OK);
    let denied =
        app.send(ingress_check("DELETE", "https://api.example.com/admin/x", &[("authorization", &reader)])).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    // The client's own X-Original-URI / X-Forwarded-Uri pass through ingress-nginx and are ignored.
    let spoofed = app
        .send(ingress_check(
            "DELETE",
            "https://api.example.com/admin/x",
            &[
                ("authorization", &reader),
                ("x-original-uri", "/public"),
                ("x-forwarded-uri", "/public"),
                ("x-forwarded-method", "GET"),
            ],
        ))
        .await;
    assert_eq!(spoofed.status, StatusCode::FORBIDDEN);
    assert_eq!(app.send(ingress_check("GET", "https://api.example.com/public/x", &[])).await.status, StatusCode::OK);
}

#[tokio::test]
async fn ingress_nginx_dpop_uses_the_scheme_and_host_of_x_original_url() {
    let app = TestApp::with_gateway("ingress-nginx", ROUTES).await;
    let client = SigningKey::p256("c").unwrap();
    let token = app.token().claim("cnf", json!({"jkt": jkt(&client)})).sign();
    let proof = ProofBuilder::new(&client, "POST", "https://api.example.com:8443/orders", &token, app.now()).sign();
    let auth = format!("DPoP {token}");
    let answer = app
        .send(ingress_check(
            "POST",
            "https://api.example.com:8443/orders?x=1",
            &[("authorization", &auth), ("dpop", &proof)],
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[test]
fn every_shipped_tollgate_config_is_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let gateway = entry.unwrap().path();
        let toml = gateway.join("tollgate.toml");
        if toml.exists() {
            let text = std::fs::read_to_string(&toml).unwrap();
            tollgate::config::Config::load(&text, &Default::default())
                .unwrap_or_else(|e| panic!("{}: {e}", toml.display()));
            checked += 1;
        }
    }
    assert!(checked >= 3, "checked {checked}");
    let example = include_str!("../config/tollgate.toml");
    tollgate::config::Config::load(example, &Default::default()).unwrap();
}

#[test]
fn the_kubernetes_configmaps_hold_valid_configs() {
    for manifest in
        [include_str!("../deploy/kubernetes/sidecar.yaml"), include_str!("../deploy/kubernetes/shared.yaml")]
    {
        let block = manifest.split("tollgate.toml: |\n").nth(1).expect("a ConfigMap with tollgate.toml");
        let text: String = block
            .lines()
            .take_while(|l| l.starts_with("    ") || l.is_empty())
            .map(|l| format!("{}\n", l.trim_start()))
            .collect();
        tollgate::config::Config::load(&text, &Default::default()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }
}
