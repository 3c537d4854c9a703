"""Run every benchmark of this folder, one after the other, and print their tables.

Benchmarks are not tests: timings on a shared 2-core machine vary. Each prints a markdown
table that compares us with a reference measured in the same run (as ratios).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    "bench_submit_latency.py",
    "bench_packaging.py",
    "bench_concurrency.py",
    "bench_metrics.py",
    "bench_tuning.py",
    "bench_server.py",
    "bench_serving.py",
    "bench_k8s.py",
    "bench_control_plane.py",
    "bench_hub.py",
]


def main() -> int:
    failed = 0
    for name in BENCHES:
        print(f"\n## {name}\n", flush=True)
        failed += subprocess.call([sys.executable, str(HERE / name)]) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
