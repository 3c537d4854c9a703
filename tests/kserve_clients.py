"""KServe's own clients against an endpoint, run under the serving interpreter (where kserve is):

    python kserve_clients.py grpc HOST:PORT NAME ROWS_JSON N [VERSION]
    python kserve_clients.py rest URL NAME ROWS_JSON
    python kserve_clients.py grpc-load HOST:PORT NAME ROWS_JSON SECONDS

Each prints one JSON object of what it saw; the tests assert on it.
"""

from __future__ import annotations

import asyncio
import collections
import json
import sys
import time

import grpc
import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub


def tensor(rows: list, binary: bool = False) -> InferInput:
    array = np.asarray(rows, dtype=np.float64)
    infer_input = InferInput("input-0", list(array.shape), "FP64")
    infer_input.set_data_from_numpy(array, binary_data=binary)
    return infer_input


def status(error: grpc.RpcError) -> list:
    return [error.code().name, error.details()]


async def grpc_checks(address: str, name: str, rows: list, n: int, pin: str) -> dict:
    """Health, `n` unversioned calls (the versions that answered), one pinned to `pin`,
    refusals of bad tensors, names and versions, metadata both ways."""
    client = InferenceGRPCClient(address, timeout=30)
    seen: dict = {
        "server_live": await client.is_server_live(),
        "server_ready": await client.is_server_ready(),
        "model_ready": await client.is_model_ready(name),
    }
    versions: collections.Counter = collections.Counter()
    for _ in range(n):
        answer = await client.infer(InferRequest(model_name=name, infer_inputs=[tensor(rows)]))
        versions[answer.model_version] += 1
        seen["predictions"] = answer.outputs[0].as_numpy().tolist()
    seen["versions"] = dict(versions)
    pinned = await client.infer(
        InferRequest(model_name=name, infer_inputs=[tensor(rows)], model_version=pin)
    )
    seen["pinned_version"] = pinned.model_version
    await client.close()

    # KServe's generated stub, for what InferenceGRPCClient does not expose or refuses to send.
    channel = grpc.insecure_channel(address)
    stub = GRPCInferenceServiceStub(channel)
    width = len(rows[0])

    def infer(datatype: str, contents: dict, shape=None, **fields) -> list:
        request = pb.ModelInferRequest(**{"model_name": name, **fields})
        request.inputs.add(
            name="input-0", datatype=datatype, shape=shape or [len(rows), width], contents=contents
        )
        try:
            stub.ModelInfer(request, timeout=30)
        except grpc.RpcError as e:
            return status(e)
        return ["OK", ""]

    flat = [float(x) for row in rows for x in row]
    seen["wrong_datatype"] = infer("FOO", {"fp64_contents": flat})
    seen["strings_for_numbers"] = infer("BYTES", {"bytes_contents": [b"a"] * len(flat)})
    seen["wrong_shape"] = infer("FP64", {"fp64_contents": flat[:-1]})
    seen["contents_of_other_type"] = infer("FP32", {"int64_contents": [1] * len(flat)})
    seen["unknown_version"] = infer("FP64", {"fp64_contents": flat}, model_version="v9")
    seen["unknown_model"] = infer("FP64", {"fp64_contents": flat}, model_name="nope")
    request = pb.ModelInferRequest(model_name=name)
    request.inputs.add(name="input-0", datatype="FP64", shape=[len(rows), width])
    request.inputs[0].contents.fp64_contents.extend(flat)
    _, call = stub.ModelInfer.with_call(
        request, metadata=[("x-request-id", "req-42"), ("traceparent", "00-ab-cd-01")], timeout=30
    )
    seen["initial_metadata"] = dict(call.initial_metadata())
    metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name=name, version=pin), timeout=30)
    seen["metadata"] = {"name": metadata.name, "versions": list(metadata.versions)}
    channel.close()
    return seen


async def rest_checks(url: str, name: str, rows: list) -> dict:
    seen: dict = {}
    v1 = InferenceRESTClient(RESTConfig(protocol="v1", timeout=30))
    seen["v1_ready"] = await v1.is_model_ready(url, name)
    seen["v1"] = (await v1.infer(url, {"instances": rows}, model_name=name))["predictions"]
    await v1.close()
    v2 = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
    seen["v2_ready"] = await v2.is_model_ready(url, name)
    answer = await v2.infer(url, InferRequest(model_name=name, infer_inputs=[tensor(rows)]), name)
    seen["v2"] = answer.outputs[0].as_numpy().tolist()
    headers: dict = {}
    request = InferRequest(model_name=name, infer_inputs=[tensor(rows, binary=True)])
    sent = {
        "x-request-id": "req-7",
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    answer = await v2.infer(url, request, name, headers=sent, response_headers=headers)
    seen["v2_binary"] = answer.outputs[0].as_numpy().tolist()
    seen["v2_binary_headers"] = {k.lower(): v for k, v in headers.items()}
    # Binary both ways: the answer's JSON length comes back in Inference-Header-Content-Length.
    headers = {}
    request = InferRequest(
        model_name=name,
        infer_inputs=[tensor(rows, binary=True)],
        parameters={"binary_data_output": True},
    )
    answer = await v2.infer(url, request, name, response_headers=headers)
    seen["v2_binary_out"] = answer.outputs[0].as_numpy().tolist()
    seen["v2_binary_out_headers"] = {k.lower(): v for k, v in headers.items()}
    await v2.close()
    return seen


async def grpc_load(address: str, name: str, rows: list, seconds: float) -> dict:
    client = InferenceGRPCClient(address, timeout=60)
    ok, failures, longest = 0, [], 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            await client.infer(InferRequest(model_name=name, infer_inputs=[tensor(rows)]))
            ok += 1
        except grpc.RpcError as e:
            failures.append(status(e))
        longest = max(longest, time.monotonic() - started)
    await client.close()
    return {"ok": ok, "failures": failures, "longest": longest}


def main() -> None:
    mode, target, name, rows = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    if mode == "grpc":
        pin = sys.argv[6] if len(sys.argv) > 6 else "v2"
        seen = asyncio.run(grpc_checks(target, name, rows, int(sys.argv[5]), pin))
    elif mode == "rest":
        seen = asyncio.run(rest_checks(target, name, rows))
    else:
        seen = asyncio.run(grpc_load(target, name, rows, float(sys.argv[5])))
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
