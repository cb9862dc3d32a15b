"""A WebSocket API's route selection expression: parsed once, evaluated against each message.

As API Gateway's developer guide defines it ("WebSocket selection expressions"): variables start
with ``$`` and may be wrapped in braces (``${request.body.version}-beta``), a ``\\$`` is a literal
dollar sign, text around variables is kept, and for WebSocket APIs the variables are
``$request.body.PATH``, a JSON path into the message. A message the expression cannot be
evaluated against (not JSON, or without the element) goes to ``$default``, as on AWS ("Create
routes for WebSocket APIs": "API Gateway calls the $default route if the route selection
expression cannot be evaluated against the message or if no matching route is found").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_PATH = r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*"
_TOKEN = re.compile(
    rf"\\\$|\$\{{request\.body\.(?P<braced>{_PATH})\}}|\$request\.body\.(?P<bare>{_PATH})|(?P<bad>\$)"
)
EXAMPLE = "$request.body.action"


class RouteSelectionError(ValueError):
    """An expression API Gateway would not take: the message says why and what to write."""


@dataclass(frozen=True)
class RouteSelection:
    """Literal text and body paths, in order: ``("", ("action",))`` for ``$request.body.action``."""

    text: str
    parts: tuple[str | tuple[str, ...], ...]  # a literal, or a path of keys into the body

    @classmethod
    def parse(cls, text: str) -> RouteSelection:
        parts: list[str | tuple[str, ...]] = []
        position = 0
        for found in _TOKEN.finditer(text):
            if found.start() > position:
                parts.append(text[position : found.start()])
            if found.group("bad") is not None:
                rest = text[found.start() : found.start() + 24]
                raise RouteSelectionError(
                    f"{text!r}: {rest!r} is not a variable a WebSocket API can select routes by; "
                    f"use $request.body.PATH (e.g. {EXAMPLE}), and \\$ for a literal $"
                )
            path = found.group("braced") or found.group("bare")
            parts.append("$" if path is None else tuple(path.split(".")))
            position = found.end()
        if position < len(text):
            parts.append(text[position:])
        if not any(isinstance(part, tuple) for part in parts):
            raise RouteSelectionError(
                f"{text!r} has no $request.body.PATH variable, so every message would get the "
                f"same route; write e.g. {EXAMPLE}"
            )
        return cls(text, tuple(parts))

    def evaluate(self, body: bytes | str) -> str | None:
        """The route key a message selects, or None when the expression cannot be evaluated
        against it (the message then goes to ``$default``)."""
        try:
            message = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        pieces: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            value: object = message
            for key in part:
                if not isinstance(value, dict) or key not in value:
                    return None
                value = value[key]
            if isinstance(value, str):
                pieces.append(value)
            elif value is None or isinstance(value, (dict, list)):
                return None
            else:
                pieces.append(json.dumps(value))
        return "".join(pieces)
