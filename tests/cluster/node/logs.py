"""Container logs: CRI-format files written from the containers' streams, and the kubelet's
``/containerLogs`` endpoint the API server calls for ``pods/log``."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .times import nano_now, parse_time

if TYPE_CHECKING:
    from .agent import NodeAgent


async def serve_logs(agent: NodeAgent) -> web.AppRunner:
    """Serve the log endpoint over TLS to clients with a certificate of the cluster CA."""
    app = web.Application()
    app.router.add_get(
        "/containerLogs/{ns}/{pod}/{container}", lambda request: container_logs(agent, request)
    )
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=agent.args.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(agent.args.serving_cert, agent.args.serving_key)
    await web.TCPSite(runner, "127.0.0.1", agent.args.port, ssl_context=ctx).start()
    return runner


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def container_logs(agent: NodeAgent, request: web.Request) -> web.StreamResponse:
    ns, pod, name = (request.match_info[k] for k in ("ns", "pod", "container"))
    run = agent.by_name.get((ns, pod))
    box = run.containers.get(name) if run else None
    if run is None or box is None:
        raise web.HTTPNotFound(text=f'container "{name}" in pod "{pod}" is not known')
    q = request.query
    previous = q.get("previous") == "true"
    path = box.log_path(box.restarts - 1 if previous else box.restarts)
    if not path.exists():
        what = "previous terminated" if previous else "current"
        raise web.HTTPBadRequest(text=f'{what} container "{name}" in pod "{pod}" not found')
    since = None
    if "sinceSeconds" in q:
        since = time.time() - float(q["sinceSeconds"])
    elif "sinceTime" in q:
        since = parse_time(q["sinceTime"])
    tail = int(q["tailLines"]) if "tailLines" in q else None
    limit = int(q["limitBytes"]) if "limitBytes" in q else None
    stamps = q.get("timestamps") == "true"
    follow = q.get("follow") == "true" and not previous
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    sent = 0

    def render(line: str) -> bytes | None:
        stamp, _, rest = line.partition(" ")
        _stream, _, rest = rest.partition(" ")
        _tag, _, text = rest.partition(" ")
        if since is not None and parse_time(stamp[:26] + "Z") < since:
            return None
        return ((stamp + " " if stamps else "") + text + "\n").encode()

    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines(keepends=True)
        complete = [ln.rstrip("\n") for ln in lines if ln.endswith("\n")]
        pending = "".join(ln for ln in lines if not ln.endswith("\n"))
        if tail is not None:
            complete = complete[-tail:] if tail > 0 else []
        for line in complete:
            out = render(line)
            if out is None:
                continue
            if limit is not None and sent + len(out) > limit:
                await response.write(out[: limit - sent])
                return response
            await response.write(out)
            sent += len(out)
        while follow:
            chunk = f.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    out = render(pending.rstrip("\n"))
                    pending = ""
                    if out is not None:
                        await response.write(out)
                continue
            if box.instance_done(path):
                break
            await asyncio.sleep(0.05)
    return response


async def pump(stream: asyncio.StreamReader | None, out: Any, name: str) -> None:
    """Copy a container's stream into its log file, a CRI line per line."""
    assert stream is not None
    pending = b""
    while chunk := await stream.read(65536):
        *lines, pending = (pending + chunk).split(b"\n")
        stamp = nano_now()
        texts = (line.decode("utf-8", "replace").removesuffix("\r") for line in lines)
        out.write("".join(f"{stamp} {name} F {text}\n" for text in texts))
        out.flush()
    if pending:
        out.write(f"{nano_now()} {name} F {pending.decode('utf-8', 'replace')}\n")
        out.flush()
