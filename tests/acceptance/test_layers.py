"""Layers against a real `lrun serve` with real clients: boto3 publishes a Python layer and a
Node.js layer, creates functions that use them and invokes them; the manifest names a published
version by its ARN; a deleted version stays with the function that uses it; versions survive a
restart; the AWS CLI publishes and lists."""

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

import pytest
from botocore.exceptions import ClientError

from tests.acceptance.conftest import start_server
from tests.acceptance.test_api_functions import ROLE, client, invoke, project, wait


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), text)
    return buffer.getvalue()


PYTHON_LAYER = zipped({"python/greeting.py": "def greet(name):\n    return f'Hello, {name}!'\n"})
PYTHON_CODE = zipped(
    {
        "app.py": "import greeting\n\n\ndef handler(event, context):\n"
        "    return {'said': greeting.greet(event['who']), 'from': greeting.__file__}\n"
    }
)
NODE_LAYER = zipped(
    {"nodejs/node_modules/shout/index.js": "module.exports = (s) => s.toUpperCase();\n"}
)
NODE_CODE = zipped(
    {
        "index.js": "const shout = require('shout');\n"
        "exports.handler = async (event) => ({said: shout(event.who), "
        "from: require.resolve('shout')});\n"
    }
)


def test_boto3_publishes_layers_and_functions_use_them(tmp_path: Path) -> None:
    root = project(tmp_path / "project")
    state = tmp_path / "state"
    server = start_server(root, state)
    try:
        lam = client(server)
        python = lam.publish_layer_version(
            LayerName="greeting",
            Description="says hello",
            Content={"ZipFile": PYTHON_LAYER},
            CompatibleRuntimes=["python3.13"],
            CompatibleArchitectures=["x86_64"],
        )
        assert python["Version"] == 1
        assert python["LayerVersionArn"] == (
            "arn:aws:lambda:us-east-1:000000000000:layer:greeting:1"
        )
        with urllib.request.urlopen(python["Content"]["Location"], timeout=30) as response:
            assert response.read() == PYTHON_LAYER
        node = lam.publish_layer_version(LayerName="shout", Content={"ZipFile": NODE_LAYER})

        lam.create_function(
            FunctionName="py",
            Runtime="python3.13",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": PYTHON_CODE},
            Layers=[python["LayerVersionArn"]],
        )
        lam.create_function(
            FunctionName="js",
            Runtime="nodejs20.x",
            Role=ROLE,
            Handler="index.handler",
            Code={"ZipFile": NODE_CODE},
            Layers=[node["LayerVersionArn"]],
        )
        for name in ("py", "js"):
            wait(lam, "function_active_v2", name)
        assert invoke(lam, "py", who="lrun") == {
            "said": "Hello, lrun!",
            "from": "/opt/python/greeting.py",
        }
        assert invoke(lam, "js", who="lrun") == {
            "said": "LRUN",
            "from": "/opt/nodejs/node_modules/shout/index.js",
        }
        layers = lam.get_function(FunctionName="py")["Configuration"]["Layers"]
        assert layers == [{"Arn": python["LayerVersionArn"], "CodeSize": len(PYTHON_LAYER)}]
        listed = lam.list_layers(CompatibleRuntime="python3.13")["Layers"]
        assert [layer["LayerName"] for layer in listed] == ["greeting"]

        # The manifest may name a published version too: lrun reloads it and runs it.
        (root / "lrun.yaml").write_text(
            "functions:\n"
            "  hello: {runtime: python3.13, handler: app.handler, code: ./hello}\n"
            "  greeter:\n"
            "    runtime: python3.13\n"
            "    handler: app.handler\n"
            "    code: ./greeter\n"
            f"    layers: [{python['LayerVersionArn']}]\n"
        )
        (root / "greeter").mkdir()
        with zipfile.ZipFile(io.BytesIO(PYTHON_CODE)) as archive:
            archive.extractall(root / "greeter")
        deadline = time.monotonic() + 60
        while "greeter" not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.2)
        assert invoke(lam, "greeter", who="manifest")["said"] == "Hello, manifest!"

        # A deleted version is gone for the API, and stays with the functions that use it.
        lam.delete_layer_version(LayerName="greeting", VersionNumber=1)
        with pytest.raises(ClientError) as caught:
            lam.get_layer_version(LayerName="greeting", VersionNumber=1)
        assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
        lam.update_function_configuration(FunctionName="py", MemorySize=256)
        wait(lam, "function_updated_v2", "py")
        assert invoke(lam, "py", who="still")["said"] == "Hello, still!"
        server.finish()

        # A restart: versions, and the functions that use them, are still there.
        server = start_server(root, state)
        lam = client(server)
        assert invoke(lam, "js", who="again")["said"] == "AGAIN"
        assert invoke(lam, "py", who="again")["said"] == "Hello, again!"
        versions = lam.list_layer_versions(LayerName="shout")["LayerVersions"]
        assert [v["Version"] for v in versions] == [1]
        assert (
            lam.publish_layer_version(LayerName="greeting", Content={"ZipFile": PYTHON_LAYER})[
                "Version"
            ]
            == 2
        )  # numbers are never reused
        server.finish()
    finally:
        server.clean_up()


def test_the_aws_cli_publishes_lists_and_deletes_a_layer(tmp_path: Path) -> None:
    root = project(tmp_path / "project")
    server = start_server(root, tmp_path / "state")
    (tmp_path / "layer.zip").write_bytes(PYTHON_LAYER)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_PAGER": "",
    }

    def aws(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "awscli", "lambda", *args, "--endpoint-url", server.url],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    try:
        published = aws(
            "publish-layer-version",
            "--layer-name",
            "cli-layer",
            "--zip-file",
            "fileb://layer.zip",
            "--compatible-runtimes",
            "python3.13",
            "python3.12",
            "--license-info",
            "MIT",
        )
        assert published["Version"] == 1 and published["LicenseInfo"] == "MIT"
        listed = aws("list-layer-versions", "--layer-name", "cli-layer")["LayerVersions"]
        assert [v["LayerVersionArn"] for v in listed] == [published["LayerVersionArn"]]
        by_arn = aws("get-layer-version-by-arn", "--arn", published["LayerVersionArn"])
        assert by_arn["Content"]["CodeSize"] == len(PYTHON_LAYER)
        aws(
            "add-layer-version-permission",
            "--layer-name",
            "cli-layer",
            "--version-number",
            "1",
            "--statement-id",
            "everyone",
            "--action",
            "lambda:GetLayerVersion",
            "--principal",
            "*",
        )
        policy = aws(
            "get-layer-version-policy", "--layer-name", "cli-layer", "--version-number", "1"
        )
        assert [s["Sid"] for s in json.loads(policy["Policy"])["Statement"]] == ["everyone"]
        aws("delete-layer-version", "--layer-name", "cli-layer", "--version-number", "1")
        assert aws("list-layers")["Layers"] == []
        server.finish()
    finally:
        server.clean_up()
