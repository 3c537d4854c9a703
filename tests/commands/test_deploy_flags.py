"""The `models ...` / `%cloudml_deploy` grammar and `DeploySpec` validation (no processes)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_cloudml.commands.deploy_flags import build_deploy_spec
from jupyter_cloudml.commands.grammar import HelpRequested, parse_command
from jupyter_cloudml.exceptions import InvalidSpec
from jupyter_cloudml.models import DeploySpec, ModelFramework, Resources


def deploy(*argv: str) -> DeploySpec:
    return build_deploy_spec(parse_command(["models", "deploy", *argv]))


def test_deploy_flags_become_a_spec() -> None:
    spec = deploy(
        *["iris", "--model", "job:iris-3f9a1c/model.joblib", "--framework", "sklearn"],
        *["--replicas", "2", "--version", "v2", "--traffic", "v1=90,v2=10", "--cpu", "1"],
    )
    assert spec == DeploySpec(
        name="iris",
        model="job:iris-3f9a1c/model.joblib",
        framework=ModelFramework.SKLEARN,
        version="v2",
        replicas=2,
        traffic={"v1": 90, "v2": 10},
        resources=Resources(cpu=1),
    )
    assert deploy("m", "--model", "m.onnx", "--framework", "onnx").resources == Resources(cpu=0.5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["iris", "--framework", "sklearn"], "missing --model"),
        (["iris", "--model", "m"], "missing --framework"),
        (["iris", "--model", "m", "--framework", "tf"], "invalid choice: 'tf'"),
        (["Iris", "--model", "m", "--framework", "sklearn"], "deployment name 'Iris'"),
        (["i", "--model", "m", "--framework", "sklearn", "--replicas", "0"], "--replicas must be"),
        (["i", "--model", "m", "--framework", "sklearn", "--replicas", "99"], "--replicas must be"),
        (["i", "--model", "m", "--framework", "sklearn", "--version", "V 2"], "version 'V 2'"),
        (["i", "--model", "m", "--framework", "sklearn", "--traffic", "v1=90"], "add up to 100"),
        (["i", "--model", "m", "--framework", "sklearn", "--traffic", "v1"], "VERSION=PERCENT"),
        (["i", "--model", "m", "--framework", "sklearn", "--traffic", "v1=x"], "whole number"),
        (
            [
                "i",
                "--model",
                "m",
                "--framework",
                "sklearn",
                "--version",
                "v2",
                "--traffic",
                "v0=100",
            ],
            "no share",
        ),
        (
            ["i", "--model", "m", "--framework", "sklearn", "--traffic", "v0=100"],
            "--traffic needs --version",
        ),
        (["i", "--model", "m", "--framework", "custom"], "needs --predictor"),
        (
            ["i", "--model", "m", "--framework", "sklearn", "--predictor", "a:B"],
            "with --framework custom",
        ),
        (["i", "--model", "m", "--framework", "custom", "--predictor", "a.b"], "MODULE:CLASS"),
        (["i", "--model", "m", "--framework", "sklearn", "--port", "70000"], "--port must be"),
        (["i", "--model", "m", "--framework", "sklearn", "--replica", "2"], "did you mean"),
    ],
)
def test_bad_deploy_flags_say_what_is_wrong(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidSpec, match=message.replace("(", r"\(")):
        deploy(*argv)


def test_predict_update_undeploy_and_help() -> None:
    ns = parse_command(["models", "predict", "iris", '{"instances": [[1, 2]]}'])
    assert (ns.verb, ns.model_verb, ns.name, ns.data) == ("models", "predict", "iris", [[1, 2]])
    assert (
        parse_command(["models", "predict", "iris", "[[1, 2]]", "--version", "v2"]).version == "v2"
    )
    assert parse_command(["models", "predict", "iris", "[[1, 2]]"]).protocol == "http"
    grpc = parse_command(["models", "predict", "iris", "[[1, 2]]", "--protocol", "grpc"])
    assert grpc.protocol == "grpc"
    with pytest.raises(InvalidSpec, match="soap"):
        parse_command(["models", "predict", "iris", "[[1, 2]]", "--protocol", "soap"])
    assert parse_command(["models", "update", "iris", "--traffic", "v1=50,v2=50"]).traffic == {
        "v1": 50,
        "v2": 50,
    }
    assert parse_command(["models"]).model_verb == "list"
    assert parse_command(["models", "undeploy", "iris", "--version", "v1"]).version == "v1"
    scale = parse_command(["models", "scale", "iris", "--version", "v2", "--replicas", "3"])
    assert (scale.model_verb, scale.version, scale.replicas) == ("scale", "v2", 3)
    with pytest.raises(InvalidSpec, match="--replicas"):
        parse_command(["models", "scale", "iris", "--version", "v2"])
    with pytest.raises(InvalidSpec, match="--version"):
        parse_command(["models", "scale", "iris", "--replicas", "2"])
    with pytest.raises(InvalidSpec, match="DATA is not JSON"):
        parse_command(["models", "predict", "iris", "[[1, 2]"])
    with pytest.raises(InvalidSpec, match="JSON list of instances"):
        parse_command(["models", "predict", "iris", "42"])
    with pytest.raises(InvalidSpec, match="did you mean deploy"):
        parse_command(["models", "deplyo", "iris"])
    with pytest.raises(HelpRequested) as shown:
        parse_command(["models", "deploy", "--help"])
    assert "--traffic" in shown.value.text and "job:ID" in shown.value.text
    with pytest.raises(HelpRequested) as top:
        parse_command(["--help"])
    assert "models VERB" in top.value.text and "rollback" in top.value.text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=6))
def test_models_grammar_never_crashes(tokens: list[str]) -> None:
    """Any argument list either parses, asks for help, or is one clear InvalidSpec."""
    for head in (["models"], ["models", "deploy"], ["models", "update", "x"]):
        try:
            ns = parse_command([*head, *tokens])
            if getattr(ns, "model_verb", None) == "deploy":
                build_deploy_spec(ns)
        except (InvalidSpec, HelpRequested):
            pass
