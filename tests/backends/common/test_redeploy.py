"""When a deploy is the model served already, and which version a new one becomes."""

from __future__ import annotations

from pathlib import Path

import pytest

from jupyter_cloudml.backends.common.redeploy import fingerprint, next_version, plan_deploy
from jupyter_cloudml.exceptions import Conflict
from jupyter_cloudml.models import (
    DeploymentInfo,
    DeploymentStatus,
    DeploySpec,
    ModelFramework,
    VersionInfo,
)


def deployed(*versions: tuple[str, int, str]) -> DeploymentInfo:
    infos = tuple(
        VersionInfo(v, "m", ModelFramework.SKLEARN, traffic, fingerprint=fp)
        for v, traffic, fp in versions
    )
    return DeploymentInfo("iris", DeploymentStatus.READY, "http://x", infos)


def test_identity_is_the_content_and_the_options_not_the_path(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder / "sub").mkdir(parents=True)
        (tmp_path / folder / "sub" / "model.bin").write_bytes(b"weights")
    spec = DeploySpec("iris", "m", "sklearn")
    same = fingerprint(spec, str(tmp_path / "a")) == fingerprint(spec, str(tmp_path / "b"))
    assert same
    (tmp_path / "b" / "sub" / "model.bin").write_bytes(b"other weights")
    assert fingerprint(spec, str(tmp_path / "a")) != fingerprint(spec, str(tmp_path / "b"))
    two = DeploySpec("iris", "m", "sklearn", replicas=2)
    assert fingerprint(spec, str(tmp_path / "a")) != fingerprint(two, str(tmp_path / "a"))
    # A model this host cannot read counts by its URI.
    assert fingerprint(spec, None, "gs://b/m") != fingerprint(spec, None, "gs://b/n")


def test_plans() -> None:
    spec = DeploySpec("iris", "m", "sklearn")
    assert plan_deploy(spec, None, "f1").version == "v1"
    current = deployed(("v1", 0, "f1"), ("canary", 100, "f2"))
    assert plan_deploy(spec, current, "f2").unchanged  # what serves most traffic
    assert plan_deploy(spec, current, "f1").version == "v2"  # not the old v1 again
    assert next_version(["v1", "v9", "canary"]) == "v10"
    replaced = plan_deploy(DeploySpec("iris", "m", "sklearn", replace=True), current, "f3")
    assert (replaced.version, replaced.retire) == ("v2", ("v1", "canary"))
    with pytest.raises(Conflict, match="to change the split, run `cloudml models update iris"):
        plan_deploy(DeploySpec("iris", "m", "sklearn", "v1", traffic={"v1": 100}), current, "f1")
    with pytest.raises(Conflict, match="--replace deploys it as the next version"):
        plan_deploy(DeploySpec("iris", "m", "sklearn", "v1", replace=True), current, "f3")
    old = deployed(("v1", 100, ""))  # deployed before fingerprints were recorded
    assert "v1 was deployed before models were compared" in plan_deploy(spec, old, "f1").message
