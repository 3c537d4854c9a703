"""Calling a deployment's endpoint from Python, over the same HTTP any other client uses."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from ..exceptions import BackendUnavailable, CloudMLError, InvalidSpec, NotFound


def as_instances(data: Any) -> list[Any]:
    """Rows as JSON lists: a list as is, a NumPy array or a pandas DataFrame via `tolist`."""
    values = getattr(data, "values", data)  # a DataFrame's array
    if hasattr(values, "tolist"):
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise InvalidSpec(
            f"give instances as a list of rows or an array, not {type(data).__name__}"
        )
    return list(values)


#: How long a prediction is retried while the endpoint does not answer or has no ready replica
#: (an endpoint or replicas coming back after a crash); predictions are idempotent.
RETRY_SECONDS = 30.0


def post_predict(
    url: str,
    name: str,
    data: Any,
    version: str | None = None,
    timeout: float = 60.0,
    retry_seconds: float = RETRY_SECONDS,
) -> list[Any]:
    """POST `{"instances": [...]}` to `/v1/models/NAME[/versions/V]:predict`; the predictions.
    An endpoint that does not answer, or answers 503, is asked again for `retry_seconds`."""
    path = f"/v1/models/{name}" + (f"/versions/{version}" if version else "") + ":predict"
    body = json.dumps({"instances": as_instances(data)}).encode()
    deadline = time.monotonic() + retry_seconds
    pause = 0.1
    while True:
        request = urllib.request.Request(
            url + path, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            predictions: list[Any] = _call(request, url, name, timeout)["predictions"]
            return predictions
        except BackendUnavailable:
            if time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


def get_metadata(
    url: str, name: str, version: str | None = None, timeout: float = 60.0
) -> dict[str, Any]:
    """GET `/v2/models/NAME[/versions/V]`: the model's Open Inference Protocol metadata (its
    `name`, `versions`, `platform`, and `inputs`/`outputs` tensors with `datatype` and `shape`)."""
    path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "")
    metadata: dict[str, Any] = _call(urllib.request.Request(url + path), url, name, timeout)
    return metadata


def _call(request: urllib.request.Request, url: str, name: str, timeout: float) -> Any:
    """The endpoint's JSON answer to `request`; its refusals and silence as our errors."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        raise _error(e.code, e.read(), name) from None
    except OSError as e:
        raise BackendUnavailable(f"the endpoint of {name} at {url} does not answer: {e}") from e


def _error(status: int, body: bytes, name: str) -> CloudMLError:
    try:
        data = json.loads(body)
        reason = data.get("error") or data.get("detail") or data
    except ValueError:
        reason = body.decode(errors="replace")[:500]
    message = f"{name}: {reason}"
    if status == 400:
        return InvalidSpec(message)
    if status == 404:
        return NotFound(message)
    return BackendUnavailable(f"{message} (HTTP {status})")
