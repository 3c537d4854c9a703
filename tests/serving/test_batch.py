"""The batch predictor program and its output layout, run in this process on real files with a
real scikit-learn model: shards, bad rows isolated, resume, a model that does not load."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pytest

from jupyter_cloudml.exceptions import Conflict, InvalidSpec
from jupyter_cloudml.metrics import read_scalars
from jupyter_cloudml.serving.batch import run_shard
from jupyter_cloudml.serving.batch_outputs import (
    ShardWriter,
    existing_results,
    prepare_output,
    read_results,
    shard_name,
)


@pytest.fixture
def model(tmp_path: Path) -> str:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    path = tmp_path / "model.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), path)
    return str(path)


def _config(model: str, out: Path, **extra) -> dict:
    return {
        "model": model,
        "framework": "sklearn",
        "output_path": str(out),
        "data_format": "json",
        "batch_size": 4,
        "workers": 2,
        **extra,
    }


def _write(path: Path, rows: list) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_names_are_googles():
    assert shard_name("prediction.results", 1, 2) == "prediction.results-00001-of-00002"
    assert shard_name("prediction.errors_stats", 0, 12) == "prediction.errors_stats-00000-of-00012"


def test_shards_write_results_and_isolate_bad_rows(tmp_path: Path, model: str, monkeypatch):
    monkeypatch.setenv("CLOUDML_LOG_DIR", str(tmp_path / "metrics"))
    good = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
    a = _write(tmp_path / "a.json", [good[0], [1.0, 2.0], good[1], "text", good[2]])
    b = _write(tmp_path / "b.json", good)
    out = tmp_path / "out"
    for shard in (0, 1):
        assert run_shard(_config(model, out), [a, b], shard, "0") == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "prediction.errors_stats-00000-of-00002",
        "prediction.errors_stats-00001-of-00002",
        "prediction.results-00000-of-00002",
        "prediction.results-00001-of-00002",
    ]
    results = read_results(str(out))
    assert list(results.columns) == ["instance", "prediction", "input_file", "line"]
    assert results["instance"].tolist() == [good[0], good[1], good[2], *good]
    assert results["prediction"].tolist() == [0, 2, 1, 0, 2, 1]
    assert results["line"].tolist() == [1, 3, 5, 1, 2, 3]
    errors = read_results(str(out), errors=True)
    assert errors[["input_file", "line"]].values.tolist() == [[a, 2], [a, 4]]
    assert "expecting 4 features" in errors["error"][0]
    assert errors["instance"][0] == [1.0, 2.0]
    scalars = read_scalars(str(tmp_path / "metrics"))
    assert scalars["rows_done/shard-0"][-1].value == 5
    assert scalars["rows_total/shard-0"][-1].value == 5
    assert scalars["errors/shard-0"][-1].value == 2


def test_a_finished_shard_is_skipped(tmp_path: Path, model: str, capsys):
    a = _write(tmp_path / "a.json", [[5.1, 3.5, 1.4, 0.2]])
    out = tmp_path / "out"
    config = _config(model, out, workers=1)
    assert run_shard(config, [a], 0, "0") == 0
    first = (out / "prediction.results-00000-of-00001").read_text()
    Path(a).write_text("")  # were it predicted again, its results would change
    assert run_shard(config, [a], 0, "1") == 0
    assert "shard 0 of 1 was finished by an earlier attempt: skipped" in capsys.readouterr().out
    assert (out / "prediction.results-00000-of-00001").read_text() == first


def test_an_unfinished_shard_leaves_no_results(tmp_path: Path):
    out = tmp_path / "out"
    writer = ShardWriter(str(out), 0, 1, "0")
    writer.result("a.json", 1, [1], 0)
    assert existing_results(str(out)) == []  # only the temporary files exist so far
    writer.discard()
    assert list(out.iterdir()) == []


def test_a_model_that_does_not_load_fails_the_shard_with_the_reason(tmp_path: Path, capsys):
    a = _write(tmp_path / "a.json", [[1.0]])
    bad = tmp_path / "model.joblib"
    bad.write_bytes(b"not a pickle")
    assert run_shard(_config(str(bad), tmp_path / "out", workers=1), [a], 0, "0") == 2
    assert "cloudml: the model does not load: cannot unpickle model.joblib" in (
        capsys.readouterr().err
    )
    assert existing_results(str(tmp_path / "out")) == []


def test_an_unreadable_input_file_is_an_error_row(tmp_path: Path, model: str):
    a = tmp_path / "a.csv"
    a.write_bytes(b"\xff\xfe\n1,2\n")
    out = tmp_path / "out"
    assert run_shard(_config(model, out, workers=1, data_format="csv"), [str(a)], 0, "0") == 0
    errors = read_results(str(out), errors=True)
    assert errors[["line", "error"]].values.tolist() == [
        [0, "the CSV header (line 1) is not UTF-8"]
    ]


def test_results_are_refused_unless_overwrite(tmp_path: Path):
    out = tmp_path / "out"
    writer = ShardWriter(str(out), 0, 1, "0")
    writer.commit()
    with pytest.raises(Conflict, match=r"already holds results .* --overwrite to replace them"):
        prepare_output(str(out), overwrite=False)
    (out / "notes.txt").write_text("kept")
    prepare_output(str(out), overwrite=True)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_reading_a_folder_without_results_says_so(tmp_path: Path):
    with pytest.raises(InvalidSpec, match="the folder does not exist"):
        read_results(str(tmp_path / "none"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidSpec, match=r"no prediction results in .*prediction.results-\*"):
        read_results(str(tmp_path / "empty"))


def test_parquet_and_tfrecord_shards(tmp_path: Path, model: str):
    import pyarrow
    import pyarrow.parquet as pq

    from jupyter_cloudml.metrics.records import frame
    from jupyter_cloudml.serving.tf_example import example_bytes

    table = pyarrow.table({"a": [5.1, 6.7], "b": [3.5, 3.0], "c": [1.4, 5.2], "d": [0.2, 2.3]})
    pq.write_table(table, tmp_path / "in.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    files = [str(tmp_path / "bad.parquet"), str(tmp_path / "in.parquet")]
    out = tmp_path / "out"
    assert run_shard(_config(model, out, workers=1, data_format="parquet"), files, 0, "0") == 0
    assert read_results(str(out))["prediction"].tolist() == [0, 2]
    errors = read_results(str(out), errors=True)
    assert errors["line"].tolist() == [0]
    assert errors["error"][0].startswith(f"{tmp_path / 'bad.parquet'} is not a Parquet file")

    records = [example_bytes({"a": [5.1], "b": [3.5], "c": [1.4], "d": [0.2]}), b"\x08"]
    (tmp_path / "in.tfrecord").write_bytes(b"".join(frame(r) for r in records))
    out = tmp_path / "out-tf"
    config = _config(model, out, workers=1, data_format="tf-record")
    assert run_shard(config, [str(tmp_path / "in.tfrecord")], 0, "0") == 0
    assert read_results(str(out))["prediction"].tolist() == [0]
    assert read_results(str(out), errors=True)["line"].tolist() == [2]


def test_a_model_at_a_uri_is_copied_before_loading(tmp_path: Path, model: str):
    from jupyter_cloudml.serving.batch import local_model

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    copied = local_model(f"file://{model}", str(scratch))
    assert copied == str(scratch / "model.joblib")
    assert Path(copied).read_bytes() == Path(model).read_bytes()
    assert local_model(model, str(scratch)) == model  # a path is read where it is
    a = _write(tmp_path / "a.json", [[5.1, 3.5, 1.4, 0.2]])
    out = tmp_path / "out"
    assert run_shard(_config(f"file://{tmp_path}", out, workers=1), [a], 0, "0") == 0
    assert read_results(str(out))["prediction"].tolist() == [0]
