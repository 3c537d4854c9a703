"""The local backend's keeper: how fast work moves on when a supervisor dies and nobody looks.

For each run, with one CPU slot and one job queued behind a running one, the running job's
supervisor is SIGKILLed and nobody reads the backend (progress is read from the job database
directly). Measured: the time until the dead job is recorded FAILED (detection), and until the
queued job is RUNNING (freed slot -> next job). The reference is the backend without a keeper,
where both waited for the next reader or submit (`>= WAIT s` below: they never happened while
nobody looked). Goals (issue 19): detection <= 5 s, the next job within 5 s.

Then a model endpoint (two replicas) is SIGKILLed under a loop of `Client.predict` calls, and
nobody else looks: counted are the predictions that failed (goal 0: the client asks again for
up to 30 s while the keeper brings the endpoint back) and the longest a prediction took.
The reference is one request per call (`retry_seconds=0`), as a plain HTTP client makes it.
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
ROOT = Path(__file__).resolve().parent.parent


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
    while not keeper_running(home):
        time.sleep(0.01)
    if not keeper:
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


def endpoint_kill(folder: Path, python: str, retry_seconds: float) -> tuple[int, int, float]:
    """(predictions made, failed, longest seconds) while the endpoint is killed once."""
    import json

    import joblib
    from sklearn.linear_model import LogisticRegression

    from jupyter_cloudml.client import Client
    from jupyter_cloudml.models import DeploySpec, ModelFramework

    home = folder / f"serving-{time.monotonic_ns()}"
    model_path = folder / "model.joblib"
    joblib.dump(LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1]), model_path)
    client = Client(LocalBackend(home=str(home), serving_python=python))
    spec = DeploySpec("bench", str(model_path), ModelFramework.SKLEARN, replicas=2)
    client.deploy(spec)
    made = failed = 0
    longest = 0.0
    killed_at = None
    t_end = time.monotonic() + 60
    while time.monotonic() < t_end:
        if killed_at is None and made >= 20:
            record = json.loads((home / "deployments" / "bench" / "endpoint.json").read_text())
            os.kill(record["pid"], signal.SIGKILL)
            killed_at = time.monotonic()
        t0 = time.monotonic()
        try:
            client.predict("bench", [[2.5]], retry_seconds=retry_seconds)
        except Exception:
            failed += 1
            time.sleep(0.05)
        made += 1
        longest = max(longest, time.monotonic() - t0)
        if killed_at is not None and time.monotonic() - killed_at > 15:
            break
    stop_keeper(home)
    client.undeploy("bench")
    return made, failed, longest


def seconds(samples: list[float], wait: float) -> str:
    if any(s == float("inf") for s in samples):
        return f">= {wait:g} s (never, while nobody looked)"
    return f"{statistics.median(samples):.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--wait", type=float, default=20.0, help="how long the reference waits")
    parser.add_argument("--serving-env", default=str(ROOT / ".venv-serving"))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.wait = 1, 3.0
    from jupyter_cloudml.serving.env import create_serving_env

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours = [one_run(folder, True, args.wait) for _ in range(args.runs)]
        before = [one_run(folder, False, args.wait) for _ in range(min(args.runs, 2))]
        python = create_serving_env(args.serving_env)
        kill_ours = endpoint_kill(folder, python, retry_seconds=30.0)
        kill_plain = endpoint_kill(folder, python, retry_seconds=0.0)
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
    print()
    print("| endpoint SIGKILLed under a predict loop | Client.predict | one request per call |")
    print("|---|---|---|")
    print(
        f"| predictions failed | {kill_ours[1]} of {kill_ours[0]} | "
        f"{kill_plain[1]} of {kill_plain[0]} |"
    )
    print(f"| longest prediction | {kill_ours[2]:.2f} s | {kill_plain[2]:.2f} s |")


if __name__ == "__main__":
    main()
