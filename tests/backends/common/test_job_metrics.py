"""A job's metrics through the backend, the CLI and the notebook: real jobs, real event files."""

from __future__ import annotations

import json

import pytest

from jupyter_cloudml.cli import main
from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import InvalidSpec
from jupyter_cloudml.models import JobStatus

pytestmark = pytest.mark.slow

REPORTING = """
import os, time
import hypertune
import jupyter_cloudml
from tensorboardX import SummaryWriter

for step in range(3):
    jupyter_cloudml.report(step=step, loss=1.0 / (step + 1))
writer = SummaryWriter(os.path.join(os.environ["CLOUDML_JOB_DIR"], "tb"))
writer.add_scalar("val/acc", 0.5, 7)
writer.close()
hypertune.HyperTune().report_hyperparameter_tuning_metric(
    hyperparameter_metric_tag="auc", metric_value=0.75, global_step=10)
"""


def run_job(backend, make_spec, code):
    job = backend.submit(make_spec(code))
    done = Client(backend=backend).wait(job.id, timeout=120, poll=0.05)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    return done


def test_metrics_gather_report_event_files_and_hypertune(backend, make_spec):
    job = run_job(backend, make_spec, REPORTING)
    update = backend.metrics(job.id)
    values = {tag: [(s.step, s.value) for s in series] for tag, series in update.scalars.items()}
    assert values["loss"] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert values["val/acc"] == [(7, 0.5)]
    assert values["auc"] == [(10, 0.75)]
    again = backend.metrics(job.id, update.cursor)
    assert all(not series for series in again.scalars.values())  # nothing new since the cursor
    with pytest.raises(InvalidSpec, match="malformed metrics cursor"):
        backend.metrics(job.id, "not a cursor")


def test_metrics_cursor_returns_only_what_came_after(backend, make_spec):
    code = """
import time, jupyter_cloudml
for step in range(6):
    jupyter_cloudml.report(step=step, loss=float(step))
    time.sleep(0.3)
"""
    job = backend.submit(make_spec(code))
    seen, cursor = [], None
    client = Client(backend=backend)
    while True:
        finished = client.get(job.id).status.terminal
        update = backend.metrics(job.id, cursor)
        cursor = update.cursor
        seen += [s.step for s in update.scalars.get("loss", ())]
        if finished:
            break
    assert seen == list(range(6))  # each step exactly once, in order


def test_cli_metrics_text_and_json(backend, make_spec, capsys):
    job = run_job(backend, make_spec, REPORTING)
    assert main(["jobs", "metrics", job.id]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == ["TAG", "POINTS", "LAST", "STEP", "LAST", "MIN", "MAX"]
    assert any(line.split()[:3] == ["loss", "3", "2"] for line in text.splitlines())
    assert main(["metrics", job.id, "--output", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["auc"] == [{"step": 10, "wall_time": data["auc"][0]["wall_time"], "value": 0.75}]


def test_magic_shows_a_plot_and_the_table(backend, make_spec, shell):
    from IPython.utils.capture import capture_output

    job = run_job(backend, make_spec, REPORTING)
    with capture_output() as captured:
        shell.run_line_magic("cloudml", f"metrics {job.id}")
    assert any("image/png" in output.data for output in captured.outputs)
    png = next(o.data["image/png"] for o in captured.outputs if "image/png" in o.data)
    assert png  # a real rendered figure
    assert "loss" in captured.stdout and "auc" in captured.stdout
