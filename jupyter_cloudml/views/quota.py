"""How a backend's quota reads: `cloudml quota` and `%cloudml quota`."""

from __future__ import annotations

from ..models import QuotaInfo
from .text import format_table


def format_quota(quota: QuotaInfo) -> str:
    """`scope`, a table of RESOURCE USED HARD (LIMIT), the jobs running and queued, the note."""
    with_limit = any(item.limit for item in quota.items)
    headers = ("RESOURCE", "USED", "HARD", *(("QUOTA",) if with_limit else ()))
    rows = [
        (i.resource, i.used, i.hard or "no limit", *((i.limit,) if with_limit else ()))
        for i in quota.items
    ]
    lines = [f"{quota.scope}:"]
    if rows:
        lines.append(format_table(headers, rows, cut={"RESOURCE": 20}))
    lines.append(f"jobs: {quota.running} running, {quota.queued} queued")
    if quota.note:
        lines.append(quota.note)
    return "\n".join(lines)
