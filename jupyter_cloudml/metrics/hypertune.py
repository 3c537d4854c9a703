"""Metrics reported through Google's ``cloudml-hypertune`` (``$CLOUD_ML_HP_METRIC_FILE``).

``HyperTune.report_hyperparameter_tuning_metric`` rewrites the whole file on every report, one
JSON object a line: ``{"checkpoint_path", "global_step", "timestamp", "trial", <tag>}``, values
as strings, the last 100 reports only, and a new ``HyperTune()`` starts an empty file. So the
resume position cannot be a byte offset: it is the timestamp of the last report read, in
microseconds, and lines at or before it are skipped wherever they now sit in the file.
"""

from __future__ import annotations

import json
import os

from ..models import Scalar

ENV_METRIC_FILE = "CLOUD_ML_HP_METRIC_FILE"
DEFAULT_TAG = "training/hptuning/metric"
_RESERVED = frozenset({"timestamp", "trial", "global_step", "checkpoint_path"})


def read_hypertune(
    path: str | os.PathLike[str], offset: int = 0
) -> tuple[dict[str, list[Scalar]], int]:
    """Scalars by tag reported after ``offset``, and the offset to pass next time.

    Only complete lines count (the writer may be midway through one). The step is the report's
    ``global_step``, or its line number (from 1) when it gave none. A missing file reads as empty.
    """
    try:
        with open(path, "rb") as file:
            text = file.read()
    except FileNotFoundError:
        return {}, offset
    result: dict[str, list[Scalar]] = {}
    newest = offset
    complete = text[: text.rfind(b"\n") + 1].decode("utf-8", "replace")
    for number, line in enumerate(complete.splitlines(), start=1):
        report = _parse(line)
        if report is None:
            continue
        wall_time, step, metrics = report
        micros = int(wall_time * 1_000_000)
        if micros <= offset:
            continue
        newest = max(newest, micros)
        for tag, value in metrics.items():
            result.setdefault(tag, []).append(Scalar(step or number, wall_time, value))
    return result, newest


def _parse(line: str) -> tuple[float, int, dict[str, float]] | None:
    """(timestamp, global_step, {tag: value}) of one report line; None if it is not one."""
    try:
        report = json.loads(line)
        wall_time = float(report["timestamp"])
        step = int(report.get("global_step") or 0)
        metrics = {tag: float(value) for tag, value in report.items() if tag not in _RESERVED}
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return wall_time, step, metrics
