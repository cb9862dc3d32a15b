"""Failures reported exactly as Lambda reports them, each from a real container."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from orchestrator.sandbox.invocation import InvocationResult
from tests.conftest import FUNCTIONS
from tests.integration.conftest import OWNER, load_function

PY = FUNCTIONS / "python"
MANIFEST = f"""
functions:
  fail:     {{runtime: python3.13, handler: probe.fail, code: {PY}}}
  slow:     {{runtime: python3.13, handler: probe.sleep, code: {PY}, timeout: 1}}
  hog:      {{runtime: python3.11, handler: probe.hog, code: {PY}, memory: 128, timeout: 30}}
  leave:    {{runtime: python3.13, handler: probe.leave, code: {PY}}}
  missing:  {{runtime: python3.13, handler: nosuchmodule.handler, code: {PY}}}
  broken:   {{runtime: python3.13, handler: broken.handler, code: {PY}}}
  nohandler: {{runtime: python3.13, handler: probe.nothere, code: {PY}}}
  nodefail: {{runtime: nodejs20.x, handler: app.handler, code: {FUNCTIONS / "node"}}}
"""

REPORT = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms"
    r"\tMemory Size: (?P<mem>\d+) MB\tMax Memory Used: (?P<used>\d+) MB"
    r"(\tInit Duration: \d+\.\d\d ms)?(?P<status>\tStatus: \w+)?(?P<etype>\tError Type: \S+)?\t$",
    re.MULTILINE,
)


def report_of(result: InvocationResult) -> re.Match[str]:
    found = REPORT.search(result.log)
    assert found, result.log
    assert found["id"] == result.request_id
    return found


def error_of(result: InvocationResult) -> dict[str, object]:
    assert result.function_error == "Unhandled", result.payload
    body = json.loads(result.payload)
    assert isinstance(body, dict)
    return body


def spec(write_manifest: Callable[[str], Path], name: str):
    return load_function(write_manifest(MANIFEST), name)


@pytest.mark.engines
def test_handler_exception_passes_the_runtimes_error_through(invoke, write_manifest) -> None:
    result = invoke(spec(write_manifest, "fail"), b'{"n": 1}')
    body = error_of(result)
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == 'boom: {"n": 1}'
    assert isinstance(body["stackTrace"], list) and body["stackTrace"]
    assert body["requestId"] == result.request_id
    assert "[ERROR] ValueError: boom" in result.log
    assert report_of(result)["status"] is None


@pytest.mark.engines
def test_node_handler_exception(invoke, write_manifest) -> None:
    result = invoke(spec(write_manifest, "nodefail"), b'{"fail": "x"}')
    body = error_of(result)
    assert body["errorType"] == "TypeError"
    assert body["errorMessage"] == "node says no: x"
    assert isinstance(body["trace"], list)


@pytest.mark.engines
def test_timeout_stops_the_environment_at_the_deadline(
    invoke, write_manifest, engine: docker.DockerClient
) -> None:
    died: list[float] = []

    def watch() -> None:
        # Chosen here, not by an "event" filter: Podman's compatible API sends nothing then.
        events = engine.events(
            decode=True, filters={"label": f"lrun.owner={OWNER}"}, since=int(time.time()) - 1
        )
        for event in events:
            if event.get("status") != "die":
                continue
            if event["Actor"]["Attributes"].get("lrun.function") == "slow":
                died.append(event["timeNano"] / 1e9)
                break
        events.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    result = invoke(spec(write_manifest, "slow"), b'{"s": 5}')
    body = error_of(result)
    assert body == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {result.request_id} Error: Task timed out after 1.00 seconds",
    }
    report = report_of(result)
    assert report["status"] == "\tStatus: timeout" and report["etype"] is None
    assert f"{result.request_id} Task timed out after 1.00 seconds" in result.log
    duration = float(re.search(r"Duration: ([\d.]+) ms", result.log)[1])  # type: ignore[index]
    assert 1000 <= duration < 1200
    watcher.join(5)
    assert died, "the timed-out environment's container never died"
    deadline = int(re.search(r"deadline (\d+)", result.log)[1]) / 1000  # type: ignore[index]
    assert 0 <= died[0] - deadline <= 0.2, f"stopped {died[0] - deadline:.3f} s after the deadline"


def test_out_of_memory_is_reported_as_lambda_does(invoke, write_manifest) -> None:
    result = invoke(spec(write_manifest, "hog"))
    body = error_of(result)
    assert body["errorType"] == "Runtime.OutOfMemory"
    assert body["errorMessage"] == (
        f"RequestId: {result.request_id} Error: Runtime exited with error: signal: killed"
    )
    report = report_of(result)
    assert report["status"] == "\tStatus: error"
    assert report["etype"] == "\tError Type: Runtime.OutOfMemory"
    assert report["used"] == report["mem"] == "128"


@pytest.mark.engines
def test_runtime_exit_is_an_exit_error_with_its_status(invoke, write_manifest) -> None:
    result = invoke(spec(write_manifest, "leave"), b'{"code": 3}')
    assert error_of(result) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {result.request_id} Error: Runtime exited with error: "
        "exit status 3",
    }
    report = report_of(result)
    assert report["etype"] == "\tError Type: Runtime.ExitError"


@pytest.mark.engines
def test_missing_module_is_an_import_module_error(invoke, write_manifest) -> None:
    body = error_of(invoke(spec(write_manifest, "missing")))
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert (
        body["errorMessage"]
        == "Unable to import module 'nosuchmodule': No module named 'nosuchmodule'"
    )


@pytest.mark.engines
def test_failing_import_inside_the_module_is_an_import_module_error(invoke, write_manifest) -> None:
    body = error_of(invoke(spec(write_manifest, "broken")))
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "this_module_does_not_exist" in str(body["errorMessage"])


@pytest.mark.engines
def test_missing_handler_is_handler_not_found(invoke, write_manifest) -> None:
    body = error_of(invoke(spec(write_manifest, "nohandler")))
    assert body["errorType"] == "Runtime.HandlerNotFound"
    assert body["errorMessage"] == "Handler 'nothere' missing on module 'probe'"


@pytest.mark.engines
def test_provided_bootstrap_missing_or_not_executable(invoke, write_manifest, tmp_path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    manifest = write_manifest(f"functions:\n  custom: {{runtime: provided, code: {code}}}\n")
    result = invoke(load_function(manifest, "custom"))
    assert error_of(result) == {
        "errorType": "Runtime.InvalidEntrypoint",
        "errorMessage": f"RequestId: {result.request_id} Error: Couldn't find valid bootstrap(s): "
        "[/var/task/bootstrap /opt/bootstrap]",
    }
    bootstrap = code / "bootstrap"
    bootstrap.write_text("#!/bin/sh\necho hi\n")
    os.chmod(bootstrap, 0o644)
    result = invoke(load_function(manifest, "custom"))
    body = error_of(result)
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    assert "fork/exec /var/task/bootstrap: permission denied" in str(body["errorMessage"])
