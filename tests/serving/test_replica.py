"""Serving replicas as real processes under the serving interpreter, over real HTTP on loopback.

One replica per framework is started once for the module (kserve takes ~3 s to start) and all
start side by side; every replica is stopped in teardown.
"""

from __future__ import annotations

import json
import os
import signal
import site
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from cloudml_testkit import REPO

from jupyter_cloudml.backends.local.processes import free_ports
from jupyter_cloudml.serving import loaders
from jupyter_cloudml.serving.env import create_serving_env
from jupyter_cloudml.serving.replica import (
    LISTEN_ERROR_EXIT,
    LOAD_ERROR_EXIT,
    LOAD_ERROR_PREFIX,
    NO_KSERVE_EXIT,
    PACKAGE_PARENT,
    replica_command,
)

REPO = REPO
START_TIMEOUT = 90.0
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]


@pytest.fixture(scope="session")
def serving_python() -> str:
    """The serving interpreter (built once with the project's own recipe, reused after)."""
    return create_serving_env(REPO / ".venv-serving")


def free_port() -> int:
    return free_ports(1)[0]


def replica_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": PACKAGE_PARENT}


def request(url: str, body: Any = None, content_type: str = "application/json") -> tuple[int, Any]:
    """(status, JSON answer) of a GET, or of a POST when there is a body (bytes sent as is)."""
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


@dataclass
class Replica:
    name: str
    version: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def v1(self, body: Any, **kw: Any) -> tuple[int, Any]:
        return request(f"{self.url}/v1/models/{self.name}:predict", body, **kw)

    def v2(self, body: Any, **kw: Any) -> tuple[int, Any]:
        return request(f"{self.url}/v2/models/{self.name}/infer", body, **kw)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"replica {self.name} exited {self.proc.returncode}:\n{self.tail()}")
            try:
                if request(f"{self.url}/v2/health/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"replica {self.name} not ready in {START_TIMEOUT} s:\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if the replica is still there after 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def v2_body(rows: list[list[Any]], datatype: str = "FP64") -> dict[str, Any]:
    flat = [value for row in rows for value in row]
    shape = [len(rows), len(rows[0])]
    return {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": flat}]}


def v2_data(answer: dict[str, Any]) -> np.ndarray:
    output = answer["outputs"][0]
    return np.asarray(output["data"]).reshape(output["shape"])


# --- models, built once in the main environment ----------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Small trained models saved the way each framework saves them, with in-process twins."""
    import joblib
    import torch
    import xgboost
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("models")
    x, y = load_iris(return_X_y=True)
    sk = LogisticRegression(max_iter=1000).fit(x, y)
    (root / "sklearn").mkdir()
    joblib.dump(sk, root / "sklearn" / "model.joblib")

    booster = xgboost.train(
        {"objective": "reg:squarederror", "max_depth": 2, "nthread": 1},
        xgboost.DMatrix(x.astype(np.float32), label=y),
        num_boost_round=5,
    )
    (root / "xgboost").mkdir()
    booster.save_model(str(root / "xgboost" / "model.json"))

    (root / "onnx").mkdir()
    onnx_model = to_onnx(sk, x[:1].astype(np.float32), options={"zipmap": False})
    (root / "onnx" / "model.onnx").write_bytes(onnx_model.SerializeToString())

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    net.eval()
    (root / "torchscript").mkdir()
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; users still ship it
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), str(root / "torchscript" / "model.pt"))

    custom = root / "custom"
    custom.mkdir()
    (custom / "factor.json").write_text('{"factor": 3}')
    (custom / "scaler.py").write_text(
        "import json, os\n\n"
        "class Scaler:\n"
        "    def __init__(self, model_dir):\n"
        "        self.model_dir = model_dir\n"
        "        self.factor = None\n\n"
        "    def load(self):\n"
        "        with open(os.path.join(self.model_dir, 'factor.json')) as f:\n"
        "            self.factor = json.load(f)['factor']\n\n"
        "    def predict(self, instances):\n"
        "        if not all(isinstance(v, (int, float)) for row in instances for v in row):\n"
        "            raise ValueError('instances must be numbers')\n"
        "        return [[v * self.factor for v in row] for row in instances]\n"
    )
    return {"root": root, "sklearn": sk, "xgboost": booster, "torch": net}


@pytest.fixture(scope="module")
def replicas(
    models: dict[str, Any], serving_python: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Replica]]:
    """One replica per framework, started side by side, all stopped at the end."""
    root: Path = models["root"]
    logs = tmp_path_factory.mktemp("replica-logs")
    specs = {
        "sklearn": ("iris", "1", root / "sklearn", None),
        "xgboost": ("boost", "7", root / "xgboost" / "model.json", None),
        "onnx": ("iris-onnx", "2", root / "onnx", None),
        "pytorch": ("net", "3", root / "torchscript", None),
        "custom": ("scaler", "4", root / "custom", "scaler:Scaler"),
    }
    started: dict[str, Replica] = {}
    try:
        for framework, (name, version, path, predictor) in specs.items():
            port = free_port()
            log = logs / f"{framework}.log"
            cmd = replica_command(
                serving_python,
                name=name,
                version=version,
                framework=framework,
                model=str(path),
                port=port,
                predictor=predictor,
            )
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    cmd, stdout=out, stderr=subprocess.STDOUT, env=replica_env()
                )
            started[framework] = Replica(name, version, port, proc, log)
        for replica in started.values():
            replica.wait_ready()
        yield started
    finally:
        for replica in started.values():  # all at once: each takes ~0.5 s to shut down
            if replica.proc.poll() is None:
                replica.proc.send_signal(signal.SIGTERM)
        for replica in started.values():
            replica.stop()


# --- answers per framework --------------------------------------------------------------------


def test_sklearn_v1_and_v2_equal_in_process_predict(replicas, models):
    replica = replicas["sklearn"]
    expected = models["sklearn"].predict(np.array(IRIS_ROWS)).tolist()

    assert replica.v1({"instances": IRIS_ROWS}) == (200, {"predictions": expected})

    status, answer = replica.v2(v2_body(IRIS_ROWS))
    assert status == 200, answer
    assert answer["model_name"] == "iris"
    assert answer["model_version"] == "1"
    assert answer["outputs"][0]["datatype"] == "INT64"
    assert v2_data(answer).tolist() == expected


def test_sklearn_versioned_v2_path(replicas, models):
    replica = replicas["sklearn"]
    expected = models["sklearn"].predict(np.array(IRIS_ROWS)).tolist()
    versioned = f"{replica.url}/v2/models/iris/versions/1/infer"
    status, answer = request(versioned, v2_body(IRIS_ROWS))
    assert status == 200
    assert v2_data(answer).tolist() == expected

    status, answer = request(f"{replica.url}/v2/models/iris/versions/9/infer", v2_body(IRIS_ROWS))
    assert status == 404
    assert "version 9" in answer["error"]


def test_xgboost_booster_answers_like_in_process(replicas, models):
    import xgboost

    replica = replicas["xgboost"]
    rows = np.array(IRIS_ROWS, dtype=np.float32)
    expected = models["xgboost"].predict(xgboost.DMatrix(rows)).tolist()

    status, answer = replica.v1({"instances": IRIS_ROWS})
    assert status == 200
    assert answer["predictions"] == pytest.approx(expected, rel=1e-6)

    status, answer = replica.v2(v2_body(IRIS_ROWS, "FP32"))
    assert status == 200
    assert answer["model_version"] == "7"
    assert v2_data(answer).tolist() == pytest.approx(expected, rel=1e-6)

    status, answer = replica.v1({"instances": [[1.0, 2.0]]})
    assert status == 400
    assert "4 features" in answer["error"]


def test_onnx_answers_like_sklearn(replicas, models):
    replica = replicas["onnx"]
    expected = models["sklearn"].predict(np.array(IRIS_ROWS)).tolist()

    assert replica.v1({"instances": IRIS_ROWS}) == (200, {"predictions": expected})
    status, answer = replica.v2(v2_body(IRIS_ROWS, "FP32"))
    assert status == 200
    assert answer["outputs"][0]["name"] == "label"
    assert v2_data(answer).tolist() == expected

    status, answer = replica.v1({"instances": [[1.0, 2.0, 3.0]]})
    assert status == 400
    assert "shape" in answer["error"]


def test_torchscript_answers_like_in_process(replicas, models):
    import torch

    replica = replicas["pytorch"]
    with torch.no_grad():
        expected = models["torch"](torch.tensor(IRIS_ROWS, dtype=torch.float32)).tolist()

    status, answer = replica.v1({"instances": IRIS_ROWS})
    assert status == 200
    assert np.allclose(answer["predictions"], expected, atol=1e-6)

    status, answer = replica.v2(v2_body(IRIS_ROWS, "FP32"))
    assert status == 200
    assert np.allclose(v2_data(answer), expected, atol=1e-6)

    status, answer = replica.v1({"instances": [[1.0, 2.0]]})
    assert status == 400
    assert answer["error"]
    assert replica.v1({"instances": IRIS_ROWS})[0] == 200


def test_custom_predictor_gets_model_dir_and_load(replicas):
    replica = replicas["custom"]
    assert replica.v1({"instances": [[1, 2], [3, 4]]}) == (200, {"predictions": [[3, 6], [9, 12]]})

    status, answer = replica.v2(v2_body([[1, 2], [3, 4]], "INT64"))
    assert status == 200
    assert answer["model_version"] == "4"
    assert v2_data(answer).tolist() == [[3, 6], [9, 12]]

    status, answer = replica.v1({"instances": [["a", 2]]})
    assert (status, answer) == (400, {"error": "instances must be numbers"})


# --- bad payloads -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "body", "content_type", "reason"),
    [
        ("v1", {"instances": [[1.0, 2.0, 3.0]]}, "application/json", "4 features"),
        ("v1", {"instances": [["a", "b", "c", "d"]]}, "application/json", "string"),
        ("v1", {"rows": IRIS_ROWS}, "application/json", "instances"),
        ("v1", {"instances": []}, "application/json", "instances"),
        ("v1", b"", "application/json", "empty"),
        ("v1", b"{not json", "application/json", "Unrecognized request format"),
        ("v1", {"instances": IRIS_ROWS}, "text/plain", "Content-Type: application/json"),
        ("v2", v2_body([[1.0, 2.0, 3.0]]), "application/json", "4 features"),
        ("v2", v2_body([["a", "b", "c", "d"]]), "application/json", "could not convert"),
        ("v2", {"rows": IRIS_ROWS}, "application/json", "inputs: Field required"),
        ("v2", b"", "application/json", "body"),
        (
            "v2",
            {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]},
            "application/json",
            "reshape",
        ),
    ],
)
def test_bad_payload_is_400_with_reason_and_server_stays_up(
    replicas, models, protocol, body, content_type, reason
):
    replica = replicas["sklearn"]
    send = replica.v1 if protocol == "v1" else replica.v2
    status, answer = send(body, content_type=content_type)
    assert status == 400, answer
    assert reason.lower() in answer["error"].lower()

    expected = models["sklearn"].predict(np.array(IRIS_ROWS)).tolist()
    assert replica.v1({"instances": IRIS_ROWS}) == (200, {"predictions": expected})


def test_unknown_model_is_404(replicas):
    replica = replicas["sklearn"]
    assert request(f"{replica.url}/v1/models/nope:predict", {"instances": IRIS_ROWS})[0] == 404
    assert request(f"{replica.url}/v2/models/nope/infer", v2_body(IRIS_ROWS))[0] == 404
    assert request(f"{replica.url}/v2/models/nope/ready")[0] == 404


# --- health and metadata ----------------------------------------------------------------------


def test_health_and_metadata_endpoints(replicas):
    replica = replicas["sklearn"]
    assert request(f"{replica.url}/v2/health/live") == (200, {"live": True})
    assert request(f"{replica.url}/v2/health/ready") == (200, {"ready": True})
    assert request(f"{replica.url}/v2/models/iris/ready") == (200, {"name": "iris", "ready": True})
    status, meta = request(f"{replica.url}/v2/models/iris")
    assert status == 200
    assert meta == {
        "name": "iris",
        "versions": ["1"],
        "platform": "sklearn",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "output-0", "datatype": "INT64", "shape": [-1]}],
    }
    assert request(f"{replica.url}/v2/models/iris/versions/1")[1] == meta


def test_onnx_metadata_names_its_tensors(replicas):
    replica = replicas["onnx"]
    status, meta = request(f"{replica.url}/v2/models/iris-onnx")
    assert status == 200
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["versions"] == ["2"]
    assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"][0]["name"] == "label"


# --- binding ----------------------------------------------------------------------------------


def test_replica_listens_on_loopback_only(replicas):
    replica = replicas["sklearn"]
    listening = [
        conn.laddr
        for conn in psutil.Process(replica.proc.pid).net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    ]
    assert listening == [("127.0.0.1", replica.port)]

    # 127.0.0.2 reaches this machine too, but not a socket bound to 127.0.0.1 only.
    others = ["127.0.0.2"] + [
        addr.address
        for addrs in psutil.net_if_addrs().values()
        for addr in addrs
        if addr.family == socket.AF_INET and not addr.address.startswith("127.")
    ]
    for address in others:
        with pytest.raises(ConnectionRefusedError), socket.socket() as sock:
            sock.settimeout(5)
            sock.connect((address, replica.port))


def test_port_in_use_exits_4_with_one_line(serving_python, replicas, models):
    taken = replicas["sklearn"].port
    cmd = replica_command(
        serving_python,
        name="again",
        version="1",
        framework="sklearn",
        model=str(models["root"] / "sklearn"),
        port=taken,
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, env=replica_env(), timeout=60)
    assert proc.returncode == LISTEN_ERROR_EXIT
    assert proc.stderr.splitlines() == [
        f"cloudml-serving: cannot listen on 127.0.0.1:{taken}: Address already in use"
    ]


def test_interpreter_without_kserve_exits_5_with_one_line(models):
    cmd = replica_command(
        sys.executable,  # the main environment: no kserve there
        name="nokserve",
        version="1",
        framework="sklearn",
        model=str(models["root"] / "sklearn"),
        port=free_port(),
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, env=replica_env(), timeout=60)
    assert proc.returncode == NO_KSERVE_EXIT
    assert proc.stderr.splitlines() == [
        f"cloudml-serving: not a serving interpreter: {sys.executable} cannot import kserve "
        "(No module named 'kserve')"
    ]


# --- models that do not load -------------------------------------------------------------------


@pytest.fixture(scope="module")
def broken(models: dict[str, Any]) -> Path:
    """Model files and folders that cannot be served."""
    root: Path = models["root"] / "broken"
    root.mkdir()
    (root / "corrupt.pkl").write_bytes(b"this is not a pickle")
    (root / "two").mkdir()
    for name in ("a.joblib", "b.pkl"):
        (root / "two" / name).write_bytes(b"")
    (root / "empty").mkdir()
    (root / "broken.onnx").write_bytes(b"not onnx")
    (root / "custom").mkdir()
    (root / "custom" / "pred.py").write_text("class Other:\n    pass\n")
    (root / "failing").mkdir()
    (root / "failing" / "pred.py").write_text(
        "class P:\n    def load(self):\n        raise FileNotFoundError('weights.bin')\n"
        "    def predict(self, instances):\n        return instances\n"
    )
    return root


@pytest.mark.parametrize(
    ("framework", "model", "predictor", "reason"),
    [
        ("sklearn", "missing.joblib", None, "no such file or folder: {root}/missing.joblib"),
        ("sklearn", "corrupt.pkl", None, "cannot unpickle corrupt.pkl: UnpicklingError"),
        ("sklearn", "two", None, "several model files in {root}/two: a.joblib, b.pkl"),
        ("sklearn", "empty", None, "no model file (*.joblib, *.pkl, *.pickle) in {root}/empty"),
        ("xgboost", "../sklearn/model.joblib", None, "holds a LogisticRegression, not an xgboost"),
        ("onnx", "broken.onnx", None, "cannot load broken.onnx with onnxruntime"),
        ("pytorch", "corrupt.pkl", None, "cannot load corrupt.pkl as TorchScript"),
        ("custom", "custom", "pred:Missing", "module 'pred' has no class 'Missing'"),
        ("custom", "custom", "nomodule:P", "cannot import 'nomodule'"),
        ("custom", "failing", "pred:P", "pred:P failed to load: FileNotFoundError: weights.bin"),
        ("custom", "custom", None, "--framework custom needs --predictor module:Class"),
    ],
)
def test_model_that_cannot_load_exits_3_with_one_line(
    serving_python, broken, framework, model, predictor, reason
):
    cmd = replica_command(
        serving_python,
        name="bad",
        version="1",
        framework=framework,
        model=str(broken / model),
        port=free_port(),
        predictor=predictor,
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, env=replica_env(), timeout=60)
    assert proc.returncode == LOAD_ERROR_EXIT, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(LOAD_ERROR_PREFIX)
    assert reason.format(root=broken) in lines[0]


# --- loaders in process (no server) --------------------------------------------------------


def test_pickled_torch_module_loads_and_state_dict_is_refused(tmp_path):
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(2, 1))
    torch.save(net, tmp_path / "whole.pt")
    loaded = loaders.load_model("pytorch", str(tmp_path / "whole.pt"))
    with torch.no_grad():
        expected = net(torch.tensor([[1.0, 2.0]])).tolist()
    assert np.allclose(loaded.predict([[1.0, 2.0]]), expected)
    assert loaded.platform == "pytorch"

    torch.save(net.state_dict(), tmp_path / "weights.pth")
    with pytest.raises(loaders.ModelLoadError, match="holds a OrderedDict, not a module"):
        loaders.load_model("pytorch", str(tmp_path / "weights.pth"))


def test_pickled_xgb_model_and_cloudpickle_sklearn(tmp_path, models):
    import cloudpickle
    import xgboost
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    clf = xgboost.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1).fit(x, y)
    with open(tmp_path / "clf.pkl", "wb") as f:
        cloudpickle.dump(clf, f)
    loaded = loaders.load_model("xgboost", str(tmp_path / "clf.pkl"))
    assert loaded.predict(IRIS_ROWS) == clf.predict(np.array(IRIS_ROWS)).tolist()

    with open(tmp_path / "sk.pickle", "wb") as f:
        cloudpickle.dump(models["sklearn"], f)
    loaded = loaders.load_model("sklearn", str(tmp_path / "sk.pickle"))
    assert loaded.predict(IRIS_ROWS) == models["sklearn"].predict(np.array(IRIS_ROWS)).tolist()


def test_serving_env_is_reused_and_sees_the_main_environment(serving_python):
    # A second call finds the marker and only refreshes the .pth (no pip run).
    started = time.monotonic()
    assert create_serving_env(REPO / ".venv-serving") == serving_python
    assert time.monotonic() - started < 10
    code = "import psutil, sklearn; print(psutil.__version__, sklearn.__file__)"
    out = subprocess.run(
        [serving_python, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0].startswith("5.")  # kserve's pin wins over the main env's psutil
    assert out[1].startswith(sys.prefix)  # scikit-learn falls through to the main env


# --- the serving environment recipe ----------------------------------------------------------


def test_serving_env_pip_failure_then_concurrent_build(tmp_path, monkeypatch):
    """pip's failure is a ServingEnvError with its last lines; two concurrent callers then
    build the (half-built) venv once. `pip` stands in for kserve to stay fast and offline."""

    from jupyter_cloudml.serving import env

    target = tmp_path / "venv-serving"
    monkeypatch.setattr(env, "KSERVE_REQUIREMENT", "!not a requirement")  # fails before any index
    with pytest.raises(
        env.ServingEnvError, match=r"pip install !not a requirement failed"
    ) as failed:
        env.create_serving_env(target)
    assert "Invalid requirement" in str(failed.value)
    assert env.find_serving_env(target) is None

    monkeypatch.setattr(env, "KSERVE_REQUIREMENT", "pip")
    monkeypatch.setattr(env, "SERVING_MODULE", "pip")
    builds = []
    real_build = env._build
    monkeypatch.setattr(env, "_build", lambda *a: builds.append(a) or real_build(*a))
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(env.create_serving_env(target)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(builds) == 1
    assert results == [str(target / "bin" / "python")] * 2
    assert env.find_serving_env(target) == results[0]
    pth = next(target.glob("lib/python*/site-packages")) / env.PTH_NAME
    text = pth.read_text()
    assert all(f"site.addsitedir({d!r})" in text for d in site.getsitepackages())


def test_a_private_serving_env_is_its_owners_only_whatever_the_umask(tmp_path, monkeypatch):
    """As every file of a cloudml home: what venv, pip and the recipe write is 0700/0600."""
    from jupyter_cloudml.serving import env

    monkeypatch.setattr(env, "KSERVE_REQUIREMENT", "pip")  # stands in for kserve: fast, offline
    monkeypatch.setattr(env, "SERVING_MODULE", "pip")
    target = tmp_path / "home" / "serving-env"
    old = os.umask(0o022)
    try:
        python = env.create_serving_env(target, private=True)
    finally:
        os.umask(old)
    assert python == str(target / "bin" / "python")
    exposed = [
        f"{oct(stat.S_IMODE(path.lstat().st_mode))} {path.relative_to(tmp_path)}"
        for path in [target, *target.rglob("*")]
        if not path.is_symlink() and stat.S_IMODE(path.lstat().st_mode) & 0o077
    ]
    lock = tmp_path / "home" / "serving-env.lock"
    assert exposed == [] and stat.S_IMODE(lock.stat().st_mode) == 0o600
