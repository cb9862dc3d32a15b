"""The key pair `lrun serve` checks request signatures against, and where it comes from.

In order: a profile of the AWS shared credentials file (``--profile``), a key pair given to
the server (``--access-key-id`` / ``LRUN_ACCESS_KEY_ID`` with ``LRUN_SECRET_ACCESS_KEY``), else
a pair lrun generates once and keeps in its state directory, readable by its owner only. The
generated file is itself a shared credentials file with a profile named ``lrun``, so the AWS
CLI and boto3 can use it as is (``AWS_SHARED_CREDENTIALS_FILE``, ``AWS_PROFILE=lrun``).

None of these ever reaches a function: containers get only the stand-in variables of
``orchestrator.sandbox.container``, and the state directory is not mounted into them.
"""

from __future__ import annotations

import configparser
import os
import secrets
import stat
import string
from pathlib import Path

from orchestrator.api.sigv4 import Credentials
from orchestrator.errors import CredentialsError, did_you_mean

GENERATED_PROFILE = "lrun"
FILE_NAME = "credentials"
_KEY_ALPHABET = string.ascii_uppercase + string.digits


def shared_credentials_file() -> Path:
    """The AWS shared credentials file, where the AWS CLI and boto3 look for it."""
    explicit = os.environ.get("AWS_SHARED_CREDENTIALS_FILE")
    return Path(explicit).expanduser() if explicit else Path.home() / ".aws" / "credentials"


def from_profile(name: str, path: Path | None = None) -> Credentials:
    """The key pair of profile ``name`` in the shared credentials file."""
    path = path or shared_credentials_file()
    parser = configparser.RawConfigParser()
    try:
        with open(path, encoding="utf-8") as file:
            parser.read_file(file)
    except OSError as exc:
        raise CredentialsError(
            f"cannot read profile {name!r}: {path}: {exc.strerror}; create it (aws configure "
            "--profile NAME) or give the key pair with --access-key-id and "
            "LRUN_SECRET_ACCESS_KEY"
        ) from exc
    except configparser.Error as exc:
        raise CredentialsError(f"cannot read profile {name!r}: {path} is not valid: {exc}") from exc
    if not parser.has_section(name):
        hint = did_you_mean(name, parser.sections())
        raise CredentialsError(
            f"profile {name!r} is not in {path}"
            + (f"; {hint}" if hint else f" (it has: {', '.join(parser.sections()) or 'none'})")
        )
    key_id = parser.get(name, "aws_access_key_id", fallback="").strip()
    secret = parser.get(name, "aws_secret_access_key", fallback="").strip()
    if not key_id or not secret:
        raise CredentialsError(
            f"profile {name!r} in {path} has no aws_access_key_id and aws_secret_access_key; "
            "lrun needs a static key pair (set both in that profile)"
        )
    token = parser.get(name, "aws_session_token", fallback="").strip() or None
    return Credentials(key_id, secret, token)


def from_pair(key_id: str, secret: str | None) -> Credentials:
    """A key pair given to the server; the secret only through the environment."""
    if not secret:
        raise CredentialsError(
            f"access key id {key_id!r} given without its secret: set LRUN_SECRET_ACCESS_KEY in "
            "lrun serve's environment (not on the command line, where other users can read it)"
        )
    if not key_id.strip() or any(c.isspace() or c in "/,=" for c in key_id):
        raise CredentialsError(
            f"access key id {key_id!r} cannot be used in a signature: use letters and digits"
        )
    return Credentials(key_id, secret)


def generated_file(state: Path) -> Path:
    return state / FILE_NAME


def load_or_generate(state: Path) -> tuple[Credentials, bool]:
    """The key pair kept in the state directory, made now if there is none; and whether it was
    made now (then, and only then, it is shown to the user)."""
    path = generated_file(state)
    try:
        return _load_generated(path), False
    except FileNotFoundError:
        pass
    credentials = Credentials(
        "LRUN" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
        secrets.token_urlsafe(30),  # 40 characters, as an AWS secret access key
    )
    text = (
        f"[{GENERATED_PROFILE}]\n"
        f"aws_access_key_id = {credentials.access_key_id}\n"
        f"aws_secret_access_key = {credentials.secret_access_key}\n"
    )
    try:
        state.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another lrun made it meanwhile: use theirs
        return _load_generated(path), False
    except OSError as exc:
        raise CredentialsError(
            f"cannot create {path} for lrun's key pair: {exc.strerror}; check that the state "
            "directory is writable (LRUN_STATE_DIR)"
        ) from exc
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    return credentials, True


def _load_generated(path: Path) -> Credentials:
    mode = path.stat().st_mode  # FileNotFoundError: none yet
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"{path} holds lrun's secret key but others may read it (mode "
            f"{stat.S_IMODE(mode):04o}); run chmod 600 {path}, or delete it to make a new pair"
        )
    return from_profile(GENERATED_PROFILE, path)
