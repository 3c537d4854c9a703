"""What `--dry-run --output yaml` prints: the manifests a job or a deployment would be applied
as, as YAML."""

from __future__ import annotations

import os
import time
from typing import Any

import yaml

from ...models import DeploySpec, TrainSpec
from .serving import (
    DEFAULT_SERVING_IMAGE,
    inference_service,
    model_storage_uri,
    plain_manifests,
)
from .training import SharedVolume, training_manifests

#: The shared volume a dry run assumes, unless `$CLOUDML_SHARED_CLAIM` names another.
DRY_RUN_CLAIM = "cloudml-shared"


class _PlainDumper(yaml.SafeDumper):
    """YAML for people: a shared dict is written out again, not as `&id001` / `*id001`."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def training_yaml(spec: TrainSpec) -> str:
    """The manifests of `spec` as a YAML stream, in `$CLOUDML_NAMESPACE` (default `default`)."""
    namespace = os.environ.get("CLOUDML_NAMESPACE", "default")
    manifests = training_manifests(spec, f"{spec.name}-dryrun", namespace)
    return yaml.dump_all(manifests, Dumper=_PlainDumper, sort_keys=False).rstrip()


def deployment_yaml(spec: DeploySpec, engine: str = "kserve") -> str:
    """The manifests serving `spec` as a YAML stream, in `$CLOUDML_NAMESPACE` (default
    `default`), with `engine` kserve (an InferenceService) or plain (Deployment + Services).

    Without a cluster to ask, a `job:ID` model is taken to be on the shared volume
    (`$CLOUDML_SHARED_CLAIM`, default `cloudml-shared`, mounted at `$CLOUDML_SHARED_MOUNT`),
    and the versions `spec.traffic` names are taken as deployed, the one with the largest
    share serving all requests now.
    """
    namespace = os.environ.get("CLOUDML_NAMESPACE", "default")
    shared = SharedVolume(
        os.environ.get("CLOUDML_SHARED_CLAIM") or DRY_RUN_CLAIM,
        os.environ.get("CLOUDML_SHARED_MOUNT") or "/mnt/cloudml",
    )
    storage_uri = model_storage_uri(spec.model, shared=shared)
    others = {v: p for v, p in spec.traffic.items() if v != spec.version}
    created = time.time()
    manifests: list[dict[str, Any]]
    if engine == "plain":
        manifests = plain_manifests(
            spec,
            namespace,
            storage_uri=storage_uri,
            deployed_versions=list(others),
            created=created,
        )
    else:
        previous = None
        if others:
            serving = max(others, key=lambda v: others[v])
            assumed = DeploySpec(
                name=spec.name,
                model="(deployed before)",
                framework=spec.framework,
                version=serving,
                predictor=spec.predictor,
            )
            previous = inference_service(
                assumed, namespace, storage_uri=storage_uri, serving_image=DEFAULT_SERVING_IMAGE
            )
        manifests = [
            inference_service(
                spec, namespace, storage_uri=storage_uri, previous=previous, created=created
            )
        ]
    return yaml.dump_all(manifests, Dumper=_PlainDumper, sort_keys=False).rstrip()
