"""The Kubernetes backend on Kubernetes' own control plane (``tests/cluster``), side by side
with a reference measured in the same run.

1. Start to ready: certificates, etcd, kube-apiserver ``/readyz``, the controllers (the default
   ServiceAccount made), then two process nodes Ready.
2. Submit -> first pod Running for a 1-ps 2-worker TensorFlow job, and -> all three Running;
   against the local backend's submit -> first replica running, same spec.
3. Job status visible to ``get()`` with ``--jobs`` Jobs in the namespace: the time from a PATCH of
   one job's record to ``get()`` showing it, p50/p99 over ``--changes`` changes; against one
   poll (list the namespace's Jobs and derive every status).
4. API requests per submission, as the API server's audit log counts them (a tenant's identity).

Run: .venv/bin/python bench/bench_control_plane.py [--jobs 1000] [--changes 200] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from cloudml_testkit import TRAINER_IMAGE  # noqa: E402
from k8s_testkit import make_tenant  # noqa: E402

from jupyter_cloudml.backends.kubernetes.labels import (  # noqa: E402
    CANCELLED_ANNOTATION,
    CREATED_ANNOTATION,
    SPEC_ANNOTATION,
)
from jupyter_cloudml.models import Framework, Replicas, TrainSpec, spec_to_json  # noqa: E402
from jupyter_cloudml.packaging import package_files  # noqa: E402

SLEEPER = package_files({"main.py": b"import time\ntime.sleep(30)\n"}, "main")
DISTRIBUTED = TrainSpec(
    name="dist", package=SLEEPER, framework=Framework.TENSORFLOW, replicas=Replicas(workers=2, ps=1)
)


def bench_start(cluster) -> dict[str, float]:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    cluster.start()
    control_plane = time.perf_counter() - started
    cluster.add_node("node-0")
    cluster.add_node("node-1")
    return {"control_plane": control_plane, "with_nodes": time.perf_counter() - started}


def first_running(kube, namespace: str, job_id: str, count: int) -> float:  # type: ignore[no-untyped-def]
    """Seconds until ``count`` pods of the job are Running (polled as the admin)."""
    started = time.perf_counter()
    while time.perf_counter() - started < 120:
        pods = kube.objects("pods", namespace, labelSelector=f"cloudml.io/job={job_id}")
        if sum(p.get("status", {}).get("phase") == "Running" for p in pods) >= count:
            return time.perf_counter() - started
        time.sleep(0.02)
    raise RuntimeError(f"{job_id}: not {count} pod(s) Running after 120 s")


def bench_submit(kube, tenant, backend, repeats: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    first, every = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        job = backend.submit(DISTRIBUTED)
        first.append(
            time.perf_counter() - started + first_running(kube, tenant.namespace, job.id, 1)
        )
        every.append(
            time.perf_counter() - started + first_running(kube, tenant.namespace, job.id, 3)
        )
        backend.cancel(job.id)
    return {"first": statistics.median(first), "all": statistics.median(every)}


def bench_local_submit(repeats: int) -> float:
    from jupyter_cloudml.backends.local import LocalBackend

    times = []
    with tempfile.TemporaryDirectory() as home:
        backend = LocalBackend(home=home)
        for _ in range(repeats):
            started = time.perf_counter()
            job = backend.submit(DISTRIBUTED)
            while True:
                info = backend.get(job.id)
                if any(r.status.value == "RUNNING" for r in info.replicas):
                    break
                if info.status.terminal:
                    raise RuntimeError(f"local job {job.id} ended before running: {info.reason}")
                time.sleep(0.005)
            times.append(time.perf_counter() - started)
            backend.cancel(job.id)
            while not backend.get(job.id).status.terminal:
                time.sleep(0.01)
    return statistics.median(times)


def bench_status(kube, tenant, backend, jobs: int, changes: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from jupyter_cloudml.backends.kubernetes.manifests.training import training_manifests
    from jupyter_cloudml.backends.kubernetes.status import is_record, job_info

    names, ids = [], []
    for i in range(jobs):
        job_id = f"rec-{i:06x}"
        manifests = training_manifests(DISTRIBUTED, job_id, tenant.namespace)
        record = next(m for m in manifests if m["kind"] == "Job")  # the primary, as submit makes it
        record["metadata"]["annotations"] |= {
            SPEC_ANNOTATION: spec_to_json(DISTRIBUTED),
            CREATED_ANNOTATION: f"{time.time():.6f}",
        }
        record["spec"]["suspend"] = True  # records only: the Job controller makes no pods
        kube.apply(record)
        names.append(record["metadata"]["name"])
        ids.append(job_id)
    backend.list()
    seen: list[float] = []
    for n in range(changes):
        i = (n * 7919) % jobs
        started = time.perf_counter()
        note = {"metadata": {"annotations": {CANCELLED_ANNOTATION: str(n + 1)}}}
        backend.api.patch(backend.api.path("jobs", names[i]), note)
        while backend.get(ids[i]).finished != n + 1:
            time.sleep(0.0005)
        seen.append(time.perf_counter() - started)
    polling = []
    for _ in range(max(3, changes // 20)):
        started = time.perf_counter()
        listing = backend.api.get(backend.api.path("jobs"))
        for record in [j for j in listing["items"] if is_record(j)]:
            job_info(record, [record], [])
        polling.append(time.perf_counter() - started)
    return {
        "p50": statistics.median(seen),
        "p99": statistics.quantiles(seen, n=100)[98] if len(seen) >= 2 else seen[0],
        "poll": statistics.median(polling),
    }


def bench_requests(kube, tenant, backend) -> dict[str, tuple[int, int]]:  # type: ignore[no-untyped-def]
    backend.list()
    out = {}
    for label, spec in (
        ("single replica", TrainSpec(name="one", package=SLEEPER)),
        ("distributed (2 workers + 1 ps)", DISTRIBUTED),
    ):
        audited = len(kube.audit_events())
        before = len(backend.api.calls)
        job = backend.submit(spec)
        time.sleep(1.0)  # the audit log is written asynchronously
        mine = [
            e for e in kube.audit_events()[audited:]
            if e["user"]["username"] == tenant.user and e["verb"] not in ("watch", "list", "get")
        ]  # fmt: skip
        out[label] = (len(mine), len(backend.api.calls) - before)
        backend.cancel(job.id)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.changes, args.repeats = 20, 10, 1

    from cluster import Cluster

    from jupyter_cloudml.backends.kubernetes import KubernetesBackend

    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp) / "cluster", {TRAINER_IMAGE: sys.executable})
        try:
            start = bench_start(cluster)
            tenant = make_tenant(cluster, Path(tmp) / "shared")
            backend = KubernetesBackend(kubeconfig=str(tenant.kubeconfig))
            submit = bench_submit(cluster, tenant, backend, args.repeats)
            local = bench_local_submit(args.repeats)
            requests = bench_requests(cluster, tenant, backend)
            status = bench_status(cluster, tenant, backend, args.jobs, args.changes)
            backend.close()
        finally:
            cluster.stop()

    print("| figure (real control plane, v1.37.2) | measured | reference | ratio |")
    print("|---|---|---|---|")
    print(f"| start to ready: control plane | {start['control_plane']:.1f} s | - | - |")
    print(f"| start to ready: + 2 nodes Ready | {start['with_nodes']:.1f} s | - | - |")
    print(
        f"| submit -> first pod Running, 1 ps + 2 workers | {submit['first']:.2f} s "
        f"(all 3: {submit['all']:.2f} s) | local backend, first replica running: {local:.2f} s "
        f"| x{submit['first'] / local:.1f} |"
    )
    print(
        f"| status visible to get(), {args.jobs} Jobs in the namespace | p50 "
        f"{status['p50'] * 1000:.1f} ms, p99 {status['p99'] * 1000:.1f} ms | one poll (list + "
        f"derive all): {status['poll'] * 1000:.0f} ms | x{status['poll'] / status['p99']:.1f} |"
    )
    for label, (audited, counted) in requests.items():
        print(
            f"| API requests per submission, {label} | {audited} (audit log) | "
            f"{counted} counted by the backend | - |"
        )
    print(json.dumps({"start": start, "submit": submit, "local": local, "status": status}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
