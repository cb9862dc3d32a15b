"""JWT checks, against tokens OpenSSL signed (jwt_fixture/make.sh) and tokens made per test.

The checks are the developer guide's list ("Controlling access to HTTP APIs with JWT
authorizers", section "Authorizing API requests"): kid, an RSA signature, iss, aud or client_id,
exp, nbf, iat; scopes from ``scope`` or ``scp``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from orchestrator.gateway import jwt
from tests.jwt_signer import KeyPair, b64url, claims

FIXTURE = Path(__file__).parent / "jwt_fixture"
TOKENS = json.loads((FIXTURE / "tokens.json").read_text())
ISSUER, AUDIENCE = "https://issuer.example", ["lrun-tests"]


@pytest.fixture(scope="module")
def keys() -> dict[str, jwt.RsaKey]:
    return jwt.load_key_set(FIXTURE / "jwks.json")


@pytest.fixture(scope="module")
def pair() -> KeyPair:
    return KeyPair.generate("mine", bits=1024)


def test_a_token_openssl_signed_passes(keys: dict[str, jwt.RsaKey]) -> None:
    found = jwt.verify(TOKENS["valid"], keys, ISSUER, AUDIENCE, time.time())
    assert found["sub"] == "ana"
    assert jwt.token_scopes(found) == ["orders.read", "profile"]


def test_client_id_stands_for_aud(keys: dict[str, jwt.RsaKey]) -> None:
    assert jwt.verify(TOKENS["client_id"], keys, ISSUER, AUDIENCE, time.time())["sub"] == "svc"


@pytest.mark.parametrize(
    ("token", "issuer", "audience", "message"),
    [
        (TOKENS["expired"], ISSUER, AUDIENCE, "the token has expired"),
        (
            TOKENS["valid"],
            "https://other.example",
            AUDIENCE,
            "the token does not have a valid issuer",
        ),
        (TOKENS["valid"], ISSUER, ["someone-else"], "the token does not have a valid audience"),
        ("a.b", ISSUER, AUDIENCE, "token contains an invalid number of segments"),
    ],
)
def test_tokens_that_fail(
    keys: dict[str, jwt.RsaKey], token: str, issuer: str, audience: list[str], message: str
) -> None:
    with pytest.raises(jwt.TokenError) as info:
        jwt.verify(token, keys, issuer, audience, time.time())
    assert str(info.value) == message


def test_a_tampered_token_fails_its_signature(keys: dict[str, jwt.RsaKey]) -> None:
    head, body, signature = TOKENS["valid"].split(".")
    forged = json.loads(jwt.b64url(body))
    forged["sub"] = "admin"
    token = f"{head}.{b64url(json.dumps(forged).encode())}.{signature}"
    with pytest.raises(jwt.TokenError, match="verification error"):
        jwt.verify(token, keys, ISSUER, AUDIENCE, time.time())


def test_an_unsigned_or_hmac_token_is_refused(keys: dict[str, jwt.RsaKey]) -> None:
    """alg: none and HS256 (a classic confusion: the public key as an HMAC secret)."""
    body = b64url(json.dumps(claims(ISSUER, "lrun-tests")).encode())
    for alg in ("none", "HS256"):
        head = b64url(json.dumps({"alg": alg, "kid": "openssl-1"}).encode())
        with pytest.raises(jwt.TokenError, match=f"signing method {alg} is invalid"):
            jwt.verify(f"{head}.{body}.", keys, ISSUER, AUDIENCE, time.time())


def test_a_key_the_set_does_not_have(pair: KeyPair, keys: dict[str, jwt.RsaKey]) -> None:
    token = pair.sign(claims(ISSUER, "lrun-tests"))
    with pytest.raises(jwt.TokenError, match="unable to find the key"):
        jwt.verify(token, keys, ISSUER, AUDIENCE, time.time())


def test_a_token_signed_by_another_key_with_the_same_kid(pair: KeyPair, tmp_path: Path) -> None:
    impostor = KeyPair.generate("mine", bits=1024)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [pair.jwk()]}))
    with pytest.raises(jwt.TokenError, match="verification error"):
        jwt.verify(
            impostor.sign(claims(ISSUER, "lrun-tests")),
            jwt.load_key_set(path),
            ISSUER,
            AUDIENCE,
            time.time(),
        )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"nbf": 4102444800}, "the token's nbf is in the future"),
        ({"iat": 4102444800}, "the token's iat is in the future"),
        ({"exp": "tomorrow"}, "the token has expired"),
    ],
)
def test_time_claims(pair: KeyPair, tmp_path: Path, extra: dict[str, object], message: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [pair.jwk()]}))
    token = pair.sign(claims(ISSUER, "lrun-tests", **extra))
    with pytest.raises(jwt.TokenError) as info:
        jwt.verify(token, jwt.load_key_set(path), ISSUER, AUDIENCE, time.time())
    assert str(info.value) == message


def test_a_list_audience_and_scp_scopes(pair: KeyPair, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [pair.jwk()]}))
    token = pair.sign(claims(ISSUER, "x", aud=["x", "lrun-tests"], scp=["a", "b"]))
    found = jwt.verify(token, jwt.load_key_set(path), ISSUER, AUDIENCE, time.time())
    assert jwt.token_scopes(found) == ["a", "b"]


def test_claims_are_passed_on_as_text() -> None:
    assert [jwt.claim_text(v) for v in ("s", 5, 1.0, True, ["a", "b"], {"k": 1})] == [
        "s", "5", "1", "true", "[a b]", '{"k":1}',
    ]  # fmt: skip


def test_key_sets_that_cannot_be_used(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text("[]")
    with pytest.raises(jwt.KeySetError, match="is not a JSON Web Key Set"):
        jwt.load_key_set(path)
    path.write_text(" " * (jwt.MAX_KEY_SET + 1))
    with pytest.raises(jwt.KeySetError, match="a key set has at most 150000"):
        jwt.load_key_set(path)
    path.write_text(json.dumps({"keys": [{"kty": "RSA", "kid": "k", "n": "AQAB", "e": "AQAB"}]}))
    with pytest.raises(jwt.KeySetError, match="is not an RSA key lrun takes"):
        jwt.load_key_set(path)


def test_a_key_set_is_read_again_when_it_changes(pair: KeyPair, tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": []}))
    key_set = jwt.KeySet(path)
    assert key_set.keys() == {}
    path.write_text(json.dumps({"keys": [pair.jwk()]}))
    assert set(key_set.keys()) == {"mine"}
