"""The study's TensorBoard runs, written by its driver into the study's job dir.

One run per trial, named by its parameters (`lr=0.05,depth=3`), holds the scalars the trial
reported (as the driver reads them) and the trial's hyperparameters; the top of the folder holds
the study's HParams configuration (every parameter's domain, the metric). TensorBoard over the
study then shows each trial by what it tried, and its HParams dashboard shows the study (table,
parallel coordinates, scatter plots).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..metrics.writer import EventFile
from ..models import ParamSpec, ParamType, Scalar, TuningSpec


def run_name(params: Mapping[str, Any]) -> str:
    """`lr=0.05,depth=3`: the parameters in their order, numbers in at most 4 digits; a folder
    name (no `/`), `defaults` for none."""
    parts = [f"{name}={_shown(value)}" for name, value in params.items()]
    return (",".join(parts) or "defaults").replace("/", "_").replace("\\", "_")


def _shown(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


class StudyBoard:
    """Writes the study's runs under `folder`; trials are known by number."""

    def __init__(self, folder: Path, tuning: TuningSpec) -> None:
        self.folder = folder
        self.tuning = tuning
        self._runs: dict[int, tuple[str, EventFile]] = {}
        self._taken: dict[str, int] = {}  # run name -> the trial that has it
        top = EventFile(str(folder))
        try:
            top.write_summary(_config(tuning))
        finally:
            top.close()

    def name_of(self, number: int, params: Mapping[str, Any]) -> str:
        """The trial's run name: by its parameters, and its number too when an earlier trial
        (named first: a restarted driver names them in order) tried the same values."""
        name = run_name(params)
        if self._taken.setdefault(name, number) != number:
            name = f"{name} #{number}"
            self._taken[name] = number
        return name

    def trial(self, number: int, params: Mapping[str, Any]) -> str:
        """Open (or reopen, after a restart of the driver) the trial's run; its name."""
        if number in self._runs:
            return self._runs[number][0]
        name = self.name_of(number, params)
        events = EventFile(str(self.folder / name))
        events.write_summary(_session(params, name))
        self._runs[number] = (name, events)
        return name

    def scalars(self, number: int, scalars: Mapping[str, Iterable[Scalar]]) -> None:
        """Append what the trial reported since the last call (all its tags)."""
        if number not in self._runs:
            return
        steps: dict[tuple[int, float], dict[str, float]] = {}
        for tag, points in scalars.items():
            for point in points:
                steps.setdefault((point.step, point.wall_time), {})[tag] = point.value
        events = self._runs[number][1]
        for (step, wall_time), values in sorted(steps.items()):
            events.write(step, values, wall_time=wall_time)

    def ended(self, number: int) -> None:
        """The trial is over: close its run."""
        run = self._runs.pop(number, None)
        if run is not None:
            run[1].close()

    def close(self) -> None:
        for number in list(self._runs):
            self.ended(number)


def _config(tuning: TuningSpec) -> Any:
    from tensorboard.plugins.hparams import summary_v2 as hp

    return hp.hparams_config_pb(
        hparams=[_hparam(param) for param in tuning.params],
        metrics=[hp.Metric(tuning.metric, display_name=f"{tuning.metric} ({tuning.goal.value})")],
    )


def _hparam(param: ParamSpec) -> Any:
    from tensorboard.plugins.hparams import summary_v2 as hp

    if param.type is ParamType.DOUBLE:
        assert param.min_value is not None and param.max_value is not None
        return hp.HParam(param.name, hp.RealInterval(param.min_value, param.max_value))
    if param.type is ParamType.INTEGER:
        assert param.min_value is not None and param.max_value is not None
        return hp.HParam(param.name, hp.IntInterval(int(param.min_value), int(param.max_value)))
    if param.type is ParamType.DISCRETE:
        return hp.HParam(param.name, hp.Discrete([float(v) for v in param.values]))
    return hp.HParam(param.name, hp.Discrete([str(v) for v in param.values]))


def _session(params: Mapping[str, Any], name: str) -> Any:
    from tensorboard.plugins.hparams import summary_v2 as hp

    values = {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in params.items()}
    return hp.hparams_pb(values, trial_id=name)
