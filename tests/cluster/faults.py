"""Faults a real API server cannot be made to produce on demand, injected by a proxy in front of
it: bursts of 429/5xx answers (with ``Retry-After``), watches that expire (a ``410 Gone`` ERROR
event, as the server sends when a resource version is too old) or drop mid-stream.

Everything else passes through unchanged to the real server, credentials included: clients
talk plain HTTP to the proxy on loopback, the proxy talks TLS to the API server.

Usage::

    with FaultProxy(cluster) as proxy:
        kubeconfig = proxy.kubeconfig(tenant_kubeconfig)
        proxy.fail("POST", r"/jobs$", 429, times=2, retry_after=0.1)
        proxy.expire_watches()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

#: Hop-by-hop and length headers the proxy sets itself.
_SKIP = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method`` and ``path`` with ``status``."""

    method: str
    path: re.Pattern[str]
    status: int
    times: int
    retry_after: float | None
    reason: str
    message: str


class FaultProxy:
    """A loopback HTTP proxy to the cluster's API server, with faults on demand."""

    def __init__(self, cluster: Any) -> None:
        self.upstream = cluster.server_url
        self.ca = str(cluster.ca_file)
        self.url = ""
        self.faults: list[Fault] = []
        #: Every request seen, as (method, path with query).
        self.requests: list[tuple[str, str]] = []
        #: Open watch streams, and what to do to each now ("" until a fault is asked).
        self._watches: dict[web.StreamResponse, tuple[asyncio.Event, list[str]]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        context = ssl.create_default_context(cafile=self.ca)
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        self._signal("drop")
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def kubeconfig(self, original: Path) -> Path:
        """A copy of a token kubeconfig that reaches the API server through the proxy."""
        doc = yaml.safe_load(Path(original).read_text())
        for cluster in doc["clusters"]:
            cluster["cluster"] = {"server": self.url}
        path = Path(original).with_suffix(".via-proxy.kubeconfig")
        path.write_text(json.dumps(doc))
        return path

    # --- faults ----------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
        reason: str = "",
        message: str = "",
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` instead of passing them."""
        reason = reason or {429: "TooManyRequests", 500: "InternalError"}.get(status, "Failure")
        self.faults.append(
            Fault(method, re.compile(path), status, times, retry_after, reason, message or reason)
        )

    def expire_watches(self) -> None:
        """Every open watch gets a ``410 Gone`` ERROR event, then ends (as the server's do)."""
        self._loop.call_soon_threadsafe(self._signal, "expire")

    def drop_watches(self) -> None:
        """Every open watch stream is cut without a word."""
        self._loop.call_soon_threadsafe(self._signal, "drop")

    def _signal(self, what: str) -> None:
        for event, todo in self._watches.values():
            todo.append(what)
            event.set()

    # --- proxying --------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path_qs
        self.requests.append((request.method, path))
        fault = next(
            (
                f
                for f in self.faults
                if f.times > 0 and f.method == request.method and f.path.search(request.path)
            ),
            None,
        )
        if fault is not None:
            fault.times -= 1
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else {}
            body = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "message": fault.message,
                "reason": fault.reason,
                "code": fault.status,
            }
            return web.json_response(body, status=fault.status, headers=headers)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIP}
        data = await request.read()
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with self._session.request(
            request.method,
            self.upstream + path,
            headers=headers,
            data=data or None,
            timeout=timeout,
            auto_decompress=False,
        ) as upstream:
            response = web.StreamResponse(status=upstream.status)
            for key, value in upstream.headers.items():
                if key.lower() not in _SKIP:
                    response.headers[key] = value
            await response.prepare(request)
            if request.query.get("watch") in ("true", "1"):
                await self._stream_watch(request, upstream, response)
            else:
                with contextlib.suppress(ConnectionResetError, aiohttp.ClientError):
                    async for chunk in upstream.content.iter_any():
                        await response.write(chunk)
            return response

    async def _stream_watch(
        self, request: web.Request, upstream: aiohttp.ClientResponse, response: web.StreamResponse
    ) -> None:
        """Copy a watch stream until it ends, or a fault is asked for it."""
        event, todo = self._watches[response] = (asyncio.Event(), [])
        asked = asyncio.ensure_future(event.wait())
        try:
            while True:
                chunk = asyncio.ensure_future(upstream.content.readany())
                await asyncio.wait({chunk, asked}, return_when=asyncio.FIRST_COMPLETED)
                if todo:
                    chunk.cancel()
                    if todo[0] == "expire":
                        await response.write(_gone())
                    else:
                        response.force_close()
                    return
                data = chunk.result()
                if not data:
                    return
                await response.write(data)
        except (ConnectionResetError, aiohttp.ClientError):
            return
        finally:
            asked.cancel()
            del self._watches[response]


def _gone() -> bytes:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": 410,
        "reason": "Expired",
        "message": "too old resource version",
    }
    return json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"
