"""`LocalBackend`: jobs run on this machine, records in SQLite under `$CLOUDML_HOME`.

Nothing to install or start: each job gets a detached supervisor process that outlives the
kernel which submitted it, so jobs (and their records) survive kernel and server restarts.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import shutil
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from traitlets import Dict, Float, List, Unicode, default

from ...exceptions import BackendUnavailable, Conflict, InvalidSpec, NotFound, QuotaExceeded
from ...models import (
    Capabilities,
    DeploymentInfo,
    DeploySpec,
    Event,
    JobInfo,
    JobPage,
    JobQuery,
    JobStatus,
    LogLine,
    MetricsUpdate,
    QuotaInfo,
    ServiceInfo,
    TensorBoardInfo,
    TrainSpec,
)
from ..base import JOB_ID_RE, Backend, check_output_name
from ..common.job_metrics import read_job_metrics
from ..common.loglines import merge_lines
from . import logfiles, systemd_unit
from .deployments import LocalDeployments
from .disk import refused_when_full
from .job_record import record_job
from .job_secrets import forget_secrets
from .keeper import ensure_keeper, has_work
from .notifications import notify_end
from .processes import private_dir, process_alive
from .scheduler import (
    Settings,
    check_job_dir,
    default_home,
    detect_gpus,
    dispatch,
    kill_process_group,
    reap,
    usage,
)
from .store import ACTIVE, JobStore, row_to_info
from .tensorboards import LocalTensorBoards


class LocalBackend(Backend):
    """Runs jobs as local processes, queued by CPU/GPU slots."""

    home = Unicode(
        config=True,
        help="""Folder of the job database and job files. Defaults to $CLOUDML_HOME, else
        `cloudml` in the Jupyter data dir. Example: c.LocalBackend.home = "/data/cloudml" """,
    )
    cpu_slots = Float(
        config=True,
        help="""CPU slots the scheduler hands out (a replica takes --cpu, default 1). A job
        asking more than all slots runs alone. Default: the CPU count.
        Example: c.LocalBackend.cpu_slots = 8""",
    )
    gpu_ids: List[int] = List(
        config=True,
        help="""GPU indices jobs may use, handed out through CUDA_VISIBLE_DEVICES. Default:
        detected with nvidia-smi. Example: c.LocalBackend.gpu_ids = [0, 1]""",
    )
    python = Unicode(
        sys.executable,
        config=True,
        help="""Interpreter that runs replicas unless a job gives --python or a mapped --image.
        Example: c.LocalBackend.python = "/opt/conda/bin/python" """,
    )
    image_interpreters = Dict(
        config=True,
        help="""Local stand-in for --image: maps an image name to an interpreter on this machine.
        Example: c.LocalBackend.image_interpreters = {"tensorflow/tensorflow:2.15.0":
        "/opt/tf/bin/python"}""",
    )
    cancel_grace_seconds = Float(
        10.0,
        config=True,
        help="Seconds replicas get after SIGTERM before SIGKILL. Example: "
        "c.LocalBackend.cancel_grace_seconds = 30",
    )
    retry_backoff_seconds = Float(
        1.0,
        config=True,
        help="First delay before a retry; doubles each attempt, at most retry_backoff_max_seconds."
        " Example: c.LocalBackend.retry_backoff_seconds = 5",
    )
    retry_backoff_max_seconds = Float(
        60.0, config=True, help="Longest delay between retries. Example: ... = 300"
    )
    keeper_idle_seconds = Float(
        30.0,
        config=True,
        help="""The home's keeper (the process that finds dead supervisors and endpoints and
        starts queued jobs while nobody looks) leaves after this many seconds without queued
        or running jobs and deployments; the next use of the home brings it back. The keeper of
        `cloudml local service install` (a systemd user unit) never leaves. Example:
        c.LocalBackend.keeper_idle_seconds = 300""",
    )
    serving_python = Unicode(
        config=True,
        help="""Interpreter of the model servers (it needs kserve). Default:
        $CLOUDML_SERVING_PYTHON, else a virtualenv made on the first deploy in the home's
        `serving-env`, layered over this environment so its frameworks (scikit-learn, torch...)
        load. Example: c.LocalBackend.serving_python = "/opt/serving/bin/python" """,
    )
    tensorboard_idle_seconds = Float(
        1800.0,
        config=True,
        help="""A TensorBoard that served no request for this long stops (an open TensorBoard
        page polls it every 30 s). Example: c.LocalBackend.tensorboard_idle_seconds = 600""",
    )

    @default("home")
    def _default_home(self) -> str:
        return os.environ.get("CLOUDML_HOME") or default_home()

    @default("cpu_slots")
    def _default_cpu_slots(self) -> float:
        return float(os.cpu_count() or 1)

    @default("gpu_ids")
    def _default_gpu_ids(self) -> builtins.list[int]:
        return detect_gpus()

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        try:
            private_dir(Path(self.home), parents=True)
            private_dir(Path(self.home) / "jobs")
        except OSError as e:
            raise BackendUnavailable(f"cannot create the job home {self.home}: {e}") from e
        self.settings = Settings(
            home=os.path.abspath(self.home),
            cpu_slots=self.cpu_slots,
            gpu_ids=tuple(int(g) for g in self.gpu_ids),
            grace_seconds=self.cancel_grace_seconds,
            backoff_seconds=self.retry_backoff_seconds,
            backoff_max_seconds=self.retry_backoff_max_seconds,
            keeper_idle_seconds=self.keeper_idle_seconds,
        )
        self.store = JobStore(self.settings.db_path)
        self.boards = LocalTensorBoards(Path(self.settings.home) / "tensorboards", sys.executable)
        self.endpoints = LocalDeployments(
            Path(self.settings.home) / "deployments", self.serving_interpreter
        )
        if has_work(self.store, self.settings.home):  # back after a crash or a reboot
            ensure_keeper(self.settings)

    # --- submit --------------------------------------------------------------------------------

    def interpreter(self, spec: TrainSpec, role: str | None = None) -> str:
        """The Python that runs the job's replicas here (those of `role`, when given)."""
        if spec.python:
            if not (os.path.isfile(spec.python) and os.access(spec.python, os.X_OK)):
                raise InvalidSpec(f"--python {spec.python!r} is not an executable file")
            return spec.python
        image = spec.image if role is None else spec.image_of(role)
        if image:
            if image not in self.image_interpreters:
                raise InvalidSpec(
                    f"image {image!r} has no local interpreter: run with --python PATH, "
                    "or map it: c.LocalBackend.image_interpreters = "
                    f"{{{image!r}: '/path/python'}}"
                )
            return str(self.image_interpreters[image])
        return self.python

    def _role_pythons(self, spec: TrainSpec, python: str) -> dict[str, str]:
        """The interpreter of every role that does not run `python`."""
        found = {role: self.interpreter(spec, role) for role in spec.role_images}
        return {role: path for role, path in found.items() if path != python}

    def submit(self, spec: TrainSpec) -> JobInfo:
        python = self.interpreter(spec)
        check_job_dir(spec.job_dir)
        role_pythons = self._role_pythons(spec, python)
        gpu_demand = spec.demand()[1]
        if gpu_demand > len(self.settings.gpu_ids):
            raise QuotaExceeded(
                f"the job asks for {gpu_demand} GPU(s) in all its replicas"
                f" but this machine has {len(self.settings.gpu_ids)}"
            )
        with refused_when_full(self.home, "submit the job"):
            job_id = record_job(self.store, self.settings, spec, python, role_pythons)
        dispatch(self.store, self.settings)
        ensure_keeper(self.settings)
        return self.get(job_id)

    # --- read ----------------------------------------------------------------------------------

    def _row(self, job_id: str) -> sqlite3.Row:
        row = self.store.row(job_id) if JOB_ID_RE.match(job_id or "") else None
        if row is None:
            raise NotFound(f"no job {job_id!r} (see `cloudml jobs list`)")
        return row

    def get(self, job_id: str) -> JobInfo:
        row = self._row(job_id)
        if row["status"] in ACTIVE and not process_alive(
            row["supervisor_pid"], row["supervisor_started"]
        ):
            reap(self.store, self.settings)
            row = self._row(job_id)
        return row_to_info(row)

    def list(self, query: JobQuery | None = None) -> JobPage:
        reap(self.store, self.settings)
        rows, total = self.store.query(query or JobQuery())
        return JobPage(tuple(row_to_info(r) for r in rows), total)

    def events(self, job_id: str) -> builtins.list[Event]:
        self._row(job_id)
        return self.store.events(job_id)

    def logs(
        self,
        job_id: str,
        replica: str | None = None,
        follow: bool = False,
        since: float | None = None,
        tail: int | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[LogLine]:
        self._row(job_id)
        log_dir = self.settings.job_folder(job_id) / "logs"
        files = logfiles.replica_logs(log_dir, replica)
        offsets: dict[str, int] = {}
        streams = []
        for name, path in files.items():
            lines, offsets[name] = logfiles.read_lines(path, name)
            streams.append(lines)
        first = merge_lines(streams, since, tail)
        if not follow:
            return iter(first)
        return self._follow(job_id, log_dir, replica, offsets, first, stop or threading.Event())

    def _follow(
        self,
        job_id: str,
        log_dir: Path,
        replica: str | None,
        offsets: dict[str, int],
        first: builtins.list[LogLine],
        stop: threading.Event,
    ) -> Iterator[LogLine]:
        yield from first
        yield from logfiles.follow(log_dir, replica, offsets, lambda: self._ended(job_id), stop)

    def _ended(self, job_id: str) -> bool:
        """Whether the job can print no more: cheaper than `get`, for polling loops."""
        row = self.store.status_row(job_id)
        if row is None:  # deleted meanwhile
            return True
        if row["status"] in ACTIVE and not process_alive(
            row["supervisor_pid"], row["supervisor_started"]
        ):
            return self.get(job_id).status.terminal  # reaps the dead supervisor's job
        return JobStatus(row["status"]).terminal

    def metrics(self, job_id: str, cursor: str | None = None) -> MetricsUpdate:
        spec = row_to_info(self._row(job_id)).spec
        assert spec is not None
        job_dir = self.settings.job_dir(job_id, spec.job_dir)
        return read_job_metrics(job_dir, self.settings.job_folder(job_id) / "outputs", cursor)

    def read_code(self, job_id: str) -> bytes:
        self._row(job_id)
        try:
            return (self.settings.job_folder(job_id) / "package.tar.gz").read_bytes()
        except FileNotFoundError as e:
            raise NotFound(f"job {job_id} has no code package left") from e

    def read_output(self, job_id: str, name: str) -> bytes:
        self._row(job_id)
        check_output_name(name)
        try:
            return (self.settings.job_folder(job_id) / "outputs" / name).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"job {job_id} left no output named {name!r}") from None

    def capabilities(self) -> Capabilities:
        return Capabilities(
            backend="local",
            cpus=self.settings.cpu_slots,
            gpus=len(self.settings.gpu_ids),
            images=bool(self.image_interpreters),
            tensorboard=True,
            deployments=True,
        )

    # --- deployments ---------------------------------------------------------------------------

    def serving_interpreter(self) -> str:
        """The model servers' Python (made on first use when none is configured)."""
        given = self.serving_python or os.environ.get("CLOUDML_SERVING_PYTHON")
        if given:
            return given
        from ...serving.env import ServingEnvError, create_serving_env

        try:
            return create_serving_env(Path(self.settings.home) / "serving-env", private=True)
        except ServingEnvError as e:
            raise BackendUnavailable(f"cannot set up the model-serving environment: {e}") from e

    def model_path(self, model: str) -> str:
        """A model reference as a path: `job:ID[/sub/path]` is inside that job's job dir."""
        if not model.startswith("job:"):
            path = os.path.abspath(os.path.expanduser(model))
            if not os.path.exists(path):
                raise InvalidSpec(f"model {model!r} does not exist")
            return path
        job_id, _, sub = model[len("job:") :].partition("/")
        job = self.get(job_id)
        if job.status is not JobStatus.SUCCEEDED:
            raise Conflict(f"job {job_id} is {job.status.value}; deploy it once it SUCCEEDED")
        assert job.spec is not None
        root = os.path.realpath(self.settings.job_dir(job_id, job.spec.job_dir))
        path = os.path.realpath(os.path.join(root, sub))
        if os.path.commonpath([root, path]) != root:
            raise InvalidSpec(f"model {model!r} points outside the job's job dir")
        if not os.path.exists(path):
            listing = ", ".join(sorted(os.listdir(root))[:10]) if os.path.isdir(root) else ""
            raise InvalidSpec(
                f"job {job_id} left no {sub or 'job dir'} "
                f"(its job dir holds: {listing or 'nothing'})"
            )
        return path

    def model_location(self, model: str) -> str:
        return model if "://" in model else self.model_path(model)

    def deploy(self, spec: DeploySpec) -> DeploymentInfo:
        info = self.endpoints.deploy(spec, self.model_path(spec.model))
        ensure_keeper(self.settings)  # it brings the endpoint back if it dies
        return info

    def deployments(self) -> builtins.list[DeploymentInfo]:
        return self.endpoints.list()

    def get_deployment(self, name: str) -> DeploymentInfo:
        return self.endpoints.get(name)

    def set_traffic(self, name: str, traffic: dict[str, int]) -> DeploymentInfo:
        return self.endpoints.set_traffic(name, traffic)

    def undeploy(self, name: str, version: str | None = None) -> None:
        self.endpoints.undeploy(name, version)

    def scale(self, name: str, version: str, replicas: int) -> DeploymentInfo:
        return self.endpoints.scale(name, version, replicas)

    # --- TensorBoard ---------------------------------------------------------------------------

    def tensorboard(self, job_ids: builtins.list[str]) -> TensorBoardInfo:
        logdirs = {}
        for job_id in job_ids:
            spec = row_to_info(self._row(job_id)).spec
            assert spec is not None
            job_dir = self.settings.job_dir(job_id, spec.job_dir)
            if "://" not in job_dir:
                os.makedirs(job_dir, exist_ok=True)  # a queued job's folder TensorBoard can watch
            logdirs[job_id] = job_dir
        return self.boards.launch(logdirs, idle_seconds=self.tensorboard_idle_seconds)

    def tensorboards(self) -> builtins.list[TensorBoardInfo]:
        return self.boards.list()

    def stop_tensorboard(self, tensorboard_id: str) -> None:
        self.boards.stop(tensorboard_id)

    # --- change --------------------------------------------------------------------------------

    def cancel(self, job_id: str) -> JobInfo:
        with self.store.transaction() as db:
            row = self._row(job_id)
            status = JobStatus(row["status"])
            if status.terminal:
                return row_to_info(row)
            self.store.update(job_id, db, cancel_requested=1)
            if status is JobStatus.QUEUED:
                self.store.finish(
                    db,
                    job_id,
                    JobStatus.CANCELLED,
                    "cancelled before it started",
                    event="Cancelled",
                    message="cancelled while queued",
                    type="Normal",
                )
                forget_secrets(self.settings.job_folder(job_id))
        if status is JobStatus.QUEUED:
            dispatch(self.store, self.settings)  # its claim is free for the jobs behind it
            spec = row_to_info(row).spec
            if spec is not None and spec.notify:  # no supervisor will; one try: cancel is quick
                notify_end(self.store, job_id, spec.notify, attempts=1)
        else:
            self._stop_supervisor(job_id)
        return self.get(job_id)

    def _stop_supervisor(self, job_id: str) -> None:
        """SIGTERM the job's process group; force it (and the record) after the grace period."""
        row = self._row(job_id)
        pid, started = row["supervisor_pid"], row["supervisor_started"]
        if pid is not None and process_alive(pid, started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.grace_seconds + 5
        while time.monotonic() < deadline:
            row = self._row(job_id)
            if JobStatus(row["status"]).terminal:
                return
            if pid is not None and not process_alive(pid, started):
                reap(self.store, self.settings)  # died of the SIGTERM: the reaper records it
                break
            time.sleep(0.05)
        if pid is not None:
            kill_process_group(pid, started)
        with self.store.transaction() as db:
            self.store.finish(
                db,
                job_id,
                JobStatus.CANCELLED,
                "cancelled by the user (killed after the grace period)",
                event="Cancelled",
                message="the supervisor did not stop in time; killed",
            )
        forget_secrets(self.settings.job_folder(job_id))
        dispatch(self.store, self.settings)

    def delete(self, job_id: str) -> None:
        row = self._row(job_id)
        if not JobStatus(row["status"]).terminal:
            raise Conflict(f"job {job_id} is {row['status']}; cancel it before deleting it")
        self.store.remove(job_id)
        shutil.rmtree(self.settings.job_folder(job_id), ignore_errors=True)

    def install_service(self) -> ServiceInfo:
        return systemd_unit.install(self.settings.home)

    def uninstall_service(self) -> ServiceInfo:
        return systemd_unit.uninstall(self.settings.home)

    def service_status(self) -> ServiceInfo:
        return systemd_unit.status(self.settings.home)

    def quota(self) -> QuotaInfo:
        return usage(self.store, self.settings)
