"""Deployments as text and JSON: tables, details, and copy-pasteable curl and Python snippets."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any

from ..models import DeploymentInfo, DeploySpec, ServingReplicaStatus, VersionInfo, to_dict
from ..views.text import format_table, format_time


def traffic_text(info: DeploymentInfo) -> str:
    return ", ".join(f"{v.version}={v.traffic}%" for v in info.versions if v.traffic) or "-"


def replicas_text(version: VersionInfo) -> str:
    return f"{version.ready}/{len(version.replicas)} ready"


def format_deployment_table(deployments: Sequence[DeploymentInfo]) -> str:
    if not deployments:
        return "no deployments (serve a model: %cloudml_deploy NAME --model PATH --framework F)"
    rows = [
        (
            d.name,
            d.status.value,
            traffic_text(d),
            ", ".join(f"{v.version} {replicas_text(v)}" for v in d.versions),
            d.url,
        )
        for d in deployments
    ]
    headers = ("NAME", "STATUS", "TRAFFIC", "REPLICAS", "ENDPOINT")
    return format_table(headers, rows, cut={"TRAFFIC": 12, "REPLICAS": 12})


def curl_snippet(info: DeploymentInfo, example: str = "[[1.0, 2.0]]") -> str:
    body = json.dumps({"instances": json.loads(example)})
    return (
        f"curl -s -H 'Content-Type: application/json' -d {shlex.quote(body)} "
        f"{info.url}/v1/models/{info.name}:predict"
    )


def python_snippet(info: DeploymentInfo, example: str = "[[1.0, 2.0]]") -> str:
    return f'import jupyter_cloudml\njupyter_cloudml.predict("{info.name}", {example})'


def grpc_lines(info: DeploymentInfo) -> list[str]:
    """The gRPC address, and how to call it, where the endpoint has one."""
    if info.grpc_url is None:
        return []
    return [
        f"  gRPC (Open Inference Protocol):  {info.grpc_url}  "
        f"(inference.GRPCInferenceService/ModelInfer, model_name {info.name!r}; "
        f'jupyter_cloudml.predict("{info.name}", rows, protocol="grpc"))'
    ]


def format_deployment(info: DeploymentInfo) -> str:
    """Everything about one deployment, as `models describe` shows it."""
    lines = [info.outcome] if info.outcome else []
    lines += [
        f"{info.name}: {info.status.value}" + (f" ({info.reason})" if info.reason else ""),
        f"endpoint:  {info.url}",
        f"  v1 (KServe):  POST {info.url}/v1/models/{info.name}:predict",
        f"  v2 (Open Inference Protocol):  POST {info.url}/v2/models/{info.name}/infer",
        *grpc_lines(info),
        f"created:   {format_time(info.created)}",
        "versions:",
    ]
    for v in info.versions:
        lines.append(
            f"  {v.version}: {v.traffic}% of traffic, {v.framework.value} model {v.model}, "
            f"{replicas_text(v)}"
        )
        for r in v.replicas:
            note = f", restarted {r.restarts}x" if r.restarts else ""
            why = f": {r.reason}" if r.reason and r.status is not ServingReplicaStatus.READY else ""
            lines.append(f"    {r.name}: {r.status.value}{note}{why}")
    lines += ["", "curl:", f"  {curl_snippet(info)}", "python:"]
    lines += [f"  {line}" for line in python_snippet(info).splitlines()]
    return "\n".join(lines)


def deployment_dict(info: DeploymentInfo) -> dict[str, Any]:
    data: dict[str, Any] = to_dict(info)
    for version, v in zip(data["versions"], info.versions, strict=True):
        version["ready"] = v.ready
    return data


def format_deploy_dry_run(spec: DeploySpec, output: str = "text") -> str:
    """What `models deploy --dry-run` shows: the spec as text or JSON (`--output yaml` shows a
    backend's `Preview` instead: `render.format_preview`)."""
    if output == "json":
        return json.dumps(to_dict(spec), indent=2)
    res = spec.resources
    resources = f"cpu {res.cpu:g}" + (f", memory {res.memory}" if res.memory else "")
    resources += f", {res.gpus} GPU" if res.gpus else ""
    traffic = (
        ", ".join(f"{v}={p}%" for v, p in spec.traffic.items())
        if spec.traffic
        else f"{spec.version or 'the new version'} takes all once ready"
    )
    predictor = f" ({spec.predictor})" if spec.predictor else ""
    return "\n".join(
        [
            f"{spec.name} {spec.version or '(next version)'}: {spec.framework.value}{predictor} "
            f"model {spec.model}",
            f"replicas:  {spec.replicas} ({resources} each)",
            f"traffic:   {traffic}",
            "(dry run: nothing deployed)",
        ]
    )
