use super::*;
use crate::signing::SigningKey;
use serde_json::json;

fn parse(keys: Vec<Value>) -> Result<(KeySet, Vec<Skipped>), JwksError> {
    KeySet::parse(json!({ "keys": keys }).to_string().as_bytes())
}

fn rsa_jwk(kid: &str) -> Value {
    SigningKey::rsa(kid).unwrap().public_jwk()
}

fn skipped_why(entry: Value) -> &'static str {
    let (_, skipped) = parse(vec![rsa_jwk("good"), entry]).unwrap();
    assert_eq!(skipped.len(), 1);
    skipped[0].why
}

#[test]
fn rsa_and_p256_keys_are_loaded() {
    let ec = SigningKey::p256("e1").unwrap().public_jwk();
    let (set, skipped) = parse(vec![rsa_jwk("r1"), ec]).unwrap();
    assert_eq!((set.len(), skipped.len()), (2, 0));
    assert_eq!(set.candidates("r1", Algorithm::RS256).count(), 1);
    assert_eq!(set.candidates("r1", Algorithm::PS256).count(), 1);
    assert_eq!(set.candidates("e1", Algorithm::ES256).count(), 1);
    assert_eq!(set.candidates("r1", Algorithm::ES256).count(), 0, "a kid never lends its key to another family");
}

#[test]
fn a_jwk_alg_restricts_the_key() {
    let mut jwk = rsa_jwk("r1");
    jwk["alg"] = json!("RS384");
    let (set, _) = parse(vec![jwk]).unwrap();
    assert_eq!(set.candidates("r1", Algorithm::RS256).count(), 0);
    assert_eq!(set.candidates("r1", Algorithm::RS384).count(), 1);
}

#[test]
fn small_rsa_moduli_are_skipped() {
    let mut jwk = rsa_jwk("small");
    jwk["n"] = json!(jws::encode(&[0xC5; 128]));
    assert_eq!(skipped_why(jwk), "RSA modulus not between 2048 and 8192 bits");
}

#[test]
fn rsa_exponent_one_or_even_is_skipped() {
    for e in [vec![1u8], vec![2], vec![0, 0, 1], vec![1, 0, 0, 0, 1]] {
        let mut jwk = rsa_jwk("e");
        jwk["e"] = json!(jws::encode(&e));
        assert_eq!(skipped_why(jwk), "RSA exponent not an odd number above 1", "{e:?}");
    }
}

#[test]
fn ec_points_off_the_curve_or_of_the_wrong_length_are_skipped() {
    let mut off = SigningKey::p256("e").unwrap().public_jwk();
    off["y"] = json!(jws::encode(&[7; 32]));
    assert_eq!(skipped_why(off), "EC point not on the curve");
    let mut short = SigningKey::p256("e").unwrap().public_jwk();
    short["x"] = json!(jws::encode(&[7; 31]));
    assert_eq!(skipped_why(short), "EC coordinate of the wrong length");
    let mut k1 = SigningKey::p256("e").unwrap().public_jwk();
    k1["crv"] = json!("secp256k1");
    assert_eq!(skipped_why(k1), "unsupported EC curve");
}

#[test]
fn symmetric_encryption_and_private_keys_are_skipped() {
    assert_eq!(skipped_why(json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"})), "holds private key members");
    let mut enc = rsa_jwk("enc");
    enc["use"] = json!("enc");
    assert_eq!(skipped_why(enc), "use is not sig");
    let mut private = rsa_jwk("p");
    private["d"] = json!("AQAB");
    assert_eq!(skipped_why(private), "holds private key members");
    assert_eq!(skipped_why(json!({"kty": "XYZ"})), "unsupported kty");
    assert_eq!(skipped_why(json!(7)), "not a JSON object");
}

#[test]
fn a_key_set_without_usable_keys_is_refused() {
    assert_eq!(parse(vec![]).unwrap_err(), JwksError::NoUsableKey);
    assert_eq!(parse(vec![json!({"kty": "oct"})]).unwrap_err(), JwksError::NoUsableKey);
}

#[test]
fn documents_that_are_not_key_sets_are_refused() {
    for body in ["<html>", "{}", r#"{"keys":{}}"#, r#"{"keys":"x"}"#, "[1]", r#"{"keys":[{"#] {
        assert_eq!(KeySet::parse(body.as_bytes()).unwrap_err(), JwksError::NotAKeySet, "{body}");
    }
}

#[test]
fn more_than_a_hundred_keys_are_refused() {
    let jwk = rsa_jwk("r");
    let many = vec![jwk; MAX_KEYS + 1];
    assert_eq!(parse(many).unwrap_err(), JwksError::TooManyKeys(MAX_KEYS + 1));
}

#[test]
fn a_removed_kid_is_noticed() {
    let (old, _) = parse(vec![rsa_jwk("k1"), rsa_jwk("k2")]).unwrap();
    let (new, _) = parse(vec![rsa_jwk("k2"), rsa_jwk("k3")]).unwrap();
    assert!(old.loses_keys_in(&new));
    assert!(!new.loses_keys_in(&parse(vec![rsa_jwk("k2"), rsa_jwk("k3"), rsa_jwk("k4")]).unwrap().0));
}

#[test]
fn a_kidless_token_uses_the_only_fitting_key() {
    let (one, _) = parse(vec![rsa_jwk("k1"), SigningKey::p256("e").unwrap().public_jwk()]).unwrap();
    assert!(one.only_key_for(Algorithm::RS256).is_some());
    let (two, _) = parse(vec![rsa_jwk("k1"), rsa_jwk("k2")]).unwrap();
    assert!(two.only_key_for(Algorithm::RS256).is_none());
}
