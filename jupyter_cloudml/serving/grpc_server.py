"""A replica's Open Inference Protocol over gRPC: KServe's own servicer and error mapping, on
one host instead of KServe's hard-coded ``[::]``, answering for this replica's version only.

Runs under the serving interpreter; imported by `replica.serve` once kserve is known to import.
"""

from __future__ import annotations

from concurrent import futures
from typing import Any

from grpc import aio
from kserve.errors import InvalidInput, ModelNotFound
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import (
    add_GRPCInferenceServiceServicer_to_server,
)
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer

#: The largest message a replica takes or sends (gRPC's default is 4 MiB).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


#: The contents field that carries each datatype's values (FP16 travels only as raw bytes).
CONTENTS_FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
RAW_ONLY = ("FP16",)


def check_tensors(request: Any) -> None:
    """`InvalidInput` naming the tensor whose datatype, contents and shape disagree (KServe's
    own decoding fails later with reasons such as "cannot reshape array of size 0")."""
    raw = bool(request.raw_input_contents)
    for tensor in request.inputs:
        name, datatype = tensor.name, tensor.datatype
        if datatype not in CONTENTS_FIELDS and datatype not in RAW_ONLY:
            known = ", ".join([*CONTENTS_FIELDS, *RAW_ONLY])
            raise InvalidInput(f"input {name!r}: unknown datatype {datatype!r} (one of {known})")
        if any(size < 0 for size in tensor.shape):
            raise InvalidInput(f"input {name!r}: shape {list(tensor.shape)} has a negative size")
        if raw:
            continue
        if datatype in RAW_ONLY:
            raise InvalidInput(f"input {name!r}: {datatype} is sent in raw_input_contents only")
        field = CONTENTS_FIELDS[datatype]
        used = [f.name for f, _ in tensor.contents.ListFields()]
        others = [f for f in used if f != field]
        if others:
            raise InvalidInput(
                f"input {name!r} is {datatype}, whose values go in contents.{field}, "
                f"but holds contents.{others[0]}"
            )
        count, expected = len(getattr(tensor.contents, field)), 1
        for size in tensor.shape:
            expected *= size
        if count != expected:
            raise InvalidInput(
                f"input {name!r} of shape {list(tensor.shape)} needs {expected} values, got {count}"
            )


class ReplicaServicer(InferenceServicer):
    """KServe's servicer, with the version checked (KServe ignores it) and reported."""

    def __init__(self, *args: Any, version: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.version = version

    def _check_version(self, name: str, version: str) -> None:
        if version and version != self.version:
            raise ModelNotFound(f"{name} (version {version}; this replica serves {self.version})")

    async def ModelReady(self, request: Any, context: Any) -> Any:
        self._check_version(request.name, request.version)
        return await super().ModelReady(request, context)

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        self._check_version(request.name, request.version)
        metadata = await self._data_plane.model_metadata(model_name=request.name)
        return pb.ModelMetadataResponse(
            name=metadata["name"],
            versions=metadata.get("versions", []),
            platform=metadata["platform"],
            inputs=metadata["inputs"],
            outputs=metadata["outputs"],
        )

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        self._check_version(request.model_name, request.model_version)
        check_tensors(request)
        try:
            response = await super().ModelInfer(request, context)
        except (ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, InvalidInput):
                raise
            # A tensor whose datatype, shape and contents disagree fails in KServe's decoding.
            raise InvalidInput(f"invalid tensor: {' '.join(str(exc).split())}") from exc
        if not response.model_version:
            response.model_version = self.version
        return response


class ReplicaGRPCServer(GRPCServer):
    """KServe's GRPCServer bound to `host` only, serving `ReplicaServicer`."""

    def __init__(self, *args: Any, host: str, version: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.host, self.version = host, version

    async def start(self, max_workers: int) -> None:
        servicer = ReplicaServicer(
            self._data_plane, self._model_repository_extension, version=self.version
        )
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(ExceptionToStatusInterceptor(),),
            options=[
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        self._server.add_insecure_port(f"{self.host}:{self._port}")
        await self._server.start()
        await self._server.wait_for_termination()
