"""The package as a reproducible tar.gz archive, and reading one back safely."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
from collections.abc import Mapping
from typing import Any, NamedTuple

from .._cell_main import META_FILE
from ..exceptions import PackagingError

FIXED_MTIME = 315532800  # 1980-01-01, as reproducible builds use


class PackagedFile(NamedTuple):
    data: bytes
    mode: int


def build_archive(files: Mapping[str, PackagedFile]) -> bytes:
    """A deterministic gzip'd tar: sorted regular files, fixed times and owners, level 1."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for rel in sorted(files):
            data, mode = files[rel]
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), mode, FIXED_MTIME
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def read_members(archive: bytes) -> tuple[list[tuple[str, int]], dict[str, Any] | None]:
    """The archive's (name, size) pairs and its cell metadata (None for a trainer package)."""
    members: list[tuple[str, int]] = []
    meta = None
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            members.append((member.name, member.size))
            if member.name == META_FILE:
                f = tar.extractfile(member)
                meta = json.load(f) if f is not None else None
    return members, meta


def check_member(member: tarfile.TarInfo, root: str) -> None:
    """Refuse a member that would be written, or point, outside ``root``."""
    name = member.name

    def refuse(reason: str) -> PackagingError:
        return PackagingError(f"refusing to unpack {name!r}: {reason}")

    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise refuse("absolute path")
    if ".." in re.split(r"[/\\]", name):
        raise refuse("'..' in the path")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise refuse("not a regular file, folder or link")
    if relative_inside(os.path.realpath(os.path.join(root, name)), root) is None:
        raise refuse("it would land outside the destination")
    if member.issym() or member.islnk():
        base = os.path.dirname(name) if member.issym() else ""
        target = os.path.realpath(os.path.join(root, base, member.linkname))
        if relative_inside(target, root) is None:
            raise refuse(f"link to {member.linkname!r} outside the destination")


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def relative_inside(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` as a posix path, or None when it is not inside."""
    rel = os.path.relpath(path, root)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return rel.replace(os.sep, "/")
