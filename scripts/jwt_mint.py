"""Mints keys, a JWKS and tokens for the auth tests with PyJWT and cryptography.

Reads a JSON spec on stdin and writes JSON on stdout:

  {"keys": [{"name": "k1", "type": "RSA" | "EC" | "OKP", "kid": "...", "jwk": {extra JWK members}}],
   "tokens": [{"name": "t1", "alg": "RS256", "key": "k1", "claims": {...}, "headers": {...}},
              {"name": "t2", "alg": "HS256", "secret": "...", "claims": {...}},
              {"name": "t3", "alg": "none", "claims": {...}},
              {"name": "t4", "alg": "HS256", "hmac_with_public_pem_of": "k1", "claims": {...}}]}

  -> {"jwks": {"k1": {public JWK}}, "tokens": {"t1": "<jwt>", ...}}

A token signed with a key gets that key's kid in its header unless "headers" sets "kid" (null drops it).
"""

import base64
import hashlib
import hmac
import json
import sys

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def generate(spec):
    kind = spec["type"]
    if kind == "RSA":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif kind == "EC":
        private = ec.generate_private_key(ec.SECP256R1())
        public_jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif kind == "OKP":
        private = ed25519.Ed25519PrivateKey.generate()
        public_jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    else:
        raise SystemExit(f"unknown key type {kind}")
    public_jwk["kid"] = spec["kid"]
    public_jwk.update(spec.get("jwk", {}))
    return private, public_jwk


def header_for(token, keys):
    headers = {}
    key_name = token.get("key") or token.get("hmac_with_public_pem_of")
    if key_name:
        headers["kid"] = keys[key_name][1]["kid"]
    headers.update(token.get("headers", {}))
    return {k: v for k, v in headers.items() if v is not None}


def mint(token, keys):
    alg = token["alg"]
    claims = token["claims"]
    headers = header_for(token, keys)
    if alg == "none":
        return segment({"alg": "none", "typ": "JWT", **headers}) + "." + segment(claims) + "."
    if "hmac_with_public_pem_of" in token:
        # The classic confusion attack: the public key's PEM used as an HMAC secret.
        public = keys[token["hmac_with_public_pem_of"]][0].public_key()
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        signing_input = segment({"alg": alg, "typ": "JWT", **headers}) + "." + segment(claims)
        signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + b64(signature)
    key = token["secret"] if "secret" in token else keys[token["key"]][0]
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def main():
    spec = json.load(sys.stdin)
    keys = {k["name"]: generate(k) for k in spec.get("keys", [])}
    out = {
        "jwks": {name: public for name, (_, public) in keys.items()},
        "tokens": {t["name"]: mint(t, keys) for t in spec.get("tokens", [])},
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
