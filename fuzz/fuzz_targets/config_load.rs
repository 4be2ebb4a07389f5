//! Config parsing (`tollgate::config::Config::load`) on arbitrary TOML text and
//! environment maps.
//!
//! Input: the TOML text, then (after the first NUL byte) the environment, one
//! `NAME=value` per line.
//!
//! Asserted: no panic; loading the same sources twice gives the same verdict; a refusal
//! names at least one key, each non-empty, and displays; an accepted config describes
//! itself (`describe`), yields challenge settings whose realm is RFC 6750 quoted text,
//! and its routes make a policy that can route and explain a request.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use tollgate::config::{self, Config};
use tollgate::gateway::OriginalRequest;
use tollgate::policy::Policy;

fuzz_target!(|data: &[u8]| {
    let (text, env) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let env: HashMap<String, String> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let loaded = Config::load(text, &env);
    let again = Config::load(text, &env);
    assert_eq!(loaded.as_ref().err(), again.as_ref().err(), "two loads disagree");
    let config = match loaded {
        Ok(config) => config,
        Err(refused) => {
            assert!(!refused.problems.is_empty() && refused.problems.iter().all(|p| !p.key.is_empty()));
            let _ = refused.to_string();
            return;
        }
    };
    let _ = config::describe(&config);
    let settings = config.challenge_settings();
    assert!(!settings.realm.is_empty());
    assert!(settings.realm.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)));
    let policy = Policy::new(config.routes.clone(), config.default, config.path_matching);
    for (method, host, uri) in [
        ("GET", Some("api.example.com"), "/"),
        ("POST", Some("Admin.Example.com:8443"), "/admin/x.json?_method=DELETE"),
    ] {
        if let Ok(request) = OriginalRequest::new(method, "https", host, uri) {
            let _ = policy.route(&request);
            let _ = policy.explain(&request);
            let _ = policy.summary(&request);
        }
    }
});
