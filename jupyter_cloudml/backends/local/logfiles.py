"""Per-replica log files: one line per output line, `<epoch seconds>\\t<text>`.

The supervisor writes them (`LineWriter`); readers merge replicas in time order, filter by time
and tail, and resume from byte offsets to follow a running job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ...models import LogLine
from .disk import DiskFull, is_disk_full

SUFFIX = ".log"
PARTIAL_FLUSH_SECONDS = 0.5


class LineWriter:
    """Turns a replica's raw output chunks into timestamped lines in its log file."""

    def __init__(self, path: Path) -> None:
        self._file = open(path, "ab")  # noqa: SIM115 - kept open for the replica's lifetime
        self._partial = b""
        self._partial_since = 0.0

    def feed(self, chunk: bytes) -> None:
        """Write every complete line in `chunk`; keep the unfinished rest for later."""
        data = self._partial + chunk
        *lines, rest = data.split(b"\n")
        if lines:
            stamp = f"{time.time():.6f}\t".encode()
            try:
                self._file.write(b"".join(stamp + _last_frame(line) + b"\n" for line in lines))
                self._file.flush()
            except OSError as exc:
                if is_disk_full(exc):
                    raise DiskFull("writing logs") from exc
                raise
        if rest and not self._partial:
            self._partial_since = time.monotonic()
        self._partial = rest

    def flush_partial(self, force: bool = False) -> None:
        """Write an unfinished line that has waited too long (a progress bar, a prompt)."""
        waited = time.monotonic() - self._partial_since
        if self._partial and (force or waited >= PARTIAL_FLUSH_SECONDS):
            self._partial, rest = b"", self._partial
            self.feed(rest + b"\n")

    def note(self, text: str) -> None:
        """A line from the supervisor itself (e.g. an attempt marker) in this replica's log."""
        self.flush_partial(force=True)
        self.feed(text.encode() + b"\n")

    def close(self) -> None:
        try:
            self.flush_partial(force=True)
        finally:
            try:
                self._file.close()
            except OSError as exc:  # what a full disk kept buffered is lost: DiskFull said so
                if not is_disk_full(exc):
                    raise


def _last_frame(line: bytes) -> bytes:
    """What a terminal shows of a line rewritten with carriage returns."""
    line = line.rstrip(b"\r")
    return line.rsplit(b"\r", 1)[-1]


def _parse(raw: bytes, replica: str) -> LogLine | None:
    stamp, sep, text = raw.rstrip(b"\n").partition(b"\t")
    if not sep:
        return None
    try:
        return LogLine(float(stamp), replica, text.decode("utf-8", "replace"))
    except ValueError:
        return None


def read_lines(path: Path, replica: str, offset: int = 0) -> tuple[list[LogLine], int]:
    """Complete lines of one log file from byte `offset`, and the offset after the last one."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    lines = [line for raw in data[:end].splitlines() if (line := _parse(raw, replica))]
    return lines, offset + end


def replica_logs(log_dir: Path, replica: str | None = None) -> dict[str, Path]:
    """Log files of a job by replica name (only `replica`'s when given)."""
    if not log_dir.is_dir():
        return {}
    found = {p.name[: -len(SUFFIX)]: p for p in log_dir.iterdir() if p.name.endswith(SUFFIX)}
    if replica is not None:
        return {replica: found[replica]} if replica in found else {}
    return dict(sorted(found.items()))


def follow(
    log_dir: Path,
    replica: str | None,
    start: dict[str, int],
    finished: Callable[[], bool],
    stop: threading.Event,
    poll: float = 0.2,
) -> Iterator[LogLine]:
    """Yield new lines as replicas write them until `finished()` is true and all is read, or
    `stop` is set."""
    offsets = dict(start)
    while not stop.is_set():
        done = finished()
        batch: list[LogLine] = []
        for name, path in replica_logs(log_dir, replica).items():
            lines, offsets[name] = read_lines(path, name, offsets.get(name, 0))
            batch += lines
        batch.sort(key=lambda line: line.time)
        yield from batch
        if done:
            return
        stop.wait(poll)
