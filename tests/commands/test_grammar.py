"""The one argument grammar: parsing, bad input with its message, building specs, fuzzing."""

from __future__ import annotations

import argparse
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jupyter_cloudml
from jupyter_cloudml.commands.flag_types import parse_duration
from jupyter_cloudml.commands.grammar import (
    GROUPS,
    VERBS,
    HelpRequested,
    parse_command,
    parse_verb,
    verb_parser,
)
from jupyter_cloudml.commands.train_spec import build_job_query, build_train_spec
from jupyter_cloudml.commands.unparse import reproduce_magic, train_flags
from jupyter_cloudml.exceptions import InvalidSpec, PackagingError
from jupyter_cloudml.models import CodePackage, Framework, JobStatus, Replicas, Resources


def train(*argv: str) -> argparse.Namespace:
    return parse_command(["train", *argv])


def spec(*argv: str, cell: str | None = "x = 1", source_dir: Any = ".", user_ns: Any = None):
    return build_train_spec(train(*argv), cell=cell, source_dir=source_dir, user_ns=user_ns)


class FakePackaging(types.ModuleType):
    """Stands in for `jupyter_cloudml.packaging`, recording what it was asked to package."""

    def __init__(self) -> None:
        super().__init__("jupyter_cloudml.packaging")
        # Its submodules are the real ones (`files` reads env files and configs).
        self.__path__ = [str(Path(jupyter_cloudml.__file__).parent / "packaging")]
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def package_cell(self, cell: str, **kwargs: Any) -> CodePackage:
        self.calls.append(("cell", (cell,), kwargs))
        return CodePackage(archive=b"", module="_cloudml_main")

    def package_directory(self, path: str, module: str, **kwargs: Any) -> CodePackage:
        self.calls.append(("directory", (path, module), kwargs))
        return CodePackage(archive=b"", module=module)


@pytest.fixture
def packaging(monkeypatch: pytest.MonkeyPatch) -> FakePackaging:
    fake = FakePackaging()
    monkeypatch.setitem(sys.modules, "jupyter_cloudml.packaging", fake)
    monkeypatch.setattr(jupyter_cloudml, "packaging", fake, raising=False)
    return fake


# --- dispatch ---------------------------------------------------------------------------------


def test_jobs_alone_lists_and_jobs_verb_equals_verb() -> None:
    assert parse_command(["jobs"]).verb == "list"
    assert parse_command(["jobs", "--status", "running"]).verb == "list"
    a, b = parse_command(["jobs", "describe", "j1"]), parse_command(["describe", "j1"])
    assert (
        vars(a)
        == vars(b)
        == {"verb": "describe", "job": "j1", "output": "text", "trainer_args": ()}
        | {"program": "cloudml"}
    )


@pytest.mark.parametrize("argv", [[], ["--help"], ["-h"], ["help"], ["jobs", "-h"]])
def test_top_level_help_lists_every_verb(argv: list[str]) -> None:
    with pytest.raises(HelpRequested) as info:
        parse_command(argv, prog="%cloudml")
    assert all(verb in info.value.text for verb in VERBS)
    assert "%cloudml COMMAND --help" in info.value.text


def test_verb_help_is_shown_not_exited() -> None:
    with pytest.raises(HelpRequested) as info:
        parse_command(["jobs", "logs", "--help"])
    assert info.value.text.startswith("usage: cloudml jobs logs")
    with pytest.raises(HelpRequested) as info:
        parse_verb("train", ["--help"], "%%cloudml_train")
    assert "usage: %%cloudml_train [options]" in info.value.text
    assert "resources (per replica)" in info.value.text


def test_every_option_has_help_with_an_example() -> None:
    for verb in VERBS:
        for action in verb_parser(verb, "cloudml")._actions:
            assert action.help, (verb, action.dest)
            if action.option_strings and action.nargs != 0 and action.dest != "help":
                assert "e.g." in action.help, (verb, action.dest)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["trian"], "unknown command 'trian' (did you mean train?)"),
        (["jobs", "lsit"], "unknown command 'lsit' (did you mean list?)"),
        (["jobs", "describe"], "missing JOB"),
        (["logs", "j", "--tail", "-3"], "--tail: must be >= 0, got -3"),
        (["logs", "j", "--folow"], "unknown option '--folow' (did you mean --follow?)"),
        (["list", "--status", "runing"], "'runing' is not a status"),
        (["list", "--limit", "ten"], "--limit: expected a whole number, got 'ten'"),
        (["describe", "a", "b"], "unexpected argument 'b'"),
        (["describe", "j", "-o", "yaml"], "invalid choice: 'yaml'"),
        (["wait", "j", "--timeout", "soon"], "like 90s, 30m, 2h"),
        (["logs", "j", "--", "x"], "'logs' takes none"),
        (["train", "--wokers", "3"], "unknown option '--wokers' (did you mean --workers?)"),
        (["train", "--wokers=3"], "unknown option '--wokers' (did you mean --workers?)"),
        (["train", "--work", "3"], "unknown option '--work'"),  # no abbreviations
        (["train", "--workers", "two"], "--workers: expected a whole number, got 'two'"),
        (["train", "--env", "NOEQUALS"], "--env: expected KEY=VALUE, got 'NOEQUALS'"),
        (["train", "--label", "=v"], "--label: expected KEY=VALUE"),
        (["train", "--cpu", "nan"], "--cpu: expected a number"),
        (["train", "--framework", "tf"], "invalid choice: 'tf'"),
        (["train", "--timeout", "2 weeks"], "--timeout: expected seconds or a duration"),
        (["train", "a.py", "b.py"], "unexpected argument 'b.py' (trainer arguments go after '--')"),
        (["train", "--name"], "--name: expected one argument"),
    ],
)
def test_bad_input_is_one_clear_message(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidSpec) as info:
        parse_command(argv)
    assert message in str(info.value)
    assert not str(info.value).startswith("argument ")  # argparse's prefix is dropped


# --- train namespace --------------------------------------------------------------------------


def test_trainer_args_after_double_dash_are_kept_verbatim() -> None:
    ns = train("train.py", "--workers", "2", "--", "--epochs", "3", "--workers", "x", "--")
    assert ns.script == "train.py" and ns.workers == 2
    assert ns.trainer_args == ("--epochs", "3", "--workers", "x", "--")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1.5h", 5400), ("1d", 86400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert train("--timeout", text).timeout == seconds


def test_list_query() -> None:
    ns = parse_command(
        [
            *["list", "--status", "running", "QUEUED,failed", "--status", "running"],
            *["--name", "mn", "--label", "team=cv", "--limit", "5", "--offset", "10"],
        ]
    )
    query = build_job_query(ns)
    assert query.status == (JobStatus.RUNNING, JobStatus.QUEUED, JobStatus.FAILED)
    assert (query.name, dict(query.labels), query.limit, query.offset) == (
        "mn",
        {"team": "cv"},
        5,
        10,
    )
    with pytest.raises(InvalidSpec, match=r"limit must be 1\.\.10000"):
        build_job_query(parse_command(["list", "--limit", "0"]))


# --- build_train_spec -------------------------------------------------------------------------


def test_cell_spec_fields(packaging: FakePackaging) -> None:
    s = spec(
        *["--workers", "3", "--env", "LR=0.1", "--env", "A=x=y", "--label", "team=cv"],
        *["--cpu", "0.5", "--memory", "2Gi", "--gpus", "1", "--gpu-type", "t4"],
        *["--retries", "2", "--timeout", "30m", "--image", "img:1", "--python", "/py"],
        *["--pre-command", "echo hi", "--post-command", "ls", "--node-selector", "pool=gpu"],
        *["--pip", "numpy", "--pip", "scipy>=1", "--include", "data", "--exclude", "*.ckpt"],
        *["--", "--epochs", "3"],
        cell="print(1)",
    )
    assert s.name == "cell"
    assert s.replicas == Replicas(workers=3)
    assert dict(s.env) == {"LR": "0.1", "A": "x=y"}
    assert dict(s.labels) == {"team": "cv"} and dict(s.node_selector) == {"pool": "gpu"}
    assert (s.resources.cpu, s.resources.memory, s.resources.gpus, s.resources.gpu_type) == (
        0.5,
        "2Gi",
        1,
        "t4",
    )
    assert (s.retries, s.timeout, s.image, s.python) == (2, 1800, "img:1", "/py")
    assert (s.pre_command, s.post_command) == ("echo hi", "ls")
    assert s.args == ("--epochs", "3")
    ((kind, (cell,), kwargs),) = packaging.calls
    assert (kind, cell, kwargs["source_dir"]) == ("cell", "print(1)", ".")
    assert kwargs["pip"] == ("numpy", "scipy>=1")
    assert (kwargs["includes"], kwargs["excludes"]) == (("data",), ("*.ckpt",))


def test_each_role_can_have_its_own_resources_and_image(packaging: FakePackaging) -> None:
    s = spec(
        "--framework", "tensorflow", "--ps", "1", "--workers", "2", "--evaluators", "1",
        "--gpus", "1", "--gpu-type", "t4", "--cpu", "2", "--memory", "8Gi",
        "--resources", "ps=cpu:4,memory:16Gi,gpus:0",
        "--resources", "evaluator=gpus:0,cpu:1",
        "--role-image", "ps=tf-cpu:2.15", "--tf-master",
    )  # fmt: skip
    assert s.replicas == Replicas(chief=1, workers=2, ps=1, evaluators=1)
    assert s.replicas.names() == ["chief-0", "worker-0", "worker-1", "ps-0", "evaluator-0"]
    gpu = Resources(cpu=2, memory="8Gi", gpus=1, gpu_type="t4")
    assert s.resources_of("chief") == s.resources_of("worker") == gpu
    assert s.resources_of("ps") == Resources(cpu=4, memory="16Gi")
    assert s.resources_of("evaluator") == Resources(cpu=1, memory="8Gi")
    assert s.image_of("ps") == "tf-cpu:2.15" and s.image_of("worker") is None
    assert s.tf_chief_name == "master"
    assert s.demand() == (2 * 3 + 4 + 1, 3)


def test_tensorflow_ps_implies_a_chief(packaging: FakePackaging) -> None:
    tf = ("--framework", "tensorflow")
    assert spec(*tf, "--ps", "2", "--workers", "4").replicas == Replicas(chief=1, workers=4, ps=2)
    assert spec(*tf, "--chief").replicas == Replicas(chief=1, workers=1, ps=0)
    assert spec(*tf, "--workers", "2").replicas == Replicas(chief=0, workers=2, ps=0)
    s = spec("--framework", "pytorch", "--workers", "4")
    assert (s.framework, s.replicas) == (Framework.PYTORCH, Replicas(workers=4))


def test_job_dir_is_a_field_and_a_trainer_flag(packaging: FakePackaging) -> None:
    s = spec("--job-dir", "s3://b/run", "--", "--lr", "1")
    assert s.job_dir == "s3://b/run"
    assert s.args == ("--lr", "1", "--job-dir", "s3://b/run")
    given_twice = spec("--job-dir", "out", "--", "--job-dir=elsewhere")
    assert given_twice.args == ("--job-dir=elsewhere",)


def test_exports_are_resolved_from_the_notebook(packaging: FakePackaging) -> None:
    s = spec("--export", "a,b", "--export", "c", "--return", "y", user_ns={"a": 1, "b": 2, "c": 3})
    kwargs = packaging.calls[0][2]
    assert kwargs["exports"] == {"a": 1, "b": 2, "c": 3}
    assert kwargs["returns"] == ("y",) == s.returns


def test_script_is_packaged_from_its_folder(packaging: FakePackaging, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "My Train.py").write_text("print('hi')\n")
    s = spec("src/My Train.py", "--include", "src/util.py", cell=None, source_dir=tmp_path)
    assert s.name == "my-train"
    ((_, (source,), kwargs),) = packaging.calls
    assert source == "print('hi')\n"
    assert Path(kwargs["source_dir"]) == tmp_path / "src"
    assert kwargs["includes"] == (str(tmp_path / "src" / "util.py"),)


def test_package_path_and_module(packaging: FakePackaging, tmp_path: Path) -> None:
    s = spec(
        "--package-path", "trainer", "--module", "trainer.task", cell=None, source_dir=tmp_path
    )
    assert s.name == "trainer-task"
    ((kind, (path, module), _),) = packaging.calls
    assert (kind, Path(path), module) == ("directory", tmp_path / "trainer", "trainer.task")
    named = spec("--package-path", "t", "--module", "t.m", "--name", "mine", cell="  \n")
    assert named.name == "mine"


@pytest.mark.parametrize(
    ("argv", "cell", "user_ns", "message"),
    [
        (["--workers", "0"], "x=1", {}, "--workers must be at least 1, got 0"),
        (["--workers", "-2"], "x=1", {}, "--workers must be at least 1, got -2"),
        (["--ps", "-1", "--framework", "tensorflow"], "x=1", {}, "--ps must be >= 0"),
        (["--retries", "-1"], "x=1", {}, "--retries must be >= 0"),
        (["--gpus", "-1"], "x=1", {}, "gpus must be >= 0"),
        (["--cpu", "-1"], "x=1", {}, "cpu must be >= 0"),
        (["--memory", "lots"], "x=1", {}, "memory 'lots' is not a quantity"),
        (["--gpu-type", "a100"], "x=1", {}, "without --gpus"),
        (["--timeout", "0"], "x=1", {}, "--timeout must be > 0"),
        (["--ps", "2"], "x=1", {}, "--ps, --chief and --evaluators are TensorFlow roles"),
        (["--evaluators", "1"], "x=1", {}, "--ps, --chief and --evaluators are TensorFlow"),
        (["--resources", "ps=cpu:2"], "x=1", {}, "resources for role 'ps', but the job has no ps"),
        (["--resources", "boss=cpu:2"], "x=1", {}, "resources for role 'boss': the roles are"),
        (["--resources", "worker=cpu"], "x=1", {}, "'cpu' in 'worker=cpu': expected KEY:VALUE"),
        (["--resources", "worker=disk:9"], "x=1", {}, "KEY one of cpu, memory, gpus, gpu-type"),
        (["--resources", "worker=gpus:x"], "x=1", {}, "expected a whole number"),
        (
            ["--resources", "worker=cpu:1", "--resources", "worker=gpus:1"],
            "x=1",
            {},
            "--resources worker=... is given twice",
        ),
        (["--role-image", "ps=img"], "x=1", {}, "image for role 'ps', but the job has no ps"),
        (["--framework", "tensorflow", "--tf-master"], "x=1", {}, "the job has none (add --chief)"),
        (["--chief", "--framework", "pytorch"], "x=1", {}, "TensorFlow roles"),
        (["--env", "1X=2"], "x=1", {}, "environment variable name '1X'"),
        (["--secret", "=v"], "x=1", {}, "expected NAME or NAME=VALUE, got '=v'"),
        (["--secret", "1X=v"], "x=1", {}, "environment variable name '1X'"),
        (["--secret", "NOT_SET_HERE"], "x=1", {}, "--secret NOT_SET_HERE: no value given and no"),
        (["--secret", "K=1", "--env", "K=2"], "x=1", {}, "K given both as --env and as a secret"),
        (["--secret", "CLOUDML_JOB_ID=x"], "x=1", {}, "CLOUDML_* variables are set by the"),
        (["--env-from-file", "nope.env"], "x=1", {}, "cannot read "),
        (["--name", "Bad_Name"], "x=1", {}, "job name 'Bad_Name' is not valid"),
        (["--module", "t.m"], None, None, "--package-path and --module go together"),
        (["--package-path", "t"], None, None, "--package-path and --module go together"),
        (["s.py", "--package-path", "t", "--module", "m"], None, None, "not both"),
        (["--package-path", "t", "--module", "m"], "x=1", {}, "not both"),
        (["s.py"], "x=1", {}, "run either the cell's code or SCRIPT.py"),
        ([], None, None, "nothing to run: give SCRIPT.py"),
        ([], "  \n", {}, "nothing to run: write code in the cell"),
        (["missing.py"], None, None, "cannot read 'missing.py'"),
        (["--export", "x"], "y=1", {}, "--export 'x': no variable named 'x' in the notebook"),
        (["s.py", "--export", "x"], None, None, "--export ships notebook variables"),
        (["s.py", "--return", "y"], None, None, "--return brings variables back"),
        (["--return", "a-b"], "x=1", {}, "'a-b' is not a Python identifier"),
    ],
)
def test_bad_train_specs(
    packaging: FakePackaging, tmp_path: Path, argv: list[str], cell: Any, user_ns: Any, message: str
) -> None:
    (tmp_path / "s.py").write_text("x = 1\n")
    with pytest.raises(InvalidSpec) as info:
        spec(*argv, cell=cell, source_dir=tmp_path, user_ns=user_ns)
    assert message in str(info.value)


def test_secrets_from_the_command_line_the_environment_and_env_files(
    packaging: FakePackaging, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN", "from-here")
    (tmp_path / "team.env").write_text(
        "# the team's keys\n"
        "export DB_URL='postgres://u:p@db/x'\n"
        'QUOTED="a b # not a comment"\n'
        "\n"
        "LITERAL=${HOME}/x\n"
        "OVERRIDDEN=file\n"
    )
    made = spec(
        "--env-from-file", "team.env",
        "--secret", "API_TOKEN",
        "--secret", "OVERRIDDEN=flag",
        source_dir=tmp_path,
        user_ns={},
    )  # fmt: skip
    assert dict(made.secrets) == {
        "DB_URL": "postgres://u:p@db/x",
        "QUOTED": "a b # not a comment",
        "LITERAL": "${HOME}/x",
        "OVERRIDDEN": "flag",
        "API_TOKEN": "from-here",
    }
    assert "from-here" not in repr(made) and dict(made.env) == {}
    # The reproduced command names the secrets; run where they are set, it is the same job.
    flags = train_flags(made)
    assert "--secret" in flags and "from-here" not in flags
    for name, value in made.secrets.items():
        monkeypatch.setenv(name, value)
    assert spec(*flags, source_dir=tmp_path, user_ns={}) == made


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A=1\nthis is not an assignment\n", "team.env, line 2: not NAME=VALUE: 'this is not"),
        ("A=1\nB\n", "team.env, line 2: B has no value"),
        ("1A=x\n", "environment variable name '1A'"),
    ],
)
def test_bad_env_files_are_refused_with_the_line(
    packaging: FakePackaging, tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "team.env").write_text(text)
    with pytest.raises(InvalidSpec) as info:
        spec("--env-from-file", "team.env", source_dir=tmp_path, user_ns={})
    assert message in str(info.value)


def test_real_packaging(tmp_path: Path) -> None:
    """With the real packaging module: a cell ships, a syntax error is refused with its line."""
    pytest.importorskip("jupyter_cloudml.packaging")
    (tmp_path / "helpers.py").write_text("K = 3\n")
    s = spec(
        "--return", "y", cell="import helpers\ny = helpers.K\n", source_dir=tmp_path, user_ns={}
    )
    assert "helpers.py" in s.package.files
    with pytest.raises(PackagingError, match="line 3"):  # the editor's: the magic is line 1
        spec(cell="x = 1\nx = = 2\n", source_dir=tmp_path, user_ns={})


# --- fuzz -------------------------------------------------------------------------------------

FLAGS = sorted(
    {f for verb in VERBS for a in verb_parser(verb, "cloudml")._actions for f in a.option_strings}
    - {"-h", "--help"}
)
VALUES = [
    "1",
    "0",
    "-1",
    "2h",
    "30m",
    "x",
    "a=b",
    "=",
    "K=V",
    "tensorflow",
    "pytorch",
    "json",
    "running",
    "a,b",
    "",
    " ",
    "--",
    "-",
    "1e9",
    "nan",
    "%s",
    "%(prog)s",
    "é",
    "train.py",
]
JUNK = [
    "--wokers",
    "-x",
    "--=",
    "---",
    "jobs",
    "train",
    "list",
    "describe",
    "-fo",
    "--env=",
    "--workers=2",
    "-o=json",
    "\x00",
    "--tail=-1",
]
TOKENS = st.lists(
    st.sampled_from([*FLAGS, *VALUES, *JUNK, *VERBS]) | st.text(max_size=8), max_size=12
)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tokens=TOKENS)
def test_fuzz_parse_command(tokens: list[str]) -> None:
    try:
        ns = parse_command(tokens)
    except (InvalidSpec, HelpRequested):
        return
    assert ns.verb in (*VERBS, *GROUPS)  # `studies`, `models` ... are verbs with verbs


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tokens=TOKENS)
def test_fuzz_train_spec(packaging: FakePackaging, tmp_path: Path, tokens: list[str]) -> None:
    try:
        ns = parse_verb("train", tokens, "%%cloudml_train")
        build_train_spec(ns, cell="x = 1", source_dir=tmp_path, user_ns={"a": 1, "b": 2})
    except (InvalidSpec, HelpRequested):
        pass


# --- train_flags: the magic that reproduces a job -----------------------------------------------


@pytest.mark.usefixtures("packaging")
@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--name", "mnist", "--workers", "3", "--framework", "pytorch", "--cpu", "0.5"],
        ["--framework", "tensorflow", "--ps", "2", "--workers", "2", "--gpus", "1"],
        [
            "--framework",
            "tensorflow",
            "--chief",
            "--gpus",
            "2",
            "--gpu-type",
            "a100",
            "--memory",
            "4Gi",
        ],
        ["--env", "LR=0.1", "--label", "team=cv", "--node-selector", "pool=gpu"],
        ["--retries", "2", "--timeout", "90", "--image", "img:1", "--pre-command", "echo 'a b'"],
        ["--job-dir", "/tmp/out", "--return", "model,history", "--", "--epochs", "3"],
        ["--post-command", "ls", "--python", "/usr/bin/python3", "--", "--job-dir", "x"],
        [
            "--framework",
            "tensorflow",
            "--chief",
            "--tf-master",
            "--evaluators",
            "2",
            "--workers",
            "2",
            "--ps",
            "1",
            "--gpus",
            "1",
            "--memory",
            "4Gi",
            "--resources",
            "ps=cpu:4,gpus:0,memory:16Gi",
            "--role-image",
            "ps=img:cpu",
        ],
    ],
)
def test_train_flags_round_trip(argv: list[str]) -> None:
    first = spec(*argv, user_ns={})
    again = spec(*train_flags(first), user_ns={})
    assert again == first


def test_reproduce_magic_quotes_and_keeps_the_cell() -> None:
    from jupyter_cloudml.models import TrainSpec

    package = CodePackage(archive=b"", module="_cloudml_main", requirements=("torch>=2",))
    s = TrainSpec(name="x", package=package, env={"MSG": "a b"}, labels={"cloudml.io/study": "s1"})
    assert reproduce_magic(s, "print(1)\n") == (
        "%%cloudml_train --name x --env 'MSG=a b' --pip 'torch>=2'\nprint(1)\n"
    )
    module = CodePackage(archive=b"", module="trainer.task")
    assert reproduce_magic(TrainSpec(name="x", package=module), None) == (
        "%cloudml train --name x --module trainer.task --package-path PATH/TO/PACKAGE"
    )


@pytest.mark.parametrize(
    ("label", "message"),
    [
        ("bad key=v", "label key 'bad key'"),
        ("a/b/c=v", "label key 'a/b/c'"),
        ("team=-cv", "label value '-cv'"),
        ("team=" + "x" * 64, "label value"),
    ],
)
def test_labels_follow_kubernetes_rules(label: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        spec("--label", label)


def test_tensorboard_verb_needs_exactly_one_of_jobs_list_stop() -> None:
    assert parse_command(["tensorboard", "a-1", "b-2"]).job == ["a-1", "b-2"]
    assert parse_command(["tensorboard", "--list"]).list is True
    for argv in (["tensorboard"], ["tensorboard", "a-1", "--list"], ["tensorboard", "--stop"]):
        with pytest.raises(InvalidSpec):
            parse_command(argv)
