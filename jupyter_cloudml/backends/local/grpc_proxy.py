"""The local endpoint's Open Inference Protocol over gRPC: a proxy in the endpoint process.

Each call of `inference.GRPCInferenceService` is passed on as bytes (never re-encoded) to a
ready replica's gRPC port: of the version the request names (`model_version`), else of the
one the traffic split picks. A replica that is gone (UNAVAILABLE) or found frozen is replaced
by another one, as the HTTP proxy does; every other answer, error or not, goes back as the
replica gave it, with its metadata. Server liveness and readiness are the endpoint's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from ...serving import inference_messages as messages

if TYPE_CHECKING:
    from .endpoint import Endpoint, Replica

#: Calls that name a model (their requests begin with its name and version).
MODEL_CALLS = ("ModelReady", "ModelMetadata", "ModelInfer")
#: The largest message passed either way (gRPC's default is 4 MiB).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]
REQUEST_ID = "x-request-id"
#: Metadata gRPC itself sets on each hop: not passed on.
_HOP_KEYS = ("user-agent", "te", "content-type", "grpc-")

Handler = Callable[[bytes, aio.ServicerContext], Awaitable[bytes]]


class GrpcProxy(grpc.GenericRpcHandler):
    """Routes the inference service's calls to the endpoint's replicas."""

    def __init__(self, endpoint: Endpoint, request_seconds: float) -> None:
        self.endpoint = endpoint
        self.request_seconds = request_seconds
        self.channels: dict[int, aio.Channel] = {}
        self.closing: set[asyncio.Future[None]] = set()
        own: dict[str, Handler] = {"ServerLive": self.server_live, "ServerReady": self.server_ready}
        forwarded = {name: self.forwarder(name) for name in ("ServerMetadata", *MODEL_CALLS)}
        self.handlers = {
            name: grpc.unary_unary_rpc_method_handler(handler)
            for name, handler in {**own, **forwarded}.items()
        }

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        prefix = f"/{messages.SERVICE}/"
        method = str(details.method)
        if not method.startswith(prefix):
            return None  # UNIMPLEMENTED
        return self.handlers.get(method[len(prefix) :])

    async def server_live(self, _request: bytes, _context: aio.ServicerContext) -> bytes:
        return bytes(messages.ServerLiveResponse(live=True).SerializeToString())

    async def server_ready(self, _request: bytes, _context: aio.ServicerContext) -> bytes:
        ready = self.endpoint.last_status.get("status") == "READY"
        return bytes(messages.ServerReadyResponse(ready=ready).SerializeToString())

    def forwarder(self, call: str) -> Handler:
        async def forward(request: bytes, context: aio.ServicerContext) -> bytes:
            return await self.forward(call, request, context)

        return forward

    async def forward(self, call: str, request: bytes, context: aio.ServicerContext) -> bytes:
        endpoint = self.endpoint
        desired = endpoint.desired
        version: str | None = None
        if call in MODEL_CALLS:
            route = messages.ModelRoute.FromString(request)
            if route.name != desired["name"]:
                await context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"no model {route.name!r} here (this endpoint serves {desired['name']!r})",
                )
            version = route.version or None
            if version is not None and version not in desired["versions"]:
                known = ", ".join(desired["versions"])
                await context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"model {route.name!r} has no version {version!r} (versions: {known})",
                )
        chosen = version or endpoint.pick_version()
        if chosen is None:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, f"model {desired['name']!r} has no version serving"
            )
        assert chosen is not None
        metadata = _passed_on(context.invocation_metadata() or ())
        tried: set[str] = set()
        while (replica := await endpoint.next_replica(chosen, tried)) is not None:
            tried.add(replica.name)
            replica.in_flight += 1
            try:
                answer = await self.ask(replica, call, request, metadata, context)
            except aio.AioRpcError as e:
                if e.code() is grpc.StatusCode.UNAVAILABLE:
                    continue  # the replica went away: try another one
                left = context.time_remaining()
                if e.code() is grpc.StatusCode.DEADLINE_EXCEEDED and (left is None or left > 0):
                    continue  # it took longer than REQUEST_SECONDS, the client waits still
                context.set_trailing_metadata(_passed_on(e.trailing_metadata() or ()))
                await context.abort(e.code(), e.details() or "")
            except asyncio.TimeoutError:
                continue  # found frozen
            finally:
                replica.in_flight -= 1
            response, initial, trailing = answer
            back = dict(_passed_on(initial))
            if version is None:
                back["x-model-version"] = chosen
            if request_id := dict(metadata).get(REQUEST_ID):  # echoed, as over HTTP
                back.setdefault(REQUEST_ID, request_id)
            await context.send_initial_metadata(tuple(back.items()))
            context.set_trailing_metadata(_passed_on(trailing))
            return response
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            f"no ready replica of {desired['name']} version {chosen}; try again soon",
        )
        raise AssertionError("abort returns no answer")

    async def ask(
        self,
        replica: Replica,
        call: str,
        request: bytes,
        metadata: Sequence[tuple[str, Any]],
        context: aio.ServicerContext,
    ) -> tuple[bytes, Any, Any]:
        """The replica's answer and metadata; `TimeoutError` once it is found frozen."""
        left = context.time_remaining()
        timeout = self.request_seconds if left is None else min(left, self.request_seconds)
        rpc = self.channel(replica).unary_unary(messages.method(call))
        answer = rpc(request, metadata=tuple(metadata), timeout=timeout)

        async def complete() -> tuple[bytes, Any, Any]:
            response = await answer
            return response, await answer.initial_metadata(), await answer.trailing_metadata()

        done = asyncio.ensure_future(complete())
        frozen = asyncio.ensure_future(replica.frozen.wait())
        try:
            await asyncio.wait({done, frozen}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            frozen.cancel()
        if not done.done():
            answer.cancel()
            done.cancel()
            with contextlib.suppress(asyncio.CancelledError, aio.AioRpcError):
                await done
            raise asyncio.TimeoutError(f"replica {replica.name} stopped answering")
        return done.result()

    def channel(self, replica: Replica) -> aio.Channel:
        """One channel per replica process (its port); those of replicas gone are closed."""
        live = {r.grpc_port for group in self.endpoint.replicas.values() for r in group}
        for port in [p for p in self.channels if p not in live]:
            closing = asyncio.ensure_future(self.channels.pop(port).close())
            self.closing.add(closing)
            closing.add_done_callback(self.closing.discard)
        if replica.grpc_port not in self.channels:
            target = f"127.0.0.1:{replica.grpc_port}"
            self.channels[replica.grpc_port] = aio.insecure_channel(target, options=_OPTIONS)
        return self.channels[replica.grpc_port]


def _passed_on(metadata: Sequence[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    """The metadata a client or replica set itself (request ids, trace context, ...)."""
    return tuple(
        (key, value)
        for key, value in metadata
        if not key.startswith(":") and not key.startswith(_HOP_KEYS)
    )


async def start_grpc_proxy(endpoint: Endpoint, request_seconds: float) -> aio.Server | None:
    """Listen for gRPC on 127.0.0.1 at the deployment's `grpc_port` (None when it has none:
    recorded before gRPC); OSError, with the port as its filename, when it cannot be bound."""
    port = endpoint.desired.get("grpc_port")
    if not port:
        return None
    server = aio.server(
        handlers=[GrpcProxy(endpoint, request_seconds)],
        options=[*_OPTIONS, ("grpc.so_reuseport", 0)],
    )
    try:
        server.add_insecure_port(f"127.0.0.1:{port}")
    except RuntimeError:
        raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE), port) from None
    await server.start()
    return server
