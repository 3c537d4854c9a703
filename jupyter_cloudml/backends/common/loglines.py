"""Log lines of several replicas, as every backend merges them."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable

from ...models import LogLine


def merge_lines(
    streams: Iterable[list[LogLine]], since: float | None = None, tail: int | None = None
) -> list[LogLine]:
    """Lines of several replicas in time order, newer than `since`, only the last `tail`."""
    lines: Iterable[LogLine] = heapq.merge(*streams, key=lambda line: line.time)
    if since is not None:
        lines = (line for line in lines if line.time > since)
    if tail is not None:
        return list(deque(lines, maxlen=tail)) if tail > 0 else []
    return list(lines)
