"""CBOR (RFC 8949), as much as Smithy's RPC v2 CBOR protocol uses: what botocore's
CloudWatch client sends (``smithy-protocol: rpc-v2-cbor``) and reads back.

Decoding is bounded (DESIGN D9): a request body is already capped by the HTTP server; nesting
is capped at ``MAX_DEPTH`` and every length is checked against the bytes left, so a hostile
body costs at most its own size. Timestamps are tag 1 (epoch seconds), as botocore writes them;
``Timestamp`` values encode that way.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import LrunError

MAX_DEPTH = 32


class CborError(LrunError):
    """A body that is not CBOR as the protocol sends it."""


@dataclass(frozen=True)
class Timestamp:
    """Epoch seconds, encoded as CBOR tag 1."""

    seconds: float


_BREAK = object()


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, count: int) -> bytes:
        if count < 0 or self.at + count > len(self.data):
            raise CborError("CBOR body ends inside an item")
        chunk = self.data[self.at : self.at + count]
        self.at += count
        return chunk

    def argument(self, info: int) -> int | None:
        if info < 24:
            return info
        if info in (24, 25, 26, 27):
            return int.from_bytes(self.take(1 << (info - 24)), "big")
        if info == 31:
            return None  # indefinite length
        raise CborError(f"CBOR additional information {info} is reserved")

    def item(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise CborError(f"CBOR body nests deeper than {MAX_DEPTH}")
        initial = self.take(1)[0]
        major, info = initial >> 5, initial & 31
        if major == 7:
            return self._simple(info)
        value = self.argument(info)
        if major == 0:
            return value
        if major == 1:
            return -1 - (value or 0)
        if major in (2, 3):
            if value is None:
                chunks = []
                while (chunk := self.item(depth + 1)) is not _BREAK:
                    chunks.append(chunk)
                joined = b"".join(c.encode() if isinstance(c, str) else c for c in chunks)
            else:
                joined = self.take(value)
            if major == 2:
                return joined
            try:
                return joined.decode("utf-8")
            except UnicodeDecodeError:
                raise CborError("CBOR text is not UTF-8") from None
        if major == 4:
            items: list[Any] = []
            while value is None or len(items) < value:
                if value is not None and value > len(self.data) - self.at:
                    raise CborError("CBOR array longer than the body")
                found = self.item(depth + 1)
                if found is _BREAK:
                    break
                items.append(found)
            return items
        if major == 5:
            mapping: dict[Any, Any] = {}
            count = 0
            while value is None or count < value:
                if value is not None and value > len(self.data) - self.at:
                    raise CborError("CBOR map longer than the body")
                key = self.item(depth + 1)
                if key is _BREAK:
                    break
                if not isinstance(key, str | int):
                    raise CborError("CBOR map key is not a string")
                mapping[key] = self.item(depth + 1)
                count += 1
            return mapping
        # major 6: a tag; 1 is an epoch timestamp, others pass their value through
        tagged = self.item(depth + 1)
        if value == 1 and isinstance(tagged, int | float):
            return Timestamp(float(tagged))
        return tagged

    def _simple(self, info: int) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info in (22, 23):
            return None
        if info == 25:
            return _half(self.take(2))
        if info == 26:
            return struct.unpack(">f", self.take(4))[0]
        if info == 27:
            return struct.unpack(">d", self.take(8))[0]
        if info == 31:
            return _BREAK
        raise CborError(f"CBOR simple value {info} is not supported")


def _half(data: bytes) -> float:
    bits = int.from_bytes(data, "big")
    sign = -1.0 if bits & 0x8000 else 1.0
    exponent, fraction = (bits >> 10) & 0x1F, bits & 0x3FF
    if exponent == 0:
        return sign * fraction * 2.0**-24
    if exponent == 31:
        return sign * float("inf") if fraction == 0 else float("nan")
    return sign * (1 + fraction / 1024) * 2.0 ** (exponent - 15)


def loads(data: bytes) -> Any:
    if not data:
        return {}
    reader = _Reader(data)
    found = reader.item()
    if found is _BREAK or reader.at != len(data):
        raise CborError("CBOR body has bytes after its item")
    return found


def _head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes([major << 5 | info]) + value.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def dumps(value: Any) -> bytes:
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _encode(value: Any, out: bytearray) -> None:
    if value is None:
        out.append(0xF6)
    elif value is True:
        out.append(0xF5)
    elif value is False:
        out.append(0xF4)
    elif isinstance(value, Timestamp):
        out.extend(_head(6, 1))
        _encode(value.seconds, out)
    elif isinstance(value, int):
        out.extend(_head(0, value) if value >= 0 else _head(1, -1 - value))
    elif isinstance(value, float):
        out.append(0xFB)
        out.extend(struct.pack(">d", value))
    elif isinstance(value, str):
        data = value.encode()
        out.extend(_head(3, len(data)))
        out.extend(data)
    elif isinstance(value, bytes):
        out.extend(_head(2, len(value)))
        out.extend(value)
    elif isinstance(value, list | tuple):
        out.extend(_head(4, len(value)))
        for item in value:
            _encode(item, out)
    elif isinstance(value, dict):
        out.extend(_head(5, len(value)))
        for key, item in value.items():
            _encode(str(key), out)
            _encode(item, out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as CBOR")
