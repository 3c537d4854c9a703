"""The deployment widget: `DeploymentView` state through `get_state()`, fed by a
`DeploymentWatcher`; against a fake client (fast) and real local deployments (slow)."""

from __future__ import annotations

import ast
import html
import json
import os
import re
import signal
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest
from cloudml_testkit import REPO, wait_for

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import BackendUnavailable, NotFound
from jupyter_cloudml.models import (
    DeploymentInfo,
    DeploymentStatus,
    DeploySpec,
    ModelFramework,
    ServingReplicaInfo,
    ServingReplicaStatus,
    VersionInfo,
)
from jupyter_cloudml.views.deployments import curl_snippet, python_snippet
from jupyter_cloudml.widgets.deployment import (
    DEFAULT_EXAMPLE,
    DeploymentView,
    DeploymentWatcher,
    deployment_widget,
    example_rows,
)

WIDGETS = REPO / "jupyter_cloudml" / "widgets"

ROWS = [[0.5, 0.1, -0.3, 1.0], [-1.0, -0.2, 0.4, 0.0], [2.0, 1.0, 0.0, -1.0]]


def value(widget: Any) -> Any:
    return widget.get_state()["value"]


def text(markup: str) -> str:
    """The visible text of some HTML, tags dropped, entities unescaped."""
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def version_rows(view: DeploymentView) -> dict[str, str]:
    """Each version's table row as plain text, by version."""
    found = re.findall(r'data-version="([^"]+)">(.*?)</tr>', value(view.versions), re.S)
    return {version: " ".join(text(row).split()) for version, row in found}


def shown_predictions(view: DeploymentView) -> list[Any]:
    (body,) = re.findall(r"<pre[^>]*>(.*?)</pre>", value(view.predictions), re.S)
    return [json.loads(line) for line in html.unescape(body).splitlines()]


# --- a fake client: the view and the watcher alone -------------------------------------------


def make_info(status: DeploymentStatus = DeploymentStatus.DEGRADED) -> DeploymentInfo:
    replicas = (
        ServingReplicaInfo("v1-0", ServingReplicaStatus.READY),
        ServingReplicaInfo("v1-1", ServingReplicaStatus.RESTARTING, 2, "exited with -9"),
    )
    canary = (ServingReplicaInfo("v2-0", ServingReplicaStatus.FAILED, 5, "cannot load <model>"),)
    return DeploymentInfo(
        name="iris",
        status=status,
        url="http://127.0.0.1:9",
        versions=(
            VersionInfo("v1", "/m/1.joblib", ModelFramework.SKLEARN, 80, replicas),
            VersionInfo("v2", "/m/2.joblib", ModelFramework.SKLEARN, 20, canary),
            VersionInfo("v3", "/m/3.joblib", ModelFramework.SKLEARN, 0),
        ),
        reason="v2 has no ready replica",
    )


class FakeClient:
    def __init__(self, info: DeploymentInfo | None) -> None:
        self.info = info
        self.error: Exception | None = None
        self.polls = 0
        self.metadata: dict[str, Any] | Exception = {"inputs": [{"shape": [-1, 3]}]}
        self.metadata_calls = 0

    def get_deployment(self, name: str) -> DeploymentInfo:
        self.polls += 1
        if self.error is not None:
            raise self.error
        if self.info is None:
            raise NotFound(f"no deployment {name!r} (see `cloudml models list`)")
        return self.info

    def predict(self, name: str, instances: Any, version: str | None = None, timeout: float = 60.0):
        return [sum(row) for row in instances]

    def model_metadata(self, name: str, version: str | None = None, timeout: float = 60.0):
        self.metadata_calls += 1
        if isinstance(self.metadata, Exception):
            raise self.metadata
        return self.metadata


def test_the_view_shows_every_version_share_and_replica_health() -> None:
    view = DeploymentView()
    view.update(make_info())
    header = text(value(view.header))
    assert "iris" in header and "DEGRADED" in header and "v2 has no ready replica" in header
    assert "http://127.0.0.1:9/v1/models/iris:predict" in value(view.endpoint)
    assert "http://127.0.0.1:9/v2/models/iris/infer" in value(view.endpoint)
    rows = version_rows(view)
    assert list(rows) == ["v1", "v2", "v3"]
    assert "80%" in rows["v1"] and "1/2 ready" in rows["v1"]
    assert (
        "v1-0 READY" in rows["v1"] and "v1-1 RESTARTING restarted 2x exited with -9" in rows["v1"]
    )
    assert "20%" in rows["v2"] and "v2-0 FAILED restarted 5x cannot load <model>" in rows["v2"]
    assert "0%" in rows["v3"] and "0/0 ready" in rows["v3"]
    # Snippets: the views.deployments ones, escaped, in boxes one click selects.
    snippets = value(view.snippets)
    assert html.escape(curl_snippet(make_info(), DEFAULT_EXAMPLE)) in snippets
    assert html.escape(python_snippet(make_info(), DEFAULT_EXAMPLE)) in snippets
    assert snippets.count("user-select:all") == 2 and "monospace" in snippets
    # Without a predict function there is no try-it box.
    assert view.try_it.layout.display == "none"


def test_a_known_input_width_prefills_rows_and_snippets_unless_the_user_typed() -> None:
    view = DeploymentView(predict=lambda rows: rows)
    view.update(make_info())
    assert value(view.rows) == DEFAULT_EXAMPLE
    view.set_example("[[0.0, 0.0, 0.0]]")
    assert value(view.rows) == "[[0.0, 0.0, 0.0]]"
    assert html.escape(json.dumps({"instances": [[0.0, 0.0, 0.0]]})) in value(view.snippets)
    view.rows.value = "[[9, 9, 9]]"
    view.set_example("[[1.0, 1.0, 1.0]]")
    assert value(view.rows) == "[[9, 9, 9]]"


def test_example_rows_take_the_width_of_the_first_input_in_the_metadata() -> None:
    assert example_rows({"inputs": [{"shape": [-1, 3]}]}) == "[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]"
    for no_width in (
        {},
        {"inputs": []},
        {"inputs": [{"name": "x"}]},
        {"inputs": [{"shape": [-1]}]},
        {"inputs": [{"shape": [-1, -1]}]},
        {"inputs": [{"shape": [-1, 65]}]},
        {"inputs": [{"shape": [-1, 2, 2]}]},
        {"inputs": "none"},
    ):
        assert example_rows(no_width) is None, no_width


def test_a_ready_deployment_asks_the_client_once_for_its_width() -> None:
    client = FakeClient(make_info(DeploymentStatus.READY))
    view = deployment_widget(client, "iris", interval=0.01)
    try:
        assert value(view.rows) == "[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]"
        assert html.escape(json.dumps({"instances": [[0.0] * 3, [1.0] * 3]})) in value(
            view.snippets
        )
        wait_for(lambda: client.polls > 3)
        assert client.metadata_calls == 1
    finally:
        view.close()
    # Metadata that cannot be had leaves the default rows and shows no problem.
    client = FakeClient(make_info(DeploymentStatus.READY))
    client.metadata = BackendUnavailable("iris: the endpoint does not answer")
    view = deployment_widget(client, "iris", interval=0.01)
    try:
        assert value(view.rows) == DEFAULT_EXAMPLE and value(view.error) == ""
        assert "READY" in value(view.header) and client.metadata_calls == 1
    finally:
        view.close()


def test_the_widgets_do_no_io_and_use_no_private_name_of_another_module() -> None:
    """Views display what they are handed; only the client (or a callback) reaches anything."""
    io_modules = {"urllib", "http", "requests", "httpx", "socket", "subprocess", "shutil"}
    for path in sorted(WIDGETS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in io_modules, where
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in io_modules or node.level, where
                assert not any(a.name.startswith("_") for a in node.names), where
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "open", where
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                if node.attr.endswith("__"):  # super().__init__ and the like
                    continue
                if node.attr.startswith("_repr_") and node.attr.endswith("_"):  # IPython's display
                    continue
                owner = node.value
                assert isinstance(owner, ast.Name) and owner.id in ("self", "cls"), where


def test_try_it_runs_in_a_thread_and_shows_the_answer_or_the_problem() -> None:
    release, seen = threading.Event(), []

    def predict(rows: Any) -> list[Any]:
        seen.append(threading.current_thread().name)
        release.wait(5)
        if rows == [["x"]]:
            raise BackendUnavailable("iris: the endpoint does not answer")
        return [len(row) for row in rows]

    view = DeploymentView(predict=predict)
    view.rows.value = "[[1, 2], [3]]"
    view.predict_button.click()
    assert view.predicting and view.predict_button.get_state()["disabled"]
    assert view.run_predict() is None  # one at a time
    release.set()
    view.wait_predict(5)
    assert seen and seen[0] != threading.current_thread().name
    assert shown_predictions(view) == [2, 1]
    assert not view.predict_button.get_state()["disabled"]
    assert view.predict_button.get_state()["description"] == "Predict"
    view.rows.value = '[["x"]]'
    view.predict_button.click()
    view.wait_predict(5)
    assert text(value(view.predictions)).strip() == "iris: the endpoint does not answer"
    view.rows.value = "[[1, 2"
    view.predict_button.click()
    view.wait_predict(5)
    shown = text(value(view.predictions))
    assert "the rows are not valid JSON" in shown and "Traceback" not in shown


def test_watcher_shows_errors_then_recovers_and_stops_when_the_view_is_closed() -> None:
    client = FakeClient(make_info())
    client.error = BackendUnavailable("the backend is down")
    view = DeploymentView()
    watcher = DeploymentWatcher(client, "iris", view, interval=0.01, max_backoff=0.05).start()
    wait_for(lambda: "the backend is down" in value(view.error))
    client.error = None
    wait_for(lambda: "DEGRADED" in value(view.header) and value(view.error) == "")
    view.close()
    watcher.join(5)
    assert not watcher.running


def test_a_missing_deployment_is_shown_stopped_and_starts_no_thread() -> None:
    client = FakeClient(None)
    view = deployment_widget(client, "gone", interval=0.01)
    assert "STOPPED" in value(view.header) and "no deployment 'gone'" in text(value(view.header))
    assert view.watcher is not None and not view.watcher.running
    assert view.predict_button.get_state()["disabled"]


def test_a_stopped_deployment_ends_the_watch() -> None:
    client = FakeClient(make_info())
    view = deployment_widget(client, "iris", interval=0.01)
    assert view.watcher is not None and view.watcher.running
    client.info = make_info(DeploymentStatus.STOPPED)
    view.watcher.join(5)
    assert not view.watcher.running and "STOPPED" in value(view.header)
    assert view.predict_button.get_state()["disabled"]


# --- real deployments on the local backend ---------------------------------------------------


@pytest.fixture
def model_file(tmp_path: Path):
    """A LogisticRegression on 4 features saved with joblib, and the model itself."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    model = LogisticRegression().fit(x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int))
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    return str(path), model


@pytest.fixture
def client(isolated_home: Path, serving_python: str):
    c = Client(backend=LocalBackend(home=str(isolated_home), serving_python=serving_python))
    yield c
    for deployment in c.deployments():
        c.undeploy(deployment.name)


def replica_pids(client: Client, name: str) -> list[int]:
    folder = client.backend.endpoints.folder  # type: ignore[attr-defined]
    record = json.loads((folder / name / "endpoint.json").read_text())
    return [p.pid for p in psutil.Process(record["pid"]).children()]


@pytest.mark.slow
def test_a_live_deployment_with_a_canary_and_a_restarted_replica(client, model_file) -> None:
    path, _ = model_file
    client.deploy(DeploySpec("clf", path, ModelFramework.SKLEARN, replicas=2))
    split = {"v1": 90, "v2": 10}
    info = client.deploy(DeploySpec("clf", path, "sklearn", version="v2", traffic=split))
    view = deployment_widget(client, "clf", interval=0.2)
    watcher = view.watcher
    assert watcher is not None and watcher.running
    try:
        assert "READY" in value(view.header)
        assert f"{info.url}/v1/models/clf:predict" in value(view.endpoint)
        rows = version_rows(view)
        assert "90%" in rows["v1"] and "2/2 ready" in rows["v1"]
        assert "v1-0 READY" in rows["v1"] and "v1-1 READY" in rows["v1"]
        assert "10%" in rows["v2"] and "1/1 ready" in rows["v2"] and "v2-0 READY" in rows["v2"]
        # The model's width came from the endpoint's v2 metadata: 4 features.
        example = json.dumps([[0.0] * 4, [1.0] * 4])
        assert value(view.rows) == example
        assert html.escape(curl_snippet(info, example)) in value(view.snippets)
        assert html.escape(python_snippet(info, example)) in value(view.snippets)
        # It follows changes on its own: a new split, a killed replica coming back.
        client.set_traffic("clf", {"v1": 0, "v2": 100})
        wait_for(lambda: "100%" in version_rows(view)["v2"], 10)
        assert "0%" in version_rows(view)["v1"]
        os.kill(replica_pids(client, "clf")[0], signal.SIGKILL)
        wait_for(lambda: "restarted 1x" in value(view.versions), 30)
        wait_for(lambda: value(view.versions).count(">READY<") == 3, 60)
    finally:
        view.close()
    watcher.join(5)
    assert not watcher.running


@pytest.mark.slow
def test_try_it_against_the_endpoint_then_undeploy_ends_the_watch(client, model_file) -> None:
    path, model = model_file
    client.deploy(DeploySpec("try", path, ModelFramework.SKLEARN))
    view = deployment_widget(client, "try", interval=0.2)
    try:
        view.rows.value = json.dumps(ROWS)
        view.predict_button.click()
        view.wait_predict(30)
        assert shown_predictions(view) == model.predict(ROWS).tolist()
        # Rows of the wrong width: the endpoint's reason, no traceback, the button back.
        view.rows.value = "[[1, 2]]"
        view.predict_button.click()
        view.wait_predict(30)
        shown = text(value(view.predictions))
        assert "expecting 4 features" in shown and "Traceback" not in shown
        assert not view.predict_button.get_state()["disabled"]
        # Undeployed from elsewhere: the view says so and its watcher ends by itself.
        assert view.watcher is not None
        client.undeploy("try")
        view.watcher.join(10)
        assert not view.watcher.running
        # The last poll saw the endpoint stopping ("undeployed") or the record gone.
        header = text(value(view.header))
        assert "STOPPED" in header and ("undeployed" in header or "no deployment" in header)
        assert view.predict_button.get_state()["disabled"]
    finally:
        view.close()


@pytest.mark.slow
def test_the_try_it_box_and_its_example_rows_go_through_the_client(
    client, model_file, tmp_path: Path
) -> None:
    """The widget reaches the endpoint only as `Client.predict` and `Client.model_metadata` do:
    the version the traffic picks, or the one named."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LinearRegression

    path, model = model_file
    narrow = LinearRegression().fit(np.eye(3), [1.0, 2.0, 3.0])
    narrow_path = tmp_path / "narrow.joblib"
    joblib.dump(narrow, narrow_path)
    client.deploy(DeploySpec("two", path, ModelFramework.SKLEARN))
    split = {"v1": 100, "v2": 0}
    client.deploy(DeploySpec("two", str(narrow_path), "sklearn", version="v2", traffic=split))
    wait_for(lambda: client.get_deployment("two").status is DeploymentStatus.READY, 60)
    # The client reads each version's metadata; the traffic's version when none is named.
    assert client.model_metadata("two")["inputs"][0]["shape"] == [-1, 4]
    assert client.model_metadata("two", version="v2")["inputs"][0]["shape"] == [-1, 3]
    with pytest.raises(NotFound):
        client.model_metadata("nothing")
    narrow_rows = [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    assert client.predict("two", narrow_rows, version="v2") == pytest.approx([1.0, 3.0])
    view = deployment_widget(client, "two", interval=0.2)
    try:
        # The rows the box starts from: the width the client's metadata gives.
        assert value(view.rows) == example_rows(client.model_metadata("two"))
        assert value(view.rows) == json.dumps([[0.0] * 4, [1.0] * 4])
        view.rows.value = json.dumps(ROWS)
        view.predict_button.click()
        view.wait_predict(30)
        assert shown_predictions(view) == client.predict("two", ROWS)
        assert shown_predictions(view) == model.predict(ROWS).tolist()
        # Once the traffic moves, the box follows it: the client finds the version each time.
        client.set_traffic("two", {"v1": 0, "v2": 100})
        wait_for(lambda: client.model_metadata("two")["inputs"][0]["shape"] == [-1, 3], 10)
        view.rows.value = json.dumps(narrow_rows)
        view.predict_button.click()
        view.wait_predict(30)
        assert shown_predictions(view) == pytest.approx([1.0, 3.0])
    finally:
        view.close()
