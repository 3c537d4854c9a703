"""Batch prediction jobs end to end on the local backend: real supervisors and replicas, a
model trained by a job, sharded JSON and CSV input, cancel, a crashed shard resumed, the
refusals checked before submitting, and the `cloudml` console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import pytest

from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import Conflict, InvalidSpec, NotFound
from jupyter_cloudml.models import (
    BATCH_LABEL,
    BatchPredictionSpec,
    DataFormat,
    JobQuery,
    JobStatus,
    ModelFramework,
)

TRAIN = """
import os, joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=500).fit(X, y)
joblib.dump(model, os.path.join(os.environ["CLOUDML_JOB_DIR"], "model.joblib"))
"""
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5], [4.9, 3.0, 1.4, 0.2]]
CLASSES = [0, 2, 1, 0]


@pytest.fixture
def client(backend) -> Client:
    return Client(backend=backend)


@pytest.fixture
def model_file(tmp_path: Path) -> str:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    path = tmp_path / "model.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), path)
    return str(path)


def _json_inputs(folder: Path, files: int, bad: bool = True) -> str:
    folder.mkdir(exist_ok=True)
    for i in range(files):
        lines = [json.dumps(r) for r in ROWS]
        if bad and i == 0:
            lines[1:1] = ["[1.0, 2.0]", "{not json"]
        (folder / f"in-{i}.json").write_text("\n".join(lines) + "\n")
    return str(folder / "in-*.json")


def _spec(model: str, inputs: str, out: Path, **fields) -> BatchPredictionSpec:
    fields.setdefault("framework", ModelFramework.SKLEARN)
    return BatchPredictionSpec(
        name="score", model=model, input_paths=(inputs,), output_path=str(out), **fields
    )


def test_a_model_trained_by_a_job_scores_sharded_json_and_csv(client, make_spec, tmp_path):
    trained = client.wait(client.submit(make_spec(TRAIN, name="iris")).id, timeout=120)
    assert trained.status is JobStatus.SUCCEEDED, trained.reason
    inputs = _json_inputs(tmp_path / "json", files=2)
    spec = _spec("job:iris/model.joblib", inputs, tmp_path / "out", workers=2, batch_size=2)
    job = client.submit_batch_prediction(spec)
    done = client.wait(job.id, timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    assert done.spec is not None and done.spec.labels[BATCH_LABEL] == "true"
    assert sorted(r.name for r in done.replicas) == ["worker-0", "worker-1"]
    listed = client.list(JobQuery(labels={BATCH_LABEL: "true"})).jobs
    assert [j.id for j in listed] == [job.id]

    results = client.prediction_results(job.id)
    assert results["prediction"].tolist() == CLASSES * 2
    assert results["instance"].tolist() == ROWS * 2
    assert set(results["input_file"]) == {str(tmp_path / "json" / f"in-{i}.json") for i in (0, 1)}
    errors = client.prediction_results(str(tmp_path / "out"), errors=True)
    assert errors["line"].tolist() == [2, 3]
    assert "expecting 4 features" in errors["error"][0]
    assert errors["error"][1].startswith("not JSON")

    info = client.batch_prediction(job.id)
    assert (info.results, info.errors, info.shards_done, info.workers) == (8, 2, 2, 2)
    assert (info.rows_done, info.rows_total) == (10, 10)
    logs = "\n".join(f"[{line.replica}] {line.text}" for line in client.logs(job.id))
    assert "[worker-0] shard 0 of 2 done: 4 predicted, 2 error(s)" in logs
    assert "[worker-1] shard 1 of 2 done: 4 predicted, 0 error(s)" in logs

    csv = tmp_path / "csv"
    csv.mkdir()
    for i in range(2):
        body = "a,b,c,d\n" + "".join(",".join(map(str, r)) + "\n" for r in ROWS)
        (csv / f"part-{i}.csv").write_text(body + ("1,2,3\n" if i else ""))
    spec = _spec(
        f"job:{trained.id}", str(csv / "*.csv"), tmp_path / "out-csv",
        data_format=DataFormat.CSV, workers=2,
    )  # fmt: skip
    job = client.submit_batch_prediction(spec)
    assert client.wait(job.id, timeout=120).status is JobStatus.SUCCEEDED
    assert client.prediction_results(job.id)["prediction"].tolist() == CLASSES * 2
    errors = client.prediction_results(job.id, errors=True)
    assert errors[["line", "error"]].values.tolist() == [[6, "3 fields where the header names 4"]]


SLOW_PREDICTOR = """
import os, time
from pathlib import Path

class Model:
    def load(self):
        pass

    def predict(self, instances):
        if os.environ.get("CRASH_SHARD") == os.environ["CLOUDML_REPLICA_INDEX"]:
            marker = Path(os.environ["CRASH_MARKER"])
            if not marker.exists():  # the first attempt: wait for the other shard, then die
                done = Path(os.environ["OUTPUT"]) / "prediction.results-00000-of-00002"
                while not done.exists():
                    time.sleep(0.05)
                marker.write_text("crashed")
                os.kill(os.getpid(), 9)
        time.sleep(float(os.environ.get("PAUSE", "0")))
        return [sum(row) for row in instances]
"""


def _custom_model(folder: Path) -> str:
    folder.mkdir()
    (folder / "predictor.py").write_text(textwrap.dedent(SLOW_PREDICTOR))
    return str(folder)


def test_a_crashed_shard_is_retried_and_finished_shards_are_not_predicted_again(
    client, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    monkeypatch.setenv("CRASH_SHARD", "1")
    monkeypatch.setenv("CRASH_MARKER", str(tmp_path / "crashed"))
    monkeypatch.setenv("OUTPUT", str(out))
    spec = _spec(
        _custom_model(tmp_path / "model"), _json_inputs(tmp_path / "in", 2, bad=False), out,
        framework=ModelFramework.CUSTOM, predictor="predictor:Model", workers=2, retries=1,
    )  # fmt: skip
    job = client.submit_batch_prediction(spec)
    done = client.wait(job.id, timeout=120)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    assert (tmp_path / "crashed").read_text() == "crashed"
    logs = [line.text for line in client.logs(job.id, replica="worker-0")]
    assert logs.count("shard 0 of 2 done: 4 predicted, 0 error(s)") == 1
    assert "shard 0 of 2 was finished by an earlier attempt: skipped" in logs
    results = client.prediction_results(job.id)
    assert results["prediction"].tolist() == pytest.approx([sum(r) for r in ROWS] * 2)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_cancel_stops_the_shards_and_leaves_no_results(client, tmp_path, monkeypatch):
    from cloudml_testkit import wait_for

    monkeypatch.setenv("PAUSE", "0.2")
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "big.json").write_text("".join(json.dumps(ROWS[0]) + "\n" for _ in range(500)))
    spec = _spec(
        _custom_model(tmp_path / "model"), str(inputs / "big.json"), tmp_path / "out",
        framework=ModelFramework.CUSTOM, predictor="predictor:Model", batch_size=1,
    )  # fmt: skip
    job = client.submit_batch_prediction(spec)

    def started() -> bool:
        done, total = client.batch_prediction(job.id).rows_done, 500
        return 0 < done < total

    wait_for(started, timeout=60)
    assert client.cancel(job.id).status in (JobStatus.CANCELLED, JobStatus.RUNNING)
    assert client.wait(job.id, timeout=60).status is JobStatus.CANCELLED
    assert client.batch_prediction(job.id).shards_done == 0
    with pytest.raises(InvalidSpec, match="no prediction results"):
        client.prediction_results(job.id)


def test_what_is_checked_before_submitting(client, model_file, tmp_path):
    inputs = _json_inputs(tmp_path / "in", 1)
    with pytest.raises(InvalidSpec, match=r"--input-paths '.*nope\*' matches no file"):
        client.submit_batch_prediction(_spec(model_file, str(tmp_path / "nope*"), tmp_path / "o"))
    with pytest.raises(InvalidSpec, match="--workers 2 needs at least 2 input files, got 1"):
        client.submit_batch_prediction(_spec(model_file, inputs, tmp_path / "o", workers=2))
    with pytest.raises(InvalidSpec, match="give the model's --framework"):
        client.submit_batch_prediction(_spec(model_file, inputs, tmp_path / "o", framework=None))
    with pytest.raises(InvalidSpec, match=r"--model: no model file \(\*\.joblib"):
        client.submit_batch_prediction(_spec(str(tmp_path / "in"), inputs, tmp_path / "o"))
    with pytest.raises(NotFound, match="is no file, folder, job:ID or deployment"):
        client.submit_batch_prediction(_spec("nothing-here", inputs, tmp_path / "o"))
    with pytest.raises(NotFound, match="no job or study with id or name 'ghost'"):
        client.submit_batch_prediction(_spec("job:ghost/model.joblib", inputs, tmp_path / "o"))
    unreadable = tmp_path / "in" / "in-9.json"
    unreadable.write_text("[1]\n")
    unreadable.chmod(0)
    if not os.access(unreadable, os.R_OK):  # root reads everything
        with pytest.raises(InvalidSpec, match=r"in-9\.json is not readable"):
            client.submit_batch_prediction(_spec(model_file, inputs, tmp_path / "o"))
    unreadable.unlink()
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "prediction.results-00000-of-00001").write_text("")
    with pytest.raises(Conflict, match="already holds results"):
        client.submit_batch_prediction(_spec(model_file, inputs, tmp_path / "o"))
    assert client.list().jobs == ()  # nothing was submitted
    job = client.submit_batch_prediction(_spec(model_file, inputs, tmp_path / "o", overwrite=True))
    assert client.wait(job.id, timeout=120).status is JobStatus.SUCCEEDED


def test_the_console_script(model_file, tmp_path):
    inputs = _json_inputs(tmp_path / "in", 2)
    out = tmp_path / "out"
    argv = [
        sys.executable, "-m", "jupyter_cloudml.cli", "predict", "batch", "--model", model_file,
        "--framework", "sklearn", "--input-paths", inputs, "--output-path", str(out),
        "--data-format", "json", "--batch-size", "64", "--workers", "2",
    ]  # fmt: skip
    run = subprocess.run([*argv, "--wait"], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("submitted batch prediction batch-predict-")
    assert lines[0].endswith(f"2 input file(s) in 2 shard(s) -> {out}")
    assert "predicted: 8 row(s)" in lines
    assert "errors:    2 row(s) (see prediction.errors_stats-*)" in lines
    assert lines[-1].startswith("load: jupyter_cloudml.prediction_results('batch-predict-")
    again = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1
    assert again.stderr.strip() == (
        f"cloudml: error: --output-path {out} already holds results "
        "(prediction.errors_stats-00000-of-00002, ...): give another folder, or --overwrite "
        "to replace them"
    )
    bad = subprocess.run(
        [*argv[:-2], "--workers", "0", "--data-format", "tf-record-gzip"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "tf-record-gzip is not read: decompress the files" in bad.stderr


def test_a_deployments_model_is_scored_by_name_and_version(
    isolated_home, serving_python, model_file, tmp_path
):
    from jupyter_cloudml.backends.local import LocalBackend
    from jupyter_cloudml.models import DeploySpec

    client = Client(backend=LocalBackend(home=str(isolated_home), serving_python=serving_python))
    client.deploy(DeploySpec("iris", model_file, ModelFramework.SKLEARN))
    inputs = _json_inputs(tmp_path / "in", 1, bad=False)
    job = client.submit_batch_prediction(_spec("iris", inputs, tmp_path / "a", framework=None))
    assert client.wait(job.id, timeout=120).status is JobStatus.SUCCEEDED
    assert client.prediction_results(job.id)["prediction"].tolist() == CLASSES
    assert client.batch_prediction(job.id).model == "iris"
    with pytest.raises(NotFound, match=r"deployment iris has no version 'v9' \(it has v1\)"):
        client.submit_batch_prediction(_spec("iris:v9", inputs, tmp_path / "b", framework=None))
    with pytest.raises(
        InvalidSpec, match="--framework xgboost: deployment iris v1 serves a sklearn"
    ):
        client.submit_batch_prediction(
            _spec("iris:v1", inputs, tmp_path / "b", framework=ModelFramework.XGBOOST)
        )
    job = client.submit_batch_prediction(_spec("iris:v1", inputs, tmp_path / "b", framework=None))
    assert client.wait(job.id, timeout=120).status is JobStatus.SUCCEEDED


def test_a_model_that_does_not_load_fails_the_job_saying_why(client, tmp_path):
    bad = tmp_path / "model.joblib"
    bad.write_bytes(b"not a pickle")
    job = client.submit_batch_prediction(
        _spec(str(bad), _json_inputs(tmp_path / "in", 1), tmp_path / "o")
    )
    done = client.wait(job.id, timeout=120)
    assert done.status is JobStatus.FAILED
    assert done.reason == "replica worker-0 exited with code 2"
    logs = [line.text for line in client.logs(job.id)]
    assert any(
        t.startswith("cloudml: the model does not load: cannot unpickle model.joblib") for t in logs
    )
