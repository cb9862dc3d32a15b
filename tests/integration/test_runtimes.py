"""What ordinary functions expect of Lambda's runtimes, run in the real images: the AWS SDK,
layers at /opt, bash as /bin/sh for custom runtimes."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.sandbox import images
from orchestrator.sandbox.container import INIT_VCPUS, Placement, container_spec, host_cores
from orchestrator.sandbox.engine import MODE_VARIABLE
from orchestrator.template import find
from tests.conftest import FUNCTIONS
from tests.integration.conftest import OWNER, load_function

SDK = FUNCTIONS / "sdk"
LAYERS = FUNCTIONS / "layers"
REPORT = re.compile(r"^REPORT RequestId: [0-9a-f-]{36}\tDuration: ", re.MULTILINE)


def project(tmp_path: Path, write_manifest: Callable[[str], Path], text: str) -> Path:
    """A manifest in a project that holds copies of the test layers (layers stay inside it)."""
    shutil.copytree(LAYERS, tmp_path / "layers")
    return write_manifest(text)


PYTHON_RUNTIMES = [name for name in images.RUNTIMES if name.startswith("python")]


def test_python_runtimes_include_boto3_and_botocore(invoke, write_manifest) -> None:
    """Each runs its own Python release, with the pinned AWS SDK where Lambda keeps it."""
    pins = images.sdk_versions(images.RUNTIMES["python3.13"])
    lines = [
        f"  {rt.replace('.', '-')}: "
        f"{{runtime: {rt}, handler: uses_boto3.handler, code: {SDK}, memory: 512}}"
        for rt in PYTHON_RUNTIMES
    ]
    path = write_manifest("functions:\n" + "\n".join(lines) + "\n")
    for runtime in PYTHON_RUNTIMES:
        python = runtime.removeprefix("python")
        result = invoke(load_function(path, runtime.replace(".", "-")))
        assert result.function_error is None, result.payload
        seen = json.loads(result.payload)
        assert seen["python"].startswith(f"{python}."), (runtime, seen)
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


@pytest.mark.parametrize("mode", ["chosen", "listener"])
def test_every_template_runs_in_its_runtime_image(
    invoke, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `lrun init TEMPLATE` makes runs at once, on every runtime (README's promise). A SAM
    project's template is read as `lrun serve` reads it; its HTTP function answers an event.
    In the listener mode too (engines behind NAT): every runtime client lrun ships (AWS's
    awslambdaric, lrun's Node.js, Ruby and Java clients, a bash bootstrap) reaches its own
    listener under the host name made for it."""
    if mode == "listener":
        monkeypatch.setenv(MODE_VARIABLE, mode)
    for template in TEMPLATES:
        functions = find(None, None, template).load().functions
        name = "hello" if "hello" in functions else "Hello"
        event = {"name": "lrun", "queryStringParameters": {"name": "lrun"}}
        result = invoke(functions[name], json.dumps(event).encode())
        assert result.function_error is None, (template.name, result.payload, result.log)
        body = json.loads(result.payload)
        if "body" in body:  # an HTTP response
            body = json.loads(body["body"])
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


# The failure modes of tests/integration/test_failures.py, for every runtime added since.
@dataclass(frozen=True)
class Modes:
    folder: str  # under tests/integration/functions
    handler: str  # succeeds, fails, sleeps or hogs memory as the event says
    error_type: str  # of the handler's error
    missing: str  # the error type when the handler's file does not exist
    no_handler: str | None  # the error type when the file has no such handler (None: no type)
    missing_handler: str = "nosuchmodule.handler"
    absent_handler: str = "modes.nothere"


NODE_MODES = Modes(
    "node", "modes.handler", "TypeError", "Runtime.ImportModuleError", "Runtime.HandlerNotFound"
)
# AWS's awslambdaric: the module is imported at init and the handler looked up there too.
PYTHON_MODES = Modes(
    "python", "modes.handler", "TypeError", "Runtime.ImportModuleError", "Runtime.HandlerNotFound"
)
MODES = {
    "python3.14": PYTHON_MODES,
    "nodejs22.x": NODE_MODES,
    "nodejs24.x": NODE_MODES,
    # AWS's Ruby client: the file is required at init, the method looked up when invoked.
    "ruby3.3": Modes(
        "ruby", "modes.handler", "Function<TypeError>", "Init<LoadError>", "Function<NoMethodError>"
    ),
    # AWS's Java client: a class or method not found fails each invocation (not init), and a
    # method not found is reported with a message only, no errorType. The code is compiled
    # for the session (the java_code fixture), so `folder` is unused.
    "java21": Modes(
        "",
        "example.Modes::handleRequest",
        "java.lang.IllegalStateException",
        "java.lang.ClassNotFoundException",
        None,
        "example.NoSuchClass::handleRequest",
        "example.Modes::nothere",
    ),
}


def modes_manifest(write_manifest: Callable[[str], Path], runtime: str, code: Path) -> Path:
    modes = MODES[runtime]
    common = f"runtime: {runtime}, code: {code}"
    return write_manifest(
        f"""
        functions:
          ok:        {{{common}, handler: "{modes.handler}"}}
          slow:      {{{common}, handler: "{modes.handler}", timeout: 1}}
          hog:       {{{common}, handler: "{modes.handler}", memory: 128, timeout: 30}}
          missing:   {{{common}, handler: "{modes.missing_handler}"}}
          nohandler: {{{common}, handler: "{modes.absent_handler}"}}
        """
    )


@pytest.mark.parametrize("runtime", list(MODES))
def test_success_error_timeout_oom_and_init_failures(
    invoke, write_manifest, runtime, request
) -> None:
    modes = MODES[runtime]
    java = runtime.startswith("java")
    code = request.getfixturevalue("java_code") if java else FUNCTIONS / modes.folder
    path = modes_manifest(write_manifest, runtime, code)

    ok = invoke(load_function(path, "ok"), b'{"n": 1}')
    assert ok.function_error is None, ok.payload
    assert json.loads(ok.payload) == {"ok": True, "event": {"n": 1}}
    assert REPORT.search(ok.log) and "Init Duration" in ok.log

    failed = invoke(load_function(path, "ok"), b'{"fail": "x"}')
    body = json.loads(failed.payload)
    assert failed.function_error == "Unhandled"
    assert body["errorType"] == modes.error_type and "says no: x" in body["errorMessage"]

    slow = invoke(load_function(path, "slow"), b'{"sleep": 5}')
    assert json.loads(slow.payload) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {slow.request_id} Error: Task timed out after 1.00 seconds",
    }

    hog = invoke(load_function(path, "hog"), b'{"hog": true}')
    assert json.loads(hog.payload)["errorType"] == "Runtime.OutOfMemory", hog.payload
    assert "Error Type: Runtime.OutOfMemory" in hog.log

    missing = json.loads(invoke(load_function(path, "missing")).payload)
    assert missing["errorType"] == modes.missing, missing
    nohandler = json.loads(invoke(load_function(path, "nohandler")).payload)
    assert nohandler.get("errorType") == modes.no_handler, nohandler


def test_a_syntax_error_in_the_handlers_module_fails_init_as_awslambdaric_says(
    invoke, write_manifest, tmp_path
) -> None:
    """Python 3.14 words its syntax errors anew; the runtime still reports them as AWS's does."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "bad.py").write_text("def handler(event, context)\n    return 1\n")
    path = write_manifest(
        f"functions:\n  f: {{runtime: python3.14, handler: bad.handler, code: {code}}}\n"
    )
    result = invoke(load_function(path, "f"))
    body = json.loads(result.payload)
    assert result.function_error == "Unhandled", result.payload
    assert body["errorType"] == "Runtime.UserCodeSyntaxError", body
    assert body["errorMessage"].startswith("Syntax error in module 'bad': "), body
    assert body["stackTrace"][0].startswith('  File "/var/task/bad.py" Line 1'), body
    assert "[ERROR] Runtime.UserCodeSyntaxError: Syntax error in module 'bad'" in result.log


def test_init_runs_with_more_cpu_than_the_memorys_share(invoke, write_manifest) -> None:
    """Lambda's init phase is not held to 128 MB's 0.07 vCPU (container.py says how it is
    modelled); the memory's share applies from the first invocation on."""
    code = FUNCTIONS / "python"
    path = write_manifest(
        f"""
        functions:
          small: {{runtime: python3.13, handler: cpu.handler, code: {code}, memory: 128}}
          large: {{runtime: python3.13, handler: cpu.handler, code: {code}, memory: 3538}}
        """
    )
    cores = host_cores()
    small = json.loads(invoke(load_function(path, "small")).payload)
    assert small["init"] == pytest.approx(min(INIT_VCPUS, cores), abs=0.001)
    assert small["invoke"] == pytest.approx(128 / 1769, abs=0.001)
    large = json.loads(invoke(load_function(path, "large")).payload)
    assert large["invoke"] == pytest.approx(min(3538 / 1769, cores), abs=0.001)
    assert large["init"] >= large["invoke"] - 0.001


def test_callback_handlers_run_until_nodejs22_and_are_refused_from_nodejs24(
    invoke, write_manifest
) -> None:
    code = FUNCTIONS / "node"
    path = write_manifest(
        f"""
        functions:
          n22: {{runtime: nodejs22.x, handler: callback.handler, code: {code}}}
          n24: {{runtime: nodejs24.x, handler: callback.handler, code: {code}}}
        """
    )
    assert json.loads(invoke(load_function(path, "n22")).payload) == {"called": "back"}
    refused = json.loads(invoke(load_function(path, "n24")).payload)
    assert refused["errorType"] == "Runtime.CallbackHandlerDeprecated", refused


def test_the_init_quota_is_lowered_by_the_engine_where_lrun_cannot_write_cgroups(
    backend, engine, write_manifest
) -> None:
    """Where lrun may not write the container's cgroup (not root, a remote engine), one engine
    update lowers the quota instead."""
    spec = load_function(
        write_manifest(
            f"functions:\n  f: {{runtime: python3.13, handler: cpu.handler, "
            f"code: {FUNCTIONS / 'python'}}}\n"
        ),
        "f",
    )
    placement = Placement(OWNER, "127.0.0.1:9", images.RUNTIMES["python3.13"].image, host_cores())
    cspec = container_spec(spec, placement)
    container = backend.run(cspec)
    try:
        assert engine.api.inspect_container(container.id)["HostConfig"]["NanoCpus"] == (
            cspec.init_nano_cpus
        )
        backend._pids.pop(container.id)  # as if /proc or the cgroup were out of reach
        backend.limit_cpu(container.id, cspec.nano_cpus)
        host = engine.api.inspect_container(container.id)["HostConfig"]
        assert host["NanoCpus"] == cspec.nano_cpus == 128 * 1_000_000_000 // 1769
    finally:
        backend.kill(container.id)


def test_the_tutorials_runtime_runs_from_a_layer(invoke, write_manifest, tmp_path) -> None:
    """The tutorial's next step moves bootstrap into a layer: Lambda then runs /opt/bootstrap."""
    tutorial = FUNCTIONS / "provided_tutorial"
    (tmp_path / "code").mkdir()
    shutil.copy2(tutorial / "function.sh", tmp_path / "code")
    (tmp_path / "runtime").mkdir()
    shutil.copy2(tutorial / "bootstrap", tmp_path / "runtime")  # keeps its executable bit
    path = write_manifest(
        "functions:\n  tutorial: {runtime: provided, handler: function.handler, code: ./code, "
        "layers: [./runtime]}\n"
    )
    result = invoke(load_function(path, "tutorial"), b'{"text": "Hello"}')
    assert result.function_error is None, (result.payload, result.log)
    assert json.loads(result.payload) == {"statusCode": 200, "body": "Hello from Lambda!"}
    (tmp_path / "runtime" / "bootstrap").chmod(0o644)
    refused = json.loads(invoke(load_function(path, "tutorial")).payload)
    assert refused["errorType"] == "Runtime.InvalidEntrypoint"
    assert "fork/exec /opt/bootstrap: permission denied" in refused["errorMessage"]


def test_a_ruby_layer_is_on_the_load_path(invoke, write_manifest, tmp_path) -> None:
    path = project(
        tmp_path,
        write_manifest,
        f"""
        functions:
          f: {{runtime: ruby3.3, handler: layered.handler, code: {FUNCTIONS / "ruby"},
               layers: [./layers/ruby-greeting]}}
        """,
    )
    result = invoke(load_function(path, "f"), b'{"name": "lrun"}')
    assert result.function_error is None, (result.payload, result.log)
    assert json.loads(result.payload) == {
        "greeting": "Hello from a layer, lrun!",
        "file": "/opt/ruby/lib/greeting.rb",
    }
