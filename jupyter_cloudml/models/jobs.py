"""Training jobs: their specification, state, logs, events and metrics."""

from __future__ import annotations

import dataclasses
import enum
import json
import time
from collections.abc import Mapping

from ..exceptions import InvalidSpec
from .common import (
    ENV_KEY_RE,
    MODULE_RE,
    SECRET,
    Resources,
    check_label,
    check_name,
    check_webhook,
    to_dict,
)


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
    #: Stopped when its job ended without it (e.g. a parameter server once the chief is done).
    STOPPED = "STOPPED"
    #: Stopped, or never started, because the job was cancelled.
    CANCELLED = "CANCELLED"


class Framework(str, enum.Enum):
    """Which distributed convention the replicas follow."""

    TENSORFLOW = "tensorflow"
    PYTORCH = "pytorch"
    GENERIC = "generic"


#: Replica roles, in launch order.
ROLES = ("chief", "worker", "ps", "evaluator")


@dataclasses.dataclass(frozen=True)
class Replicas:
    """How many replicas of each role: chief (0 or 1), workers (>= 1, or >= 0 beside a
    chief), parameter servers and evaluators (TensorFlow's, which read checkpoints beside the
    training cluster)."""

    chief: int = 0
    workers: int = 1
    ps: int = 0
    evaluators: int = 0

    def __post_init__(self) -> None:
        if self.chief not in (0, 1):
            raise InvalidSpec(f"a job has at most one chief, got {self.chief}")
        if self.workers < (0 if self.chief else 1):  # a lone chief: Google's BASIC tier
            raise InvalidSpec(f"--workers must be at least 1, got {self.workers}")
        if self.ps < 0:
            raise InvalidSpec(f"--ps must be >= 0, got {self.ps}")
        if self.evaluators < 0:
            raise InvalidSpec(f"--evaluators must be >= 0, got {self.evaluators}")

    @property
    def total(self) -> int:
        return self.chief + self.workers + self.ps + self.evaluators

    def count(self, role: str) -> int:
        """How many replicas `role` has."""
        return {
            "chief": self.chief,
            "worker": self.workers,
            "ps": self.ps,
            "evaluator": self.evaluators,
        }[role]

    def names(self) -> list[str]:
        """Replica names in launch order: chief-0, worker-0.., ps-0.., evaluator-0.."""
        return [f"{role}-{i}" for role in ROLES for i in range(self.count(role))]


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
    #: Environment values kept out of every record (`--secret`, `--env-from-file`): the JSON
    #: of a spec keeps their names only (`to_dict`), and backends hand the values to the job
    #: apart (a private file locally, a Secret on Kubernetes).
    secrets: Mapping[str, str] = dataclasses.field(
        default_factory=dict, repr=False, metadata={SECRET: True}
    )
    framework: Framework = Framework.GENERIC
    replicas: Replicas = Replicas()
    #: What each replica asks for, unless its role has its own in `role_resources`.
    resources: Resources = Resources()  # noqa: RUF009 - frozen, so sharing it is safe
    image: str | None = None
    #: Per-role overrides (`--resources ps=cpu:4`, a config's `parameterServerType`).
    role_resources: Mapping[str, Resources] = dataclasses.field(default_factory=dict)
    role_images: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: TF_CONFIG's name for the chief: "chief", or "master" as Google's legacy jobs have it.
    tf_chief_name: str = "chief"
    python: str | None = None
    retries: int = 0
    timeout: float | None = None
    #: Seconds a job may wait for resources before it fails (Google's `maxWaitTime`).
    max_wait: float | None = None
    job_dir: str | None = None
    pre_command: str | None = None
    post_command: str | None = None
    node_selector: Mapping[str, str] = dataclasses.field(default_factory=dict)
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    returns: tuple[str, ...] = ()
    #: The identity replicas run as, where the backend has them (a Kubernetes ServiceAccount).
    service_account: str | None = None
    #: A webhook (http or https URL) that receives the final JobInfo as JSON (`--notify`).
    notify: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name, "job name")
        object.__setattr__(self, "framework", Framework(self.framework))
        for key in [*self.env, *self.secrets]:
            if not ENV_KEY_RE.match(key):
                raise InvalidSpec(f"environment variable name {key!r} is not valid")
        reserved = sorted(key for key in self.secrets if key.startswith("CLOUDML_"))
        if reserved:
            raise InvalidSpec(f"secret {reserved[0]}: CLOUDML_* variables are set by the platform")
        both = sorted(set(self.env) & set(self.secrets))
        if both:
            raise InvalidSpec(f"{', '.join(both)} given both as --env and as a secret: keep one")
        for key, value in self.labels.items():
            check_label(key, value)
        if self.retries < 0:
            raise InvalidSpec(f"--retries must be >= 0, got {self.retries}")
        if self.timeout is not None and not self.timeout > 0:
            raise InvalidSpec(f"--timeout must be > 0 seconds, got {self.timeout}")
        if self.max_wait is not None and not self.max_wait > 0:
            raise InvalidSpec(f"--max-wait must be > 0 seconds, got {self.max_wait}")
        if self.notify is not None:
            check_webhook(self.notify)
        replicas = self.replicas
        if self.framework is not Framework.TENSORFLOW and (
            replicas.ps or replicas.chief or replicas.evaluators
        ):
            raise InvalidSpec(
                f"--ps, --chief and --evaluators are TensorFlow roles; framework "
                f"{self.framework.value!r} has workers only (add --framework tensorflow)"
            )
        for kind, per_role in (("resources", self.role_resources), ("image", self.role_images)):
            for role in per_role:
                if role not in ROLES:
                    raise InvalidSpec(f"{kind} for role {role!r}: the roles are {', '.join(ROLES)}")
                if not replicas.count(role):
                    raise InvalidSpec(f"{kind} for role {role!r}, but the job has no {role}")
        if self.tf_chief_name == "master" and not replicas.chief:
            raise InvalidSpec(
                "TF_CONFIG's 'master' is the chief, and the job has none (add --chief)"
            )
        if self.tf_chief_name not in ("chief", "master"):
            raise InvalidSpec(
                f"TF_CONFIG names the chief 'chief' or 'master', not {self.tf_chief_name!r}"
            )
        for name in self.returns:
            if not name.isidentifier():
                raise InvalidSpec(f"--return name {name!r} is not a Python identifier")

    def resources_of(self, role: str) -> Resources:
        """What one replica of `role` asks for."""
        return self.role_resources.get(role, self.resources)

    def image_of(self, role: str) -> str | None:
        """The image a replica of `role` runs (None: the backend's default)."""
        return self.role_images.get(role, self.image)

    def demand(self) -> tuple[float, int]:
        """CPUs and GPUs of all replicas together."""
        roles = [(role, self.replicas.count(role)) for role in ROLES]
        cpu = sum(self.resources_of(role).cpu * n for role, n in roles)
        return cpu, sum(self.resources_of(role).gpus * n for role, n in roles)

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
    from the browser: UIs go through the server's proxy, see `jupyter_cloudml.views.tensorboards`).
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


def spec_to_json(spec: TrainSpec) -> str:
    """The spec as stored: everything but the code archive (which the backend keeps apart)."""
    data = to_dict(spec)
    data["package"]["archive"] = ""
    return json.dumps(data)
