"""Deployments on the local backend: a job's model served by real KServe replicas behind the
endpoint proxy; v1 and v2 answers, a killed replica, a version rolled out under load."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from cloudml_testkit import wait_for, wait_gone

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.client import Client
from jupyter_cloudml.commands.grammar import parse_command
from jupyter_cloudml.commands.runners import run
from jupyter_cloudml.exceptions import Conflict, InvalidSpec, NotFound
from jupyter_cloudml.models import DeploymentStatus, DeploySpec, ModelFramework

pytestmark = pytest.mark.slow

TRAIN = """
import os
import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(0)
X = rng.normal(size=(200, 4))
y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
model = LogisticRegression().fit(X, y)
joblib.dump(model, os.path.join(os.environ["CLOUDML_JOB_DIR"], "model.joblib"))
"""
ROWS = [[0.5, 0.1, -0.3, 1.0], [-1.0, -0.2, 0.4, 0.0], [2.0, 1.0, 0.0, -1.0]]


@pytest.fixture
def client(isolated_home, serving_python):
    backend = LocalBackend(home=str(isolated_home), serving_python=serving_python)
    c = Client(backend=backend)
    yield c
    for deployment in c.deployments():
        c.undeploy(deployment.name)


@pytest.fixture
def trained(client, make_spec):
    """A SUCCEEDED job that left model.joblib in its job dir, and that model loaded here."""
    import joblib

    job = client.submit(make_spec(TRAIN, name="train-clf"))
    done = client.wait(job.id, timeout=120, poll=0.1)
    assert done.status.value == "SUCCEEDED", list(client.logs(job.id))
    path = Path(client.backend.model_path(f"job:{job.id}/model.joblib"))
    return job.id, joblib.load(path)


def post(url: str, body: dict, timeout: float = 30) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, parse(response.read()), dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, parse(e.read()), dict(e.headers)
    except OSError as e:
        return 0, {"error": repr(e)}, {}


def parse(body: bytes) -> dict:
    try:
        return json.loads(body or b"{}")
    except ValueError:
        return {"not json": body[:300].decode(errors="replace")}


def v2_body(rows):
    flat = [x for row in rows for x in row]
    shape = [len(rows), len(rows[0])]
    return {"inputs": [{"name": "input-0", "shape": shape, "datatype": "FP64", "data": flat}]}


def replica_pids(client, name: str) -> list[int]:
    record = json.loads((client.backend.endpoints.folder / name / "endpoint.json").read_text())
    return [p.pid for p in psutil.Process(record["pid"]).children()]


class Load:
    """Requests in a loop from a thread; counts answers and failures."""

    def __init__(self, url: str, body: dict) -> None:
        self.url, self.body = url, body
        self.ok = 0
        self.failures: list[str] = []
        self.versions: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            status, data, _ = post(self.url, self.body)
            if status == 200:
                self.ok += 1
                self.versions.append(data.get("model_version", ""))
            else:
                self.failures.append(f"{status} {data}")

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)


def test_a_trained_job_is_served_by_two_replicas_and_survives_a_kill(client, trained):
    job_id, model = trained
    spec = DeploySpec("clf", f"job:{job_id}/model.joblib", ModelFramework.SKLEARN, replicas=2)
    info = client.deploy(spec)
    assert info.status is DeploymentStatus.READY
    (version,) = info.versions
    assert version.ready == 2 and version.traffic == 100
    expected = model.predict(ROWS).tolist()
    # KServe v1, through the endpoint and through the Python client
    status, answer, _ = post(f"{info.url}/v1/models/clf:predict", {"instances": ROWS})
    assert status == 200 and answer["predictions"] == expected
    assert client.predict("clf", ROWS) == expected
    # Open Inference Protocol (v2)
    status, answer, _ = post(f"{info.url}/v2/models/clf/infer", v2_body(ROWS))
    assert status == 200 and answer["outputs"][0]["data"] == expected
    assert answer["model_version"] == "v1"
    # Kill one replica under load: no request fails, the replica comes back.
    with Load(f"{info.url}/v1/models/clf:predict", {"instances": ROWS}) as load:
        wait_for(lambda: load.ok > 20, 30)
        os.kill(replica_pids(client, "clf")[0], signal.SIGKILL)
        wait_for(
            lambda: any(r.restarts for r in client.get_deployment("clf").versions[0].replicas), 30
        )
        wait_for(lambda: client.get_deployment("clf").versions[0].ready == 2, 60)
        before = load.ok
        wait_for(lambda: load.ok > before + 20, 30)
    assert load.failures == []


def test_a_version_is_scaled_up_and_down_under_load_without_a_failed_request(client, trained):
    job_id, _ = trained
    info = client.deploy(DeploySpec("clf", f"job:{job_id}/model.joblib", ModelFramework.SKLEARN))
    assert [len(v.replicas) for v in info.versions] == [1]
    with Load(f"{info.url}/v1/models/clf:predict", {"instances": ROWS}) as load:
        wait_for(lambda: load.ok > 10, 30)
        up = client.scale("clf", "v1", 3)
        assert [(v.ready, len(v.replicas)) for v in up.versions] == [(3, 3)]
        assert len(replica_pids(client, "clf")) == 3
        out = io.StringIO()  # down through the CLI's grammar and runner
        argv = ["models", "scale", "clf", "--version", "v1", "--replicas", "1", "--output", "json"]
        assert run(parse_command(argv), lambda: client, out) == 0
        down = json.loads(out.getvalue())
        assert [len(v["replicas"]) for v in down["versions"]] == [1]
        wait_for(lambda: len(replica_pids(client, "clf")) == 1, 30)
        before = load.ok
        wait_for(lambda: load.ok > before + 10, 30)
    assert load.failures == []
    desired = json.loads((client.backend.endpoints.folder / "clf" / "desired.json").read_text())
    assert desired["versions"]["v1"]["replicas"] == 1  # kept across endpoint restarts
    with pytest.raises(NotFound, match="no version 'v7'"):
        client.scale("clf", "v7", 2)
    with pytest.raises(InvalidSpec, match=r"1\.\.16"):
        client.scale("clf", "v1", 0)
    with pytest.raises(NotFound, match="no deployment 'nope'"):
        client.scale("nope", "v1", 2)


def test_requests_wait_while_every_replica_restarts(client, trained):
    job_id, _ = trained
    info = client.deploy(DeploySpec("both", f"job:{job_id}/model.joblib", "sklearn", replicas=2))
    with Load(f"{info.url}/v1/models/both:predict", {"instances": ROWS}) as load:
        wait_for(lambda: load.ok > 20, 30)
        for pid in replica_pids(client, "both"):  # a whole version down at once
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: client.get_deployment("both").versions[0].ready == 2, 60)
        before = load.ok
        wait_for(lambda: load.ok > before + 20, 30)
    assert load.failures == []


def test_a_new_version_rolls_out_under_load_without_a_failed_request(client, trained):
    job_id, _ = trained
    first = client.deploy(DeploySpec("roll", f"job:{job_id}/model.joblib", "sklearn"))
    with Load(f"{first.url}/v2/models/roll/infer", v2_body(ROWS)) as load:
        wait_for(lambda: load.ok > 20, 30)
        second = client.deploy(
            DeploySpec("roll", f"job:{job_id}/model.joblib", "sklearn", version="v2")
        )
        after = len(load.versions)
        wait_for(lambda: len(load.versions) > after + 20, 30)
    assert load.failures == []
    assert [v.traffic for v in second.versions] == [0, 100]
    # Once the switch is done only v2 answers (the one request in flight then may be v1's).
    assert set(load.versions[after + 1 :]) == {"v2"} and "v1" in load.versions[:after]
    # One command back, and both versions stay reachable by name.
    back = client.rollback("roll")
    assert [v.traffic for v in back.versions] == [100, 0]
    status, answer, _ = post(f"{first.url}/v2/models/roll/versions/v2/infer", v2_body(ROWS))
    assert status == 200 and answer["model_version"] == "v2"
    split = client.set_traffic("roll", {"v1": 50, "v2": 50})
    assert [v.traffic for v in split.versions] == [50, 50]


def test_bad_payloads_are_400_and_unknown_names_404(client, trained):
    job_id, _ = trained
    info = client.deploy(DeploySpec("bad", "job:train-clf/model.joblib", "sklearn"))  # by name
    assert info.versions[0].model.startswith(str(client.backend.settings.job_folder(job_id)))
    for body in ({"instances": [[1, 2]]}, {"instances": [["a", "b", "c", "d"]]}, {"rows": []}):
        status, answer, _ = post(f"{info.url}/v1/models/bad:predict", body)
        assert status == 400, (body, answer)
    status, _, _ = post(f"{info.url}/v1/models/bad:predict", {"instances": ROWS})
    assert status == 200  # still up
    assert post(f"{info.url}/v1/models/other:predict", {"instances": ROWS})[0] == 404
    assert post(f"{info.url}/v2/models/bad/versions/v9/infer", v2_body(ROWS))[0] == 404
    with pytest.raises(InvalidSpec, match="bad"):
        client.predict("bad", [[1, 2]])


def test_a_model_that_does_not_load_fails_the_deploy_with_the_reason(client, tmp_path):
    broken = tmp_path / "model.joblib"
    broken.write_bytes(b"not a pickle")
    with pytest.raises(InvalidSpec, match="broken v1 cannot be served: cannot load model: "):
        client.deploy(DeploySpec("broken", str(broken), "sklearn"))
    with pytest.raises(NotFound):
        client.get_deployment("broken")


def test_redeploying_is_a_no_op_for_the_same_model_and_the_next_version_for_another(
    client, trained, make_spec
):
    job_id, _ = trained
    first = client.deploy(DeploySpec("re", f"job:{job_id}/model.joblib", "sklearn"))
    assert first.outcome == "re v1 deployed"
    # The same cell trained again: another job, the same bytes: nothing is deployed.
    rerun = client.submit(make_spec(TRAIN, name="train-clf"))
    assert client.wait(rerun.id, timeout=120, poll=0.1).status.value == "SUCCEEDED"
    same = client.deploy(DeploySpec("re", "job:train-clf/model.joblib", "sklearn"))
    assert same.outcome == (
        "re v1 already serves this model (same files, framework and options): nothing deployed"
    )
    assert [(v.version, v.traffic) for v in same.versions] == [("v1", 100)]
    assert same.versions[0].model.startswith(str(client.backend.settings.job_folder(job_id)))
    # Other options are another deploy, so is another model.
    more = client.deploy(DeploySpec("re", f"job:{job_id}/model.joblib", "sklearn", replicas=2))
    assert (
        more.outcome == "re v2 deployed (its model differs from v1's); v1 kept (--replace removes)"
    )
    other = client.submit(make_spec(TRAIN.replace("default_rng(0)", "default_rng(1)"), name="o"))
    assert client.wait(other.id, timeout=120, poll=0.1).status.value == "SUCCEEDED"
    with pytest.raises(Conflict, match="re v1 serves another model: leave out --version"):
        client.deploy(DeploySpec("re", "job:o/model.joblib", "sklearn", version="v1"))
    third = client.deploy(DeploySpec("re", "job:o/model.joblib", "sklearn"))
    assert third.outcome.startswith("re v3 deployed (its model differs from v2's); v1, v2 kept")
    assert [(v.version, v.traffic) for v in third.versions] == [("v1", 0), ("v2", 0), ("v3", 100)]
    replaced = client.deploy(
        DeploySpec("re", f"job:{job_id}/model.joblib", "sklearn", replace=True)
    )
    assert replaced.outcome == "re v4 deployed, replacing v1, v2, v3"
    assert [(v.version, v.traffic) for v in replaced.versions] == [("v4", 100)]
    status, answer, _ = post(f"{replaced.url}/v1/models/re:predict", {"instances": ROWS})
    assert status == 200, answer
    with pytest.raises(InvalidSpec, match="--replace sends all traffic"):
        client.deploy(DeploySpec("re", "job:o", "sklearn", "v5", traffic={"v5": 100}, replace=True))
    with pytest.raises(InvalidSpec, match="--traffic needs --version"):
        DeploySpec("re", "job:o", "sklearn", traffic={"v5": 100})


def test_clashes_port_in_use_and_records_after_restart(client, trained, isolated_home):
    job_id, _ = trained
    model = f"job:{job_id}/model.joblib"
    info = client.deploy(DeploySpec("keep", model, "sklearn"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(Conflict, match=f"port {port} is in use"):
            client.deploy(DeploySpec("other", model, "sklearn", port=port))
    # Another process (a new kernel, the server) sees the same record.
    again = Client(
        backend=LocalBackend(home=str(isolated_home), serving_python=client.backend.serving_python)
    )
    assert [d.name for d in again.deployments()] == ["keep"]
    # An endpoint whose process died comes back when it is looked at.
    record = json.loads((client.backend.endpoints.folder / "keep" / "endpoint.json").read_text())
    os.killpg(record["pid"], signal.SIGKILL)
    wait_gone(record["pid"])
    client.get_deployment("keep")  # respawns
    wait_for(lambda: client.get_deployment("keep").status is DeploymentStatus.READY, 60)
    assert post(f"{info.url}/v1/models/keep:predict", {"instances": ROWS})[0] == 200
    client.undeploy("keep")
    assert client.deployments() == []


def test_the_magics_deploy_list_predict_and_undeploy(
    shell, trained, serving_python, capsys, monkeypatch
):
    job_id, model = trained
    magics = shell.magics_manager.registry["CloudMLMagics"]
    magics.client = Client(
        backend=LocalBackend(home=os.environ["CLOUDML_HOME"], serving_python=serving_python)
    )
    shell.run_line_magic(
        "cloudml_deploy", f"nb --model job:{job_id}/model.joblib --framework sklearn --replicas 2"
    )
    out = capsys.readouterr().out
    assert "nb: READY" in out and "/v1/models/nb:predict" in out and "curl -s" in out
    shell.run_line_magic("cloudml", f"models predict nb '{json.dumps(ROWS)}' --output json")
    assert json.loads(capsys.readouterr().out) == model.predict(ROWS).tolist()
    shell.run_line_magic("cloudml", "models list")
    assert "nb" in capsys.readouterr().out
    shell.run_line_magic("cloudml", "models undeploy nb")
    assert "removed nb" in capsys.readouterr().out


def test_a_study_is_deployed_by_its_best_trial(client, make_spec):
    from jupyter_cloudml.models import ParamSpec, ParamType, TuningSpec

    code = """
import os
import joblib
import jupyter_cloudml
from sklearn.dummy import DummyRegressor
p = jupyter_cloudml.params(c=0.0)
model = DummyRegressor(strategy="constant", constant=p["c"]).fit([[0.0]], [0.0])
joblib.dump(model, os.path.join(os.environ["CLOUDML_JOB_DIR"], "model.joblib"))
jupyter_cloudml.report(step=0, score=-abs(p["c"] - 3.0))
"""
    space = (ParamSpec("c", ParamType.DISCRETE, values=(1.0, 3.0)),)
    tuning = TuningSpec(space, "score", max_trials=2, algorithm="grid")
    study = client.submit_study(make_spec(code, name="pick"), tuning)
    client.wait(study.id, timeout=120, poll=0.1)
    best = client.get_study(study.id).best_trial
    assert best is not None and best.params == {"c": 3.0}
    info = client.deploy(DeploySpec("best", f"job:{study.id}/model.joblib", "sklearn"))
    assert best.job_id in info.versions[0].model
    assert client.predict("best", [[0.0]]) == [3.0]


def endpoint_pid(client, name: str) -> int:
    record = json.loads((client.backend.endpoints.folder / name / "endpoint.json").read_text())
    return int(record["pid"])


def test_a_frozen_replica_is_routed_around_and_replaced(client, trained):
    """SIGSTOP one of two replicas under load: no request fails or hangs past the probes, the
    frozen replica is replaced, and both serve again."""
    job_id, _ = trained
    info = client.deploy(DeploySpec("icy", f"job:{job_id}/model.joblib", "sklearn", replicas=2))
    with Load(f"{info.url}/v1/models/icy:predict", {"instances": ROWS}) as load:
        wait_for(lambda: load.ok > 20, 30)
        frozen = psutil.Process(replica_pids(client, "icy")[0])
        frozen.suspend()
        wait_gone(frozen.pid, 30)  # killed: a stopped process answers no probe
        wait_for(lambda: client.get_deployment("icy").versions[0].ready == 2, 60)
        replicas = client.get_deployment("icy").versions[0].replicas
        assert [r.restarts for r in replicas].count(1) == 1
        before = load.ok
        wait_for(lambda: load.ok > before + 20, 30)
    assert load.failures == []
    assert frozen.pid not in replica_pids(client, "icy")


def test_a_replica_frozen_while_it_starts_is_replaced(client, trained):
    """SIGSTOP a replica before it is ready: a starting replica does not answer its probes
    anyway, and one frozen then stayed STARTING for good (found by tests/.../test_faults.py)."""
    job_id, _ = trained
    client.deploy(DeploySpec("thaw", f"job:{job_id}/model.joblib", "sklearn"))
    (first,) = replica_pids(client, "thaw")
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: replica_pids(client, "thaw") not in ([], [first]), 30)
    frozen = psutil.Process(replica_pids(client, "thaw")[0])
    frozen.suspend()
    assert client.get_deployment("thaw").versions[0].ready == 0  # it was still starting
    wait_gone(frozen.pid, 30)
    wait_for(lambda: client.get_deployment("thaw").versions[0].ready == 1, 60)
    (replica,) = client.get_deployment("thaw").versions[0].replicas
    assert replica.restarts == 2


def test_a_killed_endpoint_comes_back_by_itself_and_leaves_no_orphan(client, trained):
    """Nobody reads: the keeper brings the endpoint back; the killed endpoint's replicas are
    stopped, not left running beside the new ones."""
    job_id, model = trained
    info = client.deploy(DeploySpec("phoenix", f"job:{job_id}/model.joblib", "sklearn"))
    old_replicas = replica_pids(client, "phoenix")
    os.kill(endpoint_pid(client, "phoenix"), signal.SIGKILL)
    wait_gone(endpoint_pid(client, "phoenix"), 10)
    url = f"{info.url}/v1/models/phoenix:predict"
    status, _, _ = post(url, {"instances": ROWS}, timeout=5)
    assert status == 0  # down: connection refused
    # Client.predict asks again while the keeper brings the endpoint back: no error.
    assert client.predict("phoenix", ROWS) == model.predict(ROWS).tolist()
    for pid in old_replicas:
        wait_gone(pid, 10)


def test_a_frozen_endpoint_is_replaced_by_itself(client, trained):
    """SIGSTOP the endpoint process itself: it holds its port and answers nobody. It counted as
    running (a stopped process is alive) and nothing replaced it; now the keeper does."""
    from jupyter_cloudml.serving.client import post_predict

    job_id, model = trained
    info = client.deploy(DeploySpec("statue", f"job:{job_id}/model.joblib", "sklearn"))
    frozen = psutil.Process(endpoint_pid(client, "statue"))
    frozen.suspend()
    wait_gone(frozen.pid, 10)  # killed: nobody reads, so the keeper did it
    # Asked directly, not through the backend (whose reads would bring it back themselves).
    answer = post_predict(info.url, "statue", ROWS, retry_seconds=60)
    assert answer == model.predict(ROWS).tolist()
    assert endpoint_pid(client, "statue") != frozen.pid


def test_undeploy_stops_the_replicas_a_dead_endpoint_left(client, trained, isolated_home):
    from jupyter_cloudml.backends.local.keeper import stop_keeper

    job_id, _ = trained
    client.deploy(DeploySpec("leftover", f"job:{job_id}/model.joblib", "sklearn", replicas=2))
    stop_keeper(isolated_home)  # so that nothing brings the endpoint back meanwhile
    orphans = replica_pids(client, "leftover")
    os.kill(endpoint_pid(client, "leftover"), signal.SIGKILL)
    wait_gone(endpoint_pid(client, "leftover"), 10)
    assert all(psutil.pid_exists(pid) for pid in orphans)
    client.backend.endpoints.undeploy("leftover")
    for pid in orphans:
        wait_gone(pid, 10)


def test_a_stopped_endpoint_is_listed_as_serving_nothing(client, trained, isolated_home):
    """An endpoint that died and cannot come back (its port was taken meanwhile) is STOPPED
    with no ready replica, although its last status file said both were ready."""
    from jupyter_cloudml.backends.local.keeper import stop_keeper

    job_id, _ = trained
    info = client.deploy(DeploySpec("quiet", f"job:{job_id}/model.joblib", "sklearn", replicas=2))
    assert info.versions[0].ready == 2
    stop_keeper(isolated_home)
    os.kill(endpoint_pid(client, "quiet"), signal.SIGKILL)
    wait_gone(endpoint_pid(client, "quiet"), 10)
    port = int(info.url.rsplit(":", 1)[1])
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 5
        while True:  # a connection of some other process may hold the freed port a moment
            try:
                squatter.bind(("127.0.0.1", port))
                break
            except OSError as taken:
                holders = [
                    c.pid for c in psutil.net_connections() if c.laddr and c.laddr.port == port
                ]
                assert taken.errno == errno.EADDRINUSE and time.monotonic() < deadline, holders
                time.sleep(0.05)
        squatter.listen()
        (listed,) = client.deployments()
        assert listed.status is DeploymentStatus.STOPPED
        assert listed.versions[0].ready == 0
