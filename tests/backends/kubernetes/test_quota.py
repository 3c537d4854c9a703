"""`jupyter_cloudml.backends.kubernetes.quota`: what pods and Jobs count against a ResourceQuota
(``job_asks``, ``total``), and ``check``'s refusal naming the quota and by how much, against
ResourceQuota objects shaped as the API server returns them; then, on the real control plane,
that ``check`` refuses exactly what the API server's quota admission refuses.
"""

from __future__ import annotations

import copy
import uuid
from decimal import Decimal

import pytest
from cluster.admin import ClusterError
from k8s_testkit import apply_quota, spec

from jupyter_cloudml.backends.kubernetes.manifests.training import training_manifests
from jupyter_cloudml.backends.kubernetes.quota import (
    GPU_QUOTA,
    QUOTA_RE,
    check,
    job_asks,
    pod_asks,
    quantity,
    refusal_message,
    shortfalls,
    total,
)
from jupyter_cloudml.exceptions import QuotaExceeded
from jupyter_cloudml.models import Framework, Replicas, Resources

Gi = 1024**3
Mi = 1024**2


def resource_quota(name: str, hard: dict, used: dict | None = None, namespace: str = "t-1"):
    """A ResourceQuota as GET .../resourcequotas returns it once the quota controller ran."""
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": "4711",
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "spec": {"hard": dict(hard)},
        "status": {"hard": dict(hard), "used": dict(used or {k: "0" for k in hard})},
    }


def container(requests: dict | None = None, limits: dict | None = None, name: str = "c"):
    resources = {}
    if requests is not None:
        resources["requests"] = requests
    if limits is not None:
        resources["limits"] = limits
    return {"name": name, "image": "python:3.11-slim", "resources": resources}


def job(parallelism: int | None, *containers: dict) -> dict:
    job_spec = {"template": {"spec": {"containers": list(containers), "restartPolicy": "Never"}}}
    if parallelism is not None:
        job_spec["parallelism"] = parallelism
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": job_spec}


# --- quantities ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        (2, Decimal(2)),
        ("1.5", Decimal("1.5")),
        ("2Gi", Decimal(2 * Gi)),
        ("512Mi", Decimal(512 * Mi)),
        ("100M", Decimal(100_000_000)),
        ("1k", Decimal(1000)),
        ("1e3", Decimal(1000)),
        ("0", Decimal(0)),
    ],
)
def test_quantities(text, value):
    assert quantity(text) == value


@pytest.mark.parametrize("text", ["2 GB", "abc", "", "1.5.5", "Gi"])
def test_a_bad_quantity_is_a_value_error_saying_what_is_expected(text):
    with pytest.raises(ValueError, match=r"is not a Kubernetes quantity \(e\.g\. 500m, 4Gi, 2\)"):
        quantity(text)


# --- what pods and jobs ask ---------------------------------------------------------------------


def test_a_pods_containers_requests_and_limits_add_up_and_it_counts_as_one_pod():
    pod = {
        "containers": [
            container({"cpu": "500m", "memory": "1Gi"}, {"cpu": "1", "memory": "1Gi"}),
            container({"cpu": "250m", "memory": "512Mi"}, {"memory": "512Mi"}, name="sidecar"),
        ],
        "initContainers": [container({"cpu": "4"}, {"cpu": "4"}, name="init")],
    }
    assert pod_asks(pod) == {
        "pods": 1,
        "requests.cpu": Decimal("0.75"),
        "requests.memory": Decimal(Gi + 512 * Mi),
        "limits.cpu": 1,
        "limits.memory": Decimal(Gi + 512 * Mi),
    }


def test_an_extended_resource_is_requested_by_its_limit():
    asks = pod_asks({"containers": [container({"cpu": "1"}, {"nvidia.com/gpu": "2"})]})
    assert asks[GPU_QUOTA] == 2 and asks["limits.nvidia.com/gpu"] == 2
    # a request given explicitly is the one counted
    asks = pod_asks({"containers": [container({"nvidia.com/gpu": "1"}, {"nvidia.com/gpu": "1"})]})
    assert asks[GPU_QUOTA] == 1


def test_a_pod_without_resources_asks_only_to_be_a_pod():
    assert pod_asks({"containers": [{"name": "c", "image": "x"}]}) == {"pods": 1}
    assert pod_asks({"containers": [container()]}) == {"pods": 1}


def test_job_asks_are_one_pods_times_parallelism():
    one = container(
        {"cpu": "500m", "memory": "2Gi"}, {"cpu": "500m", "memory": "2Gi", "nvidia.com/gpu": "1"}
    )
    assert job_asks(job(4, one)) == {
        "pods": 4,
        "requests.cpu": 2,
        "requests.memory": 8 * Gi,
        "limits.cpu": 2,
        "limits.memory": 8 * Gi,
        GPU_QUOTA: 4,
        "limits.nvidia.com/gpu": 4,
    }
    assert job_asks(job(None, one))["pods"] == 1  # parallelism defaults to 1
    assert job_asks(job(0, one))["pods"] == 1  # as Kubernetes reads an unset 0


def test_total_adds_several_jobs():
    a = job_asks(job(1, container({"cpu": "1"}, {"nvidia.com/gpu": "1"})))
    b = job_asks(job(3, container({"cpu": "250m", "memory": "1Gi"})))
    assert total([a, b]) == {
        "pods": 4,
        "requests.cpu": Decimal("1.75"),
        "requests.memory": 3 * Gi,
        GPU_QUOTA: 1,
        "limits.nvidia.com/gpu": 1,
    }
    assert total([]) == {}
    assert total(iter([a])) == a


def test_the_jobs_the_backend_makes_ask_what_their_replicas_ask():
    train = spec(
        "print(1)",
        framework=Framework.TENSORFLOW,
        replicas=Replicas(chief=1, workers=2),
        resources=Resources(cpu=2, memory="4Gi", gpus=1),
    )
    jobs = [m for m in training_manifests(train, "train-abc123", "t-1") if m["kind"] == "Job"]
    assert len(jobs) == 2  # chief, workers
    asks = total(job_asks(j) for j in jobs)
    assert asks == {
        "pods": 3,
        "requests.cpu": 6,
        "limits.cpu": 6,
        "requests.memory": 12 * Gi,
        "limits.memory": 12 * Gi,
        GPU_QUOTA: 3,
        "limits.nvidia.com/gpu": 3,
    }
    with pytest.raises(QuotaExceeded) as refused:
        check("job train-abc123", asks, [resource_quota("gpus", {GPU_QUOTA: "2"})], now=False)
    assert str(refused.value) == (
        "job train-abc123 does not fit: requests.nvidia.com/gpu: asks 3, over quota 'gpus' of "
        "namespace t-1 by 1 (it allows 2, 0 in use)"
    )


# --- check --------------------------------------------------------------------------------------

TEAM = resource_quota(
    "team-a",
    {"requests.cpu": "4", "requests.memory": "16Gi", GPU_QUOTA: "4", "pods": "10"},
    {"requests.cpu": "2500m", "requests.memory": "6Gi", GPU_QUOTA: "3", "pods": "3"},
)


def asks_of(**amounts) -> dict[str, Decimal]:
    names = {"cpu": "requests.cpu", "memory": "requests.memory", "gpu": GPU_QUOTA, "pods": "pods"}
    return {names[k]: quantity(v) for k, v in amounts.items()}


def test_an_ask_that_fits_what_is_left_passes():
    check("job a", asks_of(cpu="1500m", memory="10Gi", gpu="1", pods="7"), [TEAM])


def test_a_refusal_names_the_quota_the_resource_and_by_how_much():
    with pytest.raises(QuotaExceeded) as refused:
        check("job big-1", asks_of(cpu="2", memory="12Gi", gpu="2", pods="1"), [TEAM])
    assert str(refused.value) == (
        "job big-1 does not fit: "
        "requests.cpu: asks 2, over quota 'team-a' of namespace t-1 by 0.5 "
        "(it allows 4, 2.5 in use); "
        "requests.memory: asks 12Gi, over quota 'team-a' of namespace t-1 by 2Gi "
        "(it allows 16Gi, 6Gi in use); "
        "requests.nvidia.com/gpu: asks 2, over quota 'team-a' of namespace t-1 by 1 "
        "(it allows 4, 3 in use)"
    )
    assert QuotaExceeded.http_status == 429


def test_now_false_asks_whether_it_could_ever_fit():
    ask = asks_of(gpu="4")
    with pytest.raises(QuotaExceeded, match="by 3"):
        check("job x", ask, [TEAM])  # 1 left now
    check("job x", ask, [TEAM], now=False)  # fits once running work ends
    with pytest.raises(QuotaExceeded) as refused:
        check("job x", asks_of(gpu="5"), [TEAM], now=False)
    assert "asks 5, over quota 'team-a' of namespace t-1 by 1 (it allows 4" in str(refused.value)


def test_advice_ends_the_message():
    with pytest.raises(QuotaExceeded) as refused:
        check("job x", asks_of(gpu="9"), [TEAM], advice="Ask for fewer GPUs")
    assert str(refused.value).endswith("(it allows 4, 3 in use). Ask for fewer GPUs")


def test_every_quota_is_checked_and_each_one_named():
    small = resource_quota("gpu-cap", {GPU_QUOTA: "2"}, {GPU_QUOTA: "0"})
    found = shortfalls(asks_of(gpu="3"), [TEAM, small])
    assert [(s.quota, s.resource, s.over) for s in found] == [
        ("team-a", GPU_QUOTA, 2),
        ("gpu-cap", GPU_QUOTA, 1),
    ]


def test_short_names_in_a_quota_count_as_requests():
    quota = resource_quota("short", {"cpu": "2", "memory": "1Gi"}, {"cpu": "1", "memory": "0"})
    found = shortfalls(asks_of(cpu="1500m", memory="2Gi"), [quota])
    assert [(s.resource, s.over) for s in found] == [
        ("requests.cpu", Decimal("0.5")),
        ("requests.memory", Gi),
    ]


def test_limits_and_pod_counts_are_checked():
    quota = resource_quota(
        "caps", {"limits.cpu": "2", "limits.memory": "2Gi", "pods": "2"}, {"pods": "1"}
    )
    asks = job_asks(job(2, container({"cpu": "100m"}, {"cpu": "1500m", "memory": "1536Mi"})))
    with pytest.raises(QuotaExceeded) as refused:
        check("job x", asks, [quota])
    message = str(refused.value)
    assert (
        "limits.cpu: asks 3, over quota 'caps' of namespace t-1 by 1 (it allows 2, 0 in use)"
        in message
    )
    assert (
        "limits.memory: asks 3Gi, over quota 'caps' of namespace t-1 by 1Gi (it allows 2Gi"
        in message
    )
    assert (
        "pods: asks 2, over quota 'caps' of namespace t-1 by 1 (it allows 2, 1 in use)" in message
    )


def test_what_the_quota_does_not_limit_or_the_job_does_not_ask_is_not_checked():
    counts = resource_quota(
        "objects", {"count/jobs.batch": "1", "services": "0"}, {"count/jobs.batch": "5"}
    )
    check("job x", asks_of(cpu="100", memory="100Gi", gpu="100"), [counts])
    no_gpus = resource_quota("no-gpus", {GPU_QUOTA: "0"})
    check("job x", asks_of(cpu="2"), [no_gpus])  # asks no GPU: fits a zero GPU quota
    with pytest.raises(QuotaExceeded, match="asks 1, over quota 'no-gpus'"):
        check("job x", asks_of(gpu="1"), [no_gpus])
    check("job x", asks_of(gpu="1000"), [])  # no quota at all


def test_a_quota_the_controller_has_not_filled_in_yet_is_read_from_its_spec():
    fresh = resource_quota("fresh", {GPU_QUOTA: "1"})
    del fresh["status"]
    numbers = r"asks 2, over quota 'fresh' of namespace t-1 by 1 \(it allows 1, 0 in use\)"
    with pytest.raises(QuotaExceeded, match=numbers):
        check("job x", asks_of(gpu="2"), [fresh])
    fresh["status"] = {}
    with pytest.raises(QuotaExceeded, match="by 1"):
        check("job x", asks_of(gpu="2"), [fresh])


def test_sizes_are_written_as_people_write_them():
    quota = resource_quota(
        "mem", {"requests.memory": "1536Mi", "limits.memory": "500M"}, {"requests.memory": "1Gi"}
    )
    asks = {"requests.memory": Decimal(Gi), "limits.memory": Decimal(600_000_000)}
    with pytest.raises(QuotaExceeded) as refused:
        check("job x", asks, [quota])
    assert str(refused.value) == (
        "job x does not fit: "
        "requests.memory: asks 1Gi, over quota 'mem' of namespace t-1 by 512Mi "
        "(it allows 1536Mi, 1Gi in use); "
        "limits.memory: asks 600000000, over quota 'mem' of namespace t-1 by 100000000 "
        "(it allows 500000000, 0 in use)"
    )


def test_the_api_servers_refusal_in_the_same_words():
    text = (
        'pods "train-1-worker-0-abcde" is forbidden: exceeded quota: team-a, requested: '
        "requests.memory=12Gi,requests.nvidia.com/gpu=2, used: requests.memory=6Gi,"
        "requests.nvidia.com/gpu=3, limited: requests.memory=16Gi,requests.nvidia.com/gpu=4"
    )
    refusal = QUOTA_RE.search(text)
    assert refusal is not None and refusal["quota"] == "team-a"
    assert refusal_message(refusal) == (
        "requests.memory: asks 12Gi, over quota 'team-a' of the namespace by 2Gi "
        "(it allows 16Gi, 6Gi in use); "
        "requests.nvidia.com/gpu: asks 2, over quota 'team-a' of the namespace by 1 "
        "(it allows 4, 3 in use)"
    )
    # numbers it cannot read: the server's own words
    odd = QUOTA_RE.search("exceeded quota: q, requested: pods=x, used: pods=1, limited: pods=1")
    assert odd is not None and refusal_message(odd) == odd.group(0)


# --- the real API server ------------------------------------------------------------------------


def unschedulable_pod(name: str, *containers: dict) -> dict:
    """A pod that admission judges and no node ever runs (it stays Pending, counted by quota)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": list(containers),
            "nodeSelector": {"cloudml.test/nowhere": "true"},
            "restartPolicy": "Never",
        },
    }


@pytest.mark.realcluster
def test_check_refuses_exactly_what_the_api_server_refuses(kube, tenant):
    ns = tenant.namespace
    hard = {
        "requests.cpu": "1",
        "requests.memory": "1Gi",
        "limits.cpu": "2",
        GPU_QUOTA: "1",
        "pods": "4",
    }
    apply_quota(kube, ns, "team", hard)
    small = {"cpu": "250m", "memory": "256Mi"}
    attempts = [
        # (name, containers, refused?)
        ("fits", [container(small, {"cpu": "500m", "memory": "256Mi"})], False),
        ("cpu-over", [container({"cpu": "800m", "memory": "128Mi"}, {"cpu": "800m"})], True),
        # the GPU is asked by its limit only: both sides count it as requested
        ("gpu", [container(small, {"cpu": "500m", "nvidia.com/gpu": "1"})], False),
        ("gpu-over", [container(small, {"cpu": "250m", "nvidia.com/gpu": "1"})], True),
        (
            "two-containers-over",
            [container(small, {"cpu": "500m"}), container(small, {"cpu": "600m"}, name="d")],
            True,
        ),
        ("memory-over", [container({"cpu": "100m", "memory": "600Mi"}, {"cpu": "100m"})], True),
        ("third", [container({"cpu": "100m", "memory": "64Mi"}, {"cpu": "100m"})], False),
        ("fourth", [container({"cpu": "100m", "memory": "64Mi"}, {"cpu": "100m"})], False),
        ("fifth-pod", [container({"cpu": "10m", "memory": "1Mi"}, {"cpu": "10m"})], True),
    ]
    for name, containers, expect_refused in attempts:
        pod = unschedulable_pod(name, *copy.deepcopy(containers))
        # every quota of the namespace as the API server has it now (as the backend reads them)
        quotas = kube.objects("resourcequotas", ns)
        assert "team" in [q["metadata"]["name"] for q in quotas]
        asks = pod_asks(pod["spec"])
        predicted = shortfalls(asks, quotas)
        try:
            check(f"pod {name}", asks, quotas)
        except QuotaExceeded as exc:
            said: str | None = str(exc)
        else:
            said = None
        try:
            kube.request("POST", f"/api/v1/namespaces/{ns}/pods", pod)
        except ClusterError as exc:
            assert exc.status == 403, exc
            server: str | None = exc.body["message"]
        else:
            server = None
        assert (said is not None) == (server is not None) == expect_refused, (name, said, server)
        if server is None:
            continue
        refusal = QUOTA_RE.search(server)
        assert refusal is not None and refusal["quota"] == "team", server
        # the same resources, amounts, limits and use as the server's own numbers
        assert [s.describe() for s in predicted] == [
            s.replace("of the namespace", f"of namespace {ns}")
            for s in refusal_message(refusal).split("; ")
        ], (name, server)
        assert said == f"pod {name} does not fit: " + "; ".join(s.describe() for s in predicted)

    used = kube.get_object("resourcequotas", "team", ns)["status"]["used"]
    assert {k: quantity(v) for k, v in used.items()} == {
        "pods": 4,
        "requests.cpu": Decimal("0.7"),
        "requests.memory": 640 * Mi,
        "limits.cpu": Decimal("1.2"),
        GPU_QUOTA: 1,
    }


@pytest.mark.realcluster
def test_job_asks_over_a_quota_is_what_the_job_controller_is_refused(kube, tenant):
    """A Job of 3 parallel pods where the quota has room for 2: ``check(now=False)`` says it can
    never fit, and the job controller creates 2 pods and is refused the third."""
    ns = tenant.namespace
    apply_quota(kube, ns, "cpu-cap", {"requests.cpu": "500m", "limits.cpu": "1"})
    pod_container = container({"cpu": "200m"}, {"cpu": "200m"})
    manifest = job(3, pod_container)
    manifest["metadata"] = {"name": f"q-{uuid.uuid4().hex[:6]}"}
    manifest["spec"]["completions"] = 3
    manifest["spec"]["template"]["spec"]["nodeSelector"] = {"cloudml.test/nowhere": "true"}
    quotas = kube.objects("resourcequotas", ns)
    with pytest.raises(QuotaExceeded) as refused:
        check("job q", job_asks(manifest), quotas, now=False)
    assert str(refused.value) == (
        f"job q does not fit: requests.cpu: asks 0.6, over quota 'cpu-cap' of namespace {ns} "
        "by 0.1 (it allows 0.5, 0 in use)"
    )
    check("job q", job_asks({**manifest, "spec": {**manifest["spec"], "parallelism": 2}}), quotas)

    kube.request("POST", f"/apis/batch/v1/namespaces/{ns}/jobs", manifest)

    def refused_event():
        return [
            e["message"]
            for e in kube.objects("events", ns)
            if e["involvedObject"]["name"] == manifest["metadata"]["name"]
            and "exceeded quota" in e.get("message", "")
        ]

    kube.wait(lambda: bool(refused_event()) and len(kube.objects("pods", ns)) == 2, "refusal", 30)
    refusal = QUOTA_RE.search(refused_event()[0])
    assert refusal is not None
    assert refusal_message(refusal) == (
        "requests.cpu: asks 0.2, over quota 'cpu-cap' of the namespace by 0.1 "
        "(it allows 0.5, 0.4 in use)"
    )


@pytest.mark.realcluster
@pytest.mark.xfail(
    strict=True,
    reason="defect: pod_asks defaults only extended resources' requests to their limits; "
    "Kubernetes defaults every resource's (a container with limits.cpu only requests that CPU)",
)
def test_a_container_with_only_limits_requests_them_as_the_api_server_counts_it(kube, tenant):
    ns = tenant.namespace
    apply_quota(kube, ns, "req", {"requests.cpu": "100m", "requests.memory": "1Gi"})
    # the API server defaults the requests of a container that gives only limits to the limits
    defaulted = kube.request(
        "POST",
        f"/api/v1/namespaces/{ns}/pods",
        unschedulable_pod("defaulted", container(None, {"cpu": "50m", "memory": "64Mi"})),
    )
    assert defaulted["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "50m",
        "memory": "64Mi",
    }
    # ... and counts them: 50m + 200m of 100m
    pod = unschedulable_pod("limits-only", container(None, {"cpu": "200m", "memory": "64Mi"}))
    with pytest.raises(ClusterError, match="exceeded quota: req"):
        kube.request("POST", f"/api/v1/namespaces/{ns}/pods", pod)
    with pytest.raises(QuotaExceeded, match=r"requests\.cpu: asks 0\.2, over quota 'req'"):
        check("pod limits-only", pod_asks(pod["spec"]), kube.objects("resourcequotas", ns))
