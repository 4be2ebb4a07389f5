#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target, fuzz/corpus/<target>/, from the test
vectors already in the repository: the interop tokens and proofs (tests/vectors/), the
string literals of the unit tests (paths, URLs, headers), the shipped configs. Each seed
is named after where it came from. Run from anywhere; it replaces the seed files it
writes and leaves others (inputs libFuzzer added while running) alone:

    python3 fuzz/seeds.py

Needs only Python 3. Input formats are those described at the top of each target.
"""

import base64
import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
NOW = 1800000000
# The fuzz key's JWK (fuzz/src/lib.rs), as its proofs carry it.
FUZZ_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "0Um_WQw91mRMPDSOLtjwK5FSNztebujlb0Od6QRJ6zg",
    "y": "rClhPNAkQlM89Ae3lw7Q2MEGKRKpNiI3hj5WaP6TXwQ",
}
TOKEN_HEADER = '{"alg":"ES256","typ":"at+jwt","kid":"fuzz-ec"}'
PROOF_HEADER = json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": FUZZ_JWK}, separators=(",", ":"))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def write(target: str, name: str, data) -> None:
    if isinstance(data, str):
        data = data.encode()
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80]).write_bytes(data)


def literals(path: str) -> list:
    """The plain string literals of a Rust file (escapes kept as written, except \\" and \\\\)."""
    text = (ROOT / path).read_text()
    found = re.findall(r'"((?:[^"\\\n]|\\.)*)"', text)
    return [s.replace('\\"', '"').replace("\\\\", "\\") for s in found if "\\" not in s.replace('\\"', "").replace("\\\\", "")]


def headers(pairs) -> str:
    return "".join(f"{name}: {value}\n" for name, value in pairs)


def tokens_and_proofs(interop: dict) -> None:
    vectors = interop["vectors"]
    for v in vectors:
        if v["kind"] == "token":
            write("token_verify", f"interop-{v['name']}", "0" + v["token"])
    for v in [v for v in vectors if v["kind"] == "token"][:8]:
        header, payload = v["token"].split(".")[:2]
        write("token_verify", f"claims-{v['name']}", "1" + unb64(payload).decode())
        write("token_verify", f"header-{v['name']}", "2" + unb64(header).decode() + "\n" + unb64(payload).decode())
    for v in vectors:
        if v["kind"] in ("proof", "rfc_proof"):
            fields = [v["method"], v["htu"], v["token"], v.get("jkt", ""), str(v.get("now", interop["now"])), v["proof"]]
            write("proof_verify", f"interop-{v['name']}", "0" + "\n".join(fields))
    ath = b64(hashlib.sha256(b"TOKEN").digest())
    claims = {"jti": "j1", "htm": "POST", "htu": "https://api.example.com/orders", "iat": NOW, "ath": ath}
    variants = {
        "valid": claims,
        "spelled-url": {**claims, "htu": "HTTPS://API.example.com:443/a/../orders?x=1#f"},
        "nonce-exp": {**claims, "nonce": "n", "exp": NOW + 10},
        "fractional-iat": {**claims, "iat": NOW - 299.5},
        "old": {**claims, "iat": NOW - 301},
        "wrong-url": {**claims, "htu": "https://api.example.com/orders/"},
    }
    for name, payload in variants.items():
        text = json.dumps(payload, separators=(",", ":"))
        write("proof_verify", f"claims-{name}", "1" + text)
        write("proof_verify", f"header-{name}", "2" + PROOF_HEADER + "\n" + text)
    write("proof_verify", "header-duplicate-htu", "2" + PROOF_HEADER + "\n" + '{"htu":"x",' + json.dumps(claims)[1:])


def credentials(interop: dict) -> None:
    # src/credentials/tests.rs: every header list its tests build.
    text = (ROOT / "src/credentials/tests.rs").read_text()
    for i, group in enumerate(re.findall(r"&\[(\(\"[^\]]*)\]", text)):
        pairs = re.findall(r'\("([^"]*)",\s*"([^"]*)"\)', group)
        if pairs:
            write("credentials_extract", f"tests-{i:02}", headers(pairs))
    token = next(v for v in interop["vectors"] if v["kind"] == "proof")
    write("credentials_extract", "interop-dpop", headers([("authorization", "DPoP " + token["token"]), ("dpop", token["proof"])]))
    write("credentials_extract", "interop-bearer", headers([("authorization", "Bearer " + token["token"])]))
    for i, value in enumerate(["Bearer   abc", "Basic dXNlcjpwYXNz", "Bearer", "Bearer a, Bearer b", "bearer x y"]):
        write("credentials_extract", f"scheme-{i}", headers([("authorization", value)]))


GATEWAY_INDEX = {"Nginx": 0, "IngressNginx": 1, "Traefik": 2, "Caddy": 3, "Envoy": 4}


def gateway() -> None:
    # src/gateway/tests.rs: the header lists its `original(Gateway::X, &[...])` and
    # `check(peer, method, path, &[...])` calls hold, each for its gateway.
    text = (ROOT / "src/gateway/tests.rs").read_text()
    n = 0
    for gw, group in re.findall(r"original\(Gateway::(\w+),\s*&\[(.*?)\]\)", text, re.S):
        pairs = re.findall(r'\("([^"]*)",\s*"([^"]*)"\)', group)
        flags = GATEWAY_INDEX[gw] | 8
        write("gateway_original_request", f"tests-{n:02}-{gw}", bytes([flags]) + f"GET\n\n{headers(pairs)}".encode())
        n += 1
    for peer, method, path, group in re.findall(r'check\("([^"]*)",\s*"([^"]*)",\s*"([^"]*)",\s*&\[(.*?)\]\)', text, re.S):
        pairs = re.findall(r'\("([^"]*)",\s*"([^"]*)"\)', group)
        trusted = 8 if peer == "127.0.0.1" else 0
        for gw in (0, 2, 4):
            data = bytes([gw | trusted]) + f"{method}\n{path}\n{headers(pairs)}".encode()
            write("gateway_original_request", f"tests-{n:02}-{gw}", data)
        n += 1
    shapes = {
        "nginx": (0, [("x-original-method", "POST"), ("x-original-uri", "/admin/x?_method=PUT"),
                      ("x-forwarded-proto", "https"), ("x-forwarded-host", "API.example.com:443"),
                      ("x-original-host", "api.example.com"), ("x-http-method-override", "delete")]),
        "ingress": (1, [("x-original-method", "GET"), ("x-original-url", "https://api.example.com:8443/a/../b?q=1")]),
        "traefik-prefix": (2 | 16, [("x-forwarded-method", "GET"), ("x-forwarded-uri", "/orders/%7E1"),
                                    ("x-forwarded-proto", "https"), ("x-forwarded-host", "[::1]:8443"),
                                    ("x-forwarded-prefix", "/api/")]),
        "caddy": (3, [("x-forwarded-method", "HEAD"), ("x-forwarded-uri", "//a/./b/"), ("x-forwarded-host", "h.")]),
    }
    for name, (flags, pairs) in shapes.items():
        write("gateway_original_request", f"readme-{name}", bytes([flags | 8]) + f"GET\n\n{headers(pairs)}".encode())
    write("gateway_original_request", "readme-envoy", bytes([4 | 8]) + b"POST\n/admin/x?y=1\nhost: api.example.com\nx-forwarded-proto: https\n")


def paths_and_urls() -> None:
    paths = sorted({s for s in literals("src/gateway/tests.rs") if s.startswith("/")})
    for i, path in enumerate(paths):
        write("path_normalize", f"gateway-tests-{i:02}", path)
    urls = sorted({s for s in literals("src/dpop/htu/tests.rs") if "://" in s or s.startswith("/")})
    for i, url in enumerate(urls):
        write("htu_differential", f"htu-tests-{i:02}", url)
    interop = json.loads((ROOT / "tests/vectors/interop.json").read_text())
    # The `htu` the interop proofs carry (PyJWT's spellings of the request URL).
    carried = set()
    for v in interop["vectors"]:
        if v["kind"] in ("proof", "rfc_proof"):
            htu = json.loads(unb64(v["proof"].split(".")[1])).get("htu")
            if isinstance(htu, str) and htu not in carried:
                carried.add(htu)
                write("htu_differential", f"interop-{v['name']}", htu)


def refusals() -> None:
    # One seed per reason (the first byte picks it; 70 covers every variant), with a
    # realm, scopes and a nonce secret as the README shows them.
    for i in range(70):
        flags = (i * 37) & 0xFF
        write("refusal_respond", f"reason-{i:02}", bytes([i, flags]) + b"api\nread:orders write:admin\nsecret")
    write("refusal_respond", "odd-realm", bytes([58, 0b00001010]) + b'a"b\nx\\y\n')


def claims() -> None:
    examples = {
        "readme-headers": {"email": "a@example.com", "app_metadata": {"tenant": "acme"},
                           "https://example.com/roles": ["admin", "a,b"]},
        "subject-non-ascii": {"sub": "élodie %", "scope": "read write"},
        "crlf": {"x": "v\r\nX-Admin: 1", "n": 42, "b": True, "f": 1.5e300},
        "arrays": {"roles": [["nested"]], "mixed": ["a", 1, False], "empty": [], "null": None},
        "long": {"big": "x" * 5000},
        "permissions": {"permissions": ["read:reports"], "org_id": "org_acme", "cnf": {"jkt": "abc"}},
        "delegation": {"act": {"sub": "svc,a", "act": {"sub": "élodie"}}, "may_act": {"sub": "x"}},
    }
    for i, (name, obj) in enumerate(examples.items()):
        write("allow_headers", f"claims-{name}", bytes([i & 3]) + json.dumps(obj, ensure_ascii=False).encode())


def configs() -> None:
    files = [ROOT / "config/tollgate.toml"] + sorted(ROOT.glob("deploy/*/tollgate*.toml"))
    for f in files:
        write("config_load", f"{f.parent.name}-{f.name}", f.read_bytes())
    minimal = ROOT / "src/config/tests.rs"
    text = minimal.read_text()
    m = re.search(r'const MINIMAL: &str = r#"(.*?)"#;', text, re.S)
    if m:
        env = "TOLLGATE_DPOP__REQUIRED=true\nTOLLGATE_PROXY__TRUSTED=10.0.0.5/32,::1/128\nAUTH0_AUDIENCE=https://a.example,https://b.example\n"
        write("config_load", "tests-minimal", m.group(1))
        write("config_load", "tests-minimal-env", m.group(1).encode() + b"\0" + env.encode())


def grpc() -> None:
    requests = {
        "get": (0, "GET\nhttps\napi.example.com\n/orders?x=1\n", [("authorization", "Bearer t"), ("x-auth-subject", "spoof")]),
        "raw-map": (3, "POST\nhttp\nAPI.example.com:8443\n/admin/x?_method=delete\n", [("dpop", "p"), ("dpop", "q"), ("x-http-method-override", "PUT")]),
        "value-map": (1, "PUT\n\n\n/a/%2e%2e/b\n", [(":authority", "h"), ("authorization", "DPoP t")]),
    }
    for name, (flags, lines, pairs) in requests.items():
        write("grpc_translate", name, bytes([flags]) + (lines + headers(pairs)).encode())


def main() -> None:
    interop = json.loads((ROOT / "tests/vectors/interop.json").read_text())
    tokens_and_proofs(interop)
    credentials(interop)
    gateway()
    paths_and_urls()
    refusals()
    claims()
    configs()
    grpc()
    for folder in sorted(CORPUS.iterdir()):
        print(f"{folder.name}: {len(list(folder.iterdir()))} files")


if __name__ == "__main__":
    main()
