"""Unit tests for orchestrator.http_server: the Router on its own, then the server on a real
loopback socket (keep-alive, pipelining, 100-continue, queries, long-poll cancellation, 400)."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest

from orchestrator.http_server import (
    Connections,
    Limits,
    Request,
    Response,
    Router,
    encode_response,
    serve,
)
from tests.unit.rawhttp import TIMEOUT_S, Client, connected, request_bytes, run, serving


def request(method: str = "GET", path: str = "/", body: bytes = b"") -> Request:
    return Request(method, path, {}, {}, body, "127.0.0.1")


def no_errors(exc: Exception) -> Response:
    raise AssertionError(f"on_error called with {exc!r}")


def mapped(exc: Exception) -> Response:
    return Response(500, f"{type(exc).__name__}: {exc}".encode(), {"X-Mapped": "1"})


async def ok(req: Request) -> Response:
    return Response(200, b"ok")


async def echo(req: Request) -> Response:
    """Everything the handler saw, as JSON."""
    seen = {
        "method": req.method,
        "path": req.path,
        "query": dict(req.query),
        "params": dict(req.params),
        "headers": dict(req.headers),
        "body": req.body.decode("latin-1"),
        "peer": req.peer,
    }
    return Response(200, json.dumps(seen).encode(), {"Content-Type": "application/json"})


# --- Router ---------------------------------------------------------------------------------


def test_match_extracts_named_params() -> None:
    router = Router(no_errors)
    router.add("POST", "/fn/{name}/invocation/{request_id}/response", ok)
    found = router.match("POST", "/fn/hello/invocation/abc-123/response")
    assert found == (ok, {"name": "hello", "request_id": "abc-123"})


def test_match_unquotes_params() -> None:
    router = Router(no_errors)
    router.add("GET", "/functions/{name}/{qualifier}", ok)
    found = router.match("GET", "/functions/a%20b/%24LATEST")
    assert found == (ok, {"name": "a b", "qualifier": "$LATEST"})


def test_match_param_is_one_segment_and_pattern_is_anchored() -> None:
    router = Router(no_errors)
    router.add("GET", "/fn/{name}", ok)
    assert router.match("GET", "/fn/a/b") is None
    assert router.match("GET", "/fn/") is None
    assert router.match("GET", "/x/fn/a") is None
    assert router.match("GET", "/fn/a/") is None
    assert router.match("GET", "/fn/a") == (ok, {"name": "a"})


def test_match_without_params_gives_empty_dict() -> None:
    router = Router(no_errors)
    router.add("GET", "/2018-06-01/runtime/invocation/next", ok)
    assert router.match("GET", "/2018-06-01/runtime/invocation/next") == (ok, {})


def test_match_unknown_path_is_none() -> None:
    router = Router(no_errors)
    router.add("GET", "/a", ok)
    assert router.match("GET", "/b") is None


def test_match_method_mismatch_is_none() -> None:
    router = Router(no_errors)
    router.add("GET", "/a", ok)
    assert router.match("POST", "/a") is None
    assert router.match("get", "/a") is None  # methods are exact, as httptools reports them


def test_first_matching_route_wins() -> None:
    async def first(req: Request) -> Response:
        return Response(201)

    async def second(req: Request) -> Response:
        return Response(202)

    router = Router(no_errors)
    router.add("GET", "/items/{id}", first)
    router.add("GET", "/items/special", second)
    assert router.match("GET", "/items/special") == (first, {"id": "special"})


def test_a_path_matched_before_a_route_was_added_is_matched_again() -> None:
    router = Router(no_errors)
    router.add("GET", "/a", ok)
    assert router.match("GET", "/b") is None
    assert router.match("GET", "/a") == router.match("GET", "/a") == (ok, {})
    router.add("GET", "/{name}", ok)  # matches were kept per path: adding a route forgets them
    assert router.match("GET", "/b") == (ok, {"name": "b"})


def test_dispatch_no_route_is_404() -> None:
    router = Router(no_errors)
    router.add("GET", "/a", ok)
    response = run(router.dispatch(request("GET", "/nowhere")))
    assert response == Response(404, b'{"message":"no route"}')


def test_dispatch_method_mismatch_is_404() -> None:
    router = Router(no_errors)
    router.add("GET", "/a", ok)
    response = run(router.dispatch(request("DELETE", "/a")))
    assert response.status == 404


def test_dispatch_passes_params_and_keeps_the_request() -> None:
    router = Router(no_errors)
    router.add("POST", "/fn/{name}", echo)
    req = Request("POST", "/fn/x%2Fy", {"q": "1"}, {"h": "v"}, b"body", "10.0.0.7")
    response = run(router.dispatch(req))
    assert response.status == 200
    assert json.loads(response.body) == {
        "method": "POST",
        "path": "/fn/x%2Fy",
        "query": {"q": "1"},
        "params": {"name": "x/y"},
        "headers": {"h": "v"},
        "body": "body",
        "peer": "10.0.0.7",
    }


def test_handler_error_becomes_on_error_response() -> None:
    seen: list[Exception] = []
    boom = KeyError("missing")

    def on_error(exc: Exception) -> Response:
        seen.append(exc)
        return Response(503, b"mapped")

    async def failing(req: Request) -> Response:
        raise boom

    router = Router(on_error)
    router.add("GET", "/fail", failing)
    response = run(router.dispatch(request("GET", "/fail")))
    assert response == Response(503, b"mapped")
    assert seen == [boom]
    assert seen[0] is boom


def test_handler_cancellation_is_not_mapped() -> None:
    async def cancelled(req: Request) -> Response:
        raise asyncio.CancelledError

    router = Router(no_errors)
    router.add("GET", "/c", cancelled)

    async def scenario() -> None:
        with pytest.raises(asyncio.CancelledError):
            await router.dispatch(request("GET", "/c"))

    run(scenario())


# --- encode_response ------------------------------------------------------------------------


def test_encode_response_keep_alive() -> None:
    data = encode_response(Response(202, b'{"status":"OK"}', {"Content-Type": "x/y"}), True)
    assert data == (
        b'HTTP/1.1 202 Accepted\r\nContent-Type: x/y\r\nContent-Length: 15\r\n\r\n{"status":"OK"}'
    )


def test_encode_response_close_and_unknown_status() -> None:
    assert encode_response(Response(599), keep_alive=False) == (
        b"HTTP/1.1 599 Unknown\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )


# --- the server on a socket -----------------------------------------------------------------


def echo_router() -> Router:
    router = Router(mapped)
    router.add("GET", "/echo", echo)
    router.add("POST", "/echo", echo)
    router.add("GET", "/items/{item}", echo)
    return router


def test_keep_alive_serves_two_requests_on_one_connection() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            first = await client.request("GET", "/echo?n=1")
            second = await client.request("POST", "/echo?n=2", b"hello")
            assert first.status == 200
            assert first.json()["query"] == {"n": "1"}
            assert "connection" not in first.headers
            assert second.status == 200
            assert second.json()["body"] == "hello"
            assert second.json()["query"] == {"n": "2"}
            assert second.headers["content-length"] == str(len(second.body))

    run(scenario())


def test_request_fields_seen_by_handler() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            response = await client.request(
                "POST", "/echo", b'{"a":1}', {"X-Custom-Header": "Value"}
            )
            seen = response.json()
            assert seen["method"] == "POST"
            assert seen["path"] == "/echo"
            assert seen["peer"] == "127.0.0.1"
            assert seen["body"] == '{"a":1}'
            assert seen["headers"]["x-custom-header"] == "Value"  # names lower-cased
            assert "X-Custom-Header" not in seen["headers"]

    run(scenario())


def test_connection_close_is_honoured() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            response = await client.request("GET", "/echo", headers={"Connection": "close"})
            assert response.status == 200
            assert response.headers["connection"] == "close"
            assert await client.at_eof()

    run(scenario())


def test_pipelined_requests_are_answered_in_order_even_if_first_is_slower() -> None:
    fast_done = asyncio.Event()
    finished: list[str] = []

    async def slow(req: Request) -> Response:
        await fast_done.wait()  # cannot finish before the second request's handler has
        finished.append("slow")
        return Response(200, b"slow")

    async def fast(req: Request) -> Response:
        finished.append("fast")
        fast_done.set()
        return Response(200, b"fast")

    router = Router(mapped)
    router.add("GET", "/slow", slow)
    router.add("GET", "/fast", fast)

    async def scenario() -> None:
        async with serving(router) as port, connected(port) as client:
            await client.send(request_bytes("GET", "/slow") + request_bytes("GET", "/fast"))
            first = await client.response()
            second = await client.response()
            assert (first.body, second.body) == (b"slow", b"fast")
            assert finished == ["fast", "slow"]

    run(scenario())


def test_pipelined_three_requests_in_one_write() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            data = b"".join(request_bytes("GET", f"/echo?i={i}") for i in range(3))
            await client.send(data)
            answers = [(await client.response()).json()["query"]["i"] for _ in range(3)]
            assert answers == ["0", "1", "2"]

    run(scenario())


def test_expect_100_continue_gets_interim_response_first() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            head = request_bytes(
                "POST", "/echo", headers={"Content-Length": "5", "Expect": "100-continue"}
            )
            await client.send(head)  # headers only: the client waits for 100 before the body
            interim = await client.response()
            assert (interim.status, interim.reason, interim.body) == (100, "Continue", b"")
            await client.send(b"hello")
            final = await client.response()
            assert final.status == 200
            assert final.json()["body"] == "hello"

    run(scenario())


def test_no_100_continue_without_expect() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            response = await client.request("POST", "/echo", b"x")
            assert response.status == 200

    run(scenario())


def test_query_string_is_parsed() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            response = await client.request("GET", "/echo?a=1&b=x%20y&c=%2F&empty=&plus=a+b")
            seen = response.json()
            assert seen["path"] == "/echo"
            assert seen["query"] == {"a": "1", "b": "x y", "c": "/", "empty": "", "plus": "a b"}

    run(scenario())


def test_path_params_over_the_socket() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            response = await client.request("GET", "/items/a%20b")
            assert response.json()["params"] == {"item": "a b"}

    run(scenario())


def test_chunked_request_body_is_assembled() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            chunked = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
            headers = {"Transfer-Encoding": "chunked"}
            await client.send(request_bytes("POST", "/echo", headers=headers) + chunked)
            response = await client.response()
            assert response.json()["body"] == "hello world"

    run(scenario())


def test_unknown_route_over_the_socket_is_404_and_keeps_connection() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            missing = await client.request("GET", "/nope")
            assert (missing.status, missing.body) == (404, b'{"message":"no route"}')
            again = await client.request("GET", "/echo")
            assert again.status == 200

    run(scenario())


def test_handler_error_becomes_on_error_response_over_the_socket() -> None:
    async def failing(req: Request) -> Response:
        raise ValueError("bad thing")

    router = Router(mapped)
    router.add("GET", "/fail", failing)

    async def scenario() -> None:
        async with serving(router) as port, connected(port) as client:
            response = await client.request("GET", "/fail")
            assert response.status == 500
            assert response.body == b"ValueError: bad thing"
            assert response.headers["x-mapped"] == "1"

    run(scenario())


def test_long_poll_handler_is_cancelled_when_client_disconnects() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def long_poll(req: Request) -> Response:
        started.set()
        try:
            await asyncio.Event().wait()  # never set: only cancellation ends this
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return Response(200)

    router = Router(mapped)
    router.add("GET", "/next", long_poll)

    async def scenario() -> None:
        async with serving(router) as port:
            async with connected(port) as client:
                await client.send(request_bytes("GET", "/next"))
                await asyncio.wait_for(started.wait(), TIMEOUT_S)
                assert not cancelled.is_set()
            await asyncio.wait_for(cancelled.wait(), TIMEOUT_S)

    run(scenario())


def test_every_pipelined_long_poll_is_cancelled_when_client_disconnects() -> None:
    started = [asyncio.Event(), asyncio.Event()]
    cancelled = [asyncio.Event(), asyncio.Event()]

    async def long_poll(req: Request) -> Response:
        i = int(req.params["i"])
        started[i].set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled[i].set()
            raise
        return Response(200)

    router = Router(mapped)
    router.add("GET", "/next/{i}", long_poll)

    async def scenario() -> None:
        async with serving(router) as port:
            async with connected(port) as client:
                await client.send(request_bytes("GET", "/next/0") + request_bytes("GET", "/next/1"))
                await asyncio.wait_for(started[0].wait(), TIMEOUT_S)
                await asyncio.wait_for(started[1].wait(), TIMEOUT_S)
            await asyncio.wait_for(cancelled[1].wait(), TIMEOUT_S)
            await asyncio.wait_for(cancelled[0].wait(), 0.3)

    run(scenario())


def test_malformed_request_gets_400_and_close() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            await client.send(b"THIS IS NOT HTTP\r\n\r\n")
            response = await client.response()
            assert response.status == 400
            assert response.reason == "Bad Request"
            assert response.headers["connection"] == "close"
            assert await client.at_eof()

    run(scenario())


def test_bad_header_after_good_request_gets_400() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            good = await client.request("GET", "/echo")
            assert good.status == 200
            await client.send(b"GET /echo HTTP/1.1\r\nBad Header Without Colon\r\n\r\n")
            response = await client.response()
            assert response.status == 400
            assert await client.at_eof()

    run(scenario())


def test_path_params_are_percent_decoded_once() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            response = await client.request("GET", "/items/100%2525")
            assert response.status == 200
            assert response.json()["params"] == {"item": "100%25"}

    run(scenario())


def test_encoded_slash_stays_inside_a_path_param() -> None:
    async def scenario() -> None:
        async with serving(echo_router()) as port, connected(port) as client:
            response = await client.request("GET", "/items/a%2Fb")
            assert response.status == 200
            assert response.json()["params"] == {"item": "a/b"}

    run(scenario())


def test_server_close_ends_open_connections_and_long_polls() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def long_poll(req: Request) -> Response:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return Response(200)

    router = Router(mapped)
    router.add("GET", "/next", long_poll)

    async def scenario() -> None:
        server = await serve(router, "127.0.0.1", 0)
        port = server.port
        assert port > 0
        async with connected(port) as client:
            await client.send(request_bytes("GET", "/next"))
            await asyncio.wait_for(started.wait(), TIMEOUT_S)
            await asyncio.wait_for(server.close(), TIMEOUT_S)
            await asyncio.wait_for(cancelled.wait(), TIMEOUT_S)
            assert await client.at_eof()
        with pytest.raises(OSError):  # no longer listening
            await Client.connect(port)

    run(scenario())


# --- limits: what one client may cost the server (issue 8) -----------------------------------


SMALL = Limits(
    max_body=1000,
    max_url=200,
    max_head=2000,
    max_headers=10,
    head_timeout_s=0.3,
    idle_timeout_s=0.4,
    max_connections=4,
)


def by_status(exc: Exception) -> Response:
    """An error mapper that keeps an error's own status (RequestTooLarge: 413)."""
    return Response(getattr(exc, "status", 500), str(exc).encode(), {"X-Mapped": "1"})


def counting_router() -> tuple[Router, list[Request]]:
    """A router whose handlers record what they were called with."""
    seen: list[Request] = []

    async def record(req: Request) -> Response:
        seen.append(req)
        return Response(200, b"ok")

    router = Router(by_status)
    router.add("POST", "/in", record)
    router.add("GET", "/", record)
    return router, seen


async def wait_closed(client: Client, timeout: float = TIMEOUT_S) -> bool:
    """True once the server has closed the connection (whatever it wrote first is skipped)."""
    try:
        while await asyncio.wait_for(client.reader.read(65536), timeout):
            pass
    except ConnectionError:
        pass
    return True


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read() -> None:
    router, seen = counting_router()

    async def scenario() -> None:
        async with serving(router, SMALL) as port, connected(port) as client:
            head = request_bytes("POST", "/in", headers={"Content-Length": "50000000"})
            await client.send(head)  # no body sent: the answer must not wait for it
            answer = await client.response()
            assert answer.status == 413
            assert answer.headers["connection"] == "close"
            assert "Request must be smaller than 1000 bytes" in answer.body.decode()
            assert seen == []

    run(scenario())


def test_a_route_may_take_a_larger_body_and_only_that_route() -> None:
    router, seen = counting_router()

    async def upload(req: Request) -> Response:
        seen.append(req)
        return Response(200, b"stored")

    router.add("POST", "/upload", upload, max_body=3000)

    async def scenario() -> None:
        async with serving(router, SMALL) as port:
            async with connected(port) as client:  # declared: 2,000 bytes, under the route's
                await client.send(request_bytes("POST", "/upload", body=b"u" * 2000))
                assert (await client.response()).status == 200
            async with connected(port) as client:  # streamed, chunked, likewise
                head = request_bytes("POST", "/upload", headers={"Transfer-Encoding": "chunked"})
                chunk = b"1f4\r\n" + b"x" * 500 + b"\r\n"
                await client.send(head + chunk * 4 + b"0\r\n\r\n")
                assert (await client.response()).status == 200
            async with connected(port) as client:  # over the route's own limit
                head = request_bytes("POST", "/upload", headers={"Content-Length": "3001"})
                await client.send(head)
                answer = await client.response()
                assert answer.status == 413
                assert "smaller than 3000 bytes" in answer.body.decode()
            async with connected(port) as client:  # other routes keep the server's limit
                await client.send(request_bytes("POST", "/in", body=b"i" * 2000))
                assert (await client.response()).status == 413
        assert [len(r.body) for r in seen] == [2000, 2000]

    run(scenario())


def test_large_bodies_are_taken_a_few_at_a_time() -> None:
    """A route's larger limit must not let every connection hold that much at once: beyond
    ``max_large_bodies`` such requests are refused (429) until one has been answered."""
    router, seen = counting_router()
    release = asyncio.Event()

    async def upload(req: Request) -> Response:
        seen.append(req)
        await release.wait()
        return Response(200, b"stored")

    router.add("POST", "/upload", upload, max_body=3000)
    limits = dataclasses.replace(SMALL, max_large_bodies=1)

    async def scenario() -> None:
        async with serving(router, limits) as port:
            async with connected(port) as first, connected(port) as second:
                # The first holds its slot from its head on (its body still arriving) ...
                await first.send(request_bytes("POST", "/upload", body=b"a" * 2000)[:-1000])
                await asyncio.sleep(0.05)
                await second.send(request_bytes("POST", "/upload", body=b"b" * 2000))
                refused = await second.response()
                assert refused.status == 429
                assert "too many large requests" in refused.body.decode()
                # ... and while it is being answered.
                await first.send(b"a" * 1000)
                for _ in range(100):
                    if seen:
                        break
                    await asyncio.sleep(0.01)
                async with connected(port) as third:
                    await third.send(request_bytes("POST", "/upload", body=b"c" * 2000))
                    assert (await third.response()).status == 429
                release.set()
                assert (await first.response()).status == 200
            async with connected(port) as fourth:  # answered: the slot is free again
                await fourth.send(request_bytes("POST", "/upload", body=b"d" * 2000))
                assert (await fourth.response()).status == 200
            async with connected(port) as small:  # small bodies never count
                await small.send(request_bytes("POST", "/in", body=b"s" * 10))
                assert (await small.response()).status == 200

    run(scenario())


def test_a_streamed_body_is_cut_off_at_the_limit_and_the_client_reads_the_refusal() -> None:
    router, seen = counting_router()

    async def scenario() -> None:
        async with serving(router, SMALL) as port, connected(port) as client:
            head = request_bytes("POST", "/in", headers={"Transfer-Encoding": "chunked"})
            chunk = b"1f4\r\n" + b"x" * 500 + b"\r\n"
            await client.send(head + chunk * 3)  # 1,500 bytes: over at the third chunk
            answer = await client.response()
            assert answer.status == 413
            assert "this one is larger" in answer.body.decode()
            assert seen == []
            assert await wait_closed(client)

    run(scenario())


def test_a_route_answers_its_own_oversized_requests() -> None:
    calls: list[tuple[str, int | None]] = []

    async def handler(req: Request) -> Response:
        raise AssertionError("the handler of an oversized request must not run")

    async def too_large(req: Request, size: int | None) -> Response:
        calls.append((req.params["id"], size))
        return Response(413, b"mine")

    router = Router(mapped)
    router.add("POST", "/r/{id}", handler, too_large)

    async def scenario() -> None:
        async with serving(router, SMALL) as port:
            async with connected(port) as client:
                answer = await client.request("POST", "/r/a%20b", b"y" * 1001)
                assert (answer.status, answer.body) == (413, b"mine")
            async with connected(port) as client:
                head = request_bytes("POST", "/r/c", headers={"Transfer-Encoding": "chunked"})
                await client.send(head + b"7d0\r\n" + b"z" * 2000 + b"\r\n")
                assert (await client.response()).status == 413
        assert calls == [("a b", 1001), ("c", None)]

    run(scenario())


def test_a_body_at_the_limit_is_served_and_the_connection_kept() -> None:
    router, seen = counting_router()

    async def scenario() -> None:
        async with serving(router, SMALL) as port, connected(port) as client:
            assert (await client.request("POST", "/in", b"a" * 1000)).status == 200
            assert (await client.request("POST", "/in", b"b")).status == 200
            assert [len(r.body) for r in seen] == [1000, 1]

    run(scenario())


def test_a_long_url_is_414() -> None:
    router, seen = counting_router()

    async def scenario() -> None:
        async with serving(router, SMALL) as port, connected(port) as client:
            answer = await client.request("GET", "/?" + "a" * 300)
            assert answer.status == 414
            assert await wait_closed(client)
            assert seen == []

    run(scenario())


def test_too_many_headers_is_431() -> None:
    router, seen = counting_router()

    async def scenario() -> None:
        async with serving(router, SMALL) as port, connected(port) as client:
            headers = {f"X-H{i}": "v" for i in range(20)}
            answer = await client.request("GET", "/", headers=headers)
            assert answer.status == 431
            assert seen == []

    run(scenario())


def test_a_huge_header_is_431_while_it_is_still_arriving() -> None:
    router, seen = counting_router()

    async def scenario() -> None:
        async with serving(router, SMALL) as port, connected(port) as client:
            await client.send(b"GET / HTTP/1.1\r\nHost: test\r\nX-Big: ")
            for _ in range(5):  # never ends the header: refused on size alone
                await client.send(b"v" * 1000)
            answer = await client.response()
            assert answer.status == 431
            assert seen == []

    run(scenario())


def test_a_head_that_does_not_arrive_in_time_is_closed_slowloris() -> None:
    router, seen = counting_router()

    async def scenario() -> None:
        async with serving(router, SMALL) as port:
            async with connected(port) as silent, connected(port) as slow:
                await slow.send(b"GET / HTTP/1.1\r\n")
                for _ in range(3):  # a byte now and then does not keep it open
                    await asyncio.sleep(0.1)
                    await slow.send(b"X")
                assert await wait_closed(silent, timeout=1.5)
                assert await wait_closed(slow, timeout=1.5)
            assert seen == []

    run(scenario())


def test_an_idle_keep_alive_connection_is_closed_but_a_long_poll_is_not() -> None:
    release = asyncio.Event()

    async def ok(req: Request) -> Response:
        return Response(200)

    async def poll(req: Request) -> Response:
        await release.wait()
        return Response(200, b"done")

    router = Router(mapped)
    router.add("GET", "/", ok)
    router.add("GET", "/poll", poll)

    async def scenario() -> None:
        async with serving(router, SMALL) as port:
            async with connected(port) as idle, connected(port) as polling:
                assert (await idle.request("GET", "/")).status == 200
                await polling.send(request_bytes("GET", "/poll"))
                assert await wait_closed(idle, timeout=1.5)
                await asyncio.sleep(0.5)  # past both timeouts, the long-poll is still there
                release.set()
                assert (await polling.response()).body == b"done"

    run(scenario())


def test_at_the_connection_cap_the_longest_idle_connection_makes_room() -> None:
    router, _ = counting_router()
    limits = Limits(max_connections=3, head_timeout_s=30, idle_timeout_s=30)

    async def scenario() -> None:
        async with serving(router, limits) as port:
            clients = [await Client.connect(port) for _ in range(3)]
            for client in clients:
                assert (await client.request("GET", "/")).status == 200
            newcomer = await Client.connect(port)
            assert (await newcomer.request("GET", "/")).status == 200
            assert await wait_closed(clients[0])  # the oldest idle one went
            assert (await clients[1].request("GET", "/")).status == 200
            for client in [*clients, newcomer]:
                await client.close()

    run(scenario())


def test_at_the_cap_with_every_connection_busy_a_new_one_is_refused() -> None:
    async def poll(req: Request) -> Response:
        await asyncio.Event().wait()
        return Response(200)

    router = Router(mapped)
    router.add("GET", "/poll", poll)
    limits = Limits(max_connections=2, head_timeout_s=30, idle_timeout_s=30)

    async def scenario() -> None:
        async with serving(router, limits) as port:
            busy = [await Client.connect(port) for _ in range(2)]
            for client in busy:
                await client.send(request_bytes("GET", "/poll"))
            await asyncio.sleep(0.05)
            refused = await Client.connect(port)
            assert await wait_closed(refused)
            for client in [*busy, refused]:
                await client.close()

    run(scenario())


def test_connections_are_capped_per_peer_and_closed_by_peer() -> None:
    router, _ = counting_router()
    registry = Connections(Limits(max_per_peer=2, head_timeout_s=30, idle_timeout_s=30))

    async def scenario() -> None:
        async with serving(router, connections=registry) as port:
            mine = [await Client.connect(port, "127.0.0.2") for _ in range(5)]
            other = await Client.connect(port, "127.0.0.3")
            assert (await other.request("GET", "/")).status == 200
            await asyncio.sleep(0.05)
            assert registry.peer_count("127.0.0.2") == 2
            assert registry.peer_count("127.0.0.3") == 1
            for client in mine[:3]:
                assert await wait_closed(client)  # the oldest idle made room, one by one
            registry.close_peer("127.0.0.2")
            for client in mine[3:]:
                assert await wait_closed(client)
            assert (await other.request("GET", "/")).status == 200
            for client in [*mine, other]:
                await client.close()

    run(scenario())
