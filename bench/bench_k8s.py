"""The Kubernetes backend's watch decoding, side by side with the official client's way.

N realistic Job watch events (a 3-replica job's primary Job with status, as the API server
sends them) decoded and folded into the informer's cache, against
`kubernetes.watch.Watch().unmarshal_event(line, "V1Job")`, which builds the client's typed
models (what `watch.stream(batch.list_namespaced_job, ...)` does per event). Status latency
and API requests per submission on the real control plane: `bench_control_plane.py`.

Run: .venv/bin/python bench/bench_k8s.py [--events 20000] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from jupyter_cloudml.backends.kubernetes.index import JobIndex  # noqa: E402
from jupyter_cloudml.backends.kubernetes.labels import (  # noqa: E402
    CREATED_ANNOTATION,
    SPEC_ANNOTATION,
)
from jupyter_cloudml.backends.kubernetes.manifests.training import training_manifests  # noqa: E402
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    if args.smoke:
        args.events = 1000

    ours, theirs = bench_decode(args.events)
    print("| watch events decoded | ours (JSON -> cache) | client typed models | ratio |")
    print("|---|---|---|---|")
    print(f"| {args.events} Job events | {ours:,.0f}/s | {theirs:,.0f}/s | x{ours / theirs:.1f} |")

    return 0


if __name__ == "__main__":
    sys.exit(main())
