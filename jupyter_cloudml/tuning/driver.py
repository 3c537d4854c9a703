"""The study driver: Optuna proposes trials, trials run as ordinary jobs, metrics decide.

Runs as the entry module of a study's driver job (`python -m jupyter_cloudml.tuning.driver`),
talks to the backend only through `Client`, and keeps the study in an Optuna journal file in
its job dir: a driver that is killed and restarted resumes, re-attaching to trials still
running and never repeating a finished one. After each change it writes `study.json` (the
trials, the best one) into its output dir, which is what clients read.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

from ..client import Client
from ..models import (
    Algorithm,
    JobStatus,
    Scalar,
    TrainSpec,
    TrialInfo,
    TrialStatus,
    TuningSpec,
    from_dict,
    to_dict,
)
from .params import PARAMS_ENV
from .space import grid_size
from .study import (
    KIND_LABEL,
    STUDY_LABEL,
    SUMMARY_FILE,
    TRIAL_LABEL,
    TRIAL_SPEC_FILE,
    TUNING_ENV,
)

POLL_SECONDS = 0.2
JOURNAL_FILE = "optuna-journal.log"
#: Without maxFailedTrials, a study stops when its first trials all fail: the trainer is broken.
FIRST_TRIALS_THAT_MAY_ALL_FAIL = 3


@dataclasses.dataclass
class Running:
    """A trial whose job has not ended yet."""

    trial: Any  # optuna.trial.Trial
    job_id: str
    cursor: str | None = None
    reported: set[int] = dataclasses.field(default_factory=set)
    last: Scalar | None = None
    tags: set[str] = dataclasses.field(default_factory=set)


def trial_name(study_name: str, number: int) -> str:
    suffix = f"-t{number}"
    return study_name[: 40 - len(suffix)].rstrip("-") + suffix


class Driver:
    """Runs one study to its end."""

    def __init__(
        self,
        client: Client,
        study_id: str,
        tuning: TuningSpec,
        template: TrainSpec,
        job_dir: Path,
        output_dir: Path,
    ) -> None:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        from .optuna_glue import direction, make_pruner, make_sampler

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.client = client
        self.study_id = study_id
        self.tuning = tuning
        self.template = template
        self.output_dir = output_dir
        job_dir.mkdir(parents=True, exist_ok=True)
        storage = JournalStorage(JournalFileBackend(str(job_dir / JOURNAL_FILE)))
        self.study = optuna.create_study(
            study_name=study_id,
            storage=storage,
            sampler=make_sampler(tuning),
            pruner=make_pruner(tuning),
            direction=direction(tuning),
            load_if_exists=True,
        )
        self.running: dict[int, Running] = {}
        self.cancelled = False
        self.failed_reason = ""
        self.max_trials = tuning.max_trials
        if tuning.algorithm is Algorithm.GRID:  # a grid has so many points, no more
            self.max_trials = min(self.max_trials, grid_size(tuning.params))
        self.overhead = 0.0  # seconds the driver itself spent, excluding starting trial jobs
        self._last_summary = ""

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        self._resume()
        while True:
            self._poll()
            if self.cancelled:
                self._stop_running("cancelled with the study")
                break
            if not self.failed_reason:
                self.failed_reason = self._failure_reason()
                if self.failed_reason:
                    self._stop_running("the study stopped: " + self.failed_reason)
            if not self.failed_reason:
                self._launch()
            self._write_summary()
            if not self.running and (self.failed_reason or self._launched() >= self.max_trials):
                break
            time.sleep(POLL_SECONDS)
        self._write_summary()

    def _launched(self) -> int:
        return sum(1 for t in self.study.get_trials(deepcopy=False) if "job_id" in t.user_attrs)

    def _resume(self) -> None:
        """Re-attach to trials a previous driver left running; fail those it never submitted."""
        import optuna
        from optuna.trial import TrialState

        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
            job_id = frozen.user_attrs.get("job_id")
            if job_id is None:
                self.study.tell(trial, state=TrialState.FAIL)
                continue
            running = Running(trial, job_id, reported=set(frozen.intermediate_values))
            self.running[frozen.number] = running

    def _launch(self) -> None:
        from .optuna_glue import suggest
        from .space import trainer_flags

        while (
            len(self.running) < self.tuning.parallel_trials and self._launched() < self.max_trials
        ):
            t0 = time.perf_counter()
            trial = self.study.ask()
            values = suggest(trial, self.tuning.params)
            spec = dataclasses.replace(
                self.template,
                name=trial_name(self.template.name, trial.number),
                args=(*self.template.args, *trainer_flags(values)),
                env={
                    **self.template.env,
                    PARAMS_ENV: json.dumps(values),
                    "CLOUDML_STUDY_ID": self.study_id,
                    "CLOUDML_TRIAL": str(trial.number),
                },
                labels={
                    **self.template.labels,
                    KIND_LABEL: "trial",
                    STUDY_LABEL: self.study_id,
                    TRIAL_LABEL: str(trial.number),
                },
            )
            t1 = time.perf_counter()
            job = self.client.submit(spec)
            t2 = time.perf_counter()
            trial.set_user_attr("params", values)
            trial.set_user_attr("job_id", job.id)
            trial.set_user_attr("started", time.time())
            self.running[trial.number] = Running(trial, job.id)
            self.overhead += (t1 - t0) + (time.perf_counter() - t2)
            print(f"trial {trial.number}: job {job.id} {json.dumps(values)}", flush=True)

    def _poll(self) -> None:
        for number, running in list(self.running.items()):
            job = self.client.get(running.job_id)
            update = self.client.metrics(running.job_id, running.cursor)
            t0 = time.perf_counter()
            running.cursor = update.cursor
            running.tags.update(update.scalars)
            pruned = self._report(running, update.scalars.get(self.tuning.metric, ()))
            self.overhead += time.perf_counter() - t0
            if pruned and not job.status.terminal:
                self.client.cancel(running.job_id)
                self._finish(
                    number,
                    TrialStatus.PRUNED,
                    "pruned: its intermediate values "
                    "were worse than the other trials' at the same step",
                )
            elif job.status.terminal:
                self._finish_job(number, job.status, job.reason)

    def _report(self, running: Running, values: Any) -> bool:
        """Feed new intermediate values to Optuna; whether the trial should be pruned."""
        new = False
        for scalar in sorted(values, key=lambda s: (s.step, s.wall_time)):
            if running.last is None or (scalar.step, scalar.wall_time) >= (
                running.last.step,
                running.last.wall_time,
            ):
                running.last = scalar
            if scalar.step not in running.reported and math.isfinite(scalar.value):
                running.trial.report(scalar.value, scalar.step)
                running.reported.add(scalar.step)
                new = True
        return new and running.trial.should_prune()

    def _finish_job(self, number: int, status: JobStatus, reason: str) -> None:
        running = self.running[number]
        if status is JobStatus.SUCCEEDED:
            if running.last is None:
                seen = ", ".join(sorted(running.tags)) or "none"
                self._finish(
                    number,
                    TrialStatus.FAILED,
                    f"metric {self.tuning.metric!r} was never reported (reported: {seen})",
                )
            else:
                self._finish(number, TrialStatus.SUCCEEDED, "", running.last.value)
        elif status is JobStatus.CANCELLED:
            self._finish(number, TrialStatus.CANCELLED, reason)
        else:
            self._finish(number, TrialStatus.FAILED, reason)

    def _finish(
        self, number: int, status: TrialStatus, reason: str, value: float | None = None
    ) -> None:
        from optuna.trial import TrialState

        running = self.running.pop(number)
        trial = running.trial
        trial.set_user_attr("status", status.value)
        trial.set_user_attr("reason", reason)
        trial.set_user_attr("finished", time.time())
        trial.set_user_attr("steps", len(running.reported))
        if status is TrialStatus.SUCCEEDED:
            self.study.tell(trial, value)
        elif status is TrialStatus.PRUNED:
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, state=TrialState.FAIL)
        print(
            f"trial {number}: {status.value}"
            + (f" ({reason})" if reason else "")
            + (f" {self.tuning.metric}={value:g}" if value is not None else ""),
            flush=True,
        )

    def _stop_running(self, reason: str) -> None:
        for number, running in list(self.running.items()):
            self.client.cancel(running.job_id)
            self._finish(number, TrialStatus.CANCELLED, reason)

    def _failure_reason(self) -> str:
        """Why the study must stop now (too many failed trials), or ''."""
        trials = self.trial_infos()
        failed = [t for t in trials if t.status is TrialStatus.FAILED]
        if not failed:
            return ""
        limit = self.tuning.max_failed_trials
        if limit:
            if len(failed) >= limit:
                return (
                    f"{len(failed)} trials failed (maxFailedTrials {limit}); the last: "
                    f"trial {failed[-1].number}: {failed[-1].reason}"
                )
            return ""
        first = [t for t in trials if t.status is not TrialStatus.RUNNING]
        first = first[:FIRST_TRIALS_THAT_MAY_ALL_FAIL]
        expected = min(FIRST_TRIALS_THAT_MAY_ALL_FAIL, self.max_trials)
        if len(first) >= expected and all(t.status is TrialStatus.FAILED for t in first):
            return (
                f"the first {expected} trial(s) all failed; trial {first[-1].number}: "
                f"{first[-1].reason}"
            )
        return ""

    # --- the summary ---------------------------------------------------------------------------

    def trial_infos(self) -> list[TrialInfo]:
        from optuna.trial import TrialState

        infos = []
        for t in self.study.get_trials(deepcopy=False):
            attrs = t.user_attrs
            if "job_id" not in attrs:
                continue
            if t.state is TrialState.RUNNING:
                status = TrialStatus.RUNNING
            else:
                status = TrialStatus(attrs.get("status", TrialStatus.FAILED.value))
            value = t.value if t.state is TrialState.COMPLETE else None
            if value is None and t.intermediate_values:
                value = t.intermediate_values[max(t.intermediate_values)]
            infos.append(
                TrialInfo(
                    number=t.number,
                    status=status,
                    params=attrs.get("params", {}),
                    value=value,
                    job_id=attrs["job_id"],
                    steps=attrs.get("steps", len(t.intermediate_values)),
                    reason=attrs.get("reason", ""),
                    started=attrs.get("started"),
                    finished=attrs.get("finished"),
                )
            )
        return infos

    def _write_summary(self) -> None:
        trials = self.trial_infos()
        done = [t for t in trials if t.status is TrialStatus.SUCCEEDED and t.value is not None]
        best = None
        if done:
            pick = max if self.tuning.goal.value == "MAXIMIZE" else min
            best = pick(done, key=lambda t: t.value or 0.0).number
        summary = {
            "trials": [to_dict(t) for t in trials],
            "best": best,
            "failed": self.failed_reason,
            "overhead_ms_per_trial": 1000 * self.overhead / max(1, len(trials)),
        }
        text = json.dumps(summary)
        if text == self._last_summary:
            return
        tmp = self.output_dir / (SUMMARY_FILE + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.output_dir / SUMMARY_FILE)
        self._last_summary = text


def main() -> None:
    tuning = from_dict(TuningSpec, json.loads(os.environ[TUNING_ENV]))
    template = from_dict(TrainSpec, json.loads(Path(TRIAL_SPEC_FILE).read_text()))
    driver = Driver(
        Client(),
        os.environ["CLOUDML_JOB_ID"],
        tuning,
        template,
        Path(os.environ["CLOUDML_JOB_DIR"]),
        Path(os.environ["CLOUDML_OUTPUT_DIR"]),
    )

    def on_term(signum: int, frame: object) -> None:
        driver.cancelled = True

    signal.signal(signal.SIGTERM, on_term)
    driver.run()
    print(
        f"study {driver.study_id} done"
        + (f": {driver.failed_reason}" if driver.failed_reason else ""),
        flush=True,
    )


if __name__ == "__main__":
    main()
