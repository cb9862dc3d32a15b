"""Network holders as `lrun serve` keeps them: made ahead, joined by cold starts, removed when
the server stops, and removed by the next server when one crashed (killed, no clean-up)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from orchestrator.sandbox.backend import LABEL_OWNER, LABEL_ROLE, ROLE_HOLDER
from tests.acceptance.conftest import LrunServer, ServerFactory
from tests.conftest import FUNCTIONS

CODE = FUNCTIONS / "python"


def holders_of(server: LrunServer) -> list[str]:
    listed = subprocess.run(
        [
            "docker", "ps", "-a", "--no-trunc",
            "--filter", f"label={LABEL_ROLE}={ROLE_HOLDER}",
            "--format", f'{{{{.ID}}}}\t{{{{.Label "{LABEL_OWNER}"}}}}',
        ],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    rows = [line.split("\t") for line in listed.stdout.splitlines() if line]
    return [cid for cid, owner in rows if owner.startswith(server.owner_prefix)]


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return found


def test_holders_are_joined_by_cold_starts_and_go_with_their_server(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "lrun.yaml").write_text(
        f"functions:\n  count: {{runtime: python3.13, handler: probe.count, code: {CODE}}}\n"
    )
    first = serve_lrun(project)
    ahead = wait_for(
        "the holders' floor", lambda: found if len(found := holders_of(first)) >= 2 else None
    )
    client = boto3.client(
        "lambda",
        endpoint_url=first.url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    answer = json.loads(client.invoke(FunctionName="count", Payload=b"{}")["Payload"].read())
    assert answer["invocations"] == 1
    assert "network held ahead" in first.output(), first.output()

    # A crash: killed, nothing cleaned up. Its holders stay until another server sweeps them.
    first.process.kill()
    first.process.wait()
    left = holders_of(first)
    assert left, "the killed server's holders vanished by themselves"
    second = serve_lrun(project)
    wait_for(
        "the crashed server's holders removed", lambda: not holders_of(first) or None, timeout=30
    )
    assert set(ahead) <= set(left)  # ready or in use, all still there after the crash
    # A clean stop removes every container of the server, its holders among them.
    wait_for("the new server's holders", lambda: holders_of(second) or None)
    second.finish()
    assert holders_of(second) == []
