"""The output side of batch prediction, in the layout Google's batch prediction writes.

Shard i of N writes `prediction.results-0000i-of-0000N` (one JSON object per predicted row:
`instance`, `prediction`, and where it came from, `input_file` and `line`) and
`prediction.errors_stats-0000i-of-0000N` (one JSON object per row that failed: `input_file`,
`line`, `error`, and `instance` when it was read). Both are written under temporary names and
renamed when the shard is complete, results last: a results file is a finished shard, which a
restarted job does not predict again (and what a killed attempt left of a shard is removed).
"""

from __future__ import annotations

import json
import math
import posixpath
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..exceptions import Conflict, InvalidSpec

if TYPE_CHECKING:
    import pandas

RESULTS = "prediction.results"
ERRORS = "prediction.errors_stats"


#: One encoder for every line (`json.dumps(..., default=str)` would build one per call).
_ENCODE = json.JSONEncoder(default=str).encode


def _encode(value: Any) -> str:
    """JSON of a prediction; whole numbers and finite floats (most predictions) directly."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float and math.isfinite(value):
        return repr(value)
    return _ENCODE(value)


def shard_name(kind: str, shard: int, shards: int) -> str:
    """`prediction.results-00001-of-00002` for kind RESULTS, shard 1 of 2."""
    return f"{kind}-{shard:05d}-of-{shards:05d}"


def _fs(output_path: str) -> tuple[Any, str]:
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(output_path)
    except (ValueError, ImportError) as exc:
        raise InvalidSpec(f"--output-path {output_path!r}: {exc}") from None
    return fs, root.rstrip("/") or "/"


def existing_results(output_path: str) -> list[str]:
    """The names of the prediction files already in `output_path` (none if it does not exist)."""
    fs, root = _fs(output_path)
    if not fs.isdir(root):
        return []
    names = (posixpath.basename(p.rstrip("/")) for p in fs.ls(root, detail=False))
    return sorted(n for n in names if n.startswith((RESULTS + "-", ERRORS + "-")))


def prepare_output(output_path: str, overwrite: bool) -> None:
    """Refuse an output folder that holds results unless `overwrite` (then clear them)."""
    found = existing_results(output_path)
    if found and not overwrite:
        raise Conflict(
            f"--output-path {output_path} already holds results ({found[0]}, ...): "
            "give another folder, or --overwrite to replace them"
        )
    fs, root = _fs(output_path)
    for name in found:
        fs.rm(f"{root}/{name}")
    fs.makedirs(root, exist_ok=True)


def shard_done(output_path: str, shard: int, shards: int) -> bool:
    """Whether shard `shard` of `shards` was completed by an earlier attempt."""
    fs, root = _fs(output_path)
    return bool(fs.exists(f"{root}/{shard_name(RESULTS, shard, shards)}"))


class ShardWriter:
    """Writes one shard's results and errors, made visible only by `commit()`."""

    def __init__(self, output_path: str, shard: int, shards: int, attempt: str) -> None:
        self.fs, self.root = _fs(output_path)
        self.fs.makedirs(self.root, exist_ok=True)
        self.names = {kind: shard_name(kind, shard, shards) for kind in (RESULTS, ERRORS)}
        for name in self.names.values():  # what a killed attempt left of this shard
            for stale in self.fs.glob(f"{self.root}/.{name}.attempt-*"):
                self.fs.rm(stale)
        self.temps = {k: f"{self.root}/.{n}.attempt-{attempt}" for k, n in self.names.items()}
        self.files = {k: self.fs.open(t, "w", encoding="utf-8") for k, t in self.temps.items()}
        self.rows = 0
        self.errors = 0
        self._source, self._source_json = "", '""'

    def result(
        self, source: str, line: int, instance: Any, prediction: Any, text: str | None = None
    ) -> None:
        """One results line; `text` is the instance's JSON when the input line held it."""
        encoded = text if text is not None else _ENCODE(instance)
        self.files[RESULTS].write(
            f'{{"instance": {encoded}, "prediction": {_encode(prediction)}, '
            f'"input_file": {self._quoted(source)}, "line": {line}}}\n'
        )
        self.rows += 1

    def _quoted(self, source: str) -> str:
        if source != self._source:
            self._source, self._source_json = source, json.dumps(source)
        return self._source_json

    def error(self, source: str, line: int, reason: str, instance: Any = None) -> None:
        row: dict[str, Any] = {"input_file": source, "line": line, "error": reason}
        if instance is not None:
            row["instance"] = instance
        self.files[ERRORS].write(_ENCODE(row) + "\n")
        self.errors += 1

    def commit(self) -> None:
        """Close both files and give them their final names, the results last."""
        for handle in self.files.values():
            handle.close()
        for kind in (ERRORS, RESULTS):
            self.fs.mv(self.temps[kind], f"{self.root}/{self.names[kind]}")

    def discard(self) -> None:
        for kind, handle in self.files.items():
            handle.close()
            if self.fs.exists(self.temps[kind]):
                self.fs.rm(self.temps[kind])


def _lines(output_path: str, kind: str) -> Iterator[dict[str, Any]]:
    fs, root = _fs(output_path)
    if not fs.isdir(root):
        raise InvalidSpec(f"no prediction results in {output_path}: the folder does not exist")
    names = sorted(
        posixpath.basename(p.rstrip("/"))
        for p in fs.ls(root, detail=False)
        if posixpath.basename(p.rstrip("/")).startswith(kind + "-")
    )
    if kind == RESULTS and not names:
        raise InvalidSpec(f"no prediction results in {output_path} ({RESULTS}-* files)")
    for name in names:
        with fs.open(f"{root}/{name}", "r", encoding="utf-8") as handle:
            for text in handle:
                if text.strip():
                    yield json.loads(text)


def read_results(output_path: str, errors: bool = False) -> pandas.DataFrame:
    """Every shard's results (or with `errors`, the failed rows) as one DataFrame, in shard
    order: columns instance, prediction, input_file, line (errors: input_file, line, error,
    instance)."""
    import pandas

    if errors:
        columns = ["input_file", "line", "error", "instance"]
        rows = list(_lines(output_path, ERRORS))
    else:
        columns = ["instance", "prediction", "input_file", "line"]
        rows = list(_lines(output_path, RESULTS))
    return pandas.DataFrame(rows, columns=columns)


def count_lines(output_path: str, kind: str) -> int:
    """How many rows the finished shards of `kind` (RESULTS or ERRORS) hold."""
    try:
        return sum(1 for _ in _lines(output_path, kind))
    except InvalidSpec:
        return 0
