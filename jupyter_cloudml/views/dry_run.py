"""What `--dry-run` prints: the job (and study) and its files, or a backend's `Preview`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml

from ..models import (
    Preview,
    TrainSpec,
    TuningSpec,
    to_dict,
)
from .jobs import format_spec, spec_dict
from .studies import format_tuning


def format_dry_run(
    spec: TrainSpec,
    output: str = "text",
    tuning: TuningSpec | None = None,
    notes: Sequence[Any] = (),
) -> str:
    """What `--dry-run` shows: the job (and study) and the files that would ship, as text or
    JSON (`--output yaml` shows a backend's `Preview` instead: `format_preview`), and with a
    `--config`, what became of each of its fields (`notes`: path, verdict, text)."""
    if output == "json":
        data = spec_dict(spec)
        if tuning is not None:
            data = {"trial": data, "tuning": to_dict(tuning)}
        if notes:
            data = {**data, "config": [to_dict(note) for note in notes]}
        return json.dumps(data, indent=2)
    from ..packaging import describe_package

    study = f"\n\n{format_tuning(tuning)}" if tuning is not None else ""
    config = "".join(f"\n  {note}" for note in notes)
    config = f"\n\nConfig (each field: honoured, mapped or ignored):{config}" if notes else ""
    return (
        f"{format_spec(spec)}{study}{config}\n\n{describe_package(spec.package)}\n"
        "(dry run: nothing submitted)"
    )


class _PlainDumper(yaml.SafeDumper):
    """YAML for people: a shared dict is written out again, not as `&id001` / `*id001`."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def format_preview(preview: Preview) -> str:
    """The objects a backend would create, as a YAML stream (`--dry-run --output yaml`)."""
    return yaml.dump_all(preview.objects, Dumper=_PlainDumper, sort_keys=False).rstrip()
