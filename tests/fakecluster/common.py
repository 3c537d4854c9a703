"""Small helpers every part of the fake cluster shares: time stamps, names, errors."""

from __future__ import annotations

import asyncio
import datetime
import random
import string
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")

Obj = dict[str, Any]

_SUFFIX_CHARS = string.ascii_lowercase + string.digits


def rfc3339(when: float | None = None) -> str:
    """``2026-11-24T10:00:00Z``: seconds precision, UTC, as the API server writes times."""
    moment = datetime.datetime.fromtimestamp(time.time() if when is None else when, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(when_ns: int) -> str:
    """``2026-11-24T10:00:00.123456789Z``: the kubelet's fixed-width log time stamps."""
    seconds, nanos = divmod(when_ns, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return f"{moment.strftime('%Y-%m-%dT%H:%M:%S')}.{nanos:09d}Z"


def parse_time(text: str | None) -> float | None:
    """RFC 3339 (with or without fractions) -> epoch seconds."""
    if not text:
        return None
    head, _, rest = text.rstrip("Z").partition(".")
    moment = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
    fraction = float(f"0.{rest}") if rest.isdigit() else 0.0
    return moment.timestamp() + fraction


async def within(awaitable: Awaitable[T], seconds: float) -> T:
    """``await`` with a time limit (TimeoutError); unlike ``asyncio.wait_for`` on Python 3.11,
    it never swallows a cancellation that races with the result."""
    async with asyncio.timeout(max(seconds, 0.0)):
        return await awaitable


def random_suffix(n: int = 5) -> str:
    """The random tail of generated names: ``[a-z0-9]{n}``."""
    return "".join(random.choices(_SUFFIX_CHARS, k=n))


def meta(obj: Obj) -> Obj:
    """The object's metadata dict (created when missing)."""
    m: Obj = obj.setdefault("metadata", {})
    return m


def owner_ref(owner: Obj, *, controller: bool = True) -> Obj:
    """An ownerReference pointing at ``owner`` (a controller reference by default)."""
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: Obj) -> str | None:
    """The uid of the object's controlling owner, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def controller_kind(obj: Obj) -> str | None:
    """The kind of the object's controlling owner, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind"))
    return None


def set_condition(
    conditions: list[Obj], kind: str, status: str, reason: str = "", message: str = "", **extra: Any
) -> bool:
    """Add or update a condition in place; whether anything changed (transition time kept
    when the status stays the same, as controllers do)."""
    now = rfc3339()
    for cond in conditions:
        if cond.get("type") == kind:
            if (cond.get("status"), cond.get("reason"), cond.get("message")) == (
                status,
                reason,
                message,
            ):
                return False
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now
            cond.update(status=status, reason=reason, message=message, **extra)
            return True
    cond = {"type": kind, "status": status, "reason": reason, "message": message}
    cond.update(extra)
    cond["lastTransitionTime"] = now
    conditions.append(cond)
    return True


def condition_true(obj: Obj, kind: str) -> bool:
    """Whether the object has a condition of that type with status "True"."""
    return any(
        c.get("type") == kind and c.get("status") == "True"
        for c in obj.get("status", {}).get("conditions") or []
    )


class ApiError(Exception):
    """A Kubernetes ``Status`` failure: HTTP code, reason and message."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: Obj | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> Obj:
        """The error as a ``Status`` object."""
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def forbidden(group: str, resource: str, name: str | None, why: str) -> ApiError:
    """A 403 ``Status`` worded as the API server's ``NewForbidden``: ``jobs.batch "x" is
    forbidden: <why>`` (no name for collections)."""
    qualified = f"{resource}.{group}" if group else resource
    target = f'{qualified} "{name}"' if name else qualified
    details = {"name": name, "group": group, "kind": resource}
    return ApiError(
        403,
        "Forbidden",
        f"{target} is forbidden: {why}",
        {key: value for key, value in details.items() if value},
    )
