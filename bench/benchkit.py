"""What several benchmarks share: a nearest-rank percentile and progress on stderr (stdout
holds the tables)."""

from __future__ import annotations

import math
import sys


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (NaN for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
