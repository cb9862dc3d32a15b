"""LoggingConfig on every runtime, with real images and containers (issue 14, item 1): with
``format: JSON`` the platform's lines are JSON records, each runtime's client writes its own
JSON records (Python: awslambdaric; Node.js and Java: lrun's clients, as AWS's), and lines below
``application_log_level`` are gone; Ruby and provided functions keep their lines as written, less
the JSON ones below the level, as on Lambda. Java's text format and its java.time / Optional
POJOs are here too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.sandbox.invocation import InvocationResult
from tests.conftest import FUNCTIONS
from tests.integration.conftest import load_function

CODE = FUNCTIONS / "logging"
JSON_WARN = "logging: {format: JSON, application_log_level: WARN}"


def records(log: str) -> list[dict[str, Any]]:
    """Every line of the log that is a JSON object."""
    found = []
    for line in log.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def platform(log: str) -> list[str]:
    return [r["type"] for r in records(log) if str(r.get("type", "")).startswith("platform.")]


def check_platform_records(result: InvocationResult) -> None:
    """START/END/REPORT replaced by Lambda's records, carrying this invocation's id."""
    assert result.function_error is None, (result.payload, result.log)
    assert "START RequestId" not in result.log and "REPORT RequestId" not in result.log
    assert platform(result.log) == ["platform.start", "platform.report"], result.log
    report = [r for r in records(result.log) if r.get("type") == "platform.report"][0]["record"]
    assert report["requestId"] == result.request_id
    assert report["status"] == "success"
    assert set(report["metrics"]) >= {"durationMs", "billedDurationMs", "memorySizeMB"}


def app_records(log: str) -> list[dict[str, Any]]:
    return [r for r in records(log) if "type" not in r]


@pytest.fixture
def functions(write_manifest) -> Path:
    return write_manifest(
        f"""
functions:
  python: {{runtime: python3.13, handler: levels.handler, code: {CODE}, {JSON_WARN}}}
  node: {{runtime: nodejs20.x, handler: levels.handler, code: {CODE}, {JSON_WARN}}}
  ruby: {{runtime: ruby3.3, handler: levels.handler, code: {CODE}, {JSON_WARN}}}
  provided: {{runtime: provided, code: {CODE}, {JSON_WARN}}}
  debug:
    runtime: python3.13
    handler: levels.handler
    code: {CODE}
    logging: {{format: JSON, application_log_level: DEBUG, system_log_level: DEBUG}}
  quiet:
    runtime: python3.13
    handler: levels.handler
    code: {CODE}
    logging: {{format: JSON, system_log_level: WARN}}
"""
    )


def test_python_logging_records_are_awslambdarics_json(invoke, functions) -> None:
    result = invoke(load_function(functions, "python"))
    check_platform_records(result)
    [warn] = app_records(result.log)
    assert warn["level"] == "WARNING" and warn["message"] == "python warn"  # logging's name
    assert warn["requestId"] == result.request_id
    assert "python print\n" in result.log  # print is not logging: as it is
    assert "python info" not in result.log and "python debug" not in result.log
    assert "python json debug" not in result.log  # a JSON line below the level: Lambda drops it


def test_node_console_records_are_the_rics_json(invoke, functions) -> None:
    result = invoke(load_function(functions, "node"))
    check_platform_records(result)
    warn, error = app_records(result.log)
    assert warn == {
        "timestamp": warn["timestamp"],
        "level": "WARN",
        "requestId": result.request_id,
        "message": "node warn { n: 1 }",
    }
    assert error["level"] == "ERROR"
    assert error["message"]["errorType"] == "TypeError"
    assert error["message"]["errorMessage"] == "node error"
    assert error["message"]["stackTrace"][0] == "TypeError: node error"
    assert "node debug" not in result.log and "node info" not in result.log
    assert "node json debug" not in result.log


@pytest.mark.parametrize("name", ["ruby", "provided"])
def test_other_runtimes_keep_their_lines_less_json_below_the_level(
    invoke, functions, name: str
) -> None:
    result = invoke(load_function(functions, name))
    check_platform_records(result)
    assert f"{name} plain\n" in result.log
    assert f"{name} json debug" not in result.log
    kept = app_records(result.log)
    assert [r["message"] for r in kept] == [f"{name} json {'error' if name == 'ruby' else 'warn'}"]


def test_system_level_debug_adds_runtime_done_and_warn_drops_them(invoke, functions) -> None:
    debug = invoke(load_function(functions, "debug"))
    assert platform(debug.log) == ["platform.start", "platform.runtimeDone", "platform.report"]
    assert "python debug" in debug.log and "python json debug" in debug.log
    quiet = invoke(load_function(functions, "quiet"))
    assert platform(quiet.log) == []
    assert "python info" in quiet.log  # the application's level is INFO


def test_a_timeout_is_a_report_with_status_timeout(invoke, write_manifest) -> None:
    path = write_manifest(
        "functions:\n  slow: {runtime: python3.13, handler: modes.handler, "
        f"code: {FUNCTIONS / 'python'}, timeout: 1, logging: {{format: JSON}}}}\n"
    )
    result = invoke(load_function(path, "slow"), b'{"sleep": 3}')
    assert result.function_error == "Unhandled"
    report = records(result.log)[-1]
    assert report["type"] == "platform.report"
    assert report["record"]["status"] == "timeout", result.log


# --- Java: its log format in both formats, and its dates ---------------------------------


def java_manifest(write_manifest, code: Path, logging: str = "") -> Path:
    extra = f", {logging}" if logging else ""
    return write_manifest(
        f"functions:\n  logs: {{runtime: java21, code: {code}, handler: example.Logs{extra}}}\n"
        f"  dated: {{runtime: java21, code: {code}, handler: example.Dated}}\n"
    )


def test_java_text_logs_are_awss(invoke, write_manifest, java_code) -> None:
    """Text: LambdaLogger.log(message) as it is, with a level "[LEVEL] message", nothing
    filtered; System.out and System.err as they are."""
    result = invoke(load_function(java_manifest(write_manifest, java_code), "logs"))
    assert result.function_error is None, result.log
    lines = result.log.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("START RequestId")))
    assert lines[start + 1 : start + 7] == [
        "[DEBUG] java debug",
        "[WARN] java warn",
        "java no level",
        "[ERROR] java error from LambdaRuntime",
        "java stdout",
        "java stderr",
    ]


def test_java_json_logs_are_awss(invoke, write_manifest, java_code) -> None:
    path = java_manifest(write_manifest, java_code, JSON_WARN)
    result = invoke(load_function(path, "logs"))
    check_platform_records(result)
    kept = app_records(result.log)
    assert [(r["level"], r["message"]) for r in kept] == [
        ("WARN", "java warn\n"),
        ("UNDEFINED", "java no level\n"),  # a call without a level is never dropped
        ("ERROR", "java error from LambdaRuntime\n"),
    ]
    assert all(r["AWSRequestId"] == result.request_id for r in kept)
    assert list(kept[0]) == ["timestamp", "message", "level", "AWSRequestId"]
    assert "java debug" not in result.log
    assert "java stdout\n" in result.log and "java stderr\n" in result.log


def test_java_pojos_with_dates_and_optionals_are_written_as_awss_jackson(
    invoke, write_manifest, java_code
) -> None:
    """aws-lambda-java-serialization's JavaTimeModule and Jdk8Module, Jackson's defaults: an
    Instant as decimal epoch seconds, a LocalDate as [y, m, d], an empty Optional as null."""
    path = java_manifest(write_manifest, java_code)
    event = {"at": "2024-01-15T10:30:00.123Z", "day": "2024-02-28", "note": "hi"}
    result = invoke(load_function(path, "dated"), json.dumps(event).encode())
    assert result.function_error is None, (result.payload, result.log)
    assert result.payload == (
        b'{"at":1705314660.123000000,"day":[2024,2,29],"note":"HI","missing":null}'
    )
