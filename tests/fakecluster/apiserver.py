"""The HTTP face of the fake cluster: a kmock Kubernetes scaffold serving the Store.

kmock gives the loopback HTTP server (``kmock.Server``), ``/``, ``/version`` and the ``Status``
404 for unknown endpoints. This subclass records every request, authenticates and authorizes it
(``rbac``), consumes injected faults, and answers resource requests itself (list, watch, get,
create, replace, patch, delete, deletecollection, ``/status``, pod ``/log``) with the Store's
semantics. It also serves
discovery from the registry: kmock's answers neither ``/apis/`` (the client's trailing slash)
nor a core ``groupVersion`` of ``v1``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp.web
import kmock
import yaml

from .common import ApiError, Obj, rfc3339_nano, within
from .faults import Faults
from .rbac import Authorizer, request_attributes
from .resources import ResourceType
from .store import JOB_ORPHAN_WARNING, ORPHAN_BY_DEFAULT, Store, not_found

Response = aiohttp.web.StreamResponse
_TRUE = ("true", "1", "True")
_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


class LogBufferLike(Protocol):
    """What the kubelet keeps of a container's output (see ``kubelet.LogBuffer``)."""

    lines: list[tuple[int, bytes]]
    done: bool

    def changed(self) -> asyncio.Event: ...


#: (pod uid, container name) -> the container's log, or None when it never ran.
LogSource = Callable[[str, str], "LogBufferLike | None"]


@dataclasses.dataclass(frozen=True)
class Route:
    """A resource request: what it addresses."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    sub: str | None


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return aiohttp.web.Response(
        text=json.dumps(body), status=status, content_type="application/json", headers=headers
    )


def _unknown(path: str) -> ApiError:
    return ApiError(
        404, "NotFound", "the server could not find the requested resource", {"path": path}
    )


class ApiServer(kmock.KubernetesScaffold):
    """kmock's discovery and errors, with the stateful API served from a ``Store``."""

    def __init__(self, store: Store, faults: Faults, authorizer: Authorizer) -> None:
        super().__init__()
        self.store = store
        self.faults = faults
        self.authorizer = authorizer
        self.log_source: LogSource | None = None
        #: (METHOD, path) of every request received, in order.
        self.request_log: list[tuple[str, str]] = []
        #: The query parameters and headers of those requests, in the same order.
        self.request_params: list[dict[str, str]] = []
        self.request_headers: list[dict[str, str]] = []
        #: Exceptions raised by the fake itself while serving (answered with 500).
        self.bugs: list[BaseException] = []
        self._log_streams: set[asyncio.Event] = set()
        for rt in store.registry.types:  # for kmock's ``/`` path listing
            self.resources[kmock.resource(rt.group, rt.version, rt.plural)] = kmock.ResourceInfo(
                kind=rt.kind,
                singular=rt.singular,
                namespaced=rt.namespaced,
                verbs=set(_VERBS),
                shortnames=set(rt.short_names),
                subresources={"status"} if rt.status else set(),
            )

    # --- entry point ---------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> Response:
        body = await raw_request.read()
        method, path = raw_request.method.upper(), raw_request.path
        self.request_log.append((method, path))
        self.request_params.append(dict(raw_request.query))
        self.request_headers.append(dict(raw_request.headers))
        try:
            identity = self.authorizer.authenticate(raw_request.headers.get("Authorization"))
            if identity is not None:
                q = raw_request.query
                watch = q.get("watch") in _TRUE
                attrs = request_attributes(identity, method, path, watch, q.get("fieldSelector"))
                self.authorizer.authorize(identity, attrs)
            fault = self.faults.take(method, path, body)
            if fault is not None:
                raise fault
            route = self._route(path)
            if route is None and method == "GET" and (found := self._discovery(path)) is not None:
                return _json(found)
            if route is None:
                return await super().__call__(raw_request)
            return await self._serve(raw_request, method, route, body)
        except ApiError as exc:
            return _json(exc.status(), exc.code, exc.headers)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:
            self.bugs.append(exc)
            error = ApiError(500, "InternalError", f"fake cluster bug: {exc!r}")
            error.details = {"causes": [{"message": traceback.format_exc()}]}
            return _json(error.status(), 500)

    def _route(self, path: str) -> Route | None:
        """The resource a path addresses; None for other (discovery, ``/version``) paths."""
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        registry = self.store.registry
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and registry.find(group, version, rest[2]):
            namespace, rest = rest[1], rest[2:]
        rt = registry.find(group, version, rest[0])
        if rt is None or (namespace is not None and not rt.namespaced):
            raise _unknown(path)
        name = rest[1] if len(rest) > 1 else None
        sub = "/".join(rest[2:]) or None
        return Route(rt, namespace, name, sub)

    def _discovery(self, path: str) -> Obj | None:
        """``/api``, ``/api/v1``, ``/apis``, ``/apis/GROUP``, ``/apis/GROUP/VERSION`` (with or
        without a trailing slash); None for other paths, 404 for unknown groups."""
        parts = [p for p in path.split("/") if p]
        types = self.store.registry.types
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if parts == ["apis"]:
            groups = sorted({(t.group, t.version) for t in types if t.group})
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    _group(g, [v for gg, v in groups if gg == g])
                    for g in dict.fromkeys(g for g, _ in groups)
                ],
            }
        if len(parts) == 2 and parts[0] == "apis":
            versions = [t.version for t in types if t.group == parts[1]]
            if not versions:
                raise _unknown(path)
            return {
                "kind": "APIGroup",
                "apiVersion": "v1",
                **_group(parts[1], list(dict.fromkeys(versions))),
            }
        if (len(parts) == 2 and parts[0] == "api") or (len(parts) == 3 and parts[0] == "apis"):
            group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
            served = [t for t in types if (t.group, t.version) == (group, version)]
            if not served:
                raise _unknown(path)
            resources = []
            for t in served:
                entry: Obj = {"name": t.plural, "singularName": t.singular, "kind": t.kind}
                entry.update(namespaced=t.namespaced, verbs=list(_VERBS))
                if t.short_names:
                    entry["shortNames"] = list(t.short_names)
                resources.append(entry)
                subresources = [("status", ["get", "patch", "update"])] if t.status else []
                subresources += [("log", ["get"])] if t.kind == "Pod" else []
                for sub, verbs in subresources:
                    resources.append(
                        {"name": f"{t.plural}/{sub}", "singularName": "", "kind": t.kind}
                        | {"namespaced": t.namespaced, "verbs": verbs}
                    )
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources,
            }
        return None

    # --- dispatch ------------------------------------------------------------------------------

    async def _serve(
        self, raw: aiohttp.web.BaseRequest, method: str, route: Route, body: bytes
    ) -> Response:
        """Dispatch a resource request by method, name and subresource."""
        q = raw.query
        rt, ns, name, sub = route.rt, route.namespace, route.name, route.sub
        dry = q.get("dryRun") == "All"
        if sub not in (None, "status") and not (sub == "log" and rt.kind == "Pod"):
            raise _unknown(raw.path)
        if sub == "status" and not rt.status:
            raise _unknown(raw.path)
        if method == "GET" and q.get("watch") in _TRUE:
            return await self._watch(raw, route)
        if method == "GET" and name is None:
            return self._list(route, q)
        if method == "GET" and sub == "log":
            return await self._log(raw, route)
        if method == "GET":
            assert name is not None
            obj = self.store.require(rt, ns, name)
            return _json(obj)
        if name is None and method == "POST":
            if rt.namespaced and ns is None:
                raise _unknown(raw.path)
            return _json(self.store.create(rt, ns, _decode(body, raw), dry_run=dry), 201)
        if name is None and method == "DELETE":
            options = _delete_options(q, body)
            items = self.store.delete_collection(
                rt, ns, q.get("labelSelector"), q.get("fieldSelector"), **options
            )
            listing = {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": items,
            }
            return _json(listing)
        if name is None or sub == "log":
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")
        if method == "PUT":
            obj = self.store.replace(rt, ns, name, _decode(body, raw), subresource=sub, dry_run=dry)
            return _json(obj)
        if method == "PATCH":
            content_type = raw.headers.get("Content-Type", "application/merge-patch+json")
            obj = self.store.patch(
                rt, ns, name, _decode(body, raw), content_type, subresource=sub, dry_run=dry
            )
            return _json(obj)
        if method == "DELETE" and sub is None:
            return self._delete(route, name, q, body)
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")

    def _list(self, route: Route, q: Any) -> Response:
        """A list with ``kind``, ``apiVersion`` and the current resourceVersion; limit/continue."""
        rt = route.rt
        items, rv = self.store.list(
            rt, route.namespace, q.get("labelSelector"), q.get("fieldSelector")
        )
        metadata: Obj = {"resourceVersion": str(rv)}
        offset = 0
        if q.get("continue"):
            try:
                token = json.loads(base64.b64decode(q["continue"]))
                offset = int(token["offset"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ApiError(400, "BadRequest", "invalid continue token") from exc
        limit = int(q.get("limit") or 0)
        if offset or limit:
            rest = items[offset:]
            items = rest[:limit] if limit else rest
            if limit and len(rest) > limit:
                token = json.dumps({"offset": offset + limit, "rv": rv}).encode()
                metadata["continue"] = base64.b64encode(token).decode()
                metadata["remainingItemCount"] = len(rest) - limit
        for item in items:
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return _json(
            {
                "kind": f"{rt.kind}List",
                "apiVersion": rt.api_version,
                "metadata": metadata,
                "items": items,
            }
        )

    def _delete(self, route: Route, name: str, q: Any, body: bytes) -> Response:
        """DELETE of one object: the object while it terminates, else a Success Status."""
        rt = route.rt
        options = _delete_options(q, body)
        headers = {}
        if options["propagation"] is None and (rt.group, rt.kind) in ORPHAN_BY_DEFAULT:
            headers["Warning"] = JOB_ORPHAN_WARNING
        obj, gone = self.store.delete(rt, route.namespace, name, **options)
        if not gone or rt.returns_deleted:
            return _json(obj, 200 if gone else 202, headers)
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": name,
                "group": rt.group,
                "kind": rt.plural,
                "uid": obj["metadata"]["uid"],
            },
        }
        return _json(status, 200, headers)

    # --- streams -------------------------------------------------------------------------------

    async def _watch(self, raw: aiohttp.web.BaseRequest, route: Route) -> Response:
        """Stream the watcher's events as JSON lines until timeoutSeconds, expiry or a drop."""
        q = raw.query
        watcher = self.store.watch(
            route.rt,
            route.namespace,
            route.name,
            q.get("labelSelector"),
            q.get("fieldSelector"),
            q.get("resourceVersion"),
        )
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        deadline = None if timeout is None else time.monotonic() + timeout
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(raw)
            while True:
                wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                if wait <= 0:
                    if q.get("allowWatchBookmarks") in _TRUE:
                        await _write_line(response, _bookmark(route.rt, self.store.rv))
                    break
                try:
                    kind, payload = await within(watcher.queue.get(), wait)
                except TimeoutError:
                    if raw.transport is None or raw.transport.is_closing():
                        return response
                    continue
                if kind == "event":
                    rv = payload["object"].get("metadata", {}).get("resourceVersion")
                    watcher.last_rv = int(rv or watcher.last_rv)
                    await _write_line(response, payload)
                elif kind == "expire":
                    floor = self.store.floor(route.rt)
                    await _write_line(response, _gone(watcher.last_rv, floor))
                    break
                else:
                    _abort(raw)
                    return response
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.store.unwatch(watcher)
        return response

    async def _log(self, raw: aiohttp.web.BaseRequest, route: Route) -> Response:
        """A pod's log as the kubelet serves it (text/plain; 400 while not started)."""
        q = raw.query
        assert route.name is not None
        pod = self.store.get(route.rt, route.namespace, route.name)
        if pod is None:
            raise not_found(route.rt, route.name)
        name = route.name
        containers = [c["name"] for c in pod.get("spec", {}).get("containers") or []]
        container = q.get("container")
        if not container:
            if len(containers) != 1:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(containers)}]",
                )
            container = containers[0]
        if container not in containers:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        if not pod.get("spec", {}).get("nodeName"):
            return aiohttp.web.Response(text="", content_type="text/plain")
        state = _container_state(pod, container)
        if "running" not in state and "terminated" not in state:
            why = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
            if why in ("ErrImagePull", "ImagePullBackOff"):
                why = "trying and failing to pull image"
            raise ApiError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is waiting to start: {why}',
            )
        buffer = self.log_source(pod["metadata"]["uid"], container) if self.log_source else None
        if buffer is None:
            return aiohttp.web.Response(text="", content_type="text/plain")
        stamps = q.get("timestamps") in _TRUE
        lines = list(buffer.lines)
        if q.get("sinceSeconds"):
            since = time.time_ns() - int(q["sinceSeconds"]) * 1_000_000_000
            lines = [(t, line) for t, line in lines if t >= since]
        if q.get("tailLines") is not None and q.get("tailLines") != "":
            tail = int(q["tailLines"])
            lines = lines[-tail:] if tail > 0 else []
        text = b"".join(_format(t, line, stamps) for t, line in lines)
        if q.get("limitBytes"):
            text = text[: int(q["limitBytes"])]
        if q.get("follow") not in _TRUE or buffer.done:
            return aiohttp.web.Response(body=text, content_type="text/plain")
        return await self._follow(raw, buffer, text, len(buffer.lines), stamps)

    async def _follow(
        self,
        raw: aiohttp.web.BaseRequest,
        buffer: LogBufferLike,
        first: bytes,
        seen: int,
        stamps: bool,
    ) -> Response:
        """Stream a log as lines arrive, until the container ends."""
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        stop = asyncio.Event()
        self._log_streams.add(stop)
        try:
            await response.prepare(raw)
            if first:
                await response.write(first)
            while True:
                changed = buffer.changed()
                if len(buffer.lines) > seen:
                    new = buffer.lines[seen:]
                    seen += len(new)
                    await response.write(b"".join(_format(t, line, stamps) for t, line in new))
                    continue
                if buffer.done:
                    break
                waiters = [
                    asyncio.ensure_future(changed.wait()),
                    asyncio.ensure_future(stop.wait()),
                ]
                try:
                    await asyncio.wait(waiters, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                if stop.is_set():
                    _abort(raw)
                    return response
                if raw.transport is None or raw.transport.is_closing():
                    return response
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self._log_streams.discard(stop)
        return response

    def drop_streams(self) -> None:
        """Abort every open watch and followed log (before the server stops)."""
        self.store.close_watches("drop")
        for stop in list(self._log_streams):
            stop.set()


def _group(name: str, versions: list[str]) -> Obj:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def _decode(body: bytes, raw: aiohttp.web.BaseRequest) -> Any:
    if not body:
        return {}
    try:
        if "yaml" in raw.headers.get("Content-Type", ""):
            return yaml.safe_load(body)
        return json.loads(body)
    except (ValueError, yaml.YAMLError) as exc:
        raise ApiError(400, "BadRequest", f"the request body is not valid: {exc}") from exc


def _delete_options(q: Any, body: bytes) -> dict[str, Any]:
    """DeleteOptions from the body and the query (the query wins)."""
    options: Obj = {}
    if body:
        with contextlib.suppress(ValueError):
            decoded = json.loads(body)
            options = decoded if isinstance(decoded, dict) else {}
    propagation = q.get("propagationPolicy") or options.get("propagationPolicy")
    orphan = q.get("orphanDependents") or options.get("orphanDependents")
    if propagation is None and orphan is not None:
        propagation = "Orphan" if str(orphan).lower() == "true" else "Background"
    if propagation not in (None, "Orphan", "Background", "Foreground"):
        raise ApiError(422, "Invalid", f"propagationPolicy: Unsupported value: {propagation!r}")
    grace = q.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
    dry = q.get("dryRun") == "All" or "All" in (options.get("dryRun") or [])
    return {
        "propagation": propagation,
        "grace": int(grace) if grace is not None else None,
        "preconditions": options.get("preconditions"),
        "dry_run": dry,
    }


def _container_state(pod: Obj, container: str) -> Obj:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status.get("name") == container:
            state: Obj = status.get("state") or {}
            return state
    return {}


def _format(when_ns: int, line: bytes, stamps: bool) -> bytes:
    return (rfc3339_nano(when_ns).encode() + b" " if stamps else b"") + line + b"\n"


async def _write_line(response: Response, payload: Obj) -> None:
    await response.write(json.dumps(payload).encode() + b"\n")


def _gone(requested: int, floor: int) -> Obj:
    return {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {requested} ({floor})",
            "reason": "Expired",
            "code": 410,
        },
    }


def _bookmark(rt: ResourceType, rv: int) -> Obj:
    return {
        "type": "BOOKMARK",
        "object": {
            "kind": rt.kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(rv)},
        },
    }


def _abort(raw: aiohttp.web.BaseRequest) -> None:
    """Close the connection under the response (no terminating chunk): a broken stream."""
    if raw.transport is not None:
        raw.transport.abort()
