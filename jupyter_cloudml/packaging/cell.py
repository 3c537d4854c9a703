"""A notebook cell as the entry module of a package: its syntax, exported variables, and the
file names the package reserves."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from typing import Any

from .._cell_main import CELL_FILE, EXPORTS_FILE, META_FILE
from ..exceptions import PackagingError
from .archive import PackagedFile

#: The module a cell package runs (``python -m _cloudml_main``).
MAIN_MODULE = "_cloudml_main"
RESERVED = frozenset({f"{MAIN_MODULE}.py", CELL_FILE, EXPORTS_FILE, META_FILE})


def parse_cell(cell: str) -> ast.Module:
    """Parse and compile the cell as plain Python; a syntax error names the line."""
    try:
        tree = ast.parse(cell, "<cell>")
        compile(tree, "<cell>", "exec")
    except SyntaxError as exc:
        raise PackagingError(syntax_message(cell, exc)) from None
    except ValueError as exc:  # e.g. a lone surrogate: the cell cannot be saved as UTF-8
        raise PackagingError(f"the cell cannot be read as Python source: {exc}") from None
    except (MemoryError, RecursionError):
        raise PackagingError("the cell is nested too deeply for Python to compile") from None
    return tree


def syntax_message(cell: str, exc: SyntaxError) -> str:
    """``syntax error in the cell, line 3: 'x = (' ('(' was never closed)`` plus a hint."""
    if not exc.lineno:
        return f"syntax error in the cell: {exc.msg}"
    lines = cell.split("\n")
    text = (exc.text or (lines[exc.lineno - 1] if exc.lineno <= len(lines) else "")).strip()
    if len(text) > 80:
        text = text[:77] + "..."
    message = f"syntax error in the cell, line {exc.lineno}: {text!r} ({exc.msg})"
    if text.startswith(("!", "%")):
        message += (
            "; IPython syntax (!command, %magic) is not available: the cell runs as plain Python"
        )
    elif "await" in exc.msg:
        message += "; top-level await works only in IPython: use asyncio.run(...) in the cell"
    return message


def check_variable_names(flag: str, names: Iterable[str]) -> None:
    """Refuse names that cannot be Python variables."""
    for name in names:
        if not name.isidentifier():
            raise PackagingError(f"{flag} {name!r}: not a Python variable name")


def pickle_exports(exports: Mapping[str, Any]) -> bytes:
    """All exported values in one cloudpickle (so shared objects stay shared)."""
    import cloudpickle

    try:
        data: bytes = cloudpickle.dumps(dict(exports))
    except Exception as exc:
        raise export_error(exports, exc) from exc
    return data


def export_error(exports: Mapping[str, Any], error: Exception) -> PackagingError:
    """Name the exported variable that cannot be pickled, and why."""
    import cloudpickle

    for name, value in exports.items():
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            kind = type(value)
            type_name = kind.__qualname__
            if kind.__module__ != "builtins":
                type_name = f"{kind.__module__}.{type_name}"
            return PackagingError(f"--export {name!r}: cannot ship a {type_name} by value ({exc})")
    return PackagingError(f"--export: cannot ship the exported variables by value ({error})")


def refuse_reserved(files: Mapping[str, PackagedFile]) -> None:
    """The runner's file names cannot be taken by the user's files."""
    clash = sorted(RESERVED.intersection(files))
    if clash:
        raise PackagingError(f"{clash[0]!r} is a name jupyter-cloudml reserves: rename that file")
