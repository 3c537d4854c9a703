"""Search spaces and TuningSpec choices in Optuna's terms: suggest, samplers, pruners.

Imported only by the study driver; the rest of the package never imports Optuna.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import optuna

from ..exceptions import InvalidSpec
from ..models import Algorithm, EarlyStopping, Goal, ParamSpec, ParamType, Scale, TuningSpec
from .space import Value, grid_space


def suggest(trial: optuna.trial.BaseTrial, params: Sequence[ParamSpec]) -> dict[str, Value]:
    """Ask `trial` for a value of every parameter, in the parameters' own scale.

    Optuna records the internal value: for UNIT_REVERSE_LOG_SCALE that is y, log-distributed
    on [min, max], and the value is min + max - y (dense near max, as on Google). Map
    `trial.params` with `values_from_internal`.
    """
    values: dict[str, Value] = {}
    for p in params:
        log = p.scale is not Scale.LINEAR
        if p.type is ParamType.DOUBLE:
            lo, hi = float(p.min_value or 0), float(p.max_value or 0)
            internal: Any = trial.suggest_float(p.name, lo, hi, log=log)
        elif p.type is ParamType.INTEGER:
            lo_int, hi_int = int(p.min_value or 0), int(p.max_value or 0)
            internal = trial.suggest_int(p.name, lo_int, hi_int, log=log)
        else:
            internal = trial.suggest_categorical(p.name, list(p.values))
        values[p.name] = value_from_internal(p, internal)
    return values


def value_from_internal(p: ParamSpec, internal: Value) -> Value:
    """The parameter's value for what Optuna recorded (the identity but for reverse log)."""
    if p.scale is not Scale.REVERSE_LOG or p.type not in (ParamType.DOUBLE, ParamType.INTEGER):
        return internal
    if p.type is ParamType.INTEGER:
        return int(p.min_value or 0) + int(p.max_value or 0) - int(internal)
    lo, hi = float(p.min_value or 0), float(p.max_value or 0)
    return min(hi, max(lo, lo + hi - float(internal)))  # clamped: rounding may step outside


def internal_from_value(p: ParamSpec, value: Value) -> Value:
    """What Optuna records for `value` (to enqueue a trial); the reflection is its own inverse."""
    return value_from_internal(p, value)


def values_from_internal(
    params: Sequence[ParamSpec], internal: Mapping[str, Any]
) -> dict[str, Value]:
    """`trial.params` in the parameters' own scale."""
    return {p.name: value_from_internal(p, internal[p.name]) for p in params if p.name in internal}


def internal_from_values(
    params: Sequence[ParamSpec], values: Mapping[str, Any]
) -> dict[str, Value]:
    """Values (e.g. a trial to repeat) as `study.enqueue_trial` wants them."""
    return {p.name: internal_from_value(p, values[p.name]) for p in params if p.name in values}


def direction(spec: TuningSpec) -> Literal["maximize", "minimize"]:
    """Optuna's name for the study's goal."""
    return "maximize" if spec.goal is Goal.MAXIMIZE else "minimize"


def make_sampler(spec: TuningSpec) -> optuna.samplers.BaseSampler:
    """The sampler for `spec.algorithm`, seeded with `spec.seed`."""
    seed = spec.seed
    if spec.algorithm is Algorithm.RANDOM:
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.algorithm is Algorithm.GRID:
        return _GridSampler(grid_space(spec.params), seed=seed)
    if spec.algorithm is Algorithm.CMAES:
        # CMA-ES models numbers only: DISCRETE/CATEGORICAL (and a lone numeric parameter) are
        # sampled independently, by TPE rather than at random, without a warning per trial.
        return optuna.samplers.CmaEsSampler(
            seed=seed,
            independent_sampler=optuna.samplers.TPESampler(seed=seed),
            warn_independent_sampling=False,
        )
    if spec.algorithm is Algorithm.GP:
        for module, name in (("torch", "PyTorch"), ("scipy", "SciPy")):
            if importlib.util.find_spec(module) is None:
                raise InvalidSpec(f"--algorithm gp needs {name}: pip install {module}")
        return optuna.samplers.GPSampler(seed=seed)
    # Optuna 5's TPE is multivariate and uses the constant liar for parallel trials by default.
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(spec: TuningSpec) -> optuna.pruners.BasePruner:
    """The pruner for `spec.early_stopping`."""
    if spec.early_stopping is EarlyStopping.MEDIAN:
        # A median of fewer than ~5 finished curves is mostly noise, yet waiting for 5 in a
        # small study would leave nothing to prune: take a quarter of the budget, 1..5.
        # No warm-up: steps are the trainer's own unit (epochs or global steps), so no fixed
        # count fits both; the median rule compares trials at the same step, which already
        # tolerates a noisy start, and n_min_trials ignores steps few finished trials reached.
        startup = min(5, max(1, spec.max_trials // 4))
        return optuna.pruners.MedianPruner(
            n_startup_trials=startup, n_warmup_steps=0, n_min_trials=startup
        )
    if spec.early_stopping is EarlyStopping.HYPERBAND:
        # Resources are reported steps; the maximum is learnt from the first finished trial.
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto")
    return optuna.pruners.NopPruner()


class _GridSampler(optuna.samplers.GridSampler):
    """GridSampler usable with ask/tell: it stops `study.optimize` when the grid is done, but
    outside `optimize` (the study driver's ask/tell) `Study.stop` raises, so it is skipped
    there; the driver caps trials at `space.grid_size` instead."""

    def after_trial(
        self,
        study: optuna.Study,
        trial: optuna.trial.FrozenTrial,
        state: optuna.trial.TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with contextlib.suppress(RuntimeError):
            super().after_trial(study, trial, state, values)
