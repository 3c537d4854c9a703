"""Tuned templates against scikit-learn's defaults and against Optuna in-process, in one run.

On data sets bundled with scikit-learn (written to CSV, as a user would have them), each row:
1. the template tuned as a user runs it (`train --template ... --tune --trials N --parallel P
   --seed S`, parsed by the one grammar, every trial a real job on the local backend): the best
   trial's held-out score, and the study's wall time;
2. a default-parameter scikit-learn model of the same family (HistGradientBoosting), fitted on
   the same split with the same encoding;
3. the same search run in-process with Optuna (TPE, same seed, same space, same trials, the
   template's own pipeline): its best score and wall time.
The overhead is (template study wall time - Optuna's) per trial: starting jobs and reading
their metrics, with P trials at once.

Run: .venv/bin/python bench/bench_templates.py [--trials 10] [--parallel 2] [--seed 0] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from sklearn import datasets
from sklearn.model_selection import train_test_split

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.client import Client
from jupyter_cloudml.commands.grammar import parse_command
from jupyter_cloudml.commands.study_flags import build_tuning_spec
from jupyter_cloudml.commands.train_spec import build_train_spec
from jupyter_cloudml.templates import get_template

DATASETS = {
    "diabetes": ("tabular-regression", datasets.load_diabetes),
    "breast_cancer": ("tabular-classification", datasets.load_breast_cancer),
    "wine": ("tabular-classification", datasets.load_wine),
}


def write_csv(name: str, folder: Path) -> Path:
    frame = DATASETS[name][1](as_frame=True).frame
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def ours(client: Client, template: str, csv: Path, trials: int, parallel: int, seed: int):
    """The study as `cloudml train --template ... --tune` builds it; best value, wall time."""
    argv = ["train", "--template", template, "--data", str(csv), "--target", "target"]
    argv += ["--tune", "--trials", str(trials), "--parallel", str(parallel), "--seed", str(seed)]
    ns = parse_command(argv)
    spec = build_train_spec(ns, cell=None, source_dir=csv.parent, user_ns=None)
    tuning = build_tuning_spec(ns, csv.parent)
    assert tuning is not None
    t0 = time.perf_counter()
    study = client.submit_study(spec, tuning)
    client.wait(study.id, poll=0.2)
    wall = time.perf_counter() - t0
    info = client.get_study(study.id)
    assert info.best_trial is not None and info.best_trial.value is not None, info.reason
    return info.best_trial.value, wall


def trainer(template: str) -> Any:
    """The template's own trainer module (`trainer.tabular`), imported from its package."""
    t = get_template(template)
    sys.path.insert(0, str(t.package_dir))
    import importlib

    return importlib.import_module(t.module), t


def split(csv: Path, seed: int, classification: bool):
    frame = pd.read_csv(csv)
    x, y = frame.drop(columns=["target"]), frame["target"]
    return train_test_split(
        x, y, test_size=0.2, random_state=seed, stratify=y if classification else None
    )


def score(model: Any, x: Any, y: Any, classification: bool) -> float:
    from sklearn.metrics import accuracy_score, r2_score

    predicted = model.predict(x)
    return float(accuracy_score(y, predicted) if classification else r2_score(y, predicted))


def default_model(template: str, csv: Path, seed: int) -> float:
    """HistGradientBoosting with scikit-learn's defaults, same split, same encoding."""
    module, t = trainer(template)
    classification = t.task == "classification"
    x_train, x_test, y_train, y_test = split(csv, seed, classification)
    args = module.parser().parse_args(["--data", "-", *t.args, "--seed", str(seed)])
    pipe = module.pipeline(x_train, args)
    kind = type(pipe.named_steps["model"])
    pipe.set_params(model=kind(random_state=seed))  # every other parameter at its default
    return score(pipe.fit(x_train, y_train), x_test, y_test, classification)


def optuna_search(template: str, csv: Path, trials: int, seed: int) -> tuple[float, float]:
    """The template's search space and pipeline, searched by Optuna TPE in-process."""
    from jupyter_cloudml.tuning.optuna_glue import suggest

    module, t = trainer(template)
    classification = t.task == "classification"
    x_train, x_test, y_train, y_test = split(csv, seed, classification)
    space = [p.space for p in t.params if p.space is not None]

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, space)
        flags = [f"--{name}={value}" for name, value in values.items()]
        args = module.parser().parse_args(["--data", "-", *t.args, "--seed", str(seed), *flags])
        model = module.pipeline(x_train, args).fit(x_train, y_train)
        return score(model, x_test, y_test, classification)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return study.best_value, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    names = list(DATASETS)
    if args.smoke:
        args.trials, names = 2, ["diabetes"]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as home:
        os.environ["CLOUDML_HOME"] = home
        client = Client(backend=LocalBackend(home=home, cpu_slots=max(2, args.parallel)))
        print(
            f"| data set (metric, held-out) | template tuned: {args.trials} real trials, "
            f"{args.parallel} at a time | HistGradientBoosting defaults | Optuna TPE in-process, "
            "same space and trials | overhead per trial |"
        )
        print("| --- | --- | --- | --- | --- |")
        for name in names:
            template = DATASETS[name][0]
            csv = write_csv(name, Path(home))
            metric = get_template(template).metric
            mine, wall = ours(client, template, csv, args.trials, args.parallel, args.seed)
            base = default_model(template, csv, args.seed)
            theirs, their_wall = optuna_search(template, csv, args.trials, args.seed)
            overhead = (wall - their_wall) / args.trials
            print(
                f"| {name} ({metric}) | {mine:.4f} ({wall:.0f} s) | {base:.4f} | "
                f"{theirs:.4f} ({their_wall:.1f} s) | +{overhead:.1f} s |",
                flush=True,
            )


if __name__ == "__main__":
    main()
