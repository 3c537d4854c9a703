"""gRPC and the protocol's headers on a local deployment, checked with KServe's own clients
(`InferenceGRPCClient`, `InferenceRESTClient` v1 and v2, KServe's generated gRPC stub), run
under the serving interpreter against real endpoints: two versions with a traffic split,
replicas killed while a gRPC client streams requests, binary tensors over REST."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from cloudml_testkit import wait_for

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.client import Client
from jupyter_cloudml.commands.grammar import parse_command
from jupyter_cloudml.commands.runners import run
from jupyter_cloudml.exceptions import InvalidSpec, NotFound
from jupyter_cloudml.models import DeploySpec, ModelFramework
from jupyter_cloudml.views.deployments import format_deployment
from jupyter_cloudml.widgets.deployment import render_endpoint

pytestmark = pytest.mark.slow

CLIENTS = Path(__file__).resolve().parents[2] / "kserve_clients.py"
ROWS = [[0.5, 0.1, -0.3, 1.0], [-1.0, -0.2, 0.4, 0.0], [2.0, 1.0, 0.0, -1.0]]


@pytest.fixture
def client(isolated_home, serving_python):
    c = Client(backend=LocalBackend(home=str(isolated_home), serving_python=serving_python))
    yield c
    for deployment in c.deployments():
        c.undeploy(deployment.name)


@pytest.fixture
def model(tmp_path):
    """A fitted classifier saved as model.joblib, and its own predictions of ROWS."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    fitted = LogisticRegression().fit(x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int))
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path)
    return str(path), fitted.predict(ROWS).tolist()


def kserve_client(serving_python: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [serving_python, str(CLIENTS), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def seen(proc: subprocess.Popen[str], timeout: float = 120) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)


def replica_pids(client: Client, name: str) -> dict[str, int]:
    """The pid of each replica process of `name`, by replica name (`v1-0`, ...)."""
    import psutil

    record = json.loads((client.backend.endpoints.folder / name / "endpoint.json").read_text())
    pids = {}
    for child in psutil.Process(record["pid"]).children():
        argv = child.cmdline()
        version = argv[argv.index("--version") + 1]
        pids[f"{version}-{len([k for k in pids if k.startswith(version)])}"] = child.pid
    return pids


def test_kserve_clients_over_grpc_and_rest_through_versions_and_a_split(
    client, model, serving_python
):
    path, expected = model
    client.deploy(DeploySpec("iris", path, ModelFramework.SKLEARN, replicas=2))
    info = client.deploy(
        DeploySpec("iris", path, "sklearn", version="v2", traffic={"v1": 50, "v2": 50})
    )
    assert info.grpc_url is not None and info.grpc_url.startswith("127.0.0.1:")
    assert info.grpc_url != info.url.removeprefix("http://")
    rows = json.dumps(ROWS)
    grpc_seen = seen(kserve_client(serving_python, "grpc", info.grpc_url, "iris", rows, "60"))
    assert grpc_seen["server_live"] and grpc_seen["server_ready"] and grpc_seen["model_ready"]
    assert grpc_seen["predictions"] == expected
    # 60 calls split 50/50: each version answers (P(one gets none) = 2 * 2**-60).
    assert set(grpc_seen["versions"]) == {"v1", "v2"}
    assert sum(grpc_seen["versions"].values()) == 60
    assert grpc_seen["pinned_version"] == "v2"
    assert grpc_seen["metadata"] == {"name": "iris", "versions": ["v2"]}
    code, reason = grpc_seen["wrong_datatype"]
    assert code == "INVALID_ARGUMENT" and "unknown datatype 'FOO'" in reason
    code, reason = grpc_seen["strings_for_numbers"]
    assert code == "INVALID_ARGUMENT" and "could not convert string to float" in reason
    assert grpc_seen["wrong_shape"] == [
        "INVALID_ARGUMENT",
        "input 'input-0' of shape [3, 4] needs 12 values, got 11",
    ]
    code, reason = grpc_seen["contents_of_other_type"]
    assert code == "INVALID_ARGUMENT" and "is FP32" in reason and "int64_contents" in reason
    assert grpc_seen["unknown_version"][0] == "NOT_FOUND"
    assert "no version 'v9' (versions: v1, v2)" in grpc_seen["unknown_version"][1]
    assert grpc_seen["unknown_model"][0] == "NOT_FOUND"
    # The request id comes back; the version the split picked is named.
    assert grpc_seen["initial_metadata"]["x-request-id"] == "req-42"
    assert grpc_seen["initial_metadata"]["x-model-version"] in ("v1", "v2")

    rest_seen = seen(kserve_client(serving_python, "rest", info.url, "iris", rows))
    assert rest_seen["v1_ready"] is True and rest_seen["v2_ready"] is True
    assert rest_seen["v1"] == rest_seen["v2"] == expected
    # Binary tensors: the body's JSON length travels in Inference-Header-Content-Length,
    # which the proxy must pass on for the replica to read the body at all.
    assert rest_seen["v2_binary"] == expected
    assert rest_seen["v2_binary_headers"]["x-request-id"] == "req-7"
    assert rest_seen["v2_binary_headers"]["x-model-version"] in ("v1", "v2")
    assert rest_seen["v2_binary_out"] == expected
    assert int(rest_seen["v2_binary_out_headers"]["inference-header-content-length"]) > 0

    # Our own client, both protocols.
    assert client.predict("iris", ROWS) == client.predict("iris", ROWS, protocol="grpc")
    assert client.predict("iris", np.array(ROWS), protocol="grpc") == expected
    assert client.predict("iris", ROWS, version="v2", protocol="grpc") == expected
    with pytest.raises(InvalidSpec, match="could not convert string to float"):
        client.predict("iris", [["a", "b", "c", "d"]], protocol="grpc")
    with pytest.raises(InvalidSpec, match="X has 2 features"):
        client.predict("iris", [[1.0, 2.0]], protocol="grpc")
    with pytest.raises(NotFound, match="no version 'v9'"):
        client.predict("iris", ROWS, version="v9", protocol="grpc")
    with pytest.raises(InvalidSpec, match="protocol 'soap': give one of http, grpc"):
        client.predict("iris", ROWS, protocol="soap")
    # The CLI: `cloudml models predict NAME ROWS --protocol grpc`.
    out = io.StringIO()
    argv = ["models", "predict", "iris", json.dumps(ROWS), "--protocol", "grpc", "-o", "json"]
    assert run(parse_command(argv), lambda: client, out) == 0
    assert json.loads(out.getvalue()) == expected
    assert f"gRPC (Open Inference Protocol):  {info.grpc_url}  " in format_deployment(info)
    assert f"<br>gRPC: <code>{info.grpc_url}</code>" in render_endpoint(info)


def test_a_grpc_stream_loses_no_request_when_replicas_are_killed(client, model, serving_python):
    path, _ = model
    client.deploy(DeploySpec("kill", path, ModelFramework.SKLEARN, replicas=2))
    info = client.deploy(
        DeploySpec("kill", path, "sklearn", version="v2", traffic={"v1": 50, "v2": 50})
    )
    load = kserve_client(serving_python, "grpc-load", info.grpc_url, "kill", json.dumps(ROWS), "25")
    time.sleep(6)  # the client streams by now
    pids = replica_pids(client, "kill")
    os.kill(pids["v1-0"], signal.SIGKILL)  # v1-1 takes over at once
    os.kill(pids["v2-0"], signal.SIGKILL)  # v2's only replica: its requests wait for it

    def restarted() -> int:
        replicas = [r for v in client.get_deployment("kill").versions for r in v.replicas]
        return sum(r.restarts > 0 and r.status.value == "READY" for r in replicas)

    wait_for(lambda: restarted() == 2, 60)
    result = seen(load)
    assert result["failures"] == [] and result["ok"] > 50, result
