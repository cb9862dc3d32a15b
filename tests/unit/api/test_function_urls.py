"""Function URLs on the fake backend: each URL on its own port, with a real HTTP client (the raw
one of tests/unit/rawhttp.py): payload 2.0 events and answers, AuthType NONE and AWS_IAM, CORS,
RESPONSE_STREAM, and the configuration API around them (its recorded errors are replayed
against a real server by tests/acceptance/wire_cases.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator import manifest
from orchestrator.api import sigv4
from orchestrator.api.function_urls import FunctionUrls, policy_allows, url_id
from orchestrator.api.lambda_api import LambdaApi
from orchestrator.api.url_listener import UrlAccess
from orchestrator.events.function_meta import FunctionMeta
from orchestrator.events.store import Store
from orchestrator.events.url_store import UrlStore
from orchestrator.http_server import Request, Response
from tests.fakes import FakeContext, Served, Streamed, fake_service, run
from tests.unit.rawhttp import TIMEOUT_S, Client, RawResponse, request_bytes

HTTP_INTEGRATION = "application/vnd.awslambda.http-integration-response"

KEYS = sigv4.Credentials("LRUNTESTKEY00000", "secret-of-the-tests-0000000000000000000000")
MANIFEST = """
functions:
  web: {runtime: python3.13, handler: app.web, code: ./code,
        url: {auth: NONE, cors: {allow_origins: ["http://app.test"], allow_methods: [GET, POST],
              allow_headers: [x-token], expose_headers: [x-test], max_age: 60}}}
  bare: {runtime: python3.13, handler: app.bare, code: ./code, url: {auth: NONE}}
  fail: {runtime: python3.13, handler: app.fail, code: ./code, url: {auth: NONE}}
  zero: {runtime: python3.13, handler: app.web, code: ./code, reserved_concurrency: 0,
         url: {auth: NONE}}
  signed: {runtime: python3.13, handler: app.web, code: ./code, url: {auth: AWS_IAM}}
  page: {runtime: nodejs22.x, handler: app.page, code: ./code,
         url: {auth: NONE, invoke_mode: RESPONSE_STREAM}}
  plain: {runtime: nodejs22.x, handler: app.plain, code: ./code,
          url: {auth: NONE, invoke_mode: RESPONSE_STREAM}}
  whole: {runtime: python3.13, handler: app.bare, code: ./code,
          url: {auth: NONE, invoke_mode: RESPONSE_STREAM}}
  later: {runtime: python3.13, handler: app.web, code: ./code}
  endless: {runtime: nodejs22.x, handler: app.endless, code: ./code,
            url: {auth: NONE, invoke_mode: RESPONSE_STREAM}}
"""


def handlers(release: asyncio.Event) -> dict[str, Any]:
    def web(event: Any, context: FakeContext) -> dict[str, Any]:
        return {
            "statusCode": 201,
            "headers": {"x-test": "yes", "Access-Control-Allow-Origin": "http://evil.test"},
            "cookies": ["a=1", "b=2"],
            "body": json.dumps(event),
        }

    def bare(event: Any, context: FakeContext) -> Any:
        return {"hello": "world"}

    def fail(event: Any, context: FakeContext) -> None:
        raise RuntimeError("boom")

    def page(event: Any, context: FakeContext) -> Streamed:
        prelude = json.dumps({"statusCode": 202, "headers": {"X-Kind": "page"}, "cookies": ["c=3"]})
        return Streamed(
            [prelude.encode() + b"\0" * 8 + b"<p>one</p>", release, b"<p>two</p>"],
            "application/vnd.awslambda.http-integration-response",
        )

    def plain(event: Any, context: FakeContext) -> Streamed:
        return Streamed([b"just ", b"text"], "text/plain")

    def endless(event: Any, context: FakeContext) -> Streamed:
        # A prelude that never ends (no 8 NUL bytes): lrun reads at most 64 KB of it.
        return Streamed([b"{" * 65536, b"x" * 65536, release], HTTP_INTEGRATION)

    return {
        "app.web": web,
        "app.bare": bare,
        "app.fail": fail,
        "app.page": page,
        "app.plain": plain,
        "app.endless": endless,
    }


@dataclass
class Urls:
    served: Served
    urls: FunctionUrls
    api: LambdaApi
    meta: FunctionMeta
    release: asyncio.Event
    events: list[str]

    def port(self, function: str) -> int:
        rows = {row["function"]: row["url"] for row in self.urls.describe()}
        return int(rows[function].rsplit(":", 1)[1].rstrip("/"))

    async def call(self, method: str, path: str, body: object = None, **query: str) -> Response:
        raw = b"" if body is None else json.dumps(body).encode()
        request = Request(method, path, query, {}, raw, "127.0.0.1")
        return await self.api.router.dispatch(request)


@contextlib.asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[Urls]:
    (tmp_path / "code").mkdir(exist_ok=True)
    path = tmp_path / "lrun.yaml"
    path.write_text(textwrap.dedent(MANIFEST).lstrip())
    release = asyncio.Event()
    events: list[str] = []
    store = Store(tmp_path / "state" / "lrun.db")
    store.open()
    async with fake_service(path, handlers(release)) as served:
        meta = FunctionMeta(store)
        await meta.load()
        api = LambdaApi(served.service, None, None, meta)
        url_store = UrlStore(store)
        await url_store.load()
        access = UrlAccess(
            lambda host: None if host and host.startswith("127.0.0.1") else "Host refused",
            lambda function: policy_allows(meta, function),
            lambda: KEYS,
        )
        urls = FunctionUrls(
            api, url_store, "127.0.0.1", access, lambda p: f"http://127.0.0.1:{p}", events.append
        )
        urls.add_routes()
        await urls.load(manifest.load(path))
        try:
            yield Urls(served, urls, api, meta, release, events)
        finally:
            await urls.close()
            store.close()


def scenario(tmp_path: Path, test: Callable[[Urls], Awaitable[None]]) -> None:
    async def main() -> None:
        async with serving(tmp_path) as urls:
            await test(urls)

    run(main(), 10.0)


async def fetch(
    port: int, target: str = "/", method: str = "GET", body: bytes = b"", **headers: str
) -> RawResponse:
    client = await Client.connect(port)
    try:
        return await client.request(method, target, body, {"Host": f"127.0.0.1:{port}", **headers})
    finally:
        await client.close()


def test_a_request_reaches_the_function_as_a_function_urls_payload_20(tmp_path: Path) -> None:
    async def test(urls: Urls) -> None:
        port = urls.port("web")
        response = await fetch(
            port,
            "/items/7?x=1&x=2",
            "POST",
            b'{"n":1}',
            Cookie="k=v; m=w",
            **{"Content-Type": "application/json"},
        )
        assert response.status == 201
        event = response.json()
        assert event["version"] == "2.0" and event["routeKey"] == "$default"
        assert (event["rawPath"], event["rawQueryString"]) == ("/items/7", "x=1&x=2")
        assert event["queryStringParameters"] == {"x": "1,2"}
        assert event["cookies"] == ["k=v", "m=w"]
        assert event["headers"]["content-type"] == "application/json"
        assert event["body"] == '{"n":1}' and event["isBase64Encoded"] is False
        context = event["requestContext"]
        assert context["accountId"] == "anonymous"  # AuthType NONE, as Lambda sends it
        assert context["apiId"] == context["domainPrefix"] == url_id("web", None)
        assert len(context["apiId"]) == 32
        assert (context["stage"], context["routeKey"]) == ("$default", "$default")
        assert context["http"]["method"] == "POST" and context["http"]["path"] == "/items/7"
        assert "authorizer" not in context
        # The answer's full form: status, headers, cookies; lrun's request id on every answer.
        assert response.headers["x-test"] == "yes"
        assert response.headers["x-amzn-requestid"] == context["requestId"]
        raw = [n.lower() for n in response.header_names]
        assert raw.count("set-cookie") == 2

    scenario(tmp_path, test)


def test_answers_lambda_turns_into_responses(tmp_path: Path) -> None:
    async def test(urls: Urls) -> None:
        bare = await fetch(urls.port("bare"))
        assert (bare.status, bare.json()) == (200, {"hello": "world"})
        assert bare.headers["content-type"] == "application/json"
        failed = await fetch(urls.port("fail"))
        assert (failed.status, failed.body) == (502, b"Internal Server Error")
        throttled = await fetch(urls.port("zero"))
        assert throttled.status == 429
        assert throttled.headers["x-amzn-errortype"] == "TooManyRequestsException"

    scenario(tmp_path, test)


def test_cors_preflight_and_headers_come_from_the_urls_configuration(tmp_path: Path) -> None:
    async def test(urls: Urls) -> None:
        port = urls.port("web")
        before = len(urls.served.backend.live())
        preflight = await fetch(
            port,
            "/",
            "OPTIONS",
            Origin="http://app.test",
            **{
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-token",
            },
        )
        assert preflight.status == 200
        assert preflight.headers["access-control-allow-origin"] == "http://app.test"
        assert preflight.headers["access-control-allow-methods"] == "GET, POST"
        assert preflight.headers["access-control-allow-headers"] == "x-token"
        assert preflight.headers["access-control-max-age"] == "60"
        assert len(urls.served.backend.live()) == before  # answered without the function
        allowed = await fetch(port, Origin="http://app.test")
        assert allowed.headers["access-control-allow-origin"] == "http://app.test"
        assert allowed.headers["access-control-expose-headers"] == "x-test"
        other = await fetch(port, Origin="http://evil.test")
        assert "access-control-allow-origin" not in other.headers  # the function's is dropped

    scenario(tmp_path, test)


def test_auth_none_through_the_api_needs_a_policy_letting_anyone_in(tmp_path: Path) -> None:
    async def test(urls: Urls) -> None:
        created = await urls.call("POST", "/2021-10-31/functions/later/url", {"AuthType": "NONE"})
        assert created.status == 201
        url = json.loads(created.body)["FunctionUrl"]
        port = int(url.rsplit(":", 1)[1].rstrip("/"))
        refused = await fetch(port)
        assert refused.status == 403
        assert refused.headers["x-amzn-errortype"] == "AccessDeniedException"
        assert refused.json()["Message"].startswith("Forbidden. For troubleshooting Function URL")
        statement = {
            "Sid": "url",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "lambda:InvokeFunctionUrl",
            "Resource": "arn:aws:lambda:us-east-1:000000000000:function:later",
            "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "NONE"}},
        }
        await urls.meta.change("later", lambda meta: replace(meta, statements=(statement,)))
        assert (await fetch(port)).status == 201

    scenario(tmp_path, test)


def test_auth_aws_iam_requires_a_valid_signature(tmp_path: Path) -> None:
    async def test(urls: Urls) -> None:
        port = urls.port("signed")
        assert (await fetch(port)).status == 403
        host = {"Host": f"127.0.0.1:{port}"}
        signed = sigv4.sign("GET", "/x", {}, host, b"", KEYS, "us-east-1")
        response = await fetch(port, "/x", **signed)
        assert response.status == 201, response.body
        context = response.json()["requestContext"]
        assert context["accountId"] == "000000000000"
        assert context["authorizer"]["iam"]["accessKey"] == KEYS.access_key_id
        other = sigv4.Credentials(KEYS.access_key_id, "another-secret-000000000000000000000000")
        forged = sigv4.sign("GET", "/x", {}, host, b"", other, "us-east-1")
        assert (await fetch(port, "/x", **forged)).status == 403

    scenario(tmp_path, test)


def test_a_host_name_that_is_not_lrun_is_refused(tmp_path: Path) -> None:
    async def test(urls: Urls) -> None:
        client = await Client.connect(urls.port("bare"))
        try:
            await client.send(request_bytes("GET", "/"))  # Host: test
            assert (await client.response()).status == 403
        finally:
            await client.close()

    scenario(tmp_path, test)


def test_response_stream_sends_the_prelude_then_the_body_as_it_is_written(
    tmp_path: Path,
) -> None:
    async def test(urls: Urls) -> None:
        port = urls.port("page")
        client = await Client.connect(port)
        try:
            await client.send(request_bytes("GET", "/", headers={"Host": f"127.0.0.1:{port}"}))
            head = await asyncio.wait_for(client.reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)
            assert head.startswith(b"HTTP/1.1 202 ")
            assert b"X-Kind: page" in head and b"Set-Cookie: c=3" in head
            assert b"Transfer-Encoding: chunked" in head
            first = await asyncio.wait_for(client.reader.readuntil(b"</p>\r\n"), TIMEOUT_S)
            assert first.endswith(b"<p>one</p>\r\n")  # while the function waits on the test
            urls.release.set()
            rest = await asyncio.wait_for(client.reader.readuntil(b"0\r\n\r\n"), TIMEOUT_S)
            assert b"<p>two</p>" in rest
        finally:
            await client.close()
        plain = await fetch(urls.port("plain"))
        assert (plain.status, plain.headers["content-type"]) == (200, "text/plain")
        whole = await fetch(urls.port("whole"))  # answered whole: passed on as it is
        assert (whole.status, whole.json()) == (200, {"hello": "world"})

    scenario(tmp_path, test)


def test_the_configuration_api_serves_updates_and_removes_a_url(tmp_path: Path) -> None:
    async def test(urls: Urls) -> None:
        path = "/2021-10-31/functions/later/url"
        made = json.loads((await urls.call("POST", path, {"AuthType": "AWS_IAM"})).body)
        port = int(made["FunctionUrl"].rsplit(":", 1)[1].rstrip("/"))
        assert (await fetch(port)).status == 403  # AWS_IAM: unsigned
        updated = await urls.call("PUT", path, {"AuthType": "NONE", "InvokeMode": "BUFFERED"})
        assert json.loads(updated.body)["AuthType"] == "NONE"
        await urls.meta.change(
            "later",
            lambda meta: replace(
                meta,
                statements=({"Effect": "Allow", "Principal": "*", "Action": "lambda:*"},),
            ),
        )
        assert (await fetch(port)).status == 201  # the same URL, its new configuration
        rows = {row["function"]: row for row in urls.urls.describe()}
        assert rows["later"]["source"] == "api" and rows["web"]["source"] == "manifest"
        assert (await urls.call("DELETE", path)).status == 204
        with contextlib.suppress(OSError):
            assert (await fetch(port)).status != 201  # nothing listens there any more
        conflict = await urls.call("PUT", "/2021-10-31/functions/web/url", {"AuthType": "AWS_IAM"})
        assert conflict.status == 409
        assert b"functions.web.url" in conflict.body

    scenario(tmp_path, test)


def test_a_url_keeps_its_port_across_restarts(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(tmp_path) as urls:
            made = await urls.call("POST", "/2021-10-31/functions/later/url", {"AuthType": "NONE"})
            first = json.loads(made.body)["FunctionUrl"]
            manifest_url = {r["function"]: r["url"] for r in urls.urls.describe()}["web"]
        async with serving(tmp_path) as urls:
            await urls.urls.restore()
            rows = {r["function"]: r["url"] for r in urls.urls.describe()}
            assert rows["later"] == first
            assert rows["web"] == manifest_url

    run(main(), 10.0)


def test_urls_are_bounded(tmp_path: Path) -> None:
    async def test(urls: Urls) -> None:
        urls.urls._max_urls = len(urls.urls.describe())
        refused = await urls.call("POST", "/2021-10-31/functions/later/url", {"AuthType": "NONE"})
        assert refused.status == 400
        assert b"lrun serves at most" in refused.body

    scenario(tmp_path, test)


def test_a_qualifier_is_an_alias_given_apart_or_in_the_name(tmp_path: Path) -> None:
    async def test(urls: Urls) -> None:
        body = {"AuthType": "NONE"}
        apart = await urls.call("POST", "/2021-10-31/functions/later/url", body, Qualifier="v1")
        within = await urls.call("POST", "/2021-10-31/functions/later:v1/url", body)
        for answer in (apart, within):
            assert answer.status == 404, answer.body  # no such alias
            assert json.loads(answer.body)["Message"] == "Function does not exist"
        version = await urls.call("POST", "/2021-10-31/functions/later:1/url", body)
        assert version.status == 400, version.body
        assert b"Value 'later:1' at 'functionName' failed to satisfy" in version.body

    scenario(tmp_path, test)


def test_what_a_client_or_a_function_can_make_a_url_hold_is_bounded(tmp_path: Path) -> None:
    """Attacks (DESIGN D9): a request body over Lambda's 6 MB is refused while it is read; a
    streamed prelude that never ends is cut at 64 KB (a 502), the function's stream dropped."""

    async def test(urls: Urls) -> None:
        port = urls.port("bare")
        big = await fetch(port, "/", "POST", b"x" * (6 * 1024 * 1024 + 1))
        assert big.status == 413
        assert big.headers["x-amzn-errortype"] == "RequestEntityTooLargeException"
        endless = await fetch(urls.port("endless"))
        assert (endless.status, endless.body) == (502, b"Internal Server Error")
        urls.release.set()

    scenario(tmp_path, test)
