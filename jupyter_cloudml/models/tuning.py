"""Hyperparameter tuning: search spaces, studies and their trials."""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping

from ..exceptions import InvalidSpec
from .jobs import JobStatus

# --- tuning -----------------------------------------------------------------------------------


class ParamType(str, enum.Enum):
    """Hyperparameter kinds, named as in Google AI Platform's hptuning config."""

    DOUBLE = "DOUBLE"
    INTEGER = "INTEGER"
    DISCRETE = "DISCRETE"
    CATEGORICAL = "CATEGORICAL"


class Scale(str, enum.Enum):
    """How a numeric range is searched."""

    LINEAR = "UNIT_LINEAR_SCALE"
    LOG = "UNIT_LOG_SCALE"
    REVERSE_LOG = "UNIT_REVERSE_LOG_SCALE"


class Goal(str, enum.Enum):
    MAXIMIZE = "MAXIMIZE"
    MINIMIZE = "MINIMIZE"


class Algorithm(str, enum.Enum):
    TPE = "tpe"
    RANDOM = "random"
    GRID = "grid"
    CMAES = "cmaes"
    GP = "gp"


class EarlyStopping(str, enum.Enum):
    NONE = "none"
    MEDIAN = "median"
    HYPERBAND = "hyperband"


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One hyperparameter's search space.

    DOUBLE/INTEGER use min_value..max_value and scale; DISCRETE uses numeric `values`;
    CATEGORICAL uses string `values`.
    """

    name: str
    type: ParamType
    min_value: float | None = None
    max_value: float | None = None
    values: tuple[float | str, ...] = ()
    scale: Scale = Scale.LINEAR

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", ParamType(self.type))
        object.__setattr__(self, "scale", Scale(self.scale))
        where = f"parameter {self.name!r}"
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]*$", self.name or ""):
            raise InvalidSpec(f"{where}: a name is letters, digits, '_', '-' or '.'")
        if self.type in (ParamType.DOUBLE, ParamType.INTEGER):
            lo, hi = self.min_value, self.max_value
            if lo is None or hi is None:
                raise InvalidSpec(f"{where}: {self.type.value} needs a min and a max value")
            if not lo < hi:
                raise InvalidSpec(f"{where}: min {lo:g} must be less than max {hi:g}")
            if self.scale is not Scale.LINEAR and lo <= 0:
                raise InvalidSpec(f"{where}: a log scale needs min > 0, got {lo:g}")
            if self.type is ParamType.INTEGER and not (
                float(lo).is_integer() and float(hi).is_integer()
            ):
                raise InvalidSpec(f"{where}: INTEGER bounds must be whole numbers")
        elif not self.values:
            raise InvalidSpec(f"{where}: {self.type.value} needs a list of values")
        elif len(set(self.values)) != len(self.values):
            raise InvalidSpec(f"{where}: values are repeated")
        elif self.type is ParamType.DISCRETE and not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in self.values
        ):
            raise InvalidSpec(f"{where}: DISCRETE values must be numbers (use CATEGORICAL)")
        elif self.type is ParamType.CATEGORICAL:
            object.__setattr__(self, "values", tuple(str(v) for v in self.values))


@dataclasses.dataclass(frozen=True)
class TuningSpec:
    """A hyperparameter-tuning study: search space, objective and budget."""

    params: tuple[ParamSpec, ...]
    metric: str
    goal: Goal = Goal.MAXIMIZE
    max_trials: int = 10
    parallel_trials: int = 1
    max_failed_trials: int | None = None
    algorithm: Algorithm = Algorithm.TPE
    early_stopping: EarlyStopping = EarlyStopping.NONE
    seed: int | None = None
    #: A finished study whose trials this one continues from (Google's `resumePreviousJobId`):
    #: they count as its first trials, so it runs only those `max_trials` still misses.
    resume_from: str | None = None

    def __post_init__(self) -> None:
        for name in ("goal", "algorithm", "early_stopping"):
            enum_type = {"goal": Goal, "algorithm": Algorithm, "early_stopping": EarlyStopping}
            object.__setattr__(self, name, enum_type[name](getattr(self, name)))
        if not self.params:
            raise InvalidSpec("a study needs at least one parameter (--param NAME=SPACE)")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise InvalidSpec(f"parameters are named twice: {sorted(names)}")
        if not self.metric:
            raise InvalidSpec("a study needs the metric to optimise (--metric NAME)")
        if self.max_trials < 1:
            raise InvalidSpec(f"--trials must be at least 1, got {self.max_trials}")
        if not self.parallel_trials >= 1:
            raise InvalidSpec(f"--parallel must be at least 1, got {self.parallel_trials}")
        if self.max_failed_trials is not None and self.max_failed_trials < 0:
            raise InvalidSpec(f"max failed trials must be >= 0, got {self.max_failed_trials}")


class TrialStatus(str, enum.Enum):
    """Where one trial of a study stands."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    PRUNED = "PRUNED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclasses.dataclass(frozen=True)
class TrialInfo:
    """One trial: its parameters, the job that ran them and the metric it reached."""

    number: int
    status: TrialStatus
    params: Mapping[str, float | int | str]
    value: float | None = None
    job_id: str | None = None
    steps: int = 0
    reason: str = ""
    started: float | None = None
    finished: float | None = None


@dataclasses.dataclass(frozen=True)
class StudyInfo:
    """A study as reported: the driver's state, every trial so far, and the best one."""

    id: str
    name: str
    status: JobStatus
    tuning: TuningSpec
    reason: str = ""
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    trials: tuple[TrialInfo, ...] = ()
    best_trial: TrialInfo | None = None

    def count(self, status: TrialStatus) -> int:
        return sum(1 for t in self.trials if t.status is status)
