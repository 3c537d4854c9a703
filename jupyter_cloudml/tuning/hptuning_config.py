"""Reads Google AI Platform's `hptuning_config.yaml` (`trainingInput.hyperparameters`).

Every mistake is an InvalidSpec naming the file and the field path, e.g.
`hptuning_config.yaml: trainingInput.hyperparameters.params[1].minValue: expected a number`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from ..exceptions import InvalidSpec
from ..models import Algorithm, EarlyStopping, Goal, ParamSpec, ParamType, Scale
from ..packaging.config_yaml import (
    FieldReader,
    describe_value,
    parse_strict_yaml,
    read_config,
)
from .space import whole

#: What cloudml-hypertune reports under when no hyperparameterMetricTag is set (as on Google).
DEFAULT_METRIC_TAG = "training/hptuning/metric"

HYPERPARAMETER_KEYS = (
    "goal",
    "hyperparameterMetricTag",
    "maxTrials",
    "maxParallelTrials",
    "maxFailedTrials",
    "enableTrialEarlyStopping",
    "algorithm",
    "params",
    "resumePreviousJobId",
)
PARAM_KEYS = (
    "parameterName",
    "type",
    "minValue",
    "maxValue",
    "discreteValues",
    "categoricalValues",
    "scaleType",
)
GOALS = {"MAXIMIZE": Goal.MAXIMIZE, "MINIMIZE": Goal.MINIMIZE}
GOALS["GOAL_TYPE_UNSPECIFIED"] = Goal.MAXIMIZE  # Google's default
ALGORITHMS = {  # Google's default is its Bayesian optimisation: TPE is ours
    "ALGORITHM_UNSPECIFIED": Algorithm.TPE,
    "GRID_SEARCH": Algorithm.GRID,
    "RANDOM_SEARCH": Algorithm.RANDOM,
}
TYPES = {t.value: t for t in ParamType}
SCALES = {s.value: s for s in Scale}
SCALES["NONE"] = Scale.LINEAR


def load_hptuning_config(source: str | Path) -> dict[str, Any]:
    """Read a tuning config (a path, or YAML text) into keyword arguments for `TuningSpec`.

    Only fields the file sets are returned (plus params and metric), so CLI flags can override
    single fields: `TuningSpec(**{**load_hptuning_config(path), **flags})`.
    """
    name, text = read_config(source, "<hptuning config>")
    data = parse_strict_yaml(name, text)
    where = FieldReader(name)
    if not isinstance(data, dict):
        raise InvalidSpec(
            f"{name} is not a tuning config: expected a mapping with "
            f"trainingInput.hyperparameters, got {describe_value(data)}"
        )
    section, path = _find_section(where, data)
    return tuning_fields(where, section, path)


# --- reading --------------------------------------------------------------------------------


# --- converting ------------------------------------------------------------------------------


def _find_section(where: FieldReader, data: dict[Any, Any]) -> tuple[dict[Any, Any], str]:
    """The hyperparameters mapping and its path: under trainingInput, or at the top."""
    training = data.get("trainingInput")
    if training is not None and not isinstance(training, dict):
        where.fail("trainingInput", f"expected a mapping, got {describe_value(training)}")
    nested = training is not None and "hyperparameters" in training
    if nested and "hyperparameters" in data:
        raise InvalidSpec(
            f"{where.name}: both trainingInput.hyperparameters and hyperparameters are set; "
            "keep one"
        )
    if nested:
        assert training is not None
        path = "trainingInput.hyperparameters"
        section = training["hyperparameters"]
    elif "hyperparameters" in data:
        path, section = "hyperparameters", data["hyperparameters"]
    else:
        hint = _closest_section(data)
        raise InvalidSpec(
            f"{where.name} is not a tuning config: no trainingInput.hyperparameters{hint}"
        )
    return where.mapping(section, path, HYPERPARAMETER_KEYS), path


def _closest_section(data: dict[Any, Any]) -> str:
    """` (did you mean 'trainingInput.hyperparamters'?)` for a near miss, else ''."""
    paths = [str(k) for k in data]
    paths += [f"{k}.{sub}" for k, v in data.items() if isinstance(v, dict) for sub in v]
    for target in ("trainingInput.hyperparameters", "hyperparameters"):
        close = difflib.get_close_matches(target, paths, n=1, cutoff=0.8)
        if close:
            return f" (did you mean {close[0]!r}?)"
    return ""


def tuning_fields(where: FieldReader, hp: dict[Any, Any], path: str) -> dict[str, Any]:
    """TuningSpec keyword arguments for the fields the section sets."""
    if "params" not in hp:
        where.fail(f"{path}.params", "missing: list the parameters to tune")
    params = []
    first_use: dict[str, int] = {}
    for i, item in enumerate(where.items(hp["params"], f"{path}.params")):
        param = _param(where, item, f"{path}.params[{i}]")
        if param.name in first_use:
            where.fail(
                f"{path}.params[{i}].parameterName",
                f"{param.name!r} is already used by params[{first_use[param.name]}]",
            )
        first_use[param.name] = i
        params.append(param)
    fields: dict[str, Any] = {
        "params": tuple(params),
        "metric": where.string(
            hp.get("hyperparameterMetricTag", DEFAULT_METRIC_TAG), f"{path}.hyperparameterMetricTag"
        ),
    }
    if "goal" in hp:
        fields["goal"] = where.choice(hp["goal"], f"{path}.goal", GOALS)
    if "maxTrials" in hp:
        fields["max_trials"] = where.whole(hp["maxTrials"], f"{path}.maxTrials", 1)
    if "maxParallelTrials" in hp:
        fields["parallel_trials"] = where.whole(
            hp["maxParallelTrials"], f"{path}.maxParallelTrials", 1
        )
    if "maxFailedTrials" in hp:
        # Google: 0 (the default) lets the service decide; so does leaving it unset here.
        failed = where.whole(hp["maxFailedTrials"], f"{path}.maxFailedTrials", 0)
        if failed:
            fields["max_failed_trials"] = failed
    if "enableTrialEarlyStopping" in hp:
        enabled = where.boolean(hp["enableTrialEarlyStopping"], f"{path}.enableTrialEarlyStopping")
        fields["early_stopping"] = EarlyStopping.MEDIAN if enabled else EarlyStopping.NONE
    if "algorithm" in hp:
        fields["algorithm"] = where.choice(hp["algorithm"], f"{path}.algorithm", ALGORITHMS)
    if "resumePreviousJobId" in hp:
        fields["resume_from"] = where.string(
            hp["resumePreviousJobId"], f"{path}.resumePreviousJobId"
        )
    return fields


def _param(where: FieldReader, item: Any, path: str) -> ParamSpec:
    """One `params` entry as a ParamSpec; ParamSpec's own checks are reported at `path`."""
    item = where.mapping(item, path, PARAM_KEYS)
    for key in ("parameterName", "type"):
        if key not in item:
            where.fail(f"{path}.{key}", "missing")
    name = where.string(item["parameterName"], f"{path}.parameterName")
    ptype = where.choice(item["type"], f"{path}.type", TYPES)
    wanted = {
        ParamType.DOUBLE: ("minValue", "maxValue"),
        ParamType.INTEGER: ("minValue", "maxValue"),
        ParamType.DISCRETE: ("discreteValues",),
        ParamType.CATEGORICAL: ("categoricalValues",),
    }[ptype]
    for key in ("minValue", "maxValue", "discreteValues", "categoricalValues"):
        if key in wanted and key not in item:
            where.fail(f"{path}.{key}", f"missing (a {ptype.value} parameter needs it)")
        if key not in wanted and key in item:
            where.fail(f"{path}.{key}", f"not used by a {ptype.value} parameter; remove it")
    scale = where.choice(item.get("scaleType", "NONE"), f"{path}.scaleType", SCALES)
    fields: dict[str, Any] = {}
    if ptype in (ParamType.DOUBLE, ParamType.INTEGER):
        lo = where.number(item["minValue"], f"{path}.minValue")
        hi = where.number(item["maxValue"], f"{path}.maxValue")
        lo, hi = (float(lo), float(hi)) if ptype is ParamType.DOUBLE else (whole(lo), whole(hi))
        fields = {"min_value": lo, "max_value": hi, "scale": scale}
    elif ptype is ParamType.DISCRETE:
        # A list is searched as a set of choices: its scaleType has no effect, so is dropped.
        values = where.items(item["discreteValues"], f"{path}.discreteValues")
        fields["values"] = tuple(
            where.number(v, f"{path}.discreteValues[{i}]") for i, v in enumerate(values)
        )
    else:
        values = where.items(item["categoricalValues"], f"{path}.categoricalValues")
        fields["values"] = tuple(
            _category(where, v, f"{path}.categoricalValues[{i}]") for i, v in enumerate(values)
        )
    try:
        return ParamSpec(name, ptype, **fields)
    except InvalidSpec as error:
        where.fail(path, str(error))


def _category(where: FieldReader, value: Any, path: str) -> str:
    """A categorical value: a string, or a number written bare (kept as its text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    where.fail(path, f"expected a string, got {describe_value(value)} (quote it: '{value}')")
