"""Downloads of the zips lrun keeps: a function's code (GetFunction's ``Code.Location``) and a
layer version's content (``Content.Location``), at ``/lrun/code/<token>``.

The token in the URL is the authorisation, as in the presigned URL AWS gives, so the route is
answered unsigned (``access``). A token is looked up among those lrun drew and still holds: it
never becomes a path by itself.

A zip may be 50 MB and anyone holding its URL may fetch it many times at once, so nothing is
read whole: a download is streamed from disk a piece at a time, written as the client reads it
(the server waits while a client reads slowly), and only a few are streamed at once; others wait
for a place, and are refused with 429 if none comes. So downloads cost lrun at most
``MAX_DOWNLOADS`` pieces in memory, whatever the number of clients. A download that holds its
place past ``SLOT_HOLD_S`` (a client reading very slowly) gives it up; its own cost stays one
piece, since it reads on only as its client does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from orchestrator.api.access import CODE_PATH
from orchestrator.api.code_package import is_token
from orchestrator.errors import ResourceNotFound, TooManyRequests
from orchestrator.http_server import Request, Response, Router

# Where a token's zip is, if the owner still holds it.
Finder = Callable[[str], Path | None]
MAX_DOWNLOADS = 4  # streamed at once
PIECE = 256 * 1024  # bytes read from disk at a time
SLOT_WAIT_S = 30.0  # how long a download waits for a place before 429
SLOT_HOLD_S = 120.0  # how long a download keeps its place
_GONE = "The code you asked for does not exist (anymore)."


def location(request: Request, token: str) -> str:
    """The download URL of ``token``'s zip, on the address the caller reached lrun at."""
    host = request.headers.get("host", "127.0.0.1")
    return f"http://{host}{CODE_PATH}{token}"


class Downloads:
    def __init__(self, router: Router, limit: int = MAX_DOWNLOADS) -> None:
        self._finders: list[Finder] = []
        self._limit = limit
        self._places: asyncio.Semaphore | None = None  # made on the serving loop
        self.streaming = 0  # downloads holding a place now
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
            raise ResourceNotFound(_GONE)
        if self._places is None:
            self._places = asyncio.Semaphore(self._limit)
        try:
            await asyncio.wait_for(self._places.acquire(), SLOT_WAIT_S)
        except TimeoutError:
            raise TooManyRequests("ConcurrentDownloadLimitExceeded") from None
        release = _Once(self._release)
        self.streaming += 1
        try:
            file = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:  # removed since it was looked up
            release()
            raise ResourceNotFound(_GONE) from None
        except BaseException:
            release()
            raise
        hold = asyncio.get_running_loop().call_later(SLOT_HOLD_S, release)
        headers = {
            "Content-Type": "application/zip",
            "x-amzn-RequestId": str(uuid.uuid4()),
        }
        return Response(200, headers=headers, stream=_Pieces(file, hold, release))

    def _release(self) -> None:
        self.streaming -= 1
        assert self._places is not None
        self._places.release()


class _Once:
    def __init__(self, action: Callable[[], None]) -> None:
        self._action: Callable[[], None] | None = action

    def __call__(self) -> None:
        action, self._action = self._action, None
        if action is not None:
            action()


class _Pieces:
    """A file a piece at a time, as a streamed body. However the download ends (read whole, the
    client gone, never begun), ``aclose`` closes the file and gives up the place."""

    def __init__(
        self, file: BinaryIO, hold: asyncio.TimerHandle, release: Callable[[], None]
    ) -> None:
        self._file = file
        self._hold = hold
        self._release = release

    def __aiter__(self) -> _Pieces:
        return self

    async def __anext__(self) -> bytes:
        if self._file.closed:
            raise StopAsyncIteration
        piece = await asyncio.to_thread(self._file.read, PIECE)
        if not piece:
            await self.aclose()
            raise StopAsyncIteration
        return piece

    async def aclose(self) -> None:
        self._hold.cancel()
        self._release()
        self._file.close()
