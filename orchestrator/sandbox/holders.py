"""Network holders: network namespaces made ahead of the environments that will use them.

Most of the engine's work in starting a container is its network: a namespace, a veth pair, an
address, firewall rules (a `docker run` takes about 0.34 s on lrun's bridge network, 0.13 to
0.15 s when it joins the namespace of a container already running). A holder is a container that
only sleeps, with its own address on one of lrun's networks, made before it is needed; a new
environment joins its namespace instead of getting one made (``ContainerSpec.holder``).

One holder serves one environment and goes when it goes, never to be reused: while the
environment lives the holder's address is that environment's alone, so the Runtime API tells
environments apart by peer address exactly as before (DESIGN D2, P2), on either network (P3).

How many are kept ready on each network is decided from the recent cold-start rate: as many as
environments were started there in the last ``window_s`` seconds, at least ``floor`` and at most
``cap`` (``wanted``). Holders are made one at a time in the background, so a burst of cold
starts is not slowed by the holders that replace the ones it took. They carry the labels of the
process that made them, as environments do, so a restarted server removes what a crashed one
left (``api.server.clean_up_leftovers``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from orchestrator.sandbox.backend import (
    LABEL_MANAGED,
    LABEL_ROLE,
    ROLE_HOLDER,
    Backend,
    Container,
    HolderSpec,
)

log = logging.getLogger(__name__)

# How long closing waits for the holder being made (the engine's start of one container).
_CLOSE_WAIT_S = 30.0


@dataclass(frozen=True)
class HolderSettings:
    floor: int = 2  # ready on each network in use, whatever the rate
    cap: int = 16  # ready on each network at most, whatever the rate
    window_s: float = 60.0  # the recent past whose cold starts size the pool
    # After a cold start took a holder, how long before replacing it: the new environment's
    # runtime is initialising meanwhile, and a holder's start would take CPU from it.
    refill_delay_s: float = 1.0
    # After a holder could not be made, how long before trying again (the engine may be busy,
    # or the image gone); environments start without one meanwhile.
    retry_s: float = 5.0


def wanted(starts: Iterable[float], now: float, settings: HolderSettings) -> int:
    """How many holders to keep ready on a network that had cold starts at ``starts``."""
    recent = sum(1 for at in starts if now - at <= settings.window_s)
    return min(settings.cap, max(settings.floor, recent))


class NetworkHolders:
    """The holders of one process, ready or in use, on each network it uses.

    Used on one event loop. ``expect`` says which networks are used and which image holders
    there run; ``take`` hands one out (or None: the environment gets its own network set-up)
    and starts replacing it; ``release`` ends one an environment used; ``close`` ends the rest.
    """

    def __init__(
        self,
        backend: Backend,
        labels: Mapping[str, str],
        settings: HolderSettings = HolderSettings(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._labels = {**labels, LABEL_MANAGED: "1", LABEL_ROLE: ROLE_HOLDER}
        self.settings = settings
        self._clock = clock
        self._images: dict[str, str] = {}  # network: the image its holders run
        self._ready: dict[str, collections.deque[Container]] = {}
        self._starts: dict[str, collections.deque[float]] = {}
        self._ids: set[str] = set()  # every holder alive, ready or in use
        self._filler: asyncio.Task[None] | None = None
        self._ending: set[asyncio.Task[None]] = set()
        self._making: str | None = None  # the holder being made (an engine call under way)
        self._failing = False  # the last try failed (and said so)
        self._closed = False

    def expect(self, images: Mapping[str, str]) -> None:
        """Keep holders on these networks (network: image); the ready holders of any other
        network are ended."""
        self._images = dict(images)
        for network in list(self._ready):
            if network not in self._images:
                for holder in self._ready.pop(network):
                    self.release(holder)
        self._fill_soon()

    def ready(self, network: str) -> int:
        return len(self._ready.get(network, ()))

    def take(self, network: str) -> Container | None:
        """A ready holder on ``network`` for a new environment, or None; either way a cold
        start is counted, and the pool topped up behind it."""
        starts = self._starts.setdefault(network, collections.deque())
        starts.append(self._clock())
        while len(starts) > self.settings.cap * 4:  # only the count within the window matters
            starts.popleft()
        ready = self._ready.get(network)
        holder = ready.popleft() if ready else None
        self._fill_soon(self.settings.refill_delay_s)
        return holder

    def owns(self, container_id: str) -> bool:
        return container_id in self._ids

    def lost(self, container_id: str) -> None:
        """A holder ended by itself (or was killed): forget it."""
        self._ids.discard(container_id)
        for ready in self._ready.values():
            for holder in list(ready):
                if holder.id == container_id:
                    ready.remove(holder)

    def release(self, holder: Container) -> None:
        """End a holder (its environment is gone, or it is not wanted any more)."""
        task = asyncio.get_running_loop().create_task(self._end(holder))
        self._ending.add(task)
        task.add_done_callback(self._ending.discard)

    async def _end(self, holder: Container) -> None:
        try:
            await asyncio.to_thread(self._backend.kill, holder.id)
        except Exception as exc:  # its owner label lets the next server remove it
            log.warning("could not end network holder %s: %s", holder.id[:12], exc)
        self._ids.discard(holder.id)

    def _fill_soon(self, delay: float = 0.0) -> None:
        if self._closed or (self._filler is not None and not self._filler.done()):
            return
        self._filler = asyncio.get_running_loop().create_task(self._fill(delay))

    async def _fill(self, delay: float) -> None:
        """Make holders one at a time until every network has what it wants; end surplus."""
        if delay:
            await asyncio.sleep(delay)
        while not self._closed:
            now = self._clock()
            short: str | None = None
            for network in self._images:
                ready = self._ready.setdefault(network, collections.deque())
                want = wanted(self._starts.get(network, ()), now, self.settings)
                while len(ready) > want:
                    self.release(ready.pop())
                if len(ready) < want and short is None:
                    short = network
            if short is None:
                return
            holder = await self._make(short, self._images[short])
            if holder is None:  # the engine is busy, or the image gone: try again later
                await asyncio.sleep(self.settings.retry_s)
                continue
            if self._closed or short not in self._images:
                self.release(holder)
                return
            self._ready[short].append(holder)

    async def _make(self, network: str, image: str) -> Container | None:
        spec = HolderSpec(f"lrun-holder-{secrets.token_hex(6)}", image, network, self._labels)
        self._making = spec.name
        try:
            holder = await asyncio.to_thread(self._backend.hold_network, spec)
        except Exception as exc:
            if not self._failing:  # said once, until one is made again
                log.warning("could not make a network holder on %s: %s", network, exc)
            self._failing = True
            return None
        finally:
            self._making = None
        self._failing = False
        self._ids.add(holder.id)
        return holder

    async def close(self) -> None:
        """End every ready holder and stop making more (holders in use go with their
        environments)."""
        self._closed = True
        if self._filler is not None and not self._filler.done():
            # Cancelled only between engine calls: one under way cannot be taken back, and the
            # holder it makes would be left behind; the filler ends that one itself and stops.
            if self._making is None:
                self._filler.cancel()
            await asyncio.wait({self._filler}, timeout=_CLOSE_WAIT_S)
        for ready in self._ready.values():
            while ready:
                self.release(ready.popleft())
        if self._ending:
            await asyncio.gather(*self._ending, return_exceptions=True)
