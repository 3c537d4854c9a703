"""The one argument grammar of `cloudml VERB ...` and `%cloudml VERB ...`: verbs, their
parsers, help, and mistakes answered with the closest right spelling."""

from __future__ import annotations

import argparse
import difflib
import functools
import re
from collections.abc import Sequence
from typing import Any, NoReturn

from ..exceptions import InvalidSpec
from ..hub.options import HUB_SUMMARIES, HUB_VERBS, add_hub_verb_options
from ..models import (
    Framework,
)
from .deploy_flags import MODEL_SUMMARIES, MODEL_VERBS, add_model_verb_options
from .flag_types import (
    add_output_option,
    finite_number,
    job_statuses,
    key_value,
    name_list,
    non_negative,
    parse_duration,
    role_resources,
    secret_pair,
    whole_number,
)
from .local_flags import LOCAL_SUMMARIES, LOCAL_VERBS, add_local_verb_options
from .predict_flags import PREDICT_SUMMARIES, PREDICT_VERBS, add_predict_verb_options
from .study_flags import STUDY_SUMMARIES, STUDY_VERBS, add_study_verb_options, add_tuning_options
from .template_flags import (
    TEMPLATE_SUMMARIES,
    TEMPLATE_VERBS,
    add_template_options,
    add_template_verb_options,
)

#: Verbs that act on existing jobs; each is also accepted after `jobs` (`jobs describe ID`).
JOB_VERBS = ("list", "describe", "logs", "metrics", "cancel", "delete", "wait", "fetch")


VERBS = ("train", *JOB_VERBS, "tensorboard", "quota")


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
    "quota": "what you may use and use now (CPU/GPU slots or the namespace's quotas), jobs queued",
}


READ_VERBS = ("list", "describe", "logs", "metrics", "wait", "tensorboard", "quota")


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


# Keyword sets shared by many flags.
COUNT: dict[str, Any] = {"type": whole_number, "metavar": "N"}


REPEAT: dict[str, Any] = {"action": "append", "default": []}


PAIRS: dict[str, Any] = {**REPEAT, "type": key_value, "metavar": "K=V"}


NAMES: dict[str, Any] = {"action": "extend", "default": [], "type": name_list}


SWITCH: dict[str, Any] = {"action": "store_true"}


def _job_id(parser: argparse.ArgumentParser, many: bool = False) -> None:
    hint = (
        "job id as printed by train or list, or its name: the newest job of that name "
        "(e.g. mnist-3f9a1c or mnist)"
    )
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
        help="distributed convention: tensorflow sets TF_CONFIG, pytorch sets RANK, WORLD_SIZE, "
        "MASTER_ADDR... (default generic, tensorflow with --config; e.g. --framework pytorch)",
    )
    add("--workers", **COUNT, help="worker replicas (default 1; e.g. --workers 4)")
    add(
        "--ps",
        **COUNT,
        help="TensorFlow parameter servers; parameter-server training needs a coordinator, so "
        "--ps N > 0 adds a chief (e.g. --framework tensorflow --ps 2 --workers 4)",
    )
    add("--chief", **SWITCH, help="TensorFlow: add a chief replica (implied by --ps)")
    add(
        "--evaluators",
        **COUNT,
        help="TensorFlow evaluator replicas, outside TF_CONFIG's cluster as on Google "
        "(e.g. --framework tensorflow --evaluators 1)",
    )
    add(
        "--tf-master",
        **SWITCH,
        help="TensorFlow: TF_CONFIG calls the chief 'master', as Google's legacy jobs do "
        "(e.g. --chief --tf-master)",
    )
    add("--retries", **COUNT, default=0, help="rerun a failed job up to N times (e.g. --retries 2)")
    add(
        "--timeout",
        type=parse_duration,
        metavar="DURATION",
        help="stop the job after this long: seconds, or 90s, 30m, 2h (e.g. --timeout 2h)",
    )
    add(
        "--max-wait",
        type=parse_duration,
        metavar="DURATION",
        help="fail the job if it waits longer than this for resources (Google's "
        "maxWaitTime; e.g. --max-wait 1h)",
    )
    add(
        "--notify",
        metavar="URL",
        help="POST the final job (or study) as JSON to this webhook when it ends, for chat or "
        "e-mail bridges (e.g. --notify https://chat.example.com/hooks/123)",
    )
    add(
        "--service-account",
        metavar="NAME",
        help="the Kubernetes ServiceAccount its pods run as (Google's serviceAccount; "
        "e.g. --service-account trainer)",
    )
    add(
        "--job-dir",
        metavar="PATH_OR_URI",
        help="output folder or fsspec URI, also passed to the trainer as --job-dir "
        "(e.g. --job-dir s3://bucket/run1)",
    )
    add("--env", **PAIRS, help="environment variable, repeatable (e.g. --env LR=0.01)")
    add(
        "--secret",
        **REPEAT,
        type=secret_pair,
        metavar="NAME[=VALUE]",
        help="environment variable kept out of every record (a private file here, a Secret on "
        "Kubernetes); NAME alone takes the value NAME has where you run this, repeatable "
        "(e.g. --secret API_TOKEN)",
    )
    add(
        "--env-from-file",
        **REPEAT,
        metavar="FILE",
        help="secrets from a dotenv file of NAME=VALUE lines, values taken literally "
        "(e.g. --env-from-file .env)",
    )
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
    add(
        "--resources",
        **REPEAT,
        type=role_resources,
        metavar="ROLE=KEY:VALUE,...",
        help="one role's own resources over the flags above, repeatable; keys cpu, memory, "
        "gpus, gpu-type (e.g. --resources ps=cpu:4,memory:16Gi,gpus:0)",
    )
    add(
        "--role-image",
        **PAIRS,
        help="one role's own image, repeatable (e.g. --role-image ps=tensorflow/tensorflow:2.15.0)",
    )
    add = parser.add_argument_group("code").add_argument
    add("--include", **REPEAT, metavar="PATH", help="also ship this path (e.g. data/vocab.txt)")
    add("--exclude", **REPEAT, metavar="GLOB", help="do not ship matches (e.g. '*.ckpt')")
    add("--requirements", metavar="FILE", help="pip requirements file (e.g. requirements.txt)")
    add("--pip", **REPEAT, metavar="SPEC", help="pip requirement, repeatable (e.g. 'torch>=2')")
    add(
        "--packages",
        **REPEAT,
        type=name_list,
        metavar="PATH,...",
        help="built packages (sdists, wheels; local paths or fsspec URIs) installed before the "
        "module runs, as AI Platform does (e.g. --packages dist/trainer-0.1.tar.gz)",
    )
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
    add(
        "--module",
        "--module-name",
        metavar="MOD",
        help="module of --package-path to run (gcloud spells it --module-name; e.g. trainer.task)",
    )
    add(
        "--config",
        metavar="FILE",
        help="a Google AI Platform job config (the whole trainingInput: scale tier, machine "
        "types, counts, accelerators, images, args, hyperparameters...); flags override it "
        "(e.g. --config config.yaml)",
    )
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
    add_template_options(parser)
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
        hint = (
            "jobs or studies, by id or name, whose event files to show (e.g. mnist-3f9a1c lr-study)"
        )
        add("job", metavar="JOB_OR_STUDY", nargs="*", help=hint)
        add("--list", **SWITCH, help="list the TensorBoards that are running")
        add("--stop", metavar="ID", help="stop a TensorBoard (e.g. --stop tb-5d41402abc4b)")
    elif verb != "quota":
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


#: The summaries and the option builder of each group whose verbs take `(verb, parser)`.
_GROUP_OPTIONS: dict[str, tuple[dict[str, str], Any]] = {
    "models": (MODEL_SUMMARIES, add_model_verb_options),
    "predict": (PREDICT_SUMMARIES, add_predict_verb_options),
    "hub": (HUB_SUMMARIES, add_hub_verb_options),
    "templates": (TEMPLATE_SUMMARIES, add_template_verb_options),
    "local": (LOCAL_SUMMARIES, add_local_verb_options),
}


@functools.cache
def verb_parser(verb: str, prog: str) -> Parser:
    """The parser of one verb (`studies X` for study verbs), built once per program name."""
    if verb == "train":
        return _train_parser(prog)
    if verb.startswith("studies "):
        return _study_verb_parser(verb.split(" ", 1)[1], prog)
    group, _, sub = verb.partition(" ")
    if group in _GROUP_OPTIONS:
        summaries, add_options = _GROUP_OPTIONS[group]
        parser = Parser(prog=prog, description=summaries[sub])
        add_options(sub, parser)
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
        "batch prediction ('predict VERB'; %cloudml_predict ... is 'predict batch ...'):",
        *(f"  {verb:<{width}}{PREDICT_SUMMARIES[verb]}" for verb in PREDICT_VERBS),
        "",
        "JupyterHub on Kubernetes, for its admins ('hub VERB'):",
        *(f"  {verb:<{width}}{HUB_SUMMARIES[verb]}" for verb in HUB_VERBS),
        "",
        "the local backend on this machine ('local VERB'):",
        *(f"  {verb:<{width}}{LOCAL_SUMMARIES[verb]}" for verb in LOCAL_VERBS),
        "",
        "templates: train without model code ('templates VERB'; train --template NAME):",
        *(f"  {verb:<{width}}{TEMPLATE_SUMMARIES[verb]}" for verb in TEMPLATE_VERBS),
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
    """Parse `VERB ...` or `jobs [VERB] ...` (`jobs` alone lists) into a namespace with `verb`
    and `program` (`prog`: how the hints a command prints spell it, e.g. `%cloudml jobs`)."""
    ns = _parse_command(argv, prog)
    ns.program = prog
    return ns


def _parse_command(argv: Sequence[str], prog: str) -> argparse.Namespace:
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
    "predict": (PREDICT_VERBS, "predict_verb"),
    "hub": (HUB_VERBS, "hub_verb"),
    "local": (LOCAL_VERBS, "local_verb"),
    "templates": (TEMPLATE_VERBS, "template_verb"),
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
