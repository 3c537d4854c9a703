"""Plain-text and JSON views of jobs, listings, log lines and metrics.

Every function is pure: models in, a string or plain data out (no Client, no printing)."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..models import (
    ROLES,
    Event,
    JobInfo,
    JobPage,
    LogLine,
    Resources,
    Scalar,
    TrainSpec,
    to_dict,
)
from .text import (
    NONE,
    STATUS_CUT,
    format_duration,
    format_fields,
    format_more,
    format_number,
    format_pairs,
    format_status,
    format_table,
    format_time,
    indent_block,
)


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


def format_outcome(job: JobInfo) -> str:
    """One line on how a job ended (or where it is): `job mnist-3f9a SUCCEEDED after 1m 05s`."""
    line = f"job {job.id} {format_status(job)}"
    if job.elapsed is not None:
        line += f" after {format_duration(job.elapsed)}"
    return line


def format_job_table(
    page: JobPage, now: float | None = None, offset: int = 0, command: str = "cloudml jobs"
) -> str:
    """A listing: ID, NAME, STATUS (with its reason), AGE, ELAPSED, REPLICAS, in 100 columns,
    then `N of TOTAL jobs` and, when some are left out, the `command` that shows the rest."""
    now = time.time() if now is None else now
    rows = [
        (
            job.id,
            job.name,
            format_status(job),
            format_duration(now - job.created),
            format_duration(job.elapsed),
            format_replicas(job),
        )
        for job in page.jobs
    ]
    headers = ("ID", "NAME", "STATUS", "AGE", "ELAPSED", "REPLICAS")
    table = format_table(headers, rows, cut={"NAME": 9, "STATUS": STATUS_CUT, "REPLICAS": 9})
    return f"{table}\n{format_more(len(page.jobs), page.total, offset, command, 'jobs')}"


def _resources(res: Resources) -> str:
    text = f"cpu {res.cpu:g}, memory {res.memory or NONE}, gpus {res.gpus}"
    return text + (f" ({res.gpu_type})" if res.gpu_type else "")


def _spec_fields(spec: TrainSpec, replicas: bool = True) -> list[tuple[str, str]]:
    fields = [("Framework", spec.framework.value)]
    if replicas:
        fields.append(("Replicas", ", ".join(spec.replicas.names())))
    roles = [role for role in ROLES if spec.replicas.count(role)]
    if any(role not in spec.role_resources for role in roles):  # some role takes the default
        fields.append(("Resources", f"{_resources(spec.resources)} per replica"))
    else:
        fields.append(("Resources", "per role:"))
    for role, res in spec.role_resources.items():
        fields.append((f"  {role}", f"{_resources(res)} per replica"))
    for role, image in spec.role_images.items():
        fields.append((f"  {role} image", image))
    if spec.tf_chief_name == "master":
        fields.append(("TF_CONFIG", "the chief is 'master', as in Google's legacy jobs"))
    fields += [
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
        "Env": format_pairs(spec.env),
        "Secrets": ", ".join(f"{name} (value hidden)" for name in spec.secrets),
        "Labels": format_pairs(spec.labels),
        "Node selector": format_pairs(spec.node_selector),
        "Returns": ", ".join(spec.returns),
    }
    fields += [(key, value) for key, value in optional.items() if value]
    return fields


def format_spec(spec: TrainSpec) -> str:
    """What a dry run would submit, field by field."""
    return format_fields([("Name", spec.name), *_spec_fields(spec)])


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
    parts = [format_fields(fields)]
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
            "Replicas:\n" + indent_block(format_table(("NAME", "STATUS", "EXIT", "GPUS"), rows))
        )
    if events:
        rows = ((format_time(e.time), e.type, e.reason, e.message) for e in events)
        parts.append(
            "Events:\n" + indent_block(format_table(("TIME", "TYPE", "REASON", "MESSAGE"), rows))
        )
    return "\n\n".join(parts)


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


def job_list_dict(page: JobPage) -> dict[str, Any]:
    """A listing as JSON data: `{"jobs": [...], "total": N}`."""
    return {"jobs": [job_dict(job) for job in page.jobs], "total": page.total}


def log_line_json(line: LogLine) -> str:
    """One log line as a compact JSON object (one per output line: JSON Lines)."""
    return json.dumps(to_dict(line))


def format_fetched(job_id: str, values: Mapping[str, Any], missing: Sequence[str]) -> str:
    """What `fetch` loaded, and the `--return` names the cell never defined."""
    loaded = f"loaded {', '.join(values)}" if values else "loaded nothing"
    text = f"{loaded} from job {job_id}"
    if missing:
        text += f"; the cell defined no {', '.join(missing)} (--return)"
    return text
