"""Text and JSON views of studies: counts, sorting, the trials table, `describe`, JSON."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from jupyter_cloudml.models import (
    EarlyStopping,
    Goal,
    JobStatus,
    ParamSpec,
    ParamType,
    Scale,
    StudyInfo,
    TrialInfo,
    TrialStatus,
    TuningSpec,
    from_dict,
)
from jupyter_cloudml.views.studies import (
    format_param_space,
    format_study,
    format_trial_counts,
    format_trials_table,
    sort_trials,
    study_dict,
)
from jupyter_cloudml.views.text import format_number

TUNING = TuningSpec(
    params=(
        ParamSpec("lr", ParamType.DOUBLE, 1e-4, 1e-1, scale=Scale.LOG),
        ParamSpec("layers", ParamType.INTEGER, 1, 4),
        ParamSpec("opt", ParamType.CATEGORICAL, values=("adam", "sgd")),
    ),
    metric="accuracy",
    goal=Goal.MAXIMIZE,
    max_trials=30,
    parallel_trials=4,
    early_stopping=EarlyStopping.MEDIAN,
)


def trial(number: int, status: TrialStatus, value: float | None = None, **kw: Any) -> TrialInfo:
    params: dict[str, float | int | str] = {"lr": 0.0012345, "layers": number % 4 + 1}
    params["opt"] = "adam"
    return TrialInfo(number, status, params, value, job_id=f"tune-t{number}", steps=100, **kw)


TRIALS = (
    trial(0, TrialStatus.SUCCEEDED, 0.9123456),
    trial(1, TrialStatus.PRUNED, 0.95),  # an intermediate value, better than any completed one
    trial(2, TrialStatus.SUCCEEDED, 0.97),
    trial(3, TrialStatus.FAILED),
    trial(4, TrialStatus.RUNNING),
    trial(5, TrialStatus.CANCELLED),
)
STUDY = StudyInfo(
    id="tune-x1",
    name="tune",
    status=JobStatus.RUNNING,
    tuning=TUNING,
    created=1_000.0,
    started=1_010.0,
    trials=TRIALS,
    best_trial=TRIALS[2],
)


def numbers(trials: list[TrialInfo]) -> list[int]:
    return [t.number for t in trials]


def test_counts_line() -> None:
    assert format_trial_counts(STUDY) == (
        "5/30 done: 2 succeeded, 1 pruned, 1 failed, 1 cancelled · 1 running"
    )
    fresh = dataclasses.replace(STUDY, trials=())
    assert format_trial_counts(fresh) == "0/30 done"
    four = tuple(trial(n, TrialStatus.SUCCEEDED, 0.5) for n in range(4))
    cancelled = (trial(4, TrialStatus.CANCELLED), *TRIALS[5:])
    ended = dataclasses.replace(STUDY, trials=(*four, *cancelled))
    assert format_trial_counts(ended) == "6/30 done: 4 succeeded, 2 cancelled"


def test_sorts() -> None:
    assert numbers(sort_trials(STUDY)) == [2, 0, 1, 3, 4, 5]  # completed by value, then others
    assert numbers(sort_trials(STUDY, "number")) == [0, 1, 2, 3, 4, 5]
    assert numbers(sort_trials(STUDY, "status")) == [4, 0, 2, 1, 3, 5]
    minimize = dataclasses.replace(STUDY, tuning=dataclasses.replace(TUNING, goal=Goal.MINIMIZE))
    assert numbers(sort_trials(minimize)) == [0, 2, 1, 3, 4, 5]
    nan = dataclasses.replace(STUDY, trials=(trial(0, TrialStatus.SUCCEEDED, float("nan")),
                                            trial(1, TrialStatus.SUCCEEDED, 0.5)))  # fmt: skip
    assert numbers(sort_trials(nan)) == [1, 0]
    with pytest.raises(ValueError, match="unknown sort 'value'"):
        sort_trials(STUDY, "value")


def test_trials_table_is_aligned_with_the_best_starred() -> None:
    lines = format_trials_table(STUDY).splitlines()
    assert lines[0].split() == [
        "TRIAL", "STATUS", "lr", "layers", "opt", "accuracy", "STEPS", "JOB",
    ]  # fmt: skip
    assert lines[1].split() == ["*", "2", "SUCCEEDED", "0.001234", "3", "adam", "0.97", "100",
                                "tune-t2"]  # fmt: skip
    assert lines[2].split()[:2] == ["0", "SUCCEEDED"] and "0.912346" in lines[2]
    assert lines[4].split() == ["3", "FAILED", "0.001234", "4", "adam", "-", "100", "tune-t3"]
    assert sum(line.startswith("*") for line in lines) == 1
    column = lines[0].index("STATUS")
    assert all(line[column - 2 : column] == "  " for line in lines)  # one column for all rows
    by_number = format_trials_table(STUDY, sort="number").splitlines()
    assert [line.split()[0] for line in by_number[1:]] == ["0", "1", "*", "3", "4", "5"]


def test_number_and_space_formats() -> None:
    assert [format_number(v) for v in (None, 0.0012345, 3, "sgd", 1e-5)] == [
        "-", "0.001234", "3", "sgd", "1e-05",
    ]  # fmt: skip
    assert format_number(0.98765432, 6) == "0.987654"
    lr, layers, opt = TUNING.params
    assert format_param_space(lr) == "DOUBLE 0.0001..0.1 (log)"
    assert format_param_space(layers) == "INTEGER 1..4"
    assert format_param_space(opt) == "CATEGORICAL adam, sgd"
    discrete = ParamSpec("batch", ParamType.DISCRETE, values=(16, 32, 64))
    assert format_param_space(discrete) == "DISCRETE 16, 32, 64"


def test_describe() -> None:
    text = format_study(dataclasses.replace(STUDY, reason="5 of 30 trials"), now=1_075.0)
    fields = dict(
        (key.strip(), value.strip())
        for key, value in (line.split(":", 1) for line in text.split("\n\n")[0].splitlines())
    )
    assert fields["ID"] == "tune-x1" and fields["Status"] == "RUNNING (5 of 30 trials)"
    assert fields["Elapsed"] == "1m 05s" and fields["Finished"] == "-"
    assert fields["Objective"] == "maximize accuracy" and fields["Early stop"] == "median"
    assert fields["Progress"].startswith("5/30 done")
    assert fields["Best"] == "trial 2: accuracy 0.97 (lr=0.001234, layers=3, opt=adam)"
    assert "Search space:\n  PARAMETER  SPACE\n  lr         DOUBLE 0.0001..0.1 (log)" in text
    assert "Trials:\n     TRIAL  STATUS" in text and "\n  *  2      SUCCEEDED" in text
    empty = format_study(dataclasses.replace(STUDY, trials=(), best_trial=None, started=None))
    assert "Trials:" not in empty and "\nBest:       -\n" in empty and "Elapsed:    -" in empty


def test_study_dict_is_json_and_round_trips() -> None:
    data = study_dict(STUDY, now=1_070.0)
    assert json.loads(json.dumps(data)) == data
    assert data["elapsed"] == 60.0 and data["status"] == "RUNNING"
    assert data["counts"] == {
        "RUNNING": 1, "SUCCEEDED": 2, "PRUNED": 1, "FAILED": 1, "CANCELLED": 1,
    }  # fmt: skip
    assert data["best_trial"]["number"] == 2 and data["tuning"]["params"][0]["scale"] == (
        "UNIT_LOG_SCALE"
    )
    assert from_dict(StudyInfo, data) == STUDY
