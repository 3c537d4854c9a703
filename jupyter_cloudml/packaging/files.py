"""Files a user names on a command line (a tuning config, a requirements file): read only when
they are regular files of bounded size, any OS error said in one line."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..exceptions import InvalidSpec

#: The largest config or requirements file read: a larger one is surely not one.
MAX_TEXT_FILE = 1 << 20


def read_text_file(path: str | Path, limit: int = MAX_TEXT_FILE) -> str:
    """The UTF-8 text of `path`; `InvalidSpec` saying why for a missing or unreadable file, a
    special one (a device, a FIFO, a folder), a binary one or one larger than `limit`."""
    try:
        with open(Path(path).expanduser(), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise InvalidSpec(f"cannot read {path}: it is not a regular file")
            data = handle.read(limit + 1)
    except OSError as error:
        raise InvalidSpec(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > limit:
        raise InvalidSpec(f"cannot read {path}: it is larger than {limit // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidSpec(f"{path}: it is not UTF-8 text") from None
