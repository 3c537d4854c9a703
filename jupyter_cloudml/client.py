"""`Client`: the one API the magics, the CLI, the server and the widgets call."""

from __future__ import annotations

import builtins
import dataclasses
import os
import pickle
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from traitlets.config import Config

from ._cell_main import RETURNS_FILE
from .backends.base import Backend
from .config import CloudML, load_config
from .exceptions import Conflict, InvalidSpec, NotFound, Unsupported
from .models import (
    STUDY_LABEL,
    BatchPredictionInfo,
    BatchPredictionSpec,
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
    ModelFramework,
    Preview,
    QuotaInfo,
    ServiceInfo,
    StudyInfo,
    TensorBoardInfo,
    TrainSpec,
    TrialInfo,
    TuningSpec,
    is_study,
)

if TYPE_CHECKING:
    import pandas


class Client:
    """Submit and inspect jobs on the configured backend."""

    def __init__(
        self,
        backend: Backend | None = None,
        config: Config | None = None,
        backend_name: str | None = None,
    ) -> None:
        """Over `backend`, else the one named by `backend_name` (a --backend flag) or the
        configuration."""
        if backend is None:
            config = load_config() if config is None else config
            backend = CloudML(config=config).backend_class(backend_name)(config=config)
        self.backend = backend

    def submit(self, spec: TrainSpec) -> JobInfo:
        return self.backend.submit(spec)

    def get(self, job_id: str) -> JobInfo:
        return self.backend.get(job_id)

    def list(self, query: JobQuery | None = None) -> JobPage:
        return self.backend.list(query)

    def cancel(self, job_id: str) -> JobInfo:
        return self.backend.cancel(job_id)

    def delete(self, job_id: str) -> None:
        self.backend.delete(job_id)

    def logs(
        self,
        job_id: str,
        replica: str | None = None,
        follow: bool = False,
        since: float | None = None,
        tail: int | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[LogLine]:
        return self.backend.logs(
            job_id, replica=replica, follow=follow, since=since, tail=tail, stop=stop
        )

    def metrics(self, job_id: str, cursor: str | None = None) -> MetricsUpdate:
        return self.backend.metrics(job_id, cursor)

    def events(self, job_id: str) -> builtins.list[Event]:
        return self.backend.events(job_id)

    def capabilities(self) -> Capabilities:
        return self.backend.capabilities()

    def preview(self, spec: TrainSpec, tuning: TuningSpec | None = None) -> Preview:
        """What submitting `spec` would create on the backend (e.g. its manifests)."""
        if tuning is not None:
            raise InvalidSpec(
                "--output yaml shows training jobs; a study's manifests are not built yet"
            )
        return self.backend.preview(spec)

    def preview_deployment(self, spec: DeploySpec, engine: str | None = None) -> Preview:
        """What deploying `spec` would create on the backend (`engine`: see the backend's)."""
        return self.backend.preview_deployment(spec, engine)

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.25) -> JobInfo:
        """Block until the job ends (or `timeout` seconds pass) and return its last state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.backend.get(job_id)
            if job.status.terminal:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                return job
            time.sleep(poll)

    def cell(self, job_id: str) -> str | None:
        """The notebook cell a job runs (None for a script or a trainer package)."""
        from .packaging import read_cell

        return read_cell(self.backend.read_code(job_id))

    # --- studies ----------------------------------------------------------------------------

    def submit_study(self, spec: TrainSpec, tuning: TuningSpec) -> StudyInfo:
        """Start a tuning study whose trials run `spec` with the parameters Optuna proposes."""
        from .tuning.study import check_resumable, driver_spec, study_info

        if tuning.resume_from is not None:
            check_resumable(self.get_study(tuning.resume_from), tuning)
        return study_info(self.backend, self.backend.submit(driver_spec(spec, tuning)))

    def get_study(self, study_id: str) -> StudyInfo:
        from .tuning.study import study_info

        return study_info(self.backend, self.backend.get(study_id))

    def list_studies(self, query: JobQuery | None = None) -> builtins.list[StudyInfo]:
        return self.page_studies(query)[0]

    def page_studies(self, query: JobQuery | None = None) -> tuple[builtins.list[StudyInfo], int]:
        """One page of studies and how many match in all."""
        from .tuning.study import page_studies

        return page_studies(self.backend, query)

    def delete_study(self, study_id: str) -> None:
        """Forget a finished study: its trials' jobs, then its driver."""
        from .tuning.study import trial_job_ids

        study = self.get_study(study_id)
        if not study.status.terminal:
            raise Conflict(f"study {study_id} is {study.status.value}; cancel it first")
        for job_id in trial_job_ids(self.backend, study_id):
            self.backend.delete(job_id)
        self.backend.delete(study_id)

    def trial_template(self, study_id: str) -> tuple[TrainSpec, str | None]:
        """What every trial of a study runs, and the notebook cell in it (None for a package)."""
        from .packaging import read_cell
        from .tuning.study import trial_template

        template = trial_template(self.backend, self.get_study(study_id).id)
        return template, read_cell(template.package.archive)

    def cancel_study(self, study_id: str) -> StudyInfo:
        """Stop the driver and every trial still running."""
        self.get_study(study_id)  # NotFound for a job that is no study
        self.backend.cancel(study_id)
        active = tuple(s for s in JobStatus if not s.terminal)
        trials = self.backend.list(JobQuery(labels={STUDY_LABEL: study_id}, status=active))
        for job in trials.jobs:
            self.backend.cancel(job.id)
        return self.get_study(study_id)

    def study(self, study_id: str) -> Study:
        """A handle for Python code: `.best_trial`, `.trials_dataframe()`, `.wait()`."""
        self.get_study(study_id)
        return Study(self, study_id)

    # --- TensorBoard --------------------------------------------------------------------------

    def tensorboard(self, ids: builtins.list[str]) -> TensorBoardInfo:
        """A TensorBoard over these jobs' event files. A study's are the runs its driver writes
        (`tuning/board.py`): one per trial named by its parameters, with the HParams of each."""
        from .tuning.study import trial_job_ids

        job_ids: builtins.list[str] = []
        for ref in dict.fromkeys(ids):
            job = self.find(ref, "any")
            if is_study(job) and not trial_job_ids(self.backend, job.id):
                raise Conflict(f"study {job.id} has started no trial yet; try again soon")
            job_ids.append(job.id)
        if not job_ids:
            raise InvalidSpec("name at least one job or study for TensorBoard")
        return self.backend.tensorboard(job_ids)

    def tensorboards(self) -> builtins.list[TensorBoardInfo]:
        return self.backend.tensorboards()

    def stop_tensorboard(self, tensorboard_id: str) -> None:
        self.backend.stop_tensorboard(tensorboard_id)

    # --- deployments --------------------------------------------------------------------------

    def deploy(self, spec: DeploySpec) -> DeploymentInfo:
        """Serve a model; `--model job:STUDY_ID[/path]` means the study's best trial."""
        spec = dataclasses.replace(spec, model=self._job_model(spec.model))
        return self.backend.deploy(spec)

    def _job_model(self, model: str) -> str:
        """`job:ID_OR_NAME[/path]` with the job's id (a study's: its best trial's); other
        models as they are."""
        if not model.startswith("job:"):
            return model
        ref, _, sub = model[len("job:") :].partition("/")
        job = self.find(ref, "any", succeeded=True)
        if is_study(job):
            best = self.get_study(job.id).best_trial
            if best is None or best.job_id is None:
                raise Conflict(f"study {job.id} has no best trial yet")
            job = self.backend.get(best.job_id)
        return f"job:{job.id}" + (f"/{sub}" if sub else "")

    def find(self, ref: str, kind: str = "job", succeeded: bool = False) -> JobInfo:
        """The job with id `ref`, else the newest one named `ref`: the one resolver of every
        verb that takes a job or a study. `kind` is "job" (by name: not a study), "study"
        or "any"; `succeeded` wants one that SUCCEEDED. Errors say what the name matched."""
        try:
            found = self.backend.get(ref)
        except NotFound:
            pass
        else:
            if kind == "study" and not is_study(found):
                raise NotFound(f"{ref} is a job, not a study (studies: `cloudml studies`)")
            return found
        query = JobQuery(name=ref, status=(JobStatus.SUCCEEDED,) if succeeded else (), limit=1000)
        named = [job for job in self.backend.list(query).jobs if job.name == ref]
        studies = [job for job in named if is_study(job)]
        jobs = [job for job in named if not is_study(job)]
        if kind == "any" and studies and jobs:
            raise InvalidSpec(
                f"{ref!r} names a job ({jobs[0].id}) and a study ({studies[0].id}): give the "
                "id (see `cloudml jobs` and `cloudml studies`)"
            )
        wanted = {"job": jobs, "study": studies, "any": named}[kind]
        if wanted:
            return wanted[0]
        done = " that SUCCEEDED" if succeeded else ""
        if kind == "job" and studies:
            raise NotFound(
                f"{ref!r} is a study, not a job (see `cloudml studies describe {ref}`; "
                "jobs: `cloudml jobs`)"
            )
        if kind == "study" and jobs:
            raise NotFound(f"{ref!r} is a job, not a study (studies: `cloudml studies`)")
        what = {"job": "job", "study": "study", "any": "job or study"}[kind]
        listing = "`cloudml studies`" if kind == "study" else "`cloudml jobs`"
        raise NotFound(f"no {what} with id or name {ref!r}{done} (see {listing})")

    def deployments(self) -> builtins.list[DeploymentInfo]:
        return self.backend.deployments()

    def get_deployment(self, name: str) -> DeploymentInfo:
        return self.backend.get_deployment(name)

    def set_traffic(self, name: str, traffic: dict[str, int]) -> DeploymentInfo:
        return self.backend.set_traffic(name, traffic)

    def rollback(self, name: str) -> DeploymentInfo:
        """Send every request back to the version deployed before the one serving most now."""
        deployed = self.backend.get_deployment(name).versions
        versions = [v.version for v in deployed]
        current = max(deployed, key=lambda v: v.traffic)
        index = versions.index(current.version)
        if index == 0:
            raise Conflict(
                f"{name} {current.version} is its first version: nothing to roll back to"
            )
        return self.backend.set_traffic(name, {versions[index - 1]: 100})

    def undeploy(self, name: str, version: str | None = None) -> None:
        self.backend.undeploy(name, version)

    def scale(self, name: str, version: str, replicas: int) -> DeploymentInfo:
        """Serve `version` of deployment `name` with `replicas` replicas (1..16)."""
        return self.backend.scale(name, version, replicas)

    def predict(
        self,
        name: str,
        instances: Any,
        version: str | None = None,
        timeout: float = 60.0,
        retry_seconds: float = 30.0,
        protocol: str = "http",
    ) -> builtins.list[Any]:
        """Predictions of a deployment for `instances` (a list of rows, or an array), through
        its endpoint, as any client would call it: `protocol="http"` (KServe v1) or `"grpc"`
        (the Open Inference Protocol's ModelInfer); asked again for `retry_seconds` while the
        endpoint does not answer (it is coming back)."""
        from .serving.predict import predict_at

        info = self.backend.get_deployment(name)
        return predict_at(info, instances, version, protocol, timeout, retry_seconds)

    def model_metadata(
        self, name: str, version: str | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
        """A deployment's model as its endpoint describes it (Open Inference Protocol v2
        metadata): `inputs` and `outputs`, each with a `name`, `datatype` and `shape` (`-1` for
        the batch dimension), of `version` or else of the version the traffic picks."""
        from .serving.client import get_metadata

        url = self.backend.get_deployment(name).url
        return get_metadata(url, name, version=version, timeout=timeout)

    def fetch(self, job_id: str) -> dict[str, Any]:
        """The variables a job named with `--return`, once it SUCCEEDED."""
        job = self.backend.get(job_id)
        if job.spec is None or not job.spec.returns:
            raise InvalidSpec(f"job {job_id} returns no variables (submit it with --return NAME)")
        if job.status is not JobStatus.SUCCEEDED:
            raise Conflict(
                f"job {job_id} is {job.status.value}; variables come back once it SUCCEEDED"
            )
        values: dict[str, Any] = pickle.loads(self.backend.read_output(job_id, RETURNS_FILE))
        return values

    def read_output(self, job_id: str, name: str) -> bytes:
        """A file the job left in its outputs (e.g. a template's `evaluation.json`)."""
        return self.backend.read_output(job_id, name)

    # --- batch prediction -----------------------------------------------------------------

    def submit_batch_prediction(self, spec: BatchPredictionSpec) -> JobInfo:
        """Predict every instance of the input files as a job of `spec.workers` shards; its
        model is given as to `deploy`, or as a deployment `NAME[:VERSION]`."""
        from .serving.batch_job import batch_job_spec, check_model, plan_inputs
        from .serving.batch_outputs import prepare_output

        model, framework, predictor = self._batch_model(spec)
        location = self.backend.model_location(model)
        check_model(location, framework, predictor)
        files = [self.backend.data_location(f) for f in plan_inputs(spec)]
        self.backend.data_location(spec.output_path)
        prepare_output(spec.output_path, spec.overwrite)
        return self.backend.submit(batch_job_spec(spec, location, framework, predictor, files))

    def _batch_model(self, spec: BatchPredictionSpec) -> tuple[str, ModelFramework, str | None]:
        """The model, framework and predictor of a batch prediction: `job:`, a URI or an
        existing path as for `deploy`, else a deployment `NAME[:VERSION]` (its model)."""
        model = spec.model
        if model.startswith("job:") or "://" in model or os.path.exists(model):
            if spec.framework is None:
                raise InvalidSpec("give the model's --framework (e.g. --framework sklearn)")
            return self._job_model(model), spec.framework, spec.predictor
        name, _, version = model.partition(":")
        try:
            versions = self.backend.get_deployment(name).versions
        except (NotFound, Unsupported):
            raise NotFound(
                f"--model {model!r} is no file, folder, job:ID or deployment NAME[:VERSION]"
            ) from None
        if version:
            chosen = [v for v in versions if v.version == version]
            if not chosen:
                known = ", ".join(v.version for v in versions)
                raise NotFound(f"deployment {name} has no version {version!r} (it has {known})")
            picked = chosen[0]
        else:
            picked = max(versions, key=lambda v: v.traffic)
        if spec.framework is not None and spec.framework is not picked.framework:
            raise InvalidSpec(
                f"--framework {spec.framework.value}: deployment {name} {picked.version} "
                f"serves a {picked.framework.value} model (leave --framework out)"
            )
        return picked.model, picked.framework, picked.predictor

    def batch_prediction(self, job_id: str) -> BatchPredictionInfo:
        """A batch prediction job, its progress and what its finished shards hold."""
        from .serving.batch_job import batch_info

        return batch_info(self.backend.get(job_id), self.backend.metrics(job_id).scalars)

    def prediction_results(self, job_or_path: str, errors: bool = False) -> pandas.DataFrame:
        """A batch prediction's results (a job id or its output folder) as a DataFrame:
        instance, prediction, input_file, line; with `errors`, the rows that failed."""
        from .serving.batch_job import batch_config
        from .serving.batch_outputs import read_results

        path = job_or_path
        if "://" not in path and not os.path.isdir(path):
            path = batch_config(self.backend.get(job_or_path))["output_path"]
        return read_results(path, errors=errors)

    def missing_returns(self, job_id: str, values: dict[str, Any]) -> builtins.list[str]:
        """The `--return` names of a job that its cell never defined (absent from `values`)."""
        spec = self.backend.get(job_id).spec
        return [name for name in (spec.returns if spec else ()) if name not in values]

    def quota(self) -> QuotaInfo:
        """What this user may use and uses now, and the jobs running and queued."""
        return self.backend.quota()

    def install_service(self) -> ServiceInfo:
        """Keep the backend's work going across reboots with nobody using the product (the
        local backend: a systemd user unit running its home's keeper)."""
        return self.backend.install_service()

    def uninstall_service(self) -> ServiceInfo:
        return self.backend.uninstall_service()

    def service_status(self) -> ServiceInfo:
        return self.backend.service_status()


class Study:
    """A handle on one study for Python code: `study.best_trial`, `study.trials_dataframe()`."""

    def __init__(self, client: Client, study_id: str) -> None:
        self.client = client
        self.id = study_id

    @property
    def info(self) -> StudyInfo:
        return self.client.get_study(self.id)

    @property
    def trials(self) -> tuple[TrialInfo, ...]:
        return self.info.trials

    @property
    def best_trial(self) -> TrialInfo | None:
        return self.info.best_trial

    def wait(self, timeout: float | None = None) -> StudyInfo:
        self.client.wait(self.id, timeout=timeout)
        return self.info

    def cancel(self) -> StudyInfo:
        """Stop the driver and every trial still running (as `Client.cancel_study`)."""
        return self.client.cancel_study(self.id)

    def trials_dataframe(self) -> pandas.DataFrame:
        """One row per trial: number, status, value, params (as `params_NAME`), job, times."""
        import pandas

        info = self.info
        rows = []
        for t in info.trials:
            row = {
                "number": t.number,
                "status": t.status.value,
                "value": t.value,
                "steps": t.steps,
                "job_id": t.job_id,
                "started": t.started,
                "finished": t.finished,
                "reason": t.reason,
            }
            row.update({f"params_{k}": v for k, v in t.params.items()})
            rows.append(row)
        columns = [
            "number",
            "status",
            "value",
            *(f"params_{p.name}" for p in info.tuning.params),
            "steps",
            "job_id",
            "started",
            "finished",
            "reason",
        ]
        return pandas.DataFrame(rows, columns=columns)

    def __repr__(self) -> str:
        return f"<Study {self.id}>"
