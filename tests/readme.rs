//! The README's policy examples, taken from the README itself, parsed and evaluated, so
//! the front page cannot drift from what tollgate does.

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::*;

const README: &str = include_str!("../README.md");

/// The ```toml blocks of the README's "Route policy" section, in order.
fn policy_examples() -> Vec<String> {
    let section = README.split("## Route policy").nth(1).expect("a Route policy section");
    let section = section.split("\n## ").next().unwrap();
    section.split("```toml\n").skip(1).map(|block| block.split("```").next().unwrap().to_string()).collect()
}

async fn get(app: &TestApp, method: &str, host: &str, path: &str, token: Option<&str>) -> StatusCode {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("host", host), ("x-forwarded-proto", "https")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    app.send(request(method, &format!("/auth{path}"), &headers)).await.status
}

#[test]
fn the_readme_has_the_three_policy_examples() {
    assert_eq!(policy_examples().len(), 3);
}

#[tokio::test]
async fn the_scopes_by_method_example_does_what_the_readme_says() {
    let app = TestApp::new(&policy_examples()[0]).await;
    let reader = app.token().claim("scope", json!("read:orders")).sign();
    let admin = app.token().claim("scope", json!("write:admin")).sign();
    assert_eq!(get(&app, "GET", "api.example.com", "/health", None).await, StatusCode::OK);
    assert_eq!(get(&app, "GET", "api.example.com", "/health/deep", None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&app, "DELETE", "api.example.com", "/admin/users/1", Some(&reader)).await, StatusCode::FORBIDDEN);
    assert_eq!(get(&app, "DELETE", "api.example.com", "/admin/users/1", Some(&admin)).await, StatusCode::OK);
    assert_eq!(get(&app, "GET", "api.example.com", "/admin/users", Some(&reader)).await, StatusCode::OK);
    assert_eq!(get(&app, "GET", "api.example.com", "/orders/7", Some(&reader)).await, StatusCode::OK);
    assert_eq!(get(&app, "GET", "api.example.com", "/orders/7", Some(&admin)).await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_rbac_and_organizations_example_does_what_the_readme_says() {
    let app = TestApp::new(&policy_examples()[1]).await;
    let member = app.token().claim("permissions", json!(["read:reports"])).claim("org_id", json!("org_acme")).sign();
    let outsider = app.token().claim("permissions", json!(["read:reports"])).claim("org_id", json!("org_other")).sign();
    let gold = app.token().claim("https://example.com/tier", json!("gold")).sign();
    assert_eq!(get(&app, "GET", "eu.example.com", "/reports/q3", Some(&member)).await, StatusCode::OK);
    assert_eq!(get(&app, "GET", "eu.example.com", "/reports/q3", Some(&outsider)).await, StatusCode::FORBIDDEN);
    assert_eq!(
        get(&app, "GET", "example.org", "/reports/q3", Some(&member)).await,
        StatusCode::FORBIDDEN,
        "default deny"
    );
    assert_eq!(
        get(&app, "GET", "eu.example.com", "/billing", Some(&gold)).await,
        StatusCode::UNAUTHORIZED,
        "DPoP required"
    );
    assert_eq!(get(&app, "GET", "eu.example.com", "/other", Some(&member)).await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_headers_example_does_what_the_readme_says() {
    let app = TestApp::new(&policy_examples()[2]).await;
    let token = app
        .token()
        .claim("email", json!("ana@example.com"))
        .claim("app_metadata", json!({"tenant": "acme"}))
        .claim("https://example.com/roles", json!(["admin", "ops"]))
        .sign();
    let answer = app.bearer(&token).await;
    assert_eq!(answer.header("x-auth-email"), Some("ana@example.com"));
    assert_eq!(answer.header("x-auth-tenant"), Some("acme"));
    assert_eq!(answer.header("x-auth-roles"), Some("admin,ops"));
}

#[test]
fn every_toml_block_in_the_readme_parses() {
    for block in README.split("```toml\n").skip(1).map(|b| b.split("```").next().unwrap()) {
        // Blocks that show one section get the required keys around them.
        let mut text = block.to_string();
        if !text.contains("[issuer]") && !text.contains("[[issuers]]") {
            text = format!("{text}\n[issuer]\nurl = \"https://t.example/\"\naudience = \"a\"\n");
        }
        if !text.contains("[proxy]") {
            text = format!("{text}\n[proxy]\ngateway = \"nginx\"\n");
        }
        // Exchange examples show their routes alone; the secret file of the full example
        // does not exist on a test machine.
        if text.contains("exchange = ") && !text.contains("[client]") {
            text = format!("{text}\n[client]\nclient_id = \"c\"\nclient_secret = \"s\"\n");
        }
        text = text.replace("client_secret_file = \"/run/secrets/tollgate-client\"", "client_secret = \"s\"");
        if text.contains("nonce = true") && !text.contains("\nnonce_secret") {
            text = text.replace("nonce = true", "nonce = true\nnonce_secret = \"0123456789abcdef0123456789abcdef\"");
        }
        tollgate::config::Config::load(&text, &Default::default()).unwrap_or_else(|e| panic!("{e}\n{block}"));
    }
}
