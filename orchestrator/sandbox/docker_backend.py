"""The Docker Engine behind the ``Backend`` interface: the only module that imports ``docker``.

Docker's own exceptions are translated here, once, into ``BackendError``s that say what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.tls
import docker.types
import requests.exceptions

from orchestrator import trace
from orchestrator.errors import BackendError, BackendUnavailable
from orchestrator.sandbox import engine, host_firewall
from orchestrator.sandbox.backend import (
    LABEL_MANAGED,
    Container,
    ContainerExit,
    ContainerSpec,
    HolderSpec,
    ImageInfo,
    Network,
    OutputStream,
)
from orchestrator.sandbox.ownership import identify
from orchestrator.sandbox.scratch import ScratchDisk, ScratchDisks, unsupported
from orchestrator.state import state_dir

log = logging.getLogger(__name__)

_UNREACHABLE = (
    "Docker is not reachable ({detail}). Start the Docker engine (or set DOCKER_HOST) and "
    "check that this user may use it: `docker info` must work."
)

# Subnets chosen so the Runtime API lives where it does on AWS (169.254.100.1): link-local,
# never routed off the host, and unlikely to collide with a user's own networks.
_SUBNETS = {"lrun-public": "169.254.100.0/24", "lrun-private": "169.254.101.0/24"}
_ICC = "com.docker.network.bridge.enable_icc"
_NETWORK_ATTEMPTS = 5

_CGROUP_MEMORY_PEAK = (
    "/sys/fs/cgroup/memory/docker/{id}/memory.max_usage_in_bytes",  # cgroup v1, cgroupfs
    "/sys/fs/cgroup/memory/system.slice/docker-{id}.scope/memory.max_usage_in_bytes",
    "/sys/fs/cgroup/docker/{id}/memory.peak",  # cgroup v2, cgroupfs
    "/sys/fs/cgroup/system.slice/docker-{id}.scope/memory.peak",  # cgroup v2, systemd
)

# Each container sits in a cgroup of its own, /lrun/<container name>, which the engine creates
# and does not remove: it outlives the container, so the peak memory of a container that timed
# out, crashed or was OOM-killed can still be read once the container is gone (lrun then
# removes it). Only with the cgroupfs driver, where the engine places containers by path.
_CGROUP_ROOT = "/sys/fs/cgroup"
_CGROUP_PARENT = "lrun"
_PARENT_PEAK = (
    _CGROUP_ROOT + "/memory/{parent}/memory.max_usage_in_bytes",  # cgroup v1
    _CGROUP_ROOT + "/{parent}/memory.peak",  # cgroup v2
)
# A network holder only sleeps: it needs next to nothing, and gets next to nothing.
_HOLDER_MEMORY = 16 * 1024 * 1024
_HOLDER_NANO_CPUS = 50_000_000  # 0.05 of a CPU
_HOLDER_PIDS = 4
_HOLDER_USER = "65534:65534"  # nobody

# A parent cgroup left by a process that ended before its container did (a one-shot `lrun
# invoke` does not wait for its container's end) is removed once it is this old and empty.
_LEFTOVER_CGROUP_AGE_S = 60.0


@contextlib.contextmanager
def _translated(action: str, where: engine.Location | None = None) -> Iterator[None]:
    """Turn Docker SDK and transport errors into lrun errors that name the failed action."""
    try:
        yield
    except docker.errors.DockerException as exc:
        if isinstance(exc, docker.errors.APIError):
            explanation = exc.explanation or str(exc)
            raise BackendError(f"Docker could not {action}: {explanation}") from exc
        raise BackendUnavailable(_unreachable(exc, where)) from exc
    except requests.exceptions.ConnectionError as exc:
        raise BackendUnavailable(_unreachable(exc, where)) from exc


def _unreachable(exc: Exception, where: engine.Location | None) -> str:
    detail = f"{where.url}, from {where.source}: {exc}" if where is not None else str(exc)
    return _UNREACHABLE.format(detail=detail)


def _tls(where: engine.Location) -> docker.tls.TLSConfig | bool:
    """A Docker context's TLS settings (its ca.pem, cert.pem, key.pem), if it has any."""
    if where.tls_dir is None:
        return False
    files = {name: where.tls_dir / f"{name}.pem" for name in ("ca", "cert", "key")}
    cert = (str(files["cert"]), str(files["key"])) if files["cert"].is_file() else None
    ca = str(files["ca"]) if files["ca"].is_file() else None
    return docker.tls.TLSConfig(client_cert=cert, ca_cert=ca, verify=not where.skip_tls_verify)


def _remove_cgroup(path: str) -> None:
    """Remove a cgroup from every hierarchy it is in (cgroup v1 has one per controller)."""
    try:
        hierarchies = [e.path for e in os.scandir(_CGROUP_ROOT) if e.is_dir()]
    except OSError:
        return
    for hierarchy in [_CGROUP_ROOT, *hierarchies]:
        with contextlib.suppress(OSError):  # not in this hierarchy, or still busy
            os.rmdir(f"{hierarchy}/{path}")


_CFS_PERIOD_US = 100_000  # the period the engine sets with NanoCpus


def _write_cpu_quota(pid: int, nano_cpus: int) -> bool:
    """Set the CFS quota of the cgroup that process ``pid`` is in; False if lrun cannot (not
    root, another cgroup namespace, a remote engine)."""
    quota = nano_cpus * _CFS_PERIOD_US // 1_000_000_000
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    candidates: list[tuple[str, str]] = []  # (file, text): cgroup v1's cpu controller first
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            for mount in (controllers, "cpu"):  # mounted as "cpu,cpuacct" and linked as "cpu"
                candidates.append((f"{_CGROUP_ROOT}/{mount}{path}/cpu.cfs_quota_us", str(quota)))
        elif controllers == "":  # cgroup v2 (in a hybrid set-up it has no cpu controller)
            candidates.append((f"{_CGROUP_ROOT}{path}/cpu.max", f"{quota} {_CFS_PERIOD_US}"))
    for target, text in candidates:
        try:
            with open(target, "w") as out:
                out.write(text)
            return True
        except OSError:
            continue
    return False


def connect() -> DockerBackend:
    """A backend on the engine lrun finds (engine.locate: DOCKER_HOST, the Docker context, or
    an engine socket on this host)."""
    where = engine.locate(os.environ, Path.home())
    with _translated("connect", where):
        if where.source == "DOCKER_HOST":
            client = docker.from_env(timeout=120)  # with DOCKER_TLS_VERIFY, DOCKER_CERT_PATH
        else:
            client = docker.DockerClient(base_url=where.url, timeout=120, tls=_tls(where))
        # The ping says which engine answers (Podman's /version takes seconds: it asks its
        # OCI runtime and conmon for theirs).
        api: Any = client.api
        pong = api._get(api._url("/_ping"))
        api._raise_for_status(pong)
    podman = "Libpod-Api-Version" in pong.headers
    local = podman is False and where.url.startswith("unix://")
    scratch = None if podman or unsupported() else ScratchDisks(state_dir() / "scratch")
    backend = DockerBackend(client, scratch=scratch, podman=podman)
    if not local:
        # Another user's (rootless) engine, or another host's: its containers' processes and
        # cgroups are not this host's to write, nor a FIFO of lrun's theirs to open.
        backend.output_pipes = False
        backend.local_cgroups = False
    # Ask the engine's cgroup driver now, on a thread of its own (~15 ms): by the first
    # container's start the answer is there, so a one-shot invocation does not wait for it.
    threading.Thread(target=backend.probe_cgroups, name="lrun-cgroups", daemon=True).start()
    return backend


class _DemuxedOutput:
    """Docker's multiplexed attach stream (8-byte frame headers) read on the event loop."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self) -> bytes:
        try:
            header = await self._reader.readexactly(8)
            (size,) = struct.unpack(">I", header[4:])
            return await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return b""

    def close(self) -> None:
        self._writer.close()


def _own_socket(attached: Any) -> socket.socket:
    """A socket of our own for an attach stream, which the event loop can then own outright.

    The SDK hands back a file wrapper around the connection's socket, and the socket's real
    close waits for every wrapper to go; a duplicate leaves nothing of the SDK holding it.
    """
    inner: socket.socket = attached._sock
    mine = inner.dup()
    attached.close()
    inner.close()
    return mine


def _address(info: Mapping[str, Any], network: str) -> str:
    """A started container's address on ``network`` (from the engine's inspect)."""
    networks = info["NetworkSettings"].get("Networks") or {}
    found: Mapping[str, Any] = networks.get(network) or next(iter(networks.values()), {})
    address: str = found.get("IPAddress", "") or info["NetworkSettings"].get("IPAddress", "")
    return address


class DockerBackend:
    output_pipes = True  # containers bind-mount host paths (the code) already
    # Whether containers' cgroups are this host's to read and write (a local, root engine).
    local_cgroups = True

    def __init__(
        self,
        client: docker.DockerClient,
        subnets: Mapping[str, str] = _SUBNETS,
        scratch: ScratchDisks | None = None,
        podman: bool = False,
    ) -> None:
        """``scratch`` makes each environment's /tmp a disk of its own; None: a tmpfs.
        ``podman``: the engine is Podman, whose rootless containers each get a network of
        their own (slirp4netns) behind NAT."""
        self._client = client
        self._subnets = subnets
        self._scratch = scratch
        self._podman = podman
        self._unlimited_told = False  # warned that the engine dropped a memory limit
        self._api = client.api
        self._attached: dict[str, socket.socket] = {}
        self._lock = threading.Lock()
        self._networks: dict[str, Network] = {}
        self._peak_files: dict[str, int] = {}
        self._pids: dict[str, int] = {}  # container id: its first process, until limit_cpu
        self._own_cgroups: bool | None = None  # whether containers get a parent cgroup each
        self._cgroup_lock = threading.Lock()
        self._parents: dict[str, str] = {}  # container id: its parent cgroup's path
        self._final_peaks: dict[str, int | None] = {}  # of containers gone, latest last
        self._exit_lock = threading.Lock()

    def network(self, name: str, internal: bool) -> Network:
        if name in self._networks:
            return self._networks[name]
        if self._podman:
            net = self._nat_network(name, internal)
            self._networks[name] = net
            return net
        with _translated(f"create network {name!r}"):
            for _ in range(_NETWORK_ATTEMPTS):
                info = self._inspect_network(name)
                if info is None:
                    self._create_network(name, internal)
                    continue
                isolated = info.get("Options", {}).get(_ICC) == "false"
                if not isolated and not info.get("Containers") and self._remove_network(info["Id"]):
                    continue  # made by an older lrun and unused: made again, isolated
                break
            else:
                raise BackendError(
                    f"network {name!r} changed under lrun {_NETWORK_ATTEMPTS} times while it was "
                    "being set up; try again"
                )
        config = info["IPAM"]["Config"][0]
        net = Network(name, config["Gateway"], config["Subnet"], internal, isolated)
        if not engine.can_listen_on(net.gateway):
            # The bridge is not in this host's network namespace (Docker Desktop's VM, a
            # rootless engine's namespace): containers reach the host through the engine's
            # NAT, at the address it maps "host-gateway" to, which arrives at loopback.
            net = replace(net, gateway="host-gateway", listen="127.0.0.1", shared_peer=True)
        if isolated:  # else look again next time: it may be free to make again by then
            self._networks[name] = net
        return net

    def _nat_network(self, name: str, internal: bool) -> Network:
        """Podman: each container gets a network namespace of its own, NAT'd by slirp4netns,
        which reaches this host's own addresses; the private network's reaches nothing else
        (its connections leave from loopback, which routes nowhere off the host)."""
        address = engine.host_address()
        if address is None:
            raise BackendError(
                f"network {name!r}: this host has no address but loopback, and containers of "
                "this engine reach the host only through one; give it a network interface"
            )
        mode = "slirp4netns:outbound_addr=127.0.0.1" if internal else "slirp4netns"
        return Network(name, address, "", internal, True, True, mode, address)

    def _inspect_network(self, name: str) -> dict[str, Any] | None:
        # Listing by name matches substrings: only the exact name is ours.
        for found in self._api.networks(names=[name]):
            if found["Name"] == name:
                try:
                    info: dict[str, Any] = self._api.inspect_network(found["Id"])
                except docker.errors.NotFound:
                    return None
                return info
        return None

    def _create_network(self, name: str, internal: bool) -> None:
        subnet = self._subnets[name]
        ipam = docker.types.IPAMConfig(
            pool_configs=[
                docker.types.IPAMPool(subnet=subnet, gateway=subnet.replace(".0/24", ".1"))
            ]
        )
        try:
            self._api.create_network(
                name,
                driver="bridge",
                internal=internal,
                ipam=ipam,
                options={_ICC: "false"},  # environments never reach each other (DESIGN D9)
                labels={LABEL_MANAGED: "1"},
                check_duplicate=True,
            )
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # another lrun process made it first
                raise

    def _remove_network(self, network_id: str) -> bool:
        """Remove a network nothing is attached to; False if something got attached first
        (the engine refuses to remove a network in use, so a running lrun is never cut off)."""
        try:
            self._api.remove_network(network_id)
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            if exc.status_code in (403, 409):  # has active endpoints
                return False
            raise
        return True

    def guard_host(
        self, owner: str, runtime_api_port: int, networks: Sequence[Network]
    ) -> str | None:
        if any(n.shared_peer for n in networks):
            return (
                "functions can reach every service listening on this host's addresses, not "
                "only the Runtime API: this engine's containers reach the host through its "
                "NAT, where lrun's firewall rules cannot tell them from the host's own traffic"
            )
        why = host_firewall.unavailable()
        if why is None:
            try:
                host_firewall.sweep()
                host_firewall.install(
                    identify(owner),
                    runtime_api_port,
                    [host_firewall.Guarded(n.subnet, n.gateway, not n.internal) for n in networks],
                )
                return None
            except host_firewall.FirewallError as exc:
                host_firewall.remove(owner)
                why = str(exc)
        ports = [p for p in host_firewall.listening_ports() if p != runtime_api_port]
        listening = ", ".join(map(str, ports)) or "none right now"
        return (
            f"functions can reach every service listening on this host's addresses "
            f"(TCP ports listening now: {listening}), not only the Runtime API: lrun could not "
            f"install its host firewall rules ({why}); run lrun as root with iptables to close "
            "them"
        )

    def unguard_host(self, owner: str) -> None:
        if host_firewall.unavailable() is None:
            with contextlib.suppress(host_firewall.FirewallError):
                host_firewall.remove(owner)

    def probe_cgroups(self) -> None:
        """Find out ahead whether containers can have parent cgroups of their own; an engine
        that fails here fails again, and says so, when a container is started."""
        with contextlib.suppress(Exception):
            self._cgroup_parents()

    def _cgroup_parents(self) -> bool:
        """Whether containers can have parent cgroups of their own (asked once)."""
        if not self.local_cgroups:
            return False
        with self._cgroup_lock:
            return self._ask_cgroup_parents()

    def _ask_cgroup_parents(self) -> bool:
        if self._own_cgroups is None:
            with _translated("read the engine's settings"):
                info = self._api.info()
            tree = next(
                (p for p in (f"{_CGROUP_ROOT}/memory", _CGROUP_ROOT) if os.path.isdir(p)), None
            )
            self._own_cgroups = (
                info.get("CgroupDriver") == "cgroupfs"
                and tree is not None
                and os.access(tree, os.W_OK)  # lrun must be able to remove what it leaves
            )
            if self._own_cgroups:
                sweep = threading.Thread(target=self._sweep_cgroups, name="lrun-cgroups")
                sweep.daemon = True
                sweep.start()
        return self._own_cgroups

    def run(self, spec: ContainerSpec) -> Container:
        parent = f"{_CGROUP_PARENT}/{spec.name}" if self._cgroup_parents() else None
        disk = None if self._scratch is None else self._scratch.begin(spec.name, spec.tmp_bytes)
        try:
            return self._run(spec, parent, disk)
        finally:
            if disk is not None:  # the container holds /tmp by now, or never will
                threading.Thread(target=disk.detach, name="lrun-scratch", daemon=True).start()

    def _run(self, spec: ContainerSpec, parent: str | None, disk: ScratchDisk | None) -> Container:
        mounts = []
        if spec.code_dir is not None:
            mounts.append(
                docker.types.Mount("/var/task", str(spec.code_dir), type="bind", read_only=True)
            )
        if disk is not None:
            mounts.append(docker.types.Mount("/tmp", str(disk.mountpoint), type="bind"))
        for source, target in spec.binds:
            mounts.append(docker.types.Mount(target, str(source), type="bind", read_only=True))
        host_config = self._api.create_host_config(
            mem_limit=spec.memory_bytes,
            memswap_limit=spec.memory_bytes,  # no swap beyond the memory limit
            nano_cpus=spec.init_nano_cpus or spec.nano_cpus,  # limit_cpu lowers it after init
            read_only=True,
            # /tmp: disk of its own (scratch.py), else a tmpfs, which counts as memory
            tmpfs=None if disk is not None else {"/tmp": f"size={spec.tmp_bytes},mode=1777"},
            mounts=mounts,
            pids_limit=spec.pids_limit,
            ulimits=[docker.types.Ulimit(name="nofile", soft=spec.nofile, hard=spec.nofile)],
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            network_mode=f"container:{spec.holder.id}" if spec.holder else spec.network,
            extra_hosts=dict(spec.extra_hosts) or None,
            auto_remove=True,
            cgroup_parent=f"/{parent}" if parent else None,
            ipc_mode="none",  # no /dev/shm, as on Lambda (multiprocessing queues fail there too)
        )
        requested_at = time.monotonic()
        with _translated(f"start container for image {spec.image!r}"):
            created = self._api.create_container(
                spec.image,
                name=spec.name,
                command=list(spec.command) if spec.command else None,
                entrypoint=list(spec.entrypoint) if spec.entrypoint else None,
                working_dir=spec.working_dir,
                environment=dict(spec.environment),
                labels=dict(spec.labels),
                user=spec.user,
                host_config=host_config,
                stdin_open=False,
                tty=False,
            )
            cid: str = created["Id"]
            created_at = time.monotonic()
            if parent is not None:
                with self._lock:
                    self._parents[cid] = parent
            trace.mark("container created")
            raw = _own_socket(
                self._api.attach_socket(cid, params={"stdout": 1, "stderr": 1, "stream": 1})
            )
            try:
                if disk is not None:
                    disk.mount()
                    trace.mark("/tmp mounted")
                self._api.start(cid)
                started_at = time.monotonic()
                trace.mark("container started")
                info = self._api.inspect_container(cid)
            except BaseException:
                raw.close()
                self.kill(cid)
                raise
        with self._lock:
            self._attached[cid] = raw
            self._pids[cid] = int(info["State"].get("Pid") or 0)
        if not self._unlimited_told and not info["HostConfig"].get("Memory"):
            self._unlimited_told = True
            log.warning(
                "this engine does not enforce the memory limit of %s (it ran it with none, as "
                "rootless engines do on cgroup v1): a function can use this host's memory "
                "beyond its MemorySize, and is never ended as out of memory",
                spec.name,
            )
        if spec.holder is not None:
            ip = spec.holder.ip
        else:
            ip = _address(info, spec.network)
        return Container(
            cid, spec.name, ip, dict(spec.labels), started_at, requested_at, created_at
        )

    def hold_network(self, spec: HolderSpec) -> Container:
        host_config = self._api.create_host_config(
            mem_limit=_HOLDER_MEMORY,
            memswap_limit=_HOLDER_MEMORY,
            nano_cpus=_HOLDER_NANO_CPUS,
            read_only=True,
            pids_limit=_HOLDER_PIDS,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            network_mode=spec.network,
            auto_remove=True,
            ipc_mode="none",
        )
        requested_at = time.monotonic()
        with _translated(f"start a network holder on {spec.network!r}"):
            created = self._api.create_container(
                spec.image,
                name=spec.name,
                entrypoint=["/bin/sleep", "infinity"],
                labels=dict(spec.labels),
                user=_HOLDER_USER,
                host_config=host_config,
                stdin_open=False,
                tty=False,
            )
            cid: str = created["Id"]
            created_at = time.monotonic()
            try:
                self._api.start(cid)
                started_at = time.monotonic()
                info = self._api.inspect_container(cid)
            except BaseException:
                self.remove(cid)
                raise
        return Container(
            cid,
            spec.name,
            _address(info, spec.network),
            dict(spec.labels),
            started_at,
            requested_at,
            created_at,
        )

    async def open_output(self, container: Container) -> OutputStream:
        with self._lock:
            raw = self._attached.pop(container.id)
        raw.setblocking(False)
        reader, writer = await asyncio.open_connection(sock=raw)
        return _DemuxedOutput(reader, writer)

    def kill(self, container_id: str) -> None:
        # SIGKILL returns at once and auto-removal cleans up; a container that never ran (or
        # is already dead) has nothing to signal and is removed instead.
        try:
            self._api.kill(container_id)
        except docker.errors.NotFound:
            self.forget(container_id)
        except docker.errors.APIError:
            self.remove(container_id)
        else:
            self.forget(container_id)

    def containers(self, labels: Mapping[str, str]) -> list[Container]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        with _translated("list containers"):
            found = self._api.containers(all=True, filters=filters)
        result = []
        for c in found:
            nets = c.get("NetworkSettings", {}).get("Networks", {})
            ip = next((n.get("IPAddress", "") for n in nets.values()), "")
            name = c["Names"][0].lstrip("/")
            result.append(Container(c["Id"], name, ip, c["Labels"], 0.0))
        return result

    def limit_cpu(self, container_id: str, nano_cpus: int) -> None:
        # Written straight into the container's cgroup where lrun may (microseconds, no engine
        # call); else one engine update, which takes some milliseconds of the cold start.
        with self._lock:
            pid = self._pids.pop(container_id, 0)
        if pid and self.local_cgroups and _write_cpu_quota(pid, nano_cpus):
            return
        with _translated(f"limit the CPU of container {container_id[:12]}"):
            # The SDK's update_container has no NanoCpus (and the engine refuses a CpuQuota
            # for a container made with NanoCpus): the same request with the field it lacks.
            api: Any = self._api
            url = api._url("/containers/{0}/update", container_id)
            api._raise_for_status(api._post_json(url, data={"NanoCpus": nano_cpus}))

    def memory_peak(self, container_id: str) -> int | None:
        # The cgroup file stays open per container: a pread is a fraction of an open and close,
        # and this is read after every invocation.
        fd = self._peak_files.get(container_id)
        if fd is None:
            fd = self._open_peak_file(container_id)
            if fd is None:
                return None
        try:
            return int(os.pread(fd, 32, 0))
        except (OSError, ValueError):
            self._close_peak_file(container_id)
            return None

    def _open_peak_file(self, container_id: str) -> int | None:
        parent = self._parents.get(container_id)
        if parent is not None:
            paths = [pattern.format(parent=parent) for pattern in _PARENT_PEAK]
        else:
            paths = [pattern.format(id=container_id) for pattern in _CGROUP_MEMORY_PEAK]
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            with self._lock:
                self._peak_files[container_id] = fd
            return fd
        return None

    def remove(self, container_id: str) -> None:
        try:
            self._api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: removal already in progress
                raise BackendError(
                    f"Docker could not remove container {container_id[:12]}: "
                    f"{exc.explanation}; remove it with `docker rm -f {container_id[:12]}`"
                ) from exc
        self.forget(container_id)

    def forget(self, container_id: str) -> None:
        with self._lock:
            self._pids.pop(container_id, None)
            raw = self._attached.pop(container_id, None)
        if raw is not None:
            raw.close()
        self._close_peak_file(container_id)

    def _close_peak_file(self, container_id: str) -> None:
        with self._lock:
            fd = self._peak_files.pop(container_id, None)
        if fd is not None:
            os.close(fd)

    def watch_exits(
        self, labels: Mapping[str, str], on_exit: Callable[[ContainerExit], None]
    ) -> None:
        # Events are chosen here, not by an "event" filter, which Podman's compatible API
        # takes and then sends nothing.
        filters: dict[str, Any] = {
            "type": "container",
            "label": [f"{k}={v}" for k, v in labels.items()],
        }
        oom: set[str] = set()  # the engine reports "oom" just before the "die" it causes
        with _translated("watch container events"):
            for event in self._api.events(decode=True, filters=filters):
                status = event.get("status") or event.get("Action")
                if status not in ("oom", "die"):
                    continue
                cid = event["id"]
                if status == "oom":
                    oom.add(cid)
                    continue
                code = int(event.get("Actor", {}).get("Attributes", {}).get("exitCode", -1))
                on_exit(ContainerExit(cid, code, cid in oom, self._final_peak(cid)))
                oom.discard(cid)

    def _final_peak(self, container_id: str) -> int | None:
        """A dead container's peak memory, read from its parent cgroup, which then goes."""
        with self._exit_lock:  # each watcher hears of each end: the first one reads it
            if container_id in self._final_peaks:
                return self._final_peaks[container_id]
            with self._lock:
                parent = self._parents.pop(container_id, None)
            if parent is None:
                return None
            self._close_peak_file(container_id)
            peak = None
            for pattern in _PARENT_PEAK:
                try:
                    with open(pattern.format(parent=parent)) as f:
                        peak = int(f.read())
                    break
                except (OSError, ValueError):
                    continue
            _remove_cgroup(parent)
            self._final_peaks[container_id] = peak
            while len(self._final_peaks) > 256:
                del self._final_peaks[next(iter(self._final_peaks))]
            return peak

    def _sweep_cgroups(self) -> None:
        """Remove parent cgroups that earlier processes left (empty ones only: the kernel
        refuses to remove a cgroup that still holds a container)."""
        for base in (f"{_CGROUP_ROOT}/memory/{_CGROUP_PARENT}", f"{_CGROUP_ROOT}/{_CGROUP_PARENT}"):
            try:
                entries = list(os.scandir(base))
            except OSError:
                continue
            for entry in entries:
                try:
                    age = time.time() - entry.stat().st_mtime
                except OSError:
                    continue
                with self._lock:
                    mine = f"{_CGROUP_PARENT}/{entry.name}" in self._parents.values()
                if entry.is_dir() and age > _LEFTOVER_CGROUP_AGE_S and not mine:
                    _remove_cgroup(f"{_CGROUP_PARENT}/{entry.name}")

    def image(self, name: str) -> ImageInfo | None:
        try:
            info = self._api.inspect_image(name)  # type: ignore[no-untyped-call]
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.DockerException as exc:
            with _translated(f"inspect image {name!r}"):
                raise exc
        labels = info["Config"].get("Labels") or {}
        return ImageInfo(name, labels, int(info.get("Size", 0)), str(info.get("Id") or ""))

    def import_rootfs(self, tarball: Path, name: str, labels: Mapping[str, str]) -> None:
        changes = [f'LABEL {k}="{v}"' for k, v in labels.items()]
        with _translated(f"import {tarball} as {name!r}"), open(tarball, "rb") as f:
            self._api.import_image_from_data(f, repository=name, changes=changes)

    def build(
        self, context: Path, name: str, build_args: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        with _translated(f"build image {name!r}"):
            for chunk in self._api.build(
                path=str(context),
                tag=name,
                buildargs=dict(build_args),
                labels=dict(labels),
                pull=False,
                rm=True,
                forcerm=True,
                decode=True,
            ):
                if "error" in chunk:
                    raise BackendError(f"Docker could not build image {name!r}: {chunk['error']}")
