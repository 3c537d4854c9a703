"""The serving part of the one grammar: `models VERB ...` and `%cloudml_deploy NAME ...`.

`grammar.py` dispatches `models ...` here; `%cloudml_deploy NAME ...` is `models deploy NAME ...`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..models import DeploySpec, ModelFramework, Resources
from .flag_types import add_output_option, finite_number, whole_number

MODEL_VERBS = ("list", "describe", "deploy", "predict", "update", "rollback", "scale", "undeploy")
MODEL_SUMMARIES = {
    "list": "list deployments: status, versions, traffic, endpoint ('models' alone does the same)",
    "describe": "show a deployment: versions, replicas and their health, curl and Python snippets",
    "deploy": "serve a model file or a job's output as a version of an online endpoint",
    "predict": "send instances (JSON rows) to a deployment and print its predictions",
    "update": "split traffic between versions (e.g. --traffic v1=90,v2=10)",
    "rollback": "send all traffic back to the version deployed before the current one",
    "scale": "serve one version with N replicas (e.g. --version v1 --replicas 3)",
    "undeploy": "remove a deployment, or one version of it (--version V)",
}
NAME_HINT = "deployment name, a DNS label (e.g. iris)"
#: How `--backend kubernetes` serves: a KServe InferenceService, or Deployments and Services.
ENGINES = ("kserve", "plain")


def parse_traffic(text: str) -> dict[str, int]:
    """`v1=90,v2=10` -> {"v1": 90, "v2": 10}."""
    split: dict[str, int] = {}
    for part in text.split(","):
        version, sep, share = part.strip().partition("=")
        if not sep or not version.strip():
            raise argparse.ArgumentTypeError(f"expected VERSION=PERCENT pairs, got {part!r}")
        try:
            split[version.strip()] = int(share)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"percent of {version} must be a whole number"
            ) from None
    return split


def parse_instances(text: str) -> list[Any]:
    """DATA of `predict`: a JSON list of rows (or {"instances": [...]})."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        example = "'[[5.1, 3.5, 1.4, 0.2]]'"
        raise argparse.ArgumentTypeError(f"DATA is not JSON ({e.msg}); e.g. {example}") from None
    if isinstance(data, dict) and "instances" in data:
        data = data["instances"]
    if not isinstance(data, list):
        raise argparse.ArgumentTypeError("DATA must be a JSON list of instances, e.g. '[[1, 2]]'")
    return data


def add_model_verb_options(verb: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of `models VERB`."""
    add = parser.add_argument
    if verb != "list":
        add("name", metavar="NAME", help=NAME_HINT)
    if verb == "deploy":
        add(
            "--model",
            required=True,
            metavar="PATH|job:ID[/PATH]",
            help="a model file or folder, or what a job (or a study's best trial) left in its "
            "job dir (e.g. --model job:iris-3f9a1c/model.joblib)",
        )
        add(
            "--framework",
            required=True,
            choices=[f.value for f in ModelFramework],
            help="how to load it (e.g. --framework sklearn); custom: your class, see --predictor",
        )
        add(
            "--predictor",
            metavar="MODULE:CLASS",
            help="custom: a class with load() and predict(instances) in the model folder "
            "(e.g. --predictor predictor:Model)",
        )
        add(
            "--version",
            help="version name (default: v1, then the next vN when the model differs from the "
            "one served; the same model again deploys nothing) (e.g. --version v2)",
        )
        add(
            "--replace",
            action="store_true",
            help="a different model becomes the next version, takes all traffic and the older "
            "versions are removed (e.g. --replace)",
        )
        add(
            "--replicas",
            type=whole_number,
            default=1,
            metavar="N",
            help="serving processes behind the endpoint (e.g. --replicas 2)",
        )
        add(
            "--traffic",
            type=parse_traffic,
            metavar="V=P,...",
            help="split of unversioned requests (e.g. --traffic v1=90,v2=10); default: the "
            "new version takes all once ready",
        )
        add("--port", type=whole_number, metavar="PORT", help="local endpoint port (default: free)")
        add("--cpu", type=finite_number, metavar="N", help="CPU per replica (e.g. --cpu 1)")
        add("--memory", metavar="QTY", help="memory per replica (e.g. --memory 2Gi)")
        add("--gpus", type=whole_number, metavar="N", help="GPUs per replica (e.g. --gpus 1)")
        add(
            "--dry-run",
            action="store_true",
            help="show what would be deployed, deploy nothing. With --backend kubernetes "
            "--output yaml: the manifests, where a job:ID/PATH model is taken to be on the "
            "shared PVC $CLOUDML_SHARED_CLAIM (default cloudml-shared) as "
            "pvc://CLAIM/jobs/ID/job_dir/PATH, and versions named in --traffic as deployed "
            "(e.g. --dry-run --backend kubernetes --output yaml)",
        )
        add(
            "--backend",
            metavar="NAME",
            help="where to serve, instead of the configured backend: local, kubernetes or a "
            "Backend class path (e.g. --backend kubernetes --dry-run --output yaml)",
        )
        add(
            "--engine",
            choices=ENGINES,
            help="with --backend kubernetes --dry-run: kserve (an InferenceService, the "
            "default) or plain (Deployments and Services, no weighted split) "
            "(e.g. --engine plain)",
        )
    if verb == "predict":
        add(
            "data",
            metavar="DATA",
            type=parse_instances,
            help="JSON rows (e.g. '[[5.1, 3.5, 1.4, 0.2]]')",
        )
        add("--version", help="ask one version (e.g. --version v2)")
        add(
            "--protocol",
            choices=("http", "grpc"),
            default="http",
            help="KServe v1 over HTTP (default), or the Open Inference Protocol over gRPC",
        )
    if verb == "update":
        add(
            "--traffic",
            type=parse_traffic,
            required=True,
            metavar="V=P,...",
            help="new split (e.g. --traffic v1=90,v2=10)",
        )
    if verb == "scale":
        add("--version", required=True, help="the version to scale (e.g. --version v1)")
        add(
            "--replicas",
            type=whole_number,
            required=True,
            metavar="N",
            help="serving processes for it, 1..16 (e.g. --replicas 3)",
        )
    if verb == "undeploy":
        add("--version", help="remove only this version (it must get no traffic)")
    if verb in ("list", "describe", "deploy", "predict", "update", "rollback", "scale"):
        add_output_option(parser, yaml=verb == "deploy")


def build_deploy_spec(ns: argparse.Namespace) -> DeploySpec:
    """The `DeploySpec` of a parsed `models deploy` command."""
    given = {"cpu": ns.cpu, "memory": ns.memory, "gpus": ns.gpus}
    chosen = {key: value for key, value in given.items() if value is not None}
    extra: dict[str, Any] = {"resources": Resources(**chosen)} if chosen else {}
    return DeploySpec(
        name=ns.name,
        model=ns.model,
        framework=ModelFramework(ns.framework),
        version=ns.version,
        replicas=ns.replicas,
        predictor=ns.predictor,
        traffic=ns.traffic or {},
        port=ns.port,
        replace=ns.replace,
        **extra,
    )
