"""One invocation as values: the request, the result, Lambda's log lines and platform errors."""

from __future__ import annotations

import functools
import json
import math
import os
import random
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from orchestrator.errors import InvalidRequestContent, RequestTooLarge
from orchestrator.manifest.logging_config import LoggingConfig
from orchestrator.sandbox.log_records import (
    FilteringWriter,
    done_records,
    filtered,
    start_record,
)
from orchestrator.sandbox.output import Capture

MAX_SYNC_PAYLOAD = 6_291_456  # bytes; Lambda's RequestResponse request limit
MAX_RESPONSE_PAYLOAD = 6_291_556  # bytes; what the Runtime API accepts in /response
UNHANDLED = "Unhandled"


@dataclass(frozen=True)
class InvokeRequest:
    payload: bytes
    invoked_arn: str
    version: str = "$LATEST"
    client_context: str | None = None  # JSON, already base64-decoded
    trace_id: str | None = None
    request_id: str = ""

    def with_request_id(self) -> InvokeRequest:
        if self.request_id:
            return self
        return InvokeRequest(
            self.payload,
            self.invoked_arn,
            self.version,
            self.client_context,
            self.trace_id,
            new_request_id(),
        )


# The variant nibble of an RFC 4122 UUID: 10xx in binary, from any random nibble.
_VARIANT = {f"{n:x}": f"{8 | (n & 3):x}" for n in range(16)}


def new_request_id() -> str:
    """A random (version 4) UUID as text, exactly as ``str(uuid.uuid4())`` is made, from the
    same 16 random bytes, without the ``UUID`` object (a fifth of the time: every invocation
    makes one)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def trace_header(epoch_s: float) -> str:
    """A fresh X-Ray trace header, as Lambda makes one for an invocation that arrives without
    (``Root=1-<epoch seconds, 8 hex>-<24 hex>;Parent=<16 hex>;Sampled=0``): tracers such as
    Powertools' warn on every call without one. A trace id names a trace, it guards nothing,
    so its 160 random bits come from ``random`` (no system call on the warm path)."""
    bits = f"{random.getrandbits(160):040x}"
    return f"Root=1-{int(epoch_s):08x}-{bits[:24]};Parent={bits[24:]};Sampled=0"


def _non_numeric(token: str) -> Any:
    # Lambda's parser (Jackson) refuses NaN and Infinity, which Python's would take, and a
    # runtime would then choke on: refuse them here, in Jackson's words.
    raise ValueError(
        f"Non-standard token '{token}': enable JsonParser.Feature.ALLOW_NON_NUMERIC_NUMBERS "
        "to allow"
    )


_STRICT = json.JSONDecoder(parse_constant=_non_numeric)


def parse_json(data: bytes | str) -> Any:
    """JSON as Lambda reads a request body: strictly (no NaN, no Infinity), and never nested
    so deep that parsing exhausts the stack; ``ValueError`` with the reason otherwise."""
    text = (
        data.decode(json.detect_encoding(data), "surrogatepass")
        if isinstance(data, bytes)
        else data
    )
    try:
        return _STRICT.decode(text)
    except RecursionError:
        raise ValueError(
            "Document nesting depth exceeds the maximum allowed (about 1000 levels)"
        ) from None


def check_payload(payload: bytes) -> bytes:
    """The payload to deliver, or Lambda's error for one it would refuse; ``b""`` means ``{}``."""
    if len(payload) > MAX_SYNC_PAYLOAD:
        raise RequestTooLarge(
            f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction "
            f"operation (this one is {len(payload)} bytes)"
        )
    if not payload.strip():
        return b"{}"
    try:
        parse_json(payload)
    except ValueError as exc:  # UnicodeDecodeError too
        raise InvalidRequestContent(
            f"Could not parse request body into json: Could not parse payload into json: {exc}"
        ) from exc
    return payload


@dataclass(frozen=True)
class Report:
    """The figures of Lambda's REPORT line."""

    request_id: str
    duration_ms: float
    memory_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None
    status: str | None = None  # "timeout" | "error"
    error_type: str | None = None
    # A streamed answer's time to first byte: from the runtime taking the event to the first
    # byte of its answer (lrun's figure; Lambda reports it in its telemetry, not in REPORT).
    time_to_first_byte_ms: float | None = None

    @property
    def billed_duration_ms(self) -> int:
        # Since August 2025 Lambda bills the init phase of on-demand environments too.
        return math.ceil(self.duration_ms + (self.init_duration_ms or 0.0))

    def line(self) -> str:
        fields = [
            f"REPORT RequestId: {self.request_id}",
            f"Duration: {self.duration_ms:.2f} ms",
            f"Billed Duration: {self.billed_duration_ms} ms",
            f"Memory Size: {self.memory_mb} MB",
            f"Max Memory Used: {self.max_memory_used_mb} MB",
        ]
        if self.init_duration_ms is not None:
            fields.append(f"Init Duration: {self.init_duration_ms:.2f} ms")
        if self.time_to_first_byte_ms is not None:
            fields.append(f"Time To First Byte: {self.time_to_first_byte_ms:.2f} ms")
        if self.status is not None:
            fields.append(f"Status: {self.status}")
        if self.error_type is not None:
            fields.append(f"Error Type: {self.error_type}")
        return "\t".join(fields) + "\t"


@dataclass(frozen=True)
class LogParts:
    """An invocation's log in pieces: put together only when someone reads it, which for a
    server happens in its log writer's thread, off the invocation's path."""

    init_output: bytes  # what the runtime wrote while it started (cold starts only)
    # What it wrote during the invocation, as kept (bounded): the environment's capture for it,
    # which keeps taking late output until the next invocation is handed over, so read it as
    # late as possible.
    output: Capture
    platform: str  # lines the platform adds (a timeout, a runtime exit)
    logging: LoggingConfig = LoggingConfig()
    when: Span = field(default_factory=lambda: Span(0.0, 0.0))
    status: str = "success"  # platform.report's status (JSON format)
    produced_bytes: int = 0  # the response's size, for platform.runtimeDone (JSON format)

    def text(self, report: Report, version: str) -> str:
        if self.logging.json:
            return (
                _text(filtered(self.logging, self.init_output))
                + start_record(self.logging, self.when.start, report.request_id, version)
                + _text(filtered(self.logging, self.output.bytes()))
                + self._done(report)
            )
        return (
            _text(self.init_output)
            + f"{start_line(report.request_id, version)}\n"
            + _text(self.output.bytes())
            + self.platform
            + f"{end_line(report.request_id)}\n{report.line()}\n"
        )

    def write(self, out: BinaryIO, report: Report, version: str) -> None:
        """Write the log as ``text`` would make it, but with all of the output there is (read
        back from its spill), without holding it in memory."""
        if self.logging.json:
            out.write(_text(filtered(self.logging, self.init_output)).encode())
            start = start_record(self.logging, self.when.start, report.request_id, version)
            out.write(start.encode())
            writer = FilteringWriter(out, self.logging)
            self.output.write_whole(cast(BinaryIO, writer))
            writer.close()
            if not self.output.ends_line():
                out.write(b"\n")
            out.write(self._done(report).encode())
            return
        out.write(_text(self.init_output).encode())
        out.write(f"{start_line(report.request_id, version)}\n".encode())
        self.output.write_whole(out)
        if not self.output.ends_line():
            out.write(b"\n")
        out.write(f"{self.platform}{end_line(report.request_id)}\n{report.line()}\n".encode())

    def _done(self, report: Report) -> str:
        return done_records(
            self.logging, self.when.end, report_figures(report, self.produced_bytes), self.status
        )


@dataclass(frozen=True)
class Span:
    """When an invocation started and ended, in epoch seconds (the JSON records' times)."""

    start: float
    end: float


def report_figures(report: Report, produced_bytes: int) -> dict[str, Any]:
    """The REPORT line's values under the telemetry schema's names."""
    return {
        "requestId": report.request_id,
        "durationMs": round(report.duration_ms, 2),
        "billedDurationMs": report.billed_duration_ms,
        "memorySizeMB": report.memory_mb,
        "maxMemoryUsedMB": report.max_memory_used_mb,
        "initDurationMs": (
            round(report.init_duration_ms, 2) if report.init_duration_ms is not None else None
        ),
        "errorType": report.error_type,
        "producedBytes": produced_bytes,
    }


def json_status(report: Report, function_error: str | None) -> str:
    """platform.report's status: timeout, error (the runtime posted one, or the platform saw it
    fail), else success."""
    if report.status == "timeout":
        return "timeout"
    if report.status is not None or function_error is not None:
        return "error"
    return "success"


def _text(output: bytes) -> str:
    text = output.decode(errors="replace")
    return text if not text or text.endswith("\n") else text + "\n"


@dataclass(frozen=True)
class InvocationResult:
    request_id: str
    payload: bytes
    function_error: str | None  # "Unhandled" when the function failed, as Lambda says it
    executed_version: str
    raw_log: str | LogParts  # the invocation's log: START ... END, REPORT
    report: Report
    content_type: str = "application/json"
    trace_id: str = ""  # the X-Ray trace header the runtime was given (traces join on it)

    @functools.cached_property
    def log(self) -> str:
        if isinstance(self.raw_log, str):
            return self.raw_log
        return self.raw_log.text(self.report, self.executed_version)

    def write_log(self, out: BinaryIO) -> None:
        """Write the whole log, all of the output included (``log`` shows its head and tail)."""
        if isinstance(self.raw_log, str):
            out.write(self.raw_log.encode())
        else:
            self.raw_log.write(out, self.report, self.executed_version)

    def log_tail(self, limit: int = 4096) -> str:
        """The last ``limit`` bytes of the log, as Lambda's ``LogType: Tail`` returns them."""
        return self.log.encode()[-limit:].decode(errors="ignore")


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


@dataclass(frozen=True)
class PlatformError:
    """An error the platform reports for a function (not one its runtime posted)."""

    error_type: str
    message: str
    report_status: str = "error"

    def payload(self) -> bytes:
        return json.dumps({"errorType": self.error_type, "errorMessage": self.message}).encode()


def timed_out(request_id: str, timeout_s: float) -> PlatformError:
    return PlatformError(
        "Sandbox.Timedout",
        f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
        report_status="timeout",
    )


def runtime_exited(request_id: str, exit_code: int, oom_killed: bool) -> PlatformError:
    if oom_killed:
        return PlatformError(
            "Runtime.OutOfMemory",
            f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
        )
    signal = _SIGNALS.get(exit_code - 128)
    if exit_code == 0:
        reason = "Runtime exited without providing a reason"
    elif signal is not None:
        reason = f"Runtime exited with error: signal: {signal}"
    else:
        reason = f"Runtime exited with error: exit status {exit_code}"
    return PlatformError("Runtime.ExitError", f"RequestId: {request_id} Error: {reason}")


# An exit status of 128 + N means signal N, named as Go names them (Lambda says "signal: killed").
# Only real signal deaths: runtimes also exit 128 or 129 on purpose (AWS's Node client does).
_SIGNALS = {2: "interrupt", 6: "aborted", 9: "killed", 11: "segmentation fault", 15: "terminated"}


def invalid_entrypoint(request_id: str, detail: str) -> PlatformError:
    return PlatformError("Runtime.InvalidEntrypoint", f"RequestId: {request_id} Error: {detail}")


def response_too_large(size: int | None, limit: int = MAX_RESPONSE_PAYLOAD) -> PlatformError:
    """Lambda's error for a response over ``limit``; ``size`` is None when the response was
    streamed and cut off at the limit, its whole size never known."""
    declared = f" ({size} bytes)" if size is not None else ""
    return PlatformError(
        "Function.ResponseSizeTooLarge",
        f"Response payload size{declared} exceeded maximum allowed payload size ({limit} bytes).",
    )
