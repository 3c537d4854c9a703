"""What every template trainer shares: the common flags, where outputs go, the evaluation
report (metrics as JSON, a plot as PNG) and the metric reported to the study."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any

import jupyter_cloudml
from jupyter_cloudml.exceptions import InvalidSpec

MODEL_FILE = "model.joblib"
REPORT_JSON = "evaluation.json"
REPORT_PNG = "evaluation.png"


def parser(description: str) -> argparse.ArgumentParser:
    """The flags of every template: the data, the target, the job dir, the seed, the split."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", required=True, help="a file, a glob, an fsspec URI or a folder")
    p.add_argument("--target", default=None, help="the column to predict")
    p.add_argument("--job-dir", default=os.environ.get("CLOUDML_JOB_DIR", "."))
    p.add_argument("--seed", type=int, default=0, help="split and model seed")
    p.add_argument("--test_size", type=float, default=0.2, help="held-out share of the rows")
    return p


def fail(message: str) -> None:
    """End the job with one line saying why (the job's reason)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def run(main: Any) -> None:
    """Run a trainer's `main`, turning a bad input into one line instead of a traceback."""
    try:
        main()
    except InvalidSpec as exc:
        fail(str(exc))


def save_model(model: Any, job_dir: str) -> str:
    """The fitted model, as the sklearn loader of `%cloudml_deploy` reads it."""
    import joblib

    os.makedirs(job_dir, exist_ok=True)
    path = os.path.join(job_dir, MODEL_FILE)
    joblib.dump(model, path)
    return path


def write_report(
    job_dir: str, report: dict[str, Any], figure: Any, metric: str, value: float, step: int = 1
) -> None:
    """The evaluation report in the job dir (and the job's outputs, where the product reads it),
    then the metric at `step` (the last one), which a study optimises."""
    os.makedirs(job_dir, exist_ok=True)
    report = {**report, "metric": metric, "value": value, "plot": REPORT_PNG}
    json_path = os.path.join(job_dir, REPORT_JSON)
    with open(json_path, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1, sort_keys=True, default=_plain)
    png_path = os.path.join(job_dir, REPORT_PNG)
    figure.savefig(png_path, dpi=80, bbox_inches="tight")
    outputs = os.environ.get("CLOUDML_OUTPUT_DIR")
    if outputs and os.path.abspath(outputs) != os.path.abspath(job_dir):
        os.makedirs(outputs, exist_ok=True)
        for path in (json_path, png_path):
            shutil.copy(path, os.path.join(outputs, os.path.basename(path)))
    jupyter_cloudml.report(step=step, **{metric: value})
    print(f"{metric} = {value:.4f} on {report.get('n_test')} held-out rows", flush=True)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def confusion_figure(labels: list[Any], matrix: Any, title: str) -> Any:
    """A confusion matrix plot (true rows, predicted columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(3.0, 0.5 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ticks = range(len(labels))
    ax.set_xticks(ticks, [str(x) for x in labels], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(x) for x in labels])
    for i in ticks:
        for j in ticks:
            ax.text(j, i, str(matrix[i][j]), ha="center", va="center")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return fig


def classification_report(y_true: Any, y_pred: Any) -> tuple[dict, Any]:
    """Held-out classification metrics and the confusion matrix figure."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    labels = sorted(set(y_true) | set(y_pred), key=str)
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro")),
    }
    report = {
        "task": "classification",
        "metrics": metrics,
        "n_test": len(y_true),
        "confusion_matrix": {"labels": labels, "matrix": matrix},
    }
    title = f"accuracy {metrics['accuracy']:.3f}"
    return report, confusion_figure(labels, matrix.tolist(), title)
