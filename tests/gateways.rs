//! The gateway dialects through the real router: each reads only its own headers, and the
//! headers of the others (which a client can send through any gateway) change nothing.

mod support;

use axum::http::StatusCode;
use support::*;

const ROUTES: &str = "[[routes]]\npath_prefix = \"/public\"\npublic = true\n[[routes]]\npath_prefix = \"/admin\"\nscopes = [\"write:admin\"]\n";

/// Headers a client adds to make `POST /admin` look like a request for `/public`.
const SPOOFS: &[(&str, &str)] = &[
    ("x-original-url", "https://api.example.com/public"),
    ("x-original-uri", "/public"),
    ("x-original-method", "GET"),
    ("x-forwarded-uri", "/public"),
    ("x-forwarded-method", "GET"),
];

/// The dialect's own description of `POST /admin/x`, and the check path to call.
fn own_headers(gateway: &str) -> (&'static str, Vec<(&'static str, &'static str)>) {
    match gateway {
        "nginx" => (
            "",
            vec![
                ("x-original-method", "POST"),
                ("x-original-uri", "/admin/x"),
                ("x-forwarded-host", "api.example.com"),
                ("x-forwarded-proto", "https"),
            ],
        ),
        "ingress-nginx" => {
            ("", vec![("x-original-method", "POST"), ("x-original-url", "https://api.example.com/admin/x")])
        }
        "traefik" | "caddy" => (
            "",
            vec![
                ("x-forwarded-method", "POST"),
                ("x-forwarded-uri", "/admin/x"),
                ("x-forwarded-host", "api.example.com"),
                ("x-forwarded-proto", "https"),
            ],
        ),
        "envoy" => ("/admin/x", vec![("host", "api.example.com"), ("x-forwarded-proto", "https")]),
        _ => unreachable!(),
    }
}

async fn check_admin(app: &TestApp, gateway: &str, spoof: bool) -> Answer {
    let (path, own) = own_headers(gateway);
    let own_names: Vec<&str> = own.iter().map(|(n, _)| *n).collect();
    let mut headers = own.clone();
    if spoof {
        headers.extend(SPOOFS.iter().filter(|(n, _)| !own_names.contains(n)));
    }
    let auth = format!("Bearer {}", app.token().sign());
    headers.push(("authorization", &auth));
    let method = if gateway == "envoy" { "POST" } else { "GET" };
    app.send(request(method, &format!("/auth{path}"), &headers)).await
}

#[tokio::test]
async fn every_dialect_ignores_the_headers_of_the_others() {
    for gateway in ["nginx", "ingress-nginx", "traefik", "caddy", "envoy"] {
        let app = TestApp::with_gateway(gateway, ROUTES).await;
        for spoof in [false, true] {
            let answer = check_admin(&app, gateway, spoof).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{gateway}, spoofed: {spoof}");
            assert!(answer.challenges()[0].contains("scope=\"write:admin\""), "{gateway}");
        }
    }
}

#[tokio::test]
async fn a_trusted_gateway_without_its_headers_gets_500() {
    for gateway in ["nginx", "ingress-nginx", "traefik", "caddy"] {
        let app = TestApp::with_gateway(gateway, ROUTES).await;
        let auth = format!("Bearer {}", app.token().sign());
        let answer = app.get("/admin/x", &[("authorization", &auth)]).await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR, "{gateway}");
        assert!(answer.challenges().is_empty());
        assert_eq!(
            answer.body,
            r#"{"error":"server_error","error_description":"gateway did not describe the original request"}"#
                .to_string()
                + "\n"
        );
        // Only the other dialects' headers: still a misconfiguration, never a request for /public.
        let mut spoofed: Vec<(&str, &str)> = SPOOFS.to_vec();
        let (_, own) = own_headers(gateway);
        spoofed.retain(|(n, _)| !own.iter().any(|(o, _)| o == n));
        spoofed.push(("authorization", &auth));
        assert_eq!(app.get("", &spoofed).await.status, StatusCode::INTERNAL_SERVER_ERROR, "{gateway}");
    }
}

#[tokio::test]
async fn an_untrusted_peer_without_gateway_headers_is_judged_by_its_own_request() {
    let mut app = TestApp::with_gateway("nginx", ROUTES).await;
    app.peer = "127.0.0.2:40000".parse().unwrap();
    let auth = format!("Bearer {}", app.token().sign());
    // Its X-Forwarded-* are not believed either; its own path /admin/x is judged.
    let headers = [("x-forwarded-host", "public.example"), ("authorization", auth.as_str())];
    let answer = app.send(request("GET", "/auth/admin/x", &headers)).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = app.send(request("GET", "/auth/public/x", &[])).await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn a_gateway_outside_the_trust_list_gets_500_and_is_counted() {
    for gateway in ["nginx", "ingress-nginx", "traefik", "caddy"] {
        let mut app = TestApp::with_gateway(gateway, ROUTES).await;
        app.peer = "172.17.0.1:40000".parse().unwrap();
        let auth = format!("Bearer {}", app.token().sign());
        // The gateway's description of `POST /admin/x`: judged as `/auth` it would pass.
        let (_, mut headers) = own_headers(gateway);
        headers.push(("authorization", &auth));
        let answer = app.send(request("GET", "/auth", &headers)).await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR, "{gateway}");
        assert!(answer.challenges().is_empty(), "{gateway}");
        assert_eq!(
            answer.body,
            r#"{"error":"server_error","error_description":"gateway not trusted to describe the original request"}"#
                .to_string()
                + "\n"
        );
        let metrics = app.send(request("GET", "/metrics", &[])).await.body;
        assert!(
            metrics.contains(r#"tollgate_checks_total{door="http",outcome="error",reason="untrusted_gateway"} 1"#),
            "{gateway}: {metrics}"
        );
    }
}

#[tokio::test]
async fn ambiguous_forwarding_values_are_invalid_requests() {
    let app = TestApp::with_gateway("nginx", ROUTES).await;
    let auth = format!("Bearer {}", app.token().sign());
    for (name, value) in [("x-forwarded-host", "evil.example, api.example.com"), ("x-forwarded-proto", "javascript")] {
        let headers =
            [("x-original-method", "GET"), ("x-original-uri", "/r"), (name, value), ("authorization", auth.as_str())];
        let answer = app.get("", &headers).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{name}");
        assert!(answer.challenges()[0].contains("invalid forwarded request header"));
    }
}

#[tokio::test]
async fn a_query_on_the_check_itself_is_ignored() {
    let app = TestApp::with_gateway("caddy", ROUTES).await;
    let headers = [("x-forwarded-method", "GET"), ("x-forwarded-uri", "/public/x?a=1")];
    let answer = app.send(request("GET", "/auth?a=1&access_token=x", &headers)).await;
    assert_eq!(answer.status, StatusCode::OK);
}
