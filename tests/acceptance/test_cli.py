"""`lrun` from the shell: templates, invoke output and exit codes, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from orchestrator.sandbox import images
from tests.acceptance.conftest import Lrun
from tests.conftest import FUNCTIONS

START = re.compile(r"^START RequestId: ([0-9a-f-]{36}) Version: \$LATEST$", re.MULTILINE)
REPORT = re.compile(
    r"^REPORT RequestId: ([0-9a-f-]{36})\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
    r"Memory Size: (\d+) MB\tMax Memory Used: (\d+) MB\tInit Duration: \d+\.\d\d ms\t$",
    re.MULTILINE,
)

TEMPLATES = {
    "python": ({"message": "Hello, lrun!"}, "hello invoked with"),
    "python3.14": ({"message": "Hello, lrun!"}, "hello invoked with"),
    "nodejs": ({"message": "Hello, lrun!"}, "\tINFO\t"),
    "java": ({"message": "Hello, lrun!"}, "hello from hello"),
    "provided": (
        {"message": "Hello from a shell bootstrap!", "event": {"name": "lrun"}},
        "bootstrap: handling request",
    ),
}


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_each_template_is_invoked_at_once(lrun: Lrun, tmp_path: Path, template: str) -> None:
    created = lrun("init", template, "fn")
    assert created.returncode == 0, created.stderr
    assert "lrun invoke hello" in created.stdout
    done = lrun("invoke", "hello", "--payload", '{"name": "lrun"}', cwd=tmp_path / "fn")
    assert done.returncode == 0, done.stderr
    expected, log_line = TEMPLATES[template]
    assert json.loads(done.stdout) == expected
    start, report = START.search(done.stderr), REPORT.search(done.stderr)
    assert start and report, done.stderr
    assert start[1] == report[1]
    assert f"END RequestId: {start[1]}" in done.stderr
    assert log_line in done.stderr
    memory, used = int(report[2]), int(report[3])
    assert memory in (128, 256) and 0 < used < memory  # measured from the cgroup, not the limit


def test_init_refuses_to_overwrite(lrun: Lrun, tmp_path: Path) -> None:
    assert lrun("init", "python", "fn").returncode == 0
    again = lrun("init", "python", "fn")
    assert again.returncode == 2
    assert (
        again.stderr.startswith("error: fn/") and "already exists; choose an empty" in again.stderr
    )
    typo = lrun("init", "pyhton", "other")
    assert typo.returncode == 2 and "did you mean 'python'?" in typo.stderr


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    (tmp_path / "lrun.yaml").write_text(
        f"functions:\n"
        f"  fail: {{runtime: python3.13, handler: probe.fail, code: {FUNCTIONS / 'python'}}}\n"
        f"  count: {{runtime: python3.13, handler: probe.count, code: {FUNCTIONS / 'python'}}}\n"
    )
    return tmp_path


def test_function_error_exits_1_with_the_error_json(lrun: Lrun, probe_dir: Path) -> None:
    done = lrun("invoke", "fail", "--payload", '{"a": 1}')
    assert done.returncode == 1
    body = json.loads(done.stdout)
    assert body["errorType"] == "ValueError" and body["errorMessage"] == 'boom: {"a": 1}'
    assert "[ERROR] ValueError" in done.stderr


def test_payload_from_stdin_and_from_a_file(lrun: Lrun, probe_dir: Path) -> None:
    piped = lrun("invoke", "count", "-", stdin='{"x": 1}')
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["invocations"] == 1
    (probe_dir / "event.json").write_text('{"y": 2}')
    from_file = lrun("invoke", "count", "--payload-file", "event.json")
    assert from_file.returncode == 0, from_file.stderr


def test_bad_payloads_are_refused_before_any_container_starts(lrun: Lrun, probe_dir: Path) -> None:
    # With no engine reachable at all, the payload error still comes first: nothing started.
    no_docker = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    done = lrun("invoke", "count", "--payload", "{not json", env=no_docker)
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: InvalidRequestContentException: Could not parse request body into json: "
        "Could not parse payload into json:"
    )
    assert done.stderr.count("\n") == 1
    (probe_dir / "big.json").write_text(json.dumps({"blob": "x" * 6_291_456}))
    big = lrun("invoke", "count", "--payload-file", "big.json", env=no_docker)
    assert big.returncode == 2
    assert big.stderr.startswith(
        "error: RequestEntityTooLargeException: Request must be smaller than 6291456 bytes"
    )


def test_unknown_function_says_which_exist(lrun: Lrun, probe_dir: Path) -> None:
    done = lrun("invoke", "coutn")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: ResourceNotFoundException: Function not found: "
        "arn:aws:lambda:us-east-1:000000000000:function:coutn:$LATEST. "
        f"Functions in {probe_dir / 'lrun.yaml'}: fail, count (did you mean 'count'?)"
    )


def test_docker_unreachable_is_one_line_saying_what_to_do(lrun: Lrun, probe_dir: Path) -> None:
    done = lrun("invoke", "count", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert done.returncode == 3
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: Docker is not reachable (")
    assert lines[0].endswith(
        "Start the Docker engine (or set DOCKER_HOST) and check that this "
        "user may use it: `docker info` must work."
    )


def test_validate_lists_every_problem(lrun: Lrun, tmp_path: Path) -> None:
    (tmp_path / "lrun.yaml").write_text(
        "functions:\n  a:\n    runtime: pyton3.13\n    handler: app.h\n    code: .\n"
        "    memory: 64\n    tiemout: 3\n"
    )
    done = lrun("validate")
    assert done.returncode == 2
    assert (
        "lrun.yaml:3: functions.a.runtime" in done.stderr
        and "did you mean 'python3.13'" in done.stderr
    )
    assert "lrun.yaml:6: functions.a.memory" in done.stderr
    assert (
        "lrun.yaml:7: functions.a.tiemout" in done.stderr
        and "did you mean 'timeout'" in done.stderr
    )
    (tmp_path / "lrun.yaml").write_text(
        "functions:\n  a: {runtime: python3.13, handler: app.h, code: .}\n"
    )
    ok = lrun("validate")
    assert ok.returncode == 0 and "ok (1 functions: a)" in ok.stdout


def test_no_manifest_says_how_to_make_one(lrun: Lrun) -> None:
    done = lrun("invoke", "x", "--payload", "{}")
    assert done.returncode == 2
    assert "lrun init" in done.stderr


def test_runtimes_are_listed_and_a_current_build_does_nothing(lrun: Lrun) -> None:
    listed = lrun("runtimes", "ls", "--json")
    assert listed.returncode == 0
    rows = {row["runtime"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == set(images.RUNTIMES)
    assert all(row["state"] == "current" for row in rows.values())
    sdk = images.sdk_versions(images.RUNTIMES["python3.13"])
    assert set(sdk) == {"boto3", "botocore"} and all(sdk.values())
    assert rows["python3.11"]["sdk"] == rows["python3.13"]["sdk"] == sdk
    assert rows["nodejs20.x"]["sdk"] == {}
    table = lrun("runtimes", "ls", env={"COLUMNS": "200"})  # one row a line
    assert f"boto3 {sdk['boto3']}" in table.stdout, table.stdout
    again = lrun("runtimes", "build", "python3.13")
    assert again.returncode == 0
    image = images.RUNTIMES["python3.13"].image  # under LRUN_IMAGE_PREFIX
    assert f"python3.13: image {image} is current" in again.stderr
    unknown = lrun("runtimes", "build", "python3.12")
    assert unknown.returncode == 4 and "did you mean" in unknown.stderr
