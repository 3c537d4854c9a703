"""Online serving: what to deploy (`DeploySpec`) and what a deployment reports.

A deployment is a named endpoint; each of its versions is a model served by N replicas, and
the traffic split says which share of the requests without a version each version gets.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping

from ..exceptions import InvalidSpec
from .common import MODULE_RE, Resources, check_name

VERSION_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,30}[a-z0-9])?$")
MAX_REPLICAS = 16


class ModelFramework(str, enum.Enum):
    """How a model file is loaded and called.

    Each has an entry in `serving.loaders.FRAMEWORKS` (its loader, files and KServe format);
    `server/openapi.yaml` and the lab extension's `tokens.ts` list the values by hand
    (`tests/test_model_frameworks.py` checks both).
    """

    SKLEARN = "sklearn"
    XGBOOST = "xgboost"
    PYTORCH = "pytorch"
    ONNX = "onnx"
    CUSTOM = "custom"


class DeploymentStatus(str, enum.Enum):
    """Where a deployment stands: READY once every version serving traffic has a ready replica."""

    STARTING = "STARTING"
    READY = "READY"
    DEGRADED = "DEGRADED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"


class ServingReplicaStatus(str, enum.Enum):
    """Health of one serving process (or pod) of a version."""

    STARTING = "STARTING"
    READY = "READY"
    RESTARTING = "RESTARTING"
    FAILED = "FAILED"


def check_version(version: str) -> str:
    if not VERSION_RE.match(version):
        raise InvalidSpec(
            f"version {version!r} is not valid: lowercase letters, digits, '-' and '.', "
            "at most 32, starting and ending with a letter or digit (e.g. v2 or 2024-06-01)"
        )
    return version


def check_replicas(replicas: int) -> int:
    """A version runs 1..MAX_REPLICAS serving replicas."""
    if isinstance(replicas, bool) or not isinstance(replicas, int):
        raise InvalidSpec(f"replicas must be a whole number 1..{MAX_REPLICAS}, got {replicas!r}")
    if not 1 <= replicas <= MAX_REPLICAS:
        raise InvalidSpec(f"--replicas must be 1..{MAX_REPLICAS}, got {replicas}")
    return replicas


def check_traffic(traffic: Mapping[str, int]) -> None:
    """A split is version -> percent, each 0..100, summing to 100 (or empty: no change)."""
    for version, share in traffic.items():
        check_version(version)
        if not (isinstance(share, int) and 0 <= share <= 100):
            raise InvalidSpec(f"traffic share of {version} must be 0..100, got {share!r}")
    if traffic and sum(traffic.values()) != 100:
        shares = ", ".join(f"{v}={s}" for v, s in traffic.items())
        raise InvalidSpec(f"traffic shares must add up to 100, got {shares}")


@dataclasses.dataclass(frozen=True)
class DeploySpec:
    """Serve `model` as version `version` of the endpoint `name`.

    `model` is a file or folder path, or `job:JOB_ID[/sub/path]` for what a job left in its
    output folder (resolved to a path by `Client.deploy`). `traffic` splits the requests that
    name no version; left empty, a first version gets everything and a new version of a live
    deployment takes over once its replicas are ready. Without a `version`, a model the
    deployment serves already is not deployed again and another becomes the next `vN`
    (`backends.common.redeploy`); `replace` then removes the older versions.
    """

    name: str
    model: str
    framework: ModelFramework
    version: str | None = None
    replicas: int = 1
    predictor: str | None = None
    traffic: Mapping[str, int] = dataclasses.field(default_factory=dict)
    resources: Resources = Resources(cpu=0.5)  # noqa: RUF009 - frozen, so sharing it is safe
    port: int | None = None
    replace: bool = False

    def __post_init__(self) -> None:
        check_name(self.name, "deployment name")
        if self.version is not None:
            check_version(self.version)
        object.__setattr__(self, "framework", ModelFramework(self.framework))
        if not self.model:
            raise InvalidSpec("give the model to serve: --model PATH or --model job:JOB_ID")
        check_replicas(self.replicas)
        custom = self.framework is ModelFramework.CUSTOM
        if custom and not self.predictor:
            raise InvalidSpec(
                "--framework custom needs --predictor MODULE:CLASS, a class with load() and "
                "predict(instances) in your package (e.g. --predictor predictor:Model)"
            )
        if self.predictor is not None:
            module, _, cls = self.predictor.partition(":")
            if not custom or not (MODULE_RE.match(module) and cls.isidentifier()):
                raise InvalidSpec(
                    f"--predictor {self.predictor!r}: give MODULE:CLASS with --framework custom"
                )
        check_traffic(self.traffic)
        if self.traffic and self.version is None:
            raise InvalidSpec("--traffic needs --version: the new version it gives a share")
        if self.traffic and self.version not in self.traffic:
            raise InvalidSpec(
                f"the traffic split names no share for the new version {self.version}"
            )
        if self.port is not None and not 1 <= self.port <= 65535:
            raise InvalidSpec(f"--port must be 1..65535, got {self.port}")

    @property
    def target_version(self) -> str:
        """The version this spec creates: `version`, else v1 (until a backend picks the next)."""
        return self.version or "v1"


@dataclasses.dataclass(frozen=True)
class ServingReplicaInfo:
    """One serving process (or pod) of a version."""

    name: str
    status: ServingReplicaStatus
    restarts: int = 0
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class VersionInfo:
    """One version of a deployment: its model, its replicas and its share of the traffic."""

    version: str
    model: str
    framework: ModelFramework
    traffic: int
    replicas: tuple[ServingReplicaInfo, ...] = ()
    predictor: str | None = None
    #: What makes two deploys identical (`backends.common.redeploy.fingerprint`); "" if unknown.
    fingerprint: str = ""

    @property
    def ready(self) -> int:
        return sum(1 for r in self.replicas if r.status is ServingReplicaStatus.READY)


@dataclasses.dataclass(frozen=True)
class DeploymentInfo:
    """What the backend reports of a deployment; `url` is the endpoint's base URL, `grpc_url`
    its Open Inference Protocol gRPC address (`host:port`; None where it has none). `outcome`,
    from a deploy only, says what it did (e.g. `iris v1 already serves this model ...`)."""

    name: str
    status: DeploymentStatus
    url: str
    versions: tuple[VersionInfo, ...] = ()
    reason: str = ""
    created: float = 0.0
    outcome: str = ""
    grpc_url: str | None = None
