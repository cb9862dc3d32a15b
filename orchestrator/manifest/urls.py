"""A function's URL (``url:`` in the manifest): its own HTTP endpoint, as Lambda's function URLs.

``auth`` is Lambda's ``AuthType`` (``NONE``: anyone who reaches it; ``AWS_IAM``: requests signed
with Signature Version 4), ``cors`` its CORS settings (the shape of an HTTP API's, which is the
shape of Lambda's ``Cors``), ``invoke_mode`` its ``InvokeMode`` (``BUFFERED``: the function's
answer is a payload 2.0 response; ``RESPONSE_STREAM``: its answer is streamed to the client as
it is written) and ``port`` where `lrun serve` serves it (none: a free port, kept across
restarts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orchestrator.manifest.apis import CorsSpec

AUTH_TYPES = ("NONE", "AWS_IAM")
INVOKE_MODES = ("BUFFERED", "RESPONSE_STREAM")
AuthType = Literal["NONE", "AWS_IAM"]
InvokeMode = Literal["BUFFERED", "RESPONSE_STREAM"]


@dataclass(frozen=True)
class UrlSpec:
    auth: AuthType
    cors: CorsSpec | None = None
    invoke_mode: InvokeMode = "BUFFERED"
    port: int | None = None
