"""Unit tests for orchestrator.api.credentials: profiles, given pairs, the generated pair."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from orchestrator.api import credentials
from orchestrator.errors import CredentialsError

PROFILES = """\
[default]
aws_access_key_id = AKIADEFAULT
aws_secret_access_key = default-secret

[lrun-remote]
aws_access_key_id = AKIAREMOTE
aws_secret_access_key = remote-secret

[temporary]
aws_access_key_id = ASIATEMP
aws_secret_access_key = temp-secret
aws_session_token = the-token

[empty]
region = us-east-1
"""


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "credentials"
    path.write_text(PROFILES)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    return path


def test_a_profile_gives_its_key_pair(shared: Path) -> None:
    found = credentials.from_profile("lrun-remote")
    assert (found.access_key_id, found.secret_access_key) == ("AKIAREMOTE", "remote-secret")
    assert found.session_token is None
    assert credentials.from_profile("temporary").session_token == "the-token"


def test_profile_errors_name_the_profile_and_the_file(shared: Path, tmp_path: Path) -> None:
    with pytest.raises(
        CredentialsError, match="'lrun-remot' is not in .*did you mean 'lrun-remote'"
    ):
        credentials.from_profile("lrun-remot")
    with pytest.raises(CredentialsError, match="'empty' .* has no aws_access_key_id"):
        credentials.from_profile("empty")
    with pytest.raises(CredentialsError, match="No such file"):
        credentials.from_profile("default", tmp_path / "nowhere")


def test_a_given_pair_needs_its_secret_from_the_environment() -> None:
    assert credentials.from_pair("AKIAX", "s").secret_access_key == "s"
    with pytest.raises(CredentialsError, match="LRUN_SECRET_ACCESS_KEY"):
        credentials.from_pair("AKIAX", None)
    with pytest.raises(CredentialsError, match="letters and digits"):
        credentials.from_pair("AKIA/X", "s")


def test_a_pair_is_generated_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "state"
    made, new = credentials.load_or_generate(state)
    assert new
    path = credentials.generated_file(state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, new_again = credentials.load_or_generate(state)
    assert not new_again and again == made
    # The file is a shared credentials file the AWS CLI and boto3 read as is.
    assert credentials.from_profile(credentials.GENERATED_PROFILE, path) == made
    assert len(made.secret_access_key) == 40 and made.access_key_id.startswith("LRUN")


def test_a_generated_pair_others_can_read_is_refused(tmp_path: Path) -> None:
    credentials.load_or_generate(tmp_path)
    path = credentials.generated_file(tmp_path)
    path.chmod(0o644)
    with pytest.raises(CredentialsError, match="chmod 600"):
        credentials.load_or_generate(tmp_path)
