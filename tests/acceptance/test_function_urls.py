"""Function URLs through a real `lrun serve`, called by real HTTP clients (Python's http.client
and curl): the manifest's URLs printed at start and listed by `lrun ps`, a Node.js function
streaming through a RESPONSE_STREAM URL (each chunk's arrival timed), CORS, AWS_IAM with a
botocore-signed request, and a URL made, opened and removed through boto3."""

from __future__ import annotations

import configparser
import http.client
import json
import re
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from tests.acceptance.conftest import Lrun, LrunServer, start_server
from tests.acceptance.test_serve import lambda_client
from tests.conftest import FUNCTIONS

WEB = """
import json


def handler(event, context):
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Function": "web"},
        "cookies": ["seen=1"],
        "body": json.dumps({"path": event["rawPath"], "context": event["requestContext"],
                            "query": event.get("queryStringParameters")}),
    }
"""
MANIFEST = f"""
functions:
  web:
    runtime: python3.13
    handler: web.handler
    code: ./web
    url: {{auth: NONE, cors: {{allow_origins: ["http://app.test"], allow_methods: [GET, POST]}}}}
  words:
    runtime: nodejs22.x
    handler: streaming.paced
    code: {FUNCTIONS / "node"}
    url: {{auth: NONE, invoke_mode: RESPONSE_STREAM}}
  private:
    runtime: python3.13
    handler: web.handler
    code: ./web
    url: {{auth: AWS_IAM}}
  later:
    runtime: python3.13
    handler: web.handler
    code: ./web
"""
URL_LINE = re.compile(r"function URL of (\w+) \((\w+), (\w+)\): (http://\S+)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrunServer]:
    root = tmp_path_factory.mktemp("urls")
    project = root / "project"
    (project / "web").mkdir(parents=True)
    (project / "web" / "web.py").write_text(WEB)
    (project / "lrun.yaml").write_text(MANIFEST)
    started = start_server(project, root / "state")
    yield started
    started.finish()


@pytest.fixture(scope="module")
def urls(server: LrunServer) -> dict[str, str]:
    """The URLs `lrun serve` printed at start, by function."""
    return {m[1]: m[4] for m in URL_LINE.finditer(server.output())}


def request(
    url: str, path: str = "/", method: str = "GET", body: bytes | None = None, **headers: str
) -> tuple[http.client.HTTPResponse, bytes]:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.request(method, path, body, headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def test_serve_prints_each_url_and_ps_lists_them(
    server: LrunServer, urls: dict[str, str], lrun: Lrun
) -> None:
    assert set(urls) == {"web", "words", "private"}
    listed = lrun("ps", "--urls", "--json", env=server.env)
    assert listed.returncode == 0, listed.stderr
    rows = {row["function"]: row for row in json.loads(listed.stdout)}
    assert {name: row["url"] for name, row in rows.items()} == urls
    assert rows["words"]["invoke_mode"] == "RESPONSE_STREAM"
    assert rows["private"]["auth_type"] == "AWS_IAM"
    table = lrun("ps", env={**server.env, "COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    assert all(url in table.stdout for url in urls.values())  # the function URL table


def test_a_buffered_url_answers_with_payload_20_and_cors(urls: dict[str, str]) -> None:
    response, data = request(urls["web"], "/shop/items?id=7&id=8", Origin="http://app.test")
    assert response.status == 200
    body = json.loads(data)
    assert body["path"] == "/shop/items" and body["query"] == {"id": "7,8"}
    assert body["context"]["accountId"] == "anonymous"
    assert body["context"]["routeKey"] == "$default"
    assert response.getheader("X-Function") == "web"
    assert response.getheader("Set-Cookie") == "seen=1"
    assert response.getheader("Access-Control-Allow-Origin") == "http://app.test"
    assert response.getheader("x-amzn-RequestId") == body["context"]["requestId"]
    preflight, _ = request(
        urls["web"],
        "/",
        "OPTIONS",
        Origin="http://app.test",
        **{"Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 200
    assert preflight.getheader("Access-Control-Allow-Methods") == "GET, POST"


def test_curl_calls_a_url(urls: dict[str, str]) -> None:
    done = subprocess.run(
        ["curl", "-sS", "-i", urls["web"] + "hello"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("HTTP/1.1 200 OK")
    assert '"path": "/hello"' in done.stdout


def test_a_streaming_url_delivers_chunks_while_the_function_writes(urls: dict[str, str]) -> None:
    request(urls["words"])  # a cold start is not timed
    parts = urllib.parse.urlsplit(urls["words"])
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    started = time.monotonic()
    connection.request("GET", "/")
    response = connection.getresponse()
    headed = time.monotonic()
    arrivals: list[tuple[float, bytes]] = []
    while piece := response.read1(65536):
        arrivals.append((time.monotonic(), piece))
    connection.close()
    # The prelude of awslambda.HttpResponseStream.from: status, headers and cookies.
    assert response.status == 201
    assert response.getheader("Content-Type") == "text/html"
    assert response.getheader("Set-Cookie") == "flavour=oat"
    assert b"".join(p for _, p in arrivals) == b"<p>first</p><p>last</p>"
    # The page waits 0.8 s between its two writes: the head and the first part came while the
    # function was still writing, the last part after.
    assert arrivals[0][1] == b"<p>first</p>"
    assert arrivals[-1][0] - headed > 0.6, [(at - started, p) for at, p in arrivals]


def test_aws_iam_urls_take_only_signed_requests(server: LrunServer, urls: dict[str, str]) -> None:
    unsigned, _ = request(urls["private"])
    assert unsigned.status == 403
    keys = configparser.ConfigParser()
    keys.read(Path(server.state_dir) / "credentials")
    section = keys[keys.sections()[0]]
    credentials = botocore.credentials.Credentials(
        section["aws_access_key_id"], section["aws_secret_access_key"]
    )
    parts = urllib.parse.urlsplit(urls["private"])
    signed = botocore.awsrequest.AWSRequest(
        "GET", urls["private"] + "me", headers={"Host": parts.netloc}
    )
    botocore.auth.SigV4Auth(credentials, "lambda", "us-east-1").add_auth(signed)
    response, data = request(urls["private"], "/me", **dict(signed.headers.items()))
    assert response.status == 200, data
    context = json.loads(data)["context"]
    assert context["authorizer"]["iam"]["accessKey"] == section["aws_access_key_id"]


def test_a_url_made_through_boto3(server: LrunServer) -> None:
    client = lambda_client(server.url)
    made = client.create_function_url_config(FunctionName="later", AuthType="NONE")
    url = made["FunctionUrl"]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/")
    refused, _ = request(url)
    assert refused.status == 403  # no policy lets anyone in yet, as on AWS
    client.add_permission(
        FunctionName="later",
        StatementId="public-url",
        Action="lambda:InvokeFunctionUrl",
        Principal="*",
        FunctionUrlAuthType="NONE",
    )
    opened, data = request(url, "/now")
    assert opened.status == 200 and json.loads(data)["path"] == "/now"
    listed = client.list_function_url_configs(FunctionName="later")["FunctionUrlConfigs"]
    assert [c["FunctionUrl"] for c in listed] == [url]
    client.delete_function_url_config(FunctionName="later")
    with pytest.raises(OSError):
        request(url)
