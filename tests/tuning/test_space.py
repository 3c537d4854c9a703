"""Search spaces: the --param grammar, Google's hptuning_config.yaml, and their Optuna form."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_cloudml.exceptions import InvalidSpec
from jupyter_cloudml.models import (
    Algorithm,
    EarlyStopping,
    Goal,
    ParamSpec,
    ParamType,
    Scale,
    TuningSpec,
)
from jupyter_cloudml.tuning import optuna_glue
from jupyter_cloudml.tuning.hptuning_config import (
    DEFAULT_METRIC_TAG,
    PARAM_KEYS,
    load_hptuning_config,
)
from jupyter_cloudml.tuning.space import (
    grid_size,
    grid_space,
    param_to_text,
    parse_param,
    trainer_flags,
)

D, INT, DI, C = ParamType.DOUBLE, ParamType.INTEGER, ParamType.DISCRETE, ParamType.CATEGORICAL
LIN, LOG, REV = Scale.LINEAR, Scale.LOG, Scale.REVERSE_LOG
FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(autouse=True)
def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def tuning(*params: ParamSpec, **fields: Any) -> TuningSpec:
    return TuningSpec(params=params, metric="accuracy", **fields)


# --- the --param grammar ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("lr=uniform(0,1)", ParamSpec("lr", D, 0.0, 1.0)),
        ("lr=loguniform(1e-4,1e-1)", ParamSpec("lr", D, 1e-4, 1e-1, scale=LOG)),
        ("lr=reverselog(0.5, 0.999)", ParamSpec("lr", D, 0.5, 0.999, scale=REV)),
        ("layers=int(1,4)", ParamSpec("layers", INT, 1, 4)),
        ("units=logint(8,1024)", ParamSpec("units", INT, 8, 1024, scale=LOG)),
        ("units=reverselogint(8,1024)", ParamSpec("units", INT, 8, 1024, scale=REV)),
        ("batch=discrete(32,64,128)", ParamSpec("batch", DI, values=(32, 64, 128))),
        ("drop=discrete(0.1, 0.25,-1)", ParamSpec("drop", DI, values=(0.1, 0.25, -1))),
        ("opt=choice(adam,sgd)", ParamSpec("opt", C, values=("adam", "sgd"))),
        ("opt=choice(adam)", ParamSpec("opt", C, values=("adam",))),
        # whitespace anywhere, upper-case kinds, quotes of either kind, commas inside quotes
        ("  lr = LogUniform ( 1e-4 , 0.1 )  ", ParamSpec("lr", D, 1e-4, 0.1, scale=LOG)),
        (
            "act=choice( 'relu' , \"leaky relu\", tanh )",
            ParamSpec("act", C, values=("relu", "leaky relu", "tanh")),
        ),
        ("s=choice('a,b', \"(c)\")", ParamSpec("s", C, values=("a,b", "(c)"))),
        (
            "s=choice('it\\'s', \"say \\\"hi\\\"\", 'C:\\data', '')",
            ParamSpec("s", C, values=("it's", 'say "hi"', "C:\\data", "")),
        ),
        ("n=int(1e1, 1e3)", ParamSpec("n", INT, 10, 1000)),
        ("x.y-z=uniform(-5,5)", ParamSpec("x.y-z", D, -5.0, 5.0)),
    ],
)
def test_parse_param_forms(text: str, expected: ParamSpec) -> None:
    assert parse_param(text) == expected


def test_parse_param_types_of_bounds_and_values() -> None:
    assert isinstance(parse_param("n=int(1,4)").min_value, int)
    assert isinstance(parse_param("x=uniform(0,1)").min_value, float)
    # DISCRETE keeps each number as written: 1 is an int flag, 1.0 a float flag.
    assert [type(v) for v in parse_param("b=discrete(1, 2.0)").values] == [int, float]
    assert parse_param("o=choice(1,2)").values == ("1", "2")


@pytest.mark.parametrize(
    "text, message",
    [
        ("lr", "--param 'lr': expected NAME=KIND(ARGS), e.g. lr=loguniform(1e-4,1e-1)"),
        ("lr=0.1", "--param 'lr=0.1': expected KIND(ARGS) after '='"),
        ("lr=uniform(1,2", "expected KIND(ARGS) after '='"),
        ("lr=uniform(1,2) x", "expected KIND(ARGS) after '='"),
        (
            "lr=lognormal(1,2)",
            "--param 'lr=lognormal(1,2)': unknown kind 'lognormal', did you mean 'loguniform'? "
            "(use uniform, loguniform, reverselog, int, logint, reverselogint, discrete, choice)",
        ),
        ("lr=beta(1,2)", "unknown kind 'beta' (use uniform, loguniform,"),
        ("lr=uniform(1)", "--param 'lr=uniform(1)': uniform takes 2 values (LO,HI), got 1"),
        ("lr=uniform(1,2,3)", "uniform takes 2 values (LO,HI), got 3"),
        ("lr=uniform()", "uniform takes 2 values (LO,HI), got 0"),
        ("n=int(one,4)", "int: 'one' is not a finite number"),
        ("lr=uniform(nan,1)", "uniform: 'nan' is not a finite number"),
        ("lr=uniform(0,inf)", "uniform: 'inf' is not a finite number"),
        ("lr=uniform(0,1e999)", "uniform: '1e999' is not a finite number"),
        ("b=discrete(1,'2')", "discrete: '2' is not a finite number"),
        ("b=discrete()", "discrete needs at least one value"),
        ("o=choice()", "--param 'o=choice()': choice needs at least one value"),
        ("o=choice(   )", "choice needs at least one value"),
        ("o=choice(a,,b)", "empty value in the list"),
        ("o=choice(a,)", "empty value after the last ','"),
        ("o=choice('a)", "unterminated quote"),
        ("o=choice('a' b)", "unexpected 'b' after the quoted value 'a'"),
        ("o=choice('it''s')", "unexpected \"'s'\" after the quoted value 'it'"),
        ("o=choice(a b)", "'a b' needs quotes"),
        ("o=choice(a'b)", "needs quotes"),
        # ParamSpec's own checks come through, prefixed with the flag
        ("lr=uniform(1,0)", "--param 'lr=uniform(1,0)': parameter 'lr': min 1 must be less"),
        ("lr=loguniform(0,1)", "parameter 'lr': a log scale needs min > 0, got 0"),
        ("lr=reverselog(-1,1)", "a log scale needs min > 0"),
        ("n=int(1.5,3)", "INTEGER bounds must be whole numbers"),
        ("1lr=uniform(0,1)", "parameter '1lr': a name is letters"),
        ("=uniform(0,1)", "parameter '': a name is letters"),
        ("b=discrete(1,1.0)", "values are repeated"),
        ("o=choice(a,a)", "values are repeated"),
    ],
)
def test_parse_param_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_param(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "lr=uniform(-1,2.5)",
        "lr=loguniform(0.0001,0.1)",
        "lr=reverselog(1e-05,1)",
        "n=int(-3,7)",
        "n=logint(1,1024)",
        "n=reverselogint(2,64)",
        "b=discrete(32,64,0.5,1.0)",
        "o=choice(adam,'leaky relu','a,b',\"it's\",'',C:\\x)",
    ],
)
def test_param_to_text_is_the_inverse(text: str) -> None:
    p = parse_param(text)
    assert param_to_text(p) == text
    assert parse_param(param_to_text(p)) == p


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,12}", fullmatch=True)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@st.composite
def param_specs(draw: st.DrawFn) -> ParamSpec:
    name = draw(names)
    kind = draw(st.sampled_from([D, INT, DI, C]))
    if kind in (D, INT):
        scale = draw(st.sampled_from([LIN, LOG, REV]))
        if kind is D:
            bounds = st.floats(min_value=1e-300, max_value=1e300) if scale is not LIN else finite
        else:
            bounds = st.integers(1 if scale is not LIN else -(10**9), 10**9)
        lo, hi = sorted(draw(st.lists(bounds, min_size=2, max_size=2, unique=True)))
        return ParamSpec(name, kind, lo, hi, scale=scale)
    if kind is DI:
        numbers = st.integers(-(10**6), 10**6) | finite
        values = draw(st.lists(numbers, min_size=1, max_size=5, unique_by=float))
        return ParamSpec(name, kind, values=tuple(values))
    return ParamSpec(name, kind, values=tuple(draw(st.lists(st.text(), min_size=1, unique=True))))


@FUZZ
@given(param_specs())
def test_param_to_text_round_trips(p: ParamSpec) -> None:
    assert parse_param(param_to_text(p)) == p


@FUZZ
@given(
    st.text()
    | st.builds(
        lambda name, kind, args: f"{name}={kind}({args})",
        names | st.text(max_size=3),
        st.sampled_from(["uniform", "loguniform", "reverselog", "int", "logint", "discrete"])
        | st.sampled_from(["choice", "reverselogint", "x", ""]),
        st.text(alphabet=st.sampled_from("0123456789.,-e 'ab\"\\()inf"), max_size=20),
    )
)
def test_parse_param_fuzz_gives_a_spec_or_invalid_spec(text: str) -> None:
    try:
        p = parse_param(text)
    except InvalidSpec as error:
        assert str(error).startswith("--param ")
    else:
        assert isinstance(p, ParamSpec)
        assert parse_param(param_to_text(p)) == p


def test_trainer_flags() -> None:
    flags = trainer_flags(
        {"lr": 0.01, "layers": 3, "opt": "adam", "tiny": 1e-05, "whole": 3.0, "third": 1 / 3}
    )
    assert flags == [
        "--lr=0.01",
        "--layers=3",
        "--opt=adam",
        "--tiny=1e-05",
        "--whole=3.0",
        "--third=0.3333333333333333",
    ]
    assert float(flags[-1].split("=")[1]) == 1 / 3  # full precision survives the round trip
    assert trainer_flags({"act": "leaky relu", "x": -2}) == ["--act=leaky relu", "--x=-2"]
    assert trainer_flags({}) == []


# --- Google's hptuning_config.yaml -------------------------------------------------------------

GOOGLE_CONFIG = """\
trainingInput:
  scaleTier: CUSTOM            # the rest of a job config is allowed and ignored
  masterType: n1-standard-8
  hyperparameters:
    goal: MAXIMIZE
    hyperparameterMetricTag: accuracy
    maxTrials: 30
    maxParallelTrials: 4
    maxFailedTrials: 3
    enableTrialEarlyStopping: True
    algorithm: ALGORITHM_UNSPECIFIED
    params:
      - parameterName: learning_rate
        type: DOUBLE
        minValue: 1e-4           # PyYAML reads this as a string: still a number here
        maxValue: 0.1
        scaleType: UNIT_LOG_SCALE
      - parameterName: hidden_layers
        type: INTEGER
        minValue: 1
        maxValue: 4
        scaleType: UNIT_LINEAR_SCALE
      - parameterName: batch_size
        type: DISCRETE
        discreteValues: [32, 64, 128]
      - parameterName: optimizer
        type: CATEGORICAL
        categoricalValues: [adam, sgd, "rmsprop"]
      - parameterName: momentum
        type: DOUBLE
        minValue: 0.5
        maxValue: 0.999
        scaleType: UNIT_REVERSE_LOG_SCALE
"""


def write(tmp_path: Path, text: str, name: str = "hptuning_config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_google_config_loads_into_a_tuning_spec(tmp_path: Path) -> None:
    fields = load_hptuning_config(write(tmp_path, GOOGLE_CONFIG))
    spec = TuningSpec(**fields)
    assert spec.params == (
        ParamSpec("learning_rate", D, 1e-4, 0.1, scale=LOG),
        ParamSpec("hidden_layers", INT, 1, 4),
        ParamSpec("batch_size", DI, values=(32, 64, 128)),
        ParamSpec("optimizer", C, values=("adam", "sgd", "rmsprop")),
        ParamSpec("momentum", D, 0.5, 0.999, scale=REV),
    )
    assert (spec.metric, spec.goal, spec.max_trials) == ("accuracy", Goal.MAXIMIZE, 30)
    assert (spec.parallel_trials, spec.max_failed_trials) == (4, 3)
    assert spec.algorithm is Algorithm.TPE
    assert spec.early_stopping is EarlyStopping.MEDIAN
    # the same text, not a path; and flags override single fields
    assert load_hptuning_config(GOOGLE_CONFIG) == fields
    assert TuningSpec(**{**fields, "max_trials": 5}).max_trials == 5


def test_config_at_top_level_and_google_defaults() -> None:
    fields = load_hptuning_config(
        """
        hyperparameters:
          goal: minimize
          maxFailedTrials: 0   # Google: 0 means the service decides
          enableTrialEarlyStopping: false
          algorithm: GRID_SEARCH
          params:
            - {parameterName: n, type: INTEGER, minValue: 1.0, maxValue: 3, scaleType: NONE}
        """
    )
    assert fields == {
        "params": (ParamSpec("n", INT, 1, 3),),
        "metric": DEFAULT_METRIC_TAG,  # cloudml-hypertune's default tag
        "goal": Goal.MINIMIZE,
        "early_stopping": EarlyStopping.NONE,
        "algorithm": Algorithm.GRID,
    }
    assert isinstance(fields["params"][0].min_value, int)
    random = load_hptuning_config(
        "hyperparameters: {algorithm: RANDOM_SEARCH, params: [{parameterName: x, type: DOUBLE,"
        " minValue: 0, maxValue: 1}]}"
    )
    assert random["algorithm"] is Algorithm.RANDOM
    assert isinstance(random["params"][0].min_value, float)
    resumed = load_hptuning_config(
        "hyperparameters: {resumePreviousJobId: census_tune_1, params: [{parameterName: x,"
        " type: DOUBLE, minValue: 0, maxValue: 1}]}"
    )
    assert resumed["resume_from"] == "census_tune_1"


def config_with(hp: str, path_prefix: str = "trainingInput:\n  hyperparameters:\n") -> str:
    return path_prefix + textwrap.indent(textwrap.dedent(hp), "    ")


PARAM = "params:\n  - {parameterName: x, type: DOUBLE, minValue: 0, maxValue: 1}\n"
HP = "trainingInput.hyperparameters"


@pytest.mark.parametrize(
    "hp, message",
    [
        (PARAM + "maxTrails: 3", f"{HP}: unknown key 'maxTrails' (did you mean 'maxTrials'?)"),
        (PARAM + "maxtrials: 3", "unknown key 'maxtrials' (did you mean 'maxTrials'?)"),
        (PARAM + "zzz: 1\nqqq: 2", "unknown keys 'zzz', 'qqq' (known: goal,"),
        (PARAM + "maxTrials: many", f"{HP}.maxTrials: expected a whole number >= 1, got 'many'"),
        (PARAM + "maxTrials: 0", "maxTrials: expected a whole number >= 1, got 0"),
        (PARAM + "maxTrials: 2.5", "maxTrials: expected a whole number >= 1, got 2.5"),
        (PARAM + "maxParallelTrials: true", "maxParallelTrials: expected a whole number"),
        (PARAM + "maxFailedTrials: -1", "maxFailedTrials: expected a whole number >= 0"),
        (PARAM + "enableTrialEarlyStopping: maybe", "expected true or false, got 'maybe'"),
        (PARAM + "goal: BIGGER", f"{HP}.goal: expected one of MAXIMIZE, MINIMIZE,"),
        (PARAM + "algorithm: BAYES", f"{HP}.algorithm: expected one of ALGORITHM_UNSPECIFIED,"),
        (PARAM + "hyperparameterMetricTag: ''", "hyperparameterMetricTag: expected a non-empty"),
        (PARAM + "hyperparameterMetricTag: [a]", "expected a non-empty string, got a list"),
        (PARAM + "resumePreviousJobId: ''", f"{HP}.resumePreviousJobId: expected a non-empty"),
        ("goal: MAXIMIZE", f"{HP}.params: missing"),
        ("params: []", f"{HP}.params: expected a non-empty list, got a list"),
        ("params: {x: 1}", f"{HP}.params: expected a non-empty list, got a mapping"),
        ("params: [lr]", f"{HP}.params[0]: expected a mapping, got 'lr'"),
        ("params: [{type: DOUBLE}]", f"{HP}.params[0].parameterName: missing"),
        ("params: [{parameterName: x}]", f"{HP}.params[0].type: missing"),
        (
            "params: [{parameterName: x, type: FLOAT}]",
            f"{HP}.params[0].type: expected one of DOUBLE, INTEGER, DISCRETE, CATEGORICAL, "
            "got 'FLOAT'",
        ),
        (
            PARAM + "  - {parameterName: y, type: DOUBLE, minValue: x, maxValue: 1}",
            f"hptuning_config.yaml: {HP}.params[1].minValue: expected a number, got 'x'",
        ),
        (
            "params: [{parameterName: y, type: DOUBLE, minValue: 0, maxValue: .inf}]",
            "params[0].maxValue: expected a number, got inf",
        ),
        (
            "params: [{parameterName: y, type: DOUBLE, minValue: 1, maxValue: 2, "
            "scaleType: UNIT_SQRT_SCALE}]",
            "params[0].scaleType: expected one of UNIT_LINEAR_SCALE, UNIT_LOG_SCALE, "
            "UNIT_REVERSE_LOG_SCALE, NONE, got 'UNIT_SQRT_SCALE'",
        ),
        (
            "params: [{parameterName: y, type: DOUBLE, minValue: 1}]",
            "params[0].maxValue: missing (a DOUBLE parameter needs it)",
        ),
        (
            "params: [{parameterName: y, type: DOUBLE, minValue: 1, maxValue: 2, "
            "discreteValues: [1]}]",
            "params[0].discreteValues: not used by a DOUBLE parameter; remove it",
        ),
        (
            "params: [{parameterName: y, type: DISCRETE, discreteValues: [1, two]}]",
            "params[0].discreteValues[1]: expected a number, got 'two'",
        ),
        (
            "params: [{parameterName: y, type: CATEGORICAL, categoricalValues: [a, yes]}]",
            "params[0].categoricalValues[1]: expected a string, got true (quote it: 'True')",
        ),
        (
            "params: [{parameterName: y, type: CATEGORICAL, categoricalValues: []}]",
            "params[0].categoricalValues: expected a non-empty list",
        ),
        (
            "params: [{parameterName: y, tpye: DOUBLE}]",
            "params[0]: unknown key 'tpye' (did you mean 'type'?)",
        ),
        # ParamSpec's own checks, located
        (
            "params: [{parameterName: y, type: DOUBLE, minValue: 2, maxValue: 1}]",
            f"{HP}.params[0]: parameter 'y': min 2 must be less than max 1",
        ),
        (
            "params: [{parameterName: y, type: DOUBLE, minValue: 0, maxValue: 1, "
            "scaleType: UNIT_LOG_SCALE}]",
            "params[0]: parameter 'y': a log scale needs min > 0, got 0",
        ),
        (
            "params: [{parameterName: 'bad name', type: INTEGER, minValue: 0, maxValue: 1}]",
            "params[0]: parameter 'bad name': a name is letters",
        ),
        (
            "params: [{parameterName: y, type: INTEGER, minValue: 0.5, maxValue: 3}]",
            "params[0]: parameter 'y': INTEGER bounds must be whole numbers",
        ),
        (
            PARAM + "  - {parameterName: x, type: INTEGER, minValue: 0, maxValue: 3}",
            "params[1].parameterName: 'x' is already used by params[0]",
        ),
    ],
)
def test_config_errors_name_the_file_and_field(tmp_path: Path, hp: str, message: str) -> None:
    path = write(tmp_path, config_with(hp))
    with pytest.raises(InvalidSpec) as info:
        load_hptuning_config(path)
    assert str(info.value).startswith(f"{path}: "), info.value
    assert message.replace("hptuning_config.yaml: ", "") in str(info.value)


def test_config_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InvalidSpec, match=r"cannot read .*nope\.yaml: No such file"):
        load_hptuning_config(missing)
    with pytest.raises(InvalidSpec, match=r"cannot read .*nope\.yaml"):
        load_hptuning_config(str(missing))  # a string naming a .yaml file is a path
    with pytest.raises(InvalidSpec, match="cannot read"):
        load_hptuning_config(tmp_path)
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InvalidSpec, match=r"b\.yaml: it is not UTF-8 text"):
        load_hptuning_config(binary)


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "trainingInput:\n  hyperparameters:\n    goal: [MAXIMIZE\n",
            "line 4, column 1: invalid YAML:",
        ),
        ("a: b: c\n", "line 1, column 5: invalid YAML: mapping values are not allowed here"),
        ("hyperparameters: {}\nhyperparameters: {}\n", "line 2, column 1: invalid YAML: key "),
        ("date: 2001-02-30\n", "invalid YAML:"),
        ("- just\n- a list\n", "is not a tuning config: expected a mapping with "),
        ("42\n", "is not a tuning config: expected a mapping with"),
        ("", "is not a tuning config: expected a mapping with"),
        ("trainingInput:\n  scaleTier: BASIC\n", "is not a tuning config: no trainingInput."),
        (
            "trainingInput:\n  hyperparamters: {}\n",
            "no trainingInput.hyperparameters (did you mean 'trainingInput.hyperparamters'?)",
        ),
        ("trainingInput: [1]\n", "trainingInput: expected a mapping, got a list"),
        ("trainingInput:\n  hyperparameters: 3\n", f"{HP}: expected a mapping, got 3"),
        ("hyperparameters:\n", "hyperparameters: expected a mapping, got nothing (null)"),
        (
            "trainingInput: {hyperparameters: {}}\nhyperparameters: {}\n",
            "both trainingInput.hyperparameters and hyperparameters are set",
        ),
    ],
)
def test_config_yaml_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InvalidSpec) as info:
        load_hptuning_config(path)
    assert str(info.value).startswith(str(path)), info.value
    assert message in str(info.value)


def test_not_a_tuning_config_message(tmp_path: Path) -> None:
    path = write(tmp_path, "trainingInput:\n  scaleTier: BASIC\n", "config.yaml")
    with pytest.raises(InvalidSpec) as info:
        load_hptuning_config(path)
    assert str(info.value) == f"{path} is not a tuning config: no trainingInput.hyperparameters"


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["DOUBLE", "INTEGER", "DISCRETE", "CATEGORICAL", "UNIT_LOG_SCALE"])
    | st.sampled_from(["UNIT_REVERSE_LOG_SCALE", "MAXIMIZE", "GRID_SEARCH", "1e-4", "-3", "x"])
)
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4) | st.sampled_from(PARAM_KEYS), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A mostly valid mapping; one time in three a key is dropped, added or set to anything."""
    mapping = draw(base)
    if draw(st.integers(0, 2)) == 0:
        key = draw(st.sampled_from(sorted(mapping)) | st.sampled_from(PARAM_KEYS) | st.text())
        if draw(st.booleans()):
            mapping[key] = draw(anything)
        else:
            mapping.pop(key, None)
    return mapping


numbers = st.integers(-3, 10) | st.floats(-3, 10) | st.sampled_from(["1e-4", "2.5"])
needs: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "DOUBLE": {"minValue": numbers, "maxValue": numbers},
    "INTEGER": {"minValue": numbers, "maxValue": numbers},
    "DISCRETE": {"discreteValues": st.lists(numbers, min_size=1, max_size=4)},
    "CATEGORICAL": {"categoricalValues": st.lists(st.text(max_size=3), min_size=1, max_size=4)},
}
param_dicts = st.sampled_from(sorted(needs)).flatmap(
    lambda kind: mutated(
        st.fixed_dictionaries(
            {
                "parameterName": st.sampled_from(["x", "y", "lr", "n"]),
                "type": st.just(kind),
                **needs[kind],
            },
            optional={"scaleType": st.sampled_from(["UNIT_LINEAR_SCALE", "UNIT_LOG_SCALE"])},
        )
    )
)
hp_dicts = mutated(
    st.fixed_dictionaries(
        {"params": st.lists(param_dicts, min_size=1, max_size=3)},
        optional={
            "goal": st.sampled_from(["MAXIMIZE", "minimize", "GOAL_TYPE_UNSPECIFIED"]),
            "hyperparameterMetricTag": st.text(min_size=1, max_size=8),
            "maxTrials": st.integers(0, 50),
            "maxParallelTrials": st.integers(0, 4),
            "maxFailedTrials": st.integers(-1, 4),
            "enableTrialEarlyStopping": st.booleans(),
            "algorithm": st.sampled_from(["ALGORITHM_UNSPECIFIED", "GRID_SEARCH"]),
        },
    )
)
documents = (
    st.fixed_dictionaries({"trainingInput": st.fixed_dictionaries({"hyperparameters": hp_dicts})})
    | st.fixed_dictionaries({"hyperparameters": hp_dicts})
    | anything
)


def loads_or_refuses(text: str) -> None:
    try:
        fields = load_hptuning_config(text)
    except InvalidSpec:
        return
    assert isinstance(fields, dict)
    TuningSpec(**fields)  # whatever loads makes a valid spec


@FUZZ
@given(documents)
def test_config_fuzz_yaml_documents(document: Any) -> None:
    loads_or_refuses(yaml.safe_dump(document, allow_unicode=True))


@FUZZ
@given(st.text() | st.text(alphabet=st.sampled_from(" \n:-[]{}&*!|>'\"#%@`,?abc12"), max_size=40))
def test_config_fuzz_texts(text: str) -> None:
    loads_or_refuses(text)


# --- Optuna: suggest ----------------------------------------------------------------------------


def sample(params: tuple[ParamSpec, ...], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` trials of a random-sampling in-memory study, returning what suggest() gave."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        values = optuna_glue.suggest(trial, params)
        assert optuna_glue.values_from_internal(params, trial.params) == values
        study.tell(trial, 0.0)
        out.append(values)
    return out


def test_suggest_respects_bounds_types_and_scales() -> None:
    params = (
        ParamSpec("lin", D, -1.0, 1.0),
        ParamSpec("log", D, 1e-4, 1.0, scale=LOG),
        ParamSpec("rev", D, 1e-4, 1.0, scale=REV),
        ParamSpec("n", INT, 1, 4),
        ParamSpec("units", INT, 1, 1000, scale=LOG),
        ParamSpec("urev", INT, 1, 1000, scale=REV),
        ParamSpec("batch", DI, values=(32, 64, 0.5)),
        ParamSpec("opt", C, values=("adam", "sgd")),
    )
    trials = sample(params, 600)
    for values in trials:
        assert -1 <= values["lin"] <= 1 and 1e-4 <= values["log"] <= 1
        assert 1e-4 <= values["rev"] <= 1 and isinstance(values["rev"], float)
        assert values["n"] in {1, 2, 3, 4} and isinstance(values["n"], int)
        assert 1 <= values["units"] <= 1000 and 1 <= values["urev"] <= 1000
        assert isinstance(values["units"], int) and isinstance(values["urev"], int)
        assert values["batch"] in (32, 64, 0.5) and values["opt"] in ("adam", "sgd")

    def median(name: str) -> float:
        return statistics.median(v[name] for v in trials)

    # log: half the mass below the geometric mean 0.01; reverse log: mirrored, dense near max
    assert 0.003 < median("log") < 0.03
    assert 0.97 < median("rev") < 0.997
    assert sum(v["rev"] > 0.9 for v in trials) > 0.6 * len(trials)
    assert median("units") < 100 < median("urev")
    assert {v["n"] for v in trials} == {1, 2, 3, 4}
    assert {v["opt"] for v in trials} == {"adam", "sgd"}


def test_reverse_log_mapping_is_invertible_so_trials_can_be_enqueued() -> None:
    params = (ParamSpec("m", D, 0.5, 0.999, scale=REV), ParamSpec("k", INT, 2, 64, scale=REV))
    for p, value in [(params[0], 0.9), (params[0], 0.5), (params[0], 0.999), (params[1], 60)]:
        internal = optuna_glue.internal_from_value(p, value)
        assert math.isclose(float(optuna_glue.value_from_internal(p, internal)), value)
    assert optuna_glue.internal_from_value(params[1], 60) == 6
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
    wanted = {"m": 0.95, "k": 60}
    study.enqueue_trial(optuna_glue.internal_from_values(params, wanted))
    trial = study.ask()
    values = optuna_glue.suggest(trial, params)
    assert values["k"] == 60 and math.isclose(float(values["m"]), 0.95)
    assert optuna_glue.values_from_internal(params, trial.params) == values


# --- Optuna: samplers, grid, pruners ------------------------------------------------------------


GRID_PARAMS = (
    ParamSpec("n", INT, 1, 3),
    ParamSpec("b", DI, values=(16, 32)),
    ParamSpec("o", C, values=("adam", "sgd")),
)
PRODUCT = {(n, b, o) for n in (1, 2, 3) for b in (16, 32) for o in ("adam", "sgd")}


def test_grid_enumerates_the_product_then_stops() -> None:
    spec = tuning(*GRID_PARAMS, algorithm="grid", max_trials=100)
    assert grid_size(spec.params) == len(PRODUCT) == 12
    study = optuna.create_study(sampler=optuna_glue.make_sampler(spec))
    seen = []

    def objective(trial: optuna.Trial) -> float:
        values = optuna_glue.suggest(trial, spec.params)
        seen.append((values["n"], values["b"], values["o"]))
        return float(values["n"])

    study.optimize(objective, n_trials=spec.max_trials)
    assert len(seen) == 12 and set(seen) == PRODUCT


def test_grid_with_ask_and_tell_as_the_driver_runs_it() -> None:
    spec = tuning(*GRID_PARAMS, algorithm="grid", max_trials=100, parallel_trials=4)
    study = optuna.create_study(sampler=optuna_glue.make_sampler(spec))
    budget = min(spec.max_trials, grid_size(spec.params))
    running, seen = [], []
    for _ in range(budget):  # asked four at a time, told later: no duplicates, no exception
        trial = study.ask()
        values = optuna_glue.suggest(trial, spec.params)
        seen.append((values["n"], values["b"], values["o"]))
        running.append(trial)
        if len(running) == spec.parallel_trials:
            for t in running:
                study.tell(t, 1.0)
            running.clear()
    for t in running:
        study.tell(t, 1.0)
    assert len(seen) == 12 and set(seen) == PRODUCT
    assert isinstance(study.sampler, optuna.samplers.GridSampler)
    assert study.sampler.is_exhausted(study)


def test_grid_refuses_doubles_and_huge_products() -> None:
    with pytest.raises(InvalidSpec) as info:
        mixed = (ParamSpec("n", INT, 1, 3), ParamSpec("lr", D, 0, 1))
        optuna_glue.make_sampler(tuning(*mixed, algorithm="grid"))
    assert str(info.value) == (
        "grid search needs INTEGER, DISCRETE or CATEGORICAL parameters; 'lr' is DOUBLE"
    )
    huge = tuning(ParamSpec("a", INT, 1, 1000), ParamSpec("b", INT, 0, 100), algorithm="grid")
    with pytest.raises(InvalidSpec, match=r"grid search over 101,000 combinations is too many"):
        optuna_glue.make_sampler(huge)
    assert grid_size((ParamSpec("a", INT, 0, 10**12),)) == 10**12 + 1  # counted, not expanded
    assert grid_space((ParamSpec("a", INT, -1, 1),)) == {"a": [-1, 0, 1]}


@pytest.mark.parametrize(
    "algorithm, sampler",
    [
        ("tpe", optuna.samplers.TPESampler),
        ("random", optuna.samplers.RandomSampler),
        ("grid", optuna.samplers.GridSampler),
        ("cmaes", optuna.samplers.CmaEsSampler),
    ],
)
def test_make_sampler_types_and_seeds(algorithm: str, sampler: type) -> None:
    spec = tuning(*GRID_PARAMS, ParamSpec("k", INT, 1, 50, scale=LOG), algorithm=algorithm, seed=7)
    assert isinstance(optuna_glue.make_sampler(spec), sampler)

    def run() -> list[dict[str, Any]]:
        study = optuna.create_study(sampler=optuna_glue.make_sampler(spec))
        study.optimize(lambda t: float(optuna_glue.suggest(t, spec.params)["k"]), n_trials=12)
        return [t.params for t in study.trials]

    assert run() == run()  # the seed is passed through


def test_cmaes_samples_numbers_and_categoricals_without_warnings(
    recwarn: pytest.WarningsRecorder,
) -> None:
    numbers = (ParamSpec("x", D, -1, 1), ParamSpec("y", D, 1e-3, 1, scale=LOG))
    spec = tuning(*numbers, GRID_PARAMS[2], algorithm="cmaes", seed=0)
    study = optuna.create_study(sampler=optuna_glue.make_sampler(spec))
    study.optimize(lambda t: float(optuna_glue.suggest(t, spec.params)["x"]) ** 2, n_trials=15)
    assert len(study.trials) == 15
    assert not [w for w in recwarn if "independent" in str(w.message)]


def test_gp_needs_pytorch_and_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    spec = tuning(ParamSpec("x", D, 0, 1), algorithm="gp", seed=3)
    real = importlib.util.find_spec

    def without(missing: str) -> Any:
        return lambda name, *a: None if name == missing else real(name, *a)

    monkeypatch.setattr(importlib.util, "find_spec", without("torch"))
    with pytest.raises(InvalidSpec) as info:
        optuna_glue.make_sampler(spec)
    assert str(info.value) == "--algorithm gp needs PyTorch: pip install torch"
    monkeypatch.setattr(importlib.util, "find_spec", without("scipy"))
    with pytest.raises(InvalidSpec, match="--algorithm gp needs SciPy: pip install scipy"):
        optuna_glue.make_sampler(spec)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    assert isinstance(optuna_glue.make_sampler(spec), optuna.samplers.GPSampler)


def test_gp_samples_when_installed() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("scipy")
    spec = tuning(ParamSpec("x", D, 0, 1), GRID_PARAMS[2], algorithm="gp", seed=3)
    study = optuna.create_study(sampler=optuna_glue.make_sampler(spec))
    study.optimize(lambda t: float(optuna_glue.suggest(t, spec.params)["x"]), n_trials=12)
    assert len(study.trials) == 12


def test_make_pruner_and_direction() -> None:
    x = ParamSpec("x", D, 0, 1)
    assert isinstance(optuna_glue.make_pruner(tuning(x)), optuna.pruners.NopPruner)
    median = optuna_glue.make_pruner(tuning(x, early_stopping="median", max_trials=30))
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert getattr(median, "_n_startup_trials", None) == 5
    small = optuna_glue.make_pruner(tuning(x, early_stopping="median", max_trials=6))
    assert getattr(small, "_n_startup_trials", None) == 1
    hyperband = optuna_glue.make_pruner(tuning(x, early_stopping="hyperband"))
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    assert optuna_glue.direction(tuning(x)) == "maximize"
    assert optuna_glue.direction(tuning(x, goal="MINIMIZE")) == "minimize"


def test_median_pruner_prunes_a_bad_curve() -> None:
    spec = tuning(ParamSpec("x", D, 0, 1), early_stopping="median", max_trials=8)
    study = optuna.create_study(
        direction=optuna_glue.direction(spec), pruner=optuna_glue.make_pruner(spec)
    )
    for _ in range(2):  # the startup trials: good curves
        trial = study.ask()
        for step in range(5):
            trial.report(0.5 + step / 10, step)
        study.tell(trial, 0.9)
    bad = study.ask()
    bad.report(0.1, 0)
    assert bad.should_prune()


def test_package_import_does_not_import_optuna() -> None:
    code = "import sys, jupyter_cloudml.tuning; print('optuna' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_config_that_is_no_text_file_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="cannot read /dev/zero: it is not a regular file"):
        load_hptuning_config(Path("/dev/zero"))
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (2 << 20))
    with pytest.raises(InvalidSpec, match=r"big\.yaml: it is larger than 1024 KiB"):
        load_hptuning_config(big)
