"""Text building blocks every view uses: durations, times, numbers, aligned tables and
field lists, statuses, indented JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..models import (
    JobInfo,
    StudyInfo,
    to_dict,
)

NONE = "-"


def format_duration(seconds: float | None) -> str:
    """A duration in its two largest units: `42s`, `5m 03s`, `2h 05m`, `3d 04h`."""
    if seconds is None:
        return NONE
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_time(timestamp: float | None) -> str:
    """Seconds since the epoch as local `YYYY-MM-DD HH:MM:SS`."""
    if timestamp is None:
        return NONE
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


#: Columns a CLI table fits in; longer cells of the columns that may be cut end in `...`.
TABLE_WIDTH = 100
ELLIPSIS = "..."
#: The narrowest a status column gets: its word (SUCCEEDED, CANCELLED) and a cut reason.
STATUS_CUT = 12


def format_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    cut: Mapping[str, int] | None = None,
    width: int = TABLE_WIDTH,
) -> str:
    """Columns aligned by two spaces, like `kubectl get`; a table wider than `width` narrows
    the columns in `cut` (header -> the narrowest it may get), in that order, and their long
    cells end in `...` (the full text is in `describe` and `--output json`)."""
    cells = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for name, narrowest in (cut or {}).items():
        column = headers.index(name)
        excess = sum(widths) + 2 * (len(widths) - 1) - width
        if excess <= 0:
            break
        least = min(max(narrowest, len(name)), widths[column])
        widths[column] = max(widths[column] - excess, least)
    lines = (
        "  ".join(_fit(cell, w).ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in cells
    )
    return "\n".join(line.rstrip() for line in lines)


def _fit(cell: str, width: int) -> str:
    return cell if len(cell) <= width else cell[: width - len(ELLIPSIS)] + ELLIPSIS


def format_more(shown: int, total: int, offset: int, command: str, noun: str) -> str:
    """The footer of a listing: `20 of 23 jobs`, and when some are left out how to see them,
    e.g. `` (the rest: `cloudml jobs --offset 20`, or all: `--limit 23`)``."""
    text = f"{shown} of {total} {noun}"
    if offset + shown < total:
        text += f" (the rest: `{command} --offset {offset + shown}`, or all: `--limit {total}`)"
    return text


def format_status(job: JobInfo | StudyInfo) -> str:
    """The status with its reason, e.g. `FAILED (worker-0 exited with 1)`."""
    return f"{job.status.value} ({job.reason})" if job.reason else job.status.value


def format_pairs(mapping: Any) -> str:
    return ", ".join(f"{key}={value}" for key, value in mapping.items())


def format_fields(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(key) for key, _ in pairs) + 2
    return "\n".join(f"{key + ':':<{width}}{value}" for key, value in pairs)


def indent_block(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def dumps(data: Any) -> str:
    """Indented JSON text of plain data or models."""
    return json.dumps(to_dict(data), indent=2)


def format_number(value: float | int | str | None, digits: int = 4) -> str:
    """A parameter or metric value, short: `0.001`, `3`, `adam`, `0.9871`; `-` for none."""
    if value is None:
        return NONE
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)
