"""A job's metrics, read incrementally from its folders: TensorBoard event files under its job
dir and `cloudml-hypertune` files in its outputs, behind one opaque cursor (JSON)."""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...exceptions import InvalidSpec
from ...models import MetricsUpdate, Scalar
from .launch import HYPERTUNE_DIR


def read_job_metrics(
    job_dir: str | None, outputs: str | Path | None, cursor: str | None
) -> MetricsUpdate:
    """The scalars a job reported after `cursor` (everything without one), and the cursor to
    continue from. `job_dir` must be a local folder to be read (a URI is another service's);
    `outputs` is the folder holding `HYPERTUNE_DIR`. Either may not exist yet."""
    from ...metrics import ScalarReader
    from ...metrics.hypertune import read_hypertune

    state = load_cursor(cursor)
    found: dict[str, builtins.list[Scalar]] = {}
    if job_dir and "://" not in job_dir and os.path.isdir(job_dir):
        reader = ScalarReader(job_dir, cursor=state.get("events") or None)
        merge_scalars(found, reader.read_new())
        state["events"] = reader.cursor()
    offsets = state.setdefault("hypertune", {})
    if outputs is not None:
        for path in sorted((Path(outputs) / HYPERTUNE_DIR).glob("*.metrics")):
            values, offsets[path.name] = read_hypertune(path, offsets.get(path.name, 0))
            merge_scalars(found, values)
    return MetricsUpdate({tag: tuple(v) for tag, v in found.items()}, json.dumps(state))


def load_cursor(cursor: str | None) -> dict[str, Any]:
    """The state behind a metrics cursor this module handed out."""
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except ValueError:
        state = None
    offsets = state.get("hypertune", {}) if isinstance(state, dict) else None
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("events", ""), str)
        or not isinstance(offsets, dict)
        or not all(isinstance(v, int) and v >= 0 for v in offsets.values())
    ):
        raise InvalidSpec("malformed metrics cursor: pass back the cursor a metrics call returned")
    return state


def merge_scalars(
    into: dict[str, builtins.list[Scalar]], more: Mapping[str, Sequence[Scalar]]
) -> None:
    for tag, values in more.items():
        into.setdefault(tag, []).extend(values)
