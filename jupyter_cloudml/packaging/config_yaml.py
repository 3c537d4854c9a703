"""The YAML config files users give (Google's `config.yaml` and `hptuning_config.yaml`): read
with a size limit, a key given twice refused, and a `FieldReader` whose every error names the
file and the field path (`config.yaml: trainingInput.workerCount: expected a whole number`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from ..exceptions import InvalidSpec
from .files import read_text_file


def read_config(source: str | Path, placeholder: str = "<config>") -> tuple[str, str]:
    """(name for messages, YAML text): a Path or a path-looking string is read from disk."""
    if isinstance(source, str) and not _looks_like_path(source):
        return placeholder, source
    name = str(source)
    return name, read_text_file(source)


def _looks_like_path(text: str) -> bool:
    if "\n" in text:
        return False
    return text.strip().endswith((".yaml", ".yml", ".json")) or os.path.isfile(text)


def parse_strict_yaml(name: str, text: str) -> Any:
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


class FieldReader:
    """Raises InvalidSpec for `path` in file `name`, and checks field types on the way."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, path: str, message: str) -> NoReturn:
        raise InvalidSpec(f"{self.name}: {path}: {message}")

    def mapping(self, value: Any, path: str, known: Iterable[str]) -> dict[Any, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {describe_value(value)}")
        unknown = [str(k) for k in value if str(k) not in known]
        if unknown:
            self.fail(path, unknown_keys(unknown, known))
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"expected a non-empty string, got {describe_value(value)}")
        return value.strip()

    def choice(self, value: Any, path: str, choices: Mapping[str, Any]) -> Any:
        if isinstance(value, str) and value.strip().upper() in choices:
            return choices[value.strip().upper()]
        self.fail(path, f"expected one of {', '.join(choices)}, got {describe_value(value)}")

    def number(self, value: Any, path: str) -> int | float:
        """A finite number; numeric strings too (PyYAML reads `1e-4` as a string)."""
        from ..tuning.space import to_number  # tuning's package imports this module

        try:
            return to_number(value)
        except ValueError:
            self.fail(path, f"expected a number, got {describe_value(value)}")

    def whole(self, value: Any, path: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(path, f"expected a whole number >= {minimum}, got {describe_value(value)}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {describe_value(value)}")
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list) or not value:
            self.fail(path, f"expected a non-empty list, got {describe_value(value)}")
        return value


def unknown_keys(unknown: list[str], known: Iterable[str]) -> str:
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


def describe_value(value: Any) -> str:
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
