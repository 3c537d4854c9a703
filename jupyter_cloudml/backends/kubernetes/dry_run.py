"""What `--dry-run --output yaml` prints: the manifests a job would be applied as, as YAML."""

from __future__ import annotations

import os
from typing import Any

import yaml

from ...models import TrainSpec
from .training import training_manifests


class _PlainDumper(yaml.SafeDumper):
    """YAML for people: a shared dict is written out again, not as `&id001` / `*id001`."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def training_yaml(spec: TrainSpec) -> str:
    """The manifests of `spec` as a YAML stream, in `$CLOUDML_NAMESPACE` (default `default`)."""
    namespace = os.environ.get("CLOUDML_NAMESPACE", "default")
    manifests = training_manifests(spec, f"{spec.name}-dryrun", namespace)
    return yaml.dump_all(manifests, Dumper=_PlainDumper, sort_keys=False).rstrip()
