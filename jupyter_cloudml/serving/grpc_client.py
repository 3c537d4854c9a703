"""Calling a deployment's endpoint over gRPC (the Open Inference Protocol's `ModelInfer`)."""

from __future__ import annotations

import time
from typing import Any

import grpc
import numpy as np

from ..exceptions import BackendUnavailable, CloudMLError, InvalidSpec, NotFound
from . import inference_messages as messages
from .client import RETRY_SECONDS, as_instances

#: The protocol's datatype of each NumPy kind and item size, and the contents field it uses.
_DATATYPES = {
    ("f", 8): ("FP64", "fp64_contents"),
    ("f", 4): ("FP32", "fp32_contents"),
    ("i", 8): ("INT64", "int64_contents"),
    ("i", 4): ("INT32", "int_contents"),
    ("u", 8): ("UINT64", "uint64_contents"),
    ("u", 4): ("UINT32", "uint_contents"),
    ("b", 1): ("BOOL", "bool_contents"),
}
#: How each datatype of an answer is read: its contents field, and its NumPy type when raw.
_READERS = {
    "FP64": ("fp64_contents", "<f8"),
    "FP32": ("fp32_contents", "<f4"),
    "FP16": ("", "<f2"),
    "INT64": ("int64_contents", "<i8"),
    "INT32": ("int_contents", "<i4"),
    "INT16": ("int_contents", "<i2"),
    "INT8": ("int_contents", "<i1"),
    "UINT64": ("uint64_contents", "<u8"),
    "UINT32": ("uint_contents", "<u4"),
    "UINT16": ("uint_contents", "<u2"),
    "UINT8": ("uint_contents", "<u1"),
    "BOOL": ("bool_contents", "?"),
    "BYTES": ("bytes_contents", ""),
}


def infer_request(name: str, data: Any, version: str | None = None) -> Any:
    """A `ModelInferRequest` holding the rows of `data` as one tensor `input-0` (an array
    keeps its dtype; lists of floats are FP64, of ints INT64, of strings BYTES)."""
    array = _as_array(data)
    if array.size == 0:
        raise InvalidSpec("give at least one row to predict")
    request = messages.ModelInferRequest(model_name=name, model_version=version or "")
    tensor = request.inputs.add(name="input-0", shape=list(array.shape))
    if array.dtype.kind in "USO":
        tensor.datatype = "BYTES"
        values = [v.encode() if isinstance(v, str) else v for v in array.flat]
        tensor.contents.bytes_contents.extend(values)
        return request
    key = (array.dtype.kind, array.dtype.itemsize)
    if key not in _DATATYPES:
        raise InvalidSpec(f"rows of {array.dtype} cannot be sent over gRPC: send numbers")
    tensor.datatype, field = _DATATYPES[key]
    getattr(tensor.contents, field).extend(array.ravel().tolist())
    return request


def _as_array(data: Any) -> Any:
    values = getattr(data, "values", data)  # a DataFrame's array
    if hasattr(values, "dtype"):
        array = np.asarray(values)
    else:
        rows = as_instances(data)
        try:
            array = np.asarray(rows)
        except ValueError as e:
            raise InvalidSpec(f"the rows are not a tensor (rows of different lengths?): {e}") from e
        if array.dtype.kind == "U":  # NumPy turns [["a", 1]] into strings: refuse it
            originals = np.asarray(rows, dtype=object)
            if not all(isinstance(v, str) for v in originals.flat):
                raise InvalidSpec("rows mix strings with other values: send numbers or strings")
    if array.dtype.kind == "O" and not all(isinstance(v, str | bytes) for v in array.flat):
        raise InvalidSpec("rows mix strings with other values: send numbers or strings")
    return array


def predictions(response: Any) -> list[Any]:
    """The first output tensor of a `ModelInferResponse` as nested lists (one per row)."""
    if not response.outputs:
        raise BackendUnavailable(f"{response.model_name}: the answer holds no output tensor")
    output = response.outputs[0]
    if output.datatype not in _READERS:
        raise BackendUnavailable(f"{response.model_name}: unknown datatype {output.datatype!r}")
    field, dtype = _READERS[output.datatype]
    shape = list(output.shape)
    if response.raw_output_contents:
        raw = response.raw_output_contents[0]
        if output.datatype == "BYTES":  # each element: a 4-byte little-endian length, then it
            values, at = [], 0
            while at < len(raw):
                size = int.from_bytes(raw[at : at + 4], "little")
                values.append(raw[at + 4 : at + 4 + size].decode())
                at += 4 + size
            return np.asarray(values, dtype=object).reshape(shape).tolist()
        return np.frombuffer(raw, dtype=dtype).reshape(shape).tolist()
    values = list(getattr(output.contents, field))
    if output.datatype == "BYTES":
        values = [v.decode() for v in values]
    return (
        np.asarray(values, dtype=object if output.datatype == "BYTES" else None)
        .reshape(shape)
        .tolist()
    )


def grpc_predict(
    address: str,
    name: str,
    data: Any,
    version: str | None = None,
    timeout: float = 60.0,
    retry_seconds: float = RETRY_SECONDS,
) -> list[Any]:
    """`ModelInfer` at `address` (`host:port`); the predictions, as `post_predict` gives them.
    An endpoint that is UNAVAILABLE is asked again for `retry_seconds`."""
    request = infer_request(name, data, version)
    deadline = time.monotonic() + retry_seconds
    pause = 0.1
    with grpc.insecure_channel(address) as channel:
        infer = channel.unary_unary(
            messages.method("ModelInfer"),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=messages.ModelInferResponse.FromString,
        )
        while True:
            try:
                return predictions(infer(request, timeout=timeout))
            except grpc.RpcError as e:
                error = _error(e, name, address)
                if not isinstance(error, BackendUnavailable) or time.monotonic() + pause > deadline:
                    raise error from None
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def _error(e: grpc.RpcError, name: str, address: str) -> CloudMLError:
    code = e.code()
    message = f"{name}: {e.details()}"
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidSpec(message)
    if code is grpc.StatusCode.NOT_FOUND:
        return NotFound(message)
    if code is grpc.StatusCode.UNAVAILABLE:
        return BackendUnavailable(f"the gRPC endpoint of {name} at {address}: {e.details()}")
    return CloudMLError(f"{message} (gRPC {code.name})")
