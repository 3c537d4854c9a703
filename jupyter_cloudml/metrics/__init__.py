"""Training metrics: ``report()`` writes TensorBoard event files; readers turn event files and
``cloudml-hypertune`` reports into ``{tag: [Scalar, ...]}``.

Importing this package is cheap: ``report`` loads TensorBoard on its first call, and the readers
load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .writer import log_dir, report

if TYPE_CHECKING:
    from .hypertune import read_hypertune
    from .records import CorruptEventFile
    from .tfevents import ScalarReader, read_scalars

__all__ = [
    "CorruptEventFile",
    "ScalarReader",
    "log_dir",
    "read_hypertune",
    "read_scalars",
    "report",
]

_LAZY = {
    "CorruptEventFile": ".records",
    "ScalarReader": ".tfevents",
    "read_scalars": ".tfevents",
    "read_hypertune": ".hypertune",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
