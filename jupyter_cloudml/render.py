"""Plain-text and JSON views of jobs, listings, log lines and studies, for the CLI and magics.

Every function is pure: models in, a string out (no Client, no printing).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from .models import (
    Event,
    Goal,
    JobInfo,
    JobPage,
    LogLine,
    ParamSpec,
    ParamType,
    Preview,
    Scalar,
    Scale,
    StudyInfo,
    TensorBoardInfo,
    TrainSpec,
    TrialInfo,
    TrialStatus,
    TuningSpec,
    to_dict,
)

NONE = "-"


def format_duration(seconds: float | None) -> str:
    """A duration in its two largest units: `42s`, `5m 03s`, `2h 05m`, `3d 04h`."""
    if seconds is None:
        return NONE
    total = max(int(seconds), 0)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_time(timestamp: float | None) -> str:
    """Seconds since the epoch as local `YYYY-MM-DD HH:MM:SS`."""
    if timestamp is None:
        return NONE
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def format_log_line(line: LogLine) -> str:
    """`[worker-1] text`: the replica that printed the line, then the line."""
    return f"[{line.replica}] {line.text.rstrip(chr(13) + chr(10))}"


def format_metrics(scalars: Mapping[str, Sequence[Scalar]]) -> str:
    """`jobs metrics`: one row per tag with its last value and its range."""
    rows = []
    for tag, values in sorted(scalars.items()):
        if not values:
            continue
        last = max(values, key=lambda s: (s.step, s.wall_time))
        numbers = [s.value for s in values]
        rows.append(
            (
                tag,
                len(values),
                last.step,
                format_number(last.value, 6),
                format_number(min(numbers), 6),
                format_number(max(numbers), 6),
            )
        )
    if not rows:
        return (
            "no metrics reported yet (jupyter_cloudml.report(...), TensorBoard event files "
            "under the job dir, or cloudml-hypertune)"
        )
    return format_table(("TAG", "POINTS", "LAST STEP", "LAST", "MIN", "MAX"), rows)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Columns aligned by two spaces, like `kubectl get`."""
    cells = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = (
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    )
    return "\n".join(line.rstrip() for line in lines)


def format_replicas(job: JobInfo) -> str:
    """Replica counts by role, `chief:1 worker:2 ps:1`, from the report or else the spec."""
    counts: dict[str, int] = {}
    if job.replicas:
        for replica in job.replicas:
            counts[replica.role] = counts.get(replica.role, 0) + 1
    elif job.spec is not None:
        for name in job.spec.replicas.names():
            role = name.rsplit("-", 1)[0]
            counts[role] = counts.get(role, 0) + 1
    return " ".join(f"{role}:{n}" for role, n in counts.items()) or NONE


def format_status(job: JobInfo | StudyInfo) -> str:
    """The status with its reason, e.g. `FAILED (worker-0 exited with 1)`."""
    return f"{job.status.value} ({job.reason})" if job.reason else job.status.value


def format_outcome(job: JobInfo) -> str:
    """One line on how a job ended (or where it is): `job mnist-3f9a SUCCEEDED after 1m 05s`."""
    line = f"job {job.id} {format_status(job)}"
    if job.elapsed is not None:
        line += f" after {format_duration(job.elapsed)}"
    return line


def format_job_table(page: JobPage, now: float | None = None) -> str:
    """A listing: ID, NAME, STATUS, AGE, ELAPSED, REPLICAS, then `N of TOTAL jobs`."""
    now = time.time() if now is None else now
    rows = [
        (
            job.id,
            job.name,
            job.status.value,
            format_duration(now - job.created),
            format_duration(job.elapsed),
            format_replicas(job),
        )
        for job in page.jobs
    ]
    table = format_table(("ID", "NAME", "STATUS", "AGE", "ELAPSED", "REPLICAS"), rows)
    return f"{table}\n{len(page.jobs)} of {page.total} jobs"


def _spec_fields(spec: TrainSpec, replicas: bool = True) -> list[tuple[str, str]]:
    res = spec.resources
    resources = f"cpu {res.cpu:g}, memory {res.memory or NONE}, gpus {res.gpus}"
    if res.gpu_type:
        resources += f" ({res.gpu_type})"
    fields = [("Framework", spec.framework.value)]
    if replicas:
        fields.append(("Replicas", ", ".join(spec.replicas.names())))
    fields += [
        ("Resources", f"{resources} per replica"),
        ("Entry", " ".join(["python -m", spec.package.module, *spec.args])),
    ]
    optional = {
        "Image": spec.image,
        "Python": spec.python,
        "Job dir": spec.job_dir,
        "Timeout": format_duration(spec.timeout) if spec.timeout else None,
        "Retries": str(spec.retries) if spec.retries else None,
        "Pre-command": spec.pre_command,
        "Post-command": spec.post_command,
        "Env": _pairs(spec.env),
        "Labels": _pairs(spec.labels),
        "Node selector": _pairs(spec.node_selector),
        "Returns": ", ".join(spec.returns),
    }
    fields += [(key, value) for key, value in optional.items() if value]
    return fields


def _pairs(mapping: Any) -> str:
    return ", ".join(f"{key}={value}" for key, value in mapping.items())


def _fields(pairs: Sequence[tuple[str, str]]) -> str:
    width = max(len(key) for key, _ in pairs) + 2
    return "\n".join(f"{key + ':':<{width}}{value}" for key, value in pairs)


def format_spec(spec: TrainSpec) -> str:
    """What a dry run would submit, field by field."""
    return _fields([("Name", spec.name), *_spec_fields(spec)])


def format_job(job: JobInfo, events: Sequence[Event] = ()) -> str:
    """`describe`: fields, replicas with states and exit codes, events."""
    fields = [
        ("ID", job.id),
        ("Name", job.name),
        ("Status", format_status(job)),
        ("Created", format_time(job.created)),
        ("Started", format_time(job.started)),
        ("Finished", format_time(job.finished)),
        ("Elapsed", format_duration(job.elapsed)),
    ]
    if job.attempt:
        fields.append(("Attempt", str(job.attempt)))
    if job.spec is not None:
        fields += _spec_fields(job.spec, replicas=not job.replicas)
    parts = [_fields(fields)]
    if job.replicas:
        rows = (
            (
                r.name,
                r.status.value,
                NONE if r.exit_code is None else r.exit_code,
                ",".join(map(str, r.gpus)) or NONE,
            )
            for r in job.replicas
        )
        parts.append(
            "Replicas:\n" + _indent(format_table(("NAME", "STATUS", "EXIT", "GPUS"), rows))
        )
    if events:
        rows = ((format_time(e.time), e.type, e.reason, e.message) for e in events)
        parts.append(
            "Events:\n" + _indent(format_table(("TIME", "TYPE", "REASON", "MESSAGE"), rows))
        )
    return "\n\n".join(parts)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


# --- JSON -------------------------------------------------------------------------------------


def spec_dict(spec: TrainSpec) -> dict[str, Any]:
    """A spec as JSON data; the code archive is summarised by its size, not inlined."""
    data: dict[str, Any] = {
        f.name: to_dict(getattr(spec, f.name))
        for f in dataclasses.fields(spec)
        if f.name != "package"
    }
    package = spec.package
    data["package"] = {
        "module": package.module,
        "files": list(package.files),
        "requirements": list(package.requirements),
        "size": len(package.archive),
    }
    return data


def job_dict(job: JobInfo) -> dict[str, Any]:
    """A job as JSON data, with `elapsed` and its spec (archive summarised)."""
    data: dict[str, Any] = to_dict(dataclasses.replace(job, spec=None))
    data["elapsed"] = job.elapsed
    data["spec"] = None if job.spec is None else spec_dict(job.spec)
    return data


def dumps(data: Any) -> str:
    """Indented JSON text of plain data or models."""
    return json.dumps(to_dict(data), indent=2)


def job_list_dict(page: JobPage) -> dict[str, Any]:
    """A listing as JSON data: `{"jobs": [...], "total": N}`."""
    return {"jobs": [job_dict(job) for job in page.jobs], "total": page.total}


def log_line_json(line: LogLine) -> str:
    """One log line as a compact JSON object (one per output line: JSON Lines)."""
    return json.dumps(to_dict(line))


def format_dry_run(spec: TrainSpec, output: str = "text", tuning: TuningSpec | None = None) -> str:
    """What `--dry-run` shows: the job (and study) and the files that would ship, as text or
    JSON (`--output yaml` shows a backend's `Preview` instead: `format_preview`)."""
    if output == "json":
        data = spec_dict(spec)
        if tuning is not None:
            data = {"trial": data, "tuning": to_dict(tuning)}
        return json.dumps(data, indent=2)
    from .packaging import describe_package

    study = f"\n\n{format_tuning(tuning)}" if tuning is not None else ""
    return (
        f"{format_spec(spec)}{study}\n\n{describe_package(spec.package)}\n"
        "(dry run: nothing submitted)"
    )


class _PlainDumper(yaml.SafeDumper):
    """YAML for people: a shared dict is written out again, not as `&id001` / `*id001`."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def format_preview(preview: Preview) -> str:
    """The objects a backend would create, as a YAML stream (`--dry-run --output yaml`)."""
    return yaml.dump_all(preview.objects, Dumper=_PlainDumper, sort_keys=False).rstrip()


def format_tuning(tuning: TuningSpec) -> str:
    """A study's search space and budget, as `describe` and `--dry-run` show them."""
    pairs = [
        ("objective", f"{tuning.goal.value.lower()} {tuning.metric}"),
        ("trials", f"{tuning.max_trials}, {tuning.parallel_trials} at a time"),
        ("algorithm", tuning.algorithm.value),
        ("early stopping", tuning.early_stopping.value),
        *((f"param {p.name}", format_param_space(p)) for p in tuning.params),
    ]
    return _fields(pairs)


# --- studies ----------------------------------------------------------------------------------

#: How a trials listing can be ordered (`format_trials_table`, the study widget).
TRIAL_SORTS = ("metric", "number", "status")
_TRIAL_ORDER = {status: i for i, status in enumerate(TrialStatus)}


def format_number(value: float | int | str | None, digits: int = 4) -> str:
    """A parameter or metric value, short: `0.001`, `3`, `adam`, `0.9871`; `-` for none."""
    if value is None:
        return NONE
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


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
    """Progress of a study: `12/30 done · 4 running · 3 pruned · 1 failed` (+ cancelled if any)."""
    parts = [
        f"{trials_done(study)}/{study.tuning.max_trials} done",
        f"{study.count(TrialStatus.RUNNING)} running",
        f"{study.count(TrialStatus.PRUNED)} pruned",
        f"{study.count(TrialStatus.FAILED)} failed",
    ]
    if cancelled := study.count(TrialStatus.CANCELLED):
        parts.append(f"{cancelled} cancelled")
    return " · ".join(parts)


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


def format_study_table(studies: Sequence[StudyInfo], now: float | None = None) -> str:
    """`studies list`: one row per study, newest first."""
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
    return (
        format_table(("ID", "NAME", "STATUS", "TRIALS", "BEST", "AGE"), rows)
        if rows
        else "no studies"
    )


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
    parts = [_fields(fields), "Search space:\n" + _indent(space)]
    if study.trials:
        parts.append("Trials:\n" + _indent(format_trials_table(study)))
    return "\n\n".join(parts)


def study_dict(study: StudyInfo, now: float | None = None) -> dict[str, Any]:
    """A study as JSON data, with `elapsed` and trial `counts` by status."""
    data: dict[str, Any] = to_dict(study)
    data["elapsed"] = study_elapsed(study, now)
    data["counts"] = {status.value: study.count(status) for status in TrialStatus}
    return data


# --- TensorBoard ------------------------------------------------------------------------------


def format_tensorboard(board: TensorBoardInfo) -> str:
    """One TensorBoard: where it serves and over which jobs."""
    state = "reused" if board.reused else "started"
    return f"TensorBoard {board.id} ({state}) over {', '.join(board.jobs)}: {board.url}"


def format_tensorboards(boards: Sequence[TensorBoardInfo]) -> str:
    if not boards:
        return "no TensorBoard is running"
    rows = [(b.id, b.url, format_time(b.started), ", ".join(b.jobs)) for b in boards]
    return format_table(("ID", "URL", "STARTED", "JOBS"), rows)
