"""The local backend's keeper: how fast work moves on when a supervisor dies and nobody looks.

For each run, with one CPU slot and one job queued behind a running one, the running job's
supervisor is SIGKILLed and nobody reads the backend (progress is read from the job database
directly). Measured: the time until the dead job is recorded FAILED (detection), and until the
queued job is RUNNING (freed slot -> next job). The reference is the backend without a keeper,
where both waited for the next reader or submit (`>= WAIT s` below: they never happened while
nobody looked). Goals (issue 19): detection <= 5 s, the next job within 5 s.
Run: .venv/bin/python bench/bench_keeper.py [--runs 5] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.backends.local.keeper import keeper_running, stop_keeper
from jupyter_cloudml.backends.local.store import JobStore
from jupyter_cloudml.models import JobStatus, Resources, TrainSpec
from jupyter_cloudml.packaging import package_cell

GOAL = 5.0


def spec(code: str, name: str, folder: Path) -> TrainSpec:
    package = package_cell(textwrap.dedent(code), source_dir=folder)
    return TrainSpec(name=name, package=package, resources=Resources(cpu=1))


def wait_status(store: JobStore, job_id: str, wanted: set[JobStatus], limit: float) -> float:
    """Seconds until the job's record has one of `wanted` (inf past `limit`)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        row = store.row(job_id)
        if row is not None and JobStatus(row["status"]) in wanted:
            return time.monotonic() - t0
        time.sleep(0.01)
    return float("inf")


def one_run(folder: Path, keeper: bool, wait: float) -> tuple[float, float]:
    home = folder / ("keeper" if keeper else "none") / str(time.monotonic_ns())
    backend = LocalBackend(home=str(home), cpu_slots=1.0, gpu_ids=[])
    store = JobStore(home / "jobs.db")
    running = backend.submit(spec("import time\ntime.sleep(600)\n", "running", folder))
    queued = backend.submit(spec("import time\ntime.sleep(600)\n", "queued", folder))
    if wait_status(store, running.id, {JobStatus.RUNNING}, 60) == float("inf"):
        raise RuntimeError("the first job never ran")
    if keeper:
        while not keeper_running(home):
            time.sleep(0.01)
    else:
        stop_keeper(home)
    pid = store.row(running.id)["supervisor_pid"]
    os.kill(pid, signal.SIGKILL)
    detected = wait_status(store, running.id, {JobStatus.FAILED}, wait)
    started = wait_status(store, queued.id, {JobStatus.RUNNING}, wait if keeper else 0.0)
    next_job = detected + started if detected != float("inf") else float("inf")
    stop_keeper(home)
    for job in (running, queued):  # reading reaps the dead one; its replicas are stopped
        backend.cancel(job.id)
    return detected, next_job


def seconds(samples: list[float], wait: float) -> str:
    if any(s == float("inf") for s in samples):
        return f">= {wait:g} s (never, while nobody looked)"
    return f"{statistics.median(samples):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--wait", type=float, default=20.0, help="how long the reference waits")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.wait = 1, 3.0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours = [one_run(folder, True, args.wait) for _ in range(args.runs)]
        before = [one_run(folder, False, args.wait) for _ in range(min(args.runs, 2))]
    print(
        f"| with nobody reading ({args.runs} runs, median) | keeper | no keeper (before) "
        "| goal | keeper / goal |"
    )
    print("|---|---|---|---|---|")
    for label, index in (("dead supervisor recorded FAILED", 0), ("next queued job RUNNING", 1)):
        mine = [run[index] for run in ours]
        ratio = statistics.median(mine) / GOAL
        print(
            f"| {label} | {seconds(mine, args.wait)} | "
            f"{seconds([run[index] for run in before], args.wait)} | <= {GOAL:g} s | "
            f"x{ratio:.2f} |"
        )


if __name__ == "__main__":
    main()
