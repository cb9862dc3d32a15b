"""JSON Web Tokens as an HTTP API's JWT authorizer checks them, against a local key set.

As the developer guide's "Controlling access to HTTP APIs with JWT authorizers" lists it: the
token's ``kid`` names a key of the set, its signature is an RSA one (``RS256``, ``RS384``,
``RS512``: "Currently, only RSA-based algorithms are supported"), ``iss`` is the issuer, ``aud``
(or ``client_id``) one of the audiences, ``exp`` after now, ``nbf`` and ``iat`` before it. The
signature check is RSASSA-PKCS1-v1_5 (RFC 8017, section 8.2.2) written out: a public-key
verification needs no secret and no library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_KEY_SET = 150_000  # bytes: API Gateway's limit on a JSON Web Key Set
_DIGEST_INFO = {  # RFC 8017, section 9.2, note 1
    "RS256": (hashlib.sha256, bytes.fromhex("3031300d060960864801650304020105000420")),
    "RS384": (hashlib.sha384, bytes.fromhex("3041300d060960864801650304020205000430")),
    "RS512": (hashlib.sha512, bytes.fromhex("3051300d060960864801650304020305000440")),
}
_BITS = (1024, 8192)  # key sizes taken: enough for any real key, bounded work per check


class TokenError(ValueError):
    """A token that does not pass: the message is what WWW-Authenticate's description says."""


class KeySetError(ValueError):
    """A key set file that cannot be used."""


@dataclass(frozen=True)
class RsaKey:
    n: int
    e: int
    size: int  # bytes of the modulus


def b64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("the token is not valid base64url") from None


def load_key_set(path: Path) -> dict[str, RsaKey]:
    """The RSA keys of a JSON Web Key Set file, by ``kid``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeySetError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_KEY_SET:
        raise KeySetError(f"{path} is {len(data)} bytes; a key set has at most {MAX_KEY_SET}")
    try:
        keys = json.loads(data)["keys"]
        assert isinstance(keys, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise KeySetError(f'{path} is not a JSON Web Key Set ({{"keys": [...]}})') from None
    found: dict[str, RsaKey] = {}
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") != "RSA" or "kid" not in key:
            continue  # API Gateway uses RSA keys only
        try:
            n = int.from_bytes(b64url(key["n"]), "big")
            e = int.from_bytes(b64url(key["e"]), "big")
        except (KeyError, TypeError, TokenError):
            raise KeySetError(f"{path}: key {key.get('kid')!r} has no valid n and e") from None
        if not _BITS[0] <= n.bit_length() <= _BITS[1] or not 3 <= e < 2**32:
            raise KeySetError(f"{path}: key {key['kid']!r} is not an RSA key lrun takes")
        found[str(key["kid"])] = RsaKey(n, e, (n.bit_length() + 7) // 8)
    return found


class KeySet:
    """A key set file, read again when it changes (a rotated key is seen without a restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, RsaKey] = {}

    def keys(self) -> dict[str, RsaKey]:
        stat = os.stat(self.path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._keys, self._stamp = load_key_set(self.path), stamp
        return self._keys


def _verify(key: RsaKey, algorithm: str, signed: bytes, signature: bytes) -> bool:
    digest, prefix = _DIGEST_INFO[algorithm]
    if len(signature) != key.size:
        return False
    s = int.from_bytes(signature, "big")
    if s >= key.n:
        return False
    encoded = pow(s, key.e, key.n).to_bytes(key.size, "big")
    t = prefix + digest(signed).digest()
    if key.size < len(t) + 11:
        return False
    expected = b"\x00\x01" + b"\xff" * (key.size - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(encoded, expected)


def _json(part: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url(part))
    except ValueError:
        raise TokenError("the token is not valid JSON") from None
    if not isinstance(value, dict):
        raise TokenError("the token is not valid JSON")
    return value


def verify(
    token: str,
    keys: Mapping[str, RsaKey],
    issuer: str,
    audience: Sequence[str],
    now: float,
) -> dict[str, Any]:
    """The token's claims, if it passes every check; ``TokenError`` saying why not."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("token contains an invalid number of segments")
    header, claims = _json(parts[0]), _json(parts[1])
    algorithm = header.get("alg")
    if algorithm not in _DIGEST_INFO:
        raise TokenError(f"signing method {algorithm} is invalid")
    key = keys.get(str(header.get("kid")))
    if key is None:
        raise TokenError("unable to find the key the token was signed with (kid)")
    signed = f"{parts[0]}.{parts[1]}".encode()
    if not _verify(key, algorithm, signed, b64url(parts[2])):
        raise TokenError("crypto/rsa: verification error")
    if claims.get("iss") != issuer:
        raise TokenError("the token does not have a valid issuer")
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud] if aud is not None else []
    if not any(a in audience for a in auds) and claims.get("client_id") not in audience:
        raise TokenError("the token does not have a valid audience")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or now >= exp:
        raise TokenError("the token has expired")
    for name in ("nbf", "iat"):
        value = claims.get(name)
        if value is not None and (not isinstance(value, int | float) or value > now):
            raise TokenError(f"the token's {name} is in the future")
    return claims


def token_scopes(claims: Mapping[str, Any]) -> list[str]:
    """The scopes a token carries: ``scope`` (space-separated) or ``scp``."""
    found = claims.get("scope", claims.get("scp"))
    if isinstance(found, str):
        return found.split()
    if isinstance(found, list):
        return [s for s in found if isinstance(s, str)]
    return []


def claim_text(value: Any) -> str:
    """A claim as API Gateway passes it on: every value text, a list as ``[a b]``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(claim_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
