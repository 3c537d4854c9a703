"""KubernetesBackend lifecycles on Kubernetes' own control plane (the ``kube`` fixture: etcd,
kube-apiserver, kube-controller-manager and kube-scheduler built from its Go modules, and
process nodes that run each pod's command as a real process).

Every test works as a tenant's notebook server does in production: in a namespace of its own,
as the ``cloudml-notebook`` ServiceAccount holding exactly the Roles the hub gives tenants, with
a shared ReadWriteMany claim bound by the real PV binder. Jobs, their pods, status, events,
logs (through the API server and the node's log endpoint), retries, the pod failure policy,
garbage collection, RBAC and ResourceQuota admission are all Kubernetes' own.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from pathlib import Path

import pytest
from cloudml_testkit import GPU_PRODUCT, wait_for
from k8s_testkit import (
    CLAIM,
    apply_quota,
    make_tenant,
    refusals,
    service_account,
    spec,
    wait_status,
)

from jupyter_cloudml.backends.kubernetes import KubernetesBackend, rbac
from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import (
    BackendUnavailable,
    Conflict,
    InvalidSpec,
    NotFound,
    QuotaExceeded,
)
from jupyter_cloudml.hub.tenant import NOTEBOOK_ACCOUNT
from jupyter_cloudml.models import (
    Framework,
    JobQuery,
    JobStatus,
    ParamSpec,
    ParamType,
    Replicas,
    Resources,
    TuningSpec,
)

pytestmark = pytest.mark.realcluster


@pytest.fixture
def backend(kube, tenant):
    backend = KubernetesBackend(
        kubeconfig=str(tenant.kubeconfig), shared_claim=CLAIM, shared_mount=str(tenant.shared)
    )
    yield backend
    backend.close()
    unexpected = [r for r in refusals(kube, tenant.user) if r not in tenant.expected]
    assert not unexpected  # the tenant's Role allowed all the magics did


def objects_of(kube, namespace, job_id):
    return {
        (plural, o["metadata"]["name"])
        for plural in ("jobs", "pods", "configmaps", "services")
        for o in kube.objects(plural, namespace, labelSelector=f"cloudml.io/job={job_id}")
    }


TRAINER = """
import os, jupyter_cloudml
print("replica", os.environ["CLOUDML_REPLICA"], "of", os.environ["CLOUDML_JOB_ID"], flush=True)
for step in range(3):
    jupyter_cloudml.report(step=step, loss=1.0 / (step + 1))
print("done", flush=True)
"""


def test_single_job_runs_with_logs_metrics_events_and_is_deleted_with_all_it_made(
    backend, kube, tenant
):
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
    assert "Scheduled" in reasons  # the real scheduler's event
    assert backend.read_code(job.id) == spec(TRAINER).package.archive

    made = objects_of(kube, tenant.namespace, job.id)
    assert {p for p, _ in made} >= {"jobs", "pods", "configmaps"}
    for plural in ("jobs", "configmaps"):
        for obj in kube.objects(plural, tenant.namespace, labelSelector=f"cloudml.io/job={job.id}"):
            assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "jupyter-cloudml"
    backend.delete(job.id)
    wait_for(lambda: not objects_of(kube, tenant.namespace, job.id), timeout=30)
    with pytest.raises(NotFound):
        backend.get(job.id)


SHOWS_SECRET = """
import hashlib, os
print("digest", hashlib.sha256(os.environ["API_TOKEN"].encode()).hexdigest(), flush=True)
"""


def test_a_secret_reaches_the_pod_from_a_secret_the_job_owns_and_nowhere_else(
    backend, kube, tenant
):
    token = "tok-7f3a9c1e5b"
    job = backend.submit(spec(SHOWS_SECRET, secrets={"API_TOKEN": token}))
    done = wait_status(backend, job.id, JobStatus.SUCCEEDED, JobStatus.FAILED)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert f"digest {digest}" in [line.text for line in backend.logs(job.id)]
    selector = f"cloudml.io/job={job.id}"
    (secret,) = kube.objects("secrets", tenant.namespace, labelSelector=selector)
    assert base64.b64decode(secret["data"]["API_TOKEN"]).decode() == token
    (owner,) = secret["metadata"]["ownerReferences"]
    assert owner["kind"] == "Job" and owner["name"] == f"{job.id}-worker"
    for plural in ("jobs", "pods", "configmaps"):  # the record keeps the name only
        assert token not in json.dumps(
            kube.objects(plural, tenant.namespace, labelSelector=selector)
        )
    assert done.spec is not None and dict(done.spec.secrets) == {"API_TOKEN": ""}
    backend.delete(job.id)
    wait_for(lambda: not kube.objects("secrets", tenant.namespace, labelSelector=selector), 30)


def test_a_follow_ends_when_its_reader_stops_and_leaves_no_pod_stream_open(backend):
    job = backend.submit(spec("import time\nprint('up', flush=True)\ntime.sleep(120)\n"))
    stop, seen = threading.Event(), []

    def read() -> None:
        for line in backend.logs(job.id, follow=True, stop=stop):
            seen.append(line.text)

    reader = threading.Thread(target=read)
    reader.start()
    wait_for(lambda: "up" in seen, timeout=60)

    def pumps():
        return [t for t in threading.enumerate() if t.name.endswith("(pump)")]

    assert pumps()  # the pod's log is being streamed, and the job prints nothing more
    stop.set()
    reader.join(timeout=5)
    assert not reader.is_alive()
    wait_for(lambda: not pumps(), timeout=5)
    backend.cancel(job.id)


DISTRIBUTED = """
import json, os, socket, time
role = os.environ["CLOUDML_REPLICA"].split("-")[0]
tf = json.loads(os.environ["TF_CONFIG"])
print("task", tf["task"]["type"], tf["task"]["index"], sorted(tf["cluster"]), flush=True)
for peer in tf["cluster"]["worker"] + tf["cluster"]["ps"]:  # cluster DNS knows every replica
    socket.getaddrinfo(peer.rsplit(":", 1)[0], None)
if role == "ps":
    time.sleep(600)  # parameter servers never end by themselves
"""


def test_distributed_tensorflow_job_gets_tf_config_and_its_ps_is_stopped(backend, kube, tenant):
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
        pods = kube.objects("pods", tenant.namespace, labelSelector="cloudml.io/replica-type=ps")
        return not [p for p in pods if p["status"].get("phase") == "Running"]

    wait_for(ps_stopped, timeout=30)
    states = {r.name: r.status.value for r in backend.get(job.id).replicas}
    assert states == {"worker-0": "SUCCEEDED", "worker-1": "SUCCEEDED", "ps-0": "STOPPED"}
    service = kube.get_object("services", job.id, tenant.namespace)
    assert service is not None and service["spec"]["clusterIP"] == "None"


GOOGLE_ROLES = """
import json, os, socket, time
role = os.environ["CLOUDML_REPLICA"].split("-")[0]
tf = json.loads(os.environ["TF_CONFIG"])
print("task", tf["task"]["type"], tf["task"]["index"], sorted(tf["cluster"]), flush=True)
for peers in tf["cluster"].values():  # cluster DNS knows every member
    for peer in peers:
        socket.getaddrinfo(peer.rsplit(":", 1)[0], None)
if role in ("ps", "evaluator"):
    time.sleep(600)  # stopped once the master is done
"""


def test_a_google_cluster_gets_per_role_pods_a_master_and_an_evaluator(backend, kube, tenant):
    """What a config.yaml's CUSTOM tier with useChiefInTfConfig false asks for, on Kubernetes'
    own scheduler: each role's pods with their own requests, TF_CONFIG as Google writes it."""
    job = backend.submit(
        spec(
            GOOGLE_ROLES,
            framework=Framework.TENSORFLOW,
            replicas=Replicas(chief=1, workers=1, ps=1, evaluators=1),
            resources=Resources(cpu=0.25),
            role_resources={"ps": Resources(cpu=0.5, memory="96Mi")},
            tf_chief_name="master",
        )
    )
    done = wait_status(backend, job.id, JobStatus.SUCCEEDED, JobStatus.FAILED, timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    tasks = sorted(ln.text for ln in backend.logs(job.id) if ln.text.startswith("task"))
    assert tasks == [
        "task evaluator 0 ['master', 'ps', 'worker']",
        "task master 0 ['master', 'ps', 'worker']",
        "task ps 0 ['master', 'ps', 'worker']",
        "task worker 0 ['master', 'ps', 'worker']",
    ]
    jobs = kube.objects("jobs", tenant.namespace, labelSelector=f"cloudml.io/job={job.id}")
    containers = {  # each role's pods (all ran: they printed their task above)
        j["metadata"]["labels"]["cloudml.io/replica-type"]: j["spec"]["template"]["spec"][
            "containers"
        ][0]
        for j in jobs
    }
    asks = {role: container["resources"]["requests"] for role, container in containers.items()}
    assert asks == {
        "chief": {"cpu": "250m"},
        "worker": {"cpu": "250m"},
        "ps": {"cpu": "500m", "memory": "96Mi"},
        "evaluator": {"cpu": "250m"},
    }


DDP = """
import os, torch, torch.distributed as dist
dist.init_process_group("gloo", init_method="env://")
value = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(value)
print(f"rank {dist.get_rank()} of {dist.get_world_size()}: sum {value.item():g}", flush=True)
dist.destroy_process_group()
"""


def test_pytorch_ddp_all_reduces_across_pods_with_gloo(backend):
    pytest.importorskip("torch")
    job = backend.submit(spec(DDP, framework=Framework.PYTORCH, replicas=Replicas(workers=2)))
    done = wait_status(backend, job.id, JobStatus.SUCCEEDED, timeout=120)
    assert len(done.replicas) == 2
    texts = sorted(ln.text for ln in backend.logs(job.id) if ln.text.startswith("rank"))
    assert texts == ["rank 0 of 2: sum 3", "rank 1 of 2: sum 3"]


@pytest.mark.controlplane
def test_api_calls_per_distributed_submission_are_few(backend, kube, tenant):
    backend.list()  # the initial lists of the watches are not the submission's
    before = len(backend.api.calls)
    audited = len(kube.audit_events())
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
    mine = [
        e for e in kube.audit_events()[audited:]
        if e["user"]["username"] == tenant.user and e["verb"] not in ("watch", "list")
    ]  # fmt: skip
    assert len(mine) == len(calls)  # the API server counted the same requests


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
    done = wait_status(backend, job.id, JobStatus.SUCCEEDED, JobStatus.FAILED, timeout=90)
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


def test_timeout_ends_the_job_with_its_reason(backend):
    job = backend.submit(spec("import time\ntime.sleep(600)", timeout=3))
    done = wait_status(backend, job.id, JobStatus.FAILED, timeout=60)
    assert "DeadlineExceeded" in done.reason


def test_cancel_stops_pods_and_delete_needs_a_finished_job(backend, kube, tenant):
    job = backend.submit(spec("import time\nprint('up', flush=True)\ntime.sleep(600)"))
    wait_status(backend, job.id, JobStatus.RUNNING)
    with pytest.raises(Conflict, match="cancel it before deleting"):
        backend.delete(job.id)
    cancelled = backend.cancel(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    wait_for(
        lambda: (
            not kube.objects("pods", tenant.namespace, labelSelector=f"cloudml.io/job={job.id}")
        ),
        timeout=30,
    )
    assert backend.cancel(job.id).status is JobStatus.CANCELLED  # again: a no-op
    assert [r.status.value for r in backend.get(job.id).replicas] == ["CANCELLED"]
    backend.delete(job.id)


def test_follow_streams_lines_until_the_job_ends(backend):
    code = "import time\nfor i in range(5):\n    print('tick', i, flush=True)\n    time.sleep(0.2)"
    job = backend.submit(spec(code))
    wait_status(backend, job.id, JobStatus.RUNNING, JobStatus.SUCCEEDED)
    texts = [ln.text for ln in backend.logs(job.id, follow=True)]
    assert [t for t in texts if t.startswith("tick")] == [f"tick {i}" for i in range(5)]
    wait_status(backend, job.id, JobStatus.SUCCEEDED, timeout=15)


@pytest.mark.controlplane
def test_gpu_jobs_land_on_the_gpu_node_and_waiting_is_explained(backend, kube, tenant):
    gpu = backend.submit(spec("print(1)", resources=Resources(gpus=1, gpu_type="a100")))
    wait_status(backend, gpu.id, JobStatus.SUCCEEDED, timeout=60)
    pods = kube.objects("pods", tenant.namespace, labelSelector=f"cloudml.io/job={gpu.id}")
    assert [p["spec"]["nodeName"] for p in pods] == ["gpu-node-0"]
    assert pods[0]["spec"]["nodeSelector"]["nvidia.com/gpu.product"] == GPU_PRODUCT

    greedy = backend.submit(spec("print(1)", resources=Resources(gpus=4, gpu_type="a100")))
    wait_for(lambda: "Insufficient nvidia.com/gpu" in backend.get(greedy.id).reason, timeout=30)
    assert backend.get(greedy.id).status is JobStatus.QUEUED
    assert any(e.reason == "FailedScheduling" for e in backend.events(greedy.id))
    missing = backend.submit(spec("print(1)", image="registry.example.com/nope:1"))
    wait_for(lambda: "ImagePull" in backend.get(missing.id).reason, timeout=30)
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
    assert {j.id for j in backend.list(JobQuery(labels={"team": "a"})).jobs} == set(ids)
    assert [j.id for j in backend.list(JobQuery(name="sweep", limit=2, offset=1)).jobs] == [
        ids[1],
        ids[0],
    ]
    with pytest.raises(NotFound):
        backend.get("no-such-job-1")
    with pytest.raises(NotFound):
        backend.get("../../etc")


def test_creating_twice_is_idempotent_and_foreign_objects_are_refused(backend, kube, tenant):
    job = backend.submit(spec("print(1)"))
    record = kube.objects("jobs", tenant.namespace, labelSelector=f"cloudml.io/job={job.id}")[0]
    metadata = {k: record["metadata"][k] for k in ("name", "labels", "annotations")}
    sent = {**record["spec"], "selector": None}  # as the backend sent it: no generated selector
    template_labels = sent["template"]["metadata"]["labels"]
    for key in ("controller-uid", "job-name", "batch.kubernetes.io/controller-uid",
                "batch.kubernetes.io/job-name"):  # fmt: skip
        template_labels.pop(key)
    again = backend._create({"kind": "Job", "metadata": metadata, "spec": sent}, job.id)
    assert again["metadata"]["uid"] == record["metadata"]["uid"]
    with pytest.raises(Conflict, match="not this job's"):
        backend._create({"kind": "Job", "metadata": metadata, "spec": sent}, "someone-else")


# --- quota and RBAC: the real API server's refusals -------------------------------------------


@pytest.mark.controlplane
def test_namespace_quota_refusals_reach_the_user_with_the_numbers(backend, kube, tenant):
    apply_quota(kube, tenant.namespace, "job-count", {"count/jobs.batch": "1"})
    backend.submit(spec("print(1)"))  # its one Job uses the quota up
    numbers = r"asks 1, over quota 'job-count' of the namespace by 1 \(it allows 1, 1 in use\)"
    with pytest.raises(QuotaExceeded, match=numbers):
        backend.submit(spec("print(1)"))
    tenant.expected = refusals(kube, tenant.user)
    assert tenant.expected  # it was the API server's 403
    kube.request("DELETE", f"/api/v1/namespaces/{tenant.namespace}/resourcequotas/job-count")


@pytest.mark.controlplane
def test_quota_reads_the_namespaces_resource_quotas_used_and_hard(backend, kube, tenant):
    from jupyter_cloudml.models import QuotaItem

    ns = tenant.namespace
    assert (
        backend.quota().note == f"no ResourceQuota in {ns}: only the cluster's capacity limits jobs"
    )
    apply_quota(kube, ns, "team", {"pods": "5", "count/jobs.batch": "4"})
    job = backend.submit(spec("import time\ntime.sleep(600)"))
    wait_status(backend, job.id, JobStatus.RUNNING)
    wait_for(lambda: QuotaItem("pods", "1", "5", "team") in backend.quota().items, timeout=60)
    quota = backend.quota()
    assert quota.scope == f"namespace {ns}" and (quota.running, quota.queued) == (1, 0)
    assert QuotaItem("count/jobs.batch", "1", "4", "team") in quota.items
    assert quota.note == ""
    backend.cancel(job.id)
    kube.request("DELETE", f"/api/v1/namespaces/{ns}/resourcequotas/team")


def test_jobs_that_can_never_fit_a_gpu_quota_are_refused_naming_it(backend, kube, tenant):
    apply_quota(kube, tenant.namespace, "gpu-quota", {"requests.nvidia.com/gpu": "1"})
    with pytest.raises(QuotaExceeded, match="gpu-quota"):  # can never fit: refused up front
        backend.submit(spec("print(1)", resources=Resources(gpus=2)))


def test_pods_that_admission_refuses_say_why(backend, kube, tenant):
    # a namespace enforcing PodSecurity "restricted": the trainer pod runs as the image's user
    labels = {"pod-security.kubernetes.io/enforce": "restricted"}
    kube.request(
        "PATCH", f"/api/v1/namespaces/{tenant.namespace}", {"metadata": {"labels": labels}}
    )
    job = backend.submit(spec("print(1)"))
    wait_for(lambda: "violates PodSecurity" in backend.get(job.id).reason, timeout=30)
    info = backend.get(job.id)
    assert info.status is JobStatus.QUEUED and "Error creating: pods" in info.reason
    assert "runAsNonRoot" in info.reason  # the server's own words: what to change
    backend.cancel(job.id)


def test_a_role_missing_one_verb_is_named_in_the_error(kube, tmp_path):
    tenant = make_tenant(kube, tmp_path / "shared")
    rules = [r for r in rbac.NOTEBOOK_RULES if r["resources"] != ["jobs"]]
    rules.append({"apiGroups": ["batch"], "resources": ["jobs"],
                  "verbs": ["get", "list", "watch", "patch", "delete"]})  # fmt: skip
    kube.request(
        "PATCH",
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{tenant.namespace}/roles/{NOTEBOOK_ACCOUNT}",
        {"rules": rules},
    )
    backend = KubernetesBackend(kubeconfig=str(tenant.kubeconfig))
    try:
        with pytest.raises(Exception, match=r'cannot create resource "jobs"'):
            backend.submit(spec("print(1)"))
    finally:
        backend.close()
        kube.request("DELETE", f"/api/v1/namespaces/{tenant.namespace}")


# --- studies, TensorBoard --------------------------------------------------------------------


def test_no_missing_shared_storage_for_studies(tenant):
    backend = KubernetesBackend(kubeconfig=str(tenant.kubeconfig))
    tuning = TuningSpec(params=(ParamSpec("x", ParamType.DOUBLE, 0.0, 1.0),), metric="score")
    try:
        with pytest.raises(Exception, match="shared_claim"):
            Client(backend=backend).submit_study(spec("print(1)"), tuning)
    finally:
        backend.close()


def test_notify_on_a_single_job_is_refused_not_dropped(backend, kube, tenant):
    with pytest.raises(InvalidSpec, match="--notify is not honoured for single jobs"):
        backend.submit(spec("print(1)", notify="https://chat.example.com/hooks/1"))
    assert not kube.objects("jobs", tenant.namespace, labelSelector="cloudml.io/job")


STUDY_TRAINER = """
import jupyter_cloudml
p = jupyter_cloudml.params(x=0.0)
jupyter_cloudml.report(step=0, score=-(p["x"] - 0.3) ** 2)
"""


@pytest.mark.slow
@pytest.mark.controlplane
def test_study_driver_runs_in_the_cluster_as_its_own_account_and_starts_its_trials(
    backend, kube, tenant
):
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
    driver_pods = kube.objects("pods", tenant.namespace, labelSelector=f"cloudml.io/job={study.id}")
    assert driver_pods and driver_pods[0]["spec"]["serviceAccountName"] == "cloudml-study-driver"
    driver = service_account(tenant.namespace, rbac.STUDY_DRIVER)
    created = [
        e for e in kube.audit_events()
        if e["user"]["username"] == driver and e["verb"] == "create"
        and e["objectRef"]["resource"] == "jobs"
    ]  # fmt: skip
    assert len(created) >= 3  # the driver, in its pod, created the trials' Jobs itself
    assert not refusals(kube, driver)
    assert json.loads(backend.read_output(study.id, "study.json"))["best"] is not None
    assert time.time() - info.created < 180
    # its TensorBoard runs, one per trial named by its parameters, on the shared claim
    board = Path(tenant.shared) / "jobs" / study.id / "job_dir"
    runs = {p.parent.name for p in board.glob("*/events.out.tfevents.*")}
    assert runs == {f"x={t.params['x']:.4g}" for t in info.trials}, sorted(board.rglob("*"))
    assert list(board.glob("events.out.tfevents.*"))  # the study's HParams configuration


def test_tensorboard_is_a_deployment_over_the_jobs_event_files(backend, kube, tenant):
    from jupyter_cloudml.views.tensorboards import proxy_path

    ns = tenant.namespace
    job = backend.submit(spec(TRAINER))
    wait_status(backend, job.id, JobStatus.SUCCEEDED)
    board = backend.tensorboard([job.id])
    assert board.jobs == (job.id,) and not board.reused
    assert board.url == f"http://{board.id}.{ns}.svc:6006/"
    assert proxy_path(board) == f"cloudml/tensorboards/{board.id}/"
    deployment = kube.get_object("deployments", board.id, ns)
    command = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    assert f"{job.id}:{tenant.shared}/jobs/{job.id}/job_dir" in command
    assert kube.get_object("services", board.id, ns)["spec"]["ports"][0]["port"] == 6006
    assert backend.tensorboard([job.id]).reused
    assert [b.id for b in backend.tensorboards()] == [board.id]
    backend.stop_tensorboard(board.id)
    assert kube.get_object("deployments", board.id, ns) is None
    with pytest.raises(NotFound):
        backend.stop_tensorboard(board.id)


# --- serving ------------------------------------------------------------------------------------

MODEL_JOB = """
import os, joblib
from sklearn.linear_model import LinearRegression
model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0])
joblib.dump(model, os.path.join(os.environ["CLOUDML_JOB_DIR"], "model.joblib"))
"""


@pytest.mark.controlplane
def test_plain_deployment_serves_through_its_service_with_versions_and_rollback(
    backend, kube, tenant
):
    from jupyter_cloudml.exceptions import Unsupported
    from jupyter_cloudml.models import DeploymentStatus, DeploySpec, ModelFramework

    ns = tenant.namespace
    job = backend.submit(spec(MODEL_JOB))
    wait_status(backend, job.id, JobStatus.SUCCEEDED)
    client = Client(backend=backend)
    model = f"job:{job.id}"
    backend._deployments.timeout = 120
    first = client.deploy(DeploySpec("iris", model, ModelFramework.SKLEARN, replicas=2))
    assert first.status is DeploymentStatus.READY
    assert first.url == f"http://iris.{ns}.svc:80"
    assert [(v.version, v.traffic, len(v.replicas)) for v in first.versions] == [("v1", 100, 2)]
    pods = kube.objects("pods", ns, labelSelector="cloudml.io/version=v1")
    assert len({p["status"]["podIP"] for p in pods}) == 2  # two model servers, each ready
    pod = kube.get_object("deployments", "iris-v1", ns)["spec"]["template"]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == CLAIM
    with kube.resolving_services():  # as the notebook server, a pod, resolves the Service
        assert client.predict("iris", [[3.0], [4.0]]) == pytest.approx([6.0, 8.0])
    second = client.deploy(DeploySpec("iris", model, ModelFramework.SKLEARN, version="v2"))
    assert [(v.version, v.traffic) for v in second.versions] == [("v1", 0), ("v2", 100)]
    assert kube.get_object("services", "iris", ns)["spec"]["selector"]["cloudml.io/version"] == "v2"
    # Deploying again: the same model (the same bytes from another job too) is a no-op.
    same = client.deploy(DeploySpec("iris", model, ModelFramework.SKLEARN, version="v2"))
    assert same.outcome.startswith("iris v2 already serves this model")
    rerun = backend.submit(spec(MODEL_JOB))
    wait_status(backend, rerun.id, JobStatus.SUCCEEDED)
    again = client.deploy(DeploySpec("iris", f"job:{rerun.id}", ModelFramework.SKLEARN))
    assert again.outcome == (
        "iris v2 already serves this model (same files, framework and options): nothing deployed"
    )
    assert [(v.version, v.traffic) for v in again.versions] == [("v1", 0), ("v2", 100)]
    with pytest.raises(Conflict, match="iris v1 serves another model"):
        client.deploy(DeploySpec("iris", model, ModelFramework.SKLEARN, version="v1"))
    back = client.rollback("iris")
    assert {v.version: v.traffic for v in back.versions} == {"v1": 100, "v2": 0}
    scaled = client.scale("iris", "v1", 1)  # its Deployment's replicas, then its pods
    assert [(v.version, len(v.replicas)) for v in scaled.versions] == [("v1", 1), ("v2", 1)]
    assert kube.get_object("deployments", "iris-v1", ns)["spec"]["replicas"] == 1
    v1_pods = lambda: kube.objects("pods", ns, labelSelector="cloudml.io/version=v1")  # noqa: E731
    wait_for(
        lambda: len([p for p in v1_pods() if "deletionTimestamp" not in p["metadata"]]) == 1, 60
    )
    with pytest.raises(NotFound, match="no version 'v9'"):
        client.scale("iris", "v9", 2)
    with pytest.raises(Unsupported, match="KServe"):
        client.set_traffic("iris", {"v1": 50, "v2": 50})
    with pytest.raises(Conflict, match="100%"):
        client.undeploy("iris", "v1")
    client.undeploy("iris", "v2")
    assert kube.get_object("deployments", "iris-v2", ns) is None
    assert [d.name for d in client.deployments()] == ["iris"]
    # Another model (here: other options) with --replace: the next version, the others gone.
    replaced = client.deploy(DeploySpec("iris", model, ModelFramework.SKLEARN, replace=True))
    assert replaced.outcome == "iris v2 deployed, replacing v1"  # v2 was undeployed: free
    assert [(v.version, v.traffic) for v in replaced.versions] == [("v2", 100)]
    assert kube.get_object("deployments", "iris-v1", ns) is None
    client.undeploy("iris")
    wait_for(
        lambda: not kube.objects("deployments", ns) and not kube.get_object("services", "iris", ns),
        timeout=30,
    )
    with pytest.raises(NotFound):
        client.get_deployment("iris")


# --- faults of the control plane ---------------------------------------------------------------


@pytest.mark.controlplane
def test_api_server_restart_loses_no_transition(backend, kube, tenant):
    job = backend.submit(spec("import time\nprint('up', flush=True)\ntime.sleep(10)\nprint('ok')"))
    wait_status(backend, job.id, JobStatus.RUNNING)
    kube.kill("kube-apiserver")
    address = kube.state.apiserver_url.split("//")[1]
    with pytest.raises(BackendUnavailable, match=re.escape(address)):
        KubernetesBackend(kubeconfig=str(tenant.kubeconfig), api_retries=1).list()
    kube.start_apiserver()
    done = wait_status(backend, job.id, JobStatus.SUCCEEDED, timeout=60)
    # a restarted API server refuses requests until its RBAC caches are filled: the watches
    # got 403 for a moment, and went on
    tenant.expected = refusals(kube, tenant.user)
    assert done.replicas[0].exit_code == 0
    assert "ok" in [ln.text for ln in backend.logs(job.id)]


@pytest.mark.controlplane
def test_etcd_restart_loses_no_transition(backend, kube):
    job = backend.submit(spec("import time\nprint('up', flush=True)\ntime.sleep(8)\nprint('ok')"))
    wait_status(backend, job.id, JobStatus.RUNNING)
    kube.kill("etcd")
    kube.start_etcd()
    kube.wait_ready()
    done = wait_status(backend, job.id, JobStatus.SUCCEEDED, timeout=90)
    assert done.replicas[0].exit_code == 0
    assert "ok" in [ln.text for ln in backend.logs(job.id)]


@pytest.mark.controlplane
def test_a_killed_node_agent_fails_its_pods_and_the_job_says_why(backend, kube, tenant):
    job = backend.submit(spec("import time\nprint('up', flush=True)\ntime.sleep(600)"))
    wait_status(backend, job.id, JobStatus.RUNNING)
    pod = kube.objects("pods", tenant.namespace, labelSelector=f"cloudml.io/job={job.id}")[0]
    node = pod["spec"]["nodeName"]
    kube.kill(f"node-{node}")  # SIGKILL: its Lease is no longer renewed
    kube.wait(lambda: not kube.node_ready(node), f"{node} NotReady", 90)
    kube.start_node(node)  # it finds the pod's container gone, as a restarted kubelet does
    done = wait_status(backend, job.id, JobStatus.FAILED, timeout=90)
    assert (
        "worker-0 exited with 137 (ContainerStatusUnknown: The container could not" in done.reason
    )
