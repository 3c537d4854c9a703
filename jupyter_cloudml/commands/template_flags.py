"""`train --template NAME --data ... --target COL [--param k=v] [--seed N] [--tune]` and
`templates list|describe NAME`: a template's trainer package, its arguments and its study,
with the data checked here before anything is submitted when it can be read from here."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..exceptions import InvalidSpec
from ..models import Goal, TuningSpec
from ..models.kinds import TEMPLATE_LABEL
from .flag_types import add_output_option

if TYPE_CHECKING:
    from ..client import Client
    from ..models import CodePackage, JobInfo, ParamSpec, StudyInfo
    from ..templates import Template

TEMPLATE_VERBS = ("list", "describe")
TEMPLATE_SUMMARIES = {
    "list": "the templates (built-in, installed, on the template path): inputs, metric",
    "describe": "a template's inputs, parameters (defaults, search space), metric and code",
}

#: `train` flags that only mean something with --template.
_TEMPLATE_ONLY = ("data", "target", "tune")

#: `train` flags a template job refuses: the template is the code.
_CODE_FLAGS = {
    "script": "SCRIPT.py",
    "package_path": "--package-path",
    "module": "--module",
    "config": "--config",
    "hptuning_config": "--hptuning-config",
    "metric": "--metric",
    "goal": "--goal",
    "resume": "--resume",
    "include": "--include",
    "exclude": "--exclude",
    "export": "--export",
    "returns": "--return",
}

#: Tuning flags that need --tune on a template job.
_STUDY_FLAGS = ("trials", "parallel", "max_failed_trials", "algorithm", "early_stopping")


def add_template_options(parser: argparse.ArgumentParser) -> None:
    """The `templates` option group of `train`."""
    add = parser.add_argument_group(
        "templates (train without model code; 'cloudml templates list' shows them)"
    ).add_argument
    add(
        "--template",
        metavar="NAME_OR_DIR",
        help="a template by name, or a folder with a template.yaml "
        "(e.g. --template tabular-regression, --template ./my-template)",
    )
    add(
        "--data",
        metavar="PATH_OR_URI_OR_DF",
        help="the template's data: a file, a glob, an fsspec URI, a folder (images), or in a "
        "notebook the name of a DataFrame, shipped by value (e.g. --data train.csv, --data df)",
    )
    add("--target", metavar="COL", help="the column to predict (e.g. --target label)")
    add(
        "--tune",
        action="store_true",
        help="run a study over the template's own search space (--trials, --parallel, "
        "--early-stopping as for any study; --param NAME=SPACE changes one, NAME=VALUE fixes it)",
    )


def add_template_verb_options(verb: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of `templates VERB`."""
    if verb == "describe":
        parser.add_argument("name", metavar="NAME", help="a template's name or folder")
    add_output_option(parser)


def configured_path() -> list[str]:
    """`c.CloudML.template_path`: the configured folders of user templates."""
    from ..config import CloudML, load_config

    return list(CloudML(config=load_config()).template_path)


def resolve_template(ns: argparse.Namespace, source_dir: str | Path) -> Template:
    """The template of a parsed `train --template`, found once per command."""
    found: Template | None = getattr(ns, "_template", None)
    if found is None:
        from ..templates import get_template

        found = ns._template = get_template(ns.template, configured_path(), source_dir)
    return found


def check_template_flags(ns: argparse.Namespace) -> None:
    """Refuse template flags without --template, and code flags with it."""
    if not getattr(ns, "template", None):
        given = [f"--{f}" for f in _TEMPLATE_ONLY if getattr(ns, f, None)]
        if given:
            raise InvalidSpec(
                f"{', '.join(given)} go with --template NAME (see 'cloudml templates list')"
            )
        return
    for field, flag in _CODE_FLAGS.items():
        if getattr(ns, field, None):
            raise InvalidSpec(f"--template runs the template's own code: drop {flag}")
    if ns.trainer_args:
        raise InvalidSpec("--template takes no trainer arguments after '--': use --param k=v")
    if not ns.tune:
        given = [f"--{f.replace('_', '-')}" for f in _STUDY_FLAGS if getattr(ns, f) is not None]
        if given:
            raise InvalidSpec(f"{', '.join(given)} tune the template: add --tune")


def _split_params(
    template: Template, texts: list[str], tune: bool
) -> tuple[dict[str, Any], dict[str, ParamSpec]]:
    """`--param k=v` flags: fixed values, and search spaces (`k=KIND(ARGS)`, with --tune)."""
    from ..tuning.space import looks_like_space, parse_param

    fixed: dict[str, Any] = {}
    spaces: dict[str, ParamSpec] = {}
    for text in texts:
        name, eq, value = text.partition("=")
        if not eq or not name.strip():
            raise InvalidSpec(f"--param {text!r}: expected NAME=VALUE (e.g. --param max_iter=200)")
        param = template.param(name.strip())
        if looks_like_space(value):
            if not tune:
                raise InvalidSpec(f"--param {text}: a search space needs --tune")
            spaces[param.name] = parse_param(f"{param.name}={value.strip()}")
        else:
            fixed[param.name] = param.value(value.strip())
    return fixed, spaces


def template_tuning(ns: argparse.Namespace, source_dir: str | Path) -> TuningSpec | None:
    """The study of `train --template ... --tune`: the template's search space (less the
    parameters fixed by --param, plus the spaces --param gives), metric and goal."""
    check_template_flags(ns)
    if not ns.tune:
        return None
    template = resolve_template(ns, source_dir)
    fixed, spaces = _split_params(template, ns.param, tune=True)
    space = {p.name: p.space for p in template.params if p.space is not None}
    space = {name: s for name, s in space.items() if name not in fixed} | spaces
    if not space:
        raise InvalidSpec(f"--tune: template {template.name} has no parameter left to tune")
    fields: dict[str, Any] = {
        "max_trials": ns.trials,
        "parallel_trials": ns.parallel,
        "max_failed_trials": ns.max_failed_trials,
        "algorithm": ns.algorithm,
        "early_stopping": ns.early_stopping,
        "seed": ns.seed,
    }
    given = {key: value for key, value in fields.items() if value is not None}
    return TuningSpec(
        params=tuple(space.values()),
        metric=template.metric,
        goal=Goal(template.goal.upper()),
        **given,
    )


def template_code(
    ns: argparse.Namespace,
    source_dir: str | Path,
    user_ns: Mapping[str, Any] | None,
    common: Mapping[str, Any],
    has_cell: bool,
) -> tuple[CodePackage, str, tuple[str, ...], dict[str, str]]:
    """The package, default name, trainer arguments and labels of a template job; the data
    is checked here when it can be read from here (a DataFrame, a local file or folder)."""
    from .. import packaging

    check_template_flags(ns)
    if has_cell:
        raise InvalidSpec("--template runs the template's own code: leave the cell empty")
    template = resolve_template(ns, source_dir)
    fixed, spaces = _split_params(template, ns.param, tune=ns.tune)
    tuned = {p.name for p in template.params if p.space is not None} | set(spaces)
    tuned = tuned - set(fixed) if ns.tune else set()
    values = {p.name: fixed.get(p.name, p.default) for p in template.params if p.name not in tuned}
    target = _target(template, ns.target)
    if not ns.data:
        raise InvalidSpec(f"--template {template.name} needs --data ({template.inputs['data']})")
    frame = _notebook_frame(ns.data, user_ns, source_dir)
    args = [*template.args]
    if frame is not None:
        from ..templates.data import SHIPPED_TABLE

        _check_frame(template, frame, target, values, f"DataFrame {ns.data}")
        with tempfile.TemporaryDirectory(prefix="cloudml-template-") as tmp:
            folder = Path(tmp, "package")
            shutil.copytree(template.package_dir, folder, ignore=_IGNORE)
            frame.to_pickle(folder / SHIPPED_TABLE)
            package = packaging.package_directory(
                folder,
                template.module,
                **{**common, "includes": (SHIPPED_TABLE,)},  # no --include
            )
        args += ["--data", SHIPPED_TABLE]
    else:
        data = _check_data(template, ns.data, target, values, source_dir)
        package = packaging.package_directory(template.package_dir, template.module, **common)
        args += ["--data", data]
    if target is not None:
        args += ["--target", target]
    if ns.seed is not None:
        args += ["--seed", str(ns.seed)]
    args += [f"--{name}={value}" for name, value in values.items()]
    return package, template.name, tuple(args), {TEMPLATE_LABEL: template.name}


_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def _notebook_frame(
    data: str, user_ns: Mapping[str, Any] | None, source_dir: str | Path
) -> Any | None:
    """The notebook DataFrame `--data NAME` names, or None when it names a path; a variable
    of that name that is no DataFrame (and no file of that name) is refused."""
    if user_ns is None or not data.isidentifier() or data not in user_ns:
        return None
    import pandas as pd

    value = user_ns[data]
    if isinstance(value, pd.DataFrame):
        return value
    if os.path.exists(os.path.join(source_dir, data)):
        return None
    raise InvalidSpec(
        f"--data {data}: the notebook variable {data} is a {type(value).__name__}, not a "
        "DataFrame (give a DataFrame, or a path)"
    )


def _target(template: Template, target: str | None) -> str | None:
    if "target" in template.inputs and not target:
        raise InvalidSpec(
            f"--template {template.name} needs --target COL ({template.inputs['target']})"
        )
    if "target" not in template.inputs and target:
        raise InvalidSpec(f"--target: template {template.name} takes none (its labels are given)")
    return target


def _check_frame(
    template: Template, frame: Any, target: str | None, values: Mapping[str, Any], shown_as: str
) -> None:
    from ..templates.data import check_column, check_table

    if template.kind == "image":
        raise InvalidSpec(f"--data {shown_as}: template {template.name} reads an image folder")
    if frame.empty:
        raise InvalidSpec(f"--data {shown_as}: no rows")
    if target is not None:
        check_table(frame, target, template.task, shown_as)
    if "text_column" in values:
        check_column(frame, str(values["text_column"]), "--param text_column", shown_as)


def _check_data(
    template: Template,
    data: str,
    target: str | None,
    values: Mapping[str, Any],
    source_dir: str | Path,
) -> str:
    """`--data` as the job reads it (a local path made absolute), checked when local."""
    from ..templates.data import image_classes, is_local, local_path, read_table

    if not is_local(data):
        return data  # read (and checked) by the job
    path = local_path(data, source_dir)
    if template.kind == "image":
        image_classes(path, data)
    elif os.path.isdir(path):
        raise InvalidSpec(f"--data {data}: a folder; template {template.name} reads a table")
    else:
        _check_frame(template, read_table(path, data), target, values, data)
    return path


def evaluation_report(
    client: Client, job: JobInfo | StudyInfo
) -> tuple[dict[str, Any], bytes | None] | None:
    """The evaluation report (JSON and plot) of a finished template job, or of a template
    study's best trial; None for other jobs or when there is none."""
    import json

    from ..exceptions import NotFound
    from ..models import StudyInfo

    job_id = job.id
    if isinstance(job, StudyInfo):
        if job.best_trial is None or job.best_trial.job_id is None:
            return None
        job_id = job.best_trial.job_id
    elif job.spec is None or TEMPLATE_LABEL not in job.spec.labels:
        return None
    try:
        report = json.loads(client.read_output(job_id, "evaluation.json"))
    except NotFound:
        return None
    try:
        png = client.read_output(job_id, str(report.get("plot") or "evaluation.png"))
    except NotFound:
        png = None
    return report, png


def evaluation_html(client: Any, job: JobInfo | StudyInfo) -> str | None:
    """The evaluation report of a finished template job (or study) as HTML, or None."""
    from ..views.templates import report_html

    found = evaluation_report(client, job)
    return None if found is None else report_html(*found)


def run_templates_command(ns: argparse.Namespace, out: Any) -> int:
    """`templates list|describe NAME`."""
    from ..templates import find_templates, get_template
    from ..views.templates import format_template, format_template_table, template_dict
    from ..views.text import dumps

    as_json = ns.output == "json"
    if ns.template_verb == "list":
        found = list(find_templates(configured_path()).values())
        text = dumps([template_dict(t) for t in found]) if as_json else format_template_table(found)
    else:
        t = get_template(ns.name, configured_path(), os.getcwd())
        text = dumps(template_dict(t, code=True)) if as_json else format_template(t)
    print(text, file=out, flush=True)
    return 0
