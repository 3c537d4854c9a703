"""`%%cloudml_train` and `%cloudml VERB`: parse with the CLI's grammar, call `Client`, render.

Misuse (a bad flag, an invalid spec, code that cannot be packaged) raises `UsageError`; any
other `CloudMLError` is shown as one line, without a traceback, by a custom exception handler.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class

from ..exceptions import CloudMLError, InvalidSpec
from ..models import JobInfo, JobStatus, StudyInfo, TrainSpec, TuningSpec
from ..views.jobs import format_fetched, format_metrics, format_outcome, job_dict
from ..views.studies import format_best_trial
from ..views.text import dumps

if TYPE_CHECKING:
    from ..client import Client
    from ..widgets import JobView, StudyView


class JobFailed(CloudMLError):
    """A job the cell waited for ended without succeeding."""


def show_cloudml_error(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None
) -> list[str]:
    """Custom exception handler: a `CloudMLError` is shown as `Type: message`, no traceback.

    IPython ignores the handler's return value where cells run, so it prints the line itself.
    """
    print(f"{etype.__name__}: {notebook_spelling(str(value))}", file=sys.stderr)
    return []


def notebook_spelling(message: str) -> str:
    """A message's commands as a notebook spells them: `cloudml jobs` -> `%cloudml jobs`."""
    return message.replace("`cloudml ", "`%cloudml ")


@contextmanager
def _usage_errors() -> Iterator[None]:
    """Turn a user's mistake (`InvalidSpec`) into IPython's `UsageError`."""
    try:
        yield
    except InvalidSpec as exc:
        raise UsageError(notebook_spelling(str(exc))) from None


def _parse(
    parse: Callable[[Sequence[str]], argparse.Namespace], line: str
) -> argparse.Namespace | None:
    """Parse a magic's line; None once `--help` was shown."""
    from ..commands.grammar import HelpRequested

    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"cannot split the line into arguments: {exc}") from None
    try:
        with _usage_errors():
            return parse(tokens)
    except HelpRequested as exc:
        print(exc.text, end="")
        return None


def help_without_a_body(lines: list[str]) -> list[str]:
    """`%%cloudml_train --help` (or `--template NAME ...`, which needs no code) alone in a cell
    runs: IPython refuses a cell magic with an empty body before the magic is called, so such
    a cell becomes the line magic."""
    if (
        not lines
        or not lines[0].startswith("%%cloudml_train")
        or any(line.strip() for line in lines[1:])
    ):
        return lines
    words = lines[0].split()
    if not {"--help", "-h", "--template"} & set(words):
        return lines
    return [lines[0][1:].rstrip("\n") + "\n"]


@magics_class
class CloudMLMagics(Magics):
    """`%%cloudml_train` runs a cell as a training job; `%cloudml` inspects jobs."""

    def __init__(self, shell: Any = None, client: Client | None = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._client = client
        if shell is not None:
            shell.set_custom_exc((CloudMLError,), show_cloudml_error)

    @property
    def client(self) -> Client:
        """The Client of this kernel, made on first use (loading the extension stays cheap)."""
        if self._client is None:
            from ..client import Client

            self._client = Client()
        return self._client

    @client.setter
    def client(self, client: Client) -> None:
        self._client = client

    def _client_for(self, ns: argparse.Namespace) -> Client:
        """This kernel's Client, or for a dry run naming `--backend` one over that backend (a
        notebook runs and serves only on the backend it was configured with)."""
        if not getattr(ns, "backend", None):
            return self.client
        if not ns.dry_run:
            raise InvalidSpec(
                "--backend in a notebook only goes with --dry-run; to use another backend set "
                'c.CloudML.backend = "..." (or $CLOUDML_BACKEND) and restart the kernel'
            )
        from ..client import Client

        return Client(backend_name=ns.backend)

    @property
    def _user_ns(self) -> dict[str, Any]:
        if self.shell is None:
            raise UsageError("%%cloudml_train runs inside IPython")
        return self.shell.user_ns

    @line_cell_magic
    def cloudml_train(self, line: str, cell: str | None = None) -> None:
        """Run this cell as a training job: `%%cloudml_train --workers 2 --gpus 1 -- --epochs 3`.

        Returns at once with a live view; `--wait` blocks (interrupt to cancel the job),
        `--dry-run` shows what would ship, `--help` lists every option. As a line magic it runs
        SCRIPT.py or a package (`%cloudml_train train.py --wait`), like `%cloudml train`.
        """
        from ..commands.grammar import parse_verb

        prog = "%cloudml_train" if cell is None else "%%cloudml_train"
        ns = _parse(lambda tokens: parse_verb("train", tokens, prog), line)
        if ns is not None:
            self._train(ns, cell)

    @line_magic
    def cloudml_deploy(self, line: str) -> None:
        """Serve a model as an online endpoint with replicas: `%cloudml_deploy iris --model
        job:iris-3f9a1c/model.joblib --framework sklearn --replicas 2`; `--help` lists every
        option; `--dry-run --backend kubernetes --output yaml` prints the manifests. The same
        as `%cloudml models deploy ...`."""
        from ..commands.grammar import parse_verb

        ns = _parse(lambda tokens: parse_verb("models deploy", tokens, "%cloudml_deploy"), line)
        if ns is not None:
            ns.verb, ns.model_verb = "models", "deploy"
            self._models(ns)

    def _models(self, ns: argparse.Namespace) -> None:
        from ..commands.runners import (
            DEPLOYMENT_VERBS,
            change_deployment,
            run_deploy_dry_run,
            run_models_command,
        )

        with _usage_errors():
            if ns.model_verb == "deploy" and ns.dry_run:
                run_deploy_dry_run(ns, lambda: self._client_for(ns), sys.stdout)
                return
            if ns.model_verb == "deploy":
                self._client_for(ns)  # refuses --backend
            if ns.model_verb not in DEPLOYMENT_VERBS or ns.output != "text":
                run_models_command(self.client, ns, sys.stdout)
                return
            info = change_deployment(self.client, ns)
        from ..widgets import deployment_widget

        # one output: the live view, headed by what was done (a deploy's outcome)
        deployment_widget(self.client, info.name, outcome=info.outcome).show()

    @line_magic
    def cloudml_predict(self, line: str) -> None:
        """Batch prediction as a job: `%cloudml_predict --model job:iris-3f9a1c/model.joblib
        --framework sklearn --input-paths 'in-*.json' --output-path out/ --workers 2 --wait`;
        the same as `%cloudml predict batch ...`; `--help` lists every option."""
        from ..commands.grammar import parse_verb

        ns = _parse(lambda tokens: parse_verb("predict batch", tokens, "%cloudml_predict"), line)
        if ns is not None:
            self._predict(ns)

    def _predict(self, ns: argparse.Namespace) -> None:
        """Submit, show the live job view; with --wait, block (an interrupt cancels the job)
        and print the summary: rows, errors, output folder, how to load the results."""
        from ..commands.predict_flags import build_batch_spec
        from ..views.batch import format_batch_submitted, format_batch_summary

        with _usage_errors():
            self._client_for(argparse.Namespace(backend=ns.backend, dry_run=False))
            if ns.output == "json":  # as in a terminal: JSON only, no live view
                from ..commands.predict_runner import run_predict_command

                if run_predict_command(self.client, ns, sys.stdout) != 0:
                    raise JobFailed("the batch prediction did not succeed (see its JSON)")
                return
            job = self.client.submit_batch_prediction(build_batch_spec(ns))
        print(format_batch_submitted(self.client.batch_prediction(job.id)))
        self._show(job.id)
        if not ns.wait:
            return
        print(f"waiting for job {job.id}; interrupt the kernel to cancel it")
        try:
            self.client.wait(job.id)
        except KeyboardInterrupt:
            self.client.cancel(job.id)
            print(f"interrupted: cancelled job {job.id}")
            return
        info = self.client.batch_prediction(job.id)
        print(format_batch_summary(info))
        if info.job.status is not JobStatus.SUCCEEDED:
            raise JobFailed(format_outcome(info.job))

    @line_magic
    def cloudml(self, line: str) -> None:
        """Inspect jobs: `%cloudml jobs`, `describe JOB`, `logs JOB -f`, `cancel JOB`,
        `delete JOB`, `wait JOB`, `fetch JOB`, `tensorboard JOB...`. `%cloudml --help` lists
        the commands."""
        from ..commands.grammar import parse_command
        from ..commands.runners import run_job_command

        ns = _parse(lambda tokens: parse_command(tokens, prog="%cloudml"), line)
        if ns is None:
            return
        if ns.verb == "train":
            self._train(ns, None)
        elif ns.verb == "studies":
            from ..commands.runners import run_study_command

            with _usage_errors():
                run_study_command(self.client, ns, sys.stdout)
        elif ns.verb == "fetch":
            with _usage_errors():
                self._fetch(self.client.find(ns.job).id)
        elif ns.verb in ("hub", "local"):  # as in a terminal: manifests, the keeper's unit
            from ..commands.runners import run_hub_command, run_local_command

            with _usage_errors():
                (run_hub_command if ns.verb == "hub" else run_local_command)(ns, sys.stdout)
        elif ns.verb == "templates":
            from ..commands.template_flags import run_templates_command

            with _usage_errors():
                run_templates_command(ns, sys.stdout)
        elif ns.verb == "models":
            self._models(ns)
        elif ns.verb == "predict":
            self._predict(ns)
        elif ns.verb == "tensorboard" and ns.job and ns.output == "text":
            self._tensorboard(ns.job)
        elif ns.verb == "tensorboard":
            from ..commands.runners import run_tensorboard_command

            with _usage_errors():
                run_tensorboard_command(self.client, ns, sys.stdout)
        elif ns.verb == "wait":
            self._wait(self.client.find(ns.job).id, timeout=ns.timeout, output=ns.output)
        elif ns.verb == "metrics" and ns.output == "text":
            self._metrics(self.client.find(ns.job).id)
        else:
            try:
                with _usage_errors():
                    run_job_command(self.client, ns, sys.stdout)
            except KeyboardInterrupt:
                if ns.verb != "logs":
                    raise
                print(f"stopped following; job {ns.job} keeps running")

    # --- the steps ----------------------------------------------------------------------------

    def _train(self, ns: argparse.Namespace, cell: str | None) -> None:
        from ..commands.runners import config_notes, run_train_dry_run, say_ignored
        from ..commands.study_flags import build_tuning_spec
        from ..commands.train_spec import build_train_spec

        with _usage_errors():
            spec = build_train_spec(ns, cell=cell, source_dir=os.getcwd(), user_ns=self._user_ns)
            tuning = build_tuning_spec(ns, os.getcwd())
            notes = config_notes(ns, os.getcwd())
            if ns.dry_run:
                client = lambda: self._client_for(ns)  # noqa: E731
                run_train_dry_run(spec, tuning, ns.output, client, sys.stdout, notes)
                return
            say_ignored(notes, sys.stdout)
            self._client_for(ns)  # refuses --backend
            if tuning is not None:
                if spec.returns:
                    raise InvalidSpec(
                        "--return works with single jobs; a study's trials are "
                        "jobs: fetch from the best one with %cloudml fetch JOB"
                    )
                self._tune(spec, tuning, ns.wait)
                return
            job = self.client.submit(spec)
        view = self._show(job.id)
        if not ns.wait:
            if spec.returns:
                print(
                    f"run %cloudml fetch {job.id} when it succeeds to load {_names(spec.returns)}"
                )
            return
        print(f"waiting for job {job.id}; interrupt the kernel to cancel it")
        try:
            final = self.client.wait(job.id)
        except KeyboardInterrupt:
            self.client.cancel(job.id)
            print(f"interrupted: cancelled job {job.id}")
            return
        _settle(view)
        self._finish(final)  # a template job's view shows its evaluation report as it ends
        if spec.returns:
            self._fetch(job.id)

    def _tune(self, spec: TrainSpec, tuning: TuningSpec, wait: bool) -> None:
        from ..widgets import study_widget

        study = self.client.submit_study(spec, tuning)
        view = study_widget(self.client, study.id)
        view.show()
        if not wait:
            return
        print(f"waiting for study {study.id}; interrupt the kernel to cancel it")
        try:
            self.client.wait(study.id)
        except KeyboardInterrupt:
            self.client.cancel_study(study.id)
            print(f"interrupted: cancelled study {study.id}")
            return
        _settle(view)
        final = self.client.get_study(study.id)
        if final.best_trial is None or final.status is not JobStatus.SUCCEEDED:
            raise JobFailed(
                f"study {final.id} {final.status.value}: {final.reason or 'no successful trial'}"
            )
        print(format_best_trial(final, final.best_trial))
        self._evaluation(final)

    def _evaluation(self, study: StudyInfo) -> None:
        """A template study's evaluation report (its best trial's), inline."""
        from IPython.display import HTML, display

        from ..commands.template_flags import evaluation_report
        from ..views.templates import report_html

        found = evaluation_report(self.client, study)
        if found is not None:
            display(HTML(report_html(*found)))

    def _metrics(self, job_id: str) -> None:
        """The job's curves as a plot, then the table of last values."""
        from IPython.display import Image, display

        from ..widgets.plots import metric_curves_png

        scalars = self.client.metrics(job_id).scalars
        if any(scalars.values()):
            display(Image(metric_curves_png(scalars, title=job_id)))
        print(format_metrics(scalars))

    def _show(self, job_id: str) -> JobView:
        from ..widgets import job_widget

        view = job_widget(self.client, job_id)
        view.show()
        return view

    def _wait(self, job_id: str, timeout: float | None, output: str) -> None:
        try:
            job = self.client.wait(job_id, timeout=timeout)
        except KeyboardInterrupt:
            print(f"stopped waiting; job {job_id} keeps running")
            return
        if output == "json":
            print(dumps(job_dict(job)))
        if not job.status.terminal:
            print(f"{format_outcome(job)}; stopped waiting after the timeout")
            return
        self._finish(job, quiet=output == "json")

    def _finish(self, job: JobInfo, quiet: bool = False) -> None:
        """Say how the job ended; fail the cell unless it SUCCEEDED."""
        if job.status is not JobStatus.SUCCEEDED:
            raise JobFailed(format_outcome(job))
        if not quiet:
            print(format_outcome(job))

    def _tensorboard(self, ids: list[str]) -> None:
        """Start or reuse a TensorBoard and show it inline, through the Jupyter server."""
        from IPython.display import display

        from ..views.tensorboards import notebook_bundle

        with _usage_errors():
            board = self.client.tensorboard(ids)
        display(notebook_bundle(board), raw=True)

    def _fetch(self, job_id: str) -> None:
        values = self.client.fetch(job_id)
        self._user_ns.update(values)
        print(format_fetched(job_id, values, self.client.missing_returns(job_id, values)))


def _settle(view: JobView | StudyView) -> None:
    """Show the end the caller waited for at once (not a poll interval later)."""
    if view.watcher is not None:
        view.watcher.settle()


def _names(names: Any) -> str:
    return ", ".join(names)
