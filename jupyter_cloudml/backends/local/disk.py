"""A full disk under the local backend's home, said as such: refused submits name it, and a
job's supervisor keeps a small reserve it gives up to record why the job ended."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ...exceptions import BackendUnavailable

#: Room a supervisor holds back (a preallocated file) so that a full disk still lets it record
#: the job's end: a few SQLite pages and the WAL frames of one transaction.
RESERVE_BYTES = 256 * 1024
RESERVE_FILE = "reserve"
#: Below this many free bytes a disk counts as full in messages about failures on it.
NEARLY_FULL_BYTES = 1024 * 1024
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


class DiskFull(Exception):
    """The disk filled up while the supervisor was `doing` something (e.g. writing logs)."""

    def __init__(self, doing: str) -> None:
        super().__init__(f"no space left on device {doing}")
        self.doing = doing


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised while handling) is a full disk or quota."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DiskFull):
            return True
        if isinstance(seen, OSError) and seen.errno in _FULL_ERRNOS:
            return True
        if isinstance(seen, sqlite3.OperationalError) and "full" in str(seen):
            return True
        seen = seen.__context__
    return False


def full_disk_reason(exc: BaseException, default_doing: str) -> str:
    """`no space left on device writing logs`: the first `DiskFull` in the chain says what."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DiskFull):
            return str(seen)
        seen = seen.__context__
    return str(DiskFull(default_doing))


def disk_note(path: str | Path) -> str:
    """` (the disk of PATH is full: 12 KiB free)` when it nearly is, else nothing."""
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(path).free
        if free < NEARLY_FULL_BYTES:
            return f" (the disk of {path} is full: {free // 1024} KiB free)"
    return ""


@contextlib.contextmanager
def refused_when_full(home: str | Path, doing: str) -> Iterator[None]:
    """Turn a full disk while `doing` into one clear `BackendUnavailable`."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        if not is_disk_full(exc):
            raise
        raise BackendUnavailable(
            f"cannot {doing}: no space left on device in {home}; free some space and try again"
        ) from None


def hold_reserve(folder: Path) -> None:
    """Set `RESERVE_BYTES` aside in `folder` (it fails, with `DiskFull`, on a full disk)."""
    fd = os.open(folder / RESERVE_FILE, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, RESERVE_BYTES)
    except OSError as exc:
        if exc.errno in _FULL_ERRNOS:
            raise DiskFull("starting the job") from exc
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # no fallocate there: go without
            raise
    finally:
        os.close(fd)


def release_reserve(folder: Path) -> None:
    """Give the reserve back to the disk (before recording the end; also at every end)."""
    with contextlib.suppress(FileNotFoundError):
        (folder / RESERVE_FILE).unlink()
