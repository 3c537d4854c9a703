"""A small asyncio client of the Kubernetes API for the node agent: JSON over aiohttp with the
identity of a kubeconfig (client certificate), list + watch streams, typed refusals."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yaml

Obj = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    """A refusal of the API server: its HTTP status, reason and message."""

    def __init__(self, status: int, body: Obj | str) -> None:
        body = body if isinstance(body, dict) else {"message": str(body)}
        self.status = status
        self.reason = str(body.get("reason", ""))
        self.body = body
        super().__init__(f"{status} {self.reason}: {body.get('message', '')}")


def load_kubeconfig(path: Path) -> tuple[str, ssl.SSLContext]:
    """The server URL and a TLS context for the current context's certificate identity."""
    doc = yaml.safe_load(Path(path).read_text())
    current = next(c for c in doc["contexts"] if c["name"] == doc["current-context"])["context"]
    cluster = next(c for c in doc["clusters"] if c["name"] == current["cluster"])["cluster"]
    user = next(u for u in doc["users"] if u["name"] == current["user"])["user"]
    ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
    ctx.load_cert_chain(user["client-certificate"], user["client-key"])
    return cluster["server"], ctx


class KubeClient:
    """Requests as one identity; create it inside the event loop that uses it."""

    def __init__(self, kubeconfig: Path) -> None:
        self.server, ssl_context = load_kubeconfig(kubeconfig)
        connector = aiohttp.TCPConnector(ssl=ssl_context, limit=32)
        self.session = aiohttp.ClientSession(connector=connector)

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        """One request; the decoded answer, or ``ApiError``."""
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        timeout = aiohttp.ClientTimeout(total=30)
        async with self.session.request(
            method, self.server + path, data=data, params=params, headers=headers, timeout=timeout
        ) as response:
            text = await response.text()
            try:
                decoded: Obj = json.loads(text) if text else {}
            except ValueError:
                decoded = {"message": text}
            if response.status >= 400:
                raise ApiError(response.status, decoded)
            return decoded

    async def get(self, path: str, **params: str) -> Obj:
        return await self.request("GET", path, params=params)

    async def create(self, path: str, body: Mapping[str, Any]) -> Obj:
        return await self.request("POST", path, body)

    async def patch(self, path: str, body: Mapping[str, Any]) -> Obj:
        return await self.request("PATCH", path, body, content_type=MERGE_PATCH)

    async def delete(self, path: str, body: Mapping[str, Any] | None = None) -> Obj:
        return await self.request("DELETE", path, body)

    async def watch(self, path: str, resource_version: str, **params: str) -> AsyncIterator[Obj]:
        """The events of one watch from ``resource_version`` until the server ends it
        (a 410 ``ERROR`` event raises ``ApiError``)."""
        query = {
            **params,
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "300",
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_read=330)
        async with self.session.get(self.server + path, params=query, timeout=timeout) as response:
            if response.status >= 400:
                raise ApiError(response.status, await response.text())
            async for line in response.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise ApiError(int(status.get("code", 500)), status)
                yield event


async def informer(client: KubeClient, path: str, **params: str) -> AsyncIterator[tuple[str, Obj]]:
    """``("SYNC", list)`` after each (re)list, then ``(type, object)`` for each change, for ever;
    relists when the watch's resource version expired."""
    import asyncio

    while True:
        try:
            listing = await client.get(path, **params)
        except (ApiError, aiohttp.ClientError, OSError):
            await asyncio.sleep(0.5)
            continue
        yield "SYNC", listing
        version = listing["metadata"]["resourceVersion"]
        while True:
            try:
                async for event in client.watch(path, version, **params):
                    obj = event["object"]
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        yield event["type"], obj
            except ApiError as exc:
                if exc.status == 410:
                    break  # relist
                await asyncio.sleep(0.5)
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                await asyncio.sleep(0.5)
