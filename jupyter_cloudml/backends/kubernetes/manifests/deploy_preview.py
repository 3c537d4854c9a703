"""The manifests a deployment would be applied as, built without a cluster to ask."""

from __future__ import annotations

import time
from typing import Any

from ....models import DeploySpec
from .kserve import inference_service
from .plain import plain_manifests
from .serving import model_storage_uri
from .training import SharedVolume

#: The shared volume a preview assumes when the backend is configured with none.
PREVIEW_CLAIM = "cloudml-shared"


def deployment_preview(
    spec: DeploySpec, namespace: str, *, shared: SharedVolume, serving_image: str, engine: str
) -> list[dict[str, Any]]:
    """What `deploy(spec)` would apply in `namespace`, with `engine` kserve (an
    InferenceService) or plain (Deployment + Services).

    Without a cluster to ask, a `job:ID` model is taken to be on `shared`, and the versions
    `spec.traffic` names are taken as deployed, the one with the largest share serving all
    requests now.
    """
    storage_uri = model_storage_uri(spec.model, shared=shared)
    others = {v: p for v, p in spec.traffic.items() if v != spec.target_version}
    created = time.time()
    if engine == "plain":
        return plain_manifests(
            spec,
            namespace,
            storage_uri=storage_uri,
            serving_image=serving_image,
            deployed_versions=list(others),
            created=created,
        )
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
            assumed, namespace, storage_uri=storage_uri, serving_image=serving_image
        )
    return [
        inference_service(
            spec,
            namespace,
            storage_uri=storage_uri,
            previous=previous,
            serving_image=serving_image,
            created=created,
        )
    ]
