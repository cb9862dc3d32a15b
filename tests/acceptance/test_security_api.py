"""Attacks on the Lambda API of a real `lrun serve` (issue 8, findings 2 and 3), each of which
must fail: DNS rebinding (a foreign ``Host``), cross-site requests from a web page (``Origin``,
``text/plain`` posts), unsigned and badly signed requests to a server listening beyond loopback,
and a function calling the API from inside its container. Then the other side: boto3, the AWS
CLI and `lrun invoke` work unchanged, signed, against a server beyond loopback.

A function that must not run is one whose environments are counted: if any attack had reached
it, the server would have started one.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from orchestrator.api import credentials as keys
from tests.acceptance.conftest import LrunServer, start_server

KEY_ID = "LRUNACCEPTANCE000001"
SECRET = "acceptance-secret-0123456789abcdefghijkl"
EVIL = "https://evil.example"
ALLOWED_ORIGIN = "http://localhost:3000"

FUNCTION_CODE = '''\
import datetime
import hashlib
import hmac
import json
import os
import urllib.error
import urllib.request


def hello(event, context):
    return {"hello": event.get("name", "world")}


def _call(url, headers):
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return {"status": response.status, "body": response.read().decode()[:200]}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "type": error.headers.get("x-amzn-ErrorType")}
    except OSError as error:
        return {"status": None, "error": str(error)}


def _signed(host, path, key_id, secret, token):
    """SigV4 headers for GET path, as any SDK inside a function would make them."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {"host": host, "x-amz-date": amz_date, "x-amz-security-token": token}
    names = sorted(headers)
    canonical = "\\n".join(
        ["GET", path, "", "".join(f"{n}:{headers[n]}\\n" for n in names), ";".join(names),
         hashlib.sha256(b"").hexdigest()]
    )
    scope = f"{day}/us-east-1/lambda/aws4_request"
    to_sign = "\\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in (day, "us-east-1", "lambda", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={signature}"
    )
    return headers


def attack(event, context):
    """Try to list lrun's functions through its API, from inside this container."""
    host = "%s:%s" % (os.environ["AWS_LAMBDA_RUNTIME_API"].rsplit(":", 1)[0], event["port"])
    path = "/2015-03-31/functions"
    env = os.environ
    return {
        "unsigned": _call("http://" + host + path, {}),
        "with_own_credentials": _call(
            "http://" + host + path,
            _signed(host, path, env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                    env["AWS_SESSION_TOKEN"]),
        ),
        "environment": dict(env),
    }
'''

MANIFEST = """\
functions:
  hello: {runtime: python3.13, handler: app.hello, code: ./code}
  untouched: {runtime: python3.13, handler: app.hello, code: ./code}
  attacker: {runtime: python3.13, handler: app.attack, code: ./code, timeout: 30}
"""


def project(root: Path) -> Path:
    directory = root / "project"
    (directory / "code").mkdir(parents=True)
    (directory / "code" / "app.py").write_text(FUNCTION_CODE)
    (directory / "lrun.yaml").write_text(MANIFEST)
    return directory


def outward_address() -> str:
    """An address of this machine that is not loopback (no packet is sent to find it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address: str = probe.getsockname()[0]
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        pytest.skip("this machine has no non-loopback IPv4 address to reach lrun at")
    return address


def raw(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    address: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly these headers (a browser's, an attacker's), on its own socket."""
    lines = [f"{method} {path} HTTP/1.1", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((address, port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, payload = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    found = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    return int(status_line.split()[1]), found, payload


def never_ran(server: LrunServer, function: str = "untouched") -> None:
    assert server.environments(function) == [], f"{function} ran: an attack got through"


def lambda_client(url: str, key_id: str = KEY_ID, secret: str = SECRET) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 0}, read_timeout=120),
    )


def error_of(call: Any) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return (
        error["Error"]["Code"],
        error["Error"]["Message"],
        error["ResponseMetadata"]["HTTPStatusCode"],
    )


INVOKE_UNTOUCHED = "/2015-03-31/functions/untouched/invocations"


# Finding 2: a web page in the user's browser, against the default loopback server


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrunServer]:
    root = tmp_path_factory.mktemp("local")
    server = start_server(project(root), root / "state", "--cors-origin", ALLOWED_ORIGIN)
    yield server
    server.finish()


def test_dns_rebinding_is_refused(local: LrunServer) -> None:
    """A page on evil.example whose name now resolves to 127.0.0.1: same-origin for the
    browser, so it could read the answers. Its requests still say Host: evil.example."""
    for host in ("evil.example", f"evil.example:{local.port}"):
        status, headers, body = raw(local.port, "GET", "/2015-03-31/functions", {"Host": host})
        assert status == 403, body
        assert headers["x-amzn-errortype"] == "AccessDeniedException"
        assert b"hello" not in body and b"--allow-host evil.example" in body
        status, _, body = raw(
            local.port,
            "POST",
            INVOKE_UNTOUCHED,
            {"Host": host, "Content-Type": "application/json"},
            b"{}",
        )
        assert status == 403, body
    never_ran(local)
    # The same requests addressed as lrun is: answered.
    status, _, body = raw(
        local.port, "GET", "/2015-03-31/functions", {"Host": f"localhost:{local.port}"}
    )
    assert status == 200 and b"hello" in body


def test_cross_site_posts_are_refused(local: LrunServer) -> None:
    """What any page can send without asking: a text/plain POST (fetch no-cors, a form)."""
    host = {"Host": f"127.0.0.1:{local.port}"}
    page = {**host, "Content-Type": "text/plain;charset=UTF-8"}
    for headers in (
        {**page, "Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        {**page, "Origin": "null"},  # a sandboxed frame, a file:// page
        {**host, "Origin": EVIL},  # a Blob body: no Content-Type at all
        {**page, "Sec-Fetch-Site": "cross-site"},  # a browser that withheld Origin
        {**host, "Content-Type": "application/x-www-form-urlencoded"},  # <form method=post>
        page,
    ):
        status, reply, body = raw(local.port, "POST", INVOKE_UNTOUCHED, headers, b'{"x": 1}')
        assert status in (403, 415), (headers, status, body)
        assert reply["x-amzn-errortype"] in (
            "AccessDeniedException",
            "UnsupportedMediaTypeException",
        )
        assert "access-control-allow-origin" not in reply
    never_ran(local)


def test_cors_is_answered_for_allowed_origins_only(local: LrunServer) -> None:
    host = {"Host": f"127.0.0.1:{local.port}"}
    preflight = {
        **host,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    status, reply, _ = raw(local.port, "OPTIONS", INVOKE_UNTOUCHED, {**preflight, "Origin": EVIL})
    assert status == 403 and "access-control-allow-origin" not in reply
    status, reply, _ = raw(
        local.port,
        "OPTIONS",
        "/2015-03-31/functions/hello/invocations",
        {**preflight, "Origin": ALLOWED_ORIGIN},
    )
    assert status == 204 and reply["access-control-allow-origin"] == ALLOWED_ORIGIN
    status, reply, body = raw(
        local.port,
        "POST",
        "/2015-03-31/functions/hello/invocations",
        {**host, "Origin": ALLOWED_ORIGIN, "Content-Type": "application/json"},
        b'{"name": "page"}',
    )
    assert status == 200, body
    assert json.loads(body) == {"hello": "page"}
    assert reply["access-control-allow-origin"] == ALLOWED_ORIGIN
    never_ran(local)


def test_loopback_clients_still_work_unsigned(local: LrunServer) -> None:
    client = lambda_client(local.url, "anything", "anything")
    answer = client.invoke(FunctionName="hello", Payload=b'{"name": "boto3"}')
    assert json.loads(answer["Payload"].read()) == {"hello": "boto3"}


# Finding 3: beyond loopback, every request is signed


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LrunServer]:
    root = tmp_path_factory.mktemp("exposed")
    server = start_server(
        project(root),
        root / "state",
        "--host",
        "0.0.0.0",
        env={"LRUN_ACCESS_KEY_ID": KEY_ID, "LRUN_SECRET_ACCESS_KEY": SECRET},
    )
    yield server
    server.finish()


def exposed_url(server: LrunServer) -> str:
    return f"http://{outward_address()}:{server.port}"


def test_beyond_loopback_the_start_up_says_so_and_never_prints_the_secret(
    exposed: LrunServer,
) -> None:
    output = exposed.output()
    assert "listening beyond loopback" in output and KEY_ID in output
    assert SECRET not in output


def test_an_unsigned_request_from_the_network_is_refused(exposed: LrunServer) -> None:
    address = outward_address()
    host = {"Host": f"{address}:{exposed.port}"}
    status, reply, body = raw(exposed.port, "GET", "/2015-03-31/functions", host, address=address)
    assert (status, reply["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException")
    assert json.loads(body) == {"message": "Missing Authentication Token"}
    status, reply, _ = raw(
        exposed.port,
        "POST",
        INVOKE_UNTOUCHED,
        {**host, "Content-Type": "application/json"},
        b"{}",
        address=address,
    )
    assert (status, reply["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException")
    # Loopback clients of a server listening beyond it are no exception.
    status, _, _ = raw(exposed.port, "GET", "/lrun/environments", {"Host": "127.0.0.1"})
    assert status == 403
    never_ran(exposed)


def test_badly_signed_requests_are_refused_as_aws_does(exposed: LrunServer) -> None:
    url = exposed_url(exposed)
    wrong_secret = lambda_client(url, KEY_ID, "not-the-secret")
    code, message, status = error_of(
        lambda: wrong_secret.invoke(FunctionName="untouched", Payload=b"{}")
    )
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith(
        "The request signature we calculated does not match the signature you provided."
    )
    stranger = lambda_client(url, "AKIASOMEONEELSE00000", SECRET)
    code, message, status = error_of(stranger.list_functions)
    assert (code, status) == ("UnrecognizedClientException", 403)
    assert message == "The security token included in the request is invalid."
    never_ran(exposed)


def test_boto3_works_unchanged_with_the_key_pair(exposed: LrunServer) -> None:
    client = lambda_client(exposed_url(exposed))
    answer = client.invoke(FunctionName="hello", Payload=b'{"name": "network"}')
    assert json.loads(answer["Payload"].read()) == {"hello": "network"}
    names = [f["FunctionName"] for f in client.list_functions()["Functions"]]
    assert names == ["attacker", "hello", "untouched"]
    client.put_function_concurrency(FunctionName="hello", ReservedConcurrentExecutions=5)
    assert client.get_function(FunctionName="hello")["Concurrency"] == {
        "ReservedConcurrentExecutions": 5
    }
    client.delete_function_concurrency(FunctionName="hello")
    accepted = client.invoke(FunctionName="hello", InvocationType="Event", Payload=b"{}")
    assert accepted["StatusCode"] == 202


def test_the_aws_cli_works_unchanged_with_the_key_pair(exposed: LrunServer, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_PAGER": "",
    }

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "awscli", *args, "--endpoint-url", exposed_url(exposed)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    done = aws(
        "lambda", "invoke", "--function-name", "hello", "--payload", '{"name": "cli"}', "out.json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out.json").read_text()) == {"hello": "cli"}
    listed = aws("lambda", "list-functions")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["Functions"]) == 3
    env["AWS_SECRET_ACCESS_KEY"] = "wrong"
    refused = aws("lambda", "list-functions")
    assert refused.returncode != 0 and "InvalidSignatureException" in refused.stderr


def test_lrun_invoke_signs_its_own_requests(exposed: LrunServer, lrun: Any) -> None:
    done = lrun(
        "invoke", "hello", "-p", '{"name": "lrun"}', cwd=exposed.manifest_dir, env=exposed.env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"hello": "lrun"}
    listed = lrun("ps", cwd=exposed.manifest_dir, env=exposed.env)
    assert listed.returncode == 0, listed.stderr
    record = exposed.state_dir / "server.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600  # it holds the key pair


def test_a_function_cannot_drive_the_api_from_inside_its_container(exposed: LrunServer) -> None:
    """lrun listens on every address, so the container reaches it through its gateway; it has
    no credentials lrun accepts, and gets none of lrun's."""
    client = lambda_client(exposed_url(exposed))
    answer = client.invoke(FunctionName="attacker", Payload=json.dumps({"port": exposed.port}))
    result = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, result
    unsigned, own = result["unsigned"], result["with_own_credentials"]
    assert unsigned["status"] != 200 and own["status"] != 200, result
    if unsigned["status"] is not None:  # reachable (public network): the signature stops it
        assert (unsigned["status"], unsigned["type"]) == (
            403,
            "MissingAuthenticationTokenException",
        )
        assert (own["status"], own["type"]) == (403, "UnrecognizedClientException")
    values = json.dumps(result["environment"])
    assert SECRET not in values and KEY_ID not in values
    never_ran(exposed)


# The generated key pair, and signatures on loopback


def test_a_generated_key_pair_is_printed_once_and_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = project(tmp_path)
    state = tmp_path / "shared-state"
    first = start_server(directory, state, "--host", "0.0.0.0")
    try:
        generated = keys.generated_file(state)
        assert stat.S_IMODE(generated.stat().st_mode) == 0o600
        made = keys.from_profile(keys.GENERATED_PROFILE, generated)
        assert made.secret_access_key in first.output()  # shown the once it is made
        # The file is a shared credentials file: boto3 (and the CLI) take it as it is.
        for name in [k for k in os.environ if k.startswith("AWS_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(generated))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
        session = boto3.Session(profile_name=keys.GENERATED_PROFILE)
        client = session.client("lambda", endpoint_url=exposed_url(first), region_name="us-east-1")
        assert client.invoke(FunctionName="hello", Payload=b"{}")["StatusCode"] == 200
    finally:
        first.finish()
    # Again, on loopback with --require-signature: the same pair, not shown again, required.
    second = start_server(directory, state, "--require-signature")
    try:
        assert made.secret_access_key not in second.output()
        assert made.access_key_id in second.output()
        status, reply, _ = raw(second.port, "GET", "/2015-03-31/functions", {"Host": "127.0.0.1"})
        assert (status, reply["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException")
        signed = lambda_client(second.url, made.access_key_id, made.secret_access_key)
        assert len(signed.list_functions()["Functions"]) == 3
    finally:
        second.finish()
