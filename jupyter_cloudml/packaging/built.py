"""Built packages (`--packages dist/trainer-0.1.tar.gz,extra.whl`, local paths or fsspec URIs)
shipped inside the code package and pip-installed before the module runs, as AI Platform
installs its `packageUris`."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..exceptions import PackagingError
from .archive import PackagedFile

#: Where built packages travel inside the code package (a requirement names each by path).
BUILT_FOLDER = "_packages"
#: What pip installs: source distributions and wheels.
SUFFIXES = (".tar.gz", ".zip", ".whl")
#: The largest built package shipped this way (a larger one belongs on shared storage).
MAX_BYTES = 256 * 1024 * 1024


def read_built(
    sources: Sequence[str], given_as: str = "--packages"
) -> tuple[dict[str, PackagedFile], tuple[str, ...]]:
    """The files to ship for `sources` and the requirements that install them; messages name
    them as the user gave them (`given_as`: the flag, or a config's field)."""
    files: dict[str, PackagedFile] = {}
    for source in sources:
        name = os.path.basename(source.rstrip("/"))
        if not name.endswith(SUFFIXES):
            raise PackagingError(
                f"{given_as} {source!r}: not a built package (expected {', '.join(SUFFIXES)})"
            )
        member = f"{BUILT_FOLDER}/{name}"
        if member in files:
            raise PackagingError(f"{given_as} names {name!r} twice")
        files[member] = PackagedFile(_read(source, given_as), 0o644)
    return files, tuple(sorted(files))


def _read(source: str, given_as: str) -> bytes:
    try:
        if "://" in source:
            import fsspec

            with fsspec.open(source, "rb") as handle:
                data: bytes = handle.read(MAX_BYTES + 1)
        else:
            with open(os.path.expanduser(source), "rb") as handle:
                data = handle.read(MAX_BYTES + 1)
    except (OSError, ValueError, ImportError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise PackagingError(f"{given_as} {source!r}: cannot read it: {reason}") from None
    if len(data) > MAX_BYTES:
        raise PackagingError(f"{given_as} {source!r}: larger than {MAX_BYTES // 2**20} MiB")
    return data
