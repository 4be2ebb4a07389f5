#!/usr/bin/env python3
"""Interop vectors for tollgate, made by an independent implementation.

Access tokens (RFC 9068) and DPoP proofs (RFC 9449) are signed here with PyJWT on top of
Python's `cryptography`, never with tollgate's own code, and each is written out with the
verdict tollgate must reach: "ok" or the exact `Reason::label()` of the refusal. The
published examples of RFC 7638 and RFC 9449 are added as data. tests/interop.rs replays
the file; see tests/vectors/README.md.

Made and checked with (pin these when regenerating):
    Python 3.11
    cryptography==48.0.0
    PyJWT==2.15.1

    pip install cryptography==48.0.0 pyjwt==2.15.1
    python3 tests/vectors/make_vectors.py > tests/vectors/interop.json

Keys are generated afresh on every run, so signatures differ from one run to the next;
every verdict stays the same. Times are fixed: all vectors made here are judged at NOW.
Diagnostics go to stderr; stdout holds only the JSON document.
"""

import base64
import datetime
import hashlib
import hmac
import json
import platform
import sys
import warnings

import cryptography
import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

# --- Fixed settings, written into every vector ---------------------------------------

NOW = 1_800_000_000
ISSUER = "https://issuer.example.com/"
AUDIENCE = "https://api.example.com"
TOKEN_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]
PROOF_ALGORITHMS = ["ES256", "EdDSA", "RS256", "PS256"]
# tollgate's defaults for dpop.iat_leeway and dpop.iat_offset (seconds).
IAT_LEEWAY = 30
IAT_OFFSET = 300
# The normalized request URL tollgate compares `htu` with.
ORDERS = "https://api.example.com/orders"

# --- Published examples ----------------------------------------------------------------

# RFC 7638 §3.1: the example RSA key and its thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Q"
    "vzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6"
    "WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

# RFC 9449 Figure 4: the public key of the example proofs; §6.1 gives its thumbprint.
RFC9449_JWK = {
    "kty": "EC",
    "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
    "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
    "crv": "P-256",
}
RFC9449_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
# RFC 9449 §7.1 Figure 13: the access token (opaque) and its proof at a resource server.
RFC9449_ACCESS_TOKEN = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
RFC9449_ATH = "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
RFC9449_HEADER_B64 = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZ"
    "OXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIs"
    "ImNydiI6IlAtMjU2In19"
)
RFC9449_RESOURCE_PROOF = (
    RFC9449_HEADER_B64
    + ".eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9y"
    "Zy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1"
    "OUlpS0NBcWtzbVFFbyJ9"
    ".2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
)
# RFC 9449 §4.1 Figure 3: the example proof sent to the token endpoint (no `ath`).
RFC9449_TOKEN_PROOF = (
    RFC9449_HEADER_B64
    + ".eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29t"
    "L3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ"
    ".2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
)

# --- Helpers ---------------------------------------------------------------------------


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64u_json(value) -> str:
    return b64u(json.dumps(value, separators=(",", ":")).encode())


def thumbprint(jwk: dict) -> str:
    """RFC 7638 §3: SHA-256 over the required members, sorted, no whitespace."""
    required = {"EC": ["crv", "kty", "x", "y"], "RSA": ["e", "kty", "n"], "OKP": ["crv", "kty", "x"]}
    members = {name: jwk[name] for name in required[jwk["kty"]]}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b64u(hashlib.sha256(canonical.encode("utf-8")).digest())


def access_token_hash(token: str) -> str:
    """RFC 9449 §4.2 `ath`."""
    return b64u(hashlib.sha256(token.encode("ascii")).digest())


def public_jwk(key) -> dict:
    """The public JWK of a private key, exactly as PyJWT writes it."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        return RSAAlgorithm.to_jwk(public, as_dict=True)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ECAlgorithm.to_jwk(public, as_dict=True)
    return OKPAlgorithm.to_jwk(public, as_dict=True)


def private_jwk(key) -> dict:
    if isinstance(key, rsa.RSAPrivateKey):
        return RSAAlgorithm.to_jwk(key, as_dict=True)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECAlgorithm.to_jwk(key, as_dict=True)
    return OKPAlgorithm.to_jwk(key, as_dict=True)


def with_der_signature(token: str, key: ec.EllipticCurvePrivateKey) -> str:
    """Re-signs `token` with an ASN.1 DER ECDSA signature instead of JWS's R ‖ S."""
    header, payload, _ = token.split(".")
    der = key.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    return f"{header}.{payload}.{b64u(der)}"


def log(message: str) -> None:
    print(message, file=sys.stderr)


# --- Keys, generated once per run ------------------------------------------------------

issuer_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
issuer_ec = ec.generate_private_key(ec.SECP256R1())
issuer_ed = ed25519.Ed25519PrivateKey.generate()
# Not in the JWKS: signs tokens that claim to be the issuer's.
stranger_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)

client_ec = ec.generate_private_key(ec.SECP256R1())
client_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
client_ed = ed25519.Ed25519PrivateKey.generate()
# Another client: its proofs are valid in themselves but bound to no token here.
other_ec = ec.generate_private_key(ec.SECP256R1())
# Too small for a DPoP key (RFC 7518 §3.3 asks for 2048 bits or more).
client_rsa_1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)

KIDS = {"rsa": "interop-rsa", "ec": "interop-ec", "ed": "interop-ed"}


def issuer_entry(key, kid: str, **extra) -> dict:
    entry = public_jwk(key)
    entry.update(kid=kid, use="sig", **extra)
    return entry


JWKS = {
    "keys": [
        # The RSA key carries no `alg`: it verifies RS256 and PS256 alike.
        issuer_entry(issuer_rsa, KIDS["rsa"]),
        issuer_entry(issuer_ec, KIDS["ec"], alg="ES256"),
        issuer_entry(issuer_ed, KIDS["ed"], alg="EdDSA"),
    ]
}

JKT_EC = thumbprint(public_jwk(client_ec))
JKT_RSA = thumbprint(public_jwk(client_rsa))
JKT_ED = thumbprint(public_jwk(client_ed))

# --- Access tokens ---------------------------------------------------------------------

_jti = 0


def next_jti(prefix: str) -> str:
    global _jti
    _jti += 1
    return f"{prefix}-{_jti:04d}"


def claims(**changes) -> dict:
    """RFC 9068 §2.2 claims; a value of None removes the claim."""
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "client_id": "interop-client",
        "scope": "orders:read orders:write",
        "iat": NOW - 60,
        "exp": NOW + 3600,
        "jti": next_jti("at"),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


ISSUER_KEYS = {
    "RS256": (issuer_rsa, KIDS["rsa"]),
    "PS256": (issuer_rsa, KIDS["rsa"]),
    "ES256": (issuer_ec, KIDS["ec"]),
    "EdDSA": (issuer_ed, KIDS["ed"]),
}


def token(alg: str = "RS256", key=None, payload=None, **header) -> str:
    """An access token signed by PyJWT; a `typ` of None leaves it out (PyJWT drops it)."""
    issuer_key, kid = ISSUER_KEYS[alg]
    headers = {"typ": "at+jwt", "kid": kid}
    headers.update(header)
    return jwt.encode(payload if payload is not None else claims(), key or issuer_key, algorithm=alg, headers=headers)


def bound_token(jkt: str) -> str:
    return token("ES256", payload=claims(cnf={"jkt": jkt}))


# The tokens the proofs below are presented with.
TOKEN_EC = bound_token(JKT_EC)
TOKEN_RSA = bound_token(JKT_RSA)
TOKEN_ED = bound_token(JKT_ED)
TOKEN_UNBOUND = token("ES256")

vectors: list = []


def token_vector(name: str, tok: str, expected: str, *, algorithms=None, leeway: int = 0, note: str = "") -> None:
    vector = {
        "name": name,
        "kind": "token",
        "token": tok,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "token_algorithms": algorithms or TOKEN_ALGORITHMS,
        "leeway": leeway,
        "now": NOW,
        "expected": expected,
    }
    if note:
        vector["note"] = note
    vectors.append(vector)


# Valid, one per issuer algorithm.
token_vector("rs256_access_token", token("RS256"), "ok")
token_vector("ps256_access_token", token("PS256"), "ok")
token_vector("es256_access_token", token("ES256"), "ok")
token_vector("eddsa_access_token", token("EdDSA"), "ok")
token_vector("dpop_bound_access_token", TOKEN_EC, "ok", note="cnf.jkt is the client's P-256 key thumbprint")
token_vector("audience_as_an_array", token("RS256", payload=claims(aud=["https://other.example.com", AUDIENCE])), "ok")
token_vector("typ_as_full_media_type", token("ES256", typ="application/at+jwt"), "ok")
token_vector(
    "expired_but_within_leeway", token("RS256", payload=claims(iat=NOW - 3600, exp=NOW - 10)), "ok", leeway=30
)
token_vector(
    "typ_jwt_accepted",
    token("RS256", typ="JWT"),
    "ok",
    note="RFC 9068 §4 refuses any typ but at+jwt; tollgate accepts JWT by design (README, What tollgate checks)",
)
token_vector(
    "typ_absent_accepted",
    token("RS256", typ=None),
    "ok",
    note="RFC 9068 §4 refuses a token without typ at+jwt; tollgate accepts a missing typ by design (README)",
)

# Refused claims.
token_vector("expired", token("RS256", payload=claims(iat=NOW - 7200, exp=NOW - 3600)), "expired")
token_vector(
    "expired_at_exactly_now",
    token("ES256", payload=claims(iat=NOW - 3600, exp=NOW)),
    "expired",
    note="RFC 7519 §4.1.4: now must be before exp",
)
token_vector("expired_beyond_leeway", token("RS256", payload=claims(exp=NOW - 31)), "expired", leeway=30)
token_vector("not_yet_valid", token("ES256", payload=claims(nbf=NOW + 600)), "not_yet_valid")
token_vector("wrong_audience", token("RS256", payload=claims(aud="https://other.example.com")), "wrong_audience")
token_vector("wrong_issuer", token("RS256", payload=claims(iss="https://evil.example.com/")), "wrong_issuer")
token_vector(
    "issuer_without_trailing_slash",
    token("RS256", payload=claims(iss=ISSUER.rstrip("/"))),
    "wrong_issuer",
    note="RFC 8414 §3.3 / OIDC Discovery §4.3: issuer identifiers compare exactly",
)
token_vector("exp_missing", token("EdDSA", payload=claims(exp=None)), "missing_claim")
token_vector(
    "exp_as_a_string",
    token("PS256", payload=claims(exp=str(NOW + 3600))),
    "malformed_claims",
    note="RFC 7519 §2: a NumericDate is a JSON number (PyJWT 2.15 itself accepts this token)",
)
token_vector("empty_subject", token("ES256", payload=claims(sub="")), "bad_subject")
token_vector(
    "confirmation_without_jkt",
    token("ES256", payload=claims(cnf={"x5t#S256": b64u(hashlib.sha256(b"certificate").digest())})),
    "unusable_confirmation",
)

# Refused headers and signatures.
ALG_NONE_TOKEN = jwt.encode(claims(), None, algorithm="none", headers={"typ": "at+jwt"})
token_vector("alg_none", ALG_NONE_TOKEN, "algorithm_not_allowed")


def hs256_with_public_pem() -> str:
    """The RS256 → HS256 key-confusion attack: HMAC keyed with the issuer's public key PEM."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    pem = issuer_rsa.public_key().public_bytes(serialization.Encoding.PEM, spki)
    headers = {"typ": "at+jwt", "kid": KIDS["rsa"]}
    try:
        return jwt.encode(claims(), pem, algorithm="HS256", headers=headers)
    except jwt.exceptions.InvalidKeyError:
        # PyJWT refuses an asymmetric key as an HMAC secret; build the token by hand.
        log("PyJWT refused the PEM as an HMAC secret; HS256 token built with hmac")
        signing_input = f"{b64u_json({'alg': 'HS256', **headers})}.{b64u_json(claims())}"
        mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64u(mac)}"


HS256_TOKEN = hs256_with_public_pem()
token_vector("hs256_keyed_with_the_rsa_public_key_pem", HS256_TOKEN, "algorithm_not_allowed")
token_vector(
    "hs256_keyed_with_the_rsa_public_key_pem_even_if_hs256_were_configured",
    HS256_TOKEN,
    "key_algorithm_mismatch",
    algorithms=TOKEN_ALGORITHMS + ["HS256"],
    note="configuration refuses HS256; this shows an RSA key still never verifies an HMAC (RFC 8725 §3.1)",
)
token_vector("algorithm_not_configured", token("ES256"), "algorithm_not_allowed", algorithms=["RS256"])


def tampered(tok: str) -> str:
    header, payload, signature = tok.split(".")
    changed = json.loads(b64u_decode(payload))
    changed["sub"] = "admin"
    changed["scope"] = "orders:read orders:write admin"
    return f"{header}.{b64u_json(changed)}.{signature}"


token_vector("tampered_payload", tampered(token("RS256")), "bad_signature")
token_vector("tampered_payload_es256", tampered(token("ES256")), "bad_signature")
token_vector("signed_by_a_key_not_in_the_jwks", token("RS256", key=stranger_rsa), "bad_signature")
token_vector("es256_signature_in_der_encoding", with_der_signature(token("ES256"), issuer_ec), "bad_signature")
token_vector(
    "dpop_proof_type_as_access_token", token("RS256", typ="dpop+jwt"), "wrong_token_type", note="RFC 8725 §3.11"
)
token_vector("unknown_kid", token("RS256", kid="rotated-away"), "unknown_key")
token_vector(
    "rsa_signature_under_the_ec_kid", token("RS256", kid=KIDS["ec"]), "key_algorithm_mismatch", note="RFC 8725 §3.1"
)
token_vector("critical_header", token("ES256", crit=["exp"]), "critical_header", note="RFC 7515 §4.1.11")

# --- DPoP proofs -----------------------------------------------------------------------

CLIENT_KEYS = {"ES256": client_ec, "RS256": client_rsa, "PS256": client_rsa, "EdDSA": client_ed}


def proof_claims(method: str, url: str, access_token: str, **changes) -> dict:
    base = {
        "jti": next_jti("proof"),
        "htm": method,
        "htu": url,
        "iat": NOW - 5,
        "ath": access_token_hash(access_token),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def proof(alg: str, payload: dict, key=None, jwk=None, **header) -> str:
    """A DPoP proof signed by PyJWT; a `typ` of None leaves it out (PyJWT drops it)."""
    signer = key or CLIENT_KEYS[alg]
    headers = {"typ": "dpop+jwt", "jwk": jwk or public_jwk(signer)}
    headers.update(header)
    return jwt.encode(payload, signer, algorithm=alg, headers=headers)


def proof_vector(
    name: str,
    prf: str,
    expected: str,
    *,
    tok: str = TOKEN_EC,
    method: str = "GET",
    htu: str = ORDERS,
    jkt: str | None = JKT_EC,
    algorithms=None,
    note: str = "",
) -> None:
    vector = {
        "name": name,
        "kind": "proof",
        "token": tok,
        "proof": prf,
        "method": method,
        "htu": htu,
        "jkt": jkt,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "token_algorithms": TOKEN_ALGORITHMS,
        "leeway": 0,
        "proof_algorithms": algorithms or PROOF_ALGORITHMS,
        "iat_leeway": IAT_LEEWAY,
        "iat_offset": IAT_OFFSET,
        "now": NOW,
        "expected": expected,
    }
    if jkt is None:
        del vector["jkt"]
    if note:
        vector["note"] = note
    vectors.append(vector)


def es256(url: str = ORDERS, method: str = "GET", tok: str = TOKEN_EC, **changes) -> str:
    return proof("ES256", proof_claims(method, url, tok, **changes))


# Valid.
proof_vector("es256_get", es256(), "ok")
proof_vector(
    "es256_post_with_query_default_port_and_upper_case_host",
    es256("https://API.example.com:443/orders?x=1", "POST"),
    "ok",
    method="POST",
    note="RFC 9449 §4.3 step 9: query ignored; RFC 3986 §6.2.2-6.2.3 normalization",
)
proof_vector(
    "es256_htu_with_fragment_and_dot_segments",
    es256("https://api.example.com/v1/../orders#top"),
    "ok",
    note="RFC 3986 §5.2.4 dot segments, fragment ignored",
)
proof_vector(
    "es256_htu_with_percent_encoded_unreserved_character",
    es256("https://api.example.com/%6Frders"),
    "ok",
    note="RFC 3986 §6.2.2.2",
)
proof_vector("es256_with_nonce_and_exp", es256(nonce="server-nonce-1", exp=NOW + 60), "ok")
proof_vector("es256_iat_at_the_leeway_edge", es256(iat=NOW + IAT_LEEWAY), "ok")
proof_vector("es256_iat_at_the_offset_edge", es256(iat=NOW - IAT_OFFSET), "ok")
proof_vector(
    "rs256_proof",
    proof("RS256", proof_claims("GET", ORDERS, TOKEN_RSA)),
    "ok",
    tok=TOKEN_RSA,
    jkt=JKT_RSA,
)
proof_vector(
    "ps256_proof",
    proof("PS256", proof_claims("DELETE", ORDERS, TOKEN_RSA)),
    "ok",
    tok=TOKEN_RSA,
    method="DELETE",
    jkt=JKT_RSA,
)
proof_vector(
    "eddsa_proof",
    proof("EdDSA", proof_claims("PUT", ORDERS, TOKEN_ED)),
    "ok",
    tok=TOKEN_ED,
    method="PUT",
    jkt=JKT_ED,
)

# Refused: the request does not match.
proof_vector("wrong_htm", es256(method="POST"), "wrong_proof_method")
proof_vector(
    "htm_in_lower_case", es256(method="get"), "wrong_proof_method", note="RFC 9110 §9.1: methods are case-sensitive"
)
proof_vector("wrong_htu_path", es256("https://api.example.com/invoices"), "wrong_proof_url")
proof_vector("wrong_htu_scheme", es256("http://api.example.com/orders"), "wrong_proof_url")
proof_vector("wrong_htu_port", es256("https://api.example.com:8443/orders"), "wrong_proof_url")
proof_vector("wrong_htu_host", es256("https://api.example.com.evil.example/orders"), "wrong_proof_url")
proof_vector("htu_with_userinfo", es256("https://user@api.example.com/orders"), "wrong_proof_url")

# Refused: time.
proof_vector("iat_too_old", es256(iat=NOW - IAT_OFFSET - 1), "proof_too_old")
proof_vector("iat_in_the_future", es256(iat=NOW + IAT_LEEWAY + 1), "proof_not_yet_valid")
proof_vector("exp_in_the_past", es256(exp=NOW - 1), "proof_too_old")

# Refused: claims.
proof_vector("ath_of_another_token", es256(ath=access_token_hash(TOKEN_RSA)), "wrong_access_token_hash")
proof_vector("ath_missing", es256(ath=None), "proof_claim_missing", note="RFC 9449 §4.3 step 10")
proof_vector("jti_missing", es256(jti=None), "proof_claim_missing")
proof_vector("iat_as_a_string", es256(iat=str(NOW)), "malformed_proof_claim")

# Refused: header and key.
proof_vector("typ_jwt", proof("ES256", proof_claims("GET", ORDERS, TOKEN_EC), typ="JWT"), "wrong_proof_type")
proof_vector("typ_missing", proof("ES256", proof_claims("GET", ORDERS, TOKEN_EC), typ=None), "wrong_proof_type")
proof_vector(
    "alg_none",
    jwt.encode(proof_claims("GET", ORDERS, TOKEN_EC), None, algorithm="none",
               headers={"typ": "dpop+jwt", "jwk": public_jwk(client_ec)}),
    "proof_algorithm_not_allowed",
)
proof_vector(
    "rs256_not_configured",
    proof("RS256", proof_claims("GET", ORDERS, TOKEN_RSA)),
    "proof_algorithm_not_allowed",
    tok=TOKEN_RSA,
    jkt=JKT_RSA,
    algorithms=["ES256"],
)
proof_vector(
    "jwk_with_private_member_d",
    proof("ES256", proof_claims("GET", ORDERS, TOKEN_EC), jwk=private_jwk(client_ec)),
    "bad_proof_key",
    note="RFC 9449 §4.3 step 7: the jwk must not contain a private key",
)
with warnings.catch_warnings():
    # PyJWT warns about the short key, which is the point of this vector.
    warnings.simplefilter("ignore")
    SHORT_RSA_PROOF = proof("RS256", proof_claims("GET", ORDERS, TOKEN_RSA), key=client_rsa_1024)
proof_vector(
    "rsa_key_of_1024_bits",
    SHORT_RSA_PROOF,
    "bad_proof_key",
    tok=TOKEN_RSA,
    jkt=JKT_RSA,
)
proof_vector(
    "rsa_jwk_with_es256",
    proof("ES256", proof_claims("GET", ORDERS, TOKEN_EC), jwk=public_jwk(client_rsa)),
    "bad_proof_key",
)
proof_vector(
    "critical_header", proof("ES256", proof_claims("GET", ORDERS, TOKEN_EC), crit=["exp"]), "proof_critical_header"
)

# Refused: signature and binding.
proof_vector(
    "signed_by_another_key_than_its_jwk",
    proof("ES256", proof_claims("GET", ORDERS, TOKEN_EC), key=other_ec, jwk=public_jwk(client_ec)),
    "bad_proof_signature",
)
proof_vector(
    "es256_signature_in_der_encoding",
    with_der_signature(es256(), client_ec),
    "bad_proof_signature",
)
proof_vector(
    "valid_proof_by_a_key_the_token_is_not_bound_to",
    proof("ES256", proof_claims("GET", ORDERS, TOKEN_EC), key=other_ec),
    "key_binding_mismatch",
    note="RFC 9449 §4.3 step 12, §6.1",
)
proof_vector(
    "token_not_bound",
    es256(tok=TOKEN_UNBOUND),
    "token_not_bound",
    tok=TOKEN_UNBOUND,
    jkt=None,
    note="a DPoP request whose token has no cnf.jkt (RFC 9449 §7.1)",
)
EXPIRED_BOUND = token("ES256", payload=claims(cnf={"jkt": JKT_EC}, iat=NOW - 3600, exp=NOW - 60))
proof_vector(
    "bound_token_expired",
    es256(tok=EXPIRED_BOUND),
    "expired",
    tok=EXPIRED_BOUND,
    note="the token is checked before its proof",
)

# --- Published examples ----------------------------------------------------------------


def thumbprint_vector(name: str, jwk: dict, expected: str, note: str) -> None:
    vectors.append({"name": name, "kind": "thumbprint", "jwk": jwk, "expected": expected, "note": note})


thumbprint_vector("rfc7638_example_key", RFC7638_JWK, RFC7638_THUMBPRINT, "RFC 7638 §3.1")
thumbprint_vector("rfc9449_example_key", RFC9449_JWK, RFC9449_JKT, "RFC 9449 §6.1, key of Figures 2-4")
thumbprint_vector("client_p256_key", public_jwk(client_ec), JKT_EC, "computed in Python (RFC 7638 §3)")
thumbprint_vector("client_rsa_key", public_jwk(client_rsa), JKT_RSA, "computed in Python; key_ops does not count")
thumbprint_vector("client_ed25519_key", public_jwk(client_ed), JKT_ED, "computed in Python (RFC 8037 §2)")


def rfc_proof_vector(name, prf, method, htu, now, expected, note) -> None:
    vectors.append(
        {
            "name": name,
            "kind": "rfc_proof",
            "token": RFC9449_ACCESS_TOKEN,
            "proof": prf,
            "method": method,
            "htu": htu,
            "jkt": RFC9449_JKT,
            "proof_algorithms": PROOF_ALGORITHMS,
            "iat_leeway": IAT_LEEWAY,
            "iat_offset": IAT_OFFSET,
            "now": now,
            "expected": expected,
            "note": note,
        }
    )


rfc_proof_vector(
    "rfc9449_figure_13_resource_request",
    RFC9449_RESOURCE_PROOF,
    "GET",
    "https://resource.example.org/protectedresource",
    1_562_262_618,
    "ok",
    "RFC 9449 §7.1; the access token of Figure 12 is opaque, so only the proof is checked",
)
rfc_proof_vector(
    "rfc9449_figure_3_token_request_at_a_resource_server",
    RFC9449_TOKEN_PROOF,
    "POST",
    "https://server.example.com/token",
    1_562_262_616,
    "proof_claim_missing",
    "RFC 9449 §4.1; a proof for the token endpoint has no ath, which a resource server requires (§4.3 step 10)",
)

# --- Self-checks: PyJWT agrees with every verdict it can judge ---------------------------

# Token refusals PyJWT makes too. It does not check `typ`, `kid`, `cnf` or an empty `sub`,
# and it reads a numeric string as `exp` (int("1800003600")), so malformed_claims is not here.
PYJWT_REFUSES = {
    "expired", "not_yet_valid", "wrong_audience", "wrong_issuer", "missing_claim", "bad_signature",
    "algorithm_not_allowed", "key_algorithm_mismatch",
}


class _AtNow(datetime.datetime):
    """PyJWT reads the clock with datetime.now(); the vectors are judged at NOW."""

    @classmethod
    def now(cls, tz=None):
        return datetime.datetime.fromtimestamp(NOW, tz)


def pyjwt_token_verdict(v: dict, public: dict) -> str:
    header = jwt.get_unverified_header(v["token"])
    # A token without `kid` (alg none) is tried against the RSA key.
    entry = public.get(header.get("kid", KIDS["rsa"]))
    if entry is None:
        return "refused"
    try:
        # The key as its `kty` makes it; PyJWT itself decides whether it fits the header's `alg`.
        key = jwt.PyJWK({k: x for k, x in entry.items() if k != "alg"}).key
        jwt.decode(
            v["token"], key, algorithms=v["token_algorithms"], audience=v["audience"], issuer=v["issuer"],
            leeway=v["leeway"], options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except (jwt.exceptions.PyJWTError, ValueError, TypeError) as e:
        log(f"  PyJWT refuses {v['name']}: {type(e).__name__}: {e}")
        return "refused"
    return "ok"


def self_check() -> None:
    assert thumbprint(RFC7638_JWK) == RFC7638_THUMBPRINT
    assert thumbprint(RFC9449_JWK) == RFC9449_JKT
    assert access_token_hash(RFC9449_ACCESS_TOKEN) == RFC9449_ATH
    rfc_key = jwt.PyJWK(RFC9449_JWK, "ES256").key
    for prf in (RFC9449_RESOURCE_PROOF, RFC9449_TOKEN_PROOF):
        jwt.decode(prf, rfc_key, algorithms=["ES256"], options={"verify_iat": False})
    public = {entry["kid"]: entry for entry in JWKS["keys"]}
    real_datetime = jwt.api_jwt.datetime
    jwt.api_jwt.datetime = _AtNow
    try:
        for v in vectors:
            if v["kind"] == "token" and (v["expected"] == "ok" or v["expected"] in PYJWT_REFUSES):
                want = "ok" if v["expected"] == "ok" else "refused"
                assert pyjwt_token_verdict(v, public) == want, f"PyJWT disagrees on {v['name']}"
            if v["kind"] == "proof" and v["expected"] == "ok":
                header = jwt.get_unverified_header(v["proof"])
                payload = jwt.decode(
                    v["proof"], jwt.PyJWK(header["jwk"], header["alg"]).key, algorithms=[header["alg"]],
                    options={"verify_iat": False},
                )
                assert thumbprint(header["jwk"]) == v["jkt"], v["name"]
                assert payload["ath"] == access_token_hash(v["token"]), v["name"]
                bound = jwt.decode(v["token"], options={"verify_signature": False})
                assert bound["cnf"]["jkt"] == v["jkt"], v["name"]
    finally:
        jwt.api_jwt.datetime = real_datetime
    names = [(v["kind"], v["name"]) for v in vectors]
    assert len(names) == len(set(names)), "vector names must be unique per kind"


self_check()

counts: dict = {}
for v in vectors:
    counts[v["kind"]] = counts.get(v["kind"], 0) + 1
log(f"{len(vectors)} vectors: " + ", ".join(f"{n} {k}" for k, n in counts.items()))

json.dump(
    {
        "description": "Access tokens and DPoP proofs made by PyJWT and cryptography, with the verdict tollgate "
        "must reach; see tests/vectors/README.md",
        "generator": "tests/vectors/make_vectors.py",
        "generated_with": {
            "python": platform.python_version(),
            "cryptography": cryptography.__version__,
            "pyjwt": jwt.__version__,
        },
        "now": NOW,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks": JWKS,
        "vectors": vectors,
    },
    sys.stdout,
    indent=1,
)
sys.stdout.write("\n")
