"""What an execution environment's container is: limits mapped from memory, Lambda's variables.

Memory is the one dial, as on Lambda (DESIGN D4): the cgroup memory limit with no swap beyond it,
CPU = memory / 1769 vCPU capped at the host's cores, ``/tmp`` a tmpfs of the ephemeral size.

Except during init: Lambda's init phase is not held to the memory's share of a vCPU. Hello-world
functions report the same Init Duration at 128 MB as at 1024 MB (lambda-perf's daily
measurements), and init code runs as fast as handler code at 3008 MB, where a function has two
unthrottled vCPUs (Bite-Sized Serverless, "Lambda Cold Starts and Bootstrap Code"). So an
environment starts with ``INIT_VCPUS`` (capped at the host's cores) and gets the memory's share
when its runtime first asks for an invocation.
"""

from __future__ import annotations

import datetime
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator.aws import REGION
from orchestrator.errors import LrunError
from orchestrator.manifest import FunctionSpec
from orchestrator.sandbox.backend import (
    LABEL_CONFIG,
    LABEL_FUNCTION,
    LABEL_MANAGED,
    LABEL_OWNER,
    NETWORK_PRIVATE,
    NETWORK_PUBLIC,
    ContainerSpec,
)
from orchestrator.sandbox.ownership import LABEL_HOST, LABEL_OWNER_STARTED
from orchestrator.sandbox.runtime_api import WEBSOCKET_PREFIX

MB = 1024 * 1024
MB_PER_VCPU = 1769
INIT_VCPUS = 2  # what Lambda's init phase runs with, whatever the memory
SANDBOX_USER = "993:990"  # sbx_user1051 in lrun's runtime images, as on Lambda
# Bind mounts one function's layers may need (see layer_binds): each costs the engine at every
# cold start, and layers that share directory upon directory would otherwise cost without bound.
MAX_LAYER_MOUNTS = 256


@dataclass(frozen=True)
class Placement:
    """Where and as whom an environment is started; the same for all of one process's."""

    owner: str  # the LABEL_OWNER value
    runtime_api: str  # host:port of the Runtime API as the container reaches it
    image: str  # the image to run: the runtime's, or the function's own
    host_cores: int
    owner_host: str = ""  # the owner's host identity (see ownership)
    owner_started: str = ""  # the owner's start time


def network_name(spec: FunctionSpec) -> str:
    return NETWORK_PRIVATE if spec.network == "private" else NETWORK_PUBLIC


def nano_cpus(memory_mb: int, host_cores: int) -> int:
    return int(min(memory_mb / MB_PER_VCPU, host_cores) * 1_000_000_000)


def init_nano_cpus(memory_mb: int, host_cores: int) -> int:
    """The CPU quota of the init phase: ``INIT_VCPUS``, or the memory's share if that is more."""
    boosted = int(min(INIT_VCPUS, host_cores) * 1_000_000_000)
    return max(boosted, nano_cpus(memory_mb, host_cores))


def host_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def log_stream_name(version: str, env_id: str, today: datetime.date) -> str:
    return f"{today:%Y/%m/%d}/[{version}]{env_id}"


def lambda_environment(
    spec: FunctionSpec,
    runtime_api: str,
    env_id: str,
    initialization_type: str,
    version: str = "$LATEST",
) -> dict[str, str]:
    """The variables Lambda sets in every environment (contract section 1.6), then the user's."""
    variables = {
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": version,
        "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type,
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.logging.group(spec.name),
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name(
            version, env_id, datetime.datetime.now(datetime.UTC).date()
        ),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        # Local stand-ins until execution roles exist; real credentials never enter a sandbox.
        "AWS_ACCESS_KEY_ID": "lrun-local",
        "AWS_SECRET_ACCESS_KEY": "lrun-local",
        "AWS_SESSION_TOKEN": "lrun-local",
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "LC_CTYPE": "C.UTF-8",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": f"{runtime_api.split(':')[0]}:2000",
        "_AWS_XRAY_DAEMON_ADDRESS": runtime_api.split(":")[0],
        "_AWS_XRAY_DAEMON_PORT": "2000",
        # lrun's own: where a function reaches the @connections API of lrun's WebSocket APIs
        # (the Runtime API's address is the only host address its container can reach).
        "LRUN_WEBSOCKET_ENDPOINT": f"http://{runtime_api}{WEBSOCKET_PREFIX}",
        **spec.logging.runtime_variables(),
    }
    if spec.runtime is not None and spec.runtime != "provided":
        variables["AWS_EXECUTION_ENV"] = f"AWS_Lambda_{spec.runtime}"
    handler = spec.handler or (spec.command[0] if spec.command else None)
    if handler:
        variables["_HANDLER"] = handler
    return {**variables, **spec.environment}


def container_spec(
    spec: FunctionSpec,
    placement: Placement,
    initialization_type: str = "on-demand",
    config_digest: str = "",
    version: str = "$LATEST",
) -> ContainerSpec:
    env_id = secrets.token_hex(16)
    labels: Mapping[str, str] = {
        LABEL_MANAGED: "1",
        LABEL_OWNER: placement.owner,
        LABEL_HOST: placement.owner_host,
        LABEL_OWNER_STARTED: placement.owner_started,
        LABEL_FUNCTION: spec.name,
        LABEL_CONFIG: config_digest or spec.config_digest(),
    }
    return ContainerSpec(
        name=f"lrun-{spec.name}-{env_id[:10]}",
        image=placement.image,
        environment=lambda_environment(
            spec, placement.runtime_api, env_id, initialization_type, version
        ),
        labels=labels,
        network=network_name(spec),
        memory_bytes=spec.memory * MB,
        nano_cpus=nano_cpus(spec.memory, placement.host_cores),
        init_nano_cpus=init_nano_cpus(spec.memory, placement.host_cores),
        tmp_bytes=spec.ephemeral_storage * MB,
        code_dir=spec.code,
        user=SANDBOX_USER,
        entrypoint=_entrypoint(spec),
        command=spec.command,
        working_dir="/var/task" if spec.image is None else None,
        binds=layer_binds(layer_directories(spec)),
    )


def _entrypoint(spec: FunctionSpec) -> tuple[str, ...] | None:
    if spec.runtime == "provided" and (found := bootstrap_file(spec)) is not None:
        return (found[1],)  # the image's default is /var/task/bootstrap
    return spec.entrypoint


def bootstrap_file(spec: FunctionSpec) -> tuple[Path, str] | None:
    """A `provided` function's bootstrap, as Lambda looks for it: /var/task/bootstrap, else
    /opt/bootstrap (from a layer, the last that has one); (host path, path inside) or None."""
    if spec.code is not None and (spec.code / "bootstrap").is_file():
        return spec.code / "bootstrap", "/var/task/bootstrap"
    for layer in reversed(layer_directories(spec)):
        if (layer / "bootstrap").is_file():
            return layer / "bootstrap", "/opt/bootstrap"
    return None


def layer_directories(spec: FunctionSpec) -> tuple[Path, ...]:
    """Where each of ``spec``'s layers is on this host, in order."""
    found = []
    for layer in spec.layers:
        if layer.directory is None:  # lrun resolves every layer before a function is served
            raise LrunError(
                f"{spec.name}: layer {layer.source} was not unpacked or found before the "
                "function ran; this is a bug in lrun"
            )
        found.append(layer.directory)
    return tuple(found)


def layer_binds(layers: tuple[Path, ...]) -> tuple[tuple[Path, str], ...]:
    """Read-only bind mounts that lay ``layers`` over /opt in order, as Lambda extracts them
    there: a later layer's file replaces an earlier one's of the same path, and directories they
    share hold both layers' files. One layer is /opt itself. With several, an entry only one
    layer has at a level is mounted whole, and a directory several have is merged the same way
    one level down, so shared directories cost a mount per entry beneath them.

    A link is never mounted as itself (the engine would follow it on the host): one leading
    inside its own layer is mounted as what it leads to, one leading out is left out."""
    if len(layers) <= 1:
        return tuple((layer, "/opt") for layer in layers)
    binds: list[tuple[Path, str]] = []
    roots = [(os.path.realpath(layer), layer) for layer in layers]
    _merge([(root, layer) for root, layer in roots], "/opt", binds)
    return tuple(binds)


def _merge(sources: list[tuple[str, Path]], target: str, binds: list[tuple[Path, str]]) -> None:
    """Lay the directories ``sources`` ((real path of their layer, directory), earliest first)
    over ``target``."""
    entries: dict[str, list[tuple[str, Path]]] = {}
    for root, directory in sources:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue  # gone since the function was configured: as if empty
        for name in names:
            entries.setdefault(name, []).append((root, directory / name))
    for name, found in entries.items():
        where = f"{target}/{name}"
        # What the last layer has here wins; if it is a directory, so do the directories of the
        # same name in the layers before it, back to the last that had something else there.
        merged: list[tuple[str, Path]] = []
        for root, path in reversed(found):
            if not _is_directory(path):
                break
            merged.insert(0, (root, path))
        if len(merged) > 1:
            _merge(merged, where, binds)
            continue
        root, path = found[-1]
        if path.is_symlink():
            real = os.path.realpath(path)
            if real != root and not real.startswith(root + os.sep):
                continue  # leads out of its layer: Lambda's unzip would keep a link, not this
            path = Path(real)
        binds.append((path, where))


def _is_directory(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


# How lrun's runtime images start: the runtime's bootstrap, with its stdout and stderr sent into
# lrun's output pipe (sandbox.pipe). The redirection is made here, at run time, so the images
# themselves stay as they are; what the shell says when it cannot make it goes to the engine's
# stream, which lrun reads too.
_INTO_PIPE = 'exec >>{target} 2>&1; exec "$0" "$@"'


def runtime_bootstrap(spec: FunctionSpec) -> str | None:
    """The entrypoint of ``spec``'s runtime image; None for a function's own image, whose
    entrypoint is the user's (its output then comes through the engine's stream only)."""
    if spec.image is not None or spec.entrypoint is not None or spec.runtime is None:
        return None
    if spec.runtime == "provided":
        found = bootstrap_file(spec)
        return found[1] if found is not None else "/var/task/bootstrap"
    return "/var/runtime/bootstrap"


def with_output_pipe(
    cspec: ContainerSpec, bootstrap: str, pipe: Path, target: str
) -> ContainerSpec:
    """``cspec`` with the host FIFO ``pipe`` mounted at ``target`` and the runtime's output
    redirected into it."""
    return replace(
        cspec,
        entrypoint=("/bin/sh", "-c", _INTO_PIPE.format(target=target), bootstrap),
        binds=(*cspec.binds, (pipe, target)),
    )
