"""The data model every layer speaks: JSON-serialisable dataclasses, validated on construction.

Nothing here knows about processes, files of a job or Kubernetes objects; backends translate.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import functools
import re
import time
from collections.abc import Mapping
from typing import Any

from .exceptions import InvalidSpec

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 40
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MEMORY_RE = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
# Kubernetes label syntax: an optional DNS-subdomain prefix and '/', then a name of <= 63 chars.
LABEL_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class JobStatus(str, enum.Enum):
    """Lifecycle of a job, the same for every backend."""

    QUEUED = "QUEUED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        """True once the job can change no more."""
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class ReplicaStatus(str, enum.Enum):
    """State of one replica (process or pod) of a job."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"


class Framework(str, enum.Enum):
    """Which distributed convention the replicas follow."""

    TENSORFLOW = "tensorflow"
    PYTORCH = "pytorch"
    GENERIC = "generic"


def check_name(name: str, what: str = "name") -> str:
    """Validate a DNS-1123 label short enough to prefix ids and cluster object names."""
    if not NAME_RE.match(name) or len(name) > NAME_MAX:
        raise InvalidSpec(
            f"{what} {name!r} is not valid: use at most {NAME_MAX} lowercase letters, digits "
            "and '-', starting and ending with a letter or digit (e.g. 'mnist-cnn')"
        )
    return name


def check_label(key: str, value: str | None = None) -> None:
    """Validate a label key (and value) by Kubernetes rules, since labels become cluster labels."""
    if len(key) > 253 or not LABEL_KEY_RE.match(key):
        raise InvalidSpec(
            f"label key {key!r} is not valid: letters, digits, '-', '_', '.', at most 63, "
            "with an optional 'domain/' prefix (e.g. team or example.com/team)"
        )
    if value is not None and not LABEL_VALUE_RE.match(value):
        raise InvalidSpec(
            f"label value {value!r} of {key!r} is not valid: at most 63 letters, digits, '-', "
            "'_' or '.', starting and ending with a letter or digit (e.g. team=cv)"
        )


def slugify(text: str, default: str = "job") -> str:
    """Turn any text (a notebook or script name) into a valid job name."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:NAME_MAX].strip("-")
    return slug or default


@dataclasses.dataclass(frozen=True)
class Resources:
    """What one replica asks for."""

    cpu: float = 1.0
    memory: str | None = None
    gpus: int = 0
    gpu_type: str | None = None

    def __post_init__(self) -> None:
        if not self.cpu >= 0:  # 0: no CPU reserved (best effort), e.g. a study driver
            raise InvalidSpec(f"cpu must be >= 0, got {self.cpu}")
        if self.memory is not None and not MEMORY_RE.match(self.memory):
            raise InvalidSpec(f"memory {self.memory!r} is not a quantity like '512Mi' or '4Gi'")
        if self.gpus < 0:
            raise InvalidSpec(f"gpus must be >= 0, got {self.gpus}")
        if self.gpu_type is not None and self.gpus == 0:
            raise InvalidSpec(f"gpu type {self.gpu_type!r} given without --gpus N")


@dataclasses.dataclass(frozen=True)
class Replicas:
    """How many replicas of each role: chief (0 or 1), workers (>= 1), parameter servers."""

    chief: int = 0
    workers: int = 1
    ps: int = 0

    def __post_init__(self) -> None:
        if self.chief not in (0, 1):
            raise InvalidSpec(f"a job has at most one chief, got {self.chief}")
        if self.workers < 1:
            raise InvalidSpec(f"--workers must be at least 1, got {self.workers}")
        if self.ps < 0:
            raise InvalidSpec(f"--ps must be >= 0, got {self.ps}")

    @property
    def total(self) -> int:
        return self.chief + self.workers + self.ps

    def names(self) -> list[str]:
        """Replica names in launch order: chief-0, worker-0.., ps-0.."""
        return (
            [f"chief-{i}" for i in range(self.chief)]
            + [f"worker-{i}" for i in range(self.workers)]
            + [f"ps-{i}" for i in range(self.ps)]
        )


@dataclasses.dataclass(frozen=True)
class CodePackage:
    """A standard Python package to run: a gzipped tar of files and the module to run with -m."""

    archive: bytes
    module: str
    files: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not MODULE_RE.match(self.module):
            raise InvalidSpec(f"entry module {self.module!r} is not a dotted Python module name")


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """Everything a backend needs to run a training job."""

    name: str
    package: CodePackage
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    framework: Framework = Framework.GENERIC
    replicas: Replicas = Replicas()
    resources: Resources = Resources()
    image: str | None = None
    python: str | None = None
    retries: int = 0
    timeout: float | None = None
    job_dir: str | None = None
    pre_command: str | None = None
    post_command: str | None = None
    node_selector: Mapping[str, str] = dataclasses.field(default_factory=dict)
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    returns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.name, "job name")
        object.__setattr__(self, "framework", Framework(self.framework))
        for key in self.env:
            if not ENV_KEY_RE.match(key):
                raise InvalidSpec(f"environment variable name {key!r} is not valid")
        for key, value in self.labels.items():
            check_label(key, value)
        if self.retries < 0:
            raise InvalidSpec(f"--retries must be >= 0, got {self.retries}")
        if self.timeout is not None and not self.timeout > 0:
            raise InvalidSpec(f"--timeout must be > 0 seconds, got {self.timeout}")
        if self.framework is not Framework.TENSORFLOW and (self.replicas.ps or self.replicas.chief):
            raise InvalidSpec(
                f"--ps and --chief are TensorFlow roles; framework {self.framework.value!r} "
                "has workers only (add --framework tensorflow)"
            )
        for name in self.returns:
            if not name.isidentifier():
                raise InvalidSpec(f"--return name {name!r} is not a Python identifier")

    @property
    def primary_replica(self) -> str:
        """The replica whose success (and outputs) stand for the job's: the chief or worker 0."""
        return "chief-0" if self.replicas.chief else "worker-0"


@dataclasses.dataclass(frozen=True)
class ReplicaInfo:
    """What a backend reports about one replica."""

    name: str
    status: ReplicaStatus = ReplicaStatus.PENDING
    exit_code: int | None = None
    gpus: tuple[int, ...] = ()

    @property
    def role(self) -> str:
        return self.name.rsplit("-", 1)[0]

    @property
    def index(self) -> int:
        return int(self.name.rsplit("-", 1)[1])


@dataclasses.dataclass(frozen=True)
class JobInfo:
    """What a backend reports about a job."""

    id: str
    name: str
    status: JobStatus
    reason: str = ""
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    attempt: int = 0
    replicas: tuple[ReplicaInfo, ...] = ()
    spec: TrainSpec | None = None

    @property
    def elapsed(self) -> float | None:
        """Seconds the job has been (or was) running, None before it started."""
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started


@dataclasses.dataclass(frozen=True)
class JobQuery:
    """Filters and page of a job listing; newest first."""

    status: tuple[JobStatus, ...] = ()
    name: str | None = None
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: Label keys the jobs must not carry (e.g. leave out study drivers and trials).
    without_labels: tuple[str, ...] = ()
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 10_000:
            raise InvalidSpec(f"limit must be 1..10000, got {self.limit}")
        if self.offset < 0:
            raise InvalidSpec(f"offset must be >= 0, got {self.offset}")
        for key, value in self.labels.items():
            check_label(key, value)
        for key in self.without_labels:
            check_label(key)


@dataclasses.dataclass(frozen=True)
class JobPage:
    """One page of a listing and how many jobs match in all."""

    jobs: tuple[JobInfo, ...]
    total: int


@dataclasses.dataclass(frozen=True)
class LogLine:
    """One line a replica printed; time is seconds since the epoch."""

    time: float
    replica: str
    text: str


@dataclasses.dataclass(frozen=True)
class Event:
    """Something the backend did or saw (scheduled, retrying, killed), like a Kubernetes event."""

    time: float
    reason: str
    message: str
    type: str = "Normal"


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a backend can do, so that UIs can adapt."""

    backend: str
    frameworks: tuple[Framework, ...] = tuple(Framework)
    cpus: float = 0.0
    gpus: int = 0
    images: bool = False
    tensorboard: bool = False
    deployments: bool = False


@dataclasses.dataclass(frozen=True)
class TensorBoardInfo:
    """A TensorBoard serving the event files of some jobs.

    `url` is where the backend serves it (reachable from the Jupyter server, not necessarily
    from the browser: UIs go through the server's proxy, see `jupyter_cloudml.tensorboard`).
    """

    id: str
    jobs: tuple[str, ...]
    url: str
    started: float
    reused: bool = False


# --- metrics ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Scalar:
    """One value of a metric at a training step."""

    step: int
    wall_time: float
    value: float


@dataclasses.dataclass(frozen=True)
class MetricsUpdate:
    """Scalars by tag, and an opaque cursor: pass it back to get only what came after."""

    scalars: Mapping[str, tuple[Scalar, ...]]
    cursor: str = ""


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


# --- JSON -------------------------------------------------------------------------------------


def to_dict(obj: Any) -> Any:
    """A model (or a structure of them) as plain JSON data; bytes become base64 text."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode("ascii")
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls)


def from_dict(cls: type, data: Any) -> Any:
    """Rebuild a model of class `cls` from `to_dict` output (validating it again)."""
    hints = _field_types(cls)
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name in data:
            kwargs[field.name] = _coerce(hints[field.name], data[field.name])
    return cls(**kwargs)


def _coerce(tp: Any, value: Any) -> Any:
    import types
    import typing

    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(inner[0], value)
    if origin is tuple:
        (item,) = typing.get_args(tp)[:1]
        return tuple(_coerce(item, v) for v in value)
    if tp is bytes:
        return base64.b64decode(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_dict(tp, value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if origin in (Mapping, dict) or tp is dict:
        return dict(value)
    return value
