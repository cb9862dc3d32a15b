"""The narrow interface between lrun and a container engine, with the values that cross it.

Only our own frozen value types cross this line, never an engine SDK's objects (DESIGN D8). Every
method blocks; callers on the event loop run them in a thread pool (DESIGN D5), except
``open_output``, which is a coroutine because it reads a container's output on the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Labels are the source of truth for what lrun owns; a restarted process finds leftovers by them.
LABEL_MANAGED = "lrun.managed"  # always "1"
LABEL_OWNER = "lrun.owner"  # the owning process: "oneshot-<pid>-<random>" or "serve-<id>"
LABEL_FUNCTION = "lrun.function"
LABEL_CONFIG = "lrun.config"  # digest of the function's configuration and code
LABEL_RUNTIME_HASH = "lrun.runtime-hash"  # on images: digest of the inputs they were built from
LABEL_IMAGE = "lrun.image"  # on images lrun built: the runtime (or Debian suite) it is for
LABEL_ROLE = "lrun.role"  # "holder" on network holders (environments carry none)
ROLE_HOLDER = "holder"

NETWORK_PUBLIC = "lrun-public"
NETWORK_PRIVATE = "lrun-private"


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one execution environment's container."""

    name: str
    image: str
    environment: Mapping[str, str]
    labels: Mapping[str, str]
    network: str
    memory_bytes: int
    nano_cpus: int  # the CPU quota once the runtime is initialised
    tmp_bytes: int
    code_dir: Path | None
    user: str
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    working_dir: str | None = None
    pids_limit: int = 1024
    nofile: int = 1024
    # Read-only bind mounts besides the code: (host directory, container path), e.g. layers.
    binds: tuple[tuple[Path, str], ...] = ()
    init_nano_cpus: int | None = None  # the quota it starts with, until ``limit_cpu``; None: same
    # A network holder whose network namespace (and so address) the container joins instead of
    # having one set up for it on ``network``: the engine's network set-up was done ahead.
    holder: Container | None = None
    # Names the container resolves through its /etc/hosts: (name, address).
    extra_hosts: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class HolderSpec:
    """A network holder: a container that does nothing but hold a network namespace with its
    own address on ``network``, made ahead of an environment that will join it."""

    name: str
    image: str  # any image with /bin/sleep: one of lrun's runtime images
    network: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    ip: str
    labels: Mapping[str, str]
    started_at: float  # time.monotonic() when the engine reported it started
    # time.monotonic() when lrun asked the engine to create it, and when the engine had: with
    # ``started_at``, where a cold start's time went (0.0 where not measured).
    requested_at: float = 0.0
    created_at: float = 0.0


@dataclass(frozen=True)
class ContainerExit:
    """How a container ended: its exit status and whether the kernel's OOM killer ended it."""

    id: str
    exit_code: int
    oom_killed: bool
    # The peak memory use in bytes over the container's life, read before its cgroup went
    # (None if the engine cannot keep it): what a timeout, a crash or an OOM kill reports.
    memory_peak: int | None = None


@dataclass(frozen=True)
class Network:
    name: str
    gateway: str  # the host's address as containers on it reach it (where the Runtime API is)
    subnet: str = ""
    internal: bool = False  # no route off the host (the private network)
    # Whether containers on it are kept from reaching each other; False only for a network an
    # older lrun made that is still in use, so cannot be made again yet.
    isolated: bool = True
    # Where the engine hides containers' addresses behind NAT (each reaches the host from one
    # address, not its own): what a container's network is set to ("" for ``name``), and the
    # address of this host that lrun listens on for it ("" for ``gateway``).
    shared_peer: bool = False
    mode: str = ""
    listen: str = ""

    @property
    def network_mode(self) -> str:
        return self.mode or self.name

    @property
    def listen_address(self) -> str:
        return self.listen or self.gateway


@dataclass(frozen=True)
class ImageInfo:
    name: str
    labels: Mapping[str, str]
    size: int
    id: str = ""  # the engine's id for it (``sha256:...``), when it gives one


class OutputStream(Protocol):
    """A container's stdout and stderr, merged in arrival order."""

    async def read(self) -> bytes:
        """The next chunk of output; ``b""`` once the container's output has ended."""
        ...

    def close(self) -> None: ...


class Backend(Protocol):
    # Whether a container can write into a FIFO of this host bind-mounted into it (the engine
    # shares this host's file system): lrun's runtimes then send their output through one.
    output_pipes: bool

    def network(self, name: str, internal: bool) -> Network:
        """The named network, created if missing (internal: no route off the host)."""
        ...

    def guard_host(
        self, owner: str, runtime_api_port: int, networks: Sequence[Network]
    ) -> str | None:
        """Keep containers on ``networks`` from reaching any service of the host but the Runtime
        API on ``runtime_api_port``, until ``unguard_host(owner)``; first remove what owners
        provably gone left. None when done, else why not and what stays exposed (a warning)."""
        ...

    def unguard_host(self, owner: str) -> None:
        """Undo ``guard_host`` for ``owner``."""
        ...

    def run(self, spec: ContainerSpec) -> Container:
        """Create and start a container with its output attached from the first byte."""
        ...

    def hold_network(self, spec: HolderSpec) -> Container:
        """Create and start a network holder; ``kill`` ends it."""
        ...

    async def open_output(self, container: Container) -> OutputStream: ...

    def kill(self, container_id: str) -> None:
        """Stop a container now (SIGKILL) and have it removed; nothing happens if it is gone."""
        ...

    def remove(self, container_id: str) -> None:
        """Remove a container, running or not (for leftovers that do not remove themselves)."""
        ...

    def forget(self, container_id: str) -> None:
        """Drop what is held locally for a container that is gone (no engine call)."""
        ...

    def containers(self, labels: Mapping[str, str]) -> list[Container]:
        """Running and stopped containers carrying all of these labels."""
        ...

    def limit_cpu(self, container_id: str, nano_cpus: int) -> None:
        """Set a running container's CPU quota (once, when its init is over; never warm)."""
        ...

    def memory_peak(self, container_id: str) -> int | None:
        """The container's peak memory use in bytes since it started, if the engine knows it."""
        ...

    def watch_exits(
        self, labels: Mapping[str, str], on_exit: Callable[[ContainerExit], None]
    ) -> None:
        """Block, calling ``on_exit`` as labelled containers die; run it in its own thread."""
        ...

    def image(self, name: str) -> ImageInfo | None: ...

    def import_rootfs(self, tarball: Path, name: str, labels: Mapping[str, str]) -> None: ...

    def build(
        self, context: Path, name: str, build_args: Mapping[str, str], labels: Mapping[str, str]
    ) -> None: ...
