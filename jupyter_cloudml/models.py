"""The data model every layer speaks: JSON-serialisable dataclasses, validated on construction.

Nothing here knows about processes, files of a job or Kubernetes objects; backends translate.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import re
import time
from collections.abc import Mapping
from typing import Any

from .exceptions import InvalidSpec

NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX = 40
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MEMORY_RE = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
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
        if not self.cpu > 0:
            raise InvalidSpec(f"cpu must be > 0, got {self.cpu}")
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
    limit: int = 100
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 10_000:
            raise InvalidSpec(f"limit must be 1..10000, got {self.limit}")
        if self.offset < 0:
            raise InvalidSpec(f"offset must be >= 0, got {self.offset}")


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


def from_dict(cls: type, data: Any) -> Any:
    """Rebuild a model of class `cls` from `to_dict` output (validating it again)."""
    import typing

    hints = typing.get_type_hints(cls)
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
