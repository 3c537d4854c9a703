"""The gRPC client's messages: rows into a `ModelInferRequest` and answers back into rows, and
the declared messages checked against KServe's generated ones (under the serving interpreter)."""

from __future__ import annotations

import base64
import json
import subprocess

import numpy as np
import pytest

from jupyter_cloudml.exceptions import InvalidSpec
from jupyter_cloudml.serving import inference_messages as messages
from jupyter_cloudml.serving.grpc_client import infer_request, predictions


@pytest.mark.parametrize(
    ("rows", "datatype", "field", "values"),
    [
        ([[1.5, 2.0]], "FP64", "fp64_contents", [1.5, 2.0]),
        (np.array([[1, 2]], dtype=np.float32), "FP32", "fp32_contents", [1.0, 2.0]),
        ([[1, 2], [3, 4]], "INT64", "int64_contents", [1, 2, 3, 4]),
        (np.array([[1]], dtype=np.int32), "INT32", "int_contents", [1]),
        ([[True, False]], "BOOL", "bool_contents", [True, False]),
        ([["a", "é"]], "BYTES", "bytes_contents", [b"a", "é".encode()]),
    ],
)
def test_rows_become_one_typed_tensor(rows, datatype, field, values) -> None:
    request = infer_request("iris", rows, version="v2")
    assert (request.model_name, request.model_version) == ("iris", "v2")
    (tensor,) = request.inputs
    assert (tensor.name, tensor.datatype) == ("input-0", datatype)
    assert list(tensor.shape) == list(np.asarray(rows).shape)
    assert list(getattr(tensor.contents, field)) == values


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "at least one row"),
        ([[1.0, 2.0], [3.0]], "not a tensor"),
        ([["a", 1]], "mix strings"),
        (np.array([[1 + 2j]]), "complex128 cannot be sent"),
        ("1,2", "give instances as a list"),
    ],
)
def test_rows_that_are_no_tensor_are_refused(rows, message) -> None:
    with pytest.raises(InvalidSpec, match=message):
        infer_request("iris", rows)


def test_answers_in_contents_and_raw_bytes_become_rows() -> None:
    answer = messages.ModelInferResponse(model_name="iris")
    out = answer.outputs.add(name="output-0", datatype="INT64", shape=[2])
    out.contents.int64_contents.extend([0, 2])
    assert predictions(answer) == [0, 2]
    raw = messages.ModelInferResponse(model_name="iris")
    raw.outputs.add(name="p", datatype="FP32", shape=[2, 2])
    raw.raw_output_contents.append(np.array([[1, 2], [3, 4]], dtype="<f4").tobytes())
    assert predictions(raw) == [[1.0, 2.0], [3.0, 4.0]]
    strings = messages.ModelInferResponse(model_name="iris")
    strings.outputs.add(name="p", datatype="BYTES", shape=[2])
    strings.raw_output_contents.append(b"\x03\x00\x00\x00cat\x02\x00\x00\x00ox")
    assert predictions(strings) == ["cat", "ox"]


def test_the_declared_messages_are_kserves_on_the_wire(serving_python) -> None:
    """Bytes we encode decode as KServe's ModelInferRequest, and KServe's answers as ours."""
    request = infer_request("iris", [[1.5, 2.0], [3.0, 4.0]], version="v3")
    request.id = "r-1"
    script = """
import base64, json, sys
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from google.protobuf.json_format import MessageToDict
request = pb.ModelInferRequest.FromString(base64.b64decode(sys.argv[1]))
answer = pb.ModelInferResponse(model_name="iris", model_version="v3", id="r-1")
out = answer.outputs.add(name="output-0", datatype="FP64", shape=[2])
out.contents.fp64_contents.extend([0.25, 0.75])
print(json.dumps({"request": MessageToDict(request),
                  "answer": base64.b64encode(answer.SerializeToString()).decode()}))
"""
    encoded = base64.b64encode(request.SerializeToString()).decode()
    proc = subprocess.run(
        [serving_python, "-c", script, encoded], capture_output=True, text=True, check=True
    )
    seen = json.loads(proc.stdout)
    assert seen["request"] == {
        "modelName": "iris",
        "modelVersion": "v3",
        "id": "r-1",
        "inputs": [
            {
                "name": "input-0",
                "datatype": "FP64",
                "shape": ["2", "2"],
                "contents": {"fp64Contents": [1.5, 2.0, 3.0, 4.0]},
            }
        ],
    }
    answer = messages.ModelInferResponse.FromString(base64.b64decode(seen["answer"]))
    assert (answer.model_name, answer.model_version, answer.id) == ("iris", "v3", "r-1")
    assert predictions(answer) == [0.25, 0.75]
    route = messages.ModelRoute.FromString(request.SerializeToString())
    assert (route.name, route.version) == ("iris", "v3")
