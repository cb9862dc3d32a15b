"""An RSA key pair and JWTs signed with it, for the JWT authorizer's tests (pure Python).

The key is made from random primes (Miller-Rabin), RS256 signatures are RSASSA-PKCS1-v1_5 (RFC
8017, section 8.2.1): what an identity provider does, so the authorizer's checks meet real
signatures. Keys are 2048 bits as providers use (``bits`` lower for speed where it does not
matter). Not a test module.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

_SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def _probably_prime(n: int, rounds: int = 32) -> bool:
    if n < 4:
        return n in (2, 3)
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(rounds):
        x = pow(secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int) -> int:
    while True:
        candidate = secrets.randbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if _probably_prime(candidate):
            return candidate


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


@dataclass(frozen=True)
class KeyPair:
    kid: str
    n: int
    e: int
    d: int

    @classmethod
    def generate(cls, kid: str = "test-key", bits: int = 2048) -> KeyPair:
        e = 65537
        while True:
            p, q = _prime(bits // 2), _prime(bits // 2)
            phi = (p - 1) * (q - 1)
            if p != q and phi % e and (p * q).bit_length() == bits:
                return cls(kid, p * q, e, pow(e, -1, phi))

    def jwk(self) -> dict[str, str]:
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": b64url(_bytes(self.n)),
            "e": b64url(_bytes(self.e)),
        }

    def sign(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        head = {"alg": "RS256", "typ": "JWT", "kid": self.kid, **(header or {})}
        signing_input = f"{b64url(json.dumps(head).encode())}.{b64url(json.dumps(claims).encode())}"
        size = (self.n.bit_length() + 7) // 8
        t = _SHA256_INFO + hashlib.sha256(signing_input.encode()).digest()
        encoded = b"\x00\x01" + b"\xff" * (size - len(t) - 3) + b"\x00" + t
        signature = pow(int.from_bytes(encoded, "big"), self.d, self.n).to_bytes(size, "big")
        return f"{signing_input}.{b64url(signature)}"


def claims(issuer: str, audience: str, **extra: Any) -> dict[str, Any]:
    """Valid claims for an hour from now, plus ``extra``."""
    now = int(time.time())
    return {"iss": issuer, "aud": audience, "sub": "user-1", "iat": now, "exp": now + 3600, **extra}
