"""The built-in trainers run as a job runs them (`python -m MODULE` in their package, a real
process): each model choice trains and reports, and the same --seed gives the same model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_cloudml.templates import get_template

pytestmark = pytest.mark.slow


def train(template: str, job_dir: Path, *flags: str) -> dict:
    t = get_template(template)
    env = {**os.environ, "CLOUDML_JOB_DIR": str(job_dir)}
    env["PYTHONPATH"] = os.pathsep.join([str(t.package_dir), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-m", t.module, *t.args, *flags],
        cwd=t.package_dir, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads((job_dir / "evaluation.json").read_text())


@pytest.fixture(scope="module")
def wine_csv(tmp_path_factory) -> Path:
    from sklearn.datasets import load_wine

    path = tmp_path_factory.mktemp("data") / "wine.csv"
    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("model", ["hgb", "linear", "mlp"])
def test_each_model_choice_trains_and_reports(tmp_path, wine_csv, model):
    report = train(
        "tabular-classification", tmp_path, "--data", str(wine_csv), "--target", "target",
        f"--model={model}", "--seed", "0",
    )  # fmt: skip
    assert report["model"] == model and report["n_test"] == 36 and report["n_train"] == 142
    assert report["metric"] == "accuracy" and report["value"] >= 0.85
    assert sorted(report["confusion_matrix"]["labels"]) == ["barbera", "barolo", "grignolino"]
    assert (tmp_path / "model.joblib").is_file() and (tmp_path / "evaluation.png").is_file()


def test_the_same_seed_gives_the_same_model_and_another_seed_another_split(tmp_path, wine_csv):
    flags = ["--data", str(wine_csv), "--target", "alcohol", "--model=mlp"]
    first = train("tabular-regression", tmp_path / "a", *flags, "--seed", "5")
    again = train("tabular-regression", tmp_path / "b", *flags, "--seed", "5")
    other = train("tabular-regression", tmp_path / "c", *flags, "--seed", "6")
    assert first["metrics"] == again["metrics"]
    assert first["metrics"] != other["metrics"]
    assert (tmp_path / "a" / "evaluation.json").read_text() == (
        tmp_path / "b" / "evaluation.json"
    ).read_text()
