"""Scalars of TensorBoard event files: read all at once, or incrementally from a cursor.

Values equal TensorBoard's ``EventAccumulator`` (``Scalars`` for simple values, ``Tensors`` for
scalar tensors) on the same files. Unlike it, a folder is searched recursively with the tags of
its files merged, each tag's points are sorted by (step, wall_time) rather than kept in arrival
order, and nothing is purged when a ``SessionLog.START`` marks a restart.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import struct
from collections.abc import Iterator
from itertools import starmap
from operator import gt, itemgetter

from ..exceptions import InvalidSpec
from ..models import Scalar
from .events import EventDecoder, Points
from .records import FOOTER_SIZE, HEADER_SIZE, split_records

_CHUNK = 8 << 20
_STEP_WALL_TIME = itemgetter(0, 1)
_CURSOR_VERSION = 1


def is_event_file(name: str) -> bool:
    """TensorBoard's test for a summary event file name."""
    return "tfevents" in name and not name.endswith(".profile-empty")


def read_scalars(path: str | os.PathLike[str]) -> dict[str, list[Scalar]]:
    """Scalars by tag of an event file, or of every event file in a folder and its subfolders.

    A half-written last record is left out; a corrupt record raises ``CorruptEventFile``.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no event file or folder at {os.fspath(path)!r}")
    return ScalarReader(path).read_new()


class _FileState:
    """How far one file was read, and what its decoder learned about tags."""

    __slots__ = ("decoder", "offset")

    def __init__(self, offset: int = 0, other_tags: list[str] | tuple[()] = ()) -> None:
        self.offset = offset
        self.decoder = EventDecoder(other_tags)


class ScalarReader:
    """Incremental reader: each ``read_new()`` returns only the scalars appended since the last.

    ``cursor()`` is a JSON string of per-file offsets (names relative to ``path``); pass it back
    as ``ScalarReader(path, cursor=...)`` to resume in another process or request.
    """

    def __init__(self, path: str | os.PathLike[str], cursor: str | None = None) -> None:
        self.path = os.fspath(path)
        self._files: dict[str, _FileState] = {}
        if cursor:
            self._files = _parse_cursor(cursor)

    def read_new(self) -> dict[str, list[Scalar]]:
        """Scalars by tag from what was appended to the files (or new files) since the last call.

        Raises ``CorruptEventFile`` on a bad record; then nothing is consumed from any file.
        """
        out: Points = {}
        advanced: dict[str, tuple[_FileState, int]] = {}
        with _gc_paused():
            for rel, full, size in self._event_files():
                state = self._files.get(rel)
                if state is None or size < state.offset:  # new, or replaced by a shorter file
                    state = _FileState()
                offset = state.offset
                if size - offset >= HEADER_SIZE + FOOTER_SIZE:
                    offset = _read_file(full, offset, state.decoder, out)
                advanced[rel] = state, offset
            for state, offset in advanced.values():
                state.offset = offset
            self._files = {rel: state for rel, (state, _) in advanced.items()}
            return _to_scalars(out)

    def cursor(self) -> str:
        """Where reading stopped, as an opaque JSON string."""
        files: dict[str, list[object]] = {}
        for rel, state in self._files.items():
            other = state.decoder.other_tags()
            files[rel] = [state.offset, other] if other else [state.offset]
        return json.dumps({"v": _CURSOR_VERSION, "files": files}, separators=(",", ":"))

    def _event_files(self) -> list[tuple[str, str, int]]:
        """(name relative to path, full name, size) of every event file, in a stable order."""
        if os.path.isfile(self.path):
            return [(os.path.basename(self.path), self.path, os.path.getsize(self.path))]
        found = []
        for folder, subfolders, names in os.walk(self.path):
            subfolders.sort()
            for name in sorted(names):
                if is_event_file(name):
                    full = os.path.join(folder, name)
                    try:
                        size = os.path.getsize(full)
                    except OSError:  # deleted since the listing
                        continue
                    rel = os.path.relpath(full, self.path).replace(os.sep, "/")
                    found.append((rel, full, size))
        return found


def _read_file(full: str, offset: int, decoder: EventDecoder, out: Points) -> int:
    """Decode the complete records of ``full`` after ``offset``; the offset after them.

    Reads chunk by chunk, each starting at a record boundary (a record larger than a chunk is
    read whole), so memory stays bounded however large the file.
    """
    want = _CHUNK
    with open(full, "rb") as file:
        while True:
            file.seek(offset)
            buf = file.read(want)
            payloads, offsets, end = split_records(buf, full, offset)
            decoder.decode(payloads, offsets, full, out)
            offset += end
            if len(buf) < want:  # end of file: what is left is a record being written
                return offset
            want = _CHUNK
            if end == 0:  # split_records checked this header
                want = max(want, HEADER_SIZE + struct.unpack_from("<Q", buf)[0] + FOOTER_SIZE)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: reading allocates millions of acyclic objects, and
    collections triggered by them would cost more than the reading itself."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _to_scalars(points: Points) -> dict[str, list[Scalar]]:
    """Scalars by tag, each tag's points sorted by (step, wall_time), ties kept in file order."""
    result = {}
    for tag, items in points.items():
        if any(map(gt, items, items[1:])):
            items.sort(key=_STEP_WALL_TIME)
        result[tag] = list(starmap(Scalar, items))
    return result


def _parse_cursor(cursor: str) -> dict[str, _FileState]:
    """File states from ``ScalarReader.cursor()``; ``InvalidSpec`` if it is not one."""
    try:
        data = json.loads(cursor)
        if data.get("v") != _CURSOR_VERSION:
            raise ValueError(f"version {data.get('v')!r}")
        files = {}
        for rel, entry in data["files"].items():
            offset = entry[0]
            other = entry[1] if len(entry) > 1 else []
            if (
                not isinstance(offset, int)
                or offset < 0
                or not isinstance(other, list)
                or not all(isinstance(tag, str) for tag in other)
            ):
                raise ValueError(f"entry {rel!r}")
            files[rel] = _FileState(offset, list(other))
        return files
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as err:
        raise InvalidSpec(f"metrics cursor {cursor[:80]!r} is not valid: {err}") from None
