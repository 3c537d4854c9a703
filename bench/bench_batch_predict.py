"""Batch prediction of a small scikit-learn model on the local backend: rows/s of a batch
prediction job against the model's `predict` over the whole array in one process (the floor)
and against a loop of HTTP requests to the same model deployed as an endpoint.

A LogisticRegression on 4 features, saved with joblib. `--rows` rows are written as JSON lines
into `--files` files; then:

1. the floor: `model.predict` on all rows as one numpy array, in this process (no parsing, no
   writing);
2. `Client.submit_batch_prediction` with `--batch-size` rows per call, for each worker count
   of `--workers`: from submit to SUCCEEDED (the whole job: start, read, parse, predict, write
   the results and errors files), and the job's own run time (started to finished);
3. the model deployed with one replica, and one client posting `--batch-size` rows (then one
   row) per KServe v1 `:predict` request back to back for `--http-seconds` each (rows/s from
   the rows answered; the body is encoded once, nothing is read or written).

Every deployment is removed at the end, whatever happened.
Run: .venv/bin/python bench/bench_batch_predict.py [--rows 1000000] [--files 8]
     [--batch-size 1024] [--workers 1,2] [--http-seconds 10] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchkit import say  # noqa: E402 - bench/ beside the script

FEATURES = 4


def train(path: Path) -> Any:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, FEATURES))
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)), path)
    return joblib.load(path)


def write_inputs(folder: Path, rows: int, files: int) -> Any:
    """`rows` random rows as JSON lines over `files` files; returns them as one array."""
    import numpy as np

    folder.mkdir()
    x = np.random.default_rng(1).normal(size=(rows, FEATURES)).round(6)
    for i, part in enumerate(np.array_split(x, files)):
        with open(folder / f"in-{i:03d}.json", "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in part.tolist())
    return x


def floor(model: Any, x: Any) -> float:
    """Seconds of `model.predict` over the whole array (best of 3)."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        model.predict(x)
        best = min(best, time.perf_counter() - t0)
    return best


def batch_job(client: Any, model: Path, inputs: Path, out: Path, workers: int, batch: int):
    """(seconds from submit to SUCCEEDED, the job's run time, rows predicted)."""
    from jupyter_cloudml.models import BatchPredictionSpec, JobStatus, ModelFramework

    spec = BatchPredictionSpec(
        name="bench-batch",
        model=str(model),
        input_paths=(str(inputs / "in-*.json"),),
        output_path=str(out),
        framework=ModelFramework.SKLEARN,
        batch_size=batch,
        workers=workers,
    )
    t0 = time.perf_counter()
    job = client.submit_batch_prediction(spec)
    done = client.wait(job.id)
    took = time.perf_counter() - t0
    if done.status is not JobStatus.SUCCEEDED:
        raise SystemExit(f"batch job {job.id} {done.status.value}: {done.reason}")
    info = client.batch_prediction(job.id)
    if info.errors:
        raise SystemExit(f"batch job {job.id} had {info.errors} error rows")
    return took, (done.finished or 0) - (done.started or 0), info.results


def http_loop(url: str, rows: list[list[float]], seconds: float) -> tuple[int, float]:
    """(rows answered, seconds) of one client posting `rows` back to back."""
    body = json.dumps({"instances": rows}).encode()
    answered, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answered += len(json.loads(response.read())["predictions"])
    return answered, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--http-seconds", type=float, default=10.0)
    parser.add_argument(
        "--serving-env", default=str(ROOT / ".venv-serving"), help="kserve venv (made if absent)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    if args.smoke:
        args.rows, args.files, args.batch_size, args.http_seconds = 2000, 2, 256, 0.5
        args.workers = "2"
    workers = [int(w) for w in args.workers.split(",") if w]

    from jupyter_cloudml.backends.local import LocalBackend
    from jupyter_cloudml.client import Client
    from jupyter_cloudml.models import DeploySpec, ModelFramework
    from jupyter_cloudml.serving.env import create_serving_env

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        folder = Path(tmp)
        model_path = folder / "model.joblib"
        model = train(model_path)
        say(f"writing {args.rows} rows into {args.files} files")
        x = write_inputs(folder / "inputs", args.rows, args.files)
        floor_s = floor(model, x)
        python = create_serving_env(args.serving_env)
        client = Client(backend=LocalBackend(home=str(folder / "home"), serving_python=python))
        jobs = {}
        for n in workers:
            say(f"batch prediction job, {n} worker(s), batch {args.batch_size}")
            jobs[n] = batch_job(
                client, model_path, folder / "inputs", folder / f"out-{n}", n, args.batch_size
            )
        try:
            info = client.deploy(DeploySpec("bench-batch", str(model_path), ModelFramework.SKLEARN))
            url = f"{info.url}/v1/models/bench-batch:predict"
            rows = x[: args.batch_size].tolist()
            http_loop(url, rows, min(1.0, args.http_seconds))  # warm up
            say(f"HTTP loop: {args.batch_size} rows per request for {args.http_seconds} s")
            answered, http_s = http_loop(url, rows, args.http_seconds)
            say(f"HTTP loop: 1 row per request for {args.http_seconds} s")
            single, single_s = http_loop(url, rows[:1], args.http_seconds)
        finally:
            for deployment in client.deployments():
                client.undeploy(deployment.name)
            say("undeployed everything")

    floor_rate = args.rows / floor_s
    http_rate = answered / http_s
    print(
        f"\n{os.cpu_count()} cores; {args.rows} rows of {FEATURES} features in {args.files} JSON "
        f"lines files; batch size {args.batch_size}.\n"
    )
    print("| how | rows | seconds | rows/s | vs the floor (rows/s) | vs the HTTP loop (rows/s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| `model.predict` on one array, in-process (the floor) | {args.rows} | {floor_s:.4f} "
        f"| {floor_rate:.0f} | 1 | {floor_rate / http_rate:.3g} |"
    )
    for n, (took, ran, results) in jobs.items():
        for label, seconds in (("submit to SUCCEEDED", took), ("the job's run time", ran)):
            rate = results / seconds
            print(
                f"| batch job, {n} worker(s), {label} | {results} | {seconds:.2f} | {rate:.0f} "
                f"| {rate / floor_rate:.3g} | {rate / http_rate:.3g} |"
            )
    print(
        f"| HTTP loop, 1 client, {args.batch_size} rows/request, one replica | {answered} "
        f"| {http_s:.2f} | {http_rate:.0f} | {http_rate / floor_rate:.3g} | 1 |"
    )
    single_rate = single / single_s
    print(
        f"| HTTP loop, 1 client, 1 row/request, one replica | {single} | {single_s:.2f} "
        f"| {single_rate:.0f} | {single_rate / floor_rate:.3g} | {single_rate / http_rate:.3g} |"
    )
    print(
        "\nThe HTTP loops post one body encoded once and write nothing: the endpoint's cost "
        "alone. The batch job reads and parses every line, writes a results line per row, "
        "and includes starting its replicas and loading the model.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
