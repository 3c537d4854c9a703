"""The REST API of the server extension, against a real Jupyter server and real local jobs.

Every JSON answer is checked against `openapi.yaml` with openapi-core.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.parse

import pytest
from cloudml_testkit import REPO
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
from tornado.httpclient import HTTPClientError

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.client import Client
from jupyter_cloudml.models import ParamSpec, ParamType, TuningSpec

SPEC_PATH = REPO / "jupyter_cloudml" / "server" / "openapi.yaml"
API = OpenAPI.from_file_path(str(SPEC_PATH))

# Registered while this module is collected, so after tests/labextension/: the lab tests must
# not get pytest-jupyter's autouse event loop (Playwright's sync API refuses one).
pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config():
    extensions = {"jupyter_cloudml": True, "jupyter_server_proxy": True}
    return {"ServerApp": {"jpserver_extensions": extensions}}


@pytest.fixture
def client(backend):
    return Client(backend=backend)


@pytest.fixture
def api(jp_fetch):
    """`await api(METHOD, "/jobs", params=..., body=...)` -> (status, JSON or None), checked
    against the OpenAPI contract; errors come back as answers, not exceptions."""

    async def call(method, path, params=None, body=None, check=True):
        query = urllib.parse.urlencode(params or {}, doseq=True)
        kwargs = {"method": method, "raise_error": False}
        if params:
            kwargs["params"] = urllib.parse.parse_qsl(query)
        if body is not None or method == "POST":
            kwargs["body"] = json.dumps(body if body is not None else {})
        if method == "DELETE":
            kwargs["allow_nonstandard_methods"] = True
        response = await jp_fetch("cloudml", "api", *path.strip("/").split("/"), **kwargs)
        data = json.loads(response.body) if response.body else None
        if check:
            request = MockRequest(
                "http://localhost",
                method.lower(),
                f"/cloudml/api{path}",
                args=dict(urllib.parse.parse_qsl(query)),
            )
            mimetype = response.headers.get("Content-Type", "application/json").split(";")[0]
            API.validate_response(
                request, MockResponse(response.body or b"", response.code, content_type=mimetype)
            )
        return response.code, data

    return call


def run(client, make_spec, code, **fields):
    return client.submit(make_spec(code, **fields))


async def wait_done(client, job_id, timeout=60):
    return await asyncio.to_thread(client.wait, job_id, timeout, 0.05)


def test_the_openapi_file_is_a_valid_spec():
    spec, _ = read_from_filename(str(SPEC_PATH))
    validate(spec)


async def test_every_endpoint_needs_authentication(jp_serverapp, http_server_client, jp_base_url):
    paths = ["jobs", "jobs/x", "studies", "capabilities", "tensorboards", "jobs/x/logs/stream"]
    for path in paths:
        response = await http_server_client.fetch(
            f"{jp_base_url}cloudml/api/{path}", raise_error=False
        )
        assert response.code == 403, path
        assert json.loads(response.body)["code"] == "not_authenticated"
    for method, path in [("POST", "jobs/x/cancel"), ("DELETE", "jobs/x"), ("POST", "tensorboards")]:
        response = await http_server_client.fetch(
            f"{jp_base_url}cloudml/api/{path}",
            method=method,
            raise_error=False,
            body=b"{}" if method == "POST" else None,
            allow_nonstandard_methods=True,
        )
        assert response.code == 403, path


async def test_capabilities(api):
    status, caps = await api("GET", "/capabilities")
    assert status == 200
    assert caps["backend"] == "local" and caps["tensorboard"] is True
    assert caps["deployments"] is True and caps["studies"] is True


async def test_quota_of_the_local_backend(api, client, make_spec):
    job = run(client, make_spec, "import time\ntime.sleep(30)", name="holds")
    for _ in range(200):
        if client.get(job.id).status.value == "RUNNING":
            break
        await asyncio.sleep(0.05)
    status, quota = await api("GET", "/quota")
    assert status == 200
    assert quota["scope"].startswith("local scheduler of ") and quota["running"] == 1
    slots = client.backend.settings.cpu_slots
    assert quota["items"][0] == {
        "resource": "cpu slots", "used": "1", "hard": f"{slots:g}", "limit": ""
    }  # fmt: skip
    client.cancel(job.id)


async def test_list_filters_and_pages(api, client, make_spec):
    ids = [
        run(client, make_spec, "pass", name=f"job{i}", labels={"team": f"t{i % 2}"}).id
        for i in range(5)
    ]
    for job_id in ids:
        await wait_done(client, job_id)
    status, page = await api("GET", "/jobs", {"limit": 2})
    assert status == 200 and page["total"] == 5 and page["limit"] == 2
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:2]  # newest first
    _, rest = await api("GET", "/jobs", {"limit": 2, "offset": 4})
    assert [j["id"] for j in rest["jobs"]] == [ids[0]]
    _, team = await api("GET", "/jobs", {"label": "team=t0"})
    assert sorted(j["id"] for j in team["jobs"]) == sorted(ids[0::2])
    _, named = await api("GET", "/jobs", {"name": "job3"})
    assert [j["id"] for j in named["jobs"]] == [ids[3]]
    _, done = await api("GET", "/jobs", {"status": ["SUCCEEDED", "FAILED"]})
    assert done["total"] == 5 and all(j["kind"] == "job" for j in done["jobs"])
    _, none = await api("GET", "/jobs", {"status": "running"})
    assert none == {"jobs": [], "total": 0, "limit": 50, "offset": 0}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "bogus"}, "unknown status 'bogus'"),
        ({"limit": "0"}, "limit must be 1..500"),
        ({"limit": "ten"}, "limit must be a whole number"),
        ({"offset": "-1"}, "offset must be >= 0"),
        ({"label": "team"}, "must be KEY=VALUE"),
        ({"label": 'a"b=c'}, "label key 'a\"b' is not valid"),
        ({"kind": "robots"}, "kind must be one of job, any"),
    ],
)
async def test_bad_list_queries_are_400_with_the_reason(api, params, message):
    status, error = await api("GET", "/jobs", params)
    assert status == 400 and error["code"] == "invalid"
    assert message in error["message"]


async def test_job_detail_has_events_and_the_magic_that_reproduces_it(api, client, make_spec):
    job = run(
        client,
        make_spec,
        "print('hello')\n",
        name="hello",
        labels={"team": "cv"},
        env={"LR": "0.1"},
    )
    await wait_done(client, job.id)
    status, detail = await api("GET", f"/jobs/{job.id}")
    assert status == 200 and detail["status"] == "SUCCEEDED"
    assert [e["reason"] for e in detail["events"]][:1] == ["Queued"]
    assert detail["events"][-1]["reason"] == "Succeeded"
    assert detail["magic"] == (
        "%%cloudml_train --name hello --env LR=0.1 --label team=cv\nprint('hello')\n"
    )


@pytest.mark.parametrize("job_id", ["nope-123456", "..%2F..%2Fetc%2Fpasswd", "UPPER", "a%00b"])
async def test_unknown_or_forged_ids_are_404(api, job_id):
    for path in [
        f"/jobs/{job_id}",
        f"/jobs/{job_id}/logs",
        f"/jobs/{job_id}/metrics",
        f"/studies/{job_id}",
    ]:
        status, error = await api("GET", path, check=False)
        assert status == 404, path
        assert error["code"] == "not_found"


async def test_cancel_then_delete(api, client, make_spec):
    job = run(client, make_spec, "import time\ntime.sleep(60)\n")
    await asyncio.to_thread(
        lambda: client.wait(job.id, timeout=0)  # returns at once
    )
    status, error = await api("DELETE", f"/jobs/{job.id}")
    assert status == 409 and error["code"] == "conflict"
    status, cancelled = await api("POST", f"/jobs/{job.id}/cancel")
    assert status == 200 and cancelled["status"] == "CANCELLED"
    status, _ = await api("DELETE", f"/jobs/{job.id}", check=False)
    assert status == 204
    status, _ = await api("GET", f"/jobs/{job.id}")
    assert status == 404


async def test_logs_snapshot_with_tail_and_replica(api, client, make_spec):
    job = run(client, make_spec, "for i in range(5):\n    print('line', i)\n")
    await wait_done(client, job.id)
    status, logs = await api("GET", f"/jobs/{job.id}/logs", {"tail": 2})
    assert status == 200
    assert [(line["replica"], line["text"]) for line in logs["lines"]] == [
        ("worker-0", "line 3"),
        ("worker-0", "line 4"),
    ]
    _, other = await api("GET", f"/jobs/{job.id}/logs", {"replica": "worker-7"})
    assert other["lines"] == []


async def stream(jp_fetch, job_id, **params):
    """The NDJSON objects of a log stream, each with the time it arrived."""
    chunks: list[tuple[float, bytes]] = []
    await jp_fetch(
        "cloudml",
        "api",
        "jobs",
        job_id,
        "logs",
        "stream",
        params=params,
        streaming_callback=lambda data: chunks.append((time.time(), data)),
        request_timeout=120,
    )
    buffer, objects = b"", []
    for arrived, data in chunks:
        buffer += data
        *complete, buffer = buffer.split(b"\n")
        objects += [(arrived, json.loads(line)) for line in complete if line]
    assert buffer == b""
    return objects


async def test_log_stream_batches_lines_live_and_ends_with_the_status(jp_fetch, client, make_spec):
    code = """
import time
for i in range(20):
    print('tick', i, flush=True)
    time.sleep(0.05)
"""
    job = run(client, make_spec, code)
    objects = await stream(jp_fetch, job.id, interval="0.1", tail="0")
    lines = [line["text"] for _, o in objects for line in o["lines"]]
    assert lines == [f"tick {i}" for i in range(20)]
    assert objects[-1][1] == {"lines": [], "end": True, "status": "SUCCEEDED"}
    batches = [o for _, o in objects if o["lines"]]
    assert 1 < len(batches) < 20  # live, and batched
    # Lines arrive while the job runs, not all at its end.
    first_line_at = next(t for t, o in objects if o["lines"])
    assert first_line_at < objects[-1][0] - 0.3


async def test_log_stream_of_a_finished_job_sends_the_tail_and_closes(jp_fetch, client, make_spec):
    job = run(client, make_spec, "for i in range(50):\n    print(i)\n")
    await wait_done(client, job.id)
    objects = [o for _, o in await stream(jp_fetch, job.id, tail="3")]
    assert [line["text"] for o in objects for line in o["lines"]] == ["47", "48", "49"]
    assert objects[-1]["end"] is True and objects[-1]["status"] == "SUCCEEDED"


def log_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name == "cloudml-logs")


async def test_closed_log_streams_leave_no_thread_behind(jp_fetch, client, make_spec):
    job = run(client, make_spec, "import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    before = log_threads()
    for _ in range(20):  # readers that go away while the job stays quiet
        with pytest.raises(HTTPClientError) as closed:
            await jp_fetch(
                "cloudml", "api", "jobs", job.id, "logs", "stream",
                streaming_callback=lambda data: None,
                request_timeout=0.3,
            )  # fmt: skip
        assert closed.value.code == 599  # the client timed out and hung up
    deadline = time.monotonic() + 5
    while log_threads() > before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert log_threads() == before
    client.cancel(job.id)


async def test_metrics_are_incremental(api, client, make_spec):
    code = (
        "import jupyter_cloudml\n"
        "for step in range(3):\n    jupyter_cloudml.report(step=step, loss=1.0 / (step + 1))\n"
    )
    job = run(client, make_spec, code)
    await wait_done(client, job.id)
    status, first = await api("GET", f"/jobs/{job.id}/metrics")
    assert status == 200
    assert [s["value"] for s in first["scalars"]["loss"]] == pytest.approx([1.0, 0.5, 1 / 3])
    _, again = await api("GET", f"/jobs/{job.id}/metrics", {"cursor": first["cursor"]})
    assert again["scalars"] == {}
    for cursor in ("garbage", '{"events": 5}', '{"hypertune": 3}', '{"hypertune": {"a": "x"}}'):
        status, error = await api("GET", f"/jobs/{job.id}/metrics", {"cursor": cursor})
        assert status == 400 and "cursor" in error["message"], cursor


async def test_a_deeply_nested_body_is_400(jp_fetch):
    body = '{"instances": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = await jp_fetch(
        "cloudml", "api", "deployments", "iris", "predict",
        method="POST", body=body, raise_error=False,
    )  # fmt: skip
    assert response.code == 400
    assert json.loads(response.body)["message"] == "the request body is nested too deeply"


@pytest.mark.slow
async def test_studies_list_detail_cancel_and_delete(api, client, make_spec):
    code = """
import jupyter_cloudml
p = jupyter_cloudml.params(x=0.0)
jupyter_cloudml.report(step=0, score=-p['x'] ** 2)
"""
    tuning = TuningSpec(
        params=(ParamSpec("x", ParamType.DOUBLE, -1.0, 1.0),),
        metric="score",
        max_trials=2,
        parallel_trials=2,
    )
    study = client.submit_study(make_spec(code, name="study"), tuning)
    await asyncio.to_thread(client.wait, study.id, 120, 0.1)
    status, page = await api("GET", "/studies")
    assert status == 200 and page["total"] == 1
    assert page["studies"][0]["id"] == study.id
    _, detail = await api("GET", f"/studies/{study.id}")
    assert detail["status"] == "SUCCEEDED" and len(detail["trials"]) == 2
    assert detail["magic"] == (
        "%%cloudml_train --name study --param 'x=uniform(-1,1)' --metric score --trials 2 "
        f"--parallel 2\n{code}"
    )
    assert detail["best_trial"]["value"] == max(t["value"] for t in detail["trials"])
    _, trials = await api("GET", "/jobs", {"study": study.id})
    assert sorted(j["id"] for j in trials["jobs"]) == sorted(t["job_id"] for t in detail["trials"])
    assert all(j["kind"] == "trial" and j["study"] == study.id for j in trials["jobs"])
    _, standalone = await api("GET", "/jobs", {"kind": "job"})
    assert standalone["total"] == 0  # neither the driver nor its trials
    status, _ = await api("POST", f"/studies/{study.id}/cancel")
    assert status == 200
    status, _ = await api("DELETE", f"/studies/{study.id}", check=False)
    assert status == 204
    _, everything = await api("GET", "/jobs")
    assert everything["total"] == 0


@pytest.mark.slow
async def test_deployments_list_and_detail(api, isolated_home, serving_python, tmp_path):
    import joblib
    from sklearn.linear_model import LinearRegression

    from jupyter_cloudml.backends.local import LocalBackend
    from jupyter_cloudml.models import DeploySpec

    joblib.dump(LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0]), tmp_path / "m.joblib")
    client = Client(backend=LocalBackend(home=str(isolated_home), serving_python=serving_python))
    status, empty = await api("GET", "/deployments")
    assert status == 200 and empty == {"deployments": []}
    await asyncio.to_thread(client.deploy, DeploySpec("lin", str(tmp_path / "m.joblib"), "sklearn"))
    try:
        status, listed = await api("GET", "/deployments")
        (one,) = listed["deployments"]
        assert one["name"] == "lin" and one["status"] == "READY"
        assert one["replicas"] == {"ready": 1, "total": 1}
        status, detail = await api("GET", "/deployments/lin")
        assert detail["versions"][0]["traffic"] == 100
        assert (await api("GET", "/deployments/nope"))[0] == 404
        status, answer = await api("POST", "/deployments/lin/predict", {}, {"instances": [[2.0]]})
        assert status == 200 and answer["predictions"] == pytest.approx([4.0])
        status, error = await api("POST", "/deployments/lin/predict", {}, {"instances": [[1, 2]]})
        assert status == 400 and error["code"] == "invalid"
        status, error = await api("POST", "/deployments/lin/predict", {}, {"rows": []})
        assert status == 400 and "instances" in error["message"]
    finally:
        await asyncio.to_thread(client.undeploy, "lin")


@pytest.mark.slow
async def test_deploy_split_roll_back_scale_and_undeploy(
    api, isolated_home, serving_python, tmp_path, monkeypatch
):
    monkeypatch.setenv("CLOUDML_SERVING_PYTHON", serving_python)  # the server's backend deploys
    import joblib
    from sklearn.linear_model import LinearRegression

    joblib.dump(LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0]), tmp_path / "m.joblib")
    model = str(tmp_path / "m.joblib")
    client = Client(backend=LocalBackend(home=str(isolated_home), serving_python=serving_python))
    first = {"name": "lin", "model": model, "framework": "sklearn"}
    try:
        status, made = await api("POST", "/deployments", body=first)
        assert status == 201 and made["status"] == "READY" and made["replicas"]["ready"] == 1
        status, second = await api("POST", "/deployments", body={**first, "version": "v2"})
        assert [(v["version"], v["traffic"]) for v in second["versions"]] == [
            ("v1", 0),
            ("v2", 100),
        ]
        status, split = await api(
            "PUT", "/deployments/lin/traffic", body={"traffic": {"v1": 10, "v2": 90}}
        )
        assert status == 200 and [v["traffic"] for v in split["versions"]] == [10, 90]
        status, back = await api("POST", "/deployments/lin/rollback")
        assert status == 200 and [v["traffic"] for v in back["versions"]] == [100, 0]
        status, scaled = await api(
            "POST", "/deployments/lin/scale", body={"version": "v1", "replicas": 2}
        )
        assert status == 200 and scaled["versions"][0]["ready"] == 2
        assert client.get_deployment("lin").versions[0].ready == 2
        status, error = await api("DELETE", "/deployments/lin", {"version": "v1"})
        assert status == 409 and "100%" in error["message"]
        status, _ = await api("DELETE", "/deployments/lin", {"version": "v2"}, check=False)
        assert status == 204
        assert [v.version for v in client.get_deployment("lin").versions] == ["v1"]
        status, _ = await api("DELETE", "/deployments/lin", check=False)
        assert status == 204 and client.deployments() == []
    finally:
        for deployment in client.deployments():
            client.undeploy(deployment.name)


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("POST", "/deployments", {"name": "lin", "model": "m"}, "give framework"),
        (
            "POST",
            "/deployments",
            {"name": "lin", "model": "m", "framework": "keras"},
            "unknown framework 'keras'",
        ),
        (
            "POST",
            "/deployments",
            {"name": "lin", "model": "m", "framework": "sklearn", "gpu": 1},
            "unknown field(s) gpu",
        ),
        (
            "POST",
            "/deployments",
            {"name": "lin", "model": "m", "framework": "sklearn", "replicas": "2"},
            "replicas must be a whole number",
        ),
        (
            "POST",
            "/deployments",
            {"name": "Bad_Name", "model": "m", "framework": "sklearn"},
            "deployment name",
        ),
        ("PUT", "/deployments/lin/traffic", {"traffic": {"v1": "all"}}, "whole percents"),
        ("PUT", "/deployments/lin/traffic", {"traffic": {"v1": 60, "v2": 30}}, "add up to 100"),
        ("POST", "/deployments/lin/scale", {"version": "v1"}, "replicas as a whole number"),
        (
            "POST",
            "/deployments/lin/scale",
            {"version": "v1", "replicas": 2, "cpu": 1},
            "unknown field(s) cpu",
        ),
        ("POST", "/deployments/lin/scale", {"replicas": 2}, "give the version"),
        ("PUT", "/deployments/lin/traffic", {"traffic": {"v1": 100}, "v": 1}, "unknown field(s) v"),
    ],
)
async def test_bad_deployment_requests_are_400_with_the_reason(api, method, path, body, message):
    status, error = await api(method, path, body=body, check=False)
    assert status == 400 and error["code"] == "invalid" and message in error["message"]


async def test_changing_an_unknown_deployment_is_404(api):
    for method, path, body in [
        ("POST", "/deployments/nope/rollback", None),
        ("POST", "/deployments/nope/scale", {"version": "v1", "replicas": 2}),
        ("PUT", "/deployments/nope/traffic", {"traffic": {"v1": 100}}),
        ("DELETE", "/deployments/nope", None),
    ]:
        status, error = await api(method, path, body=body)
        assert status == 404 and "no deployment 'nope'" in error["message"], (method, path)


async def test_tensorboard_launch_reuse_proxy_and_stop(api, jp_fetch, client, make_spec):
    code = "import jupyter_cloudml\njupyter_cloudml.report(step=0, acc=0.5)\n"
    job = run(client, make_spec, code)
    await wait_done(client, job.id)
    status, board = await api("POST", "/tensorboards", {}, {"jobs": [job.id]})
    assert status == 201 and board["status"] == "launched" and board["jobs"] == [job.id]
    assert board["url"].startswith("proxy/") and "localhost" not in board["url"]
    try:
        status, again = await api("POST", "/tensorboards", {}, {"jobs": [job.id, job.id]})
        assert status == 200 and again["id"] == board["id"] and again["status"] == "reused"
        _, listed = await api("GET", "/tensorboards")
        assert [b["id"] for b in listed["tensorboards"]] == [board["id"]]
        # Through the Jupyter server's proxy, under its base URL.
        runs = await jp_fetch(*board["url"].rstrip("/").split("/"), "data", "runs")
        assert json.loads(runs.body) == [f"{job.id}/metrics/worker-0"]
    finally:
        status, _ = await api("DELETE", f"/tensorboards/{board['id']}", check=False)
    assert status == 204
    status, error = await api("DELETE", f"/tensorboards/{board['id']}")
    assert status == 404 and error["code"] == "not_found"
    forged = "tb-..%2F..%2F" + board["id"]
    status, _ = await api("DELETE", f"/tensorboards/{forged}", check=False)
    assert status == 404


@pytest.mark.parametrize("body", [{}, {"jobs": []}, {"jobs": "x"}, {"jobs": [1]}])
async def test_tensorboard_needs_a_list_of_jobs(api, body):
    status, error = await api("POST", "/tensorboards", {}, body)
    assert status == 400 and "jobs" in error["message"]


async def test_tensorboard_of_an_unknown_job_is_404(api):
    status, _ = await api("POST", "/tensorboards", {}, {"jobs": ["ghost-000000"]})
    assert status == 404


async def test_an_unusable_backend_is_503_with_the_reason(api, isolated_home, monkeypatch):
    isolated_home.parent.mkdir(parents=True, exist_ok=True)
    blocker = isolated_home.parent / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CLOUDML_HOME", str(blocker / "home"))
    status, error = await api("GET", "/jobs")
    assert status == 503 and error["code"] == "unavailable"
    assert "not-a-folder" in error["message"]
