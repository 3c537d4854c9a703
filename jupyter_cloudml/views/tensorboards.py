"""TensorBoard in the notebook and in JupyterLab: through the Jupyter server, never localhost.

Backends start TensorBoards (`Backend.tensorboard`) at URLs the Jupyter server can reach; the
browser reaches them through the server, under its base URL, which works behind JupyterHub as
well: a local one through jupyter-server-proxy (`{base_url}proxy/PORT/`), one on another host
(a cluster Service) through the server's own route for it (`{base_url}cloudml/tensorboards/ID/`,
see `server.tensorboard_proxy`).
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from ..models import TensorBoardInfo
from .text import format_table, format_time

#: Output MIME type the lab extension renders as an inline TensorBoard frame.
MIME_TYPE = "application/vnd.jupyter.cloudml.tensorboard+json"
LOCAL_HOSTS = ("127.0.0.1", "localhost")
#: Where the Jupyter server proxies TensorBoards on other hosts, by id.
REMOTE_PREFIX = "cloudml/tensorboards"
#: The dashboard a TensorBoard opens on (the lab extension's frames open on it too).
DASHBOARD = "scalars"


def proxy_path(board: TensorBoardInfo) -> str:
    """The path under the Jupyter server's base URL that proxies to the board (no leading '/')."""
    parts = urlsplit(board.url)
    path = parts.path.lstrip("/")
    if parts.hostname in LOCAL_HOSTS:
        return f"proxy/{parts.port}/{path}"
    return f"{REMOTE_PREFIX}/{board.id}/{path}"


def notebook_bundle(board: TensorBoardInfo, height: int = 800) -> dict[str, Any]:
    """A display bundle: the lab extension's frame, an HTML frame elsewhere, text for logs.

    Outside JupyterLab the frame's URL starts at `$JUPYTERHUB_SERVICE_PREFIX` (set by
    JupyterHub for a user's server) or `/`.
    """
    path = proxy_path(board)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    src = html.escape(f"{prefix.rstrip('/')}/{path}#{DASHBOARD}", quote=True)
    status = "reused" if board.reused else "started"
    return {
        MIME_TYPE: {"id": board.id, "jobs": list(board.jobs), "url": path, "height": height},
        "text/html": f'<iframe src="{src}" width="100%" height="{height}" frameborder="0">'
        "</iframe>",
        "text/plain": f"TensorBoard {board.id} ({status}) over {', '.join(board.jobs)}: "
        f"open {path} under the Jupyter server's URL",
    }


def format_tensorboard(board: TensorBoardInfo) -> str:
    """One TensorBoard: where it serves and over which jobs."""
    state = "reused" if board.reused else "started"
    return f"TensorBoard {board.id} ({state}) over {', '.join(board.jobs)}: {board.url}"


def format_tensorboards(boards: Sequence[TensorBoardInfo]) -> str:
    if not boards:
        return "no TensorBoard is running"
    rows = [(b.id, b.url, format_time(b.started), ", ".join(b.jobs)) for b in boards]
    return format_table(("ID", "URL", "STARTED", "JOBS"), rows, cut={"JOBS": 12})
