"""The Backend interface: every backend (local, Kubernetes) implements exactly this.

Methods speak only in `jupyter_cloudml.models`; no pid, path or cluster object crosses it.
"""

from __future__ import annotations

import abc
import builtins
import re
import threading
from collections.abc import Iterator

from traitlets import MetaHasTraits
from traitlets.config import LoggingConfigurable

from ..exceptions import InvalidSpec, Unsupported
from ..models import (
    Capabilities,
    DeploymentInfo,
    DeploySpec,
    Event,
    JobInfo,
    JobPage,
    JobQuery,
    LogLine,
    MetricsUpdate,
    Preview,
    QuotaInfo,
    ServiceInfo,
    TensorBoardInfo,
    TrainSpec,
)

#: What every backend's job ids look like (also a DNS-1123 label): anything else is unknown.
JOB_ID_RE = re.compile(r"^[a-z0-9][-a-z0-9]{0,62}$")
#: A file a job may leave in its output folder (no path, no hidden file).
OUTPUT_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def check_output_name(name: str) -> None:
    if not OUTPUT_NAME_RE.match(name):
        raise InvalidSpec(f"output name {name!r} is not a plain file name")


class _BackendMeta(MetaHasTraits, abc.ABCMeta):
    """Lets a configurable class have abstract methods."""


class Backend(LoggingConfigurable, metaclass=_BackendMeta):
    """Where jobs run and where their records live."""

    @abc.abstractmethod
    def submit(self, spec: TrainSpec) -> JobInfo:
        """Record and start (or queue) a job; returns at once with its id."""

    @abc.abstractmethod
    def get(self, job_id: str) -> JobInfo:
        """The job's current state; `NotFound` for an unknown id."""

    @abc.abstractmethod
    def list(self, query: JobQuery | None = None) -> JobPage:
        """Jobs matching `query`, newest first, one page of them."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> JobInfo:
        """Stop a queued or running job (graceful, then forced); no-op for a finished one."""

    @abc.abstractmethod
    def delete(self, job_id: str) -> None:
        """Forget a finished job and everything it stored; `Conflict` while it runs."""

    @abc.abstractmethod
    def logs(
        self,
        job_id: str,
        replica: str | None = None,
        follow: bool = False,
        since: float | None = None,
        tail: int | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[LogLine]:
        """Replica output in time order; with `follow`, keeps yielding until the job ends, or
        (soon) after `stop` is set by another thread: a reader that went away."""

    @abc.abstractmethod
    def events(self, job_id: str) -> builtins.list[Event]:
        """What happened to the job, oldest first."""

    @abc.abstractmethod
    def metrics(self, job_id: str, cursor: str | None = None) -> MetricsUpdate:
        """Scalars the job reported (event files, `cloudml-hypertune`); only those after
        `cursor` when given. Pass the returned cursor back to continue."""

    @abc.abstractmethod
    def read_output(self, job_id: str, name: str) -> bytes:
        """A file the primary replica left in its output folder (e.g. returned variables)."""

    @abc.abstractmethod
    def read_code(self, job_id: str) -> bytes:
        """The job's code package archive, as submitted."""

    @abc.abstractmethod
    def capabilities(self) -> Capabilities:
        """What this backend offers (frameworks, GPUs, images)."""

    # --- optional: backends that offer these say so in `capabilities()` ---------------------

    def preview(self, spec: TrainSpec) -> Preview:
        """The objects `submit(spec)` would create (e.g. manifests), creating nothing and
        reaching no service: what `--dry-run --output yaml` prints."""
        raise self._nothing_to_preview()

    def preview_deployment(self, spec: DeploySpec, engine: str | None = None) -> Preview:
        """The objects `deploy(spec)` would create, as `preview` does for jobs; `engine` picks
        one of the backend's ways to serve (Kubernetes: kserve or plain)."""
        if engine is not None:
            raise InvalidSpec(
                f"--engine chooses how a cluster serves; the {type(self).__name__} has one "
                "way: add --backend kubernetes"
            )
        raise self._nothing_to_preview()

    def _nothing_to_preview(self) -> InvalidSpec:
        return InvalidSpec(
            f"--output yaml prints the objects a backend would create, and the "
            f"{type(self).__name__} creates none: add --backend kubernetes for a cluster's"
        )

    def tensorboard(self, job_ids: builtins.list[str]) -> TensorBoardInfo:
        """A TensorBoard over these jobs' event files: the running one for the same jobs, or a
        new one. Its `url` must be reachable from the Jupyter server (which proxies it)."""
        raise Unsupported(f"the {type(self).__name__} does not run TensorBoard")

    def tensorboards(self) -> builtins.list[TensorBoardInfo]:
        """The TensorBoards running now."""
        return []

    def stop_tensorboard(self, tensorboard_id: str) -> None:
        """Stop one TensorBoard; `NotFound` for an unknown id."""
        raise Unsupported(f"the {type(self).__name__} does not run TensorBoard")

    def deploy(self, spec: DeploySpec) -> DeploymentInfo:
        """Serve a model as a version of an endpoint; returns once it answers (or raises why
        not: a model that does not load is `InvalidSpec`). `spec.model` may be `job:ID[/path]`,
        a path inside that job's job dir."""
        raise Unsupported(f"the {type(self).__name__} does not serve models")

    def data_location(self, path: str) -> str:
        """`path` (a file or folder, or an fsspec URI) as a job's replicas reach it, or
        `InvalidSpec` when they cannot: by default they share this machine's files."""
        return path

    def model_location(self, model: str) -> str:
        """Where a job's replicas read `model` (a path, `job:ID[/path]` or a URI, as `deploy`
        takes it): a path they can open or an fsspec URI, for batch prediction jobs."""
        raise Unsupported(f"the {type(self).__name__} does not run batch prediction")

    def deployments(self) -> builtins.list[DeploymentInfo]:
        """Every deployment, by name."""
        return []

    def get_deployment(self, name: str) -> DeploymentInfo:
        """One deployment; `NotFound` for an unknown name."""
        raise Unsupported(f"the {type(self).__name__} does not serve models")

    def set_traffic(self, name: str, traffic: dict[str, int]) -> DeploymentInfo:
        """Split the requests that name no version between versions (percent, summing to 100)."""
        raise Unsupported(f"the {type(self).__name__} does not serve models")

    def undeploy(self, name: str, version: str | None = None) -> None:
        """Remove a deployment, or one of its versions (which must get no traffic)."""
        raise Unsupported(f"the {type(self).__name__} does not serve models")

    def scale(self, name: str, version: str, replicas: int) -> DeploymentInfo:
        """Serve one version with `replicas` replicas; returns once they are ready."""
        raise Unsupported(f"the {type(self).__name__} does not serve models")

    def install_service(self) -> ServiceInfo:
        """Have this host's service manager keep the backend's work going with nobody using the
        product, across reboots (the local backend: a systemd user unit running the home's
        keeper); where the manager cannot be reached, `todo` holds the commands to run."""
        raise self._no_service()

    def uninstall_service(self) -> ServiceInfo:
        """Stop and remove what `install_service` set up (nothing installed is not an error)."""
        raise self._no_service()

    def service_status(self) -> ServiceInfo:
        """Whether the service is installed, what its manager says of it, whether it runs."""
        raise self._no_service()

    def quota(self) -> QuotaInfo:
        """What this user may use and uses now (the local scheduler's slots, a namespace's
        ResourceQuotas), and the jobs running and queued."""
        raise Unsupported(f"the {type(self).__name__} reports no quota")

    def _no_service(self) -> Unsupported:
        return Unsupported(
            f"the {type(self).__name__} runs nothing on this host to keep as a service; "
            "'cloudml local service' is for the local backend"
        )
