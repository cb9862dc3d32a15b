"""`lrun serve`'s life: clean up after a crashed predecessor, serve, then shut down gracefully.

One process owns the pools (DESIGN D7). It announces itself in the state directory so other
`lrun` commands find it, watches the manifest and code for edits, and on SIGINT/SIGTERM stops
taking requests, lets in-flight invocations finish (bounded by their timeouts) and removes its
containers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import resource
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from orchestrator.api.access import AccessPolicy, Guard, HostCheck, is_loopback
from orchestrator.api.alias_api import AliasApi
from orchestrator.api.aws_json import JsonTargets
from orchestrator.api.cloudwatch_api import add_cloudwatch_routes
from orchestrator.api.code_package import Packages
from orchestrator.api.downloads import Downloads
from orchestrator.api.edits import watch_edits
from orchestrator.api.event_api import add_event_routes
from orchestrator.api.function_api import FunctionApi
from orchestrator.api.function_configs import add_function_config_routes
from orchestrator.api.function_urls import FunctionUrls, policy_allows
from orchestrator.api.lambda_api import LambdaApi, error_response, json_response
from orchestrator.api.layer_api import LayerApi
from orchestrator.api.layer_refs import LayerCatalog
from orchestrator.api.logs_api import add_logs_operations
from orchestrator.api.manifest_versions import ManifestVersions
from orchestrator.api.mapping_api import add_mapping_routes
from orchestrator.api.metrics_api import add_metrics_routes
from orchestrator.api.policy import add_policy_routes
from orchestrator.api.provisioned_api import ProvisionedApi
from orchestrator.api.queue_api import add_queue_routes
from orchestrator.api.sigv4 import Credentials
from orchestrator.api.stream_invoke import add_stream_invoke_routes
from orchestrator.api.tags import add_tag_routes
from orchestrator.api.url_listener import UrlAccess
from orchestrator.api.version_api import VersionApi
from orchestrator.aws import REGION
from orchestrator.errors import LrunError, Problem
from orchestrator.events.api_functions import ApiFunctions
from orchestrator.events.event_queue import EventQueue
from orchestrator.events.function_meta import FunctionMeta
from orchestrator.events.invoke_config import InvokeConfigs
from orchestrator.events.layer_versions import LayerVersions
from orchestrator.events.mappings import Mappings
from orchestrator.events.queue_bounds import QueueLimits
from orchestrator.events.queues import Queues
from orchestrator.events.sources import Sources
from orchestrator.events.store import Store
from orchestrator.events.url_store import UrlStore
from orchestrator.events.versions import Versions
from orchestrator.gateway.listeners import Gateway
from orchestrator.gateway.websocket_listener import origin_check
from orchestrator.http_server import Limits, Request, Response
from orchestrator.http_server import serve as http_serve
from orchestrator.logbook import LogBook, LogLimits, limit_from_env
from orchestrator.manifest import Manifest
from orchestrator.manifest.layers import Layer
from orchestrator.observe.log_feed import store_sinks
from orchestrator.observe.log_store import LogStore, StoreLimits
from orchestrator.observe.metrics import Metrics
from orchestrator.observe.prices import prices_for
from orchestrator.observe.traces import traces_from_env
from orchestrator.pool import Pool
from orchestrator.sandbox.backend import (
    LABEL_MANAGED,
    NETWORK_PRIVATE,
    NETWORK_PUBLIC,
    Backend,
    Container,
)
from orchestrator.sandbox.holders import HolderSettings
from orchestrator.sandbox.invocation import MAX_SYNC_PAYLOAD
from orchestrator.sandbox.invoker import new_owner
from orchestrator.sandbox.oneshot import hosted_invoker
from orchestrator.sandbox.ownership import host_identity, judge
from orchestrator.sandbox.response_stream import STREAM_LIMIT
from orchestrator.service import Service, ServiceSettings
from orchestrator.state import announcement, state_dir
from orchestrator.template import Project
from orchestrator.template.functions import unpacked_zips
from orchestrator.unzip import sweep

log = logging.getLogger(__name__)

# The Lambda API's clients: the largest body is a synchronous invocation's payload. A sync
# invocation holds its connection while it runs, so the cap leaves room for the host limit.
# Threads for blocking engine calls (and other blocking work) at once; started as needed.
ENGINE_THREADS = 48

API_LIMITS = Limits(max_body=MAX_SYNC_PAYLOAD, max_connections=1024)


def host_architecture() -> str:
    """What lrun's functions really run on, in Lambda's words."""
    return "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"


def raise_nofile_limit() -> tuple[int, int]:
    """Raise the soft limit on open files to the hard one: every environment costs lrun a few
    descriptors (its output stream, its runtime's connections), and running out breaks far more
    than the one call that hit it. Returns (soft, hard) as they are now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # e.g. an infinite hard limit the kernel will not take
            pass
    return soft, hard


@dataclass(frozen=True)
class ServeSettings:
    manifest: Path
    host: str = "127.0.0.1"
    port: int = 9001
    idle_ttl: float = 300.0
    max_concurrency: int | None = None  # None: from the host's memory and cores
    access: AccessPolicy = AccessPolicy()
    # What ``manifest`` is (lrun.yaml, a template, a cdk.out) and its parameters; None: lrun.yaml.
    project: Project | None = None
    log_store: StoreLimits = StoreLimits()  # logs by group and stream (the Logs API's)
    network_holders: int = HolderSettings.cap  # kept ready per network at most (0: none)

    @property
    def source(self) -> Project:
        return self.project or Project(self.manifest, "manifest")


def announced_url(host: str, port: int) -> str:
    """Where other `lrun` commands reach the server: a wildcard address by loopback."""
    name = host.strip("[]")
    if name in ("0.0.0.0", ""):
        name = "127.0.0.1"
    elif name == "::":
        name = "::1"
    return f"http://[{name}]:{port}" if ":" in name else f"http://{name}:{port}"


def exposure(settings: ServeSettings, manifest_apis: int = 0) -> list[str]:
    """What the start-up lines say about who can reach the API, beyond the loopback default."""
    lines = []
    access = settings.access
    if not is_loopback(settings.host):
        lines.append(
            f"listening beyond loopback ({settings.host}): every Lambda API request must be "
            "signed (AWS Signature Version 4) with access key "
            f"{access.credentials.access_key_id if access.credentials else '?'}"
        )
    elif access.signed and access.credentials is not None:
        lines.append(
            "every Lambda API request must be signed with access key "
            f"{access.credentials.access_key_id}"
        )
    if not is_loopback(settings.host) and manifest_apis:
        lines.append(
            f"API Gateway APIs listen on {settings.host} too; like API Gateway's, their routes "
            "take unsigned requests: guard them with authorizers"
        )
    if access.allowed_hosts:
        lines.append(f"also answering Host names: {', '.join(sorted(access.allowed_hosts))}")
    if access.cors_origins:
        lines.append(
            "web pages from these origins may call the API: "
            + ", ".join(sorted(access.cors_origins))
        )
    return lines


def check_store() -> None:
    """Open and close lrun's store: one that cannot be used stops lrun, in one line, before it
    touches the container engine (no image built, no leftover removed)."""
    store = Store(state_dir() / "lrun.db")
    store.open()
    store.close()


def default_concurrency() -> int:
    """The host-wide limit: what memory allows at 128 MB each, and 64 per core, at most 1000."""
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    cores = len(os.sched_getaffinity(0))
    return max(1, min(1000, memory_mb // 128, cores * 64))


def survey(backend: Backend) -> tuple[list[Container], list[tuple[Container, str]]]:
    """lrun's containers whose owner is provably gone from this host (to remove), and those
    whose owner cannot be checked from here, with why (to leave and report). Containers of
    owners running here, and containers without an lrun owner, are in neither."""
    here = host_identity()
    orphaned: list[Container] = []
    unknown: list[tuple[Container, str]] = []
    for container in backend.containers({LABEL_MANAGED: "1"}):
        verdict = judge(container.labels, here)
        if verdict is None:
            continue
        if verdict.orphan:
            orphaned.append(container)
        elif not verdict.checked:
            unknown.append((container, verdict.reason))
    return orphaned, unknown


def orphans(backend: Backend) -> list[Container]:
    """Containers lrun started whose owning process is provably gone from this host."""
    return survey(backend)[0]


async def clean_up_leftovers(backend: Backend, on_event: Callable[[str], None]) -> None:
    orphaned, unknown = await asyncio.to_thread(survey, backend)
    if orphaned:
        await asyncio.gather(*(asyncio.to_thread(backend.remove, c.id) for c in orphaned))
        on_event(f"removed {len(orphaned)} containers left behind by an earlier lrun")
    for container, reason in unknown:
        on_event(
            f"left container {container.name} ({container.id[:12]}) alone: {reason}; "
            f"if it is left over, remove it with `docker rm -f {container.id[:12]}`"
        )


def served_layers(service: Service) -> Iterator[Layer]:
    """The layers of every version served, $LATEST and published ones."""
    for state in service.functions.values():
        for served in (state.latest, *state.published.values()):
            yield from served.spec.layers


def layers_in_use(service: Service, records: ApiFunctions) -> set[str]:
    """Layer version ARNs functions use: a deleted version's content stays for them."""
    used = {arn for record in records.records.values() for arn in record.layers}
    used.update(layer.source for layer in served_layers(service) if layer.kind == "arn")
    return used


@dataclass
class Platform:
    """Everything one server runs, wired together."""

    service: Service
    store: Store
    queues: Queues
    events: EventQueue
    sources: Sources
    api: LambdaApi
    gateway: Gateway
    catalog: LayerCatalog
    urls: FunctionUrls
    versions: VersionApi

    async def load(self, loaded: Manifest) -> None:
        """Take a manifest: its functions (their layers found or unpacked first), its APIs and
        function URLs, its queues, its event sources. The layers, APIs and URLs first: a layer
        that cannot be used or a port one cannot have refuses the manifest before anything
        changed."""
        loaded = await self.catalog.resolve_manifest(loaded)
        await self.gateway.load(loaded)
        await self.urls.load(loaded)
        self.service.load(loaded)
        self.versions.sync()  # a function the manifest declares anew has its versions back
        for spec in loaded.queues.values():
            await self.queues.ensure(spec)
        self.sources.restart(loaded)
        # Zips of the manifest's layers that no function uses now, once environments that may
        # still have them mounted are gone.
        grace = max((f.spec.timeout for f in self.service.functions.values()), default=3) + 5
        asyncio.get_running_loop().call_later(grace, self._sweep_zips)

    def _sweep_zips(self) -> None:
        kept = {
            layer.directory
            for layer in served_layers(self.service)
            if layer.kind == "zip" and layer.directory is not None
        }
        asyncio.ensure_future(asyncio.to_thread(self.catalog.sweep_local, kept))
        # And templates' zipped code that no function runs now.
        root = unpacked_zips()
        code = {f.spec.code for f in self.service.functions.values() if f.spec.code is not None}
        asyncio.ensure_future(asyncio.to_thread(sweep, root, {c for c in code if c.parent == root}))


async def run(
    backend: Backend,
    settings: ServeSettings,
    on_event: Callable[[str], None],
    on_ready: Callable[[Service], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM."""
    if not is_loopback(settings.host) and not settings.access.signed:
        raise LrunError(
            f"refusing to serve on {settings.host} without checking signatures: beyond loopback "
            "anyone on the network (and every function) could drive lrun; give it a key pair "
            "(lrun serve generates one when given none)"
        )
    loaded = settings.source.load()
    for spec in loaded.apis.values():
        if spec.port == settings.port:
            raise LrunError(
                f"API {spec.name!r} is on port {spec.port}, the Lambda API's: give it another "
                f"(apis.{spec.name}.port in {settings.manifest}) or start lrun serve with --port"
            )
    raise_nofile_limit()
    # The store before anything else: one that cannot be opened stops lrun (in one line)
    # before it has touched a container.
    store = Store(state_dir() / "lrun.db")
    await asyncio.to_thread(store.open)
    await clean_up_leftovers(backend, on_event)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    limit = settings.max_concurrency or default_concurrency()
    # Engine calls block a thread each (a container's create and start, a holder's): asyncio's
    # default pool has CPUs + 4 threads, so a burst of cold starts queued behind six of them.
    loop.set_default_executor(ThreadPoolExecutor(ENGINE_THREADS, thread_name_prefix="lrun-engine"))
    networks = (NETWORK_PUBLIC, NETWORK_PRIVATE)
    cap = min(settings.network_holders, limit)
    holders = HolderSettings(floor=min(HolderSettings.floor, cap), cap=cap) if cap else None
    async with hosted_invoker(backend, new_owner("serve"), networks, on_event, holders) as invoker:
        book = LogBook(state_dir() / "logs", LogLimits.from_env())
        invoker.spill = book
        service = Service(
            backend,
            invoker,
            Pool(limit),
            ServiceSettings(settings.idle_ttl),
            on_event,
            book.append,
        )
        log_store = LogStore(book.directory / "events", settings.log_store)
        await asyncio.to_thread(log_store.load)
        metrics = Metrics(prices_for(REGION), host_architecture())
        # LRUN_OBSERVE=0 leaves log groups and metrics out: for bench/metrics_overhead.py.
        if os.environ.get("LRUN_OBSERVE", "1") != "0":
            encode, write = store_sinks(log_store)
            book.on_batch.extend((encode, metrics.observe))
            book.in_thread.append(write)
            service.on_record = book.record
        traces, trace_sink = traces_from_env(on_event)
        if trace_sink is not None:
            book.on_batch.append(trace_sink)
            service.on_record = book.record
            service.on_record = book.record
        configs = InvokeConfigs(store)
        await configs.load()
        meta = FunctionMeta(store)
        await meta.load()
        queues = Queues(store, limits=QueueLimits.from_env())
        api = LambdaApi(service, None, configs, meta)
        records = ApiFunctions(store)
        api.api_functions = records
        downloads = Downloads(api.router)
        functions = FunctionApi(
            api, records, state_dir() / "functions", meta, configs, on_event, downloads
        )
        functions.add_routes()
        layer_versions = LayerVersions(store)
        await layer_versions.load()
        layers = state_dir() / "layers"
        catalog = LayerCatalog(layer_versions, Packages(layers), layers / "local")
        api.layer_catalog = functions.catalog = catalog

        layer_api = LayerApi(
            api,
            layer_versions,
            catalog.packages,
            downloads,
            partial(layers_in_use, service, records),
        )
        layer_api.add_routes()
        functions.layers_released = layer_api.collect
        versions = VersionApi(
            api,
            Versions(store, state_dir()),
            state_dir() / "functions",
            functions.busy,
            on_event,
        )
        versions.add_routes()
        AliasApi(versions).add_routes()
        ProvisionedApi(versions).add_routes()
        functions.versions = versions
        versions.release_code = functions.remove_code_later
        await versions.versions.load()
        add_policy_routes(api, meta)
        add_stream_invoke_routes(api, limit_from_env("LRUN_STREAM_LIMIT_MB", STREAM_LIMIT))
        add_function_config_routes(api, meta)
        events = EventQueue(store, service, api.effective_config, queues.send_in, on_event)
        api.events = events
        add_queue_routes(api.router, queues)
        add_event_routes(api.router, events, queues)
        mappings = Mappings(store)
        await mappings.load()
        sources = Sources(service, events, queues, store, on_event, mappings)
        add_mapping_routes(api.router, service, queues, mappings, sources.sync)
        # Mappings are tagged by their ARN, whose last part is their UUID.
        add_tag_routes(
            api, meta, {"event-source-mapping": lambda arn: mappings.get(arn[-36:]) is not None}
        )
        gateway = Gateway(
            service,
            settings.host,
            HostCheck(settings.access).refusal,
            partial(announced_url, settings.host),
            on_event,
            origin_check(settings.access.cors_origins),
        )
        gateway.serve_connections(invoker.runtime_api)
        api.router.add("GET", "/lrun/apis", partial(_apis, gateway))
        add_metrics_routes(api.router, metrics, service, events)
        targets = JsonTargets()
        add_logs_operations(targets, log_store)
        add_cloudwatch_routes(api.router, targets, metrics)
        targets.add_routes(api.router)
        url_store = UrlStore(store)
        await url_store.load()
        urls = FunctionUrls(
            api,
            url_store,
            settings.host,
            UrlAccess(
                HostCheck(settings.access).refusal,
                partial(policy_allows, meta),
                _UrlKeys(settings.access, on_event),
            ),
            partial(announced_url, settings.host),
            on_event,
            limit_from_env("LRUN_STREAM_LIMIT_MB", STREAM_LIMIT),
        )
        urls.add_routes()
        api.router.add("GET", "/lrun/urls", partial(_urls, urls))
        platform = Platform(
            service, store, queues, events, sources, api, gateway, catalog, urls, versions
        )
        await platform.load(loaded)
        for notice in loaded.notices:
            on_event(f"note: {notice}")
        await functions.restore()  # after the manifest's: its names are the manifest's
        await versions.restore()  # after the functions they are versions of
        await urls.restore()  # the API's URLs, once their functions and aliases are there
        await layer_api.restore()  # after them all: what they use is kept
        manifest_versions = ManifestVersions(versions, on_event)
        manifest_versions.watch()
        manifest_versions.sync_all()
        try:
            server = await http_serve(
                Guard(api.router, settings.access, error_response),
                settings.host,
                settings.port,
                API_LIMITS,
            )
        except OSError as exc:
            raise LrunError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}; "
                "is another `lrun serve` running? choose another with --port"
            ) from exc
        url = announced_url(settings.host, server.port)
        record = announcement()
        credentials = settings.access.credentials
        record.write(
            url,
            settings.manifest,
            None
            if credentials is None
            else {
                "credentials": {
                    "access_key_id": credentials.access_key_id,
                    "secret_access_key": credentials.secret_access_key,
                    "session_token": credentials.session_token,
                }
            },
        )
        for line in exposure(settings, len(loaded.apis)):
            on_event(line)
        on_event(
            f"serving {len(service.functions)} functions on "
            f"{url if is_loopback(settings.host) else f'{settings.host} port {server.port}'} "
            f"(host limit {limit} concurrent, idle environments kept {settings.idle_ttl:g} s); "
            f"invocation logs in {book.directory}"
        )
        housekeeping = asyncio.ensure_future(service.run_housekeeping())
        writer = asyncio.ensure_future(book.run())
        dispatcher = asyncio.ensure_future(events.run())
        watcher = asyncio.ensure_future(
            watch_edits(
                service,
                settings.source.watched(),
                _Reloader(platform, settings.source, loaded.notices, on_event),
                on_event,
            )
        )
        if on_ready is not None:
            on_ready(service)
        try:
            await stop.wait()
        finally:
            on_event("stopping: no new requests; letting in-flight invocations finish")
            record.remove()
            housekeeping.cancel()
            watcher.cancel()
            dispatcher.cancel()
            await platform.sources.wait_stopped()
            grace = max((f.spec.timeout for f in service.functions.values()), default=3) + 1
            await server.stop_listening()
            await gateway.stop_listening()
            await urls.stop_listening()
            service.on_revision = lambda name: None
            await manifest_versions.settled()  # a version being published is finished
            await events.close(grace)
            await service.close(grace)
            await server.close()
            await gateway.close()
            await urls.close()
            writer.cancel()
            await asyncio.gather(writer, dispatcher, return_exceptions=True)
            await asyncio.to_thread(store.close)
            if traces is not None:
                await asyncio.to_thread(traces.shutdown)
            on_event("stopped; all environments removed")


async def _urls(urls: FunctionUrls, request: Request) -> Response:
    """`lrun ps`'s function URLs."""
    return json_response(200, urls.describe())


class _UrlKeys:
    """The key pair AWS_IAM function URLs check signatures against: the API's, or else the one
    lrun keeps in its state directory (read, and said where, the first time it is needed)."""

    def __init__(self, access: AccessPolicy, on_event: Callable[[str], None]) -> None:
        self._keys = access.credentials
        self._on_event = on_event

    def __call__(self) -> Credentials:
        if self._keys is None:
            from orchestrator.api import credentials as keys

            self._keys, made = keys.load_or_generate(state_dir())
            where = keys.generated_file(state_dir())
            self._on_event(
                "AWS_IAM function URLs check signatures made with access key "
                f"{self._keys.access_key_id} ({'made now; ' if made else ''}secret in {where}, "
                f"profile '{keys.GENERATED_PROFILE}')"
            )
        return self._keys


async def _apis(gateway: Gateway, request: Request) -> Response:
    """`lrun ps`'s APIs: each one's base URL and routes."""
    return json_response(200, gateway.describe())


@dataclass
class _Reloader:
    """Takes the edited project; a template's notices are shown again when they change."""

    platform: Platform
    project: Project
    notices: tuple[Problem, ...]
    on_event: Callable[[str], None]

    async def __call__(self) -> None:
        path = self.project.path
        try:
            loaded = self.project.load()
            await self.platform.load(loaded)
        except LrunError as exc:
            self.on_event(f"manifest not reloaded, keeping the previous one: {exc}")
            return
        except OSError as exc:
            self.on_event(f"cannot read {path}: {exc.strerror}")
            return
        self.on_event(f"reloaded {path}")
        if loaded.notices != self.notices:
            self.notices = loaded.notices
            for notice in loaded.notices:
                self.on_event(f"note: {notice}")
