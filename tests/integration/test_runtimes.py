"""What ordinary functions expect of Lambda's runtimes, run in the real images: the AWS SDK,
layers at /opt, bash as /bin/sh for custom runtimes."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.sandbox import images
from tests.conftest import FUNCTIONS
from tests.integration.conftest import load_function

SDK = FUNCTIONS / "sdk"
LAYERS = FUNCTIONS / "layers"
REPORT = re.compile(r"^REPORT RequestId: [0-9a-f-]{36}\tDuration: ", re.MULTILINE)


def project(tmp_path: Path, write_manifest: Callable[[str], Path], text: str) -> Path:
    """A manifest in a project that holds copies of the test layers (layers stay inside it)."""
    shutil.copytree(LAYERS, tmp_path / "layers")
    return write_manifest(text)


def test_python_runtimes_include_boto3_and_botocore(invoke, write_manifest) -> None:
    pins = images.sdk_versions(images.RUNTIMES["python3.13"])
    path = write_manifest(
        f"""
        functions:
          old: {{runtime: python3.11, handler: uses_boto3.handler, code: {SDK}, memory: 512}}
          new: {{runtime: python3.13, handler: uses_boto3.handler, code: {SDK}, memory: 512}}
        """
    )
    for name, python in (("old", "3.11"), ("new", "3.13")):
        result = invoke(load_function(path, name))
        assert result.function_error is None, result.payload
        seen = json.loads(result.payload)
        assert {"boto3": seen["boto3"], "botocore": seen["botocore"]} == pins
        assert seen["boto3_file"].startswith(f"/var/lang/lib/python{python}/site-packages/")
        assert seen["region"] == "us-east-1"


def test_a_python_layer_is_on_sys_path(invoke, write_manifest, tmp_path) -> None:
    path = project(
        tmp_path,
        write_manifest,
        f"""
        functions:
          f:
            runtime: python3.13
            handler: uses_boto3.from_layer
            code: {SDK}
            memory: 512
            layers: [./layers/python-greeting]
        """,
    )
    result = invoke(load_function(path, "f"), b'{"name": "lrun"}')
    assert result.function_error is None, result.payload
    assert json.loads(result.payload) == {
        "greeting": "Hello from a layer, lrun!",
        "file": "/opt/python/greeting.py",
    }


NODE_RUNTIMES = [name for name in images.RUNTIMES if name.startswith("nodejs")]


def test_node_finds_the_sdk_in_a_layer_by_require_and_import(
    invoke, write_manifest, tmp_path
) -> None:
    lines = ["functions:"]
    for runtime in NODE_RUNTIMES:
        for kind, handler in (("cjs", "app.handler"), ("esm", "esm.handler")):
            name = f"{kind}-{runtime.replace('.', '-')}"
            lines.append(
                f"  {name}: {{runtime: {runtime}, handler: {handler}, code: {SDK}, "
                "layers: [layers/fake-aws-sdk]}"
            )
    path = project(tmp_path, write_manifest, "\n".join(lines) + "\n")
    for line in lines[1:]:
        name = line.split(":")[0].strip()
        result = invoke(load_function(path, name))
        assert result.function_error is None, (name, result.payload)
        assert json.loads(result.payload) == {
            "region": "us-east-1",
            "from": "/opt/nodejs/node_modules/@aws-sdk/client-s3/index.js",
        }


def test_node_without_the_sdk_layer_says_how_to_supply_it(invoke, write_manifest) -> None:
    path = write_manifest(
        f"functions:\n  f: {{runtime: nodejs20.x, handler: app.handler, code: {SDK}}}\n"
    )
    result = invoke(load_function(path, "f"))
    body = json.loads(result.payload)
    assert body["errorType"] == "Runtime.ImportModuleError", body
    assert "Cannot find module '@aws-sdk/client-s3'" in body["errorMessage"]
    assert "lrun: @aws-sdk/client-s3 is not installed" in result.log
    assert "layers:" in result.log


def test_the_custom_runtime_tutorials_bash_bootstrap_runs(invoke, write_manifest) -> None:
    """AWS's tutorial bootstrap is `#!/bin/sh` with `set -euo pipefail` and `source`: it needs
    /bin/sh to be bash, as on Lambda's provided runtimes."""
    code = FUNCTIONS / "provided_tutorial"
    path = write_manifest(
        f"functions:\n  tutorial: {{runtime: provided, handler: function.handler, code: {code}}}\n"
    )
    for _ in range(2):
        result = invoke(load_function(path, "tutorial"), b'{"text": "Hello"}')
        assert result.function_error is None, (result.payload, result.log)
        assert json.loads(result.payload) == {"statusCode": 200, "body": "Hello from Lambda!"}
        assert "Illegal option" not in result.log


TEMPLATES = [p for p in sorted((FUNCTIONS.parents[2] / "templates").iterdir()) if p.is_dir()]


def test_every_template_runs_in_its_runtime_image(invoke) -> None:
    """What `lrun init TEMPLATE` makes runs at once, on every runtime (README's promise)."""
    for template in TEMPLATES:
        manifest_path = template / "lrun.yaml"
        result = invoke(load_function(manifest_path, "hello"), b'{"name": "lrun"}')
        assert result.function_error is None, (template.name, result.payload, result.log)
        body = json.loads(result.payload)
        assert body.get("message", "").startswith("Hello"), (template.name, body)


def test_each_node_runtime_runs_its_own_node_release(invoke, write_manifest) -> None:
    lines = [
        f"  v{rt[6:8]}: {{runtime: {rt}, handler: version.handler, code: {SDK}}}"
        for rt in NODE_RUNTIMES
    ]
    path = write_manifest("functions:\n" + "\n".join(lines) + "\n")
    for runtime in NODE_RUNTIMES:
        result = invoke(load_function(path, f"v{runtime[6:8]}"))
        seen = json.loads(result.payload)
        assert seen["node"].startswith(f"v{runtime[6:8]}."), (runtime, seen)
        assert seen["execPath"] == "/var/lang/bin/node" or seen["execPath"] == "/usr/bin/node"


# The failure modes of tests/integration/test_failures.py, for every runtime added since: the
# handler for each mode, the module that does not exist, and the name of the handler's error.
MODES = {
    "nodejs22.x": ("node", "modes.handler", "nosuchmodule.handler", "modes.nothere", "TypeError"),
    "nodejs24.x": ("node", "modes.handler", "nosuchmodule.handler", "modes.nothere", "TypeError"),
}


def modes_manifest(write_manifest: Callable[[str], Path], runtime: str) -> Path:
    folder, handler, missing, nohandler, _ = MODES[runtime]
    code = FUNCTIONS / folder
    common = f"runtime: {runtime}, code: {code}"
    return write_manifest(
        f"""
        functions:
          ok:        {{{common}, handler: {handler}}}
          slow:      {{{common}, handler: {handler}, timeout: 1}}
          hog:       {{{common}, handler: {handler}, memory: 128, timeout: 30}}
          missing:   {{{common}, handler: {missing}}}
          nohandler: {{{common}, handler: {nohandler}}}
        """
    )


@pytest.mark.parametrize("runtime", list(MODES))
def test_success_error_timeout_oom_and_init_failures(invoke, write_manifest, runtime) -> None:
    path = modes_manifest(write_manifest, runtime)
    error_type = MODES[runtime][4]

    ok = invoke(load_function(path, "ok"), b'{"n": 1}')
    assert ok.function_error is None, ok.payload
    assert json.loads(ok.payload) == {"ok": True, "event": {"n": 1}}
    assert REPORT.search(ok.log) and "Init Duration" in ok.log

    failed = invoke(load_function(path, "ok"), b'{"fail": "x"}')
    body = json.loads(failed.payload)
    assert failed.function_error == "Unhandled"
    assert body["errorType"] == error_type and "says no: x" in body["errorMessage"]

    slow = invoke(load_function(path, "slow"), b'{"sleep": 5}')
    assert json.loads(slow.payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {slow.request_id} Error: Task timed out after 1.00 seconds",
    }

    hog = invoke(load_function(path, "hog"), b'{"hog": true}')
    assert json.loads(hog.payload)["errorType"] == "Runtime.OutOfMemory", hog.payload
    assert "Error Type: Runtime.OutOfMemory" in hog.log

    missing = json.loads(invoke(load_function(path, "missing")).payload)
    assert missing["errorType"] == "Runtime.ImportModuleError", missing
    nohandler = json.loads(invoke(load_function(path, "nohandler")).payload)
    assert nohandler["errorType"] == "Runtime.HandlerNotFound", nohandler
