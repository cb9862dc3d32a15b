"""Functions created through Lambda's API against a real `lrun serve`: boto3 and the AWS CLI
create one from a zip made here, wait for it with botocore's waiters, invoke it, update its code
and configuration, download its code from GetFunction's Code.Location, see it survive a restart,
and delete it. Manifest functions stay the manifest's."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.acceptance.conftest import Lrun, LrunServer, start_server

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
CODE = """import os

def handler(event, context):
    print("ran", event.get("mark"))
    color = os.environ.get("COLOR")
    return {"version": VERSION, "color": color, "memory": context.memory_limit_in_mb}
"""


def code_zip(version: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        # A fixed date: the same version is the same bytes, to compare with what is downloaded.
        info = zipfile.ZipInfo("app.py", date_time=(2024, 1, 1, 0, 0, 0))
        archive.writestr(info, CODE.replace("VERSION", str(version)))
    return buffer.getvalue()


def client(server: LrunServer) -> Any:
    return boto3.client(
        "lambda",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 0}, read_timeout=120),
    )


def invoke(lam: Any, name: str, **event: Any) -> dict[str, Any]:
    answer = lam.invoke(FunctionName=name, Payload=json.dumps(event))
    assert "FunctionError" not in answer, answer["Payload"].read()
    result: dict[str, Any] = json.loads(answer["Payload"].read())
    return result


def wait(lam: Any, waiter: str, name: str) -> None:
    lam.get_waiter(waiter).wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def project(root: Path) -> Path:
    (root / "hello").mkdir(parents=True)
    (root / "hello" / "app.py").write_text("def handler(e, c):\n    return 'hi'\n")
    (root / "lrun.yaml").write_text(
        "functions:\n  hello: {runtime: python3.13, handler: app.handler, code: ./hello}\n"
    )
    return root


def test_a_function_made_through_the_api_lives_its_whole_life(tmp_path: Path) -> None:
    root = project(tmp_path / "project")
    state = tmp_path / "state"
    server = start_server(root, state)
    try:
        lam = client(server)
        first = code_zip(1)
        created = lam.create_function(
            FunctionName="made",
            Runtime="python3.13",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": first},
            Environment={"Variables": {"COLOR": "red"}},
            Tags={"team": "core"},
        )
        assert created["State"] == "Pending"
        wait(lam, "function_active_v2", "made")
        assert invoke(lam, "made") == {"version": 1, "color": "red", "memory": "128"}
        assert invoke(lam, "made") == {"version": 1, "color": "red", "memory": "128"}  # warm

        lam.update_function_code(FunctionName="made", ZipFile=code_zip(2))
        wait(lam, "function_updated_v2", "made")
        # The warm environment of version 1 must not answer this.
        assert invoke(lam, "made")["version"] == 2

        lam.update_function_configuration(
            FunctionName="made", MemorySize=256, Environment={"Variables": {"COLOR": "blue"}}
        )
        wait(lam, "function_updated_v2", "made")
        assert invoke(lam, "made") == {"version": 2, "color": "blue", "memory": "256"}

        got = lam.get_function(FunctionName="made")
        assert got["Configuration"]["MemorySize"] == 256
        assert got["Tags"] == {"team": "core"}
        with urllib.request.urlopen(got["Code"]["Location"], timeout=30) as response:
            assert response.read() == code_zip(2)
        names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
        assert sorted(names) == ["hello", "made"]

        # Asynchronously too: the event is run, and its output reaches the function's log.
        assert (
            lam.invoke(FunctionName="made", InvocationType="Event", Payload=b'{"mark": "async-7"}')[
                "StatusCode"
            ]
            == 202
        )
        log = state / "logs" / "made.log"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "ran async-7" not in (
            log.read_text() if log.exists() else ""
        ):
            time.sleep(0.2)
        assert "ran async-7" in log.read_text()

        # The manifest's function is the manifest's.
        with pytest.raises(ClientError) as caught:
            lam.update_function_configuration(FunctionName="hello", MemorySize=256)
        assert caught.value.response["Error"]["Code"] == "ResourceConflictException"
        assert "lrun.yaml" in caught.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as caught:
            lam.create_function(
                FunctionName="made",
                Runtime="python3.13",
                Role=ROLE,
                Handler="app.handler",
                Code={"ZipFile": first},
            )
        assert caught.value.response["Error"]["Message"] == "Function already exist: made"
        server.finish()

        # A restart: the function and its code are still there, and run.
        server = start_server(root, state)
        lam = client(server)
        wait(lam, "function_active_v2", "made")
        assert invoke(lam, "made") == {"version": 2, "color": "blue", "memory": "256"}
        got = lam.get_function(FunctionName="made")
        with urllib.request.urlopen(got["Code"]["Location"], timeout=30) as response:
            assert response.read() == code_zip(2)

        lam.delete_function(FunctionName="made")
        with pytest.raises(ClientError) as caught:
            lam.get_function(FunctionName="made")
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
        with pytest.raises(ClientError) as caught:
            lam.invoke(FunctionName="made")
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
        server.finish()
    finally:
        server.clean_up()


def test_the_aws_cli_creates_waits_invokes_and_deletes(tmp_path: Path, lrun: Lrun) -> None:
    root = project(tmp_path / "project")
    server = start_server(root, tmp_path / "state")
    (tmp_path / "code.zip").write_bytes(code_zip(5))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_PAGER": "",
    }

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "awscli", "lambda", *args, "--endpoint-url", server.url],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    try:
        done = aws(
            "create-function",
            "--function-name",
            "cli-made",
            "--runtime",
            "python3.13",
            "--role",
            ROLE,
            "--handler",
            "app.handler",
            "--zip-file",
            "fileb://code.zip",
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["State"] == "Pending"
        assert aws("wait", "function-active-v2", "--function-name", "cli-made").returncode == 0
        done = aws("invoke", "--function-name", "cli-made", "out.json")
        assert done.returncode == 0, done.stderr
        assert json.loads((tmp_path / "out.json").read_text())["version"] == 5
        again = aws(
            "create-function",
            "--function-name",
            "cli-made",
            "--runtime",
            "python3.13",
            "--role",
            ROLE,
            "--handler",
            "app.handler",
            "--zip-file",
            "fileb://code.zip",
        )
        assert again.returncode != 0
        assert "ResourceConflictException" in again.stderr
        assert "Function already exist: cli-made" in again.stderr
        # lrun's own view: both kinds together, then a delete through it.
        assert (
            aws(
                "create-function",
                "--function-name",
                "cli-two",
                "--runtime",
                "python3.13",
                "--role",
                ROLE,
                "--handler",
                "app.handler",
                "--zip-file",
                "fileb://code.zip",
                "--memory-size",
                "512",
            ).returncode
            == 0
        )
        listed = lrun("functions", "ls", "--json", cwd=root, env=server.env)
        assert listed.returncode == 0, listed.stderr
        sources = {row["FunctionName"]: row["Source"] for row in json.loads(listed.stdout)}
        assert sources == {"hello": str(root / "lrun.yaml"), "cli-made": "api", "cli-two": "api"}
        wide = {**server.env, "COLUMNS": "200"}  # rich fits a table to the terminal's width
        table = lrun("functions", "ls", cwd=root, env=wide)
        assert table.returncode == 0 and "cli-two" in table.stdout and "manifest" in table.stdout
        got = lrun("functions", "get", "cli-two", "--json", cwd=root, env=server.env)
        assert json.loads(got.stdout)["Configuration"]["MemorySize"] == 512
        shown = lrun("functions", "get", "cli-two", cwd=root, env=wide)
        assert shown.returncode == 0 and "512" in shown.stdout
        refused = lrun("functions", "delete", "hello", cwd=root, env=server.env)
        assert refused.returncode != 0 and "managed by the manifest" in refused.stderr
        deleted = lrun("functions", "delete", "cli-two", cwd=root, env=server.env)
        assert deleted.returncode == 0 and "deleted cli-two" in deleted.stdout
        gone = lrun("functions", "get", "cli-two", cwd=root, env=server.env)
        assert gone.returncode != 0 and "Function not found" in gone.stderr

        assert aws("delete-function", "--function-name", "cli-made").returncode == 0
        gone = aws("get-function", "--function-name", "cli-made")
        assert gone.returncode != 0 and "ResourceNotFoundException" in gone.stderr
        server.finish()
    finally:
        server.clean_up()


def test_uploads_beyond_6_mb_are_taken_and_beyond_50_mb_refused_as_aws_does(
    tmp_path: Path,
) -> None:
    root = project(tmp_path / "project")
    server = start_server(root, tmp_path / "state")
    try:
        lam = client(server)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("app.py", CODE.replace("VERSION", "9"))
            archive.writestr("blob.bin", os.urandom(8 * 1024 * 1024))  # over the 6 MB of others
        big = buffer.getvalue()
        lam.create_function(
            FunctionName="big",
            Runtime="python3.13",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": big},
        )
        wait(lam, "function_active_v2", "big")
        assert invoke(lam, "big")["version"] == 9
        assert lam.get_function(FunctionName="big")["Configuration"]["CodeSize"] == len(big)
        with pytest.raises(ClientError) as caught:
            lam.update_function_code(FunctionName="big", ZipFile=os.urandom(52_428_801))
        error = caught.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
        assert error["Error"]["Code"] == "RequestEntityTooLargeException"
        assert error["Error"]["Message"] == (
            "Request must be smaller than 69905067 bytes for the UpdateFunctionCode operation"
        )
        assert invoke(lam, "big")["version"] == 9  # unchanged
        server.finish()
    finally:
        server.clean_up()


HELLO_CLASS = Path(__file__).resolve().parents[2] / "templates/java/hello/example/Hello.class"


def java_package(layout: str) -> bytes:
    """The template's compiled handler as a jar (classes at its root), or as a zip holding that
    jar in lib/ (the layout Maven and Gradle build for Lambda)."""

    def jar() -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
            archive.writestr("example/Hello.class", HELLO_CLASS.read_bytes())
        return buffer.getvalue()

    if layout == "jar":
        return jar()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("lib/hello.jar", jar())
    return buffer.getvalue()


def test_a_java21_function_is_created_from_a_jar_or_a_zip_with_lib_jars(tmp_path: Path) -> None:
    """As on Lambda, a jar uploaded as the deployment package is extracted to /var/task, and a
    zip's lib/*.jar are on the class path; boto3 creates both, and each answers."""
    root = project(tmp_path / "project")
    server = start_server(root, tmp_path / "state")
    try:
        lam = client(server)
        for layout in ("jar", "zip"):
            lam.create_function(
                FunctionName=f"java-{layout}",
                Runtime="java21",
                Role=ROLE,
                Handler="example.Hello::handleRequest",
                Code={"ZipFile": java_package(layout)},
                MemorySize=256,
                Timeout=10,
            )
            wait(lam, "function_active_v2", f"java-{layout}")
            answer = lam.invoke(FunctionName=f"java-{layout}", Payload=b'{"name": "boto3"}')
            assert "FunctionError" not in answer, answer["Payload"].read()
            assert json.loads(answer["Payload"].read()) == {"message": "Hello, boto3!"}
        server.finish()
    finally:
        server.clean_up()
