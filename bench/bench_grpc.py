"""gRPC against HTTP on the same local endpoint: p50/p99 latency of one client, as ratios.

A LogisticRegression on 4 features is deployed with `Client.deploy` (one replica). One client
sends the same rows back to back for `--seconds` per run, after `--warmup` unmeasured seconds,
through the endpoint (the proxy that routes by version and split):

- gRPC `ModelInfer` over one kept channel (HTTP/2), the request encoded once;
- HTTP v2 `/infer` (JSON) over one kept-alive connection (`http.client`), the body encoded once;
- HTTP v2 `/infer` with a new connection per request (`urllib`, what `Client.predict` uses);
- `Client.predict(protocol="grpc")` and `Client.predict()` (HTTP v1) end to end: a lookup of
  the deployment, encoding, a new channel or connection, decoding.

For batch sizes `--batches`. The ratio is each row's p50 over gRPC's p50 (1.0: as fast).
Every deployment is removed at the end, whatever happened.
Run: .venv/bin/python bench/bench_grpc.py [--seconds 3] [--batches 1,32] [--smoke]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchkit import pct, say  # noqa: E402 - bench/ beside the script

FEATURES = 4
NAME = "bench-grpc"


def timed(call: Callable[[], Any], seconds: float, warmup: float) -> list[float]:
    """Latencies (ms) of `call` back to back for `seconds`, after `warmup` unmeasured."""
    start = time.perf_counter() + warmup
    end = start + seconds
    latencies = []
    while (t0 := time.perf_counter()) < end:
        call()
        if t0 >= start:
            latencies.append((time.perf_counter() - t0) * 1000)
    return latencies


def rows_of(batch: int) -> list[list[float]]:
    return [[((i * FEATURES + j) % 7 - 3) / 2 for j in range(FEATURES)] for i in range(batch)]


def v2_body(rows: list[list[float]]) -> bytes:
    flat = [x for row in rows for x in row]
    tensor = {"name": "input-0", "shape": [len(rows), FEATURES], "datatype": "FP64", "data": flat}
    return json.dumps({"inputs": [tensor]}).encode()


def train(path: Path) -> Any:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, FEATURES))
    joblib.dump(LogisticRegression().fit(x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)), path)
    return joblib.load(path)


def measure(client: Any, info: Any, model: Any, batch: int, args: Any) -> dict[str, list[float]]:
    """Each way of calling, on `batch` rows: its latencies."""
    import grpc

    from jupyter_cloudml.serving import inference_messages as messages
    from jupyter_cloudml.serving.grpc_client import infer_request, predictions

    rows = rows_of(batch)
    expected = model.predict(rows).tolist()
    path = f"/v2/models/{NAME}/infer"
    body = v2_body(rows)
    headers = {"Content-Type": "application/json"}
    request = infer_request(NAME, rows).SerializeToString()
    channel = grpc.insecure_channel(info.grpc_url)
    infer = channel.unary_unary(
        messages.method("ModelInfer"), response_deserializer=messages.ModelInferResponse.FromString
    )
    if predictions(infer(request, timeout=30)) != expected:
        raise SystemExit("gRPC does not answer what the model predicts")
    http_host = info.url.removeprefix("http://")
    kept = http.client.HTTPConnection(http_host, timeout=30)

    def http_kept() -> None:
        kept.request("POST", path, body=body, headers=headers)
        answer = kept.getresponse()
        if answer.status != 200:
            raise SystemExit(f"HTTP {answer.status}: {answer.read()[:200]!r}")
        answer.read()

    def http_new() -> None:
        req = urllib.request.Request(info.url + path, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=30) as answer:
            answer.read()

    if client.predict(NAME, rows, protocol="grpc") != expected:
        raise SystemExit("Client.predict(protocol='grpc') does not answer what the model predicts")
    ways = {
        "gRPC `ModelInfer`, one channel": lambda: infer(request, timeout=30),
        "HTTP v2 `/infer`, one kept-alive connection": http_kept,
        "HTTP v2 `/infer`, a connection per request": http_new,
        '`Client.predict(protocol="grpc")`': lambda: client.predict(NAME, rows, protocol="grpc"),
        "`Client.predict()` (HTTP v1)": lambda: client.predict(NAME, rows),
    }
    try:
        return {label: timed(call, args.seconds, args.warmup) for label, call in ways.items()}
    finally:
        kept.close()
        channel.close()


def table(results: dict[int, dict[str, list[float]]]) -> list[str]:
    lines = [
        "| batch | how (one client, through the endpoint) | answered | p50 ms | p99 ms "
        "| p50 / gRPC p50 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for batch, ways in results.items():
        base = pct(next(iter(ways.values())), 50)
        for label, latencies in ways.items():
            p50 = pct(latencies, 50)
            lines.append(
                f"| {batch} | {label} | {len(latencies)} | {p50:.2f} | {pct(latencies, 99):.2f} "
                f"| {p50 / base:.2f} |"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds per run")
    parser.add_argument("--batches", default="1,32", help="rows per request, comma-separated")
    parser.add_argument(
        "--serving-env", default=str(ROOT / ".venv-serving"), help="kserve venv (made if absent)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.warmup, args.batches = 0.3, 0.1, "1"

    from jupyter_cloudml.backends.local import LocalBackend
    from jupyter_cloudml.client import Client
    from jupyter_cloudml.models import DeploySpec, ModelFramework
    from jupyter_cloudml.serving.env import create_serving_env

    with tempfile.TemporaryDirectory(prefix="bench-grpc-") as tmp:
        model_path = Path(tmp) / "model.joblib"
        model = train(model_path)
        python = create_serving_env(args.serving_env)
        client = Client(backend=LocalBackend(home=os.path.join(tmp, "home"), serving_python=python))
        try:
            info = client.deploy(DeploySpec(NAME, str(model_path), ModelFramework.SKLEARN))
            say(f"deployed {NAME}: HTTP {info.url}, gRPC {info.grpc_url}")
            results = {}
            for batch in [int(b) for b in args.batches.split(",") if b]:
                say(f"batch {batch}")
                results[batch] = measure(client, info, model, batch, args)
        finally:
            for deployment in client.deployments():
                client.undeploy(deployment.name)
            say("undeployed everything")
    print(
        f"\n{os.cpu_count()} cores; the client is this process, sharing the cores with the "
        "endpoint proxy and the replica.\n"
    )
    print("\n".join(table(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
