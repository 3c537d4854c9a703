"""The one door to the Kubernetes API: configuration, JSON requests, retries and typed errors.

Built on the official client's configuration loaders and HTTP plumbing (auth, TLS, proxies),
but speaks plain JSON dicts: the backend never builds or decodes the client's typed models,
which are an order of magnitude slower to decode than the JSON they come from.

Errors become the project's own: unreachable server -> ``BackendUnavailable`` naming its URL,
403 from a ResourceQuota -> ``QuotaExceeded`` with the quota's numbers, 404 -> ``NotFound``,
409 -> ``Conflict``; 429 and 5xx are retried with exponential backoff and jitter (honouring
``Retry-After``) before they give up as ``BackendUnavailable``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ...exceptions import (
    BackendUnavailable,
    CloudMLError,
    Conflict,
    MissingExtra,
    NotFound,
    QuotaExceeded,
)
from .quota import QUOTA_RE, refusal_message

#: Where Kubernetes mounts a pod's service-account namespace.
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MERGE_PATCH = "application/merge-patch+json"
#: API root of each kind this project reads or writes; the rest are core (``/api/v1``).
API_ROOTS = {
    "jobs": "/apis/batch/v1",
    "deployments": "/apis/apps/v1",
    "inferenceservices": "/apis/serving.kserve.io/v1beta1",
}


class ApiError(CloudMLError):
    """A request the API server refused; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class KubeApi:
    """A configured connection to one API server and one namespace."""

    def __init__(
        self,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
        retries: int = 5,
        backoff: float = 0.2,
        timeout: float = 30.0,
        log: logging.Logger | None = None,
    ) -> None:
        try:
            from kubernetes import client, config
        except ModuleNotFoundError as exc:
            raise MissingExtra("the kubernetes backend", exc.name, "kubernetes") from None

        configuration = client.Configuration()
        default_namespace = "default"
        try:
            if kubeconfig:
                raise config.ConfigException("a kubeconfig was given")
            config.load_incluster_config(client_configuration=configuration)
            default_namespace = _read(SERVICE_ACCOUNT_NAMESPACE) or default_namespace
        except config.ConfigException:
            try:
                config.load_kube_config(
                    config_file=kubeconfig, context=context, client_configuration=configuration
                )
                _, active = config.list_kube_config_contexts(config_file=kubeconfig)
                chosen = context or active["name"]
                contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
                for ctx in contexts:
                    if ctx["name"] == chosen:
                        default_namespace = ctx["context"].get("namespace") or default_namespace
            except (config.ConfigException, OSError, TypeError, KeyError) as exc:
                raise BackendUnavailable(
                    "no Kubernetes cluster configured: not running in a pod, and no usable "
                    f"kubeconfig ({exc}); set $KUBECONFIG or c.KubernetesBackend.kubeconfig"
                ) from exc
        self.host: str = configuration.host
        self.namespace: str = namespace or default_namespace
        self.client = client.ApiClient(configuration)
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.log = log or logging.getLogger(__name__)
        #: Requests sent (not counting watch and log streams), as "METHOD /path".
        self.calls: list[str] = []

    def path(self, plural: str, name: str = "") -> str:
        """The URL path of the objects of a kind in this namespace, or of one of them."""
        root = API_ROOTS.get(plural, "/api/v1")
        return f"{root}/namespaces/{self.namespace}/{plural}" + (f"/{name}" if name else "")

    # --- requests -------------------------------------------------------------------------------

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        return self.request("GET", path, query=query)

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    def delete(self, path: str, **query: Any) -> dict[str, Any]:
        return self.request("DELETE", path, query=query)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        """One JSON request, retried on 429/5xx/connection errors; the decoded answer."""
        response = self._send(method, path, query, body, content_type, stream=False)
        data = response.read()
        return json.loads(data) if data else {}

    def stream(
        self,
        path: str,
        query: Mapping[str, Any],
        timeout: float | None = None,
        opened: Callable[[Any], None] | None = None,
    ) -> Iterator[bytes]:
        """The lines of a streamed GET (a watch, a followed log) as they arrive. `opened` is
        handed the response once it is open: its `shutdown()` ends a blocked read from any
        thread (the stream then ends as broken off)."""
        import urllib3

        response = self._send("GET", path, query, None, None, stream=True, timeout=timeout)
        raw = response.response
        if opened is not None:
            opened(raw)
        try:
            pending = b""
            for chunk in raw.stream(65536, decode_content=False):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                yield from (line for line in lines if line)
            if pending:
                yield pending
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackendUnavailable(
                f"the stream from {self.host}{path} broke off: {_cause(exc)}"
            ) from exc
        finally:
            raw.release_conn()

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None,
        body: Mapping[str, Any] | None,
        content_type: str | None,
        *,
        stream: bool,
        timeout: float | None = None,
    ) -> Any:
        import urllib3

        params = [(k, _query_value(v)) for k, v in (query or {}).items() if v is not None]
        headers = {"Accept": "application/json", "Content-Type": content_type or "application/json"}
        if stream:
            headers["Accept"] = "*/*"
        if not stream:
            self.calls.append(f"{method} {path}")
        attempt = 0
        while True:
            attempt += 1
            method_, url, headers_, body_, _ = self.client.param_serialize(
                method, path, query_params=params, header_params=dict(headers), body=body,
                auth_settings=["BearerToken"],
            )  # fmt: skip
            try:
                response = self.client.call_api(
                    method_,
                    url,
                    header_params=headers_,
                    body=body_,
                    _request_timeout=(5.0, timeout) if stream else self.timeout,
                )
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if attempt > self.retries:
                    raise BackendUnavailable(
                        f"the Kubernetes API server at {self.host} cannot be reached: {_cause(exc)}"
                    ) from exc
                self._sleep(attempt, None)
                continue
            if 200 <= response.status < 300:
                return response
            data = response.read()
            if response.status in RETRY_STATUSES and attempt <= self.retries:
                self.log.debug("%s %s -> %s, retrying", method, path, response.status)
                self._sleep(attempt, response.headers.get("Retry-After"))
                continue
            raise error_for(response.status, data, self.host)

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        """Exponential backoff with full jitter, or what the server asked for."""
        delay = self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                delay = max(delay, min(float(retry_after), 30.0))
        time.sleep(min(delay, 10.0))


def error_for(status: int, data: bytes, host: str) -> CloudMLError:
    """The project's error for an API server's refusal (a ``Status`` body, or anything)."""
    try:
        body = json.loads(data)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or data[:300].decode("utf-8", "replace") or status)
    reason = str(body.get("reason") or "")
    if status == 404:
        return NotFound(message)
    if status == 409:
        return Conflict(message)
    if status == 403 and (refusal := QUOTA_RE.search(message)):
        return QuotaExceeded(refusal_message(refusal))
    if status in RETRY_STATUSES:
        return BackendUnavailable(
            f"the Kubernetes API server at {host} answers {status}: {message}"
        )
    return ApiError(
        status, f"Kubernetes refused the request ({status} {reason}): {message}", reason
    )


def _query_value(value: Any) -> Any:
    return ("true" if value else "false") if isinstance(value, bool) else value


def _cause(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc)


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""
