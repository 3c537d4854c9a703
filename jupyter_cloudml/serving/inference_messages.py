"""The Open Inference Protocol's gRPC messages that the product itself reads and writes.

Declared here field by field from the protocol's `grpc_predict_v2.proto` (KServe's, package
`inference`), in a private descriptor pool: the main environment has protobuf and grpcio but
not KServe's generated modules. Only the fields used here are declared; protobuf keeps any
other field of a message it parses as unknown fields, so nothing is lost when one is passed on.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "inference.GRPCInferenceService"

_F = descriptor_pb2.FieldDescriptorProto
_TYPES = {
    "string": _F.TYPE_STRING,
    "bool": _F.TYPE_BOOL,
    "bytes": _F.TYPE_BYTES,
    "int64": _F.TYPE_INT64,
    "int32": _F.TYPE_INT32,
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
}

#: message -> (field, number, type, repeated); a type not in _TYPES is a message of this file.
_MESSAGES: dict[str, list[tuple[str, int, str, bool]]] = {
    "ServerLiveResponse": [("live", 1, "bool", False)],
    "ServerReadyResponse": [("ready", 1, "bool", False)],
    # ModelReadyRequest, ModelMetadataRequest and ModelInferRequest all begin with the model's
    # name (1) and version (2): what routing reads.
    "ModelRoute": [("name", 1, "string", False), ("version", 2, "string", False)],
    "InferTensorContents": [
        ("bool_contents", 1, "bool", True),
        ("int_contents", 2, "int32", True),
        ("int64_contents", 3, "int64", True),
        ("uint_contents", 4, "uint32", True),
        ("uint64_contents", 5, "uint64", True),
        ("fp32_contents", 6, "float", True),
        ("fp64_contents", 7, "double", True),
        ("bytes_contents", 8, "bytes", True),
    ],
    "InferInputTensor": [
        ("name", 1, "string", False),
        ("datatype", 2, "string", False),
        ("shape", 3, "int64", True),
        ("contents", 5, "InferTensorContents", False),
    ],
    "ModelInferRequest": [
        ("model_name", 1, "string", False),
        ("model_version", 2, "string", False),
        ("id", 3, "string", False),
        ("inputs", 5, "InferInputTensor", True),
    ],
    "InferOutputTensor": [
        ("name", 1, "string", False),
        ("datatype", 2, "string", False),
        ("shape", 3, "int64", True),
        ("contents", 5, "InferTensorContents", False),
    ],
    "ModelInferResponse": [
        ("model_name", 1, "string", False),
        ("model_version", 2, "string", False),
        ("id", 3, "string", False),
        ("outputs", 5, "InferOutputTensor", True),
        ("raw_output_contents", 6, "bytes", True),
    ],
}


def _build() -> dict[str, Any]:
    file = descriptor_pb2.FileDescriptorProto(
        name="jupyter_cloudml/inference_messages.proto", package="inference", syntax="proto3"
    )
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field, number, kind, repeated in fields:
            entry = message.field.add(name=field, number=number, json_name=field)
            entry.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            if kind in _TYPES:
                entry.type = _TYPES[kind]
            else:
                entry.type, entry.type_name = _F.TYPE_MESSAGE, f".inference.{kind}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"inference.{name}"))
        for name in _MESSAGES
    }


_CLASSES = _build()
ServerLiveResponse: Any = _CLASSES["ServerLiveResponse"]
ServerReadyResponse: Any = _CLASSES["ServerReadyResponse"]
ModelRoute: Any = _CLASSES["ModelRoute"]
ModelInferRequest: Any = _CLASSES["ModelInferRequest"]
ModelInferResponse: Any = _CLASSES["ModelInferResponse"]


def method(name: str) -> str:
    """The full gRPC method path of one of the service's calls, e.g. `ModelInfer`."""
    return f"/{SERVICE}/{name}"
