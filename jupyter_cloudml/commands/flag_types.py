"""Value types of command-line flags: each turns text into a value or raises
`argparse.ArgumentTypeError` saying what was expected (argparse adds the flag's name)."""

from __future__ import annotations

import argparse
import math
import re
from typing import Any

from ..models import JobStatus

_DURATION_RE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def non_negative(text: str) -> int:
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def finite_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a number like 0.5 or 4, got {text!r}")
    return value


def parse_duration(text: str) -> float:
    """Seconds in `90`, `90s`, `30m`, `2h` or `1d`."""
    match = _DURATION_RE.match(text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(
            f"expected seconds or a duration like 90s, 30m, 2h; got {text!r}"
        )
    return float(match[1]) * _UNITS[match[2]]


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def secret_pair(text: str) -> tuple[str, str | None]:
    """`NAME=VALUE`, or `NAME` alone (its value is then looked up where the command runs)."""
    key, sep, value = text.partition("=")
    if not key.strip():
        raise argparse.ArgumentTypeError(f"expected NAME or NAME=VALUE, got {text!r}")
    return key.strip(), value if sep else None


#: The keys of `--resources ROLE=KEY:VALUE,...`, with the Resources field each sets.
RESOURCE_KEYS = {"cpu": "cpu", "memory": "memory", "gpus": "gpus", "gpu-type": "gpu_type"}


def role_resources(text: str) -> tuple[str, dict[str, Any]]:
    """`ps=cpu:4,memory:16Gi` as ("ps", {"cpu": 4.0, "memory": "16Gi"})."""
    role, sep, rest = text.partition("=")
    if not sep or not role.strip() or not rest.strip():
        raise argparse.ArgumentTypeError(f"expected ROLE=KEY:VALUE,..., got {text!r}")
    fields: dict[str, Any] = {}
    for item in rest.split(","):
        key, colon, value = item.strip().partition(":")
        if not colon or key not in RESOURCE_KEYS or not value:
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r} in {text!r}: expected KEY:VALUE with KEY one of "
                f"{', '.join(RESOURCE_KEYS)} (e.g. ps=cpu:4,memory:16Gi)"
            )
        if key == "cpu":
            fields["cpu"] = finite_number(value)
        elif key == "gpus":
            fields["gpus"] = whole_number(value)
        else:
            fields[RESOURCE_KEYS[key]] = value
    return role.strip(), fields


def name_list(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def job_statuses(text: str) -> list[JobStatus]:
    try:
        return [JobStatus(word.upper()) for word in name_list(text)]
    except ValueError:
        choices = ", ".join(s.value for s in JobStatus)
        raise argparse.ArgumentTypeError(f"{text!r} is not a status ({choices})") from None


OUTPUTS = ("text", "json")


def add_output_option(parser: argparse.ArgumentParser, yaml: bool = False) -> None:
    """`-o/--output text|json`, the same on every command that prints something (`yaml`: also
    Kubernetes manifests, for `--dry-run`)."""
    hint = "text for people, json for scripts (e.g. --output json)"
    if yaml:
        hint += "; with --dry-run --backend kubernetes, yaml prints the manifests"
    choices = (*OUTPUTS, "yaml") if yaml else OUTPUTS
    parser.add_argument("-o", "--output", choices=choices, default="text", help=hint)
