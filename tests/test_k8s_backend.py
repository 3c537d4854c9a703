"""KubernetesBackend lifecycles against an emulated cluster over real HTTP.

The API server is kmock over loopback with the semantics the backend relies on (see
`fakecluster`); its controllers create pods for Jobs and its kubelet runs each pod's command
as a real process, so the project's in-pod entrypoint, code package, TF_CONFIG and metrics go
through the same path as on a cluster. Faults (409, 429, 5xx, 410, connection refused) are
injected at the API server.
"""

from __future__ import annotations

import json
import sys
import time

import pytest
from cloudml_testkit import wait_for
from fakecluster import FakeCluster

from jupyter_cloudml.backends.kubernetes import KubernetesBackend, rbac
from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import BackendUnavailable, Conflict, NotFound, QuotaExceeded
from jupyter_cloudml.hub.tenant import NOTEBOOK_ACCOUNT
from jupyter_cloudml.models import (
    Framework,
    JobStatus,
    ParamSpec,
    ParamType,
    Replicas,
    Resources,
    TrainSpec,
    TuningSpec,
)
from jupyter_cloudml.packaging import package_files

IMAGE = "jupyter-cloudml/trainer:latest"
SERVING_IMAGE = "jupyter-cloudml/serving:latest"
CLAIM = "cloudml-shared"
GPU = "NVIDIA-A100-SXM4-80GB"


@pytest.fixture
def cluster(tmp_path):
    with FakeCluster(
        tmp_path / "cluster", namespace="team-a", gpus=2, gpu_product=GPU,
        images={IMAGE: sys.executable, SERVING_IMAGE: sys.executable},
    ) as fake:  # fmt: skip
        yield fake
        assert not fake.errors, fake.errors  # the emulated cluster itself stayed sound


@pytest.fixture
def shared(cluster, tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    cluster.pvc_dirs[CLAIM] = str(folder)
    return folder


def tenant_kubeconfig(cluster: FakeCluster, namespace: str = "team-a") -> str:
    """A kubeconfig of a tenant's notebook server: its identity holds exactly the Roles the
    hub gives tenants (``rbac.NOTEBOOK_RULES``, and the study driver's), and nothing else."""
    objects = [
        *rbac.identity_objects(NOTEBOOK_ACCOUNT, namespace, rbac.NOTEBOOK_RULES),
        *rbac.study_driver_objects(namespace),
    ]
    for obj in objects:
        cluster.create(obj["kind"].lower() + "s", obj, namespace)
    return str(cluster.kubeconfig_for(namespace, NOTEBOOK_ACCOUNT))


@pytest.fixture
def backend(cluster, shared):
    backend = KubernetesBackend(
        kubeconfig=tenant_kubeconfig(cluster), shared_claim=CLAIM, shared_mount=str(shared)
    )
    yield backend
    backend.close()
    assert not cluster.denied, cluster.denied  # the tenant's Role allowed all the magics did


def spec(code: str, name: str = "train", **fields) -> TrainSpec:
    return TrainSpec(name=name, package=package_files({"main.py": code.encode()}, "main"), **fields)


def wait_status(backend, job_id, *statuses, timeout=60.0):
    """Wait for one of `statuses`; a job that ends in another one fails the test at once."""

    def reached():
        info = backend.get(job_id)
        if info.status.terminal and info.status not in statuses:
            raise AssertionError(f"job ended {info.status.value}: {info.reason}")
        return info.status in statuses

    wait_for(reached, timeout=timeout)
    return backend.get(job_id)


def objects_of(cluster, job_id):
    key = f"cloudml.io/job={job_id}"
    return {
        (plural, o["metadata"]["name"])
        for plural in ("jobs", "pods", "configmaps", "services")
        for o in cluster.objects(plural)
        if key.split("=")[1] == (o["metadata"].get("labels") or {}).get("cloudml.io/job")
    }


TRAINER = """
import os, jupyter_cloudml
print("replica", os.environ["CLOUDML_REPLICA"], "of", os.environ["CLOUDML_JOB_ID"], flush=True)
for step in range(3):
    jupyter_cloudml.report(step=step, loss=1.0 / (step + 1))
print("done", flush=True)
"""


def test_single_job_runs_with_logs_metrics_events_and_is_deleted_with_all_it_made(backend, cluster):
    job = backend.submit(spec(TRAINER))
    assert job.status in (JobStatus.QUEUED, JobStatus.STARTING, JobStatus.RUNNING)
    done = wait_status(backend, job.id, JobStatus.SUCCEEDED, JobStatus.FAILED)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    assert done.replicas[0].exit_code == 0 and done.started and done.finished

    lines = list(backend.logs(job.id))
    assert [ln.text for ln in lines if ln.text.startswith("replica")] == [
        f"replica worker-0 of {job.id}"
    ]
    assert all(ln.replica == "worker-0" for ln in lines)
    assert lines == sorted(lines, key=lambda ln: ln.time)
    assert [s.value for s in backend.metrics(job.id).scalars["loss"]] == [1.0, 0.5, 1 / 3]
    reasons = [e.reason for e in backend.events(job.id)]
    assert reasons[0] == "Submitted" and "Started" in reasons and "Exited" in reasons
    assert backend.read_code(job.id) == spec(TRAINER).package.archive

    made = objects_of(cluster, job.id)
    assert {p for p, _ in made} >= {"jobs", "pods", "configmaps"}
    for plural in ("jobs", "configmaps"):
        for obj in cluster.objects(plural):
            labels = obj["metadata"]["labels"]
            if labels.get("cloudml.io/job") == job.id:
                assert labels["app.kubernetes.io/managed-by"] == "jupyter-cloudml"
    backend.delete(job.id)
    wait_for(lambda: not objects_of(cluster, job.id), timeout=10)
    with pytest.raises(NotFound):
        backend.get(job.id)


DISTRIBUTED = """
import json, os, time
role = os.environ["CLOUDML_REPLICA"].split("-")[0]
tf = json.loads(os.environ["TF_CONFIG"])
print("task", tf["task"]["type"], tf["task"]["index"], sorted(tf["cluster"]), flush=True)
if role == "ps":
    time.sleep(600)  # parameter servers never end by themselves
"""


def test_distributed_tensorflow_job_gets_tf_config_and_its_ps_is_stopped(backend, cluster):
    job = backend.submit(
        spec(DISTRIBUTED, framework=Framework.TENSORFLOW, replicas=Replicas(workers=2, ps=1))
    )
    done = wait_status(backend, job.id, JobStatus.SUCCEEDED, JobStatus.FAILED)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    lines = list(backend.logs(job.id))
    tasks = sorted(ln.text for ln in lines if ln.text.startswith("task"))
    assert tasks == [
        "task ps 0 ['ps', 'worker']",
        "task worker 0 ['ps', 'worker']",
        "task worker 1 ['ps', 'worker']",
    ]
    assert {ln.replica for ln in lines} == {"worker-0", "worker-1", "ps-0"}

    def ps_stopped():
        return not [
            p
            for p in cluster.objects("pods")
            if p["metadata"]["labels"].get("cloudml.io/replica-type") == "ps"
            and p["status"].get("phase") == "Running"
        ]

    wait_for(ps_stopped, timeout=15)
    services = [s for s in cluster.objects("services") if s["metadata"]["name"] == job.id]
    assert services and services[0]["spec"]["clusterIP"] == "None"


def test_api_calls_per_distributed_submission_are_few(backend):
    backend.list()  # the initial lists of the watches are not the submission's
    before = len(backend.api.calls)
    backend.submit(
        spec(DISTRIBUTED, framework=Framework.TENSORFLOW, replicas=Replicas(workers=2, ps=1))
    )
    calls = [c.split()[0] + " " + c.rsplit("/", 1)[1] for c in backend.api.calls[before:]]
    # the primary Job (suspended), the objects it owns, then starting it: nothing else
    assert calls == [
        "POST jobs",
        "POST configmaps",
        "POST services",
        "POST jobs",
        f"PATCH {calls[-1].split()[1]}",
    ]
    assert calls[-1].endswith("-worker")


FLAKY = """
import os, pathlib
marker = pathlib.Path(os.environ["CLOUDML_JOB_DIR"]) / "attempted"
if not marker.exists():
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("1")
    raise SystemExit(1)
print("second time lucky", flush=True)
"""


def test_failed_replica_is_retried_then_succeeds(backend):
    job = backend.submit(spec(FLAKY, retries=1))
    done = wait_status(backend, job.id, JobStatus.SUCCEEDED, JobStatus.FAILED)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    assert done.attempt == 2
    assert "second time lucky" in [ln.text for ln in backend.logs(job.id)]
    assert any(e.reason == "Exited" and "with 1" in e.message for e in backend.events(job.id))


def test_user_error_fails_at_once_and_crash_fails_after_retries(backend):
    usage = backend.submit(spec("raise SystemExit(2)", retries=5))
    done = wait_status(backend, usage.id, JobStatus.FAILED, JobStatus.SUCCEEDED)
    assert done.status is JobStatus.FAILED and "PodFailurePolicy" in done.reason
    assert done.attempt == 2  # one pod failed, none retried
    crash = backend.submit(spec("import sys; print('boom', file=sys.stderr); sys.exit(3)"))
    failed = wait_status(backend, crash.id, JobStatus.FAILED, JobStatus.SUCCEEDED)
    assert failed.status is JobStatus.FAILED
    assert "BackoffLimitExceeded" in failed.reason and "worker-0 exited with 3" in failed.reason
    assert "boom" in [ln.text for ln in backend.logs(crash.id)]


def test_cancel_stops_pods_and_delete_needs_a_finished_job(backend, cluster):
    job = backend.submit(spec("import time\nprint('up', flush=True)\ntime.sleep(600)"))
    wait_status(backend, job.id, JobStatus.RUNNING)
    with pytest.raises(Conflict, match="cancel it before deleting"):
        backend.delete(job.id)
    cancelled = backend.cancel(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    wait_for(lambda: not [p for p in cluster.objects("pods") if job.id in p["metadata"]["name"]])
    assert backend.cancel(job.id).status is JobStatus.CANCELLED  # again: a no-op
    backend.delete(job.id)


def test_follow_streams_lines_until_the_job_ends(backend):
    code = "import time\nfor i in range(5):\n    print('tick', i, flush=True)\n    time.sleep(0.2)"
    job = backend.submit(spec(code))
    wait_status(backend, job.id, JobStatus.RUNNING, JobStatus.SUCCEEDED)
    texts = [ln.text for ln in backend.logs(job.id, follow=True)]
    assert [t for t in texts if t.startswith("tick")] == [f"tick {i}" for i in range(5)]
    assert backend.get(job.id).status is JobStatus.SUCCEEDED


def test_waiting_for_gpus_and_for_an_image_is_explained(backend):
    greedy = backend.submit(spec("print(1)", resources=Resources(gpus=4, gpu_type="a100")))
    wait_for(lambda: "Insufficient nvidia.com/gpu" in backend.get(greedy.id).reason, timeout=15)
    assert backend.get(greedy.id).status is JobStatus.QUEUED
    assert any(e.reason == "FailedScheduling" for e in backend.events(greedy.id))
    missing = backend.submit(spec("print(1)", image="registry.example.com/nope:1"))
    wait_for(lambda: "ImagePull" in backend.get(missing.id).reason, timeout=15)
    assert backend.get(missing.id).status is JobStatus.QUEUED
    for job in (greedy, missing):
        backend.cancel(job.id)


def test_listing_filters_and_pages_like_the_local_backend(backend):
    ids = [
        backend.submit(spec("print(1)", name=f"sweep{i}", labels={"team": "a"})).id
        for i in range(3)
    ]
    other = backend.submit(spec("print(1)", name="other")).id
    page = backend.list()
    assert [j.id for j in page.jobs][:4] == [other, *reversed(ids)]
    from jupyter_cloudml.models import JobQuery

    assert {j.id for j in backend.list(JobQuery(labels={"team": "a"})).jobs} == set(ids)
    assert [j.id for j in backend.list(JobQuery(name="sweep", limit=2, offset=1)).jobs] == [
        ids[1],
        ids[0],
    ]
    with pytest.raises(NotFound):
        backend.get("no-such-job-1")
    with pytest.raises(NotFound):
        backend.get("../../etc")


# --- faults ---------------------------------------------------------------------------------


def test_creating_twice_is_idempotent_and_foreign_objects_are_refused(backend, cluster):
    job = backend.submit(spec("print(1)"))
    record = next(j for j in cluster.objects("jobs") if j["metadata"]["name"].startswith(job.id))
    again = backend._create(
        {"kind": "Job", "metadata": record["metadata"], "spec": record["spec"]}, job.id
    )
    assert again["metadata"]["uid"] == record["metadata"]["uid"]
    with pytest.raises(Conflict, match="not this job's"):
        backend._create({"kind": "Job", "metadata": record["metadata"]}, "someone-else")


def test_429_and_5xx_are_retried_and_quota_is_explained(backend, cluster):
    backend.list()
    cluster.fail("POST", r"/jobs$", 429, times=2, retry_after=0.1)
    cluster.fail("PATCH", r"/jobs/", 500, times=1)
    job = backend.submit(spec("print(1)"))
    assert wait_status(backend, job.id, JobStatus.SUCCEEDED).status is JobStatus.SUCCEEDED
    quota = (
        'jobs.batch "x" is forbidden: exceeded quota: gpu-quota, requested: '
        "requests.nvidia.com/gpu=2, used: requests.nvidia.com/gpu=3, "
        "limited: requests.nvidia.com/gpu=4"
    )
    cluster.fail("POST", r"/jobs$", 403, message=quota, reason="Forbidden")
    refusal = r"asks 2, over quota 'gpu-quota' of the namespace by 1 \(it allows 4, 3 in use\)"
    with pytest.raises(QuotaExceeded, match=refusal):
        backend.submit(spec("print(1)"))


def test_unreachable_api_server_names_its_url(cluster, shared):
    backend = KubernetesBackend(
        kubeconfig=str(cluster.kubeconfig), shared_claim=CLAIM, shared_mount=str(shared),
        api_retries=1,
    )  # fmt: skip
    cluster.stop_apiserver()
    try:
        with pytest.raises(BackendUnavailable, match=cluster.url.split("//")[1]):
            backend.list()
    finally:
        cluster.start_apiserver()
    assert backend.list().total == 0


def test_watch_expiry_and_drops_miss_no_transition(backend, cluster):
    job = backend.submit(spec("import time\ntime.sleep(1.5)\nprint('ok')"))
    wait_status(backend, job.id, JobStatus.RUNNING)
    jobs_informer = backend.index.informers[0]
    relists = jobs_informer.relists
    cluster.expire_watches()
    wait_for(lambda: jobs_informer.relists > relists, timeout=10)
    cluster.drop_watches()
    assert wait_status(backend, job.id, JobStatus.SUCCEEDED).status is JobStatus.SUCCEEDED


def test_no_missing_shared_storage_for_studies(cluster):
    backend = KubernetesBackend(kubeconfig=str(cluster.kubeconfig))
    tuning = TuningSpec(params=(ParamSpec("x", ParamType.DOUBLE, 0.0, 1.0),), metric="score")
    with pytest.raises(Exception, match="shared_claim"):
        Client(backend=backend).submit_study(spec("print(1)"), tuning)


STUDY_TRAINER = """
import jupyter_cloudml
p = jupyter_cloudml.params(x=0.0)
jupyter_cloudml.report(step=0, score=-(p["x"] - 0.3) ** 2)
"""


@pytest.mark.slow
def test_study_driver_runs_in_the_cluster_and_starts_its_trials(backend, cluster):
    client = Client(backend=backend)
    tuning = TuningSpec(
        params=(ParamSpec("x", ParamType.DOUBLE, 0.0, 1.0),),
        metric="score",
        max_trials=3,
        parallel_trials=2,
        seed=1,
    )
    study = client.submit_study(spec(STUDY_TRAINER, name="tune"), tuning)
    client.wait(study.id, timeout=180, poll=0.2)
    info = client.get_study(study.id)
    assert info.status is JobStatus.SUCCEEDED, backend.get(study.id).reason
    assert len(info.trials) == 3 and info.best_trial is not None
    assert info.best_trial.value == max(t.value for t in info.trials if t.value is not None)
    driver_pods = [p for p in cluster.objects("pods") if p["metadata"]["name"].startswith(study.id)]
    assert driver_pods and driver_pods[0]["spec"]["serviceAccountName"] == "cloudml-study-driver"
    role = cluster.get("roles", "cloudml-study-driver")
    assert role is not None and all(r["apiGroups"] != ["*"] for r in role["rules"])
    assert json.loads(backend.read_output(study.id, "study.json"))["best"] is not None
    assert time.time() - info.created < 180


# --- TensorBoard and serving ------------------------------------------------------------------


def test_tensorboard_is_a_deployment_over_the_jobs_event_files(backend, cluster, shared):
    from jupyter_cloudml.tensorboard import proxy_path

    job = backend.submit(spec(TRAINER))
    wait_status(backend, job.id, JobStatus.SUCCEEDED)
    board = backend.tensorboard([job.id])
    assert board.jobs == (job.id,) and not board.reused
    assert board.url == f"http://{board.id}.team-a.svc:6006/"
    assert proxy_path(board.url) == f"proxy/{board.id}.team-a.svc:6006/"
    deployment = cluster.get("deployments", board.id)
    command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    assert f"{job.id}:{shared}/jobs/{job.id}/job_dir" in command
    assert cluster.get("services", board.id)["spec"]["ports"][0]["port"] == 6006
    assert backend.tensorboard([job.id]).reused
    assert [b.id for b in backend.tensorboards()] == [board.id]
    backend.stop_tensorboard(board.id)
    assert cluster.get("deployments", board.id) is None
    with pytest.raises(NotFound):
        backend.stop_tensorboard(board.id)


MODEL_JOB = """
import os, pathlib
pathlib.Path(os.environ["CLOUDML_JOB_DIR"], "model.joblib").write_bytes(b"model")
"""


def test_plain_deployment_versions_traffic_and_undeploy(backend, cluster):
    from jupyter_cloudml.exceptions import Unsupported
    from jupyter_cloudml.models import DeploymentStatus, DeploySpec, ModelFramework

    job = backend.submit(spec(MODEL_JOB))
    wait_status(backend, job.id, JobStatus.SUCCEEDED)
    client = Client(backend=backend)
    model = f"job:{job.id}"  # the job dir: the emulated kubelet mounts folders only
    backend._deployments.timeout = 30
    first = client.deploy(DeploySpec("iris", model, ModelFramework.SKLEARN, replicas=2))
    assert first.status is DeploymentStatus.READY
    assert first.url == "http://iris.team-a.svc:80"
    assert [(v.version, v.traffic, len(v.replicas)) for v in first.versions] == [("v1", 100, 2)]
    pod = cluster.get("deployments", "iris-v1")["spec"]["template"]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == CLAIM
    second = client.deploy(DeploySpec("iris", model, ModelFramework.SKLEARN, version="v2"))
    assert [(v.version, v.traffic) for v in second.versions] == [("v1", 0), ("v2", 100)]
    assert cluster.get("services", "iris")["spec"]["selector"]["cloudml.io/version"] == "v2"
    with pytest.raises(Conflict, match="already has a version v2"):
        client.deploy(DeploySpec("iris", model, ModelFramework.SKLEARN, version="v2"))
    back = client.rollback("iris")
    assert {v.version: v.traffic for v in back.versions} == {"v1": 100, "v2": 0}
    with pytest.raises(Unsupported, match="KServe"):
        client.set_traffic("iris", {"v1": 50, "v2": 50})
    with pytest.raises(Conflict, match="100%"):
        client.undeploy("iris", "v1")
    client.undeploy("iris", "v2")
    assert cluster.get("deployments", "iris-v2") is None
    assert [d.name for d in client.deployments()] == ["iris"]
    client.undeploy("iris")
    wait_for(lambda: not cluster.objects("deployments") and not cluster.get("services", "iris"))
    with pytest.raises(NotFound):
        client.get_deployment("iris")


@pytest.fixture
def kserve_backend(tmp_path):
    with FakeCluster(
        tmp_path / "kserve", namespace="team-a", images={IMAGE: sys.executable},
        crds=("serving.kserve.io/v1beta1/inferenceservices",),
    ) as fake:  # fmt: skip
        folder = tmp_path / "kshared"
        folder.mkdir()
        fake.pvc_dirs[CLAIM] = str(folder)
        backend = KubernetesBackend(
            kubeconfig=tenant_kubeconfig(fake), shared_claim=CLAIM, shared_mount=str(folder)
        )
        yield backend, fake
        backend.close()
        assert not fake.errors, fake.errors
        assert not fake.denied, fake.denied


def test_kserve_inference_service_with_canary_split_and_rollback(kserve_backend, monkeypatch):
    from jupyter_cloudml.backends.kubernetes import serving
    from jupyter_cloudml.exceptions import InvalidSpec
    from jupyter_cloudml.models import DeploymentStatus, DeploySpec, ModelFramework

    backend, cluster = kserve_backend
    client = Client(backend=backend)
    job = backend.submit(spec(MODEL_JOB))
    wait_status(backend, job.id, JobStatus.SUCCEEDED)
    model = f"job:{job.id}/model.joblib"
    first = client.deploy(DeploySpec("churn", model, ModelFramework.XGBOOST))
    assert first.status is DeploymentStatus.READY and first.url.startswith("http://churn.")
    isvc = cluster.get("inferenceservices", "churn")
    storage = isvc["spec"]["predictor"]["model"]["storageUri"]
    assert storage == f"pvc://{CLAIM}/jobs/{job.id}/job_dir/model.joblib"
    canary = client.deploy(
        DeploySpec(
            "churn", model, ModelFramework.XGBOOST, version="v2", traffic={"v2": 10, "v1": 90}
        )
    )
    assert {v.version: v.traffic for v in canary.versions} == {"v1": 90, "v2": 10}
    assert (
        cluster.get("inferenceservices", "churn")["spec"]["predictor"]["canaryTrafficPercent"] == 10
    )
    promoted = client.set_traffic("churn", {"v2": 100})
    assert {v.version: v.traffic for v in promoted.versions} == {"v1": 0, "v2": 100}
    assert (
        "canaryTrafficPercent" not in cluster.get("inferenceservices", "churn")["spec"]["predictor"]
    )
    rolled = client.rollback("churn")
    assert {v.version: v.traffic for v in rolled.versions} == {"v1": 100, "v2": 0}
    monkeypatch.setattr(serving, "STORAGE_SCHEMES", (*serving.STORAGE_SCHEMES, "fail"))
    with pytest.raises(InvalidSpec, match="ModelLoadFailed"):
        client.deploy(DeploySpec("broken", "fail://no/model", ModelFramework.SKLEARN))
    client.undeploy("churn")
    wait_for(lambda: cluster.get("inferenceservices", "churn") is None)
