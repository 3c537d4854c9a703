"""The opaque cursor of `Backend.metrics`: what was read so far, as JSON."""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..exceptions import InvalidSpec
from ..models import Scalar


def load_cursor(cursor: str | None) -> dict[str, Any]:
    """The state behind a metrics cursor this backend handed out."""
    if not cursor:
        return {}
    try:
        state = json.loads(cursor)
    except ValueError:
        state = None
    if not isinstance(state, dict):
        raise InvalidSpec("malformed metrics cursor: pass back the cursor a metrics call returned")
    return state


def merge_scalars(
    into: dict[str, builtins.list[Scalar]], more: Mapping[str, Sequence[Scalar]]
) -> None:
    for tag, values in more.items():
        into.setdefault(tag, []).extend(values)
