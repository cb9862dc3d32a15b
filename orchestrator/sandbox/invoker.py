"""One invocation end to end: start or take an environment, deliver, wait, report, release.

The invoker owns the live environments of one process and the thread that hears about
containers dying. Blocking engine calls run in the default thread pool, never on the loop.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator import trace
from orchestrator.errors import LrunError
from orchestrator.manifest import FunctionSpec
from orchestrator.sandbox import pipe as output_pipe
from orchestrator.sandbox.backend import LABEL_OWNER, Backend, Container, ContainerExit
from orchestrator.sandbox.container import (
    Placement,
    bootstrap_file,
    container_spec,
    host_cores,
    network_name,
    runtime_bootstrap,
    with_output_pipe,
)
from orchestrator.sandbox.engine import Demux, runtime_api_name
from orchestrator.sandbox.environment import (
    Delivery,
    Environment,
    Outcome,
    open_pipe,
    pump_output,
)
from orchestrator.sandbox.holders import NetworkHolders
from orchestrator.sandbox.invocation import (
    UNHANDLED,
    InvocationResult,
    InvokeRequest,
    LogParts,
    PlatformError,
    Report,
    Span,
    end_line,
    invalid_entrypoint,
    json_status,
    report_figures,
    start_line,
    timed_out,
    trace_header,
)
from orchestrator.sandbox.log_records import done_records, start_record
from orchestrator.sandbox.output import Capture, Spill
from orchestrator.sandbox.ownership import identify
from orchestrator.sandbox.response_stream import ResponseStream
from orchestrator.sandbox.runtime_api import RuntimeApi

log = logging.getLogger(__name__)

ON_DEMAND_INIT_LIMIT_S = 10.0
# After a container dies, how long its remaining output may take to arrive.
_OUTPUT_DRAIN_S = 2.0
# How long a retired runtime has to exit by itself before it is killed.
_SELF_EXIT_S = 0.25
_QUIET_S = 0.01
_SETTLE_LIMIT_S = 1.0
# A container the engine failed to kill is tried again, less often each time, up to this.
_KILL_RETRY_MAX_S = 30.0
MB = 1024 * 1024


@dataclass(frozen=True)
class InvokerSettings:
    owner: str  # LABEL_OWNER of every container this invoker starts
    runtime_api_port: int
    image_for: Callable[[FunctionSpec], str]
    # Where environments' output pipes are made (sandbox.pipe); None: output comes through
    # the engine's stream only, and is given to invocations by timing.
    pipes: Path | None = None
    demux: Demux = Demux.PEER  # how the Runtime API tells environments apart (engine.py)


def new_owner(kind: str) -> str:
    return f"{kind}-{os.getpid()}-{secrets.token_hex(4)}"


class Invoker:
    def __init__(self, backend: Backend, api: RuntimeApi, settings: InvokerSettings) -> None:
        self._backend = backend
        self._api = api
        self._settings = settings
        self._by_container: dict[str, Environment] = {}
        self._cores = host_cores()
        self._identity = identify(settings.owner)
        self._watching = False
        self._pumps: set[asyncio.Task[None]] = set()
        self._spawned_kills: set[asyncio.Future[bool]] = set()
        # Exits heard before the container's start returned: a runtime can die that fast.
        self._early_exits: dict[str, ContainerExit] = {}
        self.spill: Spill | None = None  # where output beyond what is kept is written
        # Containers the engine failed to kill: kept, and killed again until they are gone.
        self.unkilled: dict[str, Environment | None] = {}
        self._killer: asyncio.Task[None] | None = None
        self._engine_failed = False  # a start or kill failed: sweep by label at close
        self._pipes: list[output_pipe.OutputPipe] = []
        # Network holders made ahead (holders.py), when this process keeps them; the one each
        # environment joined, by the environment's container id, goes when it goes.
        self.holders: NetworkHolders | None = None
        self._holder_of: dict[str, Container] = {}
        self._doors: dict[str, str] = {}  # container id: its own listener's key (listener mode)
        if settings.pipes is not None:
            output_pipe.sweep(settings.pipes)

    # Environments

    @property
    def runtime_api(self) -> RuntimeApi:
        """The Runtime API its environments call (where functions reach lrun at all)."""
        return self._api

    def _watch_exits(self) -> None:
        if self._watching:
            return
        self._watching = True
        loop = asyncio.get_running_loop()

        def on_exit(exit: ContainerExit) -> None:
            loop.call_soon_threadsafe(self._container_died, exit)

        def watch() -> None:
            try:
                self._backend.watch_exits({LABEL_OWNER: self._settings.owner}, on_exit)
            except Exception:  # the loop may be gone at shutdown; nothing is waiting then
                log.debug("exit watcher stopped", exc_info=True)

        threading.Thread(target=watch, name="lrun-exits", daemon=True).start()

    def expect(self, specs: Iterable[FunctionSpec]) -> None:
        """These functions may be invoked: network holders are kept on the networks they use
        (those of runtime images: a function's own image may have no /bin/sleep)."""
        if self.holders is None:
            return
        images: dict[str, str] = {}
        for spec in specs:
            if spec.image is None and spec.runtime is not None:
                images.setdefault(network_name(spec), self._settings.image_for(spec))
        self.holders.expect(images)

    def _container_died(self, exit: ContainerExit) -> None:
        self.unkilled.pop(exit.id, None)
        if self.holders is not None and self.holders.owns(exit.id):
            self.holders.lost(exit.id)
            self._holder_died(exit.id)
            return
        self._release_holder(exit.id)
        env = self._by_container.pop(exit.id, None)
        if env is None:
            self._early_exits[exit.id] = exit
            while len(self._early_exits) > 256:
                self._early_exits.pop(next(iter(self._early_exits)))
            return
        if env.container is not None:
            key = self._key(env)
            self._api.unregister(key, env)
            if self._doors.pop(exit.id, None) is not None:
                self._api.close_connections(key)  # its listener goes with it
        self._backend.forget(exit.id)
        env.died(exit)

    def _holder_died(self, holder_id: str) -> None:
        """A holder ended under its environment: the environment has lost its network, and
        with it the Runtime API, so it is stopped (and replaced on demand)."""
        for env_id, holder in list(self._holder_of.items()):
            if holder.id == holder_id:
                del self._holder_of[env_id]
                env = self._by_container.get(env_id)
                if env is not None:
                    self._spawned_kills.add(asyncio.ensure_future(self._stop_stranded(env)))

    async def _stop_stranded(self, env: Environment) -> bool:
        await self.stop_environment(env)
        return True

    def _release_holder(self, container_id: str) -> None:
        holder = self._holder_of.pop(container_id, None)
        if holder is not None and self.holders is not None:
            self.holders.release(holder)

    async def start_environment(
        self, spec: FunctionSpec, initialization_type: str = "on-demand", version: str = "$LATEST"
    ) -> Environment:
        """Start an environment of ``version`` of the function ``spec`` describes."""
        self._watch_exits()
        network = await asyncio.to_thread(
            self._backend.network, network_name(spec), spec.network == "private"
        )
        runtime_api = f"{network.gateway}:{self._settings.runtime_api_port}"
        door = None
        if self._settings.demux is Demux.LISTENER:
            door = runtime_api_name()  # its listener's key, and the host name it answers to
            port = await self._api.open_door(door, network.listen_address, door)
            runtime_api = f"{door}:{port}"
        placement = Placement(
            owner=self._settings.owner,
            runtime_api=runtime_api,
            image=self._settings.image_for(spec),
            host_cores=self._cores,
            owner_host=self._identity.host,
            owner_started=self._identity.started,
        )
        cspec = container_spec(spec, placement, initialization_type, version=version)
        if door is not None:
            cspec = replace(cspec, extra_hosts=((door, network.gateway),))
        if network.mode:
            cspec = replace(cspec, network=network.mode)
        holder = None
        if self.holders is not None and spec.image is None and door is None:
            holder = self.holders.take(cspec.network)
            if holder is not None:
                cspec = replace(cspec, holder=holder)
        env = Environment(
            provisioned=initialization_type == "provisioned-concurrency",
            id=cspec.environment["AWS_LAMBDA_LOG_STREAM_NAME"][-32:],
            log_stream=cspec.environment["AWS_LAMBDA_LOG_STREAM_NAME"],
            function=spec.name,
            memory_mb=spec.memory,
            spill=self.spill,
        )
        if self.spill is not None:
            env.init_output = Capture(f"{env.function}-{env.id}-init", self.spill)
        bootstrap = runtime_bootstrap(spec)
        pipe = None
        if bootstrap is not None and self._settings.pipes is not None:
            self._pipes = [p for p in self._pipes if not p.closed]
            try:
                pipe = open_pipe(env, self._settings.pipes)
            except OSError as exc:
                log.warning(
                    "no output pipe in %s (%s): output is read from the engine's stream, and "
                    "the end of a large output can land in the next invocation's log",
                    self._settings.pipes,
                    exc,
                )
            else:
                self._pipes.append(pipe)
                cspec = with_output_pipe(cspec, bootstrap, pipe.path, output_pipe.TARGET)
        starting = asyncio.ensure_future(asyncio.to_thread(self._backend.run, cspec))
        try:
            container = await asyncio.shield(starting)
        except asyncio.CancelledError:
            # The engine call cannot be taken back: remove what it starts once it returns.
            starting.add_done_callback(self._discard_started)
            self._abandon(pipe, holder, door)
            raise
        except Exception:
            self._engine_failed = True  # it may have created a container before failing
            self._abandon(pipe, holder, door)
            raise
        if holder is not None:
            self._holder_of[container.id] = holder
        if door is not None:
            self._doors[container.id] = door
        if pipe is not None:
            pipe.unlink()  # mounted in the container now: its name is needed no more
            pipe.start()
        env.container = container
        env.started_at = container.started_at
        if cspec.init_nano_cpus not in (None, cspec.nano_cpus):
            env.on_init_end = functools.partial(self._end_init, container.id, cspec.nano_cpus)
        self._by_container[container.id] = env
        self._api.register(door or container.ip, env)
        try:
            stream = await self._backend.open_output(container)
        except BaseException:
            await self.stop_environment(env)  # its output unreadable: it goes, and is tracked
            raise
        env.open_source()
        pump = asyncio.get_running_loop().create_task(pump_output(env, stream))
        self._pumps.add(pump)
        pump.add_done_callback(self._pumps.discard)
        early = self._early_exits.pop(container.id, None)
        if early is not None:
            self._container_died(early)
        return env

    def _abandon(
        self, pipe: output_pipe.OutputPipe | None, holder: Container | None, door: str | None
    ) -> None:
        """Undo what was made for an environment whose container did not start."""
        if pipe is not None:
            pipe.close()
        if holder is not None and self.holders is not None:
            self.holders.release(holder)
        if door is not None:
            self._api.close_connections(door)

    def start_figures(self, env: Environment) -> str:
        """Where the start of ``env``'s container went, from lrun's own clock: the engine's
        create and start, and whether its network was made ahead (a holder)."""
        c = env.container
        if c is None or not c.requested_at:
            return ""
        network = "network held ahead" if c.id in self._holder_of else "network made now"
        return (
            f" (engine create {(c.created_at - c.requested_at) * 1000:.0f} ms, "
            f"start {(c.started_at - c.created_at) * 1000:.0f} ms; {network})"
        )

    def _key(self, env: Environment) -> str:
        """What the Runtime API knows ``env`` by: its listener's key, or its address."""
        assert env.container is not None
        return self._doors.get(env.container.id, env.container.ip)

    async def _end_init(self, container_id: str, nano_cpus: int) -> None:
        """The init phase is over: from now on the memory's share of a vCPU (container.py)."""
        try:
            await asyncio.to_thread(self._backend.limit_cpu, container_id, nano_cpus)
        except LrunError:  # the container is gone, or the engine is: its end is reported anyway
            log.debug("CPU limit of %s not set", container_id, exc_info=True)
        trace.mark("init CPU boost ended")

    def _discard_started(self, starting: asyncio.Future[Container]) -> None:
        if not starting.cancelled() and starting.exception() is None:
            container = starting.result()
            self._spawned_kills.add(asyncio.ensure_future(self._kill(container.id, None)))

    async def _kill(self, container_id: str, env: Environment | None) -> bool:
        """Kill a container; if the engine fails, keep it to kill again later. Never raises:
        a container lrun no longer tracks would run (and cost) until someone noticed."""
        try:
            await asyncio.to_thread(self._backend.kill, container_id)
        except Exception as exc:
            log.warning("could not kill container %s (tried again later): %s", container_id, exc)
            self.unkilled[container_id] = env
            self._engine_failed = True
            if self._killer is None:
                self._killer = asyncio.ensure_future(self._kill_again())
            return False
        self.unkilled.pop(container_id, None)
        return True

    async def _kill_again(self) -> None:
        wait = 0.5
        try:
            while self.unkilled:
                await asyncio.sleep(wait)
                wait = min(wait * 2, _KILL_RETRY_MAX_S)
                for cid, env in list(self.unkilled.items()):
                    if await self._kill(cid, env):
                        wait = 0.5
        finally:
            self._killer = None

    async def close(self) -> None:
        """Stop reading every environment's output; environments themselves are left as are,
        except containers the engine failed to kill: those are killed now, found by label."""
        for pump in list(self._pumps):
            pump.cancel()
        for pipe in self._pipes:
            pipe.close()
        await asyncio.gather(*self._pumps, *self._spawned_kills, return_exceptions=True)
        if self._killer is not None:
            self._killer.cancel()
        if self.holders is not None:
            await self.holders.close()
        if self.unkilled or self._engine_failed:
            await self._kill_by_label()
        await asyncio.sleep(0)  # let the streams' transports finish closing their sockets

    async def _kill_by_label(self) -> None:
        """Remove every container of this invoker's owner label: after an engine failure, one
        may exist that lrun never learnt the id of (started, then the call failed)."""
        try:
            listed = await asyncio.to_thread(
                self._backend.containers, {LABEL_OWNER: self._settings.owner}
            )
        except Exception as exc:
            log.warning("could not list containers to remove: %s", exc)
            listed = []
        for cid in {c.id for c in listed} | set(self.unkilled):
            try:
                await asyncio.to_thread(self._backend.remove, cid)
            except Exception as exc:
                log.warning("container %s is left behind: %s", cid[:12], exc)
            else:
                self.unkilled.pop(cid, None)

    async def stop_environment(self, env: Environment) -> None:
        if env.container is None or env.stopping:
            return
        env.stopping = True
        key = self._key(env)
        self._api.unregister(key, env)
        # Killed first: a runtime whose connections closed first would exit by itself, racing
        # the kill for how the environment ended.
        await self._kill(env.container.id, env)
        self._api.close_connections(key)
        self._doors.pop(env.container.id, None)
        self._release_holder(env.container.id)  # its address is free once the holder is gone

    # Invocations

    async def invoke_once(self, spec: FunctionSpec, request: InvokeRequest) -> InvocationResult:
        """A one-shot invocation: a new environment, the invocation, then the environment gone."""
        request = request.with_request_id()
        problem = _entrypoint_problem(spec, request.request_id)
        if problem is not None:
            return _platform_failure(spec, request, problem)
        env = await self.start_environment(spec)
        try:
            return await self.run_on(env, spec, request, last=True)
        finally:
            if not env.retiring:  # else it is ending, and removes itself
                await self.stop_environment(env)

    async def run_on(
        self,
        env: Environment,
        spec: FunctionSpec,
        request: InvokeRequest,
        last: bool = False,
        on_answer: Callable[[Outcome], None] | None = None,
        settle: bool = True,
        on_stream: Callable[[ResponseStream], None] | None = None,
    ) -> InvocationResult:
        """Run one invocation on ``env``, waiting for its init first if it is new.

        ``on_answer`` hears the outcome the moment it is known, so a caller can answer its
        client first. ``settle`` waits until the invocation's output has all arrived, so the
        result's log is complete when it is returned; without it, the log fills in until the
        environment's next invocation (good enough for a log read later). ``last`` ends the
        environment afterwards. ``on_stream`` hears of an answer the runtime streams, to read
        it as it comes (else it is kept whole, as a buffered one).
        """
        loop = asyncio.get_running_loop()
        cold = env.invocations == 0 and not env.provisioned
        if not env.ready.is_set():
            try:
                await asyncio.wait_for(env.ready.wait(), ON_DEMAND_INIT_LIMIT_S)
            except TimeoutError:
                pass  # delivered anyway: the invocation's own deadline ends it
        trace.mark("runtime ready")
        init_output = env.init_output.bytes() if cold else b""
        outcome_future: asyncio.Future[Outcome] = loop.create_future()
        now = time.time()
        deadline_ms = int(now * 1000) + spec.timeout * 1000
        trace_id = request.trace_id or trace_header(now)
        delivery = Delivery(request, deadline_ms, outcome_future, trace_id, on_stream=on_stream)
        handed_at = time.monotonic()
        env.deliver(delivery)
        # The deadline settles the outcome itself (a timer, not ``wait_for``, which costs a task
        # and two futures on every warm invocation); an answer after it changes nothing.
        deadline = loop.call_later(
            spec.timeout, _time_out, outcome_future, request.request_id, spec.timeout
        )
        try:
            outcome: Outcome = await outcome_future
        finally:
            deadline.cancel()
        trace.mark("answered")
        # Durations use the monotonic clock itself: an event loop's clock may tick in whole
        # milliseconds (uvloop's does), too coarse for Lambda's two-decimal figures.
        duration_ms = (time.monotonic() - (delivery.delivered_at or handed_at)) * 1000
        timed_out_now = isinstance(outcome, PlatformError) and outcome.report_status == "timeout"
        if timed_out_now:
            memory_peak = self._memory_peak(env)  # before its cgroup goes
            if delivery.stream is not None:  # its reader learns why it ended
                assert isinstance(outcome, PlatformError)
                delivery.stream.end(outcome.error_type, outcome.payload())
            await self.stop_environment(env)  # at the deadline, as Lambda does
        if on_answer is not None:
            on_answer(outcome)
        if not timed_out_now:
            memory_peak = self._memory_peak(env)  # after the answer: not on the caller's path
        if timed_out_now:
            await _output_end(env)
        elif last:
            await self._retire(env, delivery)
        elif settle:
            await env.settle_output(delivery, _QUIET_S, _SETTLE_LIMIT_S)
        trace.mark("output drained")
        first_byte = None if delivery.stream is None else _first_byte_ms(delivery)
        figures = _Figures(cold, duration_ms, memory_peak, Span(now, time.time()), first_byte)
        return _result(
            spec, request, outcome, env, figures, init_output, delivery.output, delivery.trace_id
        )

    def _memory_peak(self, env: Environment) -> int | None:
        if env.container is not None and env.exited is None and not env.stopping:
            return self._backend.memory_peak(env.container.id)  # a cgroup file read
        if env.exited is not None:
            return env.exited.memory_peak  # read by the engine before its cgroup went
        return None

    async def settle_log(self, env: Environment) -> None:
        """Wait until the output of ``env``'s last invocation has arrived, as ``run_on``'s
        ``settle`` does, for an invocation run without it (its caller was answered first)."""
        delivery = env.last_delivery
        if delivery is not None and not delivery.output_closed:  # closed: complete already
            await env.settle_output(delivery, _QUIET_S, _SETTLE_LIMIT_S)

    async def _retire(self, env: Environment, delivery: Delivery) -> None:
        """Gather the invocation's output, then tell the runtime to exit.

        The container then ends and removes itself (auto-removal), so nothing waits for the
        engine's tear-down. A runtime that does not come back for more work in time is killed.
        """
        if await env.settle_output(delivery, _QUIET_S, _SELF_EXIT_S):
            env.retire()
        else:
            await self.stop_environment(env)
            await _output_end(env)


@dataclass(frozen=True)
class _Figures:
    cold: bool
    duration_ms: float
    memory_peak: int | None
    when: Span
    first_byte_ms: float | None = None  # streamed answers: from delivery to their first byte


def _first_byte_ms(delivery: Delivery) -> float | None:
    stream = delivery.stream
    if stream is None or stream.first_byte_at is None or delivery.delivered_at is None:
        return None
    return (stream.first_byte_at - delivery.delivered_at) * 1000


def _time_out(outcome: asyncio.Future[Outcome], request_id: str, timeout_s: float) -> None:
    if not outcome.done():
        outcome.set_result(timed_out(request_id, timeout_s))


async def _output_end(env: Environment) -> None:
    """Wait until a stopped environment's output has ended."""
    try:
        await asyncio.wait_for(env.output_done.wait(), _OUTPUT_DRAIN_S)
    except TimeoutError:
        log.debug("output of environment %s did not end in time", env.id)


def _entrypoint_problem(spec: FunctionSpec, request_id: str) -> PlatformError | None:
    """A `provided` function whose bootstrap cannot run fails as Lambda fails it, at invoke."""
    if spec.runtime != "provided" or spec.code is None:
        return None
    found = bootstrap_file(spec)
    if found is None:
        return invalid_entrypoint(
            request_id, "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
        )
    bootstrap, inside = found
    if not os.access(bootstrap, os.X_OK):
        return invalid_entrypoint(
            request_id,
            f"fork/exec {inside}: permission denied (make it executable: chmod +x {bootstrap})",
        )
    return None


def _platform_failure(
    spec: FunctionSpec, request: InvokeRequest, error: PlatformError
) -> InvocationResult:
    report = Report(request.request_id, 0.0, spec.memory, 0, None, "error", error.error_type)
    if spec.logging.json:
        now = time.time()
        log_text = start_record(spec.logging, now, request.request_id, request.version)
        log_text += done_records(spec.logging, now, report_figures(report, 0), "error")
    else:
        log_text = (
            "\n".join(
                [
                    start_line(request.request_id, request.version),
                    f"{error.message}\n{error.error_type}",
                    end_line(request.request_id),
                    report.line(),
                ]
            )
            + "\n"
        )
    return InvocationResult(
        request.request_id, error.payload(), UNHANDLED, request.version, log_text, report
    )


def _result(
    spec: FunctionSpec,
    request: InvokeRequest,
    outcome: Outcome,
    env: Environment,
    figures: _Figures,
    init_output: bytes,
    output: Capture,
    trace_id: str = "",
) -> InvocationResult:
    status: str | None = None
    error_type: str | None = None
    function_error: str | None = UNHANDLED
    platform_log = ""
    memory_peak = figures.memory_peak
    content_type = "application/json"
    if isinstance(outcome, PlatformError):
        payload = outcome.payload()
        status = outcome.report_status
        if status == "timeout":
            stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            platform_log = (
                f"{stamp[:-4]}Z {request.request_id} "
                f"Task timed out after {spec.timeout:.2f} seconds\n"
            )
        else:
            error_type = outcome.error_type
            platform_log = f"{outcome.message}\n{outcome.error_type}\n"
        if env.exited is not None and env.exited.oom_killed:
            memory_peak = spec.memory * MB
    else:
        payload, content_type = outcome.body, outcome.content_type
        function_error = UNHANDLED if outcome.error_type is not None else None
    report = Report(
        request.request_id,
        figures.duration_ms,
        spec.memory,
        min(spec.memory, -(-(memory_peak or 0) // MB)),
        env.init_duration_ms if figures.cold else None,
        status,
        error_type,
        figures.first_byte_ms,
    )
    parts = LogParts(
        init_output,
        output,
        platform_log,
        spec.logging,
        figures.when,
        json_status(report, function_error),
        len(payload),
    )
    return InvocationResult(
        request.request_id,
        payload,
        function_error,
        request.version,
        parts,
        report,
        content_type,
        trace_id,
    )
