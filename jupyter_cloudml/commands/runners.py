"""The command runners: a parsed command in, Client calls, a view printed, an exit code out.

The `cloudml` console script and the magics both run commands through these."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TextIO

from ..commands.train_spec import build_job_query, build_train_spec, training_config
from ..exceptions import InvalidSpec, MissingExtra, NotFound
from ..models import (
    DeploymentInfo,
    JobInfo,
    JobQuery,
    JobStatus,
    StudyInfo,
    TrainSpec,
    TuningSpec,
    to_dict,
)
from ..views.dry_run import format_dry_run, format_preview
from ..views.jobs import (
    format_job,
    format_job_table,
    format_log_line,
    format_metrics,
    format_outcome,
    job_dict,
    job_list_dict,
    log_line_json,
)
from ..views.quota import format_quota
from ..views.studies import (
    format_best_trial,
    format_study,
    format_study_table,
    format_trial_counts,
    format_trials_table,
    study_dict,
)
from ..views.tensorboards import format_tensorboard, format_tensorboards
from ..views.text import dumps
from .study_flags import build_tuning_spec

if TYPE_CHECKING:
    from ..client import Client
    from .ai_platform import Note

PROG = "cloudml"


def _say(out: TextIO, text: str) -> None:
    print(text, file=out, flush=True)


def exit_code(job: JobInfo) -> int:
    """0 if the job SUCCEEDED, else 1: the exit code of `wait` and `train --wait`."""
    return 0 if job.status is JobStatus.SUCCEEDED else 1


def run_job_command(client: Client, ns: argparse.Namespace, out: TextIO) -> int:
    """Run a parsed list/describe/logs/cancel/delete/wait command; returns the exit code."""
    as_json = getattr(ns, "output", "text") == "json"
    if ns.verb == "list":
        page = client.list(build_job_query(ns))
        if as_json:
            _say(out, dumps(job_list_dict(page)))
        else:
            command = f"{_program(ns)} jobs{_list_filters(ns)}"
            _say(out, format_job_table(page, offset=ns.offset, command=command))
    elif ns.verb == "describe":
        job = client.find(ns.job)
        events = client.events(job.id)
        if as_json:
            _say(out, dumps({"job": job_dict(job), "events": to_dict(events)}))
        else:
            _say(out, format_job(job, events))
    elif ns.verb == "logs":
        job_id = client.find(ns.job).id
        for line in client.logs(job_id, replica=ns.replica, follow=ns.follow, tail=ns.tail):
            _say(out, log_line_json(line) if as_json else format_log_line(line))
    elif ns.verb == "metrics":
        scalars = client.metrics(client.find(ns.job).id).scalars
        _say(out, dumps(to_dict(scalars)) if as_json else format_metrics(scalars))
    elif ns.verb == "cancel":
        for ref in ns.job:
            job = client.cancel(client.find(ref).id)
            if job.status is JobStatus.CANCELLED:
                _say(out, f"cancelled job {job.id}")
            elif job.status.terminal:
                _say(out, f"job {job.id} already {job.status.value}")
            else:
                _say(out, f"cancelling job {job.id} ({job.status.value})")
    elif ns.verb == "delete":
        for ref in ns.job:
            job_id = client.find(ref).id
            client.delete(job_id)
            _say(out, f"deleted job {job_id}")
    elif ns.verb == "quota":
        quota = client.quota()
        _say(out, dumps(quota) if as_json else format_quota(quota))
    elif ns.verb == "wait":
        job = client.wait(client.find(ns.job).id, timeout=ns.timeout)
        if as_json:
            _say(out, dumps(job_dict(job)))
        elif job.status.terminal:
            _say(out, format_outcome(job))
        else:
            _say(out, f"{format_outcome(job)}; stopped waiting after the timeout")
        return exit_code(job)
    else:
        raise InvalidSpec(f"{ns.verb!r} is not a job command")
    return 0


def _program(ns: argparse.Namespace) -> str:
    """How the command was spelled: `cloudml`, or `%cloudml` in a notebook."""
    return str(getattr(ns, "program", PROG))


def _list_filters(ns: argparse.Namespace) -> str:
    """The filters of a `jobs list` as flags, for the hint that shows the next page."""
    statuses = [s.value for group in ns.status for s in group]
    flags = [f" --status {' '.join(dict.fromkeys(statuses))}"] if statuses else []
    flags += [f" --name {shlex.quote(ns.name)}"] if ns.name else []
    flags += [f" --label {k}={shlex.quote(v)}" for k, v in ns.label]
    flags += [f" --limit {ns.limit}"] if ns.limit != 20 else []
    return "".join(flags)


def run_study_command(client: Client, ns: argparse.Namespace, out: TextIO) -> int:
    """Run a parsed `studies VERB` command; returns the exit code."""
    as_json = getattr(ns, "output", "text") == "json"
    verb = ns.study_verb
    if verb == "list":
        studies, total = client.page_studies(JobQuery(limit=ns.limit, offset=ns.offset))
        if as_json:
            _say(out, dumps([study_dict(s) for s in studies]))
        else:
            command = f"{_program(ns)} studies"
            _say(out, format_study_table(studies, None, total, ns.offset, command))
        return 0
    study_id = client.find(ns.study, "study").id
    if verb == "cancel":
        study = client.cancel_study(study_id)
        _say(out, f"study {study.id} {study.status.value}")
        return 0
    study = client.get_study(study_id)
    if verb == "describe":
        _say(out, dumps(study_dict(study)) if as_json else format_study(study))
    elif verb == "trials":
        if as_json:
            _say(out, dumps([to_dict(t) for t in study.trials]))
        else:
            _say(out, format_trials_table(study, sort=ns.sort))
    elif verb == "best":
        best = study.best_trial
        if best is None:
            progress = format_trial_counts(study)
            raise NotFound(f"study {study.id} has no successful trial yet ({progress})")
        if as_json:
            _say(
                out,
                dumps(
                    {
                        "study": study.id,
                        "metric": study.tuning.metric,
                        "goal": study.tuning.goal.value,
                        "trial": to_dict(best),
                    }
                ),
            )
        else:
            _say(out, format_best_trial(study, best))
    return 0


def _train(ns: argparse.Namespace, client: Callable[[], Client], out: TextIO) -> int:
    spec = build_train_spec(ns, cell=None, source_dir=os.getcwd(), user_ns=None)
    tuning = build_tuning_spec(ns, os.getcwd())
    notes = config_notes(ns, os.getcwd())
    as_json = ns.output == "json"
    if ns.dry_run:
        return run_train_dry_run(spec, tuning, ns.output, client, out, notes)
    say_ignored(notes, sys.stderr)
    if tuning is not None:
        return _tune(client(), spec, tuning, ns, out)
    backend = client()
    job = backend.submit(spec)
    if not as_json:
        _say(out, f"submitted job {job.id}")
    if not ns.wait:
        if as_json:
            _say(out, dumps(job_dict(job)))
        else:
            _say(out, f"follow its logs with:\n  {PROG} jobs logs {job.id} -f")
        return 0
    try:
        if not as_json:
            for line in backend.logs(job.id, follow=True):
                _say(out, format_log_line(line))
        final = backend.wait(job.id)
    except KeyboardInterrupt:
        print(
            f"\nstopped following; job {job.id} keeps running "
            f"(stop it with: {PROG} jobs cancel {job.id})",
            file=sys.stderr,
        )
        return 130
    _say(out, dumps(job_dict(final)) if as_json else format_outcome(final))
    if not as_json:
        say_evaluation(backend, final, out)
    return exit_code(final)


def run_train_dry_run(
    spec: TrainSpec,
    tuning: TuningSpec | None,
    output: str,
    client: Callable[[], Client],
    out: TextIO,
    notes: Sequence[Note] = (),
) -> int:
    """`train --dry-run`: the job (and study) and its files, or with `--output yaml` what the
    backend would create (the only case that needs a Client); with `--config`, what became of
    each of its fields."""
    if output == "yaml":
        comments = "".join(f"# config {note}\n" for note in notes)
        _say(out, comments + format_preview(client().preview(spec, tuning)))
    else:
        _say(out, format_dry_run(spec, output, tuning, notes))
    return 0


def config_notes(ns: argparse.Namespace, source_dir: str) -> list[Note]:
    """What became of each field of a `train --config` file (none without one)."""
    config = training_config(ns, source_dir)
    return [] if config is None else config.notes


def say_ignored(notes: Sequence[Note], out: TextIO) -> None:
    """One line for each config field that means nothing here, so none is dropped unsaid."""
    for note in notes:
        if note.verdict == "ignored":
            _say(out, f"note: {note}")


def _tune(
    client: Client, spec: TrainSpec, tuning: TuningSpec, ns: argparse.Namespace, out: TextIO
) -> int:
    """Submit a study; with --wait, wait for it and print the best trial."""
    as_json = ns.output == "json"
    study = client.submit_study(spec, tuning)
    if not as_json:
        _say(
            out,
            f"submitted study {study.id}: {tuning.max_trials} trials, "
            f"{tuning.parallel_trials} at a time",
        )
    if not ns.wait:
        _say(
            out,
            dumps(study_dict(study))
            if as_json
            else f"follow it with:\n  {PROG} studies describe {study.id}",
        )
        return 0
    try:
        client.wait(study.id)
    except KeyboardInterrupt:
        print(
            f"\nstopped waiting; study {study.id} keeps running (stop it with: "
            f"{PROG} studies cancel {study.id})",
            file=sys.stderr,
        )
        return 130
    study = client.get_study(study.id)
    if as_json:
        _say(out, dumps(study_dict(study)))
    else:
        _say(out, format_study(study))
        say_evaluation(client, study, out)
    ok = study.status is JobStatus.SUCCEEDED and study.best_trial is not None
    return 0 if ok else 1


def say_evaluation(client: Client, job: JobInfo | StudyInfo, out: TextIO) -> None:
    """A finished template job's evaluation report (a study's: its best trial's), as text."""
    from ..views.templates import format_report
    from .template_flags import evaluation_report

    found = evaluation_report(client, job)
    if found is not None:
        _say(out, format_report(found[0]))


def run(ns: argparse.Namespace, client: Callable[[], Client], out: TextIO) -> int:
    """Run any parsed CLI command; `client` makes the Client when one is needed."""
    if ns.verb == "fetch":
        raise InvalidSpec(
            f"fetch loads variables into a notebook: run '%cloudml fetch {ns.job}' in one"
        )
    if ns.verb == "train":
        return _train(ns, client, out)
    if ns.verb == "studies":
        return run_study_command(client(), ns, out)
    if ns.verb == "hub":
        return run_hub_command(ns, out)
    if ns.verb == "local":
        return run_local_command(ns, out)
    if ns.verb == "templates":
        from .template_flags import run_templates_command

        return run_templates_command(ns, out)
    if ns.verb == "tensorboard":
        return run_tensorboard_command(client(), ns, out)
    if ns.verb == "predict":
        from .predict_runner import run_predict_command

        return run_predict_command(client(), ns, out)
    if ns.verb == "models":
        if ns.model_verb == "deploy" and _deploy_dry_run(ns):
            return run_deploy_dry_run(ns, client, out)
        return run_models_command(client(), ns, out)
    return run_job_command(client(), ns, out)


def _deploy_dry_run(ns: argparse.Namespace) -> bool:
    """Whether a parsed `models deploy` is a dry run; the dry-run-only flags otherwise refused."""
    if not ns.dry_run and (ns.engine is not None or ns.output == "yaml"):
        flag = "--engine" if ns.engine is not None else "--output yaml"
        raise InvalidSpec(
            f"{flag} goes with --dry-run --backend kubernetes: it chooses the manifests "
            "a dry run prints, not how a deployment is served"
        )
    return bool(ns.dry_run)


def run_deploy_dry_run(ns: argparse.Namespace, client: Callable[[], Client], out: TextIO) -> int:
    """`models deploy --dry-run`: the spec, or with `--output yaml` what the backend would
    create (the only case that needs a Client; `--engine` is checked by the backend)."""
    from ..views.deployments import format_deploy_dry_run
    from .deploy_flags import build_deploy_spec

    spec = build_deploy_spec(ns)
    if ns.output == "yaml" or ns.engine is not None:
        preview = client().preview_deployment(spec, ns.engine)
        if ns.output == "yaml":
            _say(out, format_preview(preview))
            return 0
    _say(out, format_deploy_dry_run(spec, ns.output))
    return 0


def run_models_command(client: Client, ns: argparse.Namespace, out: TextIO) -> int:
    """`models list|describe|deploy|predict|update|rollback|scale|undeploy`."""
    from ..views.deployments import deployment_dict, format_deployment, format_deployment_table

    verb = ns.model_verb
    as_json = getattr(ns, "output", "text") == "json"
    if verb == "list":
        found = client.deployments()
        _say(
            out,
            dumps([deployment_dict(d) for d in found])
            if as_json
            else format_deployment_table(found),
        )
        return 0
    if verb == "undeploy":
        client.undeploy(ns.name, ns.version)
        _say(out, f"removed {ns.name}" + (f" version {ns.version}" if ns.version else ""))
        return 0
    if verb == "predict":
        predictions = client.predict(ns.name, ns.data, version=ns.version, protocol=ns.protocol)
        _say(out, json.dumps(predictions) if as_json else "\n".join(map(str, predictions)))
        return 0
    if verb == "deploy" and _deploy_dry_run(ns):
        return run_deploy_dry_run(ns, lambda: client, out)
    info = change_deployment(client, ns)
    _say(out, dumps(deployment_dict(info)) if as_json else format_deployment(info))
    return 0


#: The `models` verbs that answer with the deployment as it is then (`change_deployment`).
DEPLOYMENT_VERBS = ("deploy", "update", "rollback", "scale", "describe")


def change_deployment(client: Client, ns: argparse.Namespace) -> DeploymentInfo:
    """Run `models deploy|update|rollback|scale|describe`; the deployment as it is then (its
    `outcome` says what a deploy did)."""
    from .deploy_flags import build_deploy_spec

    verb = ns.model_verb
    if verb == "deploy":
        return client.deploy(build_deploy_spec(ns))
    if verb == "update":
        return client.set_traffic(ns.name, ns.traffic)
    if verb == "rollback":
        return client.rollback(ns.name)
    if verb == "scale":
        return client.scale(ns.name, ns.version, ns.replicas)
    return client.get_deployment(ns.name)


def run_tensorboard_command(client: Client, ns: argparse.Namespace, out: TextIO) -> int:
    """`tensorboard JOB...` (start or reuse), `--list`, `--stop ID`."""
    as_json = ns.output == "json"
    if ns.stop:
        client.stop_tensorboard(ns.stop)
        _say(out, f"stopped TensorBoard {ns.stop}")
    elif ns.list:
        boards = client.tensorboards()
        _say(out, dumps(boards) if as_json else format_tensorboards(boards))
    else:
        board = client.tensorboard(ns.job)
        _say(out, dumps(board) if as_json else format_tensorboard(board))
    return 0


def run_hub_command(ns: argparse.Namespace, out: TextIO) -> int:
    """`hub manifests` (a tenant's objects and notebook pod) and `hub rbac` (the hub's own
    rights), as YAML documents or JSON."""
    if ns.hub_verb == "rbac":
        from ..hub.tenant import hub_rbac_objects

        objects = hub_rbac_objects(ns.hub_namespace)
        header = f"# the hub's rights over tenant namespaces (its release in {ns.hub_namespace})"
    else:
        try:
            from ..hub.manifests import preview
        except ModuleNotFoundError as exc:
            raise MissingExtra(f"'{PROG} hub manifests'", exc.name, "hub") from None
        found = preview(ns.user, ns.profile, ns.group, ns.config)
        objects = found.objects
        header = (
            f"# JupyterHub user {found.user!r}, namespace {found.namespace}, "
            f"profile {found.profile}"
        )
    if ns.output == "json":
        _say(out, dumps(objects))
        return 0
    import yaml

    _say(out, header + "\n" + yaml.safe_dump_all(objects, sort_keys=False).rstrip())
    return 0


def run_local_command(ns: argparse.Namespace, out: TextIO) -> int:
    """`local service install|uninstall|status`: on the local backend whatever backend is
    configured, over the `--home` given or else the configured home."""
    from ..client import Client
    from ..config import load_config
    from ..views.service import format_service

    config = load_config()
    if ns.home:
        config.LocalBackend.home = os.path.abspath(os.path.expanduser(ns.home))
    client = Client(config=config, backend_name="local")
    if ns.action == "install":
        info = client.install_service()
    elif ns.action == "uninstall":
        info = client.uninstall_service()
    else:
        info = client.service_status()
    as_json = ns.output == "json"
    _say(out, dumps(info) if as_json else format_service(info, details=ns.action == "status"))
    return 0
