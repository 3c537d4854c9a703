"""`%cloudml_predict` in a real IPython shell: a batch prediction job waited for, its summary,
its results loaded, and mistakes as one-line usage errors."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import jupyter_cloudml
from jupyter_cloudml.exceptions import Conflict

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def _model(tmp_path: Path) -> str:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    path = tmp_path / "model.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), path)
    return str(path)


def test_predict_waits_and_summarises(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for i in range(2):
        rows = ROWS + ([[1.0]] if i else [])
        (tmp_path / f"in-{i}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = _model(tmp_path)
    line = (
        f"--model {model} --framework sklearn --input-paths 'in-*.json' --output-path out "
        "--workers 2 --wait"
    )
    shell.run_line_magic("cloudml_predict", line)
    out = capsys.readouterr().out
    assert "submitted batch prediction batch-predict-" in out
    assert "status:    SUCCEEDED" in out
    assert "progress:  5 / 5 rows" in out
    assert "predicted: 4 row(s)" in out
    assert "errors:    1 row(s)" in out
    assert f"output:    {tmp_path / 'out'}" in out
    job_id = out.split("submitted batch prediction ")[1].split(":")[0]
    results = jupyter_cloudml.prediction_results(job_id)
    assert results["prediction"].tolist() == [0, 2, 0, 2]
    # the same through %cloudml predict batch: the output folder now holds results
    with pytest.raises(Conflict, match="already holds results"):  # one line in a cell
        shell.run_line_magic("cloudml", f"predict batch {line}")


def test_mistakes_are_usage_errors(shell: InteractiveShell, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^missing --input-paths \(usage: %cloudml_predict"):
        shell.run_line_magic("cloudml_predict", "--model m.joblib --output-path out")
    with pytest.raises(UsageError, match=r"--batch-size must be 1\.\.100000, got 0"):
        shell.run_line_magic(
            "cloudml_predict", "--model m --input-paths a --output-path o --batch-size 0"
        )
    with pytest.raises(UsageError, match="--backend in a notebook only goes with --dry-run"):
        shell.run_line_magic(
            "cloudml_predict", "--model m --input-paths a --output-path o --backend kubernetes"
        )


def test_json_output_is_the_summary_as_json(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "in.json").write_text(json.dumps(ROWS[0]) + "\n")
    line = (
        f"--model {_model(tmp_path)} --framework sklearn --input-paths in.json "
        "--output-path out --wait --output json"
    )
    shell.run_line_magic("cloudml_predict", line)
    out = capsys.readouterr().out
    # the summary, whatever a live view of an earlier test may still have printed around it
    summary, _ = json.JSONDecoder().raw_decode(out[out.index('{\n  "job"') :])
    assert summary["job"]["status"] == "SUCCEEDED"
    assert (summary["results"], summary["errors"], summary["rows_total"]) == (1, 0, 1)
    assert summary["output_path"] == str(tmp_path / "out")
