"""JupyterHub on Kubernetes: each tenant's notebook server on a CPU or GPU pod in its own namespace.

In ``jupyterhub_config.py``::

    from jupyter_cloudml.hub import configure
    configure(c)

then tune ``c.CloudMLSpawner`` (GPU types, quotas, idle timeouts; see ``spawner``).
``cloudml hub manifests --user NAME --profile P`` prints what a spawn creates.
"""

from __future__ import annotations

import sys
from typing import Any

from . import culler

SPAWNER = "jupyter_cloudml.hub.spawner.CloudMLSpawner"


def configure(c: Any, *, cull_every: int = 300) -> None:
    """Use ``CloudMLSpawner`` and run the idle culler (checking every ``cull_every`` seconds)."""
    c.JupyterHub.spawner_class = SPAWNER
    c.JupyterHub.services.append(culler.service(sys.executable, cull_every))
    c.JupyterHub.load_roles.append(culler.role())
