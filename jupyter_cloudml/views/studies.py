"""Plain-text and JSON views of studies: search spaces, trials tables, the best trial."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from ..models import (
    Goal,
    ParamSpec,
    ParamType,
    Scale,
    StudyInfo,
    TrialInfo,
    TrialStatus,
    TuningSpec,
    to_dict,
)
from .text import (
    NONE,
    STATUS_CUT,
    format_duration,
    format_fields,
    format_more,
    format_number,
    format_status,
    format_table,
    format_time,
    indent_block,
)


def format_tuning(tuning: TuningSpec) -> str:
    """A study's search space and budget, as `describe` and `--dry-run` show them."""
    pairs = [
        ("objective", f"{tuning.goal.value.lower()} {tuning.metric}"),
        ("trials", f"{tuning.max_trials}, {tuning.parallel_trials} at a time"),
        ("algorithm", tuning.algorithm.value),
        ("early stopping", tuning.early_stopping.value),
        *((f"param {p.name}", format_param_space(p)) for p in tuning.params),
    ]
    if tuning.resume_from:
        pairs.insert(2, ("continues", f"study {tuning.resume_from} (its trials count)"))
    return format_fields(pairs)


#: How a trials listing can be ordered (`format_trials_table`, the study widget).
TRIAL_SORTS = ("metric", "number", "status")


_TRIAL_ORDER = {status: i for i, status in enumerate(TrialStatus)}


def sort_trials(study: StudyInfo, sort: str = "metric") -> list[TrialInfo]:
    """Trials by `metric` (best first: completed trials, then the values of pruned, failed or
    running ones, then those without a value), trial `number`, or `status` then number."""
    if sort == "number":
        return sorted(study.trials, key=lambda t: t.number)
    if sort == "status":
        return sorted(study.trials, key=lambda t: (_TRIAL_ORDER[t.status], t.number))
    if sort == "metric":
        sign = -1.0 if study.tuning.goal is Goal.MAXIMIZE else 1.0

        def rank(t: TrialInfo) -> tuple[int, float, int]:
            if t.value is None or math.isnan(t.value):
                return 2, 0.0, t.number
            return int(t.status is not TrialStatus.SUCCEEDED), sign * t.value, t.number

        return sorted(study.trials, key=rank)
    raise ValueError(f"unknown sort {sort!r}: use one of {', '.join(TRIAL_SORTS)}")


def trials_done(study: StudyInfo) -> int:
    """How many trials have finished, however they ended (the study's progress)."""
    return len(study.trials) - study.count(TrialStatus.RUNNING)


def format_objective(study: StudyInfo) -> str:
    """What the study optimises: `maximize accuracy`."""
    return f"{study.tuning.goal.value.lower()} {study.tuning.metric}"


def format_trial_counts(study: StudyInfo) -> str:
    """Progress of a study: `6/8 done: 4 succeeded, 2 cancelled · 2 running` (the ended
    trials by how they ended, the words of their status, only those that occur)."""
    ended = (TrialStatus.SUCCEEDED, TrialStatus.PRUNED, TrialStatus.FAILED, TrialStatus.CANCELLED)
    counts = [f"{n} {s.value.lower()}" for s in ended if (n := study.count(s))]
    text = f"{trials_done(study)}/{study.tuning.max_trials} done"
    text += f": {', '.join(counts)}" if counts else ""
    if running := study.count(TrialStatus.RUNNING):
        text += f" · {running} running"
    return text


def param_names(study: StudyInfo) -> list[str]:
    """The study's parameters in search-space order, then any others its trials carry."""
    names = [p.name for p in study.tuning.params]
    return list(dict.fromkeys([*names, *(n for t in study.trials for n in t.params)]))


def format_trials_table(study: StudyInfo, sort: str = "metric") -> str:
    """The trials, one a row: best marked `*`, status, each parameter, metric, steps, job."""
    best = study.best_trial.number if study.best_trial is not None else None
    names = param_names(study)
    rows = (
        (
            "*" if t.number == best else "",
            t.number,
            t.status.value,
            *(format_number(t.params.get(name)) for name in names),
            format_number(t.value, 6),
            t.steps,
            t.job_id or NONE,
        )
        for t in sort_trials(study, sort)
    )
    headers = ("", "TRIAL", "STATUS", *names, study.tuning.metric, "STEPS", "JOB")
    return format_table(headers, rows)


def format_param_space(param: ParamSpec) -> str:
    """A search space in one line: `DOUBLE 0.0001..0.1 (log)`, `CATEGORICAL adam, sgd`."""
    if param.type in (ParamType.DOUBLE, ParamType.INTEGER):
        text = f"{param.type.value} {param.min_value:g}..{param.max_value:g}"
        scale = {Scale.LOG: " (log)", Scale.REVERSE_LOG: " (reverse log)"}
        return text + scale.get(param.scale, "")
    return f"{param.type.value} {', '.join(format_number(v) for v in param.values)}"


def format_best(study: StudyInfo) -> str:
    """The best trial in one line: `trial 7: accuracy 0.9871 (lr=0.001, layers=3)`."""
    trial = study.best_trial
    if trial is None:
        return NONE
    params = ", ".join(f"{k}={format_number(v)}" for k, v in trial.params.items())
    return f"trial {trial.number}: {study.tuning.metric} {format_number(trial.value, 6)} ({params})"


def format_best_trial(study: StudyInfo, trial: TrialInfo) -> str:
    """The answer of `studies best`: the value, the job, one parameter per line."""
    lines = [
        f"best trial {trial.number} of study {study.id}: {study.tuning.metric} "
        f"{format_number(trial.value, 6)} ({study.tuning.goal.value.lower()})",
        f"  job: {trial.job_id}",
    ]
    lines += [f"  {name} = {format_number(value, 8)}" for name, value in trial.params.items()]
    return "\n".join(lines)


def format_study_table(
    studies: Sequence[StudyInfo],
    now: float | None = None,
    total: int | None = None,
    offset: int = 0,
    command: str = "cloudml studies",
) -> str:
    """`studies list`: one row per study, newest first, in 100 columns; with `total`, then
    `N of TOTAL studies` and the `command` that shows the rest."""
    now = time.time() if now is None else now
    rows = [
        (
            s.id,
            s.name,
            format_status(s),
            format_trial_counts(s),
            format_best(s),
            format_duration(now - s.created),
        )
        for s in studies
    ]
    if not rows and not offset:
        return "no studies"
    headers = ("ID", "NAME", "STATUS", "TRIALS", "BEST", "AGE")
    table = format_table(
        headers, rows, cut={"NAME": 9, "BEST": 12, "TRIALS": 12, "STATUS": STATUS_CUT}
    )
    if total is None:
        return table
    return f"{table}\n{format_more(len(rows), total, offset, command, 'studies')}"


def study_elapsed(study: StudyInfo, now: float | None = None) -> float | None:
    """Seconds the study has been (or was) running, None before it started."""
    if study.started is None:
        return None
    end = study.finished if study.finished is not None else (time.time() if now is None else now)
    return end - study.started


def format_study(study: StudyInfo, now: float | None = None) -> str:
    """`describe` of a study: fields, search space, the best trial, then the trials table."""
    tuning = study.tuning
    fields = [
        ("ID", study.id),
        ("Name", study.name),
        ("Status", format_status(study)),
        ("Created", format_time(study.created)),
        ("Started", format_time(study.started)),
        ("Finished", format_time(study.finished)),
        ("Elapsed", format_duration(study_elapsed(study, now))),
        ("Objective", format_objective(study)),
        ("Algorithm", tuning.algorithm.value),
        ("Early stop", tuning.early_stopping.value),
        ("Parallel", str(tuning.parallel_trials)),
        ("Progress", format_trial_counts(study)),
        ("Best", format_best(study)),
    ]
    if tuning.max_failed_trials is not None:
        fields.insert(-2, ("Max failed", str(tuning.max_failed_trials)))
    if tuning.seed is not None:
        fields.insert(-2, ("Seed", str(tuning.seed)))
    space = format_table(
        ("PARAMETER", "SPACE"), ((p.name, format_param_space(p)) for p in tuning.params)
    )
    parts = [format_fields(fields), "Search space:\n" + indent_block(space)]
    if study.trials:
        parts.append("Trials:\n" + indent_block(format_trials_table(study)))
    return "\n\n".join(parts)


def study_dict(study: StudyInfo, now: float | None = None) -> dict[str, Any]:
    """A study as JSON data, with `elapsed` and trial `counts` by status."""
    data: dict[str, Any] = to_dict(study)
    data["elapsed"] = study_elapsed(study, now)
    data["counts"] = {status.value: study.count(status) for status in TrialStatus}
    return data
