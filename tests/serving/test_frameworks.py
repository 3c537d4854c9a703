"""`ModelFramework` is the one list of model frameworks: the hand-written copies must match it."""

from __future__ import annotations

import re

import yaml
from cloudml_testkit import REPO

from jupyter_cloudml.models import ModelFramework
from jupyter_cloudml.serving.loaders import FRAMEWORKS

ROOT = REPO
VALUES = [f.value for f in ModelFramework]


def test_openapi_lists_the_frameworks() -> None:
    spec = yaml.safe_load((ROOT / "jupyter_cloudml" / "server" / "openapi.yaml").read_text())
    version = spec["components"]["schemas"]["Deployment"]["properties"]["versions"]["items"]
    assert version["properties"]["framework"]["enum"] == VALUES


def test_tokens_ts_lists_the_frameworks() -> None:
    tokens = (ROOT / "labextension" / "src" / "tokens.ts").read_text()
    found = re.search(r"export type ModelFramework\s*=([^;]*);", tokens)
    assert found, "tokens.ts has no `export type ModelFramework = ...;`"
    assert re.findall(r"'([^']*)'", found.group(1)) == VALUES


def test_only_custom_has_no_loader() -> None:
    # load=None means "the user's --predictor class": a new framework must not fall into it.
    assert [f for f, s in FRAMEWORKS.items() if s.load is None] == [ModelFramework.CUSTOM]
    assert all(s.suffixes for s in FRAMEWORKS.values() if s.load)
