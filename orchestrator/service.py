"""What `lrun serve` runs: the manifest's functions, their warm pools, and their invocations.

The pool (pure) decides; this module does: it starts environments for the pool's ``Create``
decisions, keeps provisioned environments initialised, reaps idle ones, replaces dead ones, and
drains environments whose function's code or configuration changed. All of it on one event
loop; engine calls go to threads.

A function is served as versions: ``$LATEST`` (what its code and configuration are now) and the
versions published from it, each with environments of its own (an environment runs exactly one
version's code and configuration). Aliases name a version, or split invocations between two;
``route`` says which version an invocation runs. Provisioned concurrency is set on a version or
an alias and kept as environments of the version(s) it applies to.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.aws import function_arn
from orchestrator.errors import (
    BackendError,
    LambdaError,
    LrunError,
    ResourceNotFound,
    TooManyRequests,
)
from orchestrator.manifest import FunctionSpec, Manifest
from orchestrator.manifest.revision import code_digest, zipped_size
from orchestrator.pool import LATEST, Create, FunctionLimits, Kind, Pool, Reuse, Slot, Throttle
from orchestrator.sandbox.backend import Backend
from orchestrator.sandbox.environment import Environment, Outcome
from orchestrator.sandbox.invocation import InvocationResult, InvokeRequest
from orchestrator.sandbox.invoker import Invoker
from orchestrator.sandbox.response_stream import ResponseStream
from orchestrator.served import (
    MANIFEST_ALIAS,
    Alias,
    FunctionState,
    Provisioned,
    ProvisionedStatus,
    VersionState,
    pick,
)

log = logging.getLogger(__name__)

PROVISIONED_INIT_LIMIT_S = 130.0
PROVISION_RETRY_S = 30.0


@dataclass(frozen=True)
class ServiceSettings:
    idle_ttl: float = 300.0  # seconds an on-demand environment stays warm without work
    housekeeping_interval: float = 1.0
    # How long a new invocation waits for an environment that has answered to come back for
    # more work before it starts another. A runtime asks within milliseconds, slower on a busy
    # host; a cold start costs seconds.
    return_wait: float = 0.5


@dataclass(frozen=True)
class EnvironmentView:
    """One environment as `lrun ps` shows it."""

    id: str
    function: str
    state: str  # initialising | idle | busy | provisioned
    kind: str
    age_s: float
    invocations: int
    memory_used_mb: int | None
    memory_mb: int
    version: str = LATEST
    aliases: tuple[str, ...] = ()  # the function's aliases that send invocations to it


Listener = Callable[[str], None]


class Service:
    """The functions `lrun serve` serves, their environments, and every invocation of them.

    Made and used on one event loop only. ``load`` takes a manifest (again on a reload);
    ``invoke`` (or ``start``) runs invocations, each in a task the service owns from the moment
    it takes an environment until that environment is back in the pool or gone, so no caller
    can cut one short; ``run_housekeeping`` reaps and provisions in the background; ``close``
    lets owned invocations finish (up to a grace period), then stops every environment.
    """

    def __init__(
        self,
        backend: Backend,
        invoker: Invoker,
        pool: Pool,
        settings: ServiceSettings,
        on_event: Listener | None = None,
        on_log: Callable[[str, InvocationResult], None] | None = None,
    ) -> None:
        self._backend = backend
        self._invoker = invoker
        self.pool = pool
        self._settings = settings
        self._on_event = on_event or (lambda message: None)
        self._on_log = on_log or (lambda function, text: None)
        # Set by a server that keeps logs by group and stream: takes the place of ``on_log``.
        self.throttled: dict[tuple[str, str], int] = {}  # by (function, version), for metrics
        self.on_record: Callable[[str, InvocationResult, FunctionSpec, str], None] | None = None
        self.functions: dict[str, FunctionState] = {}
        self.manifest: Manifest | None = None
        # Functions created through the API: kept across manifest reloads (a name the manifest
        # also declares is the manifest's while it does).
        self.api_functions: set[str] = set()
        self._envs: dict[str, Environment] = {}
        self._starting: dict[str, asyncio.Task[Environment]] = {}
        self._background: set[asyncio.Task[object]] = set()
        self._closing = False
        self._owned: set[asyncio.Task[None]] = set()  # invocations, from delivery to release
        # By (function, version): answered, runtime not back yet; and one of them came back.
        self._returning: dict[tuple[str, str], int] = {}
        self._returned: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._credit: dict[tuple[str, str], int] = {}  # by (function, alias): see ``route``
        # Told the name of a function whose $LATEST changed (created, edited, reloaded).
        self.on_revision: Callable[[str], None] = lambda name: None

    # Functions

    def load(self, manifest: Manifest) -> None:
        """Take (or take again) the manifest's functions; out-of-date environments drain."""
        self.manifest = manifest
        fresh: dict[str, FunctionState] = {}
        changed: list[str] = []
        for name, spec in manifest.functions.items():
            old = self.functions.get(name)
            try:
                revision = f"{spec.config_digest()}-{code_digest(spec.code)}"
            except OSError as exc:
                if old is None:
                    raise LrunError(
                        f"cannot read the code of function {name!r} in {spec.code}: {exc}"
                    ) from exc
                self._on_event(f"{name}: cannot read its code ({exc}); keeping what runs")
                revision = old.revision
            if old is not None and old.revision == revision:
                fresh[name] = old
                continue
            if old is None or name in self.api_functions:
                state = FunctionState(VersionState(spec, revision), spec.reserved_concurrency)
                state.modified_at = time.time()
            else:
                # Its versions, aliases and settings changed through the API survive an edit,
                # unless the edit is to them.
                state = old
                before = old.spec
                state.latest = VersionState(spec, revision)
                state.modified_at = time.time()
                if spec.reserved_concurrency != before.reserved_concurrency:
                    state.reserved = spec.reserved_concurrency
                self._on_event(f"{name}: code or configuration changed; new environments")
            fresh[name] = state
            changed.append(name)
        for name in self.api_functions:
            if name in fresh:
                self._on_event(f"{name}: the manifest declares it; its API-created one is hidden")
            elif name in self.functions:
                fresh[name] = self.functions[name]
        self.functions = fresh
        self._configure()
        for name in changed:
            self.on_revision(name)

    def put_function(self, spec: FunctionSpec, revision: str) -> None:
        """Serve (or serve anew) a function created through the API; environments of its
        previous revision drain, so no invocation after this runs its old code."""
        old = self.functions.get(spec.name)
        if old is None or spec.name not in self.api_functions:
            self.functions[spec.name] = FunctionState(VersionState(spec, revision), None)
        else:
            old.latest = VersionState(spec, revision)
        self.functions[spec.name].modified_at = time.time()
        self.api_functions.add(spec.name)
        self._configure()
        self.on_revision(spec.name)

    def remove_function(self, name: str) -> None:
        """Stop serving an API-created function; its environments are stopped."""
        self.api_functions.discard(name)
        if self.functions.pop(name, None) is not None:
            self._configure()

    async def image_exists(self, name: str) -> bool:
        """Is the image ``name`` in the engine (asked in a thread)?"""
        return await asyncio.to_thread(self._backend.image, name) is not None

    async def image_id(self, name: str) -> str | None:
        """The id of the image ``name`` in the engine, if the engine says (asked in a thread)."""
        info = await asyncio.to_thread(self._backend.image, name)
        if info is None or not info.id:
            return None
        return info.id

    def from_manifest(self, name: str) -> bool:
        return self.manifest is not None and name in self.manifest.functions

    def scan_revisions(self, names: Iterable[str] | None = None) -> dict[str, str | OSError]:
        """Each function's revision as its files are now, or why they cannot be read (reads the
        disk: call it in a thread)."""
        found: dict[str, str | OSError] = {}
        for name in list(self.functions) if names is None else names:
            state = self.functions.get(name)
            if state is None or name in self.api_functions:  # their code is never edited
                continue
            try:
                found[name] = f"{state.spec.config_digest()}-{code_digest(state.spec.code)}"
            except OSError as exc:
                found[name] = exc
        return found

    def hold(self, names: Iterable[str]) -> None:
        """These functions' code was edited: their invocations wait until ``release``."""
        loop = asyncio.get_running_loop()
        for name in names:
            state = self.functions.get(name)
            if state is not None and state.changing is None:
                state.changing = loop.create_future()

    def release(self, names: Iterable[str]) -> None:
        for name in names:
            state = self.functions.get(name)
            if state is not None and state.changing is not None:
                if not state.changing.done():
                    state.changing.set_result(None)
                state.changing = None

    async def rescan(self, names: Iterable[str]) -> None:
        """Look at these functions' code again (in a thread); new environments where it
        changed. A walk that fails keeps the revision that runs: it is no edit."""
        self.apply_revisions(await asyncio.to_thread(self.scan_revisions, list(names)))

    def apply_revisions(self, revisions: Mapping[str, str | OSError]) -> bool:
        """Notice code edits under the functions' code directories; True if any changed. A
        function whose code could not be read keeps the revision that runs: that is no edit."""
        changed = False
        for name, revision in revisions.items():
            state = self.functions.get(name)
            if state is None:
                continue
            if isinstance(revision, OSError):
                self._on_event(f"{name}: cannot read its code ({revision}); keeping what runs")
            elif revision != state.revision:
                state.latest = VersionState(state.spec, revision)
                changed = True
                self._on_event(f"{state.spec.name}: code changed; new environments")
                self.on_revision(name)
        if changed:
            self._configure()
        return changed

    def _configure(self) -> None:
        limits = []
        for name, state in self.functions.items():
            counts: dict[str, int] = {}
            for qualifier, setting in state.provisioned.items():
                for version, count in state.shares(qualifier, setting.requested):
                    counts[version] = counts.get(version, 0) + count
            for version, served in state.versions():
                served.provisioned = counts.get(version, 0)
                limits.append(
                    FunctionLimits(
                        name, served.revision, state.reserved, served.provisioned, version
                    )
                )
        for slot_id in self.pool.configure(limits):
            self._stop(slot_id, "out of date")
        self._invoker.expect(
            served.spec for f in self.functions.values() for _, served in f.versions()
        )

    def function(self, name: str) -> FunctionState:
        state = self.functions.get(name)
        if state is None:
            raise ResourceNotFound(f"Function not found: {function_arn(name, '$LATEST')}")
        return state

    # Versions and aliases

    def put_version(self, name: str, version: str, spec: FunctionSpec, revision: str) -> None:
        """Serve a published version of ``name`` (its spec runs in environments of its own)."""
        self.function(name).published[version] = VersionState(spec, revision)
        self._configure()

    def remove_version(self, name: str, version: str) -> None:
        """Stop serving a published version; its environments are stopped."""
        state = self.function(name)
        if state.published.pop(version, None) is not None:
            state.provisioned.pop(version, None)
            self._configure()

    def put_alias(self, name: str, alias: str, target: Alias) -> None:
        """Point ``alias`` of ``name`` at a version (or two, weighted); its provisioned
        environments, if it has some, move with it."""
        state = self.function(name)
        state.aliases[alias] = target
        self._credit.pop((name, alias), None)
        self._configure()
        self.housekeeping()

    def remove_alias(self, name: str, alias: str) -> None:
        state = self.function(name)
        if state.aliases.pop(alias, None) is not None:
            state.provisioned.pop(alias, None)
            self._credit.pop((name, alias), None)
            self._configure()

    def trigger_qualifier(self, name: str) -> str | None:
        """What the manifest's own triggers of ``name`` (its queues, schedules, buckets) invoke:
        the alias lrun keeps for its ``provisioned_concurrency``, once there is one (as SAM's
        event sources invoke the AutoPublishAlias), else the function itself."""
        manifest = self.manifest
        if manifest is None or name in self.api_functions:
            return None
        spec = manifest.functions.get(name)
        state = self.functions.get(name)
        if spec is None or not spec.provisioned_concurrency or state is None:
            return None
        return MANIFEST_ALIAS if MANIFEST_ALIAS in state.aliases else None

    def route(self, name: str, qualifier: str | None) -> str:
        """The version an invocation of ``name:qualifier`` runs; AWS's "Function not found"
        naming what was asked for if there is none.

        An alias with a second version sends it exactly its weight's share (``served.pick``)."""
        state = self.functions.get(name)
        if state is None:
            raise _not_found(name, qualifier or LATEST)
        if qualifier is None or qualifier == LATEST:
            return LATEST
        if qualifier in state.published:
            return qualifier
        alias = state.aliases.get(qualifier)
        if alias is None:
            raise _not_found(name, qualifier)
        if not alias.weights:
            return alias.version
        key = (name, qualifier)
        version, self._credit[key] = pick(alias, self._credit.get(key, 0))
        return version

    async def code_size(self, state: FunctionState) -> int:
        """The function's ``CodeSize``: its code as a deflated zip, measured in a thread once
        per revision (never on an invocation's path). Image functions have none, as on AWS."""
        code = state.spec.code
        if code is None:
            return 0
        revision = state.revision
        if state.code_size is None or state.code_size[0] != revision:
            try:
                size = await asyncio.to_thread(zipped_size, code)
            except OSError as exc:
                self._on_event(f"{state.spec.name}: cannot measure its code: {exc}")
                return state.code_size[1] if state.code_size is not None else 0
            state.code_size = (revision, size)
        return state.code_size[1]

    def set_reserved(self, name: str, reserved: int | None) -> None:
        self.function(name).reserved = reserved
        self._configure()

    def set_provisioned(self, name: str, qualifier: str, provisioned: int) -> None:
        """Keep ``provisioned`` environments initialised for a version or an alias (0: none)."""
        state = self.function(name)
        if provisioned:
            state.provisioned[qualifier] = Provisioned(provisioned, time.time())
        else:
            state.provisioned.pop(qualifier, None)
        for _, served in state.versions():
            served.provision_failure = None
        self._configure()
        self.housekeeping()

    # Invocations

    async def invoke(
        self,
        name: str,
        request: InvokeRequest,
        on_answer: Callable[[Outcome], None] | None = None,
        settle: bool = True,
    ) -> InvocationResult:
        """Invoke ``name`` and wait for its result; ``settle`` as in ``Invoker.run_on``.

        Cancelling the caller abandons the wait, never the invocation (see ``start``).
        """
        await self.edits_seen(name)
        return await asyncio.shield(self.start(name, request, on_answer, settle))

    async def edits_seen(self, name: str) -> None:
        """Wait while an edit to the function's code is being looked at, so an invocation
        started after a save runs what it made (``start`` does not wait: call this first)."""
        state = self.function(name)
        if state.changing is not None:
            await asyncio.shield(state.changing)

    def start(
        self,
        name: str,
        request: InvokeRequest,
        on_answer: Callable[[Outcome], None] | None = None,
        settle: bool = True,
        on_stream: Callable[[ResponseStream], None] | None = None,
    ) -> asyncio.Future[InvocationResult]:
        """Take an environment for one invocation of ``name`` and run it in a task the service
        owns; the returned future has its result. Throttles and unknown functions raise here.

        Once taken, the invocation runs to its end whatever its caller does, as on Lambda: a
        client that disconnects does not stop it, and its environment goes back to the pool
        only when its runtime asks for the next event (or is replaced if it ends). So an
        abandoned invocation's environment is never handed to another while it is still busy,
        and its log and REPORT are recorded as any other's. ``close`` waits for these tasks.
        """
        state = self.function(name)
        version = request.version
        served = state.version(version)
        if served is None:
            raise _not_found(name, version)
        decision = self.pool.acquire(
            name, asyncio.get_running_loop().time(), secrets.token_hex(16), version
        )
        key = (name, version)
        if isinstance(decision, Throttle) and not self._returning.get(key):
            state.throttles += 1
            self.throttled[(name, version)] = self.throttled.get((name, version), 0) + 1
            raise TooManyRequests(decision.reason)
        result: asyncio.Future[InvocationResult] = asyncio.get_running_loop().create_future()
        # Retrieved here, so an abandoned caller's failure is not reported as never retrieved.
        result.add_done_callback(_retrieve)
        if isinstance(decision, Throttle):
            # Every environment it may have is busy, but one has answered and is on its way
            # back: a client that calls again as soon as it has its answer is not throttled.
            self._own(
                self._after_return(
                    key, state, served, request, result, on_answer, settle, on_stream
                )
            )
        else:
            self._own(
                self._run(decision, state, served, request, result, on_answer, settle, on_stream)
            )
        return result

    async def _after_return(
        self,
        key: tuple[str, str],
        state: FunctionState,
        served: VersionState,
        request: InvokeRequest,
        result: asyncio.Future[InvocationResult],
        on_answer: Callable[[Outcome], None] | None,
        settle: bool,
        on_stream: Callable[[ResponseStream], None] | None = None,
    ) -> None:
        """Run the invocation once an environment that has answered is back (within the
        return wait), or fail it with the throttle it would have had."""
        returned = self._returned.get(key)
        if returned is None:
            returned = self._returned[key] = asyncio.get_running_loop().create_future()
        await asyncio.wait({returned}, timeout=self._settings.return_wait)
        name, version = key
        decision = self.pool.acquire(
            name, asyncio.get_running_loop().time(), secrets.token_hex(16), version
        )
        if isinstance(decision, Throttle):
            state.throttles += 1
            _settle(result, TooManyRequests(decision.reason))
            return
        await self._run(decision, state, served, request, result, on_answer, settle, on_stream)

    async def _run(
        self,
        decision: Reuse | Create,
        state: FunctionState,
        served: VersionState,
        request: InvokeRequest,
        result: asyncio.Future[InvocationResult],
        on_answer: Callable[[Outcome], None] | None,
        settle: bool,
        on_stream: Callable[[ResponseStream], None] | None = None,
    ) -> None:
        """One invocation, owned by the service: its result goes to ``result``; then its
        environment goes back to the pool once the runtime asks for more work."""
        spec = served.spec
        key = (spec.name, request.version)
        slot_id = decision.id
        try:
            if isinstance(decision, Create):
                # Taken as new when all were busy; one may have come back since (this task
                # starts a turn of the loop later), or be on its way back.
                if self._returning.get(key):
                    decision = await self._reacquire(key, decision)
                else:
                    decision = self._acquire_again(key, decision)
                slot_id = decision.id
            if isinstance(decision, Reuse):
                env = self._envs[slot_id]
            else:
                env = await self._start(slot_id, spec, "on-demand", request.version)
                self._spawn(self._mark_started(slot_id, env))
        except BaseException as exc:
            self.pool.remove(slot_id)
            _settle(result, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return  # its caller is told
        try:
            done = await self._invoker.run_on(
                env, spec, request, on_answer=on_answer, settle=settle, on_stream=on_stream
            )
        except BaseException as exc:
            _settle(result, exc)
            self.pool.remove(slot_id)  # in no known state: never reused
            self._stop(slot_id, "its invocation failed")
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        state.invocations += 1
        state.errors += done.function_error is not None
        state.durations_ms.append(done.report.duration_ms)
        del state.durations_ms[:-1000]
        if not result.done():
            result.set_result(done)
        # The runtime has answered, but is not free until it asks for the next event: within
        # the function's timeout, or it is stopped.
        self._returning[key] = self._returning.get(key, 0) + 1
        try:
            if not await env.came_back(float(spec.timeout)) and env.exited is None:
                await self._invoker.stop_environment(env)
            self._end(slot_id, env)
        finally:
            self._returning[key] -= 1
            returned = self._returned.pop(key, None)
            if returned is not None and not returned.done():
                returned.set_result(None)
        # Kept for the log file once the runtime asked for its next event: its output is complete
        # by then (exactly so with an output pipe, sandbox.pipe; without one, an invocation
        # answered early waits for its trailing lines to settle).
        try:
            if not settle:
                await self._invoker.settle_log(env)
        finally:
            if self.on_record is not None:
                self.on_record(spec.name, done, spec, env.log_stream)
            else:
                self._on_log(spec.name, done)

    async def _reacquire(self, key: tuple[str, str], created: Create) -> Reuse | Create:
        """Before starting a new environment, wait a moment for one that has answered and is
        on its way back: a client that sends its next request as soon as it has its answer
        can get there before the runtime's ``/next``, and a cold start costs far more."""
        returned = self._returned.get(key)
        if returned is None:
            returned = self._returned[key] = asyncio.get_running_loop().create_future()
        await asyncio.wait({returned}, timeout=self._settings.return_wait)
        if not returned.done():
            return created
        return self._acquire_again(key, created)

    def _acquire_again(self, key: tuple[str, str], created: Create) -> Reuse | Create:
        """Give up a new slot and ask again (nothing else runs in between, so the counts hold):
        an environment that came back is idle now, unless another invocation took it first."""
        name, version = key
        self.pool.remove(created.id)
        decision = self.pool.acquire(name, asyncio.get_running_loop().time(), created.id, version)
        if isinstance(decision, Throttle):  # its concurrency was lowered meanwhile
            self.function(name).throttles += 1
            raise TooManyRequests(decision.reason)
        return decision

    def _end(self, slot_id: str, env: Environment) -> None:
        """An invocation's environment is free again, or ended: back to the pool, or away."""
        now = asyncio.get_running_loop().time()
        if env.exited is not None or env.stopping:
            self.pool.remove(slot_id)
            self._forget(slot_id)
        elif not self.pool.release(slot_id, now):
            self._stop(slot_id, "out of date")

    def _own(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # ensure_future's checks: not needed
        self._owned.add(task)
        task.add_done_callback(self._owned.discard)

    async def _start(
        self, slot_id: str, spec: FunctionSpec, init_type: str, version: str
    ) -> Environment:
        task = asyncio.ensure_future(self._invoker.start_environment(spec, init_type, version))
        self._starting[slot_id] = task
        try:
            env = await task
        except BackendError as exc:
            self._on_event(f"{spec.name}: could not start an environment: {exc}")
            raise LambdaError(f"could not start an execution environment: {exc}") from exc
        finally:
            self._starting.pop(slot_id, None)
        self._envs[slot_id] = env
        env.on_death = lambda: self._died(slot_id)
        self._on_event(
            f"{spec.name}: started {init_type} environment {slot_id[:8]}"
            f"{self._invoker.start_figures(env)}"
        )
        return env

    async def _mark_started(self, slot_id: str, env: Environment) -> None:
        await env.ready.wait()
        if env.exited is None:
            self.pool.started(slot_id, asyncio.get_running_loop().time())

    def _died(self, slot_id: str) -> None:
        slot = self.pool.get(slot_id)
        self.pool.remove(slot_id)
        env = self._envs.pop(slot_id, None)
        if slot is not None and env is not None and not env.stopping:
            self._on_event(f"{slot.function}: environment {slot_id[:8]} died; replaced on demand")
            self.housekeeping()

    def _forget(self, slot_id: str) -> None:
        self._envs.pop(slot_id, None)

    def _stop(self, slot_id: str, why: str) -> None:
        env = self._envs.pop(slot_id, None)
        if env is None:
            return
        self._on_event(f"{env.function}: stopping environment {slot_id[:8]} ({why})")
        self._spawn(self._invoker.stop_environment(env))

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # Housekeeping

    def housekeeping(self) -> None:
        """Reap idle environments and keep provisioned ones at their number."""
        if self._closing:
            return
        now = asyncio.get_running_loop().time()
        for slot_id in self.pool.expired(now, self._settings.idle_ttl):
            self._stop(slot_id, "idle")
        for slot_id in self.pool.surplus_provisioned():
            self._stop(slot_id, "provisioned concurrency lowered")
        for slot in self.pool.provision(now, iter(lambda: secrets.token_hex(16), None)):
            served = self.functions[slot.function].version(slot.version)
            if served is None or time.time() < served.provision_retry_at:
                self.pool.remove(slot.id)  # its init failed lately: try again later
            else:
                self._spawn(self._provision(slot, served))

    async def _provision(self, slot: Slot, state: VersionState) -> None:
        spec = state.spec
        # Lambda gives provisioned environments max(130 s, timeout) to initialise.
        limit = max(PROVISIONED_INIT_LIMIT_S, float(spec.timeout))
        try:
            env = await self._start(slot.id, spec, "provisioned-concurrency", slot.version)
            await asyncio.wait_for(env.ready.wait(), limit)  # initialised before any traffic
        except (LambdaError, TimeoutError) as exc:
            self._provision_failed(slot, state, str(exc) or "init timed out")
            return
        if env.init_error is not None or env.exited is not None:
            self._provision_failed(slot, state, "the function's init failed")
            return
        state.provision_failure = None
        if not self.pool.started(slot.id, asyncio.get_running_loop().time()):
            self._stop(slot.id, "out of date")

    def _provision_failed(self, slot: Slot, state: VersionState, why: str) -> None:
        self.pool.remove(slot.id)
        self._stop(slot.id, "provisioned init failed")
        state.provision_failure = why
        state.provision_retry_at = time.time() + PROVISION_RETRY_S
        self._on_event(
            f"{slot.function}: a provisioned environment failed ({why}); retrying in "
            f"{PROVISION_RETRY_S:g} s"
        )

    async def run_housekeeping(self) -> None:
        while not self._closing:
            self.housekeeping()
            await asyncio.sleep(self._settings.housekeeping_interval)

    # Views

    def environments(self) -> list[EnvironmentView]:
        now = asyncio.get_running_loop().time()
        views = []
        for slot in self.pool.slots():
            env = self._envs.get(slot.id)
            used = None
            if env is not None and env.container is not None and not env.stopping:
                peak = self._backend.memory_peak(env.container.id)
                used = None if peak is None else -(-peak // (1024 * 1024))
            state = slot.phase.value
            if slot.kind is Kind.PROVISIONED and state == "idle":
                state = "provisioned"
            function = self.functions.get(slot.function)
            served = function.version(slot.version) if function is not None else None
            aliases = () if function is None else function.aliases_of(slot.version)
            views.append(
                EnvironmentView(
                    slot.id,
                    slot.function,
                    state,
                    slot.kind.value,
                    round(now - slot.created, 1),
                    slot.invocations,
                    used,
                    served.spec.memory if served is not None else 0,
                    slot.version,
                    aliases,
                )
            )
        return views

    def provisioned_status(self, name: str, qualifier: str) -> ProvisionedStatus | None:
        """The provisioned setting of a version or an alias and how many of its environments
        are ready (None when it has none)."""
        state = self.function(name)
        setting = state.provisioned.get(qualifier)
        if setting is None:
            return None
        ready, failure = 0, None
        for version, share in state.shares(qualifier, setting.requested):
            served = state.version(version)
            if served is None:
                continue
            have = sum(
                1
                for s in self.pool.slots()
                if (s.function, s.version) == (name, version)
                and s.kind is Kind.PROVISIONED
                and s.phase.value != "initialising"
                and s.config == served.revision
            )
            ready += min(share, have)
            failure = failure or served.provision_failure
        return ProvisionedStatus(setting.requested, ready, setting.modified, failure)

    # Shutdown

    async def close(self, grace: float) -> None:
        """Let invocations finish (at most ``grace`` seconds), then stop everything."""
        self._closing = True
        if self._owned:
            await asyncio.wait(self._owned, timeout=grace)
        for task in self._starting.values():
            task.cancel()
        envs = list(self._envs.values())
        self._envs.clear()
        await asyncio.gather(
            *(self._invoker.stop_environment(env) for env in envs), return_exceptions=True
        )
        owned = list(self._owned)  # past the grace: their environments are gone now
        for invocation in owned:
            invocation.cancel()
        await asyncio.gather(*owned, return_exceptions=True)
        if self._background:
            await asyncio.wait(self._background, timeout=5)


def _not_found(name: str, qualifier: str) -> ResourceNotFound:
    return ResourceNotFound(f"Function not found: {function_arn(name, qualifier)}")


def _retrieve(result: asyncio.Future[InvocationResult]) -> None:
    if not result.cancelled():
        result.exception()


def _settle(result: asyncio.Future[InvocationResult], exc: BaseException) -> None:
    if result.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        result.cancel()
    else:
        result.set_exception(exc)
