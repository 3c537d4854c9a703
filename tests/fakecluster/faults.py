"""Injected API failures: the next N matching requests answer with a Kubernetes Status error."""

from __future__ import annotations

import dataclasses
import json
import re
import threading

from .common import ApiError

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclasses.dataclass
class Fault:
    """``times`` more requests matching ``method`` (or ``*``) and ``path`` (a regex searched in
    the URL path) fail with ``status``."""

    method: str
    path: re.Pattern[str]
    status: int
    times: int = 1
    retry_after: float | None = None
    reason: str = ""
    message: str = ""


def _target(path: str, body: bytes) -> tuple[str, str]:
    """(plural, name) a request is about, for messages: from the URL or the created body."""
    parts = [p for p in path.split("/") if p]
    name = ""
    try:
        data = json.loads(body) if body else {}
        name = str((data.get("metadata") or {}).get("name") or "") if isinstance(data, dict) else ""
    except ValueError:
        pass
    if "namespaces" in parts:
        rest = parts[parts.index("namespaces") + 2 :]
    else:
        rest = parts[2:] if parts[:1] == ["api"] else parts[3:]
    plural = rest[0] if rest else "resource"
    if len(rest) > 1:
        name = rest[1]
    return plural, name


def default_message(status: int, method: str, path: str, body: bytes) -> tuple[str, str]:
    """(reason, message) a real API server would give for this status."""
    plural, name = _target(path, body)
    if status == 403:
        return "Forbidden", (
            f'{plural} "{name}" is forbidden: exceeded quota: compute-resources, requested: '
            "requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=4, "
            "limited: requests.nvidia.com/gpu=4"
        )
    if status == 409 and method == "POST":
        return "AlreadyExists", f'{plural} "{name}" already exists'
    if status == 409:
        return "Conflict", (
            f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again"
        )
    if status == 429:
        return "TooManyRequests", "Too many requests, please try again later."
    if status == 500:
        return "InternalError", "Internal error occurred: injected fault"
    if status == 503:
        return "ServiceUnavailable", "the server is currently unable to handle the request"
    return _REASONS.get(status, "Unknown"), f"injected failure {status}"


class Faults:
    """The pending injected failures, consumed in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue a fault (after the earlier ones)."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> int:
        """How many injected failures are still to come."""
        with self._lock:
            return sum(f.times for f in self._faults)

    def take(self, method: str, path: str, body: bytes = b"") -> ApiError | None:
        """The error for this request if a fault matches it (using up one of its times)."""
        with self._lock:
            for fault in self._faults:
                if fault.method not in ("*", "", method.upper()) or not fault.path.search(path):
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                break
            else:
                return None
        reason, message = default_message(fault.status, method.upper(), path, body)
        headers, seconds = {}, 0
        if fault.retry_after is not None:
            seconds = int(fault.retry_after)  # HTTP wants whole seconds: fractions dropped
            headers["Retry-After"] = str(seconds)
        details = {"retryAfterSeconds": seconds} if fault.retry_after is not None else None
        return ApiError(
            fault.status, fault.reason or reason, fault.message or message, details, headers
        )
