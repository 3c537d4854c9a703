"""Tuning studies against Optuna on its own, side by side in one run.

1. Regret after N trials on Branin (2-D) and Hartmann6 (6-D), our study running every trial as a
   real job on the local backend (a process that computes the function and reports it), beside
   Optuna's TPESampler with default settings optimising the same function in-process. Median
   over seeds; regret = best value found - known optimum (both functions are minimised).
2. Driver overhead per trial: time the study driver spends per trial (asking Optuna, building
   the trial, reporting, telling), excluding starting the trial's job.
3. Early stopping on learning curves: the same proposals (random sampler, fixed seed) with and
   without median pruning; trial steps executed and whether the best trial is the same.

Run: .venv/bin/python bench/bench_tuning.py [--seeds 5] [--trials 50] [--parallel 1] [--curves 24]
     [--smoke]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time

import optuna

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.client import Client
from jupyter_cloudml.models import (
    Algorithm,
    EarlyStopping,
    Goal,
    ParamSpec,
    ParamType,
    TrainSpec,
    TrialStatus,
    TuningSpec,
)
from jupyter_cloudml.packaging import package_cell

HARTMANN_A = [
    [10, 3, 17, 3.5, 1.7, 8],
    [0.05, 10, 17, 0.1, 8, 14],
    [3, 3.5, 1.7, 10, 17, 8],
    [17, 8, 0.05, 10, 0.1, 14],
]
HARTMANN_P = [
    [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
    [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
    [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
    [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
]
HARTMANN_ALPHA = [1.0, 1.2, 3.0, 3.2]

FUNCTIONS = f"""
import math
HARTMANN_A = {HARTMANN_A!r}
HARTMANN_P = {HARTMANN_P!r}
HARTMANN_ALPHA = {HARTMANN_ALPHA!r}

def branin(x1, x2):
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10

def hartmann6(*x):
    return -sum(a * math.exp(-sum(A * (xj - P) ** 2 for A, xj, P in zip(Ai, x, Pi)))
                for a, Ai, Pi in zip(HARTMANN_ALPHA, HARTMANN_A, HARTMANN_P))
"""
namespace: dict = {}
exec(FUNCTIONS, namespace)
branin, hartmann6 = namespace["branin"], namespace["hartmann6"]

PROBLEMS = {
    "branin": {
        "params": [("x1", -5.0, 10.0), ("x2", 0.0, 15.0)],
        "optimum": 0.397887,
        "call": "branin(p['x1'], p['x2'])",
        "f": lambda p: branin(p["x1"], p["x2"]),
    },
    "hartmann6": {
        "params": [(f"x{i}", 0.0, 1.0) for i in range(6)],
        "optimum": -3.32237,
        "call": "hartmann6(*(p[f'x{i}'] for i in range(6)))",
        "f": lambda p: hartmann6(*(p[f"x{i}"] for i in range(6))),
    },
}

LEARNING_CURVE = """
import math, time
import jupyter_cloudml
p = jupyter_cloudml.params()
for step in range(1, 21):
    # Converges to `quality`; slow learners (high tau) look worse early but may end well.
    value = p["quality"] * (1 - math.exp(-step / p["tau"]))
    jupyter_cloudml.report(step=step, acc=value)
    time.sleep(0.05)
"""


def ours(client: Client, name: str, seed: int, trials: int, parallel: int) -> tuple[float, float]:
    problem = PROBLEMS[name]
    code = (
        FUNCTIONS + "\nimport jupyter_cloudml\np = jupyter_cloudml.params()\n"
        f"jupyter_cloudml.report(step=0, value={problem['call']})\n"
    )
    params = tuple(ParamSpec(n, ParamType.DOUBLE, lo, hi) for n, lo, hi in problem["params"])
    tuning = TuningSpec(
        params=params,
        metric="value",
        goal=Goal.MINIMIZE,
        max_trials=trials,
        parallel_trials=parallel,
        seed=seed,
    )
    spec = TrainSpec(name=f"{name}-s{seed}", package=package_cell(code, source_dir="."))
    study = client.submit_study(spec, tuning)
    client.wait(study.id, poll=0.2)
    info = client.get_study(study.id)
    assert info.best_trial is not None and info.best_trial.value is not None, info.reason
    summary = __import__("json").loads(client.backend.read_output(study.id, "study.json"))
    return info.best_trial.value - problem["optimum"], summary["overhead_ms_per_trial"]


def reference(name: str, seed: int, trials: int) -> float:
    problem = PROBLEMS[name]
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(sampler=sampler, direction="minimize")

    def objective(trial: optuna.Trial) -> float:
        p = {n: trial.suggest_float(n, lo, hi) for n, lo, hi in problem["params"]}
        return problem["f"](p)

    study.optimize(objective, n_trials=trials)
    return study.best_value - problem["optimum"]


def early_stopping(client: Client, pruning: bool, seed: int, trials: int, parallel: int):
    params = (
        ParamSpec("quality", ParamType.DOUBLE, 0.5, 1.0),
        ParamSpec("tau", ParamType.DOUBLE, 1.0, 6.0),
    )
    tuning = TuningSpec(
        params=params,
        metric="acc",
        max_trials=trials,
        parallel_trials=parallel,
        algorithm=Algorithm.RANDOM,
        seed=seed,
        early_stopping=EarlyStopping.MEDIAN if pruning else EarlyStopping.NONE,
    )
    spec = TrainSpec(
        name="curves-prune" if pruning else "curves-all",
        package=package_cell(LEARNING_CURVE, source_dir="."),
    )
    study = client.submit_study(spec, tuning)
    client.wait(study.id, poll=0.2)
    info = client.get_study(study.id)
    steps = 0
    for t in info.trials:  # steps each trial's job really ran, from its own reports
        assert t.job_id is not None
        steps += len(client.metrics(t.job_id).scalars.get("acc", ()))
    pruned = sum(t.status is TrialStatus.PRUNED for t in info.trials)
    assert info.best_trial is not None
    return steps, pruned, info.best_trial.params


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--curves", type=int, default=24, help="trials of the early-stopping run")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    if args.smoke:
        args.seeds, args.trials, args.curves = 1, 3, 4
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as home:
        os.environ["CLOUDML_HOME"] = home
        os.chdir(home)
        client = Client(backend=LocalBackend(home=home, cpu_slots=max(2, args.parallel)))
        print(
            f"| {args.trials} trials, median of {args.seeds} seeds | ours (real trials, "
            f"{args.parallel} in parallel) | Optuna TPE in-process | ratio |"
        )
        print("| --- | --- | --- | --- |")
        overheads = []
        for name in PROBLEMS:
            t0 = time.time()
            mine, theirs = [], []
            for seed in range(args.seeds):
                regret, overhead = ours(client, name, seed, args.trials, args.parallel)
                mine.append(regret)
                overheads.append(overhead)
                theirs.append(reference(name, seed, args.trials))
            a, b = statistics.median(mine), statistics.median(theirs)
            print(
                f"| {name} median regret | {a:.4f} | {b:.4f} | x{a / b:.2f} "
                f"({time.time() - t0:.0f} s) |",
                flush=True,
            )
        print(
            f"| driver overhead per trial (ms, median over studies) | "
            f"{statistics.median(overheads):.1f} | - | target <= 20 |"
        )
        full, _, best_full = early_stopping(client, False, 11, args.curves, args.parallel)
        cut, pruned, best_cut = early_stopping(client, True, 11, args.curves, args.parallel)
        saved = 1 - cut / full
        same = all(math.isclose(best_full[k], best_cut[k]) for k in best_full)
        print(
            f"| early stopping (median), {args.curves} learning curves of 20 steps | {cut} steps, "
            f"{pruned} pruned | {full} steps without | saved {saved:.0%}, same best: {same} |"
        )


if __name__ == "__main__":
    main()
