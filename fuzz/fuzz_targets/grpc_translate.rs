//! The gRPC request mapping (`tollgate::grpc::translate`): Envoy's `CheckRequest`
//! `attributes.request.http` to the original request and its headers, as the gRPC door
//! hands them to the decision.
//!
//! Input: a first byte (bit 0: headers as `header_map`, Envoy's `encode_raw_headers`,
//! else the `headers` map; bit 1: raw values in `raw_value`, else in `value`), lines
//! with the method, scheme, host and path, then the headers, one `name: value` per line
//! (any bytes in a raw value).
//!
//! Asserted: no panic; an accepted request holds what every front door's does
//! (`check_original_request` in src/lib.rs), keeps the method as sent, has a host
//! exactly when one was given, and comes with at most `MAX_HEADERS` headers, no pseudo-header.
#![no_main]

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use libfuzzer_sys::fuzz_target;
use tollgate::grpc::{MAX_HEADERS, translate};
use tollgate_fuzz::{check_original_request, line, text_line};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let Some((method, rest)) = text_line(rest) else { return };
    let Some((scheme, rest)) = text_line(rest) else { return };
    let Some((host, rest)) = text_line(rest) else { return };
    let Some((path, mut rest)) = text_line(rest) else { return };
    let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
    while !rest.is_empty() {
        let (header, after) = line(rest);
        rest = after;
        let Some(colon) = header.iter().position(|b| *b == b':').filter(|i| *i > 0) else { continue };
        let Ok(name) = std::str::from_utf8(&header[..colon]) else { continue };
        let value = &header[colon + 1..];
        pairs.push((name.to_string(), value.strip_prefix(b" ").unwrap_or(value).to_vec()));
    }
    let mut http = HttpRequest {
        method: method.to_string(),
        scheme: scheme.to_string(),
        host: host.to_string(),
        path: path.to_string(),
        ..Default::default()
    };
    if flags & 1 != 0 {
        let raw = flags & 2 != 0;
        let headers = pairs
            .iter()
            .map(|(key, value)| HeaderValue {
                key: key.clone(),
                value: if raw { String::new() } else { String::from_utf8_lossy(value).into_owned() },
                raw_value: if raw { value.clone() } else { Vec::new() },
            })
            .collect();
        http.header_map = Some(HeaderMap { headers });
    } else {
        // Envoy's map holds one value per name, repeats already joined.
        let mut map: HashMap<String, String> = HashMap::new();
        for (key, value) in &pairs {
            map.insert(key.clone(), String::from_utf8_lossy(value).into_owned());
        }
        http.headers = map;
    }
    let Ok((request, headers)) = translate(&http) else { return };
    check_original_request(&request);
    assert_eq!(request.method(), method);
    assert_eq!(request.host().is_some(), !host.is_empty());
    assert!(headers.len() <= MAX_HEADERS);
    assert!(headers.keys().all(|name| !name.as_str().starts_with(':')));
});
