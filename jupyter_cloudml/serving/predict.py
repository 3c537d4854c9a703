"""A deployment's predictions over the protocol asked for: HTTP (KServe v1) or gRPC."""

from __future__ import annotations

from typing import Any

from ..exceptions import InvalidSpec, Unsupported
from ..models import DeploymentInfo
from .client import post_predict

#: The protocols `Client.predict` speaks to an endpoint.
PROTOCOLS = ("http", "grpc")


def predict_at(
    info: DeploymentInfo,
    data: Any,
    version: str | None,
    protocol: str,
    timeout: float,
    retry_seconds: float,
) -> list[Any]:
    """The predictions of the deployment `info` over `protocol`: "http" or "grpc"."""
    if protocol not in PROTOCOLS:
        raise InvalidSpec(f"protocol {protocol!r}: give one of {', '.join(PROTOCOLS)}")
    if protocol == "http":
        return post_predict(info.url, info.name, data, version, timeout, retry_seconds)
    from .grpc_client import grpc_predict  # grpcio is imported by those who use it only

    if info.grpc_url is None:
        raise Unsupported(f"{info.name} has no gRPC address (deployed before gRPC: deploy again)")
    return grpc_predict(info.grpc_url, info.name, data, version, timeout, retry_seconds)
