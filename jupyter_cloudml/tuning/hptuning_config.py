"""Reads Google AI Platform's `hptuning_config.yaml` (`trainingInput.hyperparameters`).

Every mistake is an InvalidSpec naming the file and the field path, e.g.
`hptuning_config.yaml: trainingInput.hyperparameters.params[1].minValue: expected a number`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from ..exceptions import InvalidSpec
from ..models import Algorithm, EarlyStopping, Goal, ParamSpec, ParamType, Scale
from ..packaging.files import read_text_file
from .space import to_number, whole

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
    name, text = _read(source)
    data = _parse_yaml(name, text)
    where = _Where(name)
    if not isinstance(data, dict):
        raise InvalidSpec(
            f"{name} is not a tuning config: expected a mapping with "
            f"trainingInput.hyperparameters, got {_describe(data)}"
        )
    section, path = _find_section(where, data)
    return _tuning_fields(where, section, path)


# --- reading --------------------------------------------------------------------------------


def _read(source: str | Path) -> tuple[str, str]:
    """(name for messages, YAML text): a Path or a path-looking string is read from disk."""
    if isinstance(source, str) and not _looks_like_path(source):
        return "<hptuning config>", source
    name = str(source)
    return name, read_text_file(source)


def _looks_like_path(text: str) -> bool:
    if "\n" in text:
        return False
    return text.strip().endswith((".yaml", ".yml", ".json")) or os.path.isfile(text)


def _parse_yaml(name: str, text: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "syntax error"
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise InvalidSpec(f"{name}: {at}invalid YAML: {problem}") from None
    except Exception as error:  # PyYAML's constructors raise odd errors (a 30th of February)
        raise InvalidSpec(f"{name}: invalid YAML: {error}") from None


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice (PyYAML silently keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and not key_node.tag.endswith(":merge"):
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key_node.value!r} is given twice", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


# --- converting ------------------------------------------------------------------------------


class _Where:
    """Raises InvalidSpec for `path` in file `name`, and checks field types on the way."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, path: str, message: str) -> NoReturn:
        raise InvalidSpec(f"{self.name}: {path}: {message}")

    def mapping(self, value: Any, path: str, known: Iterable[str]) -> dict[Any, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {_describe(value)}")
        unknown = [str(k) for k in value if str(k) not in known]
        if unknown:
            self.fail(path, _unknown_keys(unknown, known))
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"expected a non-empty string, got {_describe(value)}")
        return value.strip()

    def choice(self, value: Any, path: str, choices: Mapping[str, Any]) -> Any:
        if isinstance(value, str) and value.strip().upper() in choices:
            return choices[value.strip().upper()]
        self.fail(path, f"expected one of {', '.join(choices)}, got {_describe(value)}")

    def number(self, value: Any, path: str) -> int | float:
        """A finite number; numeric strings too (PyYAML reads `1e-4` as a string)."""
        try:
            return to_number(value)
        except ValueError:
            self.fail(path, f"expected a number, got {_describe(value)}")

    def whole(self, value: Any, path: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(path, f"expected a whole number >= {minimum}, got {_describe(value)}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {_describe(value)}")
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list) or not value:
            self.fail(path, f"expected a non-empty list, got {_describe(value)}")
        return value


def _find_section(where: _Where, data: dict[Any, Any]) -> tuple[dict[Any, Any], str]:
    """The hyperparameters mapping and its path: under trainingInput, or at the top."""
    training = data.get("trainingInput")
    if training is not None and not isinstance(training, dict):
        where.fail("trainingInput", f"expected a mapping, got {_describe(training)}")
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


def _tuning_fields(where: _Where, hp: dict[Any, Any], path: str) -> dict[str, Any]:
    """TuningSpec keyword arguments for the fields the section sets."""
    if "resumePreviousJobId" in hp:
        where.fail(
            f"{path}.resumePreviousJobId",
            "not supported (a study resumes by itself after a crash); remove it",
        )
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
    return fields


def _param(where: _Where, item: Any, path: str) -> ParamSpec:
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


def _category(where: _Where, value: Any, path: str) -> str:
    """A categorical value: a string, or a number written bare (kept as its text)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    where.fail(path, f"expected a string, got {_describe(value)} (quote it: '{value}')")


def _unknown_keys(unknown: list[str], known: Iterable[str]) -> str:
    """`unknown key 'maxTrails' (did you mean 'maxTrials'?)`, or the keys that are known."""
    by_lower = {k.lower(): k for k in known}
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(key.lower(), by_lower, n=1, cutoff=0.6)
        parts.append(f"{key!r}" + (f" (did you mean {by_lower[close[0]]!r}?)" if close else ""))
    noun = "unknown key" if len(unknown) == 1 else "unknown keys"
    text = f"{noun} {', '.join(parts)}"
    if "did you mean" not in text:
        text += f" (known: {', '.join(by_lower.values())})"
    return text


def _describe(value: Any) -> str:
    """A short description of a YAML value for messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float, str)):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return f"a {type(value).__name__}"
