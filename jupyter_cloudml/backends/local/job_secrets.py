"""A job's secret environment values (`--secret`, `--env-from-file`), kept out of the job
database: a file only the owner can read in the job's folder, from submit until the job ends.
The spec in the database holds their names only (`TrainSpec.secrets` is a SECRET field).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from pathlib import Path

from .processes import write_json

SECRETS_FILE = "secrets.json"


def keep_secrets(folder: Path, values: Mapping[str, str]) -> None:
    """Write the job's secret values (0600) for its supervisor; nothing when there are none."""
    if values:
        write_json(folder / SECRETS_FILE, dict(values))


def load_secrets(folder: Path, names: list[str]) -> dict[str, str] | None:
    """The values of `names`, or None when any of them is no longer kept."""
    if not names:
        return {}
    try:
        kept = json.loads((folder / SECRETS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not all(isinstance(kept.get(name), str) for name in names):
        return None
    return {name: kept[name] for name in names}


def forget_secrets(folder: Path) -> None:
    """Remove the job's secret values: it has ended and will start no replica again."""
    with contextlib.suppress(FileNotFoundError):
        (folder / SECRETS_FILE).unlink()
