"""Which container engine lrun talks to, and how environments on it are told apart.

Finding the engine, as the `docker` CLI does: ``DOCKER_HOST``; else the Docker context named by
``DOCKER_CONTEXT`` or by ``currentContext`` in the Docker CLI's config (``$DOCKER_CONFIG``, else
``~/.docker``); else the first engine socket found on this host: Docker's, then a rootless
Docker's or Podman's in ``$XDG_RUNTIME_DIR``, then a root Podman's.

Telling environments apart (DESIGN D2): where each container reaches the Runtime API from an
address of its own (a local, root engine: lrun can listen on its networks' gateways), one
listener serves every environment and the connection's peer address says whose it is
(``PEER``). Where the engine hides the containers' addresses behind NAT (Docker Desktop, Podman
and Docker rootless, Colima, Finch: every container reaches the host from one address), each
environment gets a listener of its own, and reaches it under a host name made for it alone
(``LISTENER``, ``runtime_api``). Which one is probed at start; ``LRUN_RUNTIME_API_MODE``
(``peer`` or ``listener``) forces one, e.g. to test the listener mode on a root engine.

No ``docker`` import here: only what those decisions need.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import hashlib
import json
import os
import secrets
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import BackendUnavailable, LrunError

MODE_VARIABLE = "LRUN_RUNTIME_API_MODE"
DEFAULT_SOCKET = "/var/run/docker.sock"


class Demux(enum.Enum):
    PEER = "peer"  # one listener; environments by the connection's peer address
    LISTENER = "listener"  # a listener per environment, reached under a secret host name


@dataclass(frozen=True)
class Location:
    url: str  # what the engine's client connects to (unix://..., tcp://...)
    source: str  # where lrun found it, for messages
    context: str | None = None  # the Docker context it came from, if any
    tls_dir: Path | None = None  # that context's TLS material (ca.pem, cert.pem, key.pem)
    skip_tls_verify: bool = False


def locate(
    environ: Mapping[str, str], home: Path, default_socket: str = DEFAULT_SOCKET
) -> Location:
    """Where the engine is, from the environment and the Docker CLI's configuration."""
    host = environ.get("DOCKER_HOST")
    if host:
        return Location(host, "DOCKER_HOST")
    config = Path(environ["DOCKER_CONFIG"]) if environ.get("DOCKER_CONFIG") else home / ".docker"
    name = environ.get("DOCKER_CONTEXT") or _current_context(config)
    if name and name != "default":
        return _context(config, name, "DOCKER_CONTEXT" if environ.get("DOCKER_CONTEXT") else "")
    runtime_dir = environ.get("XDG_RUNTIME_DIR", f"/run/user/{os.getuid()}")
    for path in (
        default_socket,
        f"{runtime_dir}/docker.sock",
        f"{runtime_dir}/podman/podman.sock",
        "/run/podman/podman.sock",
    ):
        if os.path.exists(path):
            return Location(f"unix://{path}", f"the socket {path}")
    return Location(f"unix://{default_socket}", "the default socket (none found on this host)")


def _current_context(config: Path) -> str | None:
    try:
        settings = json.loads((config / "config.json").read_text())
    except (OSError, ValueError):
        return None
    name = settings.get("currentContext") if isinstance(settings, dict) else None
    return name if isinstance(name, str) else None


def _context(config: Path, name: str, variable: str) -> Location:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest / "meta.json"
    told = f"{variable}={name}" if variable else f"currentContext {name!r} in {config}/config.json"
    try:
        endpoint = json.loads(meta.read_text())["Endpoints"]["docker"]
        url = endpoint["Host"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackendUnavailable(
            f"Docker context {name!r} ({told}) cannot be read from {meta}: {exc}; "
            "check it with `docker context inspect`, or set DOCKER_HOST"
        ) from exc
    tls = config / "contexts" / "tls" / digest / "docker"
    return Location(
        url,
        f"Docker context {name!r} ({told})",
        name,
        tls if tls.is_dir() else None,
        bool(endpoint.get("SkipTLSVerify", False)),
    )


def forced_mode(environ: Mapping[str, str]) -> Demux | None:
    value = environ.get(MODE_VARIABLE, "").strip().lower()
    if not value:
        return None
    try:
        return Demux(value)
    except ValueError:
        raise LrunError(
            f"{MODE_VARIABLE}={value!r} is not a Runtime API mode; use "
            f"{' or '.join(m.value for m in Demux)}, or unset it to let lrun choose"
        ) from None


def choose(shared_peers: Iterable[bool], forced: Demux | None) -> Demux:
    """The mode for networks some of which hide their containers' addresses (``shared``)."""
    shared = any(shared_peers)
    if forced is Demux.PEER and shared:
        raise LrunError(
            f"{MODE_VARIABLE}=peer cannot work on this engine: its containers reach the host "
            "through NAT, all from one address; unset it (lrun then uses a listener per "
            "environment)"
        )
    if forced is not None:
        return forced
    return Demux.LISTENER if shared else Demux.PEER


def can_listen_on(address: str) -> bool:
    """Whether this process can listen on ``address``: a network's gateway that is one of this
    host's own addresses is the host's end of a bridge in this network namespace."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((address, 0))
    except (OSError, ValueError, OverflowError):
        return False
    return True


_SIOCGIFADDR = 0x8915


def host_address() -> str | None:
    """An IPv4 address of this host's default-route interface (else of any interface but
    loopback): where a container behind the engine's NAT reaches this host."""
    names: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 2 and fields[1] == "00000000":
                names.append(fields[0])
    with contextlib.suppress(OSError):
        names += [name for _, name in socket.if_nameindex() if name not in names]
    for name in names:
        if name == "lo":
            continue
        request = struct.pack("256s", name[:15].encode())
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                packed = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, request)
            except OSError:
                continue
        address = socket.inet_ntoa(packed[20:24])
        if not address.startswith("127."):
            return address
    return None


def runtime_api_name() -> str:
    """A host name for one environment's Runtime API, known to that environment alone: its
    runtime sends it in every request's Host header, which its listener checks (P2 where all
    environments connect from one address)."""
    return f"lrun-{secrets.token_hex(16)}"
