"""Unit tests for orchestrator.sandbox: memory -> CPU, Lambda's variables, the container spec."""

from __future__ import annotations

import datetime
import re
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.manifest import FunctionSpec, load
from orchestrator.manifest.logging_config import LoggingConfig
from orchestrator.sandbox.backend import (
    LABEL_CONFIG,
    LABEL_FUNCTION,
    LABEL_MANAGED,
    LABEL_OWNER,
    NETWORK_PRIVATE,
    NETWORK_PUBLIC,
    ContainerSpec,
)
from orchestrator.sandbox.container import (
    MB_PER_VCPU,
    SANDBOX_USER,
    Placement,
    container_spec,
    host_cores,
    init_nano_cpus,
    lambda_environment,
    log_stream_name,
    nano_cpus,
    network_name,
    runtime_bootstrap,
    with_output_pipe,
)
from orchestrator.sandbox.ownership import LABEL_HOST, LABEL_OWNER_STARTED

MB = 1024 * 1024
RUNTIME_API = "169.254.100.1:9001"
PLACEMENT = Placement(
    owner="serve-1-ab",
    runtime_api=RUNTIME_API,
    image="lrun/python3.13:latest",
    host_cores=4,
    owner_host="boot/pid:[1]",
    owner_started="42",
)
STREAM = re.compile(r"(\d{4})/(\d{2})/(\d{2})/\[\$LATEST\]([0-9a-f]{32})")

# Every variable Lambda sets in a managed-runtime environment (reserved or not).
LAMBDA_VARIABLES = {
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "_HANDLER",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "TZ",
    "LANG",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "_AWS_XRAY_DAEMON_ADDRESS",
    "_AWS_XRAY_DAEMON_PORT",
}


def spec_from(tmp_path: Path, body: str, name: str = "hello") -> FunctionSpec:
    """Load a one-function manifest (the function's settings indented under its name)."""
    (tmp_path / "hello").mkdir(exist_ok=True)
    path = tmp_path / "lrun.yaml"
    path.write_text(f"functions:\n  {name}:\n" + textwrap.indent(textwrap.dedent(body), "    "))
    return load(path).function(name)


@pytest.fixture
def python_spec(tmp_path: Path) -> FunctionSpec:
    return spec_from(
        tmp_path,
        """
        runtime: python3.13
        handler: app.handler
        code: ./hello
        memory: 256
        ephemeral_storage: 1024
        environment:
          GREETING: hi
          COUNT: 3
        """,
    )


# --- memory -> CPU --------------------------------------------------------------------------


def test_one_vcpu_at_1769_mb() -> None:
    assert MB_PER_VCPU == 1769
    assert nano_cpus(1769, 4) == 1_000_000_000


def test_128_mb_is_a_fraction_of_a_vcpu() -> None:
    assert nano_cpus(128, 4) == 128 * 1_000_000_000 // 1769 == 72_357_263


def test_two_vcpus_at_3538_mb() -> None:
    assert nano_cpus(3538, 8) == 2_000_000_000


def test_init_runs_with_two_vcpus_or_the_memorys_share_if_more() -> None:
    assert init_nano_cpus(128, 4) == 2_000_000_000  # not 0.072 vCPU: Lambda's init is not
    assert init_nano_cpus(1769, 4) == 2_000_000_000
    assert init_nano_cpus(128, 1) == 1_000_000_000  # capped at the host's cores
    assert init_nano_cpus(10240, 8) == nano_cpus(10240, 8)  # never less than the share


def test_10240_mb_is_capped_at_host_cores() -> None:
    assert nano_cpus(10240, 2) == 2_000_000_000
    assert nano_cpus(10240, 1) == 1_000_000_000


def test_10240_mb_below_the_cap_is_proportional() -> None:
    assert nano_cpus(10240, 8) == 10240 * 1_000_000_000 // 1769 == 5_788_581_119


def test_nano_cpus_is_floor_of_exact_ratio_for_every_memory_size() -> None:
    for memory in range(128, 10241):
        expected = min(memory * 1_000_000_000 // 1769, 64 * 1_000_000_000)
        assert nano_cpus(memory, 64) == expected, memory


def test_host_cores_is_positive() -> None:
    assert host_cores() >= 1


# --- Lambda's environment variables ---------------------------------------------------------


def test_log_stream_name_format() -> None:
    name = log_stream_name("$LATEST", "0" * 31 + "f", datetime.date(2025, 3, 9))
    assert name == "2025/03/09/[$LATEST]" + "0" * 31 + "f"


def test_lambda_environment_has_every_lambda_variable(python_spec: FunctionSpec) -> None:
    env = lambda_environment(python_spec, RUNTIME_API, "ab" * 16, "on-demand")
    assert LAMBDA_VARIABLES <= set(env)


def test_lambda_environment_values(python_spec: FunctionSpec) -> None:
    before = datetime.datetime.now(datetime.UTC).date()
    env = lambda_environment(python_spec, RUNTIME_API, "0123456789abcdef" * 2, "on-demand")
    after = datetime.datetime.now(datetime.UTC).date()
    expected = {
        "AWS_LAMBDA_FUNCTION_NAME": "hello",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/hello",
        "AWS_LAMBDA_RUNTIME_API": RUNTIME_API,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "_HANDLER": "app.handler",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "169.254.100.1:2000",
        "_AWS_XRAY_DAEMON_ADDRESS": "169.254.100.1",
        "_AWS_XRAY_DAEMON_PORT": "2000",
        "GREETING": "hi",
        "COUNT": "3",
    }
    assert {k: env[k] for k in expected} == expected
    stream = STREAM.fullmatch(env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert stream is not None, env["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert stream.group(4) == "0123456789abcdef" * 2
    stream_date = datetime.date(*(int(stream.group(i)) for i in (1, 2, 3)))
    assert before <= stream_date <= after  # UTC date


def test_credentials_are_local_stand_ins(python_spec: FunctionSpec) -> None:
    env = lambda_environment(python_spec, RUNTIME_API, "ab" * 16, "on-demand")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert env[name] == "lrun-local"


def test_initialization_type_and_version_are_passed_through(python_spec: FunctionSpec) -> None:
    env = lambda_environment(python_spec, RUNTIME_API, "cd" * 16, "provisioned-concurrency", "7")
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "7"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"].endswith("/[7]" + "cd" * 16)


def test_user_variables_may_override_unreserved_ones(tmp_path: Path) -> None:
    spec = spec_from(
        tmp_path,
        """
        runtime: python3.11
        handler: app.handler
        code: ./hello
        environment: {TZ: Europe/Paris, LANG: C}
        """,
    )
    env = lambda_environment(spec, RUNTIME_API, "ab" * 16, "on-demand")
    assert (env["TZ"], env["LANG"]) == ("Europe/Paris", "C")
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"


def test_nodejs_execution_env(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, "runtime: nodejs20.x\nhandler: index.handler\ncode: ./hello\n")
    env = lambda_environment(spec, RUNTIME_API, "ab" * 16, "on-demand")
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_nodejs20.x"
    assert env["_HANDLER"] == "index.handler"


def test_provided_runtime_has_no_execution_env(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, "runtime: provided\nhandler: function.handler\ncode: ./hello\n")
    env = lambda_environment(spec, RUNTIME_API, "ab" * 16, "on-demand")
    assert "AWS_EXECUTION_ENV" not in env
    assert env["_HANDLER"] == "function.handler"


def test_provided_runtime_without_handler_has_no_handler_variable(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, "runtime: provided\ncode: ./hello\n")
    env = lambda_environment(spec, RUNTIME_API, "ab" * 16, "on-demand")
    assert "_HANDLER" not in env
    assert "AWS_EXECUTION_ENV" not in env


def test_image_function_handler_is_its_command(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, "image: my-image:tag\ncommand: [app.handler, extra]\n")
    env = lambda_environment(spec, RUNTIME_API, "ab" * 16, "on-demand")
    assert env["_HANDLER"] == "app.handler"
    assert "AWS_EXECUTION_ENV" not in env
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"


# --- the container spec ---------------------------------------------------------------------


def test_container_spec_limits(python_spec: FunctionSpec) -> None:
    cs = container_spec(python_spec, PLACEMENT)
    assert isinstance(cs, ContainerSpec)
    assert cs.memory_bytes == 256 * MB
    assert cs.tmp_bytes == 1024 * MB
    assert cs.nano_cpus == 256 * 1_000_000_000 // 1769
    assert cs.pids_limit == 1024
    assert cs.nofile == 1024
    assert cs.user == SANDBOX_USER == "993:990"
    assert cs.image == "lrun/python3.13:latest"
    assert cs.network == NETWORK_PUBLIC == "lrun-public"


def test_container_spec_code_dir_and_working_dir(python_spec: FunctionSpec, tmp_path: Path) -> None:
    cs = container_spec(python_spec, PLACEMENT)
    assert cs.code_dir == (tmp_path / "hello").resolve()
    assert cs.working_dir == "/var/task"
    assert cs.entrypoint is None
    assert cs.command is None


def test_container_spec_default_ephemeral_storage_is_512_mb(tmp_path: Path) -> None:
    spec = spec_from(tmp_path, "runtime: python3.13\nhandler: app.handler\ncode: ./hello\n")
    cs = container_spec(spec, PLACEMENT)
    assert cs.tmp_bytes == 512 * MB
    assert cs.memory_bytes == 128 * MB


def test_container_spec_labels(python_spec: FunctionSpec) -> None:
    cs = container_spec(python_spec, PLACEMENT)
    assert dict(cs.labels) == {
        LABEL_MANAGED: "1",
        LABEL_OWNER: "serve-1-ab",
        LABEL_HOST: "boot/pid:[1]",
        LABEL_OWNER_STARTED: "42",
        LABEL_FUNCTION: "hello",
        LABEL_CONFIG: python_spec.config_digest(),
    }
    assert (LABEL_MANAGED, LABEL_OWNER, LABEL_FUNCTION, LABEL_CONFIG) == (
        "lrun.managed",
        "lrun.owner",
        "lrun.function",
        "lrun.config",
    )
    assert re.fullmatch(r"[0-9a-f]{16}", cs.labels[LABEL_CONFIG])


def test_container_spec_config_digest_override(python_spec: FunctionSpec) -> None:
    cs = container_spec(python_spec, PLACEMENT, config_digest="feedface00000000")
    assert cs.labels[LABEL_CONFIG] == "feedface00000000"


def test_container_spec_environment_and_name_share_the_environment_id(
    python_spec: FunctionSpec,
) -> None:
    cs = container_spec(python_spec, PLACEMENT, initialization_type="provisioned-concurrency")
    stream = STREAM.fullmatch(cs.environment["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert stream is not None
    env_id = stream.group(4)
    assert cs.name == f"lrun-hello-{env_id[:10]}"
    assert cs.environment["AWS_LAMBDA_INITIALIZATION_TYPE"] == "provisioned-concurrency"
    assert cs.environment["AWS_LAMBDA_RUNTIME_API"] == RUNTIME_API
    assert cs.environment["GREETING"] == "hi"


def test_container_spec_initialization_type_defaults_to_on_demand(
    python_spec: FunctionSpec,
) -> None:
    cs = container_spec(python_spec, PLACEMENT)
    assert cs.environment["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"


def test_each_container_spec_is_a_new_environment(python_spec: FunctionSpec) -> None:
    names = {container_spec(python_spec, PLACEMENT).name for _ in range(5)}
    assert len(names) == 5


def test_private_network(tmp_path: Path) -> None:
    spec = spec_from(
        tmp_path, "runtime: python3.13\nhandler: app.handler\ncode: ./hello\nnetwork: private\n"
    )
    assert network_name(spec) == NETWORK_PRIVATE == "lrun-private"
    assert container_spec(spec, PLACEMENT).network == "lrun-private"


def test_image_function_container_spec(tmp_path: Path) -> None:
    spec = spec_from(
        tmp_path,
        """
        image: my-image:tag
        entrypoint: [/lambda-entrypoint.sh]
        command: [app.handler]
        memory: 10240
        """,
    )
    placement = Placement("oneshot-1-ab", RUNTIME_API, "my-image:tag", host_cores=2)
    cs = container_spec(spec, placement)
    assert cs.image == "my-image:tag"
    assert cs.code_dir is None
    assert cs.working_dir is None
    assert cs.entrypoint == ("/lambda-entrypoint.sh",)
    assert cs.command == ("app.handler",)
    assert cs.memory_bytes == 10240 * MB
    assert cs.nano_cpus == 2_000_000_000  # capped at the placement's cores


# --- how the Docker backend applies the spec (a fake SDK client; no engine) -----------------


class _Stop(Exception):
    """Raised by the fake client once the host config has been captured."""


class _FakeApi:
    def __init__(self) -> None:
        self.host_config: dict[str, Any] = {}
        self.container: dict[str, Any] = {}

    def info(self) -> dict[str, Any]:
        return {"CgroupDriver": "systemd"}  # no parent cgroups of lrun's own

    def create_host_config(self, **kwargs: Any) -> dict[str, Any]:
        self.host_config = kwargs
        return {"fake": "host-config"}

    def create_container(self, image: str, **kwargs: Any) -> dict[str, Any]:
        self.container = {"image": image, **kwargs}
        raise _Stop


class _FakeClient:
    def __init__(self) -> None:
        self.api = _FakeApi()


def test_docker_backend_mounts_code_read_only_and_applies_limits(
    python_spec: FunctionSpec, tmp_path: Path
) -> None:
    from orchestrator.sandbox.docker_backend import DockerBackend

    client = _FakeClient()
    backend = DockerBackend(client)  # type: ignore[arg-type]
    cs = container_spec(python_spec, PLACEMENT)
    with pytest.raises(_Stop):
        backend.run(cs)
    hc = client.api.host_config
    (mount,) = hc["mounts"]
    assert mount["Target"] == "/var/task"
    assert mount["Source"] == str((tmp_path / "hello").resolve())
    assert mount["Type"] == "bind"
    assert mount["ReadOnly"] is True
    assert hc["read_only"] is True
    assert hc["mem_limit"] == hc["memswap_limit"] == 256 * MB
    # created with the init phase's quota; the invoker lowers it to cs.nano_cpus after init
    assert hc["nano_cpus"] == cs.init_nano_cpus == 2 * 1_000_000_000
    assert hc["tmpfs"] == {"/tmp": f"size={1024 * MB},mode=1777"}  # no scratch disks given
    assert hc["ipc_mode"] == "none"  # no /dev/shm, as on Lambda
    assert hc["pids_limit"] == 1024
    (ulimit,) = hc["ulimits"]
    assert (ulimit["Name"], ulimit["Soft"], ulimit["Hard"]) == ("nofile", 1024, 1024)
    assert hc["network_mode"] == "lrun-public"
    created = client.api.container
    assert created["user"] == "993:990"
    assert created["labels"] == dict(cs.labels)
    assert created["environment"] == dict(cs.environment)
    assert created["working_dir"] == "/var/task"


def test_a_container_gets_none_of_lrun_serve_s_own_credentials(
    python_spec: FunctionSpec, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The key pair `lrun serve` checks signatures with (its environment, its state directory)
    must never reach a function: a function holding it could drive lrun's API."""
    secret = "the-servers-secret-0123456789abcdefghijk"
    monkeypatch.setenv("LRUN_ACCESS_KEY_ID", "LRUNSERVERKEY0000000")
    monkeypatch.setenv("LRUN_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("LRUN_STATE_DIR", str(tmp_path / "state"))
    spec = container_spec(python_spec, PLACEMENT)
    values = " ".join(f"{k}={v}" for k, v in spec.environment.items())
    assert secret not in values and "LRUNSERVERKEY0000000" not in values
    assert "LRUN_SECRET_ACCESS_KEY" not in spec.environment
    assert spec.environment["AWS_SECRET_ACCESS_KEY"] == "lrun-local"
    assert spec.code_dir == python_spec.code  # the only host directory a container sees


# --- the output pipe ----------------------------------------------------------------------------


def test_a_runtime_function_writes_its_output_into_the_pipe_with_nothing_else_changed(
    python_spec: FunctionSpec, tmp_path: Path
) -> None:
    cspec = container_spec(python_spec, PLACEMENT)
    bootstrap = runtime_bootstrap(python_spec)
    assert bootstrap == "/var/runtime/bootstrap"
    piped = with_output_pipe(cspec, bootstrap, tmp_path / "fifo", "/var/runtime/lrun-output")
    assert piped.entrypoint == (
        "/bin/sh",
        "-c",
        'exec >>/var/runtime/lrun-output 2>&1; exec "$0" "$@"',
        "/var/runtime/bootstrap",
    )
    assert piped.binds == ((tmp_path / "fifo", "/var/runtime/lrun-output"),)
    assert piped.environment == cspec.environment  # the function sees Lambda's variables only
    assert piped.command == cspec.command and piped.user == cspec.user


def test_a_custom_runtime_is_piped_from_its_own_bootstrap_and_an_image_is_not(
    tmp_path: Path,
) -> None:
    provided = spec_from(tmp_path, "runtime: provided\ncode: ./hello\n")
    assert runtime_bootstrap(provided) == "/var/task/bootstrap"
    image = spec_from(tmp_path, "image: my/fn:latest\n", name="img")
    assert runtime_bootstrap(image) is None  # its entrypoint is the user's own


def test_json_logging_is_told_to_the_runtime_and_the_group_is_the_configs(
    python_spec: FunctionSpec,
) -> None:
    """What Lambda sets for LoggingConfig (JSON only), read by the runtimes' clients."""
    text = lambda_environment(python_spec, RUNTIME_API, "ab" * 16, "on-demand")
    assert "AWS_LAMBDA_LOG_FORMAT" not in text and "AWS_LAMBDA_LOG_LEVEL" not in text
    spec = replace(python_spec, logging=LoggingConfig("JSON", "WARN", "INFO", "/team/app"))
    env = lambda_environment(spec, RUNTIME_API, "ab" * 16, "on-demand")
    assert env["AWS_LAMBDA_LOG_FORMAT"] == "JSON"
    assert env["AWS_LAMBDA_LOG_LEVEL"] == "WARN"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/team/app"
