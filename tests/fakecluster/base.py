"""What every controller shares: the store, the event recorder, and a level-triggered loop."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import traceback

from .common import Obj, within
from .events import EventRecorder
from .resources import ResourceType
from .store import Store


@dataclasses.dataclass
class Context:
    """The cluster-wide pieces controllers work with."""

    store: Store
    events: EventRecorder
    node: str = "fake-node"
    #: Exceptions controllers raised (a bug in the fake; tests can assert there are none).
    errors: list[BaseException] = dataclasses.field(default_factory=list)

    def rt(self, plural: str) -> ResourceType:
        """The resource type named ``plural``."""
        return self.store.registry.by_plural(plural)


class Controller:
    """Reconciles everything it watches whenever a relevant object changes, and every
    ``tick`` seconds (for time-based rules such as deadlines)."""

    #: Kinds whose changes wake this controller.
    kinds: frozenset[str] = frozenset()
    tick: float = 0.1

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self._wake = asyncio.Event()
        self.stopped = False
        self.store.subscribe(self.on_change)

    def on_change(self, rt: ResourceType, kind: str, obj: Obj, old: Obj | None) -> None:
        """Store listener (runs inside the write; must not write)."""
        if rt.kind in self.kinds:
            self._wake.set()

    def wake(self) -> None:
        """Reconcile soon."""
        self._wake.set()

    def stop(self) -> None:
        """End ``run`` (at its next wake-up)."""
        self.stopped = True
        self._wake.set()

    async def run(self) -> None:
        """Reconcile on every wake-up and tick until stopped (errors are kept, not raised)."""
        while not self.stopped:
            with contextlib.suppress(TimeoutError):
                await within(self._wake.wait(), self.tick)
            if self.stopped:
                return
            self._wake.clear()
            try:
                self.reconcile()
            except Exception as exc:
                self.ctx.errors.append(exc)
                traceback.print_exc(file=sys.stderr)
                await asyncio.sleep(0.1)

    def reconcile(self) -> None:
        """Bring everything this controller owns in line with the objects (synchronous)."""
        raise NotImplementedError
