"""Unit tests for orchestrator.invocation: payload checks, the REPORT line, platform errors."""

from __future__ import annotations

import json
import uuid

import pytest

from orchestrator.errors import InvalidRequestContent, LambdaError, RequestTooLarge
from orchestrator.sandbox.invocation import (
    MAX_RESPONSE_PAYLOAD,
    MAX_SYNC_PAYLOAD,
    InvocationResult,
    InvokeRequest,
    Report,
    check_payload,
    end_line,
    invalid_entrypoint,
    new_request_id,
    parse_json,
    response_too_large,
    runtime_exited,
    start_line,
    timed_out,
)

PARSE_PREFIX = "Could not parse request body into json: Could not parse payload into json:"
RID = "8f5b3c1e-1111-4222-8333-944444444444"


def json_of_size(size: int) -> bytes:
    """A valid JSON document (one string) of exactly ``size`` bytes."""
    return b'"' + b"a" * (size - 2) + b'"'


# --- check_payload --------------------------------------------------------------------------


def test_limits_are_lambdas() -> None:
    assert MAX_SYNC_PAYLOAD == 6_291_456
    assert MAX_RESPONSE_PAYLOAD == 6_291_556


@pytest.mark.parametrize("payload", [b"", b" ", b"\n", b" \t\r\n "])
def test_empty_or_blank_payload_becomes_empty_object(payload: bytes) -> None:
    assert check_payload(payload) == b"{}"


@pytest.mark.parametrize(
    "payload", [b'{"a": 1}', b"[1, 2]", b'"text"', b"42", b"null", b"true", b' {"a":1}\n']
)
def test_valid_json_is_delivered_untouched(payload: bytes) -> None:
    assert check_payload(payload) is payload


@pytest.mark.parametrize("payload", [b"{", b"not json", b"{'a': 1}", b'{"a":1} x', b"\xff\xfe{"])
def test_invalid_json_is_invalid_request_content(payload: bytes) -> None:
    with pytest.raises(InvalidRequestContent) as info:
        check_payload(payload)
    error = info.value
    assert error.message.startswith(PARSE_PREFIX + " ")
    assert len(error.message) > len(PARSE_PREFIX) + 1  # the parser's detail follows
    assert error.status == 400
    assert error.error_type == "InvalidRequestContentException"
    assert error.kind == "User"
    assert isinstance(error, LambdaError)
    assert error.body() == {"Type": "User", "message": error.message}


@pytest.mark.parametrize(
    ("payload", "token"),
    [
        (b'{"a": NaN}', "NaN"),
        (b"[Infinity]", "Infinity"),
        (b'{"deep": [1, -Infinity]}', "-Infinity"),
        (b"NaN", "NaN"),
    ],
)
def test_nan_and_infinity_are_refused_as_lambdas_parser_refuses_them(
    payload: bytes, token: str
) -> None:
    with pytest.raises(InvalidRequestContent) as info:
        check_payload(payload)
    assert info.value.message == (
        f"{PARSE_PREFIX} Non-standard token '{token}': enable "
        "JsonParser.Feature.ALLOW_NON_NUMERIC_NUMBERS to allow"
    )


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_json_nested_too_deep_is_invalid_request_content_not_a_crash(depth: int) -> None:
    for payload in (b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth):
        with pytest.raises(InvalidRequestContent) as info:
            check_payload(payload)
        assert info.value.message == (
            f"{PARSE_PREFIX} Document nesting depth exceeds the maximum allowed (about 1000 levels)"
        )


def test_json_nested_a_few_hundred_deep_is_fine() -> None:
    payload = b"[" * 300 + b"]" * 300
    assert check_payload(payload) is payload


def test_parse_json_returns_the_value_and_takes_text_or_bytes() -> None:
    assert parse_json(b'{"a": [1, 2.5, "x", null]}') == {"a": [1, 2.5, "x", None]}
    assert parse_json('"text"') == "text"
    assert parse_json('{"a": 1}'.encode("utf-16")) == {"a": 1}  # as json.loads takes bytes


def test_payload_at_the_limit_is_accepted() -> None:
    payload = json_of_size(MAX_SYNC_PAYLOAD)
    assert len(payload) == 6_291_456
    assert check_payload(payload) is payload


def test_payload_over_the_limit_is_request_too_large() -> None:
    payload = json_of_size(MAX_SYNC_PAYLOAD + 1)
    assert len(payload) == 6_291_457
    with pytest.raises(RequestTooLarge) as info:
        check_payload(payload)
    error = info.value
    assert error.status == 413
    assert error.error_type == "RequestEntityTooLargeException"
    assert "6291456" in error.message
    assert "6291457" in error.message


def test_size_is_checked_before_json() -> None:
    with pytest.raises(RequestTooLarge):
        check_payload(b"x" * (MAX_SYNC_PAYLOAD + 1))


def test_blank_payload_over_the_limit_is_still_too_large() -> None:
    with pytest.raises(RequestTooLarge):
        check_payload(b" " * (MAX_SYNC_PAYLOAD + 1))


# --- InvokeRequest --------------------------------------------------------------------------


def test_with_request_id_assigns_a_uuid_once() -> None:
    request = InvokeRequest(b"{}", "arn:aws:lambda:us-east-1:000000000000:function:f")
    assert request.request_id == ""
    with_id = request.with_request_id()
    assert str(uuid.UUID(with_id.request_id)) == with_id.request_id
    assert with_id.payload == b"{}"
    assert with_id.invoked_arn == request.invoked_arn
    assert with_id.version == "$LATEST"
    assert with_id.with_request_id() is with_id


def test_with_request_id_keeps_every_field() -> None:
    request = InvokeRequest(b"[]", "arn", "7", '{"custom":{}}', "Root=1-abc", "")
    with_id = request.with_request_id()
    assert (with_id.payload, with_id.invoked_arn, with_id.version) == (b"[]", "arn", "7")
    assert (with_id.client_context, with_id.trace_id) == ('{"custom":{}}', "Root=1-abc")


# --- REPORT line ----------------------------------------------------------------------------


def test_report_line_warm() -> None:
    report = Report(RID, duration_ms=1.234, memory_mb=128, max_memory_used_mb=40)
    assert report.line() == (
        f"REPORT RequestId: {RID}\tDuration: 1.23 ms\tBilled Duration: 2 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 40 MB\t"
    )


def test_report_line_cold_with_init_duration() -> None:
    report = Report(RID, 2.5, 256, 71, init_duration_ms=143.456)
    assert report.billed_duration_ms == 146  # ceil(2.5 + 143.456)
    assert report.line() == (
        f"REPORT RequestId: {RID}\tDuration: 2.50 ms\tBilled Duration: 146 ms\t"
        "Memory Size: 256 MB\tMax Memory Used: 71 MB\tInit Duration: 143.46 ms\t"
    )


def test_report_line_timeout() -> None:
    report = Report(RID, 3000.62, 128, 50, status="timeout")
    assert report.line() == (
        f"REPORT RequestId: {RID}\tDuration: 3000.62 ms\tBilled Duration: 3001 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 50 MB\tStatus: timeout\t"
    )


def test_report_line_out_of_memory() -> None:
    report = Report(RID, 812.0, 128, 128, None, "error", "Runtime.OutOfMemory")
    assert report.line() == (
        f"REPORT RequestId: {RID}\tDuration: 812.00 ms\tBilled Duration: 812 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 128 MB\t"
        "Status: error\tError Type: Runtime.OutOfMemory\t"
    )


def test_report_line_cold_timeout_has_init_then_status() -> None:
    report = Report(RID, 1000.0, 128, 33, 200.004, "timeout")
    assert report.line().endswith(
        "\tMax Memory Used: 33 MB\tInit Duration: 200.00 ms\tStatus: timeout\t"
    )
    assert report.billed_duration_ms == 1201


@pytest.mark.parametrize(
    ("duration", "init", "billed"),
    [(0.0, None, 0), (0.01, None, 1), (1.0, None, 1), (99.999, None, 100), (1.5, 0.5, 2)],
)
def test_billed_duration_is_ceiling_of_duration_plus_init(
    duration: float, init: float | None, billed: int
) -> None:
    report = Report(RID, duration, 128, 1, init)
    assert report.billed_duration_ms == billed
    assert isinstance(report.billed_duration_ms, int)
    assert f"\tBilled Duration: {billed} ms\t" in report.line()


def test_start_and_end_lines() -> None:
    assert start_line(RID, "$LATEST") == f"START RequestId: {RID} Version: $LATEST"
    assert end_line(RID) == f"END RequestId: {RID}"


# --- platform errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exit_code", "reason"),
    [
        (0, "Runtime exited without providing a reason"),
        (1, "Runtime exited with error: exit status 1"),
        (3, "Runtime exited with error: exit status 3"),
        (128, "Runtime exited with error: exit status 128"),
        (129, "Runtime exited with error: exit status 129"),
        (130, "Runtime exited with error: signal: interrupt"),
        (134, "Runtime exited with error: signal: aborted"),
        (137, "Runtime exited with error: signal: killed"),
        (139, "Runtime exited with error: signal: segmentation fault"),
        (143, "Runtime exited with error: signal: terminated"),
    ],
)
def test_runtime_exited_messages(exit_code: int, reason: str) -> None:
    error = runtime_exited("abc", exit_code, oom_killed=False)
    assert error.error_type == "Runtime.ExitError"
    assert error.message == f"RequestId: abc Error: {reason}"
    assert error.report_status == "error"


def test_runtime_exited_out_of_memory() -> None:
    error = runtime_exited("abc", 137, oom_killed=True)
    assert error.error_type == "Runtime.OutOfMemory"
    assert error.message == "RequestId: abc Error: Runtime exited with error: signal: killed"
    assert error.report_status == "error"


def test_oom_wins_over_exit_status() -> None:
    assert runtime_exited("abc", 1, oom_killed=True).error_type == "Runtime.OutOfMemory"


def test_timed_out() -> None:
    error = timed_out("X", 3)
    assert error.error_type == "Sandbox.Timedout"
    assert error.message == "RequestId: X Error: Task timed out after 3.00 seconds"
    assert error.report_status == "timeout"
    assert json.loads(error.payload()) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: X Error: Task timed out after 3.00 seconds",
    }


def test_platform_error_payload_is_lambda_error_json() -> None:
    error = runtime_exited("r1", 2, False)
    assert json.loads(error.payload()) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": "RequestId: r1 Error: Runtime exited with error: exit status 2",
    }


def test_invalid_entrypoint() -> None:
    error = invalid_entrypoint("r1", "Couldn't find valid bootstrap(s)")
    assert error.error_type == "Runtime.InvalidEntrypoint"
    assert error.message == "RequestId: r1 Error: Couldn't find valid bootstrap(s)"


def test_response_too_large() -> None:
    error = response_too_large(6_291_557)
    assert error.error_type == "Function.ResponseSizeTooLarge"
    assert error.message == (
        "Response payload size (6291557 bytes) exceeded maximum allowed payload size "
        "(6291556 bytes)."
    )


# --- InvocationResult.log_tail --------------------------------------------------------------


def result_with_log(log: str) -> InvocationResult:
    return InvocationResult(RID, b"{}", None, "$LATEST", log, Report(RID, 1.0, 128, 1))


def test_log_tail_keeps_last_4096_bytes() -> None:
    log = "A" * 1000 + "B" * 4096
    tail = result_with_log(log).log_tail()
    assert tail == "B" * 4096


def test_log_tail_short_log_is_whole() -> None:
    log = "START RequestId: x\nEND RequestId: x\n"
    assert result_with_log(log).log_tail() == log


def test_log_tail_custom_limit() -> None:
    assert result_with_log("0123456789").log_tail(4) == "6789"


def test_log_tail_counts_bytes_not_characters() -> None:
    log = "é" * 3000  # 2 bytes each: 6000 bytes
    tail = result_with_log(log).log_tail()
    assert tail == "é" * 2048
    assert len(tail.encode()) == 4096


def test_log_tail_drops_a_character_cut_in_half() -> None:
    log = "é" * 3000 + "x"  # 6001 bytes: the cut falls inside an "é"
    tail = result_with_log(log).log_tail()
    assert tail == "é" * 2047 + "x"
    assert len(tail.encode()) == 4095


def test_request_ids_are_random_version_4_uuids_as_uuid_prints_them() -> None:
    made = [new_request_id() for _ in range(4096)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    # every variant nibble (8, 9, a, b) occurs: its two random bits are kept
    assert {text[19] for text in made} == set("89ab")
