"""End to end, as a user works: real kernels, a real notebook, the `cloudml` command."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

from jupyter_cloudml.views.tensorboards import MIME_TYPE

ROOT = Path(__file__).resolve().parent.parent
CLOUDML = [sys.executable, "-m", "jupyter_cloudml.cli"]

pytestmark = pytest.mark.slow


def cloudml(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLOUDML, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def run_cell(client, code: str) -> str:
    """Execute a cell; return its stdout (fail the test on an error)."""
    out: list[str] = []

    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])

    reply = client.execute_interactive(code, timeout=120, output_hook=hook)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out)


def run_demo(folder: Path) -> nbformat.NotebookNode:
    """examples/demo.ipynb run top to bottom in a fresh kernel (an error fails the test)."""
    notebook = nbformat.read(ROOT / "examples" / "demo.ipynb", as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    ).execute()
    return notebook


def deploy_output(notebook: nbformat.NotebookNode) -> str:
    """The deploy cell's one output, as its saved copy reads (tags left out)."""
    cell = next(c for c in notebook.cells if c.source.startswith("%cloudml_deploy iris"))
    (shown,) = cell.outputs  # one output: the view, headed by what the deploy did
    text = re.sub(r"<[^>]+>", " ", shown["data"]["text/html"])
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def test_demo_notebook_runs_top_to_bottom_and_again(
    tmp_path: Path, serving_python: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDML_SERVING_PYTHON", serving_python)
    notebook = run_demo(tmp_path)
    outputs = {
        i: "".join(o.get("text", "") for o in cell.get("outputs", []))
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
    }
    text = "\n".join(outputs.values())
    assert "loaded weights from job linear-regression-" in text
    weights_cell = next(c for c in notebook.cells if c.source == "weights")
    value = weights_cell.outputs[0]["data"]["text/plain"]
    w = eval(value)  # the dict the job returned, as the notebook shows it
    assert abs(w["w"] - 3.0) < 0.3 and abs(w["b"] - 1.0) < 0.3
    assert text.count("SUCCEEDED") >= 3
    assert "best trial" in text and "sgd-tuning" in text  # the study cell and its listing
    board_cell = next(
        c for c in notebook.cells if c.cell_type == "code" and "%cloudml tensorboard" in c.source
    )
    (frame,) = [o["data"] for o in board_cell.outputs if o.get("output_type") == "display_data"]
    assert frame[MIME_TYPE]["url"].startswith("proxy/")
    boards = json.loads(cloudml("tensorboard", "--list", "--output", "json").stdout)
    assert [b["id"] for b in boards] == [frame[MIME_TYPE]["id"]]
    cloudml("tensorboard", "--stop", boards[0]["id"])
    predict_cell = next(c for c in notebook.cells if c.source.startswith("jupyter_cloudml.predict"))
    assert predict_cell.outputs[0]["data"]["text/plain"] == "[0, 2]"  # setosa, virginica
    deployed = deploy_output(notebook)
    assert "iris READY" in deployed and "v1 100%" in deployed, deployed
    listing = cloudml("jobs", "list", "--output", "json")
    names = {job["name"] for job in json.loads(listing.stdout)["jobs"]}
    assert {"linear-regression", "tf-cluster", "ddp"} <= names
    assert deployed.startswith("iris v1 deployed "), deployed
    # "Restart kernel and run all": the same notebook again, over the same jobs and endpoint.
    again = run_demo(tmp_path)
    redeployed = deploy_output(again)
    assert redeployed.startswith(
        ("iris v1 already serves this model", "iris v2 deployed (its model differs from v1's)")
    ), redeployed
    predict_cell = next(c for c in again.cells if c.source.startswith("jupyter_cloudml.predict"))
    assert predict_cell.outputs[0]["data"]["text/plain"] == "[0, 2]"


def test_job_survives_kernel_restart_and_is_listed_by_a_fresh_cli(tmp_path: Path) -> None:
    env = dict(os.environ)
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env)
    try:
        run_cell(kc, "%load_ext jupyter_cloudml")
        run_cell(kc, "%%cloudml_train --name survivor\nimport time\ntime.sleep(4)\nprint('done')")
        listed = json.loads(run_cell(kc, "%cloudml jobs --output json"))
        (job,) = listed["jobs"]
        assert job["status"] in ("QUEUED", "STARTING", "RUNNING")
        kc.stop_channels()
        km.restart_kernel(now=True)
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        run_cell(kc, "%load_ext jupyter_cloudml")
        again = json.loads(run_cell(kc, "%cloudml jobs --output json"))["jobs"]
        assert [j["id"] for j in again] == [job["id"]]
        assert again[0]["status"] == "RUNNING"  # still running after the restart
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    fresh = cloudml("jobs", "list", "--output", "json")
    assert fresh.returncode == 0, fresh.stderr
    assert [j["id"] for j in json.loads(fresh.stdout)["jobs"]] == [job["id"]]
    waited = cloudml("jobs", "wait", job["id"])
    assert waited.returncode == 0, waited.stdout + waited.stderr
    logs = cloudml("jobs", "logs", job["id"])
    assert logs.stdout.strip() == "[worker-0] done"


GOOGLE_TASK = """
import argparse
import json
import os

from trainer import model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--job-dir", required=True)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    os.makedirs(args.job_dir, exist_ok=True)
    with open(os.path.join(args.job_dir, "result.json"), "w") as f:
        json.dump({"epochs": args.epochs, "loss": model.train(args.epochs)}, f)
    print("trained", args.epochs, "epochs")


if __name__ == "__main__":
    main()
"""


def test_google_layout_trainer_package_runs_unchanged(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "trainer").mkdir(parents=True)
    (project / "trainer" / "__init__.py").write_text("")
    (project / "trainer" / "task.py").write_text(GOOGLE_TASK)
    (project / "trainer" / "model.py").write_text("def train(epochs):\n    return 1.0 / epochs\n")
    (project / "setup.py").write_text(
        textwrap.dedent("""
        from setuptools import find_packages, setup
        REQUIRED_PACKAGES = []
        setup(name="trainer", version="0.1", packages=find_packages(),
              install_requires=REQUIRED_PACKAGES)
    """)
    )
    job_dir = tmp_path / "output"
    result = cloudml(
        "train",
        "--package-path",
        "trainer",
        "--module",
        "trainer.task",
        "--job-dir",
        str(job_dir),
        "--wait",
        "--",
        "--epochs",
        "4",
        cwd=project,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[worker-0] trained 4 epochs" in result.stdout
    assert json.loads((job_dir / "result.json").read_text()) == {"epochs": 4, "loss": 0.25}
    dry = cloudml(
        "train", "--package-path", "trainer", "--module", "trainer.task", "--dry-run", cwd=project
    )
    assert dry.returncode == 0 and "trainer/task.py" in dry.stdout


def test_cli_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("print(1)\n")
    typo = cloudml("train", str(script), "--wokers", "2")
    assert typo.returncode == 2
    assert typo.stderr.strip() == (
        "cloudml: error: unknown option '--wokers' (did you mean --workers?)"
    )
    missing = cloudml("jobs", "describe", "no-such-job")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "no job with id or name 'no-such-job' (see `cloudml jobs`)" in missing.stderr
    (tmp_path / "bad.py").write_text("x = (\n")
    syntax = cloudml("train", str(tmp_path / "bad.py"))
    assert syntax.returncode == 2 and "line 1" in syntax.stderr and "Traceback" not in syntax.stderr
    assert json.loads(cloudml("jobs", "list", "--output", "json").stdout)["total"] == 0


def test_google_trainer_tuned_with_its_own_hptuning_config(tmp_path: Path) -> None:
    """The issue's bar: a cloudml-hypertune trainer + hptuning_config.yaml, best trial as JSON."""
    import shutil

    project = tmp_path / "hypertune-trainer"
    shutil.copytree(ROOT / "examples" / "hypertune-trainer", project)
    result = cloudml(
        "train",
        "--package-path",
        "trainer",
        "--module",
        "trainer.task",
        "--hptuning-config",
        "hptuning_config.yaml",
        "--seed",
        "7",
        "--wait",
        "--output",
        "json",
        cwd=project,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    study = json.loads(result.stdout)
    assert study["status"] == "SUCCEEDED" and len(study["trials"]) == 12
    best = cloudml("studies", "best", study["id"], "--output", "json")
    assert best.returncode == 0, best.stderr
    answer = json.loads(best.stdout)
    values = [t["value"] for t in study["trials"] if t["status"] == "SUCCEEDED"]
    assert answer["metric"] == "neg_branin" and answer["goal"] == "MAXIMIZE"
    assert answer["trial"]["value"] == max(values)
    params = answer["trial"]["params"]
    assert set(params) == {"x1", "x2"} and -5 <= params["x1"] <= 10 and 0 <= params["x2"] <= 15
    # The reported value is the trainer's own computation at those parameters.
    # (by its file: another test may have left a different `trainer` package in sys.modules)
    loader = importlib.util.spec_from_file_location("hp_task", project / "trainer" / "task.py")
    assert loader is not None and loader.loader is not None
    task = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(task)
    branin = task.branin
    assert answer["trial"]["value"] == pytest.approx(-branin(params["x1"], params["x2"]) - 10 / 3)
