"""Deploying again: when a model is the one a deployment serves already, and which version a
new one becomes. Both backends record a version's fingerprint and plan a deploy here.

Two deploys are identical when their fingerprints are equal: the same model content (a
file's bytes, or every file of a folder by relative path and bytes; a storage URI this host
cannot read counts by its text), framework, predictor, replicas and resources.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterable

from ...exceptions import Conflict, InvalidSpec
from ...models import DeploymentInfo, DeploySpec, to_dict

#: Versions the backends name themselves: v1, v2, ...
AUTO_VERSION_RE = re.compile(r"^v(\d+)$")
_CHUNK = 1 << 20


def content_digest(path: str) -> str:
    """sha256 of a file's bytes, or of a folder's files (relative path and bytes, in order)."""
    digest = hashlib.sha256()
    if os.path.isfile(path):
        _add_file(digest, path)
        return digest.hexdigest()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            _add_file(digest, full)
    return digest.hexdigest()


def _add_file(digest: hashlib._Hash, path: str) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)


def fingerprint(spec: DeploySpec, path: str | None, uri: str = "") -> str:
    """What makes two deploys identical: the content at `path` (a local file or folder), else
    the storage `uri` as text, with the spec's framework, predictor, replicas and resources."""
    content = f"sha256:{content_digest(path)}" if path and os.path.exists(path) else f"uri:{uri}"
    key = {
        "model": content,
        "framework": spec.framework.value,
        "predictor": spec.predictor,
        "replicas": spec.replicas,
        "resources": to_dict(spec.resources),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class DeployPlan:
    """What a deploy does: nothing (`unchanged`, `version` serves the model already), or
    create `version` and then remove the versions in `retire`. `message` says which."""

    version: str
    unchanged: bool = False
    retire: tuple[str, ...] = ()
    message: str = ""


def plan_deploy(spec: DeploySpec, current: DeploymentInfo | None, fingerprint: str) -> DeployPlan:
    """The plan for deploying `spec` (fingerprint `fingerprint`) over `current` (None: no such
    deployment yet). No `--version`: the same model as the version serving most traffic is a
    no-op, another model the next `vN`; `spec.replace` then removes the older versions."""
    name, replace = spec.name, spec.replace
    if replace and spec.traffic:
        raise InvalidSpec("--replace sends all traffic to the new version: leave out --traffic")
    if current is None or not current.versions:
        return DeployPlan(spec.version or "v1", message=f"{name} {spec.version or 'v1'} deployed")
    versions = {v.version: v for v in current.versions}
    serving = max(current.versions, key=lambda v: v.traffic)
    if spec.version is not None and spec.version in versions:
        mine = versions[spec.version]
        if mine.fingerprint == fingerprint:
            return _unchanged(spec, spec.version)
        if replace:
            raise Conflict(
                f"{name} {spec.version} serves another model; --replace deploys it as the next "
                "version and removes the others: leave out --version"
            )
        raise Conflict(
            f"{name} {spec.version} serves another model: leave out --version to deploy it as "
            f"the next version, or add --replace to replace {name}'s versions"
        )
    if spec.version is None and serving.fingerprint == fingerprint:
        return _unchanged(spec, serving.version)
    version = spec.version or next_version(versions)
    if replace:
        old = tuple(versions)
        return DeployPlan(
            version, retire=old, message=f"{name} {version} deployed, replacing {', '.join(old)}"
        )
    differs = (
        f"its model differs from {serving.version}'s"
        if serving.fingerprint
        else f"{serving.version} was deployed before models were compared"
    )
    kept = ", ".join(versions)
    return DeployPlan(
        version, message=f"{name} {version} deployed ({differs}); {kept} kept (--replace removes)"
    )


def _unchanged(spec: DeploySpec, version: str) -> DeployPlan:
    name = spec.name
    if spec.traffic:
        split = ",".join(f"{v}={p}" for v, p in spec.traffic.items())
        raise Conflict(
            f"{name} {version} already serves this model: to change the split, run "
            f"`cloudml models update {name} --traffic {split}`"
        )
    return DeployPlan(
        version,
        unchanged=True,
        message=f"{name} {version} already serves this model (same files, framework and "
        "options): nothing deployed",
    )


def next_version(versions: Iterable[str]) -> str:
    """`v(N+1)` for the highest `vN` among `versions` (v1 when there is none)."""
    numbers = [int(m.group(1)) for v in versions if (m := AUTO_VERSION_RE.match(v))]
    return f"v{max(numbers, default=0) + 1}"
