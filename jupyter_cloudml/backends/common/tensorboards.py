"""What every backend's TensorBoards share: one id for the same set of jobs."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def tensorboard_id(job_ids: Sequence[str]) -> str:
    """The id of the TensorBoard over exactly these jobs (order and repeats do not matter),
    the same on every backend: `tb-` and 12 hex digits of a SHA-256 of the sorted ids."""
    digest = hashlib.sha256("\n".join(sorted(set(job_ids))).encode()).hexdigest()
    return f"tb-{digest[:12]}"
