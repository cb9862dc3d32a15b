"""An invocation's log with LoggingConfig's JSON format: Lambda's platform records in place of
START / END / REPORT, filtered by SystemLogLevel, and the function's JSON lines filtered by
ApplicationLogLevel, in the log as read (``text``) and as written whole (``write``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from orchestrator.manifest.logging_config import LoggingConfig
from orchestrator.sandbox.invocation import LogParts, Report, Span, json_status
from orchestrator.sandbox.log_records import LINE_MAX, FilteringWriter, stamp
from orchestrator.sandbox.output import HEAD_BYTES, Capture, FileSpill

RID = "8f5b3c1e-1111-4222-8333-944444444444"
START, END = 1_764_600_000.25, 1_764_600_000.5  # 2025-12-01T14:40:00.250Z, .500Z
OUTPUT = (
    b"plain print\n"
    b'{"timestamp":"2025-12-01T14:40:00.300Z","level":"DEBUG","message":"d","requestId":"r"}\n'
    b'{"timestamp":"2025-12-01T14:40:00.301Z","level":"WARN","message":"w","requestId":"r"}\n'
    b'{"no":"level here"}\n'
    b'{"level": "info", "msg": "lower case, as Lambda reads it"}\n'
    b'{"level": "WARNING", "message": "python\'s name for WARN"}\n'
    b'{"level":"UNDEFINED","message":"java, no level"}\n'
)


def parts(config: LoggingConfig, output: bytes = OUTPUT, init: bytes = b"") -> LogParts:
    capture = Capture()
    capture.append(output)
    return LogParts(init, capture, "", config, Span(START, END), "success", 17)


def report(**extra: object) -> Report:
    figures: dict[str, object] = {
        "request_id": RID,
        "duration_ms": 12.345,
        "memory_mb": 128,
        "max_memory_used_mb": 60,
    }
    figures.update(extra)
    return Report(**figures)  # type: ignore[arg-type]


def records(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"time"')]


def test_stamps_are_utc_milliseconds_with_z() -> None:
    assert stamp(START) == "2025-12-01T14:40:00.250Z"


def test_json_replaces_start_end_and_report_with_platform_records() -> None:
    text = parts(LoggingConfig("JSON", "INFO", "INFO")).text(report(init_duration_ms=101.5), "7")
    assert "START RequestId" not in text and "REPORT RequestId" not in text
    assert "END RequestId" not in text
    assert records(text) == [
        {
            "time": "2025-12-01T14:40:00.250Z",
            "type": "platform.start",
            "record": {"requestId": RID, "version": "7"},
        },
        {
            "time": "2025-12-01T14:40:00.500Z",
            "type": "platform.report",
            "record": {
                "requestId": RID,
                "metrics": {
                    "durationMs": 12.35,
                    "billedDurationMs": 114,
                    "memorySizeMB": 128,
                    "maxMemoryUsedMB": 60,
                    "initDurationMs": 101.5,
                },
                "status": "success",
            },
        },
    ]
    lines = text.splitlines()
    assert lines[0].startswith('{"time"') and lines[-1].startswith('{"time"')  # in order


def test_application_json_lines_below_the_level_are_dropped_others_kept() -> None:
    text = parts(LoggingConfig("JSON", "WARN", "INFO")).text(report(), "$LATEST")
    assert "plain print\n" in text  # not JSON: kept as it is
    assert '"level":"WARN"' in text
    assert '"level":"DEBUG"' not in text
    assert "level here" not in text  # a JSON object without a level is INFO, as on Lambda
    assert "lower case" not in text  # "info" is INFO, below WARN
    assert "python's name for WARN" in text
    assert "java, no level" in text  # what Java's client never filters, nor does lrun


def test_system_level_debug_adds_runtime_done_and_warn_keeps_none() -> None:
    debug = parts(LoggingConfig("JSON", "INFO", "DEBUG")).text(report(), "$LATEST")
    assert [r["type"] for r in records(debug)] == [
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
    ]
    done = records(debug)[1]["record"]
    assert done == {
        "requestId": RID,
        "status": "success",
        "metrics": {"durationMs": 12.35, "producedBytes": 17},
    }
    warn = parts(LoggingConfig("JSON", "INFO", "WARN")).text(report(), "$LATEST")
    assert records(warn) == []
    assert "plain print" in warn  # the function's lines stay


def test_a_timeout_is_the_reports_status_and_an_error_carries_its_type() -> None:
    timed = report(status="timeout")
    assert json_status(timed, "Unhandled") == "timeout"
    crashed = report(status="error", error_type="Runtime.ExitError")
    assert json_status(crashed, "Unhandled") == "error"
    assert json_status(report(), "Unhandled") == "error"  # the runtime posted an error
    assert json_status(report(), None) == "success"
    config = LoggingConfig("JSON", "INFO", "INFO")
    capture = Capture()
    log = LogParts(b"", capture, "", config, Span(START, END), "error", 0).text(crashed, "1")
    record = records(log)[-1]["record"]
    assert isinstance(record, dict)
    assert record["status"] == "error" and record["errorType"] == "Runtime.ExitError"


def test_text_is_unchanged_by_the_json_machinery() -> None:
    text = parts(LoggingConfig()).text(report(), "$LATEST")
    assert text.startswith(f"START RequestId: {RID} Version: $LATEST\n")
    assert OUTPUT.decode() in text  # nothing filtered: levels apply with JSON only
    assert f"END RequestId: {RID}\nREPORT RequestId: {RID}\t" in text


def test_init_output_is_filtered_too() -> None:
    init = b'{"level":"DEBUG","message":"init detail"}\nstarting\n'
    text = parts(LoggingConfig("JSON", "INFO", "INFO"), b"", init).text(report(), "$LATEST")
    assert "init detail" not in text
    assert text.startswith("starting\n")


def test_the_whole_log_written_from_a_spill_is_the_text_log(tmp_path: Path) -> None:
    """A log too large to hold is written through a line filter: the same result."""
    config = LoggingConfig("JSON", "WARN", "INFO")
    capture = Capture("fn-req", FileSpill(tmp_path, 100 * HEAD_BYTES))
    body = OUTPUT * (3 * HEAD_BYTES // len(OUTPUT))
    for start in range(0, len(body), 1000):  # in chunks that cut lines in two
        capture.append(body[start : start + 1000])
    logged = LogParts(b"", capture, "", config, Span(START, END), "success", 0)
    out = io.BytesIO()
    logged.write(out, report(), "$LATEST")
    written = out.getvalue().decode()
    assert written.count("plain print") == body.count(b"plain print")
    assert '"level":"DEBUG"' not in written
    assert written.count('"level":"WARN"') == body.count(b'"level":"WARN"')
    assert [r["type"] for r in records(written)] == ["platform.start", "platform.report"]


def test_the_line_filter_holds_at_most_a_bounded_line() -> None:
    out = io.BytesIO()
    writer = FilteringWriter(out, LoggingConfig("JSON", "ERROR", "INFO"))
    writer.write(b"x" * (LINE_MAX + 10))  # no newline yet: written through, not held
    assert len(out.getvalue()) == LINE_MAX + 10
    writer.write(b'\n{"level":"DEBUG"}\n{"level":"ERROR"}')
    writer.close()
    assert out.getvalue().endswith(b'x\n{"level":"ERROR"}')
