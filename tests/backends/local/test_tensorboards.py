"""TensorBoard on the local backend: real TensorBoard processes over real jobs' event files."""

from __future__ import annotations

import json
import os
import signal
import urllib.request

import pytest
from cloudml_testkit import wait_gone

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.cli import main
from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import Conflict, NotFound
from jupyter_cloudml.models import ParamSpec, ParamType, TensorBoardInfo, TuningSpec
from jupyter_cloudml.views.tensorboards import MIME_TYPE, notebook_bundle, proxy_path

REPORT = "import jupyter_cloudml\njupyter_cloudml.report(step=1, acc=0.75)\n"


@pytest.fixture
def client(backend):
    c = Client(backend=backend)
    yield c
    for board in c.tensorboards():
        c.stop_tensorboard(board.id)


def finished_job(client, make_spec, code=REPORT, **fields):
    job = client.submit(make_spec(code, **fields))
    assert client.wait(job.id, timeout=60, poll=0.05).status.value == "SUCCEEDED"
    return job.id


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("http://127.0.0.1:6006/", "proxy/6006/"),
        ("http://localhost:7000/", "proxy/7000/"),
        ("http://tb-0123456789ab.team-a.svc:6006/", "cloudml/tensorboards/tb-0123456789ab/"),
    ],
)
def test_proxy_path_is_relative_to_the_server(url, path):
    board = TensorBoardInfo(id="tb-0123456789ab", jobs=("a",), url=url, started=0.0)
    assert proxy_path(board) == path


def test_start_reuse_read_and_stop(client, make_spec):
    a, b = finished_job(client, make_spec, name="a"), finished_job(client, make_spec, name="b")
    board = client.tensorboard([a, b])
    assert not board.reused and set(board.jobs) == {a, b}
    assert client.tensorboard([b, a]).id == board.id  # the same set of jobs: reused
    assert client.tensorboard([b, a]).reused
    runs = get_json(board.url + "data/runs")
    assert sorted(runs) == sorted([f"{a}/metrics/worker-0", f"{b}/metrics/worker-0"])
    tags = get_json(board.url + "data/plugin/scalars/tags")
    assert tags[f"{a}/metrics/worker-0"]["acc"] is not None
    other = client.tensorboard([a])
    assert other.id != board.id
    assert [t.id for t in client.tensorboards()] == [board.id, other.id]
    client.stop_tensorboard(board.id)
    assert [t.id for t in client.tensorboards()] == [other.id]
    with pytest.raises(NotFound):
        client.stop_tensorboard(board.id)


def post_json(url, body):
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_a_study_shows_each_trial_by_its_parameters_and_in_the_hparams_dashboard(client, make_spec):
    code = (
        "import jupyter_cloudml\np = jupyter_cloudml.params(x=0.0, opt='sgd')\n"
        "for step in range(3):\n    jupyter_cloudml.report(step=step, acc=p['x'] * step, n=step)\n"
    )
    params = (
        ParamSpec("x", ParamType.DOUBLE, 0.0, 1.0),
        ParamSpec("opt", ParamType.CATEGORICAL, values=("sgd", "adam")),
    )
    study = client.submit_study(make_spec(code, name="st"), TuningSpec(params, "acc", max_trials=3))
    client.wait(study.id, timeout=120, poll=0.1)
    trials = client.get_study(study.id).trials
    board = client.tensorboard([study.id])
    assert board.jobs == (study.id,)
    names = {f"{study.id}/x={t.params['x']:.4g},opt={t.params['opt']}" for t in trials}
    runs = set(get_json(board.url + "data/runs"))
    assert names <= runs, runs
    tags = get_json(board.url + "data/plugin/scalars/tags")
    assert all(set(tags[name]) == {"acc", "n"} for name in names)  # every tag, not only the metric
    hparams = board.url + "data/plugin/hparams/"
    experiment = post_json(hparams + "experiment", {"experimentName": ""})
    assert {h["name"] for h in experiment["hparamInfos"]} == {"x", "opt"}
    assert [m["name"]["tag"] for m in experiment["metricInfos"]] == ["acc"]
    groups = post_json(
        hparams + "session_groups",
        {
            "experimentName": "",
            "startIndex": 0,
            "sliceSize": 100,
            "allowedStatuses": [
                "STATUS_UNKNOWN",
                "STATUS_SUCCESS",
                "STATUS_FAILURE",
                "STATUS_RUNNING",
            ],
        },
    )
    assert groups["totalSize"] == 3
    by_x = {round(g["hparams"]["x"], 6): g for g in groups["sessionGroups"]}
    for trial in trials:
        (metric,) = by_x[round(trial.params["x"], 6)]["metricValues"]
        assert metric["value"] == pytest.approx(trial.value)


def test_a_study_without_trials_yet_is_a_conflict(client, make_spec, backend, monkeypatch):
    from jupyter_cloudml.tuning import study as study_module

    monkeypatch.setattr(study_module, "trial_job_ids", lambda backend, study_id: [])
    tuning = TuningSpec((ParamSpec("x", ParamType.DOUBLE, 0.0, 1.0),), "acc", max_trials=1)
    study = client.submit_study(make_spec(REPORT, name="st"), tuning)
    with pytest.raises(Conflict, match="no trial yet"):
        client.tensorboard([study.id])
    client.cancel_study(study.id)


def test_an_idle_tensorboard_stops_by_itself(isolated_home, make_spec):
    backend = LocalBackend(home=str(isolated_home), tensorboard_idle_seconds=1.0)
    client = Client(backend=backend)
    board = client.tensorboard([finished_job(client, make_spec)])
    pid = json.loads((isolated_home / "tensorboards" / f"{board.id}.json").read_text())["pid"]
    wait_gone(pid, 30)
    assert client.tensorboards() == []


def test_a_killed_tensorboard_is_replaced(client, make_spec, isolated_home):
    job_id = finished_job(client, make_spec)
    board = client.tensorboard([job_id])
    record = json.loads((isolated_home / "tensorboards" / f"{board.id}.json").read_text())
    os.kill(record["pid"], signal.SIGKILL)
    wait_gone(record["pid"])
    fresh = client.tensorboard([job_id])
    assert (not fresh.reused and fresh.url != board.url) or fresh.started != board.started
    assert get_json(fresh.url + "data/runs") == [f"{job_id}/metrics/worker-0"]


def test_unknown_job_is_not_found(client):
    with pytest.raises(NotFound):
        client.tensorboard(["ghost-000000"])


def test_cli_start_list_stop(client, make_spec, capsys):
    job_id = finished_job(client, make_spec)
    assert main(["tensorboard", job_id], client=client) == 0
    out = capsys.readouterr().out
    assert out.startswith("TensorBoard tb-") and f"over {job_id}: http://127.0.0.1:" in out
    assert main(["tensorboard", "--list", "--output", "json"], client=client) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["jobs"] == [job_id]
    assert main(["tensorboard", "--stop", listed["id"]], client=client) == 0
    assert main(["tensorboard", "--list"], client=client) == 0
    assert "no TensorBoard is running" in capsys.readouterr().out
    assert main(["tensorboard", "--stop", listed["id"]], client=client) == 1


def test_magic_shows_it_inline_through_the_server(shell, make_spec, monkeypatch):
    from IPython.core import display_functions

    client = shell.magics_manager.registry["CloudMLMagics"].client
    job_id = finished_job(client, make_spec)
    shown = []
    monkeypatch.setattr(
        display_functions, "publish_display_data", lambda data, **kw: shown.append(data)
    )
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/alice/")
    try:
        shell.run_line_magic("cloudml", f"tensorboard {job_id}")
        (bundle,) = shown
        frame = bundle[MIME_TYPE]
        assert frame["jobs"] == [job_id] and frame["url"].startswith("proxy/")
        assert f'src="/user/alice/{frame["url"]}#scalars"' in bundle["text/html"]
        assert "localhost" not in json.dumps(bundle) and "127.0.0.1" not in json.dumps(bundle)
    finally:
        for board in client.tensorboards():
            client.stop_tensorboard(board.id)


def test_notebook_bundle_defaults_to_the_server_root():
    from jupyter_cloudml.models import TensorBoardInfo

    board = TensorBoardInfo("tb-1", ("a-1",), "http://127.0.0.1:6006/", 0.0, reused=True)
    bundle = notebook_bundle(board, height=400)
    assert (
        'src="/proxy/6006/#scalars"' in bundle["text/html"]
        and 'height="400"' in bundle["text/html"]
    )
    assert "reused" in bundle["text/plain"]
