"""The inference protocol's HTTP headers that the local endpoint passes on, both ways.

Besides Content-Type: the binary tensor extension's `Inference-Header-Content-Length` (the
length of the JSON part of a binary body), request ids and W3C trace context.
"""

from __future__ import annotations

from collections.abc import Mapping

PASSED_HEADERS = (
    "Content-Type",
    "Inference-Header-Content-Length",
    "X-Request-Id",
    "Traceparent",
    "Tracestate",
)
REQUEST_ID = "X-Request-Id"


def to_replica(request: Mapping[str, str]) -> dict[str, str]:
    """The headers of the client's request that go to the replica (JSON unless it says)."""
    headers = {"Content-Type": "application/json"}
    headers.update({h: v for h in PASSED_HEADERS if (v := request.get(h))})
    return headers


def to_client(response: Mapping[str, str], request: Mapping[str, str]) -> dict[str, str]:
    """The headers of the replica's answer that go back; the request's id is echoed when the
    replica did not set one, so a client can match answers to requests."""
    headers = {h: v for h in PASSED_HEADERS if (v := response.get(h))}
    headers.setdefault("Content-Type", "application/json")
    if REQUEST_ID not in headers and (request_id := request.get(REQUEST_ID)):
        headers[REQUEST_ID] = request_id
    return headers
