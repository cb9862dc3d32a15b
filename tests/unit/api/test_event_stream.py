"""The event-stream framing, read back by botocore's own decoder (which checks both CRCs), and
by botocore's parser for InvokeWithResponseStream's output as boto3 reads it."""

from __future__ import annotations

import json
import zlib

import botocore.parsers
import botocore.session
import pytest
from botocore.eventstream import ChecksumMismatch, EventStream, EventStreamBuffer

from orchestrator.api.event_stream import invoke_complete, message, payload_chunk


def decoded(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(m.headers, m.payload) for m in buffer]


def test_a_payload_chunk_is_an_event_with_the_bytes_as_they_are() -> None:
    assert decoded(payload_chunk(b"\x00hello\xff")) == [
        (
            {
                ":event-type": "PayloadChunk",
                ":content-type": "application/octet-stream",
                ":message-type": "event",
            },
            b"\x00hello\xff",
        )
    ]


def test_invoke_complete_carries_only_the_members_set() -> None:
    [(headers, payload)] = decoded(invoke_complete())
    assert headers[":event-type"] == "InvokeComplete"
    assert headers[":content-type"] == "application/json"
    assert json.loads(payload) == {}
    [(_, payload)] = decoded(invoke_complete("Sandbox.Timedout", '{"errorType":"x"}', "TE9H"))
    assert json.loads(payload) == {
        "ErrorCode": "Sandbox.Timedout",
        "ErrorDetails": '{"errorType":"x"}',
        "LogResult": "TE9H",
    }


def test_the_checksums_are_crc32_of_prelude_and_message() -> None:
    framed = message({"a": "b"}, b"payload")
    assert int.from_bytes(framed[:4], "big") == len(framed)
    assert int.from_bytes(framed[8:12], "big") == zlib.crc32(framed[:8])
    assert int.from_bytes(framed[-4:], "big") == zlib.crc32(framed[:-4])
    broken = framed[:-5] + b"X" + framed[-4:]
    with pytest.raises(ChecksumMismatch):
        decoded(broken)


def test_botocore_parses_the_stream_into_invoke_with_response_streams_events() -> None:
    model = botocore.session.get_session().get_service_model("lambda")
    output = model.operation_model("InvokeWithResponseStream").output_shape
    event_shape = output.members["EventStream"]
    body = payload_chunk(b"one") + payload_chunk(b"two") + invoke_complete("Error", "{}")

    class Raw:
        def stream(self) -> list[bytes]:
            return [body[:7], body[7:30], body[30:]]  # however the bytes arrive

        def close(self) -> None:
            pass

    parser = botocore.parsers.EventStreamJSONParser()
    events = list(EventStream(Raw(), event_shape, parser, "InvokeWithResponseStream"))
    assert events == [
        {"PayloadChunk": {"Payload": b"one"}},
        {"PayloadChunk": {"Payload": b"two"}},
        {"InvokeComplete": {"ErrorCode": "Error", "ErrorDetails": "{}"}},
    ]
