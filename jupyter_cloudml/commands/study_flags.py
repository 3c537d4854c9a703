"""The tuning part of the one grammar: `--param ... --metric ...` on `train`, and `studies VERB`.

`grammar.py` adds these to its parsers; a `train` command becomes a study when it has
`--param` or `--hptuning-config` (flags override single fields of the config file).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..exceptions import InvalidSpec
from ..models import Algorithm, EarlyStopping, Goal, TuningSpec
from .flag_types import add_output_option, whole_number

STUDY_VERBS = ("list", "describe", "best", "trials", "cancel")
STUDY_SUMMARIES = {
    "list": "list tuning studies, newest first ('studies' alone does the same)",
    "describe": "show a study: search space, progress, best trial",
    "best": "the best trial so far: its metric value and parameters",
    "trials": "every trial: status, parameters, metric (best marked *)",
    "cancel": "stop a study and its running trials",
}
#: Flags that only make sense for a study, with the TuningSpec field each sets.
TUNING_FIELDS = {
    "metric": "metric",
    "goal": "goal",
    "trials": "max_trials",
    "parallel": "parallel_trials",
    "max_failed_trials": "max_failed_trials",
    "algorithm": "algorithm",
    "early_stopping": "early_stopping",
    "seed": "seed",
    "resume": "resume_from",
}


def add_tuning_options(parser: argparse.ArgumentParser) -> None:
    """The `hyperparameter tuning` option group of `train`."""
    add = parser.add_argument_group(
        "hyperparameter tuning (any --param or --hptuning-config makes the job a study)"
    ).add_argument
    add(
        "--param",
        action="append",
        default=[],
        metavar="NAME=SPACE",
        help="a hyperparameter, repeatable: uniform(a,b), loguniform(a,b), reverselog(a,b), "
        "int(a,b), logint(a,b), discrete(v1,v2,..), choice(a,b,..) "
        "(e.g. --param lr=loguniform(1e-4,1e-1)); trials get it as --lr=VALUE and "
        "through jupyter_cloudml.params(); with --template, NAME=VALUE sets one of its "
        "parameters",
    )
    add("--metric", help="the reported metric to optimise (e.g. --metric accuracy)")
    add(
        "--goal",
        choices=[g.value.lower() for g in Goal],
        help="maximize (default) or minimize the metric (e.g. --goal minimize)",
    )
    add(
        "--trials",
        type=whole_number,
        metavar="N",
        help="trials in all (default 10; e.g. --trials 30)",
    )
    add(
        "--parallel",
        type=whole_number,
        metavar="N",
        help="trials at once (default 1; e.g. --parallel 4)",
    )
    add(
        "--max-failed-trials",
        type=whole_number,
        metavar="N",
        help="stop the study after N failed trials (default: stop if the first 3 all fail; "
        "e.g. --max-failed-trials 5)",
    )
    add(
        "--algorithm",
        choices=[a.value for a in Algorithm],
        help="how trials are proposed (default tpe; grid needs discrete parameters; "
        "e.g. --algorithm random)",
    )
    add(
        "--early-stopping",
        choices=[e.value for e in EarlyStopping],
        help="prune trials whose intermediate metric lags (default none; "
        "e.g. --early-stopping median)",
    )
    add(
        "--seed",
        type=whole_number,
        metavar="N",
        help="sampler seed, for a reproducible study (e.g. --seed 42)",
    )
    add(
        "--resume",
        metavar="STUDY",
        help="continue a study that ended: its trials count as this one's first, so only the "
        "missing ones run (Google's resumePreviousJobId; e.g. --resume tune-1a2b3c --trials 20)",
    )
    add(
        "--hptuning-config",
        metavar="FILE",
        help="Google AI Platform tuning config (trainingInput.hyperparameters), e.g. "
        "--hptuning-config hptuning_config.yaml",
    )


def add_study_verb_options(verb: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of `studies VERB`."""
    add = parser.add_argument
    if verb == "list":
        add(
            "--limit",
            type=whole_number,
            default=20,
            metavar="N",
            help="page size (e.g. --limit 50)",
        )
        add(
            "--offset",
            type=whole_number,
            default=0,
            metavar="N",
            help="skip the newest N (e.g. --offset 20)",
        )
    else:
        add(
            "study",
            metavar="STUDY",
            help="study id as printed by train or list, or its name: the newest study of that "
            "name (e.g. gbr-diabetes)",
        )
    if verb == "trials":
        add(
            "--sort",
            choices=("metric", "number", "status"),
            default="metric",
            help="order of the trials (default: best metric first; e.g. --sort number)",
        )
    if verb != "cancel":
        add_output_option(parser)


def build_tuning_spec(ns: argparse.Namespace, source_dir: str | Path) -> TuningSpec | None:
    """The study a parsed `train` command asks for, or None for a plain job."""
    if getattr(ns, "template", None) or getattr(ns, "tune", False):
        from .template_flags import template_tuning

        return template_tuning(ns, source_dir)
    from ..tuning.space import parse_param

    flagged = [parse_param(text) for text in ns.param]  # refused before any file is read
    given = {flag: getattr(ns, flag) for flag in TUNING_FIELDS if getattr(ns, flag) is not None}
    from_config = _config_tuning(ns, source_dir)
    if not ns.param and not ns.hptuning_config and from_config is None:
        if given:
            flags = ", ".join("--" + f.replace("_", "-") for f in given)
            raise InvalidSpec(
                f"{flags} tune hyperparameters: add --param NAME=SPACE or --hptuning-config FILE"
            )
        return None
    fields: dict[str, Any] = dict(from_config or {})
    if ns.hptuning_config and from_config is not None:
        raise InvalidSpec(
            f"both --config {ns.config} and --hptuning-config {ns.hptuning_config} give "
            "hyperparameters: keep them in one file"
        )
    if ns.hptuning_config:
        from ..tuning.hptuning_config import load_hptuning_config

        fields = load_hptuning_config(Path(os.path.join(source_dir, ns.hptuning_config)))
    params = {p.name: p for p in fields.get("params", ())}
    params.update({p.name: p for p in flagged})
    fields["params"] = tuple(params.values())
    for flag, value in given.items():
        fields[TUNING_FIELDS[flag]] = value.upper() if flag == "goal" else value
    if not fields.get("metric"):
        raise InvalidSpec(
            "a study needs the metric to optimise: add --metric NAME (the tag your code reports)"
        )
    return TuningSpec(**fields)


def _config_tuning(ns: argparse.Namespace, source_dir: str | Path) -> dict[str, Any] | None:
    """The `trainingInput.hyperparameters` of a `--config` file, as TuningSpec fields."""
    from .train_spec import training_config

    config = training_config(ns, source_dir)
    return None if config is None else config.tuning
