"""The study driver: Optuna proposes trials, trials run as ordinary jobs, metrics decide.

Run by the entry module of a study's driver job (`python -m jupyter_cloudml._study_main`),
talks to the backend only through the `Backend` interface, and keeps the study in an Optuna
journal file in its job dir: a driver that is killed and restarted resumes, re-attaching to
trials still running and never repeating a finished one. After each change it writes
`study.json` (the trials, the best one) into its output dir, which is what clients read.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

from ..backends.base import Backend
from ..models import (
    KIND_LABEL,
    STUDY_LABEL,
    TRIAL_LABEL,
    Algorithm,
    JobQuery,
    JobStatus,
    Scalar,
    TrainSpec,
    TrialInfo,
    TrialStatus,
    TuningSpec,
    to_dict,
)
from .board import StudyBoard
from .params import PARAMS_ENV
from .space import grid_size
from .study import SUMMARY_FILE

POLL_SECONDS = 0.2
#: Clients see a study's progress this fresh at worst; the last write always happens.
SUMMARY_EVERY_SECONDS = 0.5
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
        backend: Backend,
        study_id: str,
        tuning: TuningSpec,
        template: TrainSpec,
        job_dir: Path,
        output_dir: Path,
    ) -> None:
        import optuna
        from optuna.storages import JournalStorage

        from .journal import AppendOnlyJournal
        from .optuna_glue import direction, make_pruner, make_sampler

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.backend = backend
        self.study_id = study_id
        self.tuning = tuning
        self.template = template
        self.output_dir = output_dir
        job_dir.mkdir(parents=True, exist_ok=True)
        self.study = optuna.create_study(
            study_name=study_id,
            storage=JournalStorage(AppendOnlyJournal(job_dir / JOURNAL_FILE)),
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
        self.backend_seconds = 0.0  # in Backend calls: starting, polling, cancelling trial jobs
        self.driver_seconds = 0.0  # all the driver's time but its sleeps
        self._dirty = True  # the summary needs writing
        self._written = 0.0  # when it was last written (monotonic)
        self._ended: list[TrialInfo] = []  # finished trials, in the order they finished
        self._ended_dicts: dict[int, dict[str, Any]] = {}  # their summary entries (final)
        self.board = StudyBoard(job_dir, tuning)

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        start, slept = time.perf_counter(), 0.0
        if self.tuning.resume_from and not self.study.get_trials(deepcopy=False):
            self._continue(self.tuning.resume_from)
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
            if not self.running and (self.failed_reason or self._launched() >= self.max_trials):
                break
            self.driver_seconds = time.perf_counter() - start - slept
            self._write_summary()
            t0 = time.perf_counter()
            time.sleep(POLL_SECONDS)
            slept += time.perf_counter() - t0
        self.driver_seconds = time.perf_counter() - start - slept
        self._dirty = True
        self._write_summary(final=True)
        self.board.close()

    def notify(self, url: str) -> None:
        """POST the study as it ended (`--notify`) to `url`, and say how that went."""
        from ..backends.common.notify import notify_payload, post_notification
        from .study import study_info

        info = study_info(self.backend, self.backend.get(self.study_id))
        status = JobStatus.SUCCEEDED
        if self.cancelled:
            status = JobStatus.CANCELLED
        elif self.failed_reason:
            status = JobStatus.FAILED
        info = dataclasses.replace(info, status=status, reason=self.failed_reason)
        problem = post_notification(url, notify_payload(info, "study"))
        print(problem or f"posted the final study to {url}", flush=True)

    def _timed(self, call: Any, *args: Any) -> Any:
        """One Backend call, its time kept apart from the driver's own overhead."""
        t0 = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.backend_seconds += time.perf_counter() - t0

    @property
    def overhead_per_trial(self) -> float:
        """Seconds of the driver's own work per trial: Optuna, bookkeeping, the summary."""
        return (self.driver_seconds - self.backend_seconds) / max(1, self._launched())

    def _launched(self) -> int:
        return sum(1 for t in self.study.get_trials(deepcopy=False) if "launch" in t.user_attrs)

    def _resume(self) -> None:
        """Re-attach to trials a previous driver left running, adopt one whose job it submitted
        but did not record, and fail those it never submitted."""
        import optuna
        from optuna.trial import TrialState

        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            trial = optuna.trial.Trial(self.study, frozen._trial_id)
            launch = frozen.user_attrs.get("launch") or self._submitted(frozen.number)
            if launch is None:  # asked for, but its job was never submitted
                self.study.tell(trial, state=TrialState.FAIL)
                continue
            trial.set_user_attr("launch", launch)
            reported = set(frozen.intermediate_values)
            self.running[frozen.number] = Running(trial, launch["job_id"], reported=reported)
        for known in sorted(self.study.get_trials(deepcopy=False), key=lambda t: t.number):
            launch = known.user_attrs.get("launch")
            if launch is not None and "from_study" not in launch:
                self.board.name_of(known.number, launch["params"])  # the names they had
        for number in sorted(self.running):
            self.board.trial(number, self.running[number].trial.user_attrs["launch"]["params"])
        self._ended = [t for t in self.trial_infos() if t.status is not TrialStatus.RUNNING]

    def _continue(self, previous_id: str) -> None:
        """Take a finished study's trials as this one's first (their parameters, results and
        jobs), once, before any trial of its own: Optuna learns from them, and they count."""
        from optuna.trial import TrialState

        from .optuna_glue import internal_from_values, suggest
        from .study import study_info

        previous = study_info(self.backend, self.backend.get(previous_id))
        for old in sorted(previous.trials, key=lambda t: t.number):
            self.study.enqueue_trial(internal_from_values(self.tuning.params, old.params))
            trial = self.study.ask()
            suggest(trial, self.tuning.params)  # the enqueued values, recorded as Optuna's
            launch = {"params": dict(old.params), "job_id": old.job_id, "started": old.started}
            trial.set_user_attr("launch", {**launch, "from_study": previous_id})
            status = old.status if old.status is not TrialStatus.RUNNING else TrialStatus.FAILED
            result = {
                "status": status.value,
                "reason": old.reason,
                "finished": old.finished,
                "steps": old.steps,
            }
            trial.set_user_attr("result", result)
            if status is TrialStatus.SUCCEEDED and old.value is not None:
                self.study.tell(trial, old.value)
            else:
                self.study.tell(trial, state=TrialState.FAIL)
        self._dirty = True  # `_resume` counts them among the ended trials
        print(f"continuing study {previous_id}: {len(previous.trials)} trial(s) so far", flush=True)

    def _submitted(self, number: int) -> dict[str, Any] | None:
        """The launch record of trial `number`'s job, found by its labels (a driver that died
        between submitting it and recording it left none)."""
        labels = {STUDY_LABEL: self.study_id, TRIAL_LABEL: str(number)}
        jobs = self._timed(self.backend.list, JobQuery(labels=labels, limit=1)).jobs
        if not jobs or jobs[0].spec is None:
            return None
        job = jobs[0]
        assert job.spec is not None
        values = json.loads(job.spec.env.get(PARAMS_ENV, "{}"))
        print(f"trial {number}: adopted job {job.id}, submitted before the driver stopped")
        return {"params": values, "job_id": job.id, "started": job.created}

    def _launch(self) -> None:
        from .optuna_glue import suggest
        from .space import trainer_flags

        while (
            len(self.running) < self.tuning.parallel_trials and self._launched() < self.max_trials
        ):
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
            job = self._timed(self.backend.submit, spec)
            launch = {"params": values, "job_id": job.id, "started": time.time()}
            trial.set_user_attr("launch", launch)
            self.running[trial.number] = Running(trial, job.id)
            self.board.trial(trial.number, values)
            self._dirty = True
            print(f"trial {trial.number}: job {job.id} {json.dumps(values)}", flush=True)

    def _poll(self) -> None:
        for number, running in list(self.running.items()):
            job = self._timed(self.backend.get, running.job_id)
            update = self._timed(self.backend.metrics, running.job_id, running.cursor)
            running.cursor = update.cursor
            running.tags.update(update.scalars)
            self.board.scalars(number, update.scalars)
            pruned = self._report(running, update.scalars.get(self.tuning.metric, ()))
            if pruned and not job.status.terminal:
                self._timed(self.backend.cancel, running.job_id)
                self._finish(
                    number,
                    TrialStatus.PRUNED,
                    "pruned: its intermediate values were worse than the other trials' "
                    "at the same step",
                )
            elif job.status.terminal:
                self._finish_job(number, job.status, job.reason)

    def _report(self, running: Running, values: Any) -> bool:
        """Feed new intermediate values to Optuna; whether the trial should be pruned."""
        new = False
        for scalar in sorted(values, key=lambda s: (s.step, s.wall_time)):
            last = running.last
            if last is None or (scalar.step, scalar.wall_time) >= (last.step, last.wall_time):
                running.last = scalar
            if scalar.step not in running.reported and math.isfinite(scalar.value):
                running.trial.report(scalar.value, scalar.step)
                running.reported.add(scalar.step)
                new = self._dirty = True
        return new and running.trial.should_prune()

    def _finish_job(self, number: int, status: JobStatus, reason: str) -> None:
        running = self.running[number]
        if status is JobStatus.SUCCEEDED:
            if running.last is None:
                seen = ", ".join(sorted(running.tags)) or "none"
                reason = f"metric {self.tuning.metric!r} was never reported (reported: {seen})"
                self._finish(number, TrialStatus.FAILED, reason)
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
        self.board.ended(number)
        result = {
            "status": status.value,
            "reason": reason,
            "finished": time.time(),
            "steps": len(running.reported),
        }
        running.trial.set_user_attr("result", result)
        self._ended.append(
            dataclasses.replace(self._info(running.trial), status=status, reason=reason)
        )
        if status is TrialStatus.SUCCEEDED:
            self.study.tell(running.trial, value)
        elif status is TrialStatus.PRUNED:
            self.study.tell(running.trial, state=TrialState.PRUNED)
        else:
            self.study.tell(running.trial, state=TrialState.FAIL)
        self._dirty = True
        shown = f" {self.tuning.metric}={value:g}" if value is not None else ""
        print(
            f"trial {number}: {status.value}{f' ({reason})' if reason else ''}{shown}", flush=True
        )

    def _stop_running(self, reason: str) -> None:
        for number, running in list(self.running.items()):
            self._timed(self.backend.cancel, running.job_id)
            self._finish(number, TrialStatus.CANCELLED, reason)

    def _failure_reason(self) -> str:
        """Why the study must stop now (too many failed trials), or ''."""
        failed = [t for t in self._ended if t.status is TrialStatus.FAILED]
        if not failed:
            return ""
        limit = self.tuning.max_failed_trials
        if limit:
            if len(failed) < limit:
                return ""
            last = failed[-1]
            return (
                f"{len(failed)} trials failed (maxFailedTrials {limit}); the last: "
                f"trial {last.number}: {last.reason}"
            )
        first = self._ended[:FIRST_TRIALS_THAT_MAY_ALL_FAIL]
        expected = min(FIRST_TRIALS_THAT_MAY_ALL_FAIL, self.max_trials)
        if len(first) >= expected and all(t.status is TrialStatus.FAILED for t in first):
            return (
                f"the first {expected} trial(s) all failed; trial {first[-1].number}: "
                f"{first[-1].reason}"
            )
        return ""

    # --- the summary ---------------------------------------------------------------------------

    def trial_infos(self) -> list[TrialInfo]:
        """Every launched trial as clients see it."""
        return [
            self._info(t) for t in self.study.get_trials(deepcopy=False) if "launch" in t.user_attrs
        ]

    def _info(self, trial: Any) -> TrialInfo:
        """One trial (Optuna's `FrozenTrial` or `Trial`) as clients see it."""
        from optuna.trial import FrozenTrial, TrialState

        if not isinstance(trial, FrozenTrial):  # a trial's number is its index in the study
            trial = self.study.get_trials(deepcopy=False)[trial.number]
        frozen = trial
        launch, result = frozen.user_attrs["launch"], frozen.user_attrs.get("result", {})
        if frozen.state is TrialState.RUNNING and not result:
            status = TrialStatus.RUNNING
        else:
            status = TrialStatus(result.get("status", TrialStatus.FAILED.value))
        value = frozen.value if frozen.state is TrialState.COMPLETE else None
        if value is None and frozen.intermediate_values:
            value = frozen.intermediate_values[max(frozen.intermediate_values)]
        return TrialInfo(
            number=frozen.number,
            status=status,
            params=launch["params"],
            value=value,
            job_id=launch["job_id"],
            steps=result.get("steps", len(frozen.intermediate_values)),
            reason=result.get("reason", ""),
            started=launch["started"],
            finished=result.get("finished"),
        )

    def _write_summary(self, final: bool = False) -> None:
        """Write study.json (atomically) if anything changed, at most every half second."""
        if not self._dirty or (
            not final and time.monotonic() - self._written < SUMMARY_EVERY_SECONDS
        ):
            return
        self._dirty, self._written = False, time.monotonic()
        for t in self._ended:  # a finished trial's entry never changes: made once
            if t.number not in self._ended_dicts:
                self._ended_dicts[t.number] = to_dict(t)
        running = [to_dict(self._info(r.trial)) for r in self.running.values()]
        trials = sorted([*self._ended_dicts.values(), *running], key=lambda t: t["number"])
        done = [t for t in self._ended if t.status is TrialStatus.SUCCEEDED]
        best = None
        if done:
            pick = max if self.tuning.goal.value == "MAXIMIZE" else min
            best = pick(done, key=lambda t: t.value or 0.0).number
        summary = {
            "trials": trials,
            "best": best,
            "failed": self.failed_reason,
            "overhead_ms_per_trial": 1000 * self.overhead_per_trial,
            "backend_ms_per_trial": 1000 * self.backend_seconds / max(1, len(trials)),
        }
        tmp = self.output_dir / (SUMMARY_FILE + ".tmp")
        tmp.write_text(json.dumps(summary))
        os.replace(tmp, self.output_dir / SUMMARY_FILE)
