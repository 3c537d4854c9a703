"""The parser every verb's options are built on: an ArgumentParser that raises `InvalidSpec`
(and `HelpRequested` for `--help`) instead of printing and exiting, and the keyword sets many
flags share."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any, NoReturn

from ..exceptions import InvalidSpec
from .flag_types import key_value, name_list, whole_number

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
