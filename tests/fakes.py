"""A container engine in memory for the unit tests: ``FakeBackend`` implements ``Backend``.

No Docker: a "container" is an asyncio task on the test's event loop that plays the runtime. It
speaks the real Lambda Runtime API over HTTP from its own loopback address (Linux accepts any
127.0.0.0/8 source address), so lrun's Runtime API tells fake environments apart by peer address
exactly as it tells containers apart. The runtime runs Python handlers from a registry the test
gives, chosen by the container's ``_HANDLER``; what they write goes to the container's output.

A handler is ``handler(event, context)``, plain or async. Returning answers the invocation (JSON,
or ``bytes`` as they are); raising an ``Exception`` posts ``/error``; an answer the Runtime API
refuses (a 413 for an oversized response, a 400 for a stale request id) ends the runtime with
exit status 1, as awslambdaric's does; returning ``Streamed(...)`` posts a streamed answer
(chunked, ``Lambda-Runtime-Function-Response-Mode: streaming``, trailers for an error, pauses
between chunks as the test says); raising ``SystemExit(code)``
ends the container with that exit status, and raising ``OutOfMemory`` ends it as the kernel's OOM
killer would. An unknown handler fails the init (``Runtime.HandlerNotFound``) and exits 1.

The backend's blocking methods are called from worker threads (``asyncio.to_thread``); whatever
touches the fake runtimes is handed to the bound event loop. Create the backend inside the test's
loop (it binds to the running loop) or call ``bind(loop)``, and end with ``await aclose()``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import inspect
import itertools
import json
import queue
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from orchestrator import manifest
from orchestrator.errors import BackendError
from orchestrator.pool import Pool
from orchestrator.sandbox.backend import (
    NETWORK_PUBLIC,
    Container,
    ContainerExit,
    ContainerSpec,
    HolderSpec,
    ImageInfo,
    Network,
)
from orchestrator.sandbox.holders import HolderSettings
from orchestrator.sandbox.invocation import InvocationResult
from orchestrator.sandbox.invoker import Invoker
from orchestrator.sandbox.oneshot import hosted_invoker
from orchestrator.service import Service, ServiceSettings

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
    """Run one test scenario on a fresh event loop, with an overall time limit."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Clock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


MB = 1024 * 1024
PREFIX = "/2018-06-01/runtime"
KILLED = 137  # 128 + SIGKILL, as the engine reports a killed container
NAT_ADDRESS = "127.0.0.1"  # where every fake container connects from behind a NAT
_LOOP_CALL_S = 5.0  # a worker thread's wait for the loop: a bug must fail, never hang

# Backend methods that are engine (Docker API) calls. ``memory_peak`` reads a cgroup file and
# ``forget`` drops local state (both documented as no engine call), so a warm invocation, which
# reads its memory peak, still makes no engine call (DESIGN P4).
ENGINE_CALLS = frozenset(
    {
        "network",
        "guard_host",
        "unguard_host",
        "run",
        "hold_network",
        "limit_cpu",
        "open_output",
        "kill",
        "remove",
        "containers",
        "watch_exits",
        "image",
        "import_rootfs",
        "build",
    }
)


def engine_calls(calls: Iterable[str]) -> list[str]:
    """The engine calls among recorded method names."""
    return [name for name in calls if name in ENGINE_CALLS]


class OutOfMemory(BaseException):
    """Raised by a handler: its container is OOM-killed (exit 137, ``oom_killed``)."""


@dataclass(frozen=True)
class Streamed:
    """A handler's streamed answer: its chunks in order (a float is a pause, in seconds; an
    event, a wait for it), then the trailers of an error met midway, as a streaming runtime
    sends them."""

    chunks: Sequence[bytes | float | asyncio.Event]  # an event: wait until it is set
    content_type: str = "application/octet-stream"
    error_type: str | None = None
    error_body: bytes = b""  # sent base64-encoded, as the Runtime API asks
    mode: str = "streaming"


@dataclass
class FakeContext:
    """What a fake handler gets as ``context``: Lambda's context fields, plus the container's."""

    aws_request_id: str
    invoked_function_arn: str
    deadline_ms: int
    function_name: str
    memory_limit_in_mb: str
    client_context: str | None
    trace_id: str | None
    env: Mapping[str, str]  # the container's environment variables
    state: dict[str, Any]  # lives as long as the container: a module's globals
    pid: int  # distinct per container, like the runtime's process id
    container_id: str
    ip: str
    _output: FakeOutput

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - int(time.time() * 1000))

    def log(self, text: str) -> None:
        """Write a line to the container's output (the function's stdout)."""
        self._output.write(f"{text}\n".encode())


Handler = Callable[[Any, FakeContext], Any]


class FakeOutput:
    """A container's output: chunks the fake runtime writes, read in order, ``b""`` at the end.

    Used on the event loop only.
    """

    def __init__(self) -> None:
        self._chunks: collections.deque[bytes] = collections.deque()
        self._ended = False
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    def write(self, data: bytes) -> None:
        if not self._ended and data:
            self._chunks.append(data)
            self._wake()

    def end(self) -> None:
        self._ended = True
        self._wake()

    async def read(self) -> bytes:
        while not self._chunks:
            if self._ended or self._closed:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        if self._closed:
            return b""
        return self._chunks.popleft()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


@dataclass
class FakeContainer:
    """The fake engine's record of one container."""

    container: Container
    spec: ContainerSpec
    pid: int
    output: FakeOutput = field(default_factory=FakeOutput)
    task: asyncio.Task[None] | None = None
    exit: ContainerExit | None = None
    state: dict[str, Any] = field(default_factory=dict)
    request_ids: list[str] = field(default_factory=list)  # invocations its runtime received
    refused: list[tuple[str, int]] = field(default_factory=list)  # (path, status) not 2xx
    crash: BaseException | None = None  # what ended the runtime, if not a handler's doing

    @property
    def id(self) -> str:
        return self.container.id

    @property
    def ip(self) -> str:
        return self.container.ip


class FakeBackend:
    """The ``Backend`` protocol in memory, with fake runtimes speaking the Runtime API."""

    output_pipes = False  # fake runtimes write to their stream only

    def __init__(
        self,
        handlers: Mapping[str, Handler] | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        gateways: Mapping[str, str] | None = None,
        memory_peak_bytes: int = 42 * MB,
        init_delay: float = 0.0,
        run_delay: float = 0.0,
        run_error: BackendError | None = None,
        reuse_addresses: bool = False,
        exit_delay: float = 0.0,
        images: Iterable[str] = (),
        next_delay: float = 0.0,
        nat: bool = False,
    ) -> None:
        """``gateways`` maps network names to the Runtime API's address (default 127.0.0.1);
        ``init_delay`` is how long a runtime takes before its first ``/next``; ``run_delay``
        how long ``run`` blocks; ``run_error`` is raised by ``run``. ``reuse_addresses`` hands
        out the lowest free address, as Docker's IPAM does, instead of always a new one, and
        ``exit_delay`` delays exit events after a container is gone, as the engine's event
        stream does; ``next_delay`` is how long a runtime takes, after its answer, to ask for
        the next event (a busy host's runtimes take milliseconds). ``nat``: every container
        reaches the Runtime API from one address, as behind Docker Desktop's or rootless
        Podman's NAT."""
        self.nat = nat
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.gateways = dict(gateways or {})
        self.memory_peak_bytes = memory_peak_bytes
        self.init_delay = init_delay
        self.run_delay = run_delay
        self.run_error = run_error
        self.reuse_addresses = reuse_addresses
        self.exit_delay = exit_delay
        self.next_delay = next_delay
        self.calls: list[str] = []  # method names in call order
        self.specs: list[ContainerSpec] = []  # what ``run`` was asked for
        self.holder_specs: list[HolderSpec] = []  # what ``hold_network`` was asked for
        self.cpu_limits: list[tuple[str, int]] = []  # (container id, nano CPUs) by limit_cpu
        self.exits: list[ContainerExit] = []  # every container's end, in order
        self.networks: dict[str, bool] = {}  # name: internal
        self.guarded: dict[str, int] = {}  # owner: the Runtime API port its host guard allows
        self.images: dict[str, ImageInfo] = {name: ImageInfo(name, {}, 0) for name in images}
        self._loop = loop
        if self._loop is None:
            with contextlib.suppress(RuntimeError):
                self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._live: dict[str, FakeContainer] = {}
        self._all: dict[str, FakeContainer] = {}
        self._unopened: dict[str, FakeOutput] = {}
        self._watchers: list[tuple[Mapping[str, str], queue.SimpleQueue[ContainerExit | None]]] = []
        self._closed = False
        self._next_address = itertools.count(2)
        self._pids = itertools.count(100)

    # Set-up and tear-down

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run fake runtimes on ``loop`` (the loop the test runs)."""
        self._loop = loop

    def close(self) -> None:
        """End every ``watch_exits``; containers are left as they are."""
        with self._lock:
            self._closed = True
            watchers = list(self._watchers)
        for _, events in watchers:
            events.put(None)

    async def aclose(self) -> None:
        """Kill every live container, wait for its runtime to end, then ``close``."""
        for fc in list(self._live.values()):
            self._kill(fc.id)
        tasks = [fc.task for fc in self._all.values() if fc.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        self.close()

    # Inspection for tests

    def live(self) -> list[FakeContainer]:
        with self._lock:
            return list(self._live.values())

    def record_of(self, container_id: str) -> FakeContainer:
        """Any container ever started, live or not."""
        return self._all[container_id]

    def engine_calls(self, since: int = 0) -> list[str]:
        """Engine calls made since ``calls`` had ``since`` entries."""
        return engine_calls(self.calls[since:])

    # The Backend protocol

    def network(self, name: str, internal: bool) -> Network:
        self._record("network")
        self.networks[name] = internal
        return Network(name, self.gateways.get(name, "127.0.0.1"), shared_peer=self.nat)

    def run(self, spec: ContainerSpec) -> Container:
        self._record("run")
        self.specs.append(spec)
        if self.run_delay:
            time.sleep(self.run_delay)
        if self.run_error is not None:
            raise self.run_error
        with self._lock:
            # Joining a holder: its address, which the engine does not hand out again.
            ip = spec.holder.ip if spec.holder is not None else self._address()
            container = Container(
                secrets.token_hex(32), spec.name, ip, dict(spec.labels), time.monotonic()
            )
            fc = FakeContainer(container, spec, next(self._pids))
            self._live[fc.id] = fc  # the address is taken from here on
            self._all[fc.id] = fc
            self._unopened[fc.id] = fc.output
        self._on_loop(lambda: self._launch(fc))
        return container

    def hold_network(self, spec: HolderSpec) -> Container:
        """A holder is a container with no runtime: it only holds its address."""
        self._record("hold_network")
        self.holder_specs.append(spec)
        if self.run_error is not None:
            raise self.run_error
        as_container = ContainerSpec(
            spec.name, spec.image, {}, spec.labels, spec.network, 0, 0, 0, None, "65534:65534"
        )
        with self._lock:
            container = Container(
                secrets.token_hex(32), spec.name, self._address(), dict(spec.labels), 0.0
            )
            fc = FakeContainer(container, as_container, next(self._pids))
            self._live[fc.id] = fc
            self._all[fc.id] = fc
        return container

    async def open_output(self, container: Container) -> FakeOutput:
        self._record("open_output")
        with self._lock:
            return self._unopened.pop(container.id)  # once, as Docker's attached stream

    def kill(self, container_id: str) -> None:
        self._record("kill")
        self._on_loop(lambda: self._kill(container_id))
        with self._lock:
            self._unopened.pop(container_id, None)

    def remove(self, container_id: str) -> None:
        self._record("remove")
        self._on_loop(lambda: self._kill(container_id))  # running or not, it goes
        self.forget(container_id)

    def guard_host(
        self, owner: str, runtime_api_port: int, networks: Sequence[Network]
    ) -> str | None:
        self._record("guard_host")
        self.guarded[owner] = runtime_api_port
        return None

    def unguard_host(self, owner: str) -> None:
        self._record("unguard_host")
        self.guarded.pop(owner, None)

    def forget(self, container_id: str) -> None:
        self._record("forget")
        with self._lock:
            self._unopened.pop(container_id, None)

    def containers(self, labels: Mapping[str, str]) -> list[Container]:
        self._record("containers")
        with self._lock:
            return [fc.container for fc in self._live.values() if _matches(fc.container, labels)]

    def limit_cpu(self, container_id: str, nano_cpus: int) -> None:
        self._record("limit_cpu")
        self.cpu_limits.append((container_id, nano_cpus))

    def memory_peak(self, container_id: str) -> int | None:
        self._record("memory_peak")
        with self._lock:
            return self.memory_peak_bytes if container_id in self._live else None

    def watch_exits(
        self, labels: Mapping[str, str], on_exit: Callable[[ContainerExit], None]
    ) -> None:
        self._record("watch_exits")
        events: queue.SimpleQueue[ContainerExit | None] = queue.SimpleQueue()
        watcher = (dict(labels), events)
        with self._lock:
            if self._closed:
                return
            self._watchers.append(watcher)
        try:
            while (event := events.get()) is not None:
                on_exit(event)
        finally:
            with self._lock:
                self._watchers.remove(watcher)

    def image(self, name: str) -> ImageInfo | None:
        self._record("image")
        return self.images.get(name)

    def import_rootfs(self, tarball: Path, name: str, labels: Mapping[str, str]) -> None:
        self._record("import_rootfs")
        self.images[name] = ImageInfo(name, dict(labels), tarball.stat().st_size)

    def build(
        self, context: Path, name: str, build_args: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        self._record("build")
        if not context.is_dir():
            raise BackendError(f"Docker could not build image {name!r}: no context {context}")
        self.images[name] = ImageInfo(name, dict(labels), 0)

    # Inside

    def _record(self, name: str) -> None:
        with self._lock:
            self.calls.append(name)

    def _address(self) -> str:
        """A loopback address for a new container (the lock is held)."""
        if self.reuse_addresses:
            taken = {fc.ip for fc in self._live.values()}
            n = next(n for n in itertools.count(2) if _loopback(n) not in taken)
        else:
            n = next(self._next_address)
        return _loopback(n)

    def _on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the bound loop: directly on it, or from a worker thread, waiting."""
        loop = self._loop
        if loop is None:
            raise RuntimeError(
                "FakeBackend is not bound to an event loop: create it inside the test's loop "
                "or call bind(loop)"
            )
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop or loop.is_closed():
            return fn()

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(_LOOP_CALL_S)

    def _launch(self, fc: FakeContainer) -> None:
        assert self._loop is not None
        fc.task = self._loop.create_task(self._runtime(fc), name=f"fake runtime {fc.ip}")

    def _kill(self, container_id: str) -> None:
        with self._lock:
            fc = self._live.get(container_id)
        if fc is None:
            return  # gone already: nothing happens, as with the engine
        self._exited(fc, KILLED)
        if fc.task is not None and not fc.task.done():
            fc.task.cancel()

    def _exited(self, fc: FakeContainer, code: int, oom_killed: bool = False) -> None:
        """The container ended: it is removed at once; its exit event follows."""
        if fc.exit is not None:
            return
        # The peak as the engine reads it from the container's parent cgroup after its end.
        peak = fc.spec.memory_bytes if oom_killed else self.memory_peak_bytes
        fc.exit = ContainerExit(fc.id, code, oom_killed, peak)
        with self._lock:
            self._live.pop(fc.id, None)
        fc.output.end()
        self.exits.append(fc.exit)
        if self.exit_delay and self._loop is not None and not self._loop.is_closed():
            self._loop.call_later(self.exit_delay, self._publish, fc)
        else:
            self._publish(fc)

    def _publish(self, fc: FakeContainer) -> None:
        assert fc.exit is not None
        with self._lock:
            watchers = [q for labels, q in self._watchers if _matches(fc.container, labels)]
        for events in watchers:
            events.put(fc.exit)

    async def _runtime(self, fc: FakeContainer) -> None:
        """The container's life: the runtime's loop, then its exit."""
        code, oom = 1, False
        writer: asyncio.StreamWriter | None = None
        try:
            if self.init_delay:
                await asyncio.sleep(self.init_delay)
            api = fc.spec.environment["AWS_LAMBDA_RUNTIME_API"]
            host, _, port = api.rpartition(":")
            host = dict(fc.spec.extra_hosts).get(host, host)  # its /etc/hosts
            # Behind NAT every container's connections come from one address.
            source = NAT_ADDRESS if self.nat else fc.ip
            reader, writer = await asyncio.open_connection(host, int(port), local_addr=(source, 0))
            code = await self._serve(fc, _RuntimeClient(reader, writer, api))
        except asyncio.CancelledError:
            code = KILLED  # killed: the exit is reported already
        except OutOfMemory:
            code, oom = KILLED, True
        except Exception as exc:  # e.g. the Runtime API went away: a real runtime crashes
            fc.crash = exc
            code = 1
        finally:
            if writer is not None:
                writer.close()
            self._exited(fc, code, oom)

    async def _serve(self, fc: FakeContainer, client: _RuntimeClient) -> int:
        """The runtime's loop; returns its exit status."""
        name = fc.spec.environment.get("_HANDLER", "")
        handler = self.handlers.get(name)
        if handler is None:
            message = f"Handler {name!r} missing: no such handler in the fake registry"
            fc.output.write(f"[ERROR] Runtime.HandlerNotFound: {message}\n".encode())
            body = json.dumps({"errorMessage": message, "errorType": "Runtime.HandlerNotFound"})
            await client.call(
                fc,
                "POST",
                f"{PREFIX}/init/error",
                body.encode(),
                {"Lambda-Runtime-Function-Error-Type": "Runtime.HandlerNotFound"},
            )
            return 1
        while True:
            status, headers, event = await client.call(fc, "GET", f"{PREFIX}/invocation/next")
            if status != 200:
                return 1  # 500: told to exit; 403: not an environment lrun knows
            request_id = headers["lambda-runtime-aws-request-id"]
            fc.request_ids.append(request_id)
            context = FakeContext(
                aws_request_id=request_id,
                invoked_function_arn=headers.get("lambda-runtime-invoked-function-arn", ""),
                deadline_ms=int(headers.get("lambda-runtime-deadline-ms", "0")),
                function_name=fc.spec.environment.get("AWS_LAMBDA_FUNCTION_NAME", ""),
                memory_limit_in_mb=fc.spec.environment.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", ""),
                client_context=headers.get("lambda-runtime-client-context"),
                trace_id=headers.get("lambda-runtime-trace-id"),
                env=fc.spec.environment,
                state=fc.state,
                pid=fc.pid,
                container_id=fc.id,
                ip=fc.ip,
                _output=fc.output,
            )
            try:
                result = handler(json.loads(event), context)
                if inspect.isawaitable(result):
                    result = await result
                if isinstance(result, Streamed):
                    path = f"{PREFIX}/invocation/{request_id}/response"
                    status, _, _ = await client.stream(fc, path, result)
                    if not 200 <= status < 300:
                        return 1
                    continue
                answer = result if isinstance(result, bytes) else json.dumps(result).encode()
            except SystemExit as exc:
                return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
            except Exception as exc:  # the function failed: /error, and on to the next
                error_type = type(exc).__name__
                fc.output.write(f"[ERROR] {error_type}: {exc}\n".encode())
                error = {"errorMessage": str(exc), "errorType": error_type, "stackTrace": []}
                status, _, _ = await client.call(
                    fc,
                    "POST",
                    f"{PREFIX}/invocation/{request_id}/error",
                    json.dumps(error).encode(),
                    {"Lambda-Runtime-Function-Error-Type": error_type},
                )
            else:
                status, _, _ = await client.call(
                    fc,
                    "POST",
                    f"{PREFIX}/invocation/{request_id}/response",
                    answer,
                    {"Content-Type": "application/json"},
                )
            if not 200 <= status < 300:
                return 1  # as awslambdaric does when its answer is refused (e.g. 413)
            if self.next_delay:
                await asyncio.sleep(self.next_delay)


class _RuntimeClient:
    """HTTP/1.1 over one keep-alive connection, as runtime interface clients talk."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self._reader = reader
        self._writer = writer
        self._host = host

    async def call(
        self,
        fc: FakeContainer,
        method: str,
        path: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self._host}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        lines.append(f"Content-Length: {len(body)}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self._writer.drain()
        head = await self._reader.readuntil(b"\r\n\r\n")  # /next waits as long as it takes
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        received: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                received[name.strip().lower()] = value.strip()
        length = int(received.get("content-length", "0"))
        answer = await self._reader.readexactly(length) if length else b""
        if not 200 <= status < 300:
            fc.refused.append((path, status))
        return status, received, answer

    async def stream(
        self, fc: FakeContainer, path: str, answer: Streamed
    ) -> tuple[int, dict[str, str], bytes]:
        """POST a streamed answer, chunk by chunk, as a streaming runtime does."""
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {self._host}",
            f"Lambda-Runtime-Function-Response-Mode: {answer.mode}",
            f"Content-Type: {answer.content_type}",
            "Transfer-Encoding: chunked",
            "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
        ]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for item in answer.chunks:
            if isinstance(item, float):
                await self._writer.drain()
                await asyncio.sleep(item)
            elif isinstance(item, asyncio.Event):
                await self._writer.drain()
                await item.wait()
            elif item:
                self._writer.write(b"%x\r\n%b\r\n" % (len(item), item))
                await self._writer.drain()
        trailers = b""
        if answer.error_type is not None:
            encoded = base64.b64encode(answer.error_body).decode()
            trailers = (
                f"Lambda-Runtime-Function-Error-Type: {answer.error_type}\r\n"
                f"Lambda-Runtime-Function-Error-Body: {encoded}\r\n"
            ).encode()
        self._writer.write(b"0\r\n" + trailers + b"\r\n")
        await self._writer.drain()
        return await self._read(fc, path)

    async def _read(self, fc: FakeContainer, path: str) -> tuple[int, dict[str, str], bytes]:
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        received: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                received[name.strip().lower()] = value.strip()
        length = int(received.get("content-length", "0"))
        answer = await self._reader.readexactly(length) if length else b""
        if not 200 <= status < 300:
            fc.refused.append((path, status))
        return status, received, answer


def _loopback(n: int) -> str:
    return f"127.0.{n // 256}.{n % 256}"


def _matches(container: Container, labels: Mapping[str, str]) -> bool:
    return all(container.labels.get(k) == v for k, v in labels.items())


class RecordingBackend:
    """Any backend, with the names of the methods called on it recorded in ``calls`` (as
    ``FakeBackend`` records its own), so one test can count a real engine's calls too."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name.startswith("_") or not callable(attr):
            return attr
        if inspect.iscoroutinefunction(attr):

            async def recorded_coroutine(*args: Any, **kwargs: Any) -> Any:
                self._record(name)
                return await attr(*args, **kwargs)

            return recorded_coroutine

        def recorded(*args: Any, **kwargs: Any) -> Any:
            self._record(name)
            return attr(*args, **kwargs)

        return recorded

    def _record(self, name: str) -> None:
        with self._lock:
            self.calls.append(name)


# Helpers for tests that run a whole service on the fake


async def eventually(
    predicate: Callable[[], object], timeout: float = 2.0, what: str = "condition"
) -> None:
    """Wait until ``predicate()`` is true, polling; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


@dataclass
class Served:
    """A service on a fake backend, with what a test needs to look at."""

    backend: FakeBackend
    service: Service
    invoker: Invoker
    owner: str


@contextlib.asynccontextmanager
async def fake_service(
    manifest_path: Path,
    handlers: Mapping[str, Handler],
    host_limit: int = 10,
    idle_ttl: float = 300.0,
    networks: Sequence[str] = (NETWORK_PUBLIC,),
    on_log: Callable[[str, InvocationResult], None] | None = None,
    holders: HolderSettings | None = None,
    **options: Any,
) -> AsyncIterator[Served]:
    """``Service`` over ``hosted_invoker`` over a ``FakeBackend``, torn down completely after.

    One network by default: the fake puts every network's gateway at 127.0.0.1, and one Runtime
    API on that address serves containers of both network modes.
    """
    backend = FakeBackend(handlers, loop=asyncio.get_running_loop(), **options)
    owner = f"unit-{secrets.token_hex(4)}"
    try:
        async with hosted_invoker(backend, owner, networks, holders=holders) as invoker:
            settings = ServiceSettings(idle_ttl, 0.05)
            service = Service(backend, invoker, Pool(host_limit), settings, on_log=on_log)
            service.load(manifest.load(manifest_path))
            try:
                yield Served(backend, service, invoker, owner)
            finally:
                await service.close(grace=1.0)
    finally:
        await backend.aclose()
