"""What this user may use and uses now (`Backend.quota`): `cloudml quota`, the sidebar header."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class QuotaItem:
    """One resource: how much is in use and how much is allowed (`hard`, None: no limit).
    Amounts are as the backend counts them (`2`, `500m`, `8Gi`); `limit` names the rule
    that sets `hard` (a ResourceQuota's name; "" for the local scheduler)."""

    resource: str
    used: str
    hard: str | None
    limit: str = ""


@dataclasses.dataclass(frozen=True)
class QuotaInfo:
    """A backend's quota for this user: `scope` says whose (`local scheduler on HOST`,
    `namespace team-a`), `items` the resources, `running` and `queued` the jobs holding
    resources and waiting for them; `note` says what the items leave out, if anything."""

    scope: str
    items: tuple[QuotaItem, ...] = ()
    running: int = 0
    queued: int = 0
    note: str = ""
