"""Unit tests of code downloads (/lrun/code/<token>): streamed from disk a piece at a time, a few
at once, places given back however a download ends. The attack on a real `lrun serve` (fifty
parallel downloads, its memory measured) is in tests/acceptance/test_limits.py."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from orchestrator.api import downloads as downloads_module
from orchestrator.api.downloads import PIECE, Downloads
from orchestrator.api.lambda_api import error_response
from orchestrator.http_server import Request, Response, Router
from tests.fakes import run

TOKEN = "ab" * 16


def served(tmp_path: Path, size: int, limit: int = 2) -> tuple[Router, Downloads, bytes]:
    data = os.urandom(size)
    (tmp_path / "code.zip").write_bytes(data)
    router = Router(error_response)
    downloads = Downloads(router, limit)
    downloads.add(lambda token: tmp_path / "code.zip" if token == TOKEN else None)
    return router, downloads, data


async def get(router: Router, token: str = TOKEN) -> Response:
    request = Request("GET", f"/lrun/code/{token}", {}, {}, b"", "127.0.0.1")
    return await router.dispatch(request)


def test_a_download_is_streamed_a_piece_at_a_time(tmp_path: Path) -> None:
    router, downloads, data = served(tmp_path, 3 * PIECE + 10)

    async def main() -> None:
        response = await get(router)
        assert response.status == 200 and response.body == b""
        assert response.headers["Content-Type"] == "application/zip"
        assert response.stream is not None
        pieces = [piece async for piece in response.stream]
        assert [len(piece) for piece in pieces] == [PIECE, PIECE, PIECE, 10]
        assert b"".join(pieces) == data
        assert downloads.streaming == 0  # its place is given back once it is read

    run(main())


def test_only_a_few_are_streamed_at_once_and_the_others_wait_then_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloads_module, "SLOT_WAIT_S", 0.2)
    router, downloads, data = served(tmp_path, PIECE, limit=2)

    async def main() -> None:
        first, second = await get(router), await get(router)
        assert downloads.streaming == 2
        waiting = asyncio.ensure_future(get(router))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # waits for a place
        assert first.stream is not None
        assert b"".join([piece async for piece in first.stream]) == data
        third = await waiting  # took the place the first gave back
        assert third.status == 200 and downloads.streaming == 2
        refused = await get(router)  # none comes back in time
        assert refused.status == 429
        assert json.loads(refused.body)["Reason"] == "ConcurrentDownloadLimitExceeded"
        for response in (second, third):
            assert response.stream is not None
            await response.stream.aclose()  # type: ignore[attr-defined]
        assert downloads.streaming == 0

    run(main())


def test_a_download_never_written_or_cut_short_gives_its_place_back(tmp_path: Path) -> None:
    router, downloads, _ = served(tmp_path, 4 * PIECE, limit=1)

    async def main() -> None:
        never = await get(router)  # its client went away before a byte was written
        assert never.stream is not None
        await never.stream.aclose()  # type: ignore[attr-defined]
        assert downloads.streaming == 0
        cut = await get(router)
        assert cut.stream is not None
        iterator = aiter(cut.stream)
        assert len(await anext(iterator)) == PIECE
        await cut.stream.aclose()  # type: ignore[attr-defined]
        assert downloads.streaming == 0
        again = await get(router)  # the one place is free again
        assert again.status == 200 and again.stream is not None
        await again.stream.aclose()  # type: ignore[attr-defined]

    run(main())


def test_a_slow_client_gives_up_its_place_after_a_while(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(downloads_module, "SLOT_HOLD_S", 0.1)
    router, downloads, _ = served(tmp_path, 2 * PIECE, limit=1)

    async def main() -> None:
        slow = await get(router)
        await asyncio.sleep(0.2)
        assert downloads.streaming == 0  # the place is another's now
        other = await get(router)
        assert other.status == 200 and downloads.streaming == 1
        for response in (slow, other):
            assert response.stream is not None
            await response.stream.aclose()  # type: ignore[attr-defined]
        assert downloads.streaming == 0  # given back once, not twice

    run(main())


def test_unknown_tokens_and_removed_files_are_not_found(tmp_path: Path) -> None:
    router, downloads, _ = served(tmp_path, 10)

    async def main() -> None:
        assert (await get(router, "cd" * 16)).status == 404
        assert (await get(router, "..%2Flrun.db")).status == 404
        (tmp_path / "code.zip").unlink()
        assert (await get(router)).status == 404
        assert downloads.streaming == 0

    run(main())
