"""What a backend would create for a job or a deployment, shown by `--dry-run --output yaml`."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Preview:
    """The objects a backend would create, in the order it would create them, created nowhere
    (e.g. a Kubernetes backend's manifests). `backend` names who would create them."""

    backend: str
    objects: tuple[dict[str, Any], ...]
