"""Timestamps as the API (seconds, microseconds) and CRI log files (nanoseconds) write them."""

from __future__ import annotations

import datetime
import time


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def nano_now() -> str:
    t = time.time_ns()
    stamp = datetime.datetime.fromtimestamp(t // 1_000_000_000, datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{t % 1_000_000_000:09d}Z"


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
