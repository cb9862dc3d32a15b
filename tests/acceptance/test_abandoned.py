"""A client that gives up never harms the next one: the issue's reproduction, end to end.

A real `lrun serve`, real boto3 clients. A client invokes a 3 s sleeper with ``LogType='Tail'``
and gives up after 1 s (a read timeout, as Ctrl-C or a closed connection would); the next caller
of the same function must get its own answer at once, from the other warm environment, not
``Runtime.ExitError`` after waiting for the sleeper; and the sleeper's log and REPORT must still
reach the server's log file.
"""

from __future__ import annotations

import gc
import json
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError

from tests.acceptance.conftest import LrunServer, ServerFactory
from tests.conftest import FUNCTIONS

SLEEP_S = 3


def lambda_client(url: str, read_timeout: float) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 0}, read_timeout=read_timeout),
    )


@pytest.mark.parametrize("log_type", ["Tail", "None"])
def test_a_client_that_gives_up_leaves_the_next_caller_unharmed(
    serve_lrun: ServerFactory, tmp_path: Path, log_type: str
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    code = FUNCTIONS / "python"
    (project / "lrun.yaml").write_text(
        "functions:\n"
        f"  nap: {{runtime: python3.13, handler: abandon.sleepy, code: {code}, timeout: 20}}\n"
    )
    server = serve_lrun(project)
    patient = lambda_client(server.url, read_timeout=120)
    impatient = lambda_client(server.url, read_timeout=1)

    # Two warm environments: had the sleeper's gone back to the pool as idle, it would be the
    # one handed out next (the pool reuses the most recently freed).
    warming = [
        threading.Thread(target=lambda: patient.invoke(FunctionName="nap", Payload=b'{"hold": 1}'))
        for _ in range(2)
    ]
    for thread in warming:
        thread.start()
    for thread in warming:
        thread.join(60)
    deadline = time.monotonic() + 30
    while [e["state"] for e in server.environments("nap")] != ["idle", "idle"]:
        assert time.monotonic() < deadline, server.environments("nap")
        time.sleep(0.05)

    warm = {e["id"] for e in server.environments("nap")}
    try:
        abandon_then_call(server, patient, impatient, log_type, warm)
    finally:
        patient.close()
        impatient.close()
        # urllib3 drops a connection that timed out without closing it; collect it here, where
        # that is expected, not in whichever test runs next.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    server.finish()


def abandon_then_call(
    server: LrunServer, patient: Any, impatient: Any, log_type: str, warm: set[str]
) -> None:
    with pytest.raises(ReadTimeoutError):
        impatient.invoke(
            FunctionName="nap", Payload=json.dumps({"sleep": SLEEP_S}).encode(), LogType=log_type
        )
    response = patient.invoke(FunctionName="nap", Payload=b'{"n": 2}', LogType="Tail")
    answered_at = time.time()
    assert "FunctionError" not in response, response["Payload"].read()
    fast = json.loads(response["Payload"].read())
    assert fast["fast"] == 2

    # The sleeper ran to its end, after the fast call had its answer, in the other environment.
    log = server.state_dir / "logs" / "nap.log"
    deadline = time.monotonic() + 4 * SLEEP_S
    while "slept " not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, f"no sleeper in the log:\n{server.output()}"
        time.sleep(0.2)
    text = log.read_text()
    [sleeper_id] = [line.split()[1] for line in text.splitlines() if line.startswith("sleeping ")]
    assert f"slept {sleeper_id}" in text
    assert f"REPORT RequestId: {sleeper_id}" in text
    assert "Runtime.ExitError" not in text
    ends = [float(m) for m in _ends(text)]
    assert ends and answered_at < ends[0], "the fast call waited for the abandoned sleeper"

    # Both environments are healthy: two more calls at once both answer.
    again = [patient.invoke(FunctionName="nap", Payload=b'{"n": 3}') for _ in range(2)]
    assert all("FunctionError" not in r for r in again)
    # Neither warm environment was lost (the sleeper's is not replaced: it came back).
    assert warm <= {e["id"] for e in server.environments("nap")}


def _ends(text: str) -> list[str]:
    """When each sleeper ended (epoch seconds), as its handler printed it."""
    return [line.split()[2] for line in text.splitlines() if line.startswith("slept ")]
