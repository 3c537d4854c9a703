"""The one argument grammar of `cloudml ...` (CLI), `%cloudml ...` and `%%cloudml_train ...`.

`parse_command` reads a whole command line (`train ...`, `jobs VERB ...` or `VERB ...`);
`parse_verb` reads the arguments of one verb. Neither ever exits the process: a mistake raises
`InvalidSpec` with one clear sentence, `--help` raises `HelpRequested` carrying the text to show.
`build_train_spec` and `build_job_query` turn a parsed namespace into the model objects.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from .deploy_options import MODEL_SUMMARIES, MODEL_VERBS, add_model_verb_options
from .exceptions import InvalidSpec
from .flag_types import (
    add_output_option,
    finite_number,
    job_statuses,
    key_value,
    name_list,
    non_negative,
    parse_duration,
    whole_number,
)
from .hub.options import HUB_SUMMARIES, HUB_VERBS, add_hub_verb_options
from .models import (
    CodePackage,
    Framework,
    JobQuery,
    Replicas,
    Resources,
    TrainSpec,
    slugify,
)
from .study_options import (
    STUDY_SUMMARIES,
    STUDY_VERBS,
    add_study_verb_options,
    add_tuning_options,
)

#: Verbs that act on existing jobs; each is also accepted after `jobs` (`jobs describe ID`).
JOB_VERBS = ("list", "describe", "logs", "metrics", "cancel", "delete", "wait", "fetch")
VERBS = ("train", *JOB_VERBS, "tensorboard")
SUMMARIES = {
    "train": "submit SCRIPT.py (or --package-path DIR --module MOD) as a training job",
    "list": "list jobs, newest first ('jobs' alone does the same)",
    "describe": "show a job: status, replicas with exit codes, events",
    "logs": "print a job's output as '[replica] text' lines (-f to follow)",
    "metrics": "the scalars a job reported (event files, cloudml-hypertune); a plot in notebooks",
    "cancel": "stop queued or running jobs",
    "delete": "forget finished jobs and everything they stored",
    "wait": "block until a job ends; fails unless it SUCCEEDED",
    "fetch": "load the variables a job named with --return into the notebook",
    "tensorboard": "open TensorBoard over jobs or studies (--list the running ones, --stop ID)",
}
READ_VERBS = ("list", "describe", "logs", "metrics", "wait", "tensorboard")
HELP_FLAGS = ("-h", "--help")


class HelpRequested(Exception):
    """`--help` was given: not an error; `text` is what to show."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing and exiting."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, add_help=False, **kwargs)
        self.add_argument(*HELP_FLAGS, action=_HelpAction, help="show this help and stop")

    def error(self, message: str) -> NoReturn:
        missing = message.partition("the following arguments are required: ")[2]
        if missing:
            usage = self.format_usage().strip().removeprefix("usage: ")
            raise InvalidSpec(f"missing {missing} (usage: {usage})")
        raise InvalidSpec(re.sub(r"^argument ([^:]+): ", r"\1: ", message))

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise InvalidSpec((message or "invalid arguments").strip())

    def flags(self) -> list[str]:
        """Every option string this parser knows (for suggestions)."""
        return [flag for action in self._actions for flag in action.option_strings]


class _HelpAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        raise HelpRequested(parser.format_help())


# --- the parsers ------------------------------------------------------------------------------

# Keyword sets shared by many flags.
COUNT: dict[str, Any] = {"type": whole_number, "metavar": "N"}
REPEAT: dict[str, Any] = {"action": "append", "default": []}
PAIRS: dict[str, Any] = {**REPEAT, "type": key_value, "metavar": "K=V"}
NAMES: dict[str, Any] = {"action": "extend", "default": [], "type": name_list}
SWITCH: dict[str, Any] = {"action": "store_true"}


def _job_id(parser: argparse.ArgumentParser, many: bool = False) -> None:
    hint = "job id as printed by train or list (e.g. mnist-3f9a1c)"
    parser.add_argument("job", metavar="JOB", nargs="+" if many else None, help=hint)


def _train_parser(prog: str) -> Parser:
    parser = Parser(
        prog=prog,
        description="Run code as a training job: a notebook cell, SCRIPT.py, or a package "
        "(--package-path DIR --module MOD). Arguments after a literal '--' go to the trainer.",
        usage="%(prog)s [options] [SCRIPT.py] [-- TRAINER ARGS]",
    )
    add = parser.add_argument
    add("script", metavar="SCRIPT.py", nargs="?", help="a Python file to run (e.g. train.py)")
    add = parser.add_argument_group("job").add_argument
    add("--name", help="job name, a DNS label (e.g. --name mnist-cnn)")
    add(
        "--framework",
        choices=[f.value for f in Framework],
        default=Framework.GENERIC.value,
        help="distributed convention: tensorflow sets TF_CONFIG, pytorch sets RANK, WORLD_SIZE, "
        "MASTER_ADDR... (e.g. --framework pytorch)",
    )
    add("--workers", **COUNT, default=1, help="worker replicas (e.g. --workers 4)")
    add(
        "--ps",
        **COUNT,
        default=0,
        help="TensorFlow parameter servers; parameter-server training needs a coordinator, so "
        "--ps N > 0 adds a chief (e.g. --framework tensorflow --ps 2 --workers 4)",
    )
    add("--chief", **SWITCH, help="TensorFlow: add a chief replica (implied by --ps)")
    add("--retries", **COUNT, default=0, help="rerun a failed job up to N times (e.g. --retries 2)")
    add(
        "--timeout",
        type=parse_duration,
        metavar="DURATION",
        help="stop the job after this long: seconds, or 90s, 30m, 2h (e.g. --timeout 2h)",
    )
    add(
        "--job-dir",
        metavar="PATH_OR_URI",
        help="output folder or fsspec URI, also passed to the trainer as --job-dir "
        "(e.g. --job-dir s3://bucket/run1)",
    )
    add("--env", **PAIRS, help="environment variable, repeatable (e.g. --env LR=0.01)")
    add("--label", **PAIRS, help="label to find the job by, repeatable (e.g. --label team=cv)")
    add("--pre-command", metavar="CMD", help="run before the trainer (e.g. 'nvidia-smi')")
    add("--post-command", metavar="CMD", help="run after the trainer (e.g. 'ls $CLOUDML_JOB_DIR')")
    add("--wait", **SWITCH, help="block until the job ends; fails unless it SUCCEEDED")
    add("--dry-run", **SWITCH, help="show what would be shipped, submit nothing")
    add = parser.add_argument_group("resources (per replica)").add_argument
    add("--cpu", type=finite_number, metavar="N", help="CPU cores (e.g. --cpu 2 or --cpu 0.5)")
    add("--memory", metavar="QTY", help="memory (e.g. --memory 4Gi)")
    add("--gpus", **COUNT, help="GPUs (e.g. --gpus 1)")
    add("--gpu-type", metavar="TYPE", help="GPU model (e.g. --gpu-type a100)")
    add("--node-selector", **PAIRS, help="cluster node label, repeatable (e.g. pool=gpu)")
    add = parser.add_argument_group("code").add_argument
    add("--include", **REPEAT, metavar="PATH", help="also ship this path (e.g. data/vocab.txt)")
    add("--exclude", **REPEAT, metavar="GLOB", help="do not ship matches (e.g. '*.ckpt')")
    add("--requirements", metavar="FILE", help="pip requirements file (e.g. requirements.txt)")
    add("--pip", **REPEAT, metavar="SPEC", help="pip requirement, repeatable (e.g. 'torch>=2')")
    add(
        "--export",
        **NAMES,
        metavar="A,B",
        help="notebook only: ship these variables by value (e.g. --export df,vocab)",
    )
    add(
        "--return",
        **NAMES,
        dest="returns",
        metavar="X,Y",
        help="notebook only: load these variables back when the job succeeds "
        "(e.g. --return model,history; or later %%cloudml fetch JOB)",
    )
    add("--package-path", metavar="DIR", help="run a trainer package instead (e.g. trainer/)")
    add("--module", metavar="MOD", help="module of --package-path to run (e.g. trainer.task)")
    add = parser.add_argument_group("runtime").add_argument
    add("--image", help="container image, cluster backends (e.g. pytorch/pytorch:2.3.0)")
    add(
        "--backend",
        metavar="NAME",
        help="where to run, instead of the configured backend: local, kubernetes or a Backend "
        "class path (e.g. --backend kubernetes --dry-run --output yaml)",
    )
    add("--python", metavar="PATH", help="local interpreter (e.g. ~/envs/tf/bin/python)")
    add_tuning_options(parser)
    add_output_option(parser, yaml=True)
    return parser


def _verb_parser(verb: str, prog: str) -> Parser:
    parser = Parser(prog=prog, description=SUMMARIES[verb])
    add = parser.add_argument
    if verb == "list":
        hint = "only jobs in these states (e.g. --status running queued)"
        add(
            "--status",
            type=job_statuses,
            action="extend",
            nargs="+",
            default=[],
            metavar="S",
            help=hint,
        )
        add("--name", metavar="SUBSTR", help="name contains (e.g. --name mnist)")
        add("--label", **PAIRS, help="only jobs with this label, repeatable (e.g. team=cv)")
        add("--limit", **COUNT, default=20, help="page size (e.g. --limit 50)")
        add("--offset", **COUNT, default=0, help="skip the newest N (e.g. --offset 20)")
    elif verb == "tensorboard":
        hint = "jobs or studies whose event files to show (e.g. mnist-3f9a1c lr-study-0b12aa)"
        add("job", metavar="JOB_OR_STUDY", nargs="*", help=hint)
        add("--list", **SWITCH, help="list the TensorBoards that are running")
        add("--stop", metavar="ID", help="stop a TensorBoard (e.g. --stop tb-5d41402abc4b)")
    else:
        _job_id(parser, many=verb in ("cancel", "delete"))
    if verb == "logs":
        add("-f", "--follow", **SWITCH, help="keep printing until the job ends")
        add("--replica", metavar="NAME", help="one replica's lines (e.g. --replica worker-1)")
        add("--tail", type=non_negative, metavar="N", help="the last N lines (e.g. --tail 100)")
    if verb == "wait":
        hint = "stop waiting after this long (e.g. --timeout 30m)"
        add("--timeout", type=parse_duration, metavar="DURATION", help=hint)
    if verb in READ_VERBS:
        add_output_option(parser)
    return parser


def _study_verb_parser(verb: str, prog: str) -> Parser:
    parser = Parser(prog=prog, description=STUDY_SUMMARIES[verb])
    add_study_verb_options(verb, parser)
    return parser


@functools.cache
def verb_parser(verb: str, prog: str) -> Parser:
    """The parser of one verb (`studies X` for study verbs), built once per program name."""
    if verb == "train":
        return _train_parser(prog)
    if verb.startswith("studies "):
        return _study_verb_parser(verb.split(" ", 1)[1], prog)
    if verb.startswith("models "):
        sub = verb.split(" ", 1)[1]
        parser = Parser(prog=prog, description=MODEL_SUMMARIES[sub])
        add_model_verb_options(sub, parser)
        return parser
    if verb.startswith("hub "):
        sub = verb.split(" ", 1)[1]
        parser = Parser(prog=prog, description=HUB_SUMMARIES[sub])
        add_hub_verb_options(sub, parser)
        return parser
    return _verb_parser(verb, prog)


def command_help(prog: str = "cloudml") -> str:
    """The top-level help: every verb with its summary."""
    width = max(map(len, VERBS)) + 2
    lines = [
        f"usage: {prog} COMMAND [options]",
        "",
        "Run notebook code as training jobs and inspect them.",
        "",
        "commands:",
        *(f"  {verb:<{width}}{SUMMARIES[verb]}" for verb in VERBS),
        "",
        "tuning studies ('studies VERB'):",
        *(f"  {verb:<{width}}{STUDY_SUMMARIES[verb]}" for verb in STUDY_VERBS),
        "",
        "online models ('models VERB'; %cloudml_deploy NAME ... is 'models deploy NAME ...'):",
        *(f"  {verb:<{width}}{MODEL_SUMMARIES[verb]}" for verb in MODEL_VERBS),
        "",
        "JupyterHub on Kubernetes, for its admins ('hub VERB'):",
        *(f"  {verb:<{width}}{HUB_SUMMARIES[verb]}" for verb in HUB_VERBS),
        "",
        f"'{prog} jobs VERB ...' is the same as '{prog} VERB ...' (e.g. {prog} jobs logs JOB -f).",
        f"Run '{prog} COMMAND --help' for the options of a command.",
    ]
    return "\n".join(lines) + "\n"


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _unknown_command(word: str, choices: Sequence[str], prog: str) -> InvalidSpec:
    return InvalidSpec(
        f"unknown command {word!r}{_suggest(word, choices)}; run '{prog} --help' for the list"
    )


def _looks_like_option(token: str) -> bool:
    return len(token) > 1 and token.startswith("-") and not _is_number(token)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def parse_verb(verb: str, argv: Sequence[str], prog: str) -> argparse.Namespace:
    """Parse the arguments of `verb` (everything after it); `ns.verb`, `ns.trainer_args` set."""
    tokens = list(argv)
    trainer_args: list[str] = []
    if "--" in tokens:
        cut = tokens.index("--")
        tokens, trainer_args = tokens[:cut], tokens[cut + 1 :]
        if verb != "train":
            raise InvalidSpec(f"arguments after '--' go to the trainer; {verb!r} takes none")
    parser = verb_parser(verb, prog)
    ns, extras = parser.parse_known_args(tokens)
    if extras:
        for token in extras:
            if _looks_like_option(token):
                flag = token.split("=", 1)[0]
                raise InvalidSpec(f"unknown option {flag!r}{_suggest(flag, parser.flags())}")
        hint = " (trainer arguments go after '--')" if verb == "train" else ""
        raise InvalidSpec(f"unexpected argument {extras[0]!r}{hint}")
    ns.verb = verb
    ns.trainer_args = tuple(trainer_args)
    if verb == "tensorboard" and bool(ns.job) + ns.list + bool(ns.stop) != 1:
        raise InvalidSpec(
            f"give jobs or studies to show (e.g. {prog} mnist-3f9a1c), or --list, or --stop ID"
        )
    return ns


def parse_command(argv: Sequence[str], prog: str = "cloudml") -> argparse.Namespace:
    """Parse `VERB ...` or `jobs [VERB] ...` (`jobs` alone lists) into a namespace with `verb`."""
    tokens = list(argv)
    if not tokens or tokens[0] in HELP_FLAGS or tokens[0] == "help":
        raise HelpRequested(command_help(prog))
    verb, rest = tokens[0], tokens[1:]
    if verb == "jobs":
        if rest and rest[0] in JOB_VERBS:
            verb, rest = rest[0], rest[1:]
        elif rest and rest[0] in HELP_FLAGS:
            raise HelpRequested(command_help(prog))
        elif rest and not rest[0].startswith("-"):
            raise _unknown_command(rest[0], JOB_VERBS, prog)
        else:
            verb = "list"
        prog = f"{prog} jobs"
    elif verb in GROUPS:
        return _parse_group_command(verb, rest, prog)
    elif verb not in VERBS:
        raise _unknown_command(verb, (*VERBS, "jobs", *GROUPS), prog)
    return parse_verb(verb, rest, f"{prog} {verb}")


#: Commands with verbs of their own: the verbs (the first is the default when none is given),
#: and the namespace attribute naming the verb.
GROUPS = {
    "studies": (STUDY_VERBS, "study_verb"),
    "models": (MODEL_VERBS, "model_verb"),
    "hub": (HUB_VERBS, "hub_verb"),
}


def _parse_group_command(group: str, rest: list[str], prog: str) -> argparse.Namespace:
    """`GROUP [VERB] ...` (alone: its first verb, e.g. list); sets `ns.verb` to GROUP and
    `ns.<group>_verb`."""
    verbs, attribute = GROUPS[group]
    if rest and rest[0] in HELP_FLAGS:
        raise HelpRequested(command_help(prog))
    sub = verbs[0]
    if rest and not rest[0].startswith("-"):
        if rest[0] not in verbs:
            raise _unknown_command(rest[0], verbs, f"{prog} {group}")
        sub, rest = rest[0], rest[1:]
    ns = parse_verb(f"{group} {sub}", rest, f"{prog} {group} {sub}")
    ns.verb = group
    setattr(ns, attribute, sub)
    return ns


# --- namespace -> models ----------------------------------------------------------------------


def build_job_query(ns: argparse.Namespace) -> JobQuery:
    """The `JobQuery` of a parsed `list` command."""
    return JobQuery(
        status=tuple(dict.fromkeys(s for group in ns.status for s in group)),
        name=ns.name,
        labels=dict(ns.label),
        limit=ns.limit,
        offset=ns.offset,
    )


def train_replicas(ns: argparse.Namespace) -> Replicas:
    """Replica counts; TensorFlow parameter-server training gets a chief (its coordinator)."""
    tf_ps = ns.framework == Framework.TENSORFLOW.value and ns.ps > 0
    return Replicas(chief=1 if ns.chief or tf_ps else 0, workers=ns.workers, ps=ns.ps)


def train_resources(ns: argparse.Namespace) -> Resources:
    """Per-replica resources; flags left out keep the model's defaults."""
    given = {"cpu": ns.cpu, "memory": ns.memory, "gpus": ns.gpus, "gpu_type": ns.gpu_type}
    return Resources(**{key: value for key, value in given.items() if value is not None})


def _exports(ns: argparse.Namespace, user_ns: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not ns.export:
        return None
    if user_ns is None:
        raise InvalidSpec("--export ships notebook variables: use it in %%cloudml_train")
    for name in ns.export:
        if name not in user_ns:
            raise InvalidSpec(f"--export {name!r}: no variable named {name!r} in the notebook")
    return {name: user_ns[name] for name in ns.export}


def _trainer_args(ns: argparse.Namespace) -> tuple[str, ...]:
    args = tuple(ns.trainer_args)
    given = any(a == "--job-dir" or a.startswith("--job-dir=") for a in args)
    if ns.job_dir and not given:
        args += ("--job-dir", ns.job_dir)
    return args


def build_train_spec(
    ns: argparse.Namespace,
    *,
    cell: str | None,
    source_dir: str | Path,
    user_ns: Mapping[str, Any] | None,
) -> TrainSpec:
    """Package the code named by a parsed `train` command and describe the job to submit.

    `cell` is the notebook cell body (None from the CLI), `source_dir` the folder relative
    paths start from, `user_ns` the notebook's variables (None from the CLI: no --export/--return).
    """
    replicas = train_replicas(ns)
    resources = train_resources(ns)
    if ns.returns and user_ns is None:
        raise InvalidSpec("--return brings variables back into a notebook: use %%cloudml_train")
    package, default_name = _package(ns, cell, source_dir, user_ns)
    return TrainSpec(
        name=ns.name or slugify(default_name),
        package=package,
        args=_trainer_args(ns),
        env=dict(ns.env),
        framework=Framework(ns.framework),
        replicas=replicas,
        resources=resources,
        image=ns.image,
        python=ns.python,
        retries=ns.retries,
        timeout=ns.timeout,
        job_dir=ns.job_dir,
        pre_command=ns.pre_command,
        post_command=ns.post_command,
        node_selector=dict(ns.node_selector),
        labels=dict(ns.label),
        returns=tuple(ns.returns),
    )


def _package(
    ns: argparse.Namespace,
    cell: str | None,
    source_dir: str | Path,
    user_ns: Mapping[str, Any] | None,
) -> tuple[CodePackage, str]:
    """The code package of a `train` command (cell, SCRIPT or package folder), and its name."""
    from . import packaging

    has_cell = cell is not None and bool(cell.strip())
    # Command-line paths are relative to `source_dir`, where the user is; a script's or a
    # package's folder is where packaging starts, so such paths are made absolute first.
    moved = bool(ns.script or ns.package_path)

    def here(path: str) -> str:
        return os.path.abspath(os.path.join(source_dir, path)) if moved else path

    common: dict[str, Any] = {
        "includes": tuple(here(item) for item in ns.include),
        "excludes": tuple(ns.exclude),
        "requirements_file": here(ns.requirements) if ns.requirements else None,
        "pip": tuple(ns.pip),
    }
    if ns.package_path or ns.module:
        if not (ns.package_path and ns.module):
            raise InvalidSpec(
                "--package-path and --module go together "
                "(e.g. --package-path trainer/ --module trainer.task)"
            )
        if ns.script or has_cell:
            what = "SCRIPT.py" if ns.script else "the cell's code"
            raise InvalidSpec(f"run either {what} or --package-path DIR --module MOD, not both")
        if ns.export or ns.returns:
            raise InvalidSpec("--export and --return work with cell or script code only")
        path = os.path.join(source_dir, ns.package_path)
        return packaging.package_directory(path, ns.module, **common), ns.module
    if ns.script:
        if has_cell:
            raise InvalidSpec("run either the cell's code or SCRIPT.py, not both")
        path = os.path.join(source_dir, ns.script)
        try:
            with open(path, encoding="utf-8") as file:
                source = file.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise InvalidSpec(f"cannot read {ns.script!r}: {reason}") from None
        code_dir: str | Path = os.path.dirname(os.path.abspath(path))
        name = os.path.splitext(os.path.basename(path))[0]
    elif cell is not None and has_cell:
        source, code_dir, name = cell, source_dir, "cell"
    else:
        where = "write code in the cell or " if cell is not None else ""
        raise InvalidSpec(
            f"nothing to run: {where}give SCRIPT.py or --package-path DIR --module MOD"
        )
    exports = _exports(ns, user_ns)
    package = packaging.package_cell(
        source, source_dir=code_dir, exports=exports, returns=tuple(ns.returns), **common
    )
    return package, name


# --- models -> flags (the inverse, for "copy the magic that reproduces this job") -------------

#: Labels the platform sets itself; a reproduced job gets fresh ones.
SYSTEM_LABEL_PREFIX = "cloudml.io/"


def train_flags(spec: TrainSpec) -> list[str]:
    """The `train` flags that describe `spec` (defaults left out); trainer args after '--'."""
    flags = ["--name", spec.name]
    if spec.framework is not Framework.GENERIC:
        flags += ["--framework", spec.framework.value]
    if spec.replicas.workers != 1:
        flags += ["--workers", str(spec.replicas.workers)]
    if spec.replicas.ps:
        flags += ["--ps", str(spec.replicas.ps)]
    elif spec.replicas.chief:
        flags.append("--chief")
    defaults = Resources()
    for flag, value, default in [
        ("--cpu", spec.resources.cpu, defaults.cpu),
        ("--memory", spec.resources.memory, defaults.memory),
        ("--gpus", spec.resources.gpus, defaults.gpus),
        ("--gpu-type", spec.resources.gpu_type, defaults.gpu_type),
        ("--retries", spec.retries, 0),
        ("--timeout", spec.timeout, None),
        ("--job-dir", spec.job_dir, None),
        ("--pre-command", spec.pre_command, None),
        ("--post-command", spec.post_command, None),
        ("--image", spec.image, None),
        ("--python", spec.python, None),
    ]:
        if value != default:
            flags += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    labels = {k: v for k, v in spec.labels.items() if not k.startswith(SYSTEM_LABEL_PREFIX)}
    for flag, pairs in [
        ("--env", spec.env),
        ("--label", labels),
        ("--node-selector", spec.node_selector),
    ]:
        for key, value in pairs.items():
            flags += [flag, f"{key}={value}"]
    for requirement in spec.package.requirements:
        flags += ["--pip", requirement]
    if spec.returns:
        flags += ["--return", ",".join(spec.returns)]
    args = list(spec.args)
    if spec.job_dir and args[-2:] == ["--job-dir", spec.job_dir]:
        args = args[:-2]  # added by --job-dir itself
    return flags + (["--", *args] if args else [])


def reproduce_magic(spec: TrainSpec, cell: str | None) -> str:
    """A notebook cell that submits this job again: `%%cloudml_train FLAGS` and the code."""
    import shlex

    flags = train_flags(spec)
    if cell is None:
        flags[2:2] = ["--module", spec.package.module, "--package-path", "PATH/TO/PACKAGE"]
        return "%cloudml train " + shlex.join(flags)
    return f"%%cloudml_train {shlex.join(flags)}\n{cell}"
