"""An invocation's log in Lambda's JSON format (``LoggingConfig.LogFormat: JSON``).

With JSON, Lambda writes its own lines as Telemetry API records (the telemetry schema: ``time``,
``type``, ``record``) instead of START / END / REPORT, and keeps only those at or above the
function's ``SystemLogLevel``:

- ``platform.start`` {requestId, version} and ``platform.report`` {requestId, metrics, status,
  errorType?} at INFO;
- ``platform.runtimeDone`` {requestId, status, metrics: {durationMs, producedBytes}} at DEBUG.

Which records Lambda emits at which system level is lrun's reading of AWS's log-level and
telemetry pages (``monitoring-cloudwatchlogs-log-level``, ``telemetry-schema-reference``); the
record shapes are the schema's.

The function's own lines: a line that is a JSON object is kept only if its ``level`` (INFO when
missing or invalid, as Lambda reads it) is at or above ``ApplicationLogLevel``, whichever runtime
wrote it: Lambda's rule for runtimes and logging methods its clients do not cover, and harmless
for those they do (their clients filter first). Other lines are kept as they are: lrun never
drops a line it cannot give a level (AWS's pages do not say what Lambda does with them).
"""

from __future__ import annotations

import datetime
import json
from typing import Any, BinaryIO

from orchestrator.manifest.logging_config import APPLICATION_LEVELS, LoggingConfig


def stamp(epoch_s: float) -> str:
    """Lambda's record time: UTC, milliseconds, ``Z``."""
    moment = datetime.datetime.fromtimestamp(epoch_s, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _line(epoch_s: float, kind: str, record: dict[str, Any]) -> str:
    body = {"time": stamp(epoch_s), "type": kind, "record": record}
    return json.dumps(body, separators=(",", ":")) + "\n"


def start_record(config: LoggingConfig, epoch_s: float, request_id: str, version: str) -> str:
    if not config.keeps_system("INFO"):
        return ""
    return _line(epoch_s, "platform.start", {"requestId": request_id, "version": version})


def done_records(
    config: LoggingConfig, epoch_s: float, figures: dict[str, Any], status: str
) -> str:
    """``platform.runtimeDone`` (DEBUG) then ``platform.report`` (INFO), as kept by the
    function's SystemLogLevel. ``figures`` holds the REPORT line's values (see ``report_figures``).
    """
    out = []
    request_id = figures["requestId"]
    error_type = figures.get("errorType")
    if config.keeps_system("DEBUG"):
        done: dict[str, Any] = {"requestId": request_id, "status": status}
        if error_type is not None:
            done["errorType"] = error_type
        done["metrics"] = {
            "durationMs": figures["durationMs"],
            "producedBytes": figures["producedBytes"],
        }
        out.append(_line(epoch_s, "platform.runtimeDone", done))
    if config.keeps_system("INFO"):
        metrics = {
            key: figures[key]
            for key in (
                "durationMs",
                "billedDurationMs",
                "memorySizeMB",
                "maxMemoryUsedMB",
                "initDurationMs",
            )
            if figures.get(key) is not None
        }
        report: dict[str, Any] = {"requestId": request_id, "metrics": metrics, "status": status}
        if error_type is not None:
            report["errorType"] = error_type
        out.append(_line(epoch_s, "platform.report", report))
    return "".join(out)


def _level(line: bytes) -> str | None:
    """The level Lambda gives a line that is a JSON object: its ``level`` if that is a known
    level, else INFO (Lambda's rule for a missing or invalid one); None for any other line."""
    text = line.strip()
    if not text.startswith(b"{") or not text.endswith(b"}"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    level = value.get("level")
    if isinstance(level, str):
        upper = level.upper()
        upper = _ALIASES.get(upper, upper)
        if upper in APPLICATION_LEVELS:
            return upper
        if upper == "UNDEFINED":  # Java's LambdaLogger.log(message): its client never drops it
            return None
    return "INFO"


# Other runtimes' names for Lambda's levels: Python's logging writes WARNING and CRITICAL (as
# awslambdaric's JSON records carry them).
_ALIASES = {"WARNING": "WARN", "CRITICAL": "FATAL"}


def keeps_line(config: LoggingConfig, line: bytes) -> bool:
    level = _level(line)
    return level is None or config.keeps_application(level)


def filtered(config: LoggingConfig, output: bytes) -> bytes:
    """``output`` less the JSON lines below ApplicationLogLevel (all of it with Text)."""
    if not config.json or b"{" not in output:
        return output
    lines = output.splitlines(keepends=True)
    return b"".join(line for line in lines if keeps_line(config, line))


# A line longer than this is written as it is rather than held whole to be looked at (D9).
LINE_MAX = 256 * 1024


class FilteringWriter:
    """Writes through to ``out`` whole lines that ``keeps_line`` keeps; ``close`` writes the
    unfinished last line. For logs too large to filter in memory (spilled output)."""

    def __init__(self, out: BinaryIO, config: LoggingConfig) -> None:
        self._out = out
        self._config = config
        self._pending = b""

    def write(self, data: bytes) -> int:
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            if keeps_line(self._config, line):
                self._out.write(line + b"\n")
        if len(self._pending) > LINE_MAX:
            self._out.write(self._pending)
            self._pending = b""
        return len(data)

    def writelines(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def close(self) -> None:
        if self._pending and keeps_line(self._config, self._pending):
            self._out.write(self._pending)
        self._pending = b""
