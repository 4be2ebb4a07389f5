//! Interop vectors: access tokens and DPoP proofs made by an independent implementation
//! (PyJWT on Python's `cryptography`, `tests/vectors/make_vectors.py`), and the published
//! examples of RFC 7638 and RFC 9449, each with the verdict tollgate must reach: "ok" or
//! the `Reason::label()` of the refusal. See `tests/vectors/README.md`.
//!
//! The library is called directly, at each vector's `now`, the way `decision` sequences it:
//! - `token`: `token::verify`;
//! - `proof`: `token::verify` of the bound token, its `cnf.jkt` (`token_not_bound` when
//!   absent), then `proof::verify`;
//! - `rfc_proof`: `proof::verify` alone, the RFC's access token being opaque;
//! - `thumbprint`: `proof::thumbprint`, compared with the expected thumbprint.

use std::collections::BTreeMap;

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use tollgate::config::{IssuerConfig, ProofAlgorithm};
use tollgate::dpop::proof::{self, Expected, ProofSettings};
use tollgate::issuer::KeySet;
use tollgate::refusal::Reason;
use tollgate::token;

const VECTORS: &str = include_str!("vectors/interop.json");

/// The kinds of vector this file knows how to run.
const KINDS: [&str; 4] = ["token", "proof", "rfc_proof", "thumbprint"];

struct Vectors {
    keys: KeySet,
    vectors: Vec<Value>,
}

fn load() -> Vectors {
    let file: Value = serde_json::from_str(VECTORS).expect("interop.json is JSON");
    let jwks = serde_json::to_vec(&file["jwks"]).expect("jwks");
    let (keys, skipped) = KeySet::parse(&jwks).expect("the vectors' JWKS parses");
    assert!(skipped.is_empty(), "keys of the vectors' JWKS were skipped: {skipped:?}");
    let vectors = file["vectors"].as_array().expect("a vectors array").clone();
    Vectors { keys, vectors }
}

/// "ok" or the refusal's label.
fn verdict<T>(result: Result<T, Reason>) -> String {
    match result {
        Ok(_) => "ok".to_string(),
        Err(reason) => reason.label().to_string(),
    }
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_else(|| panic!("{}: field {field:?} is not a string", v["name"]))
}

fn int(v: &Value, field: &str) -> i64 {
    v[field].as_i64().unwrap_or_else(|| panic!("{}: field {field:?} is not an integer", v["name"]))
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    let list = v[field].as_array().unwrap_or_else(|| panic!("{}: field {field:?} is not an array", v["name"]));
    list.iter().map(|s| s.as_str().expect("a string").to_string()).collect()
}

fn issuer_config(v: &Value) -> IssuerConfig {
    let algorithms = strings(v, "token_algorithms")
        .iter()
        .map(|name| name.parse::<Algorithm>().unwrap_or_else(|_| panic!("{}: unknown algorithm {name}", v["name"])))
        .collect();
    IssuerConfig {
        issuer: text(v, "issuer").to_string(),
        audiences: vec![text(v, "audience").to_string()],
        algorithms,
        leeway: int(v, "leeway"),
        required_claims: vec![],
    }
}

fn proof_settings(v: &Value) -> ProofSettings {
    ProofSettings {
        algorithms: strings(v, "proof_algorithms")
            .iter()
            .map(|name| {
                ProofAlgorithm::from_name(name).unwrap_or_else(|| panic!("{}: unknown algorithm {name}", v["name"]))
            })
            .collect(),
        iat_leeway: int(v, "iat_leeway"),
        iat_offset: int(v, "iat_offset"),
    }
}

fn verify_proof(v: &Value, jkt: &str) -> Result<proof::VerifiedProof, Reason> {
    let expected = Expected { method: text(v, "method"), htu: text(v, "htu"), access_token: text(v, "token"), jkt };
    proof::verify(text(v, "proof"), &expected, &proof_settings(v), int(v, "now"))
}

/// Runs one vector; `Err` describes a mismatch.
fn check(keys: &KeySet, v: &Value) -> Result<(), String> {
    let name = text(v, "name");
    let expected = text(v, "expected");
    let got = match text(v, "kind") {
        "token" => verdict(token::verify(text(v, "token"), keys, &issuer_config(v), int(v, "now"))),
        "proof" => match token::verify(text(v, "token"), keys, &issuer_config(v), int(v, "now")) {
            Err(reason) => reason.label().to_string(),
            Ok(token) => match token.jkt() {
                None => Reason::TokenNotBound.label().to_string(),
                Some(jkt) => {
                    // The Python thumbprint of the client key is the token's binding.
                    if let Some(want) = v["jkt"].as_str()
                        && jkt != want
                    {
                        return Err(format!("{name}: the token's cnf.jkt {jkt} is not the vector's jkt {want}"));
                    }
                    verdict(verify_proof(v, jkt))
                }
            },
        },
        "rfc_proof" => verdict(verify_proof(v, text(v, "jkt"))),
        "thumbprint" => {
            let jwk: &Map<String, Value> = v["jwk"].as_object().expect("jwk is an object");
            proof::thumbprint(jwk).unwrap_or_else(|reason| reason.label().to_string())
        }
        other => return Err(format!("{name}: unknown kind {other:?}")),
    };
    if got == expected { Ok(()) } else { Err(format!("{name}: expected {expected}, got {got}")) }
}

/// Runs every vector of `kind`; returns how many ran and the mismatches.
fn run(kind: &str) -> (usize, Vec<String>) {
    let Vectors { keys, vectors } = load();
    let of_kind: Vec<&Value> = vectors.iter().filter(|v| v["kind"] == kind).collect();
    let mismatches = of_kind.iter().filter_map(|v| check(&keys, v).err()).collect();
    (of_kind.len(), mismatches)
}

fn assert_all_match(kind: &str, at_least: usize) {
    let (ran, mismatches) = run(kind);
    for mismatch in &mismatches {
        eprintln!("mismatch: {mismatch}");
    }
    assert!(
        mismatches.is_empty(),
        "{} of {ran} {kind} vectors mismatched:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(ran >= at_least, "only {ran} {kind} vectors, expected at least {at_least}");
}

#[test]
fn tokens_made_by_pyjwt_get_the_expected_verdicts() {
    assert_all_match("token", 20);
}

#[test]
fn proofs_made_by_python_cryptography_get_the_expected_verdicts() {
    assert_all_match("proof", 20);
}

#[test]
fn published_rfc_thumbprints_match() {
    assert_all_match("thumbprint", 2);
}

#[test]
fn the_published_rfc_9449_proofs_get_the_expected_verdicts() {
    assert_all_match("rfc_proof", 2);
}

#[test]
fn every_vector_in_the_file_is_run() {
    let Vectors { keys, vectors } = load();
    let mut ran: BTreeMap<&str, usize> = BTreeMap::new();
    let mut mismatches = Vec::new();
    for v in &vectors {
        let kind = text(v, "kind");
        if !KINDS.contains(&kind) {
            mismatches.push(format!("{}: unknown kind {kind:?}", text(v, "name")));
            continue;
        }
        *ran.entry(kind).or_default() += 1;
        if let Err(mismatch) = check(&keys, v) {
            mismatches.push(mismatch);
        }
    }
    for mismatch in &mismatches {
        eprintln!("mismatch: {mismatch}");
    }
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    let total: usize = ran.values().sum();
    assert_eq!(total, vectors.len(), "vectors run per kind: {ran:?}");
    assert!(total >= 25, "only {total} vectors");
    let mut names: Vec<(&str, &str)> = vectors.iter().map(|v| (text(v, "kind"), text(v, "name"))).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), vectors.len(), "vector names are unique per kind");
}
