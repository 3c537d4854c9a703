"""A job's live log as batches: one thread follows the backend's log, the event loop drains it.

The backend's `logs(follow=True)` is a blocking iterator (files locally, pod logs on a
cluster), so it runs in a thread of its own that appends to a deque; the handler wakes every
`interval` seconds and sends whatever arrived as one batch. That bounds the messages per
second of every stream, however fast the job prints. A closed stream sets the follow's `stop`
event, and the thread ends with it.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import AsyncIterator, Iterator

from ..exceptions import CloudMLError
from ..models import LogLine

#: Most lines one batch carries; a burst beyond it is sent over the next batches.
MAX_BATCH = 5000


class LogFollower:
    """Follows one job's log in a daemon thread; `batches()` yields what arrived meanwhile."""

    def __init__(self, lines: Iterator[LogLine], stop: threading.Event | None = None) -> None:
        """`stop` is the event the backend's follow was given (`logs(..., stop=)`): setting
        it ends the follow within its poll interval, so no thread outlives its reader."""
        self._lines = lines
        self._pending: collections.deque[LogLine] = collections.deque()
        self._done = threading.Event()
        self._stopped = stop or threading.Event()
        self.error: CloudMLError | None = None
        self._thread = threading.Thread(target=self._pull, name="cloudml-logs", daemon=True)
        self._thread.start()

    def _pull(self) -> None:
        try:
            for line in self._lines:
                if self._stopped.is_set():
                    return
                self._pending.append(line)
        except CloudMLError as e:
            self.error = e
        finally:
            self._done.set()

    def stop(self) -> None:
        """Stop following (the browser went away): the backend's follow ends soon."""
        self._stopped.set()

    def _drain(self) -> list[LogLine]:
        batch: list[LogLine] = []
        while self._pending and len(batch) < MAX_BATCH:
            batch.append(self._pending.popleft())
        return batch

    async def batches(
        self, interval: float, keepalive: float = 15.0
    ) -> AsyncIterator[list[LogLine]]:
        """Batches of new lines every `interval` s (an empty one after `keepalive` s of quiet);
        ends once the log ended and everything was yielded."""
        quiet_since = time.monotonic()
        while True:
            finished = self._done.is_set()
            batch = self._drain()
            if batch or time.monotonic() - quiet_since >= keepalive:
                quiet_since = time.monotonic()
                yield batch
            if finished and not self._pending:
                return
            if not self._pending:
                await asyncio.sleep(interval)
