"""Run a notebook cell shipped by jupyter-cloudml: ``python -m _cloudml_main [--] ARGS...``.

Copied into every cell package as ``_cloudml_main.py``. Standard library only: the job may run
under another interpreter, or in a container where jupyter_cloudml is not installed.
The cell runs as a script would: in a fresh ``__main__`` module holding the exported
variables, with ``sys.argv = ["_cloudml_cell.py", *ARGS]``. On the primary replica the
variables named by ``--return`` are then written to ``$CLOUDML_OUTPUT_DIR/returns.pkl``.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
import types
from typing import Any

CELL_FILE = "_cloudml_cell.py"
EXPORTS_FILE = "_cloudml_exports.pkl"
META_FILE = "_cloudml_meta.json"
RETURNS_FILE = "returns.pkl"
#: The first line of a cell file that came from ``%%cloudml_train``: it stands for the magic's
#: line, so that the cell's line N is line N of the file, as the notebook's editor numbers it.
MAGIC_LINE = "# %%cloudml_train (the magic's line: line numbers here are the notebook cell's)\n"

HERE = os.path.dirname(os.path.abspath(__file__))
CELL_PATH = os.path.join(HERE, CELL_FILE)


def main() -> int:
    """Run the cell, then save the requested return values; the exit status of the job."""
    meta = read_meta()
    namespace = fresh_main().__dict__
    load_exports(namespace)
    sys.argv = [CELL_FILE, *cell_args(sys.argv[1:])]
    status = run_cell(namespace)
    if status:
        return status
    return save_returns(namespace, meta.get("returns", []))


def read_meta() -> dict[str, Any]:
    """The package's metadata (names to return), empty when absent."""
    path = os.path.join(HERE, META_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        meta: dict[str, Any] = json.load(f)
    return meta


def fresh_main() -> types.ModuleType:
    """A new ``__main__`` module for the cell, so pickle and multiprocessing find its names."""
    module = types.ModuleType("__main__")
    module.__file__ = CELL_PATH
    sys.modules["__main__"] = module
    return module


def load_exports(namespace: dict[str, Any]) -> None:
    """Put the variables exported from the notebook into the cell's namespace."""
    path = os.path.join(HERE, EXPORTS_FILE)
    if not os.path.exists(path):
        return
    try:
        with open(path, "rb") as f:
            namespace.update(pickle.load(f))
    except ModuleNotFoundError as exc:
        sys.exit(
            f"--export: the exported variables need the module {exc.name!r}, which this job "
            "cannot import (ship a local module with --include, install a library with --pip)"
        )


def cell_args(args: list[str]) -> list[str]:
    """The trainer arguments: everything after an optional leading ``--``."""
    return args[1:] if args[:1] == ["--"] else args


def run_cell(namespace: dict[str, Any]) -> int:
    """Execute the cell; an exception is reported from the cell's own frames, status 1."""
    with open(CELL_PATH, encoding="utf-8") as f:
        code = compile(f.read(), CELL_PATH, "exec")
    try:
        exec(code, namespace)
    except Exception as exc:
        exc.with_traceback(cell_frames(exc.__traceback__))
        sys.excepthook(type(exc), exc, exc.__traceback__)
        return 1
    return 0


def cell_frames(tb: types.TracebackType | None) -> types.TracebackType | None:
    """The traceback from the first frame in the cell on (the runner's frames are noise)."""
    first = tb
    while first is not None and first.tb_frame.f_code.co_filename != CELL_PATH:
        first = first.tb_next
    return first or tb


def save_returns(namespace: dict[str, Any], names: list[str]) -> int:
    """On the primary replica, write the requested variables to returns.pkl. A name the cell
    never defined is said in the log and left out (fetching names it too); the job succeeds."""
    out_dir = os.environ.get("CLOUDML_OUTPUT_DIR")
    if not names or os.environ.get("CLOUDML_PRIMARY") != "1" or not out_dir:
        return 0
    for name in names:
        if name not in namespace:
            print(
                f"--return {name!r}: the cell defined no variable named {name!r}; the other "
                "values are returned",
                file=sys.stderr,
            )
    values = {name: namespace[name] for name in names if name in namespace}
    try:
        data = dumps(values)
    except Exception as exc:
        print(unpicklable_message(values, exc), file=sys.stderr)
        return 1
    write_atomically(os.path.join(out_dir, RETURNS_FILE), data)
    return 0


def dumps(value: Any) -> bytes:
    """Pickle with cloudpickle when the job has it (functions, classes of the cell), else pickle."""
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(value)
    data: bytes = cloudpickle.dumps(value)
    return data


def unpicklable_message(values: dict[str, Any], error: Exception) -> str:
    """Name the returned variable that cannot be pickled."""
    for name, value in values.items():
        try:
            dumps(value)
        except Exception as exc:
            return f"--return {name!r}: cannot pickle a {type(value).__name__} ({exc})"
    return f"--return: cannot pickle the returned variables ({error})"


def write_atomically(path: str, data: bytes) -> None:
    """Write through a temporary file and rename, so readers never see half a file."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".returns-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


if __name__ == "__main__":
    sys.exit(main())
