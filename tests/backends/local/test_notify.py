"""`--notify URL`: the final job or study POSTed as JSON to a real webhook server, the outcome in
the job's events, a webhook that is down named, never failing the job."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import InvalidSpec
from jupyter_cloudml.models import JobStatus, ParamSpec, ParamType, TuningSpec


class Hook:
    """A webhook on loopback that keeps what it is sent; `status` is what it answers."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 204
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                assert self.headers["Content-Type"] == "application/json"
                hook.received.append(json.loads(self.rfile.read(length)))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.server.shutdown()


def events(backend, job_id: str) -> dict[str, str]:
    return {e.reason: e.message for e in backend.events(job_id)}


def test_the_final_job_reaches_the_webhook_and_the_job_says_so(backend, make_spec, hook):
    job = backend.submit(make_spec("print('done')", name="hooked", notify=hook.url))
    Client(backend=backend).wait(job.id, timeout=60, poll=0.05)
    (sent,) = hook.received
    assert sent["kind"] == "job" and sent["job"]["id"] == job.id
    assert sent["job"]["status"] == "SUCCEEDED" and sent["job"]["spec"] is None
    assert "posted the final job to" in events(backend, job.id)["Notified"]


def test_a_webhook_that_refuses_is_named_and_the_job_still_succeeds(backend, make_spec, hook):
    hook.status = 403
    job = backend.submit(make_spec("print('done')", name="refused", notify=hook.url))
    final = Client(backend=backend).wait(job.id, timeout=60, poll=0.05)
    assert final.status is JobStatus.SUCCEEDED
    assert len(hook.received) == 1  # a 403 is not asked again
    assert events(backend, job.id)["NotifyFailed"] == "could not notify " + (
        f"127.0.0.1:{hook.server.server_port}: HTTP 403 Forbidden"
    )


def test_a_job_cancelled_while_queued_notifies_too(isolated_home, make_spec, hook):
    from jupyter_cloudml.backends.local import LocalBackend

    backend = LocalBackend(home=str(isolated_home), cpu_slots=1)
    blocker = backend.submit(make_spec("import time\ntime.sleep(60)", name="big"))
    queued = backend.submit(make_spec("print(1)", name="queued", notify=hook.url))
    try:
        assert backend.get(queued.id).status is JobStatus.QUEUED
        backend.cancel(queued.id)
    finally:
        backend.cancel(blocker.id)
    statuses = [sent["job"]["status"] for sent in hook.received]
    assert statuses == ["CANCELLED"], statuses


def test_a_study_notifies_once_with_its_best_trial(backend, make_spec, hook):
    code = (
        "import jupyter_cloudml\np = jupyter_cloudml.params(x=0.0)\n"
        "jupyter_cloudml.report(step=0, acc=p['x'])\n"
    )
    tuning = TuningSpec((ParamSpec("x", ParamType.DOUBLE, 0.0, 1.0),), "acc", max_trials=2)
    client = Client(backend=backend)
    study = client.submit_study(make_spec(code, name="hooked-study", notify=hook.url), tuning)
    client.wait(study.id, timeout=120, poll=0.1)
    final = client.get_study(study.id)
    assert final.status is JobStatus.SUCCEEDED
    (sent,) = hook.received  # the study's, none from its trials
    assert sent["kind"] == "study" and sent["study"]["id"] == study.id
    assert sent["study"]["status"] == "SUCCEEDED"
    assert sent["study"]["best_trial"]["number"] == final.best_trial.number


@pytest.mark.parametrize("url", ["ftp://example.com/x", "https:///nohost", "hooks.example.com"])
def test_a_webhook_that_is_not_a_url_is_refused(make_spec, url):
    with pytest.raises(InvalidSpec, match="--notify takes an http or https URL"):
        make_spec("print(1)", notify=url)
