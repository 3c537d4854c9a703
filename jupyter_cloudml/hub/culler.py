"""Idle culling through jupyterhub-idle-culler, GPU servers sooner than CPU ones.

The culler stops servers idle longer than a limit. Ours comes from each server's state
(``CloudMLSpawner.get_state`` records ``idle_timeout``, shorter for GPU profiles), so one culler
service applies both limits; servers without that state get the culler's ``--timeout``.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

#: The key of CloudMLSpawner's part of a server's state.
STATE_KEY = "cloudml"
SERVICE_NAME = "cloudml-idle-culler"
DEFAULT_IDLE_TIMEOUT = 3600
#: The culler's config file: it installs ``cull_arbiter``.
CONFIG_FILE = Path(__file__).with_name("idle_culler_config.py")
#: What the culler's token may do: find idle servers, read their state, stop them.
SCOPES = [
    "list:users",
    "read:users:activity",
    "read:servers",
    "delete:servers",
    "admin:server_state",
]


def idle_limit(server: dict[str, Any], default: float) -> float:
    """Seconds this server may stay idle: from its state, else ``default``."""
    state = (server.get("state") or {}).get(STATE_KEY) or {}
    limit = state.get("idle_timeout")
    return float(limit) if isinstance(limit, int | float) and limit > 0 else default


def cull_arbiter(
    *, inactive: timedelta, inactive_limit: float, server: dict[str, Any], **_: Any
) -> bool:
    """Whether to stop a server: idle for longer than its own limit."""
    return inactive.total_seconds() >= idle_limit(server, inactive_limit)


def service(python: str, cull_every: int = 300) -> dict[str, Any]:
    """The JupyterHub service entry that runs the culler with ``cull_arbiter``."""
    return {
        "name": SERVICE_NAME,
        "command": [
            python,
            "-m",
            "jupyterhub_idle_culler",
            f"--config={CONFIG_FILE}",
            f"--timeout={DEFAULT_IDLE_TIMEOUT}",
            f"--cull-every={cull_every}",
        ],
    }


def role() -> dict[str, Any]:
    """The role granting the culler service its scopes."""
    return {"name": SERVICE_NAME, "scopes": list(SCOPES), "services": [SERVICE_NAME]}
