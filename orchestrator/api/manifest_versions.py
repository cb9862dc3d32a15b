"""The manifest's ``provisioned_concurrency``, kept as Lambda allows it: on a published version
behind an alias, never on ``$LATEST``.

For a manifest function that declares it, lrun publishes a version of the function as it is
(``version_api``: a copy of its code) and keeps the alias ``live`` on it, with the provisioned
concurrency set on ``live``: what SAM's ``AutoPublishAlias: live`` does on every deploy. When the
function's code or configuration changes (an edit while serving, a reload), lrun publishes again
and moves ``live``, so its provisioned environments run the new code once initialised; the
version it leaves is deleted if lrun published it and nothing else uses it (no other alias, no
provisioned setting of its own), so saving a file does not pile up copies of the code. The
manifest's own triggers of the function (its queues, schedules and buckets) invoke ``live``, as
SAM's event sources invoke the alias; an invocation that names no qualifier runs ``$LATEST``, on
demand, as on Lambda.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

from orchestrator.api.version_api import VersionApi
from orchestrator.errors import LrunError
from orchestrator.events.versions import AliasRecord
from orchestrator.served import MANIFEST_ALIAS, Alias, Provisioned
from orchestrator.service import Service

log = logging.getLogger(__name__)


class ManifestVersions:
    def __init__(self, versions: VersionApi, on_event: Callable[[str], None]) -> None:
        self.versions = versions
        self._on_event = on_event
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()

    @property
    def service(self) -> Service:
        return self.versions.service

    def watch(self) -> None:
        """Keep ``live`` current from now on: every change of a function's ``$LATEST``."""
        self.service.on_revision = self.changed

    def changed(self, name: str) -> None:
        """``name``'s ``$LATEST`` changed: sync it (once more after a sync under way)."""
        running = self._running.get(name)
        if running is not None and not running.done():
            self._again.add(name)
            return
        task = asyncio.ensure_future(self._sync_until_settled(name))
        self._running[name] = task
        task.add_done_callback(lambda _: self._running.pop(name, None))

    def sync_all(self) -> None:
        """Sync every function the manifest declares (after a load or a restart)."""
        manifest = self.service.manifest
        names = set(manifest.functions) if manifest is not None else set()
        for name in sorted(names | set(self.versions.versions.functions)):
            self.changed(name)

    async def settled(self) -> None:
        """Wait for the syncs under way (tests, and a server that shuts down)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def _sync_until_settled(self, name: str) -> None:
        while True:
            try:
                await self.sync(name)
            except LrunError as exc:
                self._on_event(f"{name}: cannot keep its provisioned concurrency current: {exc}")
            except Exception:
                log.exception("%s: keeping its provisioned concurrency current failed", name)
            if name not in self._again:
                return
            self._again.discard(name)

    async def sync(self, name: str) -> None:
        """Make ``live`` and its provisioned setting what the manifest says for ``name``."""
        service = self.service
        manifest = service.manifest
        spec = manifest.functions.get(name) if manifest is not None else None
        declared = spec is not None and name not in service.api_functions
        wanted = spec.provisioned_concurrency if declared and spec is not None else 0
        store = self.versions.versions
        async with self.versions.lock(name):
            live = store.of(name).aliases.get(MANIFEST_ALIAS)
            if live is not None and not live.managed:
                if wanted:
                    self._on_event(
                        f"{name}: an alias {MANIFEST_ALIAS} made through the API is in the way; "
                        f"its provisioned_concurrency is not applied until it is deleted"
                    )
                return
            if not wanted:
                if live is not None and name in service.functions:
                    await store.put_provisioned(name, MANIFEST_ALIAS, None)
                    await store.remove_alias(name, MANIFEST_ALIAS)
                    service.remove_alias(name, MANIFEST_ALIAS)
                    await self._retire(name, live.version)
                return
            if name not in service.functions:
                return
            version = await self.versions.publish_latest(
                name, "published by lrun for provisioned_concurrency", managed=True
            )
            if live is None or live.version != version.name:
                record = AliasRecord(
                    name,
                    MANIFEST_ALIAS,
                    version.name,
                    description="provisioned_concurrency of lrun.yaml",
                    revision_id=str(uuid.uuid4()),
                    managed=True,
                )
                await store.put_alias(record)
                service.put_alias(name, MANIFEST_ALIAS, Alias(version.name))
                self._on_event(f"{name}: {MANIFEST_ALIAS} is version {version.name}")
            setting = store.of(name).provisioned.get(MANIFEST_ALIAS)
            if setting is None or setting.requested != wanted:
                setting = Provisioned(wanted, time.time())
                await store.put_provisioned(name, MANIFEST_ALIAS, setting)
                service.set_provisioned(name, MANIFEST_ALIAS, wanted)
                service.function(name).provisioned[MANIFEST_ALIAS] = setting
            if live is not None and live.version != version.name:
                await self._retire(name, live.version)

    async def _retire(self, name: str, version: str) -> None:
        """Delete a version lrun published for ``live`` once nothing uses it."""
        kept = self.versions.versions.of(name)
        found = kept.versions.get(int(version)) if version.isdigit() else None
        if found is None or not found.managed or version in kept.provisioned:
            return
        if any(version in (a.version, *dict(a.weights)) for a in kept.aliases.values()):
            return
        await self.versions.versions.remove(name, found.number)
        if name in self.service.functions:
            self.service.remove_version(name, version)
        if found.snapshot is not None:
            self.versions.remove_copy_later(found.snapshot, found.spec.timeout)
