"""AWS's event-stream framing (``application/vnd.amazon.eventstream``), as
``InvokeWithResponseStream`` answers with it: one binary message per event, each with its own
length and CRC-32 checksums, which SDKs check before they hand the event over.

A message: total length and headers length (4 bytes each, big-endian), the CRC-32 of those 8
bytes, the headers, the payload, then the CRC-32 of everything before it. A header: its name's
length (1 byte), the name, its value type (7: a string), the value's length (2 bytes), the value.
(AWS's "Event stream encoding" reference; botocore's ``eventstream.py`` reads it.)
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping

_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        struct.pack(">B", len(raw_name))
        + raw_name
        + struct.pack(">BH", _STRING, len(raw_value))
        + raw_value
    )


def message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message."""
    head = b"".join(_header(k, v) for k, v in headers.items())
    prelude = _PRELUDE.pack(12 + len(head) + len(payload) + 4, len(head))
    framed = prelude + _CRC.pack(zlib.crc32(prelude)) + head + payload
    return framed + _CRC.pack(zlib.crc32(framed))


def _event(event_type: str, content_type: str, payload: bytes) -> bytes:
    headers = {":event-type": event_type, ":content-type": content_type, ":message-type": "event"}
    return message(headers, payload)


def payload_chunk(data: bytes) -> bytes:
    """A ``PayloadChunk`` event: a piece of the function's response, as it came."""
    return _event("PayloadChunk", "application/octet-stream", data)


def invoke_complete(
    error_code: str | None = None, error_details: str | None = None, log_result: str | None = None
) -> bytes:
    """The ``InvokeComplete`` event that ends the stream (its members only when set)."""
    members = {"ErrorCode": error_code, "ErrorDetails": error_details, "LogResult": log_result}
    body = {k: v for k, v in members.items() if v is not None}
    return _event("InvokeComplete", "application/json", json.dumps(body).encode())
