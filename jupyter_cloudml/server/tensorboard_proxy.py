"""``/cloudml/tensorboards/<id>/...``: the Jupyter server's proxy to a TensorBoard that its
backend runs on another host (a cluster Service), and to no other host.

jupyter-server-proxy's own ``/proxy/<host>:<port>/`` refuses hosts beyond localhost unless
``ServerProxy.host_allowlist`` opens them; this route opens exactly the host of a TensorBoard
the backend lists, found by its id, with the server's authentication as for every handler.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from jupyter_server_proxy.handlers import ProxyHandler
from tornado import web

from ..backends.common.tensorboards import INDEX_PATHS, relative_assets
from ..views.tensorboards import REMOTE_PREFIX

ROUTE = rf"/{REMOTE_PREFIX}/(tb-[0-9a-f]{{12}})(/.*|)"


class TensorBoardProxyHandler(ProxyHandler):
    """HTTP and websockets of one backend TensorBoard, by id."""

    async def _target(self, board_id: str) -> tuple[str, int]:
        app = self.settings["cloudml"]
        boards = await app.call(app.client.tensorboards)
        board = next((b for b in boards if b.id == board_id), None)
        if board is None:
            raise web.HTTPError(404, f"no TensorBoard {board_id}")
        parts = urlsplit(board.url)
        if not parts.hostname or not parts.port:
            raise web.HTTPError(502, f"TensorBoard {board_id} has no host and port: {board.url}")
        self.host_allowlist = [parts.hostname]
        self.proxy_base = f"{REMOTE_PREFIX}/{board_id}"
        self.rewrite_response = _relative_assets
        return parts.hostname, parts.port

    async def _proxy(self, board_id: str, path: str) -> Any:
        host, port = await self._target(board_id)
        return await self.proxy(host, port, path)

    # every HTTP method is proxied alike (GET arrives as http_get: websockets take `open`)
    http_get = post = put = delete = head = patch = options = _proxy

    async def open(self, board_id: str, path: str) -> Any:
        host, port = await self._target(board_id)
        return await self.proxy_open(host, port, path)


def _relative_assets(response: Any, path: str) -> None:
    """TensorBoard's page with its fonts addressed from the page, inside this proxy."""
    if (path or "/") in INDEX_PATHS and response.body:
        response.body = relative_assets(response.body)
