//! Signing keys: RSA (RS256, PS256) and P-256 (ES256) private keys with their key id, as
//! PKCS#8 PEM files, and compact JWS signing (RFC 7515 §3.1). tollgate signs with them in
//! two places: its `private_key_jwt` client assertion (RFC 7523) for token exchange, and
//! the development issuer's tokens and `tollgate proof`'s DPoP proofs ([`crate::dev`]).

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _};
use serde_json::{Value, json};

use crate::jws;

/// A private signing key with its key id. RSA signs RS256 and PS256; P-256 signs ES256.
pub struct SigningKey {
    kid: String,
    pair: Pair,
}

enum Pair {
    Rsa(RsaKeyPair),
    P256(EcdsaKeyPair),
}

/// Why a key could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("key generation failed")]
    KeyGeneration,
    #[error("algorithm {0} does not fit this key")]
    WrongAlgorithm(String),
    #[error("signing failed")]
    Signing,
    #[error("not a PKCS#8 PEM P-256 private key (make one with `tollgate proof --key FILE --new`)")]
    KeyFile,
    #[error("not a PKCS#8 PEM RSA private key of 2048 bits or more (remove it to get a new one)")]
    RsaKeyFile,
}

impl SigningKey {
    /// A fresh 2048-bit RSA key.
    pub fn rsa(kid: &str) -> Result<Self, SignError> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| SignError::KeyGeneration)?;
        Ok(SigningKey { kid: kid.into(), pair: Pair::Rsa(pair) })
    }

    /// A fresh P-256 key.
    pub fn p256(kid: &str) -> Result<Self, SignError> {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| SignError::KeyGeneration)?;
        Self::p256_from_pkcs8(kid, pkcs8.as_ref()).map_err(|_| SignError::KeyGeneration)
    }

    fn p256_from_pkcs8(kid: &str, der: &[u8]) -> Result<Self, SignError> {
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| SignError::KeyFile)?;
        Ok(SigningKey { kid: kid.into(), pair: Pair::P256(pair) })
    }

    /// A P-256 key from PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as `openssl genpkey` writes).
    pub fn p256_from_pem(kid: &str, pem: &str) -> Result<Self, SignError> {
        let der = pem_der(pem).ok_or(SignError::KeyFile)?;
        Self::p256_from_pkcs8(kid, &der)
    }

    /// An RSA key from PKCS#8 PEM, as [`to_pem`](Self::to_pem) writes it.
    pub fn rsa_from_pem(kid: &str, pem: &str) -> Result<Self, SignError> {
        let der = pem_der(pem).ok_or(SignError::RsaKeyFile)?;
        let pair = RsaKeyPair::from_pkcs8(&der).map_err(|_| SignError::RsaKeyFile)?;
        Ok(SigningKey { kid: kid.into(), pair: Pair::Rsa(pair) })
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<String, SignError> {
        use aws_lc_rs::encoding::AsDer;
        use base64::Engine as _;
        let der: Vec<u8> = match &self.pair {
            Pair::P256(pair) => pair.to_pkcs8v1().map_err(|_| SignError::KeyFile)?.as_ref().to_vec(),
            Pair::Rsa(pair) => pair.as_der().map_err(|_| SignError::RsaKeyFile)?.as_ref().to_vec(),
        };
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).filter_map(|c| std::str::from_utf8(c).ok()).collect();
        Ok(format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n")))
    }

    /// The RFC 7638 thumbprint of the public key: what a bound token's `cnf.jkt` holds.
    pub fn jkt(&self) -> String {
        let members = self.thumbprint_members();
        let Value::Object(members) = members else { return String::new() };
        jws::thumbprint(&members).unwrap_or_default()
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The same key again (through its PKCS#8 form).
    pub fn clone_key(&self) -> Result<SigningKey, std::io::Error> {
        let pem = self.to_pem().map_err(std::io::Error::other)?;
        let copy = match self.pair {
            Pair::Rsa(_) => Self::rsa_from_pem(&self.kid, &pem),
            Pair::P256(_) => Self::p256_from_pem(&self.kid, &pem),
        };
        copy.map_err(std::io::Error::other)
    }

    /// The algorithm this key signs with by default.
    pub fn default_alg(&self) -> &'static str {
        match self.pair {
            Pair::Rsa(_) => "RS256",
            Pair::P256(_) => "ES256",
        }
    }

    /// The public JWK, with `kid`, `use` and no `alg` (so RSA serves RS256 and PS256).
    pub fn public_jwk(&self) -> Value {
        let mut jwk = self.thumbprint_members();
        jwk["kid"] = json!(self.kid);
        jwk["use"] = json!("sig");
        jwk
    }

    /// The required public members only (RFC 7638 §3.2), e.g. for a DPoP proof's `jwk`.
    pub fn thumbprint_members(&self) -> Value {
        match &self.pair {
            Pair::Rsa(pair) => {
                let public = pair.public_key();
                json!({
                    "kty": "RSA",
                    "n": jws::encode(public.modulus().big_endian_without_leading_zero()),
                    "e": jws::encode(public.exponent().big_endian_without_leading_zero()),
                })
            }
            Pair::P256(pair) => {
                let point = pair.public_key().as_ref();
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": jws::encode(&point[1..33]),
                    "y": jws::encode(&point[33..65]),
                })
            }
        }
    }

    /// Signs `message` with `alg`.
    pub fn sign(&self, alg: &str, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let rng = SystemRandom::new();
        match (&self.pair, alg) {
            (Pair::Rsa(pair), "RS256" | "PS256") => {
                let padding: &'static dyn signature::RsaEncoding =
                    if alg == "RS256" { &signature::RSA_PKCS1_SHA256 } else { &signature::RSA_PSS_SHA256 };
                let mut sig = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &rng, message, &mut sig).map_err(|_| SignError::Signing)?;
                Ok(sig)
            }
            (Pair::P256(pair), "ES256") => {
                pair.sign(&rng, message).map(|s| s.as_ref().to_vec()).map_err(|_| SignError::Signing)
            }
            _ => Err(SignError::WrongAlgorithm(alg.into())),
        }
    }

    /// A compact JWS of `header` and `payload` as given (the header's `alg` is used as is).
    pub fn sign_jws(&self, header: &Value, payload: &Value) -> Result<String, SignError> {
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or(self.default_alg());
        let signing_input =
            format!("{}.{}", jws::encode(header.to_string().as_bytes()), jws::encode(payload.to_string().as_bytes()));
        let sig = self.sign(alg, signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", jws::encode(&sig)))
    }
}

/// The DER inside a `PRIVATE KEY` PEM block.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
        .skip(1)
        .take_while(|l| *l != "-----END PRIVATE KEY-----")
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Writes a private key to a new file (never over an existing one), readable by its owner
/// only (0600 on Unix).
pub fn write_key_file(path: &Path, pem: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, pem.as_bytes())
}
