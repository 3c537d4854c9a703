"""`jupyter_cloudml.commands.study_flags`: the tuning flags of `train` and the `studies VERB`
commands, parsed through the one grammar (`parse_command`) as the CLI and the magics parse them,
and turned into a `TuningSpec` by `build_tuning_spec` (Google AI Platform tuning configs read from
real files)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from cloudml_testkit import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_cloudml.commands.grammar import parse_command
from jupyter_cloudml.commands.study_flags import build_tuning_spec
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

EXAMPLE_CONFIG = REPO / "examples" / "hypertune-trainer" / "hptuning_config.yaml"
D, INT, DI, C = ParamType.DOUBLE, ParamType.INTEGER, ParamType.DISCRETE, ParamType.CATEGORICAL


def tuning(*flags: str, source_dir: str | Path = ".") -> TuningSpec | None:
    """`train SCRIPT.py FLAGS...` through the grammar, then into its study (or None)."""
    ns = parse_command(["train", "train.py", *flags])
    assert ns.verb == "train" and ns.script == "train.py"
    return build_tuning_spec(ns, source_dir)


def refused(*flags: str, source_dir: str | Path = ".") -> str:
    with pytest.raises(InvalidSpec) as error:
        tuning(*flags, source_dir=source_dir)
    return str(error.value)


# --- a plain job, a study -----------------------------------------------------------------------


def test_no_tuning_flag_is_a_plain_job():
    assert tuning() is None
    assert tuning("--workers", "2", "--cpu", "1", "--", "--lr", "0.1") is None


def test_every_flag_reaches_its_field():
    spec = tuning(
        "--param", "lr=loguniform(1e-4,1e-1)",
        "--param", "layers=int(1,4)",
        "--param", "opt=choice(adam,sgd)",
        "--metric", "accuracy",
        "--goal", "minimize",
        "--trials", "30",
        "--parallel", "4",
        "--max-failed-trials", "5",
        "--algorithm", "random",
        "--early-stopping", "median",
        "--seed", "42",
    )  # fmt: skip
    assert spec == TuningSpec(
        params=(
            ParamSpec("lr", D, 1e-4, 0.1, scale=Scale.LOG),
            ParamSpec("layers", INT, 1, 4),
            ParamSpec("opt", C, values=("adam", "sgd")),
        ),
        metric="accuracy",
        goal=Goal.MINIMIZE,
        max_trials=30,
        parallel_trials=4,
        max_failed_trials=5,
        algorithm=Algorithm.RANDOM,
        early_stopping=EarlyStopping.MEDIAN,
        seed=42,
    )


def test_defaults_of_a_study():
    spec = tuning("--param", "x=uniform(0,1)", "--metric", "loss")
    assert spec is not None
    assert (spec.goal, spec.max_trials, spec.parallel_trials) == (Goal.MAXIMIZE, 10, 1)
    assert (spec.algorithm, spec.early_stopping) == (Algorithm.TPE, EarlyStopping.NONE)
    assert spec.max_failed_trials is None and spec.seed is None


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("lr=uniform(0,1)", ParamSpec("lr", D, 0.0, 1.0)),
        ("lr=loguniform(1e-5,1)", ParamSpec("lr", D, 1e-5, 1.0, scale=Scale.LOG)),
        ("m=reverselog(0.5,0.999)", ParamSpec("m", D, 0.5, 0.999, scale=Scale.REVERSE_LOG)),
        ("n=int(1,8)", ParamSpec("n", INT, 1, 8)),
        ("n=logint(1,1024)", ParamSpec("n", INT, 1, 1024, scale=Scale.LOG)),
        ("n=reverselogint(1,9)", ParamSpec("n", INT, 1, 9, scale=Scale.REVERSE_LOG)),
        ("bs=discrete(32,64,128)", ParamSpec("bs", DI, values=(32, 64, 128))),
        ("act=choice(relu,'a, b',\"tanh\")", ParamSpec("act", C, values=("relu", "a, b", "tanh"))),
        ("x.y-z_1=uniform(-1, 1)", ParamSpec("x.y-z_1", D, -1.0, 1.0)),
        ("n=int(1e0,1e3)", ParamSpec("n", INT, 1, 1000)),
    ],
)  # fmt: skip
def test_each_kind_of_space(flag, expected):
    for argv in (["--param", flag], [f"--param={flag}"]):
        spec = tuning(*argv, "--metric", "m")
        assert spec is not None and spec.params == (expected,)


def test_the_bounds_keep_their_types():
    spec = tuning("--param", "a=uniform(0,1)", "--param", "b=int(1,4)", "--metric", "m")
    assert spec is not None
    a, b = spec.params
    assert type(a.min_value) is float and type(a.max_value) is float
    assert type(b.min_value) is int and type(b.max_value) is int


def test_a_param_given_twice_keeps_the_last():
    spec = tuning("--param", "lr=uniform(0,1)", "--param", "lr=uniform(0,2)", "--metric", "m")
    assert spec is not None and spec.params == (ParamSpec("lr", D, 0.0, 2.0),)


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--metric", "acc"], "--metric"),
        (["--goal", "minimize"], "--goal"),
        (["--trials", "3"], "--trials"),
        (["--parallel", "2"], "--parallel"),
        (["--max-failed-trials", "1"], "--max-failed-trials"),
        (["--algorithm", "grid"], "--algorithm"),
        (["--early-stopping", "median"], "--early-stopping"),
        (["--seed", "1"], "--seed"),
        (["--trials", "3", "--goal", "minimize"], "--goal, --trials"),
    ],
)
def test_tuning_flags_without_a_param_are_refused_naming_them(flags, named):
    message = refused(*flags)
    assert message == (
        f"{named} tune hyperparameters: add --param NAME=SPACE or --hptuning-config FILE"
    )


@pytest.mark.parametrize("metric", [[], ["--metric", ""]])
def test_a_study_without_a_metric_is_refused(metric):
    message = refused("--param", "x=uniform(0,1)", *metric)
    assert message.startswith("a study needs the metric to optimise: add --metric NAME")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("lr", "expected NAME=KIND(ARGS), e.g. lr=loguniform(1e-4,1e-1)"),
        ("lr=0.1", "expected KIND(ARGS) after '='"),
        ("lr=unifrom(0,1)", "unknown kind 'unifrom', did you mean 'uniform'?"),
        ("lr=uniform(1,0)", "min 1 must be less than max 0"),
        ("lr=uniform(0)", "uniform takes 2 values (LO,HI), got 1"),
        ("lr=uniform(0,nan)", "'nan' is not a finite number"),
        ("lr=loguniform(0,1)", "a log scale needs min > 0"),
        ("n=int(0.5,4)", "INTEGER bounds must be whole numbers"),
        ("bs=discrete()", "discrete needs at least one value"),
        ("bs=discrete(1,a)", "'a' is not a finite number"),
        ("bs=discrete(1,1)", "values are repeated"),
        ("o=choice(a,,b)", "empty value in the list"),
        ("o=choice('a)", "unterminated quote"),
        ("o=choice(a b)", "'a b' needs quotes"),
        ("1x=uniform(0,1)", "a name is letters, digits, '_', '-' or '.'"),
        ("=uniform(0,1)", "a name is letters, digits"),
    ],
)
def test_bad_params_are_refused_quoting_the_flag(text, says):
    message = refused(f"--param={text}", "--metric", "m")
    assert message.startswith(f"--param {text!r}: ")
    assert says in message


CHOOSE_GOAL = "(choose from 'maximize', 'minimize')"
CHOOSE_ALGORITHM = "(choose from 'tpe', 'random', 'grid', 'cmaes', 'gp')"
CHOOSE_STOP = "(choose from 'none', 'median', 'hyperband')"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--goal", "MAXIMIZE"], f"--goal: invalid choice: 'MAXIMIZE' {CHOOSE_GOAL}"),
        (["--algorithm", "bayes"], f"--algorithm: invalid choice: 'bayes' {CHOOSE_ALGORITHM}"),
        (["--early-stopping", "yes"], f"--early-stopping: invalid choice: 'yes' {CHOOSE_STOP}"),
        (["--trials", "1e3"], "--trials: expected a whole number, got '1e3'"),
        (["--parallel", "two"], "--parallel: expected a whole number, got 'two'"),
        (["--seed", "0.5"], "--seed: expected a whole number, got '0.5'"),
        (["--max-failed-trials", "x"], "--max-failed-trials: expected a whole number, got 'x'"),
        (["--trials", "0"], "--trials must be at least 1, got 0"),
        (["--parallel", "0"], "--parallel must be at least 1, got 0"),
        (["--parallel", "-2"], "--parallel must be at least 1, got -2"),
        (["--max-failed-trials", "-1"], "max failed trials must be >= 0, got -1"),
        (["--trials"], "--trials: expected one argument"),
        (["--parm", "y=int(1,2)"], "unknown option '--parm' (did you mean --param?)"),
    ],
)  # fmt: skip
def test_bad_values_of_the_other_flags_are_refused(flags, message):
    assert refused("--param", "x=uniform(0,1)", "--metric", "m", *flags) == message


def test_a_param_flag_with_nothing_after_it_is_refused():
    assert refused("--param") == "--param: expected one argument"
    assert refused("--param", "--metric", "m") == "--param: expected one argument"


# --- --hptuning-config FILE ---------------------------------------------------------------------


def test_the_google_example_config_is_a_study(tmp_path):
    shutil.copy(EXAMPLE_CONFIG, tmp_path / "hptuning_config.yaml")
    spec = tuning("--hptuning-config", "hptuning_config.yaml", source_dir=tmp_path)
    assert spec == TuningSpec(
        params=(ParamSpec("x1", D, -5.0, 10.0), ParamSpec("x2", D, 0.0, 15.0)),
        metric="neg_branin",
        goal=Goal.MAXIMIZE,
        max_trials=12,
        parallel_trials=2,
        max_failed_trials=2,
        early_stopping=EarlyStopping.NONE,
    )


CONFIG = """\
trainingInput:
  scaleTier: BASIC
  hyperparameters:
    goal: MINIMIZE
    hyperparameterMetricTag: val_loss
    maxTrials: 20
    maxParallelTrials: 3
    enableTrialEarlyStopping: true
    algorithm: RANDOM_SEARCH
    params:
      - parameterName: learning_rate
        type: DOUBLE
        minValue: 0.0001
        maxValue: 0.1
        scaleType: UNIT_LOG_SCALE
      - parameterName: layers
        type: INTEGER
        minValue: 1
        maxValue: 4
      - parameterName: batch_size
        type: DISCRETE
        discreteValues: [32, 64, 128]
      - parameterName: optimizer
        type: CATEGORICAL
        categoricalValues: [adam, sgd]
"""


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A notebook's folder holding a tuning config."""
    folder = tmp_path / "notebook"
    (folder / "conf").mkdir(parents=True)
    (folder / "conf" / "hp.yaml").write_text(CONFIG)
    return folder


def test_every_field_and_kind_of_a_config_file(source):
    spec = tuning("--hptuning-config", "conf/hp.yaml", source_dir=source)
    assert spec == TuningSpec(
        params=(
            ParamSpec("learning_rate", D, 1e-4, 0.1, scale=Scale.LOG),
            ParamSpec("layers", INT, 1, 4),
            ParamSpec("batch_size", DI, values=(32, 64, 128)),
            ParamSpec("optimizer", C, values=("adam", "sgd")),
        ),
        metric="val_loss",
        goal=Goal.MINIMIZE,
        max_trials=20,
        parallel_trials=3,
        algorithm=Algorithm.RANDOM,
        early_stopping=EarlyStopping.MEDIAN,
    )


def test_the_config_path_is_relative_to_the_source_folder_or_absolute(source, tmp_path):
    relative = tuning("--hptuning-config", "conf/hp.yaml", source_dir=source)
    absolute = tuning("--hptuning-config", str(source / "conf" / "hp.yaml"), source_dir=tmp_path)
    assert relative == absolute
    message = refused("--hptuning-config", "conf/hp.yaml", source_dir=tmp_path)
    assert message == f"cannot read {tmp_path / 'conf' / 'hp.yaml'}: No such file or directory"


def test_flags_override_single_fields_of_the_config(source):
    spec = tuning(
        "--hptuning-config", "conf/hp.yaml",
        "--metric", "accuracy",
        "--goal", "maximize",
        "--trials", "5",
        "--algorithm", "tpe",
        "--early-stopping", "none",
        source_dir=source,
    )  # fmt: skip
    assert spec is not None
    assert (spec.metric, spec.goal, spec.max_trials) == ("accuracy", Goal.MAXIMIZE, 5)
    assert (spec.algorithm, spec.early_stopping) == (Algorithm.TPE, EarlyStopping.NONE)
    assert spec.parallel_trials == 3  # not overridden: the file's
    assert [p.name for p in spec.params] == ["learning_rate", "layers", "batch_size", "optimizer"]


def test_a_param_flag_replaces_the_configs_param_of_that_name_and_adds_new_ones(source):
    spec = tuning(
        "--hptuning-config", "conf/hp.yaml",
        "--param", "layers=int(2,8)",
        "--param", "dropout=uniform(0,0.5)",
        source_dir=source,
    )  # fmt: skip
    assert spec is not None
    assert [p.name for p in spec.params] == [
        "learning_rate", "layers", "batch_size", "optimizer", "dropout",
    ]  # fmt: skip
    assert spec.params[1] == ParamSpec("layers", INT, 2, 8)
    assert spec.params[4] == ParamSpec("dropout", D, 0.0, 0.5)


def test_a_config_without_a_metric_tag_uses_googles_default(tmp_path):
    (tmp_path / "hp.yaml").write_text(
        textwrap.dedent(
            """\
            trainingInput:
              hyperparameters:
                params:
                  - {parameterName: x, type: DOUBLE, minValue: 0, maxValue: 1}
            """
        )
    )
    spec = tuning("--hptuning-config", "hp.yaml", source_dir=tmp_path)
    assert spec is not None and spec.metric == "training/hptuning/metric"
    # tuning flags next to the file need no --param
    spec = tuning("--hptuning-config", "hp.yaml", "--trials", "2", source_dir=tmp_path)
    assert spec is not None and spec.max_trials == 2


@pytest.mark.parametrize(
    ("yaml_text", "says"),
    [
        (
            CONFIG.replace("maxTrials: 20", "maxTrails: 20"),
            "trainingInput.hyperparameters: unknown key 'maxTrails' (did you mean 'maxTrials'?)",
        ),
        (
            CONFIG.replace("minValue: 1\n", "minValue: one\n"),
            "trainingInput.hyperparameters.params[1].minValue: expected a number, got 'one'",
        ),
        (
            CONFIG.replace("goal: MINIMIZE", "goal: LOWER"),
            "trainingInput.hyperparameters.goal: expected one of MAXIMIZE, MINIMIZE",
        ),
        ("trainingInput: {}\n", "is not a tuning config: no trainingInput.hyperparameters"),
        ("trainingInput: [\n", "invalid YAML"),
    ],
)
def test_config_mistakes_are_refused_naming_the_file_and_field(tmp_path, yaml_text, says):
    (tmp_path / "hp.yaml").write_text(yaml_text)
    message = refused("--hptuning-config", "hp.yaml", "--metric", "m", source_dir=tmp_path)
    assert message.startswith(str(tmp_path / "hp.yaml")), message
    assert says in message


def test_a_bad_param_flag_is_refused_before_the_config_is_read(tmp_path):
    # the grammar refuses the flag; the missing file is never opened
    message = refused(
        "--hptuning-config", "missing.yaml", "--param=x=int(2,1)", source_dir=tmp_path
    )
    assert message.startswith("--param 'x=int(2,1)': ")


# --- studies VERB -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["studies"], {"study_verb": "list", "limit": 20, "output": "text"}),
        (["studies", "list", "--limit", "5", "-o", "json"], {"limit": 5, "output": "json"}),
        (["studies", "describe", "lr-0b12aa"], {"study": "lr-0b12aa", "output": "text"}),
        (["studies", "best", "s1", "--output", "json"], {"study": "s1", "output": "json"}),
        (["studies", "trials", "s1"], {"study": "s1", "sort": "metric"}),
        (["studies", "trials", "s1", "--sort", "number"], {"sort": "number"}),
        (["studies", "cancel", "s1"], {"study_verb": "cancel", "study": "s1"}),
    ],
)
def test_study_verbs(argv, expected):
    ns = vars(parse_command(argv))
    assert ns["verb"] == "studies"
    assert ns["study_verb"] == (argv[1] if len(argv) > 1 else "list")
    assert {k: ns[k] for k in expected} == expected
    if ns["study_verb"] == "cancel":
        assert "output" not in ns


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["studies", "describe"], "missing STUDY (usage: cloudml studies describe"),
        (["studies", "trails", "s1"], "unknown command 'trails' (did you mean trials?)"),
        (["studies", "trials", "s1", "--sort", "value"], "--sort: invalid choice: 'value'"),
        (["studies", "cancel", "s1", "-o", "json"], "unknown option '-o'"),
        (["studies", "list", "--limit", "many"], "--limit: expected a whole number, got 'many'"),
    ],
)
def test_study_verb_refusals(argv, message):
    with pytest.raises(InvalidSpec) as error:
        parse_command(argv)
    assert str(error.value).startswith(message)


# --- fuzz ---------------------------------------------------------------------------------------

KIND = st.sampled_from(
    ["uniform", "loguniform", "reverselog", "int", "logint", "reverselogint", "discrete", "choice"]
) | st.sampled_from(["Uniform", "unifrom", "", "x"])
ARGS = st.text(alphabet=st.sampled_from("0123456789.,-+e 'ab\"\\()infa_E\n\t"), max_size=24)
NAME = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,6}", fullmatch=True) | st.text(max_size=4)
PARAM_TEXT = (
    st.text()
    | st.builds(lambda n, k, a: f"{n}={k}({a})", NAME, KIND, ARGS)
    | st.builds(lambda n, k, a: f"{n} = {k} ( {a} )", NAME, KIND, ARGS)
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=PARAM_TEXT, attached=st.booleans())
def test_fuzzed_param_flags_give_a_study_or_invalid_spec(text, attached):
    argv = [f"--param={text}"] if attached else ["--param", text]
    try:
        spec = tuning(*argv, "--metric", "m")
    except InvalidSpec as error:
        assert str(error)  # a message, whatever the text
    else:
        assert spec is not None and len(spec.params) == 1
        assert isinstance(spec.params[0], ParamSpec)


# --- tuning_flags: the magic that reproduces a study -------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ["--param", "x=uniform(-1,1)", "--metric", "score"],
        [
            *("--param", "lr=loguniform(0.0001,0.1)", "--param", "depth=int(2,8)"),
            *("--param", "opt=choice(adam,'s g d')", "--param", "bs=discrete(16,32.5)"),
            *("--metric", "loss", "--goal", "minimize", "--trials", "8", "--parallel", "2"),
            *("--max-failed-trials", "3", "--algorithm", "random", "--early-stopping", "median"),
            *("--seed", "1", "--resume", "tune-1a2b3c"),
        ],
    ],
)
def test_tuning_flags_round_trip(flags: list[str]) -> None:
    from jupyter_cloudml.commands.unparse import tuning_flags

    first = tuning(*flags)
    assert first is not None
    assert tuning(*tuning_flags(first)) == first


def test_a_study_magic_puts_the_tuning_before_the_trainer_args_and_keeps_the_cell() -> None:
    from jupyter_cloudml.commands.unparse import reproduce_study_magic
    from jupyter_cloudml.models import CodePackage, TrainSpec

    template = TrainSpec(
        name="sgd", package=CodePackage(archive=b"", module="_cloudml_main"), args=("--v",)
    )
    study = TuningSpec(params=(ParamSpec("x", D, 0.5, 2.0),), metric="loss", goal=Goal.MINIMIZE)
    assert reproduce_study_magic(template, study, "fit()\n") == (
        "%%cloudml_train --name sgd --param 'x=uniform(0.5,2)' --metric loss --goal minimize "
        "-- --v\nfit()\n"
    )
