"""Downloads of the zips lrun keeps: a function's code (GetFunction's ``Code.Location``) and a
layer version's content (``Content.Location``), at ``/lrun/code/<token>``.

The token in the URL is the authorisation, as in the presigned URL AWS gives, so the route is
answered unsigned (``access``). A token is looked up among those lrun drew and still holds: it
never becomes a path by itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

from orchestrator.api.access import CODE_PATH
from orchestrator.api.code_package import is_token
from orchestrator.errors import ResourceNotFound
from orchestrator.http_server import Request, Response, Router

# Where a token's zip is, if the owner still holds it.
Finder = Callable[[str], Path | None]


def location(request: Request, token: str) -> str:
    """The download URL of ``token``'s zip, on the address the caller reached lrun at."""
    host = request.headers.get("host", "127.0.0.1")
    return f"http://{host}{CODE_PATH}{token}"


class Downloads:
    def __init__(self, router: Router) -> None:
        self._finders: list[Finder] = []
        router.add("GET", CODE_PATH + "{token}", self.download)

    def add(self, finder: Finder) -> None:
        self._finders.append(finder)

    def find(self, token: str) -> Path | None:
        if not is_token(token):
            return None
        for finder in self._finders:
            if (found := finder(token)) is not None:
                return found
        return None

    async def download(self, request: Request) -> Response:
        path = self.find(request.params["token"])
        if path is None:
            raise ResourceNotFound("The code you asked for does not exist (anymore).")
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:  # removed since it was looked up
            raise ResourceNotFound("The code you asked for does not exist (anymore).") from None
        headers = {"Content-Type": "application/zip", "x-amzn-RequestId": str(uuid.uuid4())}
        return Response(200, data, headers)
