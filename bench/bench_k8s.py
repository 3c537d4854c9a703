"""The Kubernetes backend's hot paths, side by side with the official client's way.

1. Watch decoding: N realistic Job watch events (a 3-replica job's primary Job with status,
   as the API server sends them) decoded and folded into the informer's cache, against
   `kubernetes.watch.Watch().unmarshal_event(line, "V1Job")`, which builds the client's typed
   models (what `watch.stream(batch.list_namespaced_job, ...)` does per event).
2. Status latency with `--jobs` jobs in the namespace (an emulated cluster, `tests/fakecluster`):
   the time from a PATCH of a job's record (it is cancelled) to `backend.get()` showing the new
   status, p50 and p99 over `--changes` changes (the patch's own round trip included); against
   one poll: listing the namespace's Jobs and deriving every status.
3. API calls per submission: a single-replica job and a distributed one (2 workers, 1 ps).

Run: .venv/bin/python bench/bench_k8s.py [--events 20000] [--jobs 1000] [--changes 200]
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

from jupyter_cloudml.backends.kubernetes.index import JobIndex  # noqa: E402
from jupyter_cloudml.backends.kubernetes.labels import (  # noqa: E402
    CANCELLED_ANNOTATION,
    CREATED_ANNOTATION,
    SPEC_ANNOTATION,
)
from jupyter_cloudml.backends.kubernetes.training import training_manifests  # noqa: E402
from jupyter_cloudml.backends.kubernetes.watch import decode_event  # noqa: E402
from jupyter_cloudml.models import (  # noqa: E402
    CodePackage,
    Framework,
    Replicas,
    Resources,
    TrainSpec,
    spec_to_json,
)

SPEC = TrainSpec(
    name="mnist",
    package=CodePackage(archive=b"x" * 100, module="train"),
    framework=Framework.TENSORFLOW,
    replicas=Replicas(workers=2, ps=1),
    resources=Resources(cpu=4, memory="16Gi", gpus=1, gpu_type="a100"),
)


def job_event(i: int) -> bytes:
    """One MODIFIED event of a running primary Job, shaped as the API server sends it."""
    job = training_manifests(SPEC, f"mnist-{i:06x}", "team-a")[2]
    job["metadata"]["annotations"] |= {
        SPEC_ANNOTATION: spec_to_json(SPEC),
        CREATED_ANNOTATION: f"{1.7e9 + i:.6f}",
    }
    job["metadata"] |= {
        "uid": f"00000000-0000-0000-0000-{i:012d}",
        "resourceVersion": str(1000 + i),
        "creationTimestamp": "2026-11-24T10:00:00Z",
        "generation": 1,
    }
    job["status"] = {
        "startTime": "2026-11-24T10:00:01Z",
        "active": 2,
        "ready": 2,
        "terminating": 0,
        "uncountedTerminatedPods": {},
        "conditions": [],
    }
    return json.dumps({"type": "MODIFIED", "object": job}).encode()


def bench_decode(n: int) -> tuple[float, float]:
    """Events/s: ours (decode + fold into the index) and the client's typed models."""
    from kubernetes import watch

    lines = [job_event(i % 997) for i in range(n)]
    index = JobIndex()
    start = time.perf_counter()
    for line in lines:
        kind, obj = decode_event(line)
        index.on_job(kind, obj)
    ours = n / (time.perf_counter() - start)
    typed = watch.Watch()
    sample = lines[: max(1000, n // 10)]
    start = time.perf_counter()
    for line in sample:
        typed.unmarshal_event(line, "V1Job")
    theirs = len(sample) / (time.perf_counter() - start)
    return ours, theirs


def bench_latency(jobs: int, changes: int) -> dict[str, float]:
    """p50/p99 seconds from a status change in the API server to `get()` showing it."""
    from fakecluster import FakeCluster

    from jupyter_cloudml.backends.kubernetes import KubernetesBackend
    from jupyter_cloudml.backends.kubernetes.status import is_record, job_info

    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeCluster(Path(tmp), namespace="team-a") as cluster,
    ):
        names = []
        for i in range(jobs):
            job = json.loads(job_event(i))["object"]
            job["metadata"].pop("resourceVersion")
            job["metadata"].pop("uid")
            job["spec"]["suspend"] = True  # records only: the emulated controllers leave them be
            cluster.create("jobs", job)
            names.append(job["metadata"]["name"])
        backend = KubernetesBackend(kubeconfig=str(cluster.kubeconfig))
        backend.list()
        ids = [f"mnist-{i:06x}" for i in range(jobs)]
        ours: list[float] = []
        for n in range(changes):
            i = (n * 7919) % jobs
            started = time.perf_counter()
            # a change the emulated controllers leave alone: the job is cancelled at time n
            note = {"metadata": {"annotations": {CANCELLED_ANNOTATION: str(n + 1)}}}
            backend.api.patch(backend.api.path("jobs", names[i]), note)
            while backend.get(ids[i]).finished != n + 1:
                time.sleep(0.0005)
            ours.append(time.perf_counter() - started)
        polling: list[float] = []
        for _ in range(max(5, changes // 20)):
            started = time.perf_counter()
            listing = backend.api.get(backend.api.path("jobs"))
            records = [j for j in listing["items"] if is_record(j)]
            for record in records:
                job_info(record, [record], [])
            polling.append(time.perf_counter() - started)
        backend.close()
    return {
        "p50": statistics.median(ours),
        "p99": statistics.quantiles(ours, n=100)[98],
        "poll_p50": statistics.median(polling),
    }


def bench_calls() -> dict[str, int]:
    from fakecluster import FakeCluster

    from jupyter_cloudml.backends.kubernetes import KubernetesBackend
    from jupyter_cloudml.packaging import package_files

    package = package_files({"main.py": b"print(1)"}, "main")
    out = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeCluster(Path(tmp), namespace="team-a") as cluster,
    ):
        backend = KubernetesBackend(kubeconfig=str(cluster.kubeconfig))
        backend.list()
        for label, spec in (
            ("single replica", TrainSpec(name="one", package=package)),
            (
                "distributed (2 workers + 1 ps)",
                TrainSpec(
                    name="dist",
                    package=package,
                    framework=Framework.TENSORFLOW,
                    replicas=Replicas(workers=2, ps=1),
                ),
            ),
        ):
            before = len(backend.api.calls)
            backend.submit(spec)
            out[label] = len(backend.api.calls) - before
        backend.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args()

    ours, theirs = bench_decode(args.events)
    print("| watch events decoded | ours (JSON -> cache) | client typed models | ratio |")
    print("|---|---|---|---|")
    print(f"| {args.events} Job events | {ours:,.0f}/s | {theirs:,.0f}/s | x{ours / theirs:.1f} |")

    lat = bench_latency(args.jobs, args.changes)
    print(f"\n| status visible to get(), {args.jobs} jobs | p50 | p99 | list+derive once |")
    print("|---|---|---|---|")
    print(
        f"| watch-fed cache | {lat['p50'] * 1000:.1f} ms | {lat['p99'] * 1000:.1f} ms "
        f"| {lat['poll_p50'] * 1000:.0f} ms per poll (x{lat['poll_p50'] / lat['p50']:.0f}) |"
    )

    calls = bench_calls()
    print("\n| API calls per submission | calls |")
    print("|---|---|")
    for label, n in calls.items():
        print(f"| {label} | {n} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
