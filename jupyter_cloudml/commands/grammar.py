"""The one argument grammar of `cloudml VERB ...` and `%cloudml VERB ...`: verbs, their
parsers, help, and mistakes answered with the closest right spelling."""

from __future__ import annotations

import argparse
import difflib
import functools
from collections.abc import Sequence
from typing import Any

from ..exceptions import InvalidSpec
from ..hub.options import HUB_SUMMARIES, HUB_VERBS, add_hub_verb_options
from .deploy_flags import MODEL_SUMMARIES, MODEL_VERBS, add_model_verb_options
from .flag_types import (
    add_output_option,
    job_statuses,
    non_negative,
    parse_duration,
)
from .local_flags import LOCAL_SUMMARIES, LOCAL_VERBS, add_local_verb_options
from .parser import COUNT, HELP_FLAGS, PAIRS, SWITCH, HelpRequested, Parser
from .predict_flags import PREDICT_SUMMARIES, PREDICT_VERBS, add_predict_verb_options
from .study_flags import STUDY_SUMMARIES, STUDY_VERBS, add_study_verb_options
from .template_flags import (
    TEMPLATE_SUMMARIES,
    TEMPLATE_VERBS,
    add_template_verb_options,
)
from .train_flags import train_parser

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


def _job_id(parser: argparse.ArgumentParser, many: bool = False) -> None:
    hint = (
        "job id as printed by train or list, or its name: the newest job of that name "
        "(e.g. mnist-3f9a1c or mnist)"
    )
    parser.add_argument("job", metavar="JOB", nargs="+" if many else None, help=hint)


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
        return train_parser(prog)
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
