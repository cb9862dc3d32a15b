"""A live execution environment: one container, one invocation at a time (DESIGN D1).

The environment is the meeting point of three parties, all on the event loop: the invoker hands
it an invocation, the runtime inside the container fetches it and answers through the Runtime API,
and the container engine says when the container died. Whatever comes first settles the
invocation's outcome.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.sandbox.backend import Container, ContainerExit, OutputStream
from orchestrator.sandbox.invocation import InvokeRequest, PlatformError, runtime_exited
from orchestrator.sandbox.output import Capture, Spill
from orchestrator.sandbox.pipe import OutputPipe
from orchestrator.sandbox.response_stream import ResponseStream

# Output waiting to be written beyond which the container's output is read no faster than the
# disk takes it: the runtime's writes block, as a full pipe would block them.
SPILL_BACKLOG = 8 * 1024 * 1024
# After a container died, how long the end of its output pipe may take (its processes' exit).
OUTPUT_END_S = 2.0


class Retired(Exception):
    """The environment takes no more work: its runtime is told to exit (a 500 on /next)."""


class State(enum.Enum):
    STARTING = "initialising"
    IDLE = "idle"
    BUSY = "busy"
    DEAD = "dead"


@dataclass(frozen=True)
class Answer:
    """What the runtime posted for an invocation: its response or its error."""

    body: bytes
    error_type: str | None = None  # set for /error and /init/error
    content_type: str = "application/json"
    stream: ResponseStream | None = None  # the answer was streamed (its body: what was kept)


Outcome = Answer | PlatformError


@dataclass
class Delivery:
    """An invocation handed to an environment, and the outcome it is waiting for."""

    request: InvokeRequest
    deadline_ms: int
    outcome: asyncio.Future[Outcome]
    trace_id: str = ""  # the caller's X-Ray trace header, or one made for this invocation
    delivered_at: float | None = None  # time.monotonic() when the runtime received it
    # The container's output from this hand-over until the next one: the invocation's log.
    output: Capture = field(default_factory=Capture)
    superseded: bool = False  # a later invocation was handed to the same environment
    # Its output is complete: its runtime asked for the next event (or ended) and everything
    # it wrote before is in ``output`` (environments with an output pipe only).
    output_closed: bool = False
    # Told when the runtime starts streaming its answer, to read it as it comes; without it
    # a streamed answer is kept whole, as for a buffered one.
    on_stream: Callable[[ResponseStream], None] | None = None
    stream: ResponseStream | None = None  # the answer the runtime is streaming


@dataclass
class Environment:
    """One container's runtime as lrun sees it, from its start to its death.

    Used on the event loop only. The invoker makes it once the engine has started the container
    and ``deliver``s invocations to it, one at a time; the Runtime API hands them to the runtime
    (``next_invocation``) and settles them (``answer``, ``fail_init``); the engine's exit event
    ends it (``died``). Its owner reuses it only after ``came_back``: its runtime waits for work.
    """

    id: str
    function: str
    memory_mb: int
    container: Container | None = None
    log_stream: str = ""  # its AWS_LAMBDA_LOG_STREAM_NAME: where its logs are kept
    state: State = State.STARTING
    started_at: float = 0.0  # time.monotonic() when the container was started
    init_duration_ms: float | None = None  # set when the runtime first asks for work
    invocations: int = 0
    provisioned: bool = False  # initialised ahead of traffic: no invocation pays for its init
    stopping: bool = False
    retiring: bool = False
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    exited: ContainerExit | None = None
    init_error: Answer | None = None
    current: Delivery | None = None
    _waiting_runtime: asyncio.Future[Delivery] | None = None
    _queued: Delivery | None = None
    spill: Spill | None = None  # where output beyond what is kept in memory is written
    init_output: Capture = field(default_factory=Capture)  # output before the first hand-over
    _sink: Capture | None = None
    _last: Delivery | None = None
    output_done: asyncio.Event = field(default_factory=asyncio.Event)
    on_death: Callable[[], None] | None = None
    on_init_end: Callable[[], Awaitable[None]] | None = None  # run once, at the first /next
    waiting_for_work: bool = False  # the runtime is parked on /next
    _last_output: float = 0.0  # loop time of the last chunk of output
    # The runtime's output pipe (lrun's runtime images): output is then given to invocations
    # exactly, at the runtime's /next, instead of after a quiet spell on the engine's stream.
    pipe: OutputPipe | None = None
    _open: Delivery | None = None  # the invocation whose output is being taken (pipe only)
    _between: Capture | None = None  # output since the last /next, for the next invocation
    _sources: int = 0  # output sources not yet ended (the engine's stream, the pipe)
    _settlers: list[asyncio.Future[bool]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None  # see _event_loop

    # The invoker's side

    def deliver(self, delivery: Delivery) -> None:
        """Hand an invocation over; the runtime gets it now or on its next ``/next``."""
        self.state = State.BUSY
        self.invocations += 1
        self.current = delivery
        if self._last is not None:
            self._last.superseded = True
            self._wake_settlers()
        self._last = delivery
        if self.pipe is None:
            if self.spill is not None:
                name = f"{self.function}-{delivery.request.request_id}"
                delivery.output = Capture(name, self.spill)
            self._sink = delivery.output
        waiting = self._waiting_runtime
        if self.init_error is not None:  # the real reason, even once the runtime has exited
            self.current = None
            delivery.outcome.set_result(self.init_error)
        elif self.exited is not None:
            self.current = None
            delivery.outcome.set_result(self._exit_error(delivery))
        elif waiting is not None and not waiting.done():
            self._waiting_runtime = None
            self._take_output(delivery)
            waiting.set_result(delivery)
        else:
            self._queued = delivery

    @property
    def last_delivery(self) -> Delivery | None:
        """The invocation handed over last (its output keeps arriving until the next one)."""
        return self._last

    # The Runtime API's side

    def retire(self) -> None:
        """Take no more work; a runtime waiting for work, or asking next, is told to exit."""
        self.retiring = True
        if self._waiting_runtime is not None and not self._waiting_runtime.done():
            self._waiting_runtime.set_exception(Retired())

    async def next_invocation(self, now: float) -> Delivery:
        if self.pipe is not None:
            self._close_output()
        if self.retiring:
            raise Retired()
        if self.init_duration_ms is None:
            self.init_duration_ms = (now - self.started_at) * 1000
            end_init, self.on_init_end = self.on_init_end, None
            if end_init is not None:  # before any invocation is handed over (cold path only)
                await end_init()
                if self.retiring:
                    raise Retired()
        if self.state is State.STARTING or self.state is State.BUSY:
            self.state = State.IDLE if self._queued is None else State.BUSY
        self.ready.set()
        if self._queued is not None:
            delivery, self._queued = self._queued, None
            self._take_output(delivery)
            return delivery
        waiting: asyncio.Future[Delivery] = self._event_loop().create_future()
        self._waiting_runtime = waiting
        self.waiting_for_work = True
        self._wake_settlers()
        try:
            return await waiting
        finally:
            self.waiting_for_work = False
            if self._waiting_runtime is waiting:
                self._waiting_runtime = None

    def begin_stream(self, request_id: str, stream: ResponseStream) -> bool:
        """The runtime starts streaming its answer to the current invocation (settled later by
        ``answer``); False if ``request_id`` is not the one this environment is working on or
        it is answered already."""
        current = self.current
        if current is None or current.request.request_id != request_id:
            return False
        if current.stream is not None:
            return False
        current.stream = stream
        if current.on_stream is not None:
            current.on_stream(stream)
        return True

    def answer(self, request_id: str, answer: Answer) -> bool:
        """Settle the current invocation with the runtime's answer; False if ``request_id`` is
        not the one this environment is working on."""
        current = self.current
        if current is None or current.request.request_id != request_id:
            return False
        self.current = None
        if not current.outcome.done():
            current.outcome.set_result(answer)
        return True

    def fail_init(self, answer: Answer) -> None:
        if self.pipe is not None:
            self.pipe.drain()  # what init wrote before it failed is in its log
        self.init_error = answer
        for delivery in (self.current, self._queued):
            if delivery is not None and not delivery.outcome.done():
                delivery.outcome.set_result(answer)
        self.current = self._queued = None
        self.ready.set()

    # Output through the pipe

    def _close_output(self) -> None:
        """The runtime asks for its next event: what it wrote until now is in the pipe, and
        ends the output of its invocation (or of its init); what follows goes to the next."""
        assert self.pipe is not None
        self.pipe.drain()
        self.pipe.release()  # the runtime has the pipe open by now
        if self._open is not None:
            self._open.output_closed = True
            self._open = None
            self._wake_settlers()
        if self._between is None:
            name = f"{self.function}-{self.id}-{self.invocations}-idle"
            self._between = self._sink = Capture(name, self.spill)

    def _take_output(self, delivery: Delivery) -> None:
        """``delivery`` is handed to the runtime: its output starts with what was written since
        the runtime asked for it (a timer of the previous invocation, say), as on Lambda."""
        if self.pipe is None or self._between is None:
            return
        self._between.rename(f"{self.function}-{delivery.request.request_id}")
        delivery.output = self._between
        self._open = delivery
        self._between = None

    def open_source(self) -> None:
        """One more output source (the engine's stream, the pipe) that must end before the
        environment's output has."""
        self._sources += 1

    def source_ended(self) -> None:
        self._sources -= 1
        if self._sources > 0:
            return
        if self._open is not None:
            self._open.output_closed = True
            self._open = None
        self.output_done.set()
        self._wake_settlers()

    # The engine's side

    def record_output(self, chunk: bytes) -> None:
        (self.init_output if self._sink is None else self._sink).append(chunk)
        self._last_output = self._event_loop().time()

    def _wake_settlers(self) -> None:
        settlers, self._settlers = self._settlers, []
        for settler in settlers:
            if not settler.done():
                settler.set_result(True)

    async def settle_output(self, delivery: Delivery, quiet_s: float, limit_s: float) -> bool:
        """Wait until ``delivery``'s output is complete, as far as it can be known.

        A runtime's output travels through the engine apart from its Runtime API calls, so the
        last lines of an invocation can trail its answer. They are all written once the runtime
        asks for more work (or has exited); then a quiet spell of ``quiet_s`` lets them arrive.
        A new hand-over ends the wait: what comes after it belongs to the next invocation.
        False if the runtime neither came back nor exited within ``limit_s``.
        """
        if self.pipe is not None:
            return await self._output_closed(delivery, limit_s)
        loop = self._event_loop()
        if not (self.waiting_for_work or self.exited is not None or delivery.superseded):
            settler: asyncio.Future[bool] = loop.create_future()
            self._settlers.append(settler)
            timer = loop.call_later(limit_s, _resolve, settler, False)
            came_back = await settler
            timer.cancel()
            if not came_back:
                return False
        quiet_from = loop.time()
        while not (self.output_done.is_set() or delivery.superseded):
            wait = max(quiet_from, self._last_output) + quiet_s - loop.time()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        return True

    async def _output_closed(self, delivery: Delivery, limit_s: float) -> bool:
        """Wait until ``delivery``'s output is closed (pipe only): exact, nothing timed. False
        if its runtime neither asked for more work nor exited within ``limit_s``; once it has
        exited, its output ends when the pipe does, which may take up to ``OUTPUT_END_S``."""
        loop = self._event_loop()
        deadline = loop.time() + limit_s
        exited_at: float | None = None
        while not (delivery.output_closed or self.output_done.is_set()):
            if self.exited is not None and exited_at is None:
                exited_at = loop.time()
                deadline = exited_at + OUTPUT_END_S
            left = deadline - loop.time()
            if left <= 0:
                return exited_at is not None
            await self._settled_or(left)
        return True

    async def came_back(self, limit_s: float) -> bool:
        """Wait until the runtime asks for its next event (True) or the environment ends (False);
        False too if neither happens within ``limit_s``.

        Only a runtime parked on ``/next`` can take another invocation: one that has answered may
        still be running its function, or about to exit (awslambdaric exits after a refused,
        oversized response), and an invocation handed to it would be lost.
        """
        loop = self._event_loop()
        deadline = loop.time() + limit_s
        while not self.waiting_for_work:
            if self.exited is not None or self.stopping or self.retiring:
                return False
            left = deadline - loop.time()
            if left <= 0:
                return False
            await self._settled_or(left)
        return self.exited is None and not self.stopping

    async def _settled_or(self, seconds: float) -> None:
        """Until the next change a waiter cares about (output closed, /next, exit), or
        ``seconds`` pass."""
        loop = self._event_loop()
        settler: asyncio.Future[bool] = loop.create_future()
        self._settlers.append(settler)
        timer = loop.call_later(seconds, _resolve, settler, False)
        try:
            await settler
        finally:
            timer.cancel()

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The loop the environment lives on, asked for once: asyncio's ``get_running_loop``
        makes a system call (getpid) each time, several times per invocation here."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def died(self, exit: ContainerExit) -> None:
        self.exited = exit
        if self.pipe is not None:
            self.pipe.release()  # the pipe ends as soon as the container's writers are gone
        self.state = State.DEAD
        for delivery in (self.current, self._queued):
            if delivery is not None and not delivery.outcome.done():
                error = self._exit_error(delivery)
                delivery.outcome.set_result(error)
                if delivery.stream is not None:
                    delivery.stream.end(error.error_type, error.payload())
        self.current = self._queued = None
        if self._waiting_runtime is not None and not self._waiting_runtime.done():
            self._waiting_runtime.cancel()
        self.ready.set()
        self._wake_settlers()
        if self.on_death is not None:
            self.on_death()

    def _exit_error(self, delivery: Delivery) -> PlatformError:
        assert self.exited is not None
        return runtime_exited(
            delivery.request.request_id, self.exited.exit_code, self.exited.oom_killed
        )


def _resolve(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


async def pump_output(env: Environment, stream: OutputStream) -> None:
    """Copy a container's output into its environment's log until the container's output ends
    (``env.open_source`` is called for it before)."""
    try:
        while chunk := await stream.read():
            env.record_output(chunk)
            if env.spill is not None and env.spill.backlog() > SPILL_BACKLOG:
                await env.spill.drained()
    finally:
        stream.close()
        env.source_ended()


_resuming: set[asyncio.Task[None]] = set()


def open_pipe(env: Environment, directory: Path) -> OutputPipe:
    """Make ``env``'s output pipe in ``directory``, named by the environment's own id; it is
    read from ``pipe.start()`` on. When its spilled output waits for the disk, the pipe is read
    no faster than the disk takes it."""

    def on_output(chunk: bytes) -> None:
        env.record_output(chunk)
        spill = env.spill
        if spill is not None and pipe.reading and spill.backlog() > SPILL_BACKLOG:
            pipe.pause()
            task = asyncio.get_running_loop().create_task(_resume_after(spill, pipe))
            _resuming.add(task)
            task.add_done_callback(_resuming.discard)

    pipe = OutputPipe(directory, env.id, on_output, env.source_ended)
    env.pipe = pipe
    env.open_source()
    return pipe


async def _resume_after(spill: Spill, pipe: OutputPipe) -> None:
    await spill.drained()
    if not pipe.closed:
        pipe.resume()


def error_answer(body: bytes, error_type: str | None) -> Answer:
    """An error answer; the body is passed through as the runtime posted it, untouched."""
    if not body:
        body = json.dumps({"errorType": error_type or "Runtime.Unknown"}).encode()
    return Answer(body, error_type or "Runtime.Unknown")
