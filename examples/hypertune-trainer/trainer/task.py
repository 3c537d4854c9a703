"""A trainer in Google AI Platform's layout, unchanged: flags in, `cloudml-hypertune` out.

The objective is the Branin function (negated, so higher is better): cheap to compute, with a
known optimum, so the study's result can be checked. Run it tuned:

    cloudml train --package-path trainer --module trainer.task \
        --hptuning-config hptuning_config.yaml --job-dir /tmp/branin --wait
"""

import argparse
import math
import os

import hypertune


def branin(x1: float, x2: float) -> float:
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job-dir", default=os.environ.get("CLOUDML_JOB_DIR", "."))
    parser.add_argument("--x1", type=float, default=0.0)
    parser.add_argument("--x2", type=float, default=0.0)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    tuner = hypertune.HyperTune()
    for step in range(1, args.steps + 1):
        # A learning curve that converges to the objective, as training would.
        value = -branin(args.x1, args.x2) - 10.0 / step
        tuner.report_hyperparameter_tuning_metric(
            hyperparameter_metric_tag="neg_branin", metric_value=value, global_step=step
        )
    print(f"x1={args.x1:.4f} x2={args.x2:.4f} neg_branin={value:.4f}")


if __name__ == "__main__":
    main()
