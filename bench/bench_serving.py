"""Online serving of a small scikit-learn model on the local backend: throughput, latency,
overhead against the model in-process, two replicas against one, a rollout under load, and
the two wire protocols side by side.

A LogisticRegression on 4 features, saved with joblib, is deployed with `Client.deploy` twice:
once with one replica, once with two. `--clients` threads post through `urllib` (what
`Client.predict` uses, one connection per request) for `--seconds` each run.

1. requests/s and p50/p99 latency for batch sizes `--batches` (KServe v1 `:predict`): one
   replica with 1 client (the added latency per request: p50 minus the in-process p50) and
   with `--clients`; two replicas with `--clients` (ratio to one); `model.predict` in-process
   on the same batch, one thread (the floor).
2. A steady loop of `--rollout-clients` posting v2 `/infer` while `--version v2` of the
   one-replica deployment is deployed: requests sent / failed while the switch was under way,
   how long `deploy` took, and when the first answer of v2 came.
3. v1 `:predict` and v2 `/infer` on one replica, batch `--protocol-batch`, one row each.

Every deployment is removed at the end, whatever happened.
Run: .venv/bin/python bench/bench_serving.py [--clients 8] [--seconds 3] [--batches 1,32]
     [--rollout-clients 2] [--protocol-batch 32] [--smoke]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import math
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchkit import pct, say  # noqa: E402 - bench/ beside the script

FEATURES = 4
NAMES = {"one": "bench-one", "two": "bench-two"}


# --- requests -------------------------------------------------------------------------------


def v1_body(rows: list[list[float]]) -> bytes:
    return json.dumps({"instances": rows}).encode()


def v2_body(rows: list[list[float]]) -> bytes:
    flat = [x for row in rows for x in row]
    tensor = {"name": "input-0", "shape": [len(rows), FEATURES], "datatype": "FP64", "data": flat}
    return json.dumps({"inputs": [tensor]}).encode()


def post(url: str, body: bytes, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    """Status and JSON answer; status 0 when the connection itself failed."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, {"error": e.read()[:200].decode(errors="replace")}
    except OSError as e:
        return 0, {"error": repr(e)}


@dataclasses.dataclass
class Run:
    """What one load run measured."""

    label: str
    clients: int
    seconds: float
    latencies: list[float] = dataclasses.field(default_factory=list)  # ms, answered requests
    failed: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else math.nan

    @property
    def p50(self) -> float:
        return pct(self.latencies, 50)

    @property
    def p99(self) -> float:
        return pct(self.latencies, 99)


def load(label: str, url: str, body: bytes, clients: int, seconds: float, warmup: float) -> Run:
    """`clients` threads post `body` to `url` back to back: `warmup` seconds unmeasured, then
    `seconds` measured."""
    start = time.perf_counter() + warmup
    end = start + seconds
    lock = threading.Lock()
    run = Run(label, clients, seconds)

    def client() -> None:
        while (t0 := time.perf_counter()) < end:
            status, _ = post(url, body)
            took = (time.perf_counter() - t0) * 1000
            if t0 < start:
                continue
            with lock:
                if status == 200:
                    run.latencies.append(took)
                else:
                    run.failed += 1

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    return run


def in_process(model: Any, rows: list[list[float]], seconds: float, warmup: float) -> Run:
    """`model.predict` on the same rows (as decoded JSON: a list of lists), one thread."""
    run = Run("in-process `model.predict`", 1, seconds)
    start = time.perf_counter() + warmup
    end = start + seconds
    while (t0 := time.perf_counter()) < end:
        model.predict(rows)
        if t0 >= start:
            run.latencies.append((time.perf_counter() - t0) * 1000)
    return run


# --- the rollout ----------------------------------------------------------------------------


@dataclasses.dataclass
class Answer:
    sent: float
    done: float
    ok: bool
    version: str


def steady(url: str, body: bytes, clients: int, stop: threading.Event) -> list[Answer]:
    """`clients` threads posting back to back until `stop`; every answer, timed."""
    answers: list[Answer] = []
    lock = threading.Lock()

    def client() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            status, data = post(url, body)
            answer = Answer(t0, time.perf_counter(), status == 200, data.get("model_version", ""))
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:
        thread.join(60)
    return answers


def rollout(client: Any, spec: Any, url: str, body: bytes, clients: int) -> dict[str, Any]:
    """Deploy `spec` (a new version) while `clients` post to `url`; what the clients saw."""
    stop, box = threading.Event(), {}
    loop = threading.Thread(
        target=lambda: box.update(answers=steady(url, body, clients, stop)), daemon=True
    )
    loop.start()
    time.sleep(1.0)  # steady state on the old version first
    t0 = time.perf_counter()
    client.deploy(spec)
    t1 = time.perf_counter()
    time.sleep(1.0)  # and a while on the new one
    stop.set()
    loop.join(120)
    answers: list[Answer] = box["answers"]
    during = [a for a in answers if t0 <= a.sent <= t1]
    first_new = min((a.done for a in answers if a.ok and a.version == spec.version), default=None)
    last_old = max((a.done for a in answers if a.ok and a.version != spec.version), default=None)
    return {
        "sent": len(during),
        "failed": sum(not a.ok for a in during),
        "sent_total": len(answers),
        "failed_total": sum(not a.ok for a in answers),
        "deploy_s": t1 - t0,
        "first_new_s": None if first_new is None else first_new - t0,
        "last_old_s": None if last_old is None else last_old - t0,
    }


# --- tables ---------------------------------------------------------------------------------


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def throughput_table(batches: dict[int, dict[str, Run]], clients: int) -> list[str]:
    lines = [
        f"| batch | setup | clients | answered | failed | req/s | p50 ms | p99 ms "
        f"| vs in-process (req/s) | vs one replica ({clients} clients) | added ms/request |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for batch, runs in batches.items():
        floor, base = runs["in-process"], runs["one"]
        for key in ("in-process", "one-seq", "one", "two"):
            run = runs[key]
            added = ms(run.p50 - floor.p50) if key == "one-seq" else "-"
            lines.append(
                f"| {batch} | {run.label} | {run.clients} | {len(run.latencies)} | {run.failed} "
                f"| {run.rate:.0f} | {ms(run.p50)} | {ms(run.p99)} "
                f"| {run.rate / floor.rate:.4f} | {run.rate / base.rate:.2f} | {added} |"
            )
    return lines


def rollout_table(result: dict[str, Any], clients: int) -> list[str]:
    def at(value: float | None) -> str:
        return "never" if value is None else f"+{value:.2f} s"

    return [
        f"| rollout v1 -> v2 under load ({clients} clients, v2 `/infer`) | value |",
        "| --- | --- |",
        f"| requests sent / failed while `deploy` ran | {result['sent']} / {result['failed']} |",
        f"| requests sent / failed in the whole loop (1 s before, 1 s after) "
        f"| {result['sent_total']} / {result['failed_total']} |",
        f"| `Client.deploy(--version v2)` took (start v2, ready, switch) "
        f"| {result['deploy_s']:.2f} s |",
        f"| first answer from v2 / last from v1, after deploy started "
        f"| {at(result['first_new_s'])} / {at(result['last_old_s'])} |",
    ]


def protocol_table(runs: dict[str, Run], batch: int) -> list[str]:
    base = runs["v1"]
    lines = [
        "| protocol (one replica) | batch | clients | answered | failed | req/s | p50 ms "
        "| p99 ms | vs v1 (req/s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs.values():
        lines.append(
            f"| {run.label} | {batch} | {run.clients} | {len(run.latencies)} | {run.failed} "
            f"| {run.rate:.0f} | {ms(run.p50)} | {ms(run.p99)} | {run.rate / base.rate:.2f} |"
        )
    return lines


# --- main -----------------------------------------------------------------------------------


def train(path: Path) -> Any:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, FEATURES))
    model = LogisticRegression().fit(x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int))
    joblib.dump(model, path)
    return joblib.load(path)


def batch_rows(batch: int) -> list[list[float]]:
    return [[((i * FEATURES + j) % 7 - 3) / 2 for j in range(FEATURES)] for i in range(batch)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds per run")
    parser.add_argument("--batches", default="1,32", help="rows per request, comma-separated")
    parser.add_argument("--rollout-clients", type=int, default=2)
    parser.add_argument("--protocol-batch", type=int, default=32)
    parser.add_argument(
        "--serving-env", default=str(ROOT / ".venv-serving"), help="kserve venv (made if absent)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.seconds, args.warmup, args.batches = 2, 0.5, 0.1, "1"
        args.rollout_clients, args.protocol_batch = 1, 4
    batches = [int(b) for b in args.batches.split(",") if b]

    from jupyter_cloudml.backends.local import LocalBackend
    from jupyter_cloudml.client import Client
    from jupyter_cloudml.models import DeploySpec, ModelFramework
    from jupyter_cloudml.serving.env import create_serving_env

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        model_path = Path(tmp) / "model.joblib"
        model = train(model_path)
        python = create_serving_env(args.serving_env)
        client = Client(backend=LocalBackend(home=os.path.join(tmp, "home"), serving_python=python))
        sklearn = ModelFramework.SKLEARN
        try:
            urls = {}
            for key, replicas in (("one", 1), ("two", 2)):
                t0 = time.perf_counter()
                spec = DeploySpec(NAMES[key], str(model_path), sklearn, replicas=replicas)
                info = client.deploy(spec)
                urls[key] = info.url
                took = time.perf_counter() - t0
                say(f"deployed {info.name} ({replicas} replica(s)) in {took:.1f} s")
                check = batch_rows(8)
                if client.predict(info.name, check) != model.predict(check).tolist():
                    raise SystemExit(f"{info.name} does not answer what the model predicts")

            def v1_url(key: str) -> str:
                return f"{urls[key]}/v1/models/{NAMES[key]}:predict"

            measured: dict[int, dict[str, Run]] = {}
            for batch in batches:
                rows, body = batch_rows(batch), v1_body(batch_rows(batch))
                say(f"batch {batch}: in-process, one replica (1 and {args.clients}), two replicas")
                measured[batch] = {
                    "in-process": in_process(model, rows, args.seconds, args.warmup),
                    "one-seq": load(
                        "one replica", v1_url("one"), body, 1, args.seconds, args.warmup
                    ),
                    "one": load(
                        "one replica", v1_url("one"), body, args.clients, args.seconds, args.warmup
                    ),
                    "two": load(
                        "two replicas", v1_url("two"), body, args.clients, args.seconds, args.warmup
                    ),
                }

            say(f"protocols: v1 and v2, batch {args.protocol_batch}, one replica")
            rows = batch_rows(args.protocol_batch)
            v2_url = f"{urls['one']}/v2/models/{NAMES['one']}/infer"
            protocols = {
                "v1": load(
                    "KServe v1 `:predict`",
                    v1_url("one"),
                    v1_body(rows),
                    args.clients,
                    args.seconds,
                    args.warmup,
                ),
                "v2": load(
                    "Open Inference v2 `/infer`",
                    v2_url,
                    v2_body(rows),
                    args.clients,
                    args.seconds,
                    args.warmup,
                ),
            }

            say(f"rollout: deploying v2 of {NAMES['one']} under load")
            new = DeploySpec(NAMES["one"], str(model_path), sklearn, version="v2")
            rolled = rollout(client, new, v2_url, v2_body(batch_rows(1)), args.rollout_clients)
        finally:
            for deployment in client.deployments():
                client.undeploy(deployment.name)
            say("undeployed everything")

    cores = os.cpu_count()
    print(
        f"\n{cores} cores; clients are threads of this process (urllib, a new connection per "
        "request), sharing the cores with the endpoint proxy and the replicas.\n"
    )
    print("\n".join(throughput_table(measured, args.clients)))
    print(
        "\n*added ms/request*: one replica with one client, p50 minus the in-process p50 "
        "(HTTP, JSON, the endpoint proxy and kserve).\n"
    )
    print("\n".join(rollout_table(rolled, args.rollout_clients)))
    print()
    print("\n".join(protocol_table(protocols, args.protocol_batch)))
    failures = sum(r.failed for runs in measured.values() for r in runs.values())
    failures += sum(r.failed for r in protocols.values()) + rolled["failed_total"]
    print(json.dumps({"failed_requests": failures, "rollout_failed": rolled["failed"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
