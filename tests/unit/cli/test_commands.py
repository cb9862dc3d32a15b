"""`lrun validate`, `init`, `runtimes ls`, `ps`, `events` and `invoke`'s refusals, in-process.

Every command runs under click's ``CliRunner``, as the process would run it but without ending
it: the exit code is the one the console script would end with (``cli.entry``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli import main
from orchestrator.cli.common import Wiring
from orchestrator.sandbox.backend import LABEL_RUNTIME_HASH
from orchestrator.sandbox.images import RUNTIMES, runtime_digest
from tests.fakes import FakeBackend

NO_SERVER = "error: no `lrun serve` is running; start one with: lrun serve\n"


def lrun(runner: CliRunner, *args: str, obj: object = None) -> Result:
    return runner.invoke(main, list(args), obj=obj, prog_name="lrun")


def one_line_error(result: Result, code: int) -> str:
    """The error line of a refused command: one line on stderr, no traceback, that exit code."""
    assert result.exit_code == code, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


# validate


def test_validate_accepts_a_good_manifest(runner: CliRunner, probe_dir: Path) -> None:
    done = lrun(runner, "validate")
    assert done.exit_code == 0, done.output
    assert done.stdout == f"{probe_dir / 'lrun.yaml'}: ok (2 functions: fail, count)\n"


def test_validate_lists_every_problem_with_its_line(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "lrun.yaml").write_text(
        "functions:\n  a:\n    runtime: pyton3.13\n    handler: app.h\n    code: .\n"
        "    memory: 64\n    tiemout: 3\n"
    )
    done = lrun(runner, "validate")
    assert done.exit_code == 2 and done.stdout == ""
    assert "lrun.yaml:3: functions.a.runtime" in done.stderr
    assert "did you mean 'python3.13'" in done.stderr
    assert "lrun.yaml:6: functions.a.memory" in done.stderr
    assert "lrun.yaml:7: functions.a.tiemout" in done.stderr
    assert "did you mean 'timeout'" in done.stderr
    assert "Traceback" not in done.stderr


def test_validate_of_a_named_file_that_is_not_there(runner: CliRunner, tmp_path: Path) -> None:
    line = one_line_error(lrun(runner, "validate", "-f", "elsewhere.yaml"), 2)
    assert line.startswith("error: ") and "elsewhere.yaml" in line


def test_validate_with_no_manifest_says_how_to_make_one(runner: CliRunner) -> None:
    assert "lrun init" in one_line_error(lrun(runner, "validate"), 2)


# init


def test_init_creates_the_template_and_says_how_to_invoke_it(
    runner: CliRunner, tmp_path: Path
) -> None:
    done = lrun(runner, "init", "python", "fn")
    assert done.exit_code == 0, done.output
    assert (tmp_path / "fn" / "lrun.yaml").is_file()
    assert f"in {tmp_path / 'fn'}" in done.stdout
    assert "cd fn && lrun invoke hello" in done.stdout
    # What it made is a valid manifest.
    runner_in_fn = lrun(runner, "validate", "-f", str(tmp_path / "fn" / "lrun.yaml"))
    assert runner_in_fn.exit_code == 0, runner_in_fn.output


def test_init_refuses_to_overwrite_and_changes_nothing(runner: CliRunner, tmp_path: Path) -> None:
    assert lrun(runner, "init", "python", "fn").exit_code == 0
    manifest = tmp_path / "fn" / "lrun.yaml"
    manifest.write_text("# mine\n")
    line = one_line_error(lrun(runner, "init", "python", "fn"), 2)
    assert line.startswith("error: fn/") and "already exists; choose an empty directory" in line
    assert manifest.read_text() == "# mine\n"


def test_init_with_a_misspelt_template_suggests_the_right_one(
    runner: CliRunner, tmp_path: Path
) -> None:
    line = one_line_error(lrun(runner, "init", "pyhton", "other"), 2)
    assert "unknown template 'pyhton'; did you mean 'python'?" in line
    assert not (tmp_path / "other").exists()


# runtimes ls, on an engine given to the command


def test_runtimes_ls_shows_each_image_state_from_the_engine(runner: CliRunner) -> None:
    python = RUNTIMES["python3.13"]
    node = RUNTIMES["nodejs20.x"]
    backend = FakeBackend(images=[node.image])  # built from other inputs: no hash label
    backend.images[python.image] = backend.images[node.image].__class__(
        python.image, {LABEL_RUNTIME_HASH: runtime_digest(python)}, 114_000_000
    )
    done = lrun(runner, "runtimes", "ls", "--json", obj=Wiring(connect=lambda: backend))
    assert done.exit_code == 0, (done.output, done.exception)
    rows = {row["runtime"]: row for row in json.loads(done.stdout)}
    assert set(rows) == set(RUNTIMES)
    assert rows["python3.13"]["state"] == "current" and rows["python3.13"]["size_mb"] == 114
    assert rows["nodejs20.x"]["state"] == "outdated"
    assert rows["provided"]["state"] == "missing" and rows["provided"]["size_mb"] is None
    assert backend.engine_calls() == ["image"] * 2 * len(RUNTIMES)  # reads only, builds nothing


def test_runtimes_ls_table_says_how_to_build_the_missing(runner: CliRunner) -> None:
    backend = FakeBackend()
    done = lrun(runner, "runtimes", "ls", obj=Wiring(connect=lambda: backend))
    assert done.exit_code == 0, (done.output, done.exception)
    assert "python3.13" in done.stdout and "missing" in done.stdout
    assert done.stderr == "build the missing ones with: lrun runtimes build\n"


@pytest.mark.usefixtures("unreachable_engine")
def test_runtimes_ls_without_an_engine_is_one_line(runner: CliRunner) -> None:
    line = one_line_error(lrun(runner, "runtimes", "ls"), 3)
    assert line.startswith("error: Docker is not reachable (")


# ps and events, with no server


@pytest.mark.parametrize("command", [["ps"], ["ps", "--json"], ["events"], ["events", "--json"]])
def test_without_a_server_ps_and_events_say_how_to_start_one(
    runner: CliRunner, command: list[str]
) -> None:
    assert one_line_error(lrun(runner, *command), 2) == NO_SERVER


@pytest.mark.parametrize(
    "command",
    [
        ["functions", "ls"],
        ["functions", "ls", "--json"],
        ["functions", "get", "f"],
        ["functions", "delete", "f"],
    ],
)
def test_without_a_server_functions_says_how_to_start_one(
    runner: CliRunner, command: list[str]
) -> None:
    assert one_line_error(lrun(runner, *command), 2) == (
        "error: no `lrun serve` is running; functions created through the API live in it: "
        "start one with: lrun serve\n"
    )


def test_a_server_that_is_gone_is_no_server(runner: CliRunner, tmp_path: Path) -> None:
    """A state file left by a server that died names a process that is not there."""
    state = tmp_path / "state"
    state.mkdir()
    record = {"url": "http://127.0.0.1:9", "pid": 2**22 + 1, "manifest": str(tmp_path)}
    (state / "server.json").write_text(json.dumps(record))
    assert one_line_error(lrun(runner, "ps"), 2) == NO_SERVER


# invoke's refusals, before any engine is reached


@pytest.mark.parametrize(
    "payload_args",
    [["--payload", "{not json"], ["--payload-file", "event.json"], ["-"]],
    ids=["payload", "payload-file", "stdin"],
)
def test_invoke_refuses_a_payload_that_is_not_json(
    runner: CliRunner, probe_dir: Path, payload_args: list[str]
) -> None:
    (probe_dir / "event.json").write_text("{not json")
    done = runner.invoke(main, ["invoke", "count", *payload_args], input="{not json")
    line = one_line_error(done, 2)
    assert line.startswith(
        "error: InvalidRequestContentException: Could not parse request body into json: "
        "Could not parse payload into json:"
    )


def test_invoke_refuses_a_payload_over_6_mb(runner: CliRunner, probe_dir: Path) -> None:
    (probe_dir / "big.json").write_text(json.dumps({"blob": "x" * 6_291_456}))
    line = one_line_error(lrun(runner, "invoke", "count", "--payload-file", "big.json"), 2)
    assert line.startswith(
        "error: RequestEntityTooLargeException: Request must be smaller than 6291456 bytes"
    )


def test_invoke_refuses_a_payload_file_it_cannot_read(runner: CliRunner, probe_dir: Path) -> None:
    done = lrun(runner, "invoke", "count", "--payload-file", "absent.json")
    assert done.exit_code == 2 and "cannot read absent.json" in done.stderr
    assert "Traceback" not in done.stderr


def test_invoke_refuses_both_payload_options(runner: CliRunner, probe_dir: Path) -> None:
    (probe_dir / "event.json").write_text("{}")
    done = lrun(runner, "invoke", "count", "--payload", "{}", "--payload-file", "event.json")
    assert done.exit_code == 2
    assert "give the payload once: --payload or --payload-file, not both" in done.stderr


def test_invoke_of_an_unknown_function_names_those_there_are(
    runner: CliRunner, probe_dir: Path
) -> None:
    line = one_line_error(lrun(runner, "invoke", "coutn"), 2)
    assert line == (
        "error: ResourceNotFoundException: Function not found: "
        "arn:aws:lambda:us-east-1:000000000000:function:coutn:$LATEST. "
        f"Functions in {probe_dir / 'lrun.yaml'}: fail, count (did you mean 'count'?)\n"
    )


def test_invoke_without_a_manifest_says_how_to_make_one(runner: CliRunner) -> None:
    line = one_line_error(lrun(runner, "invoke", "x", "--payload", "{}"), 2)
    assert "lrun init" in line


def test_invoke_async_without_a_server_says_to_start_one(
    runner: CliRunner, probe_dir: Path
) -> None:
    line = one_line_error(lrun(runner, "invoke", "count", "--async", "--payload", "{}"), 2)
    assert "lrun serve" in line


@pytest.mark.usefixtures("unreachable_engine")
def test_invoke_with_docker_unreachable_is_one_line(runner: CliRunner, probe_dir: Path) -> None:
    line = one_line_error(lrun(runner, "invoke", "count"), 3)
    assert line.startswith("error: Docker is not reachable (")


def test_invoke_of_a_version_or_alias_needs_the_server(runner: CliRunner, probe_dir: Path) -> None:
    message = one_line_error(lrun(runner, "invoke", "probe:live", "--payload", "{}"), 2)
    assert message.startswith("error: probe:live names a version or an alias, which live in the ")
    assert "start `lrun serve`" in message
