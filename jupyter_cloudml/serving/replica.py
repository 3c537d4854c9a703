"""One serving replica: a kserve model server for one model version on one host and port.

    python -m jupyter_cloudml.serving.replica --name NAME --version V --framework FRAMEWORK
        --model PATH [--predictor module:Class] --port P [--grpc-port G] [--host 127.0.0.1]

Runs under the serving interpreter (`env.py`). Answers KServe v1 (`/v1/models/NAME:predict`)
and the Open Inference Protocol (`/v2/models/NAME[/versions/V]/infer`, health and metadata),
and with `--grpc-port` the same protocol over gRPC (`grpc_server.py`).
The model is loaded before the server listens; if it cannot be, the replica prints one line
`cloudml-serving: cannot load model: REASON` to stderr and exits with LOAD_ERROR_EXIT (3).

kserve is imported lazily: it is not installed in the main environment (which may import this
module for its constants and `replica_command`), and it parses `sys.argv` when imported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..models import ModelFramework
from .loaders import LoadedModel, ModelLoadError, load_model

# Exit codes, each with one stderr line: 3 and 5 are permanent, 4 may pass with another port.
LOAD_ERROR_EXIT = 3
LISTEN_ERROR_EXIT = 4
NO_KSERVE_EXIT = 5
LOAD_ERROR_PREFIX = "cloudml-serving: cannot load model: "
LISTEN_ERROR_PREFIX = "cloudml-serving: cannot listen on "
NO_KSERVE_PREFIX = "cloudml-serving: not a serving interpreter: "
# The folder to put on PYTHONPATH so the serving interpreter finds this package.
PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


def replica_command(
    python: str,
    *,
    name: str,
    version: str,
    framework: str,
    model: str,
    port: int,
    host: str = "127.0.0.1",
    predictor: str | None = None,
    grpc_port: int | None = None,
    grpc_host: str | None = None,
) -> list[str]:
    """The argv that starts a replica under `python` (the serving interpreter); gRPC listens
    on `grpc_host`, by default `host`."""
    argv = [python, "-m", "jupyter_cloudml.serving.replica", "--name", name]
    argv += ["--version", version, "--framework", framework, "--model", model]
    argv += ["--port", str(port), "--host", host]
    if grpc_port is not None:
        argv += ["--grpc-port", str(grpc_port)]
    if grpc_host is not None:
        argv += ["--grpc-host", grpc_host]
    if predictor:
        argv += ["--predictor", predictor]
    return argv


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The replica's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m jupyter_cloudml.serving.replica",
        description="Serve one model version over KServe v1 and the Open Inference Protocol.",
    )
    parser.add_argument("--name", required=True, help="model name in the URL paths")
    parser.add_argument("--version", default="1", help="model version reported in v2 answers")
    choices = [f.value for f in ModelFramework]
    parser.add_argument("--framework", required=True, choices=choices)
    parser.add_argument("--model", required=True, help="model file, or a folder holding one")
    parser.add_argument("--predictor", help="module:Class for --framework custom")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--grpc-port", type=int, help="also serve the protocol over gRPC here")
    parser.add_argument("--host", default="127.0.0.1", help="the only address listened on")
    parser.add_argument("--grpc-host", help="the address gRPC listens on (default: --host)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Load the model, then serve it until SIGTERM or SIGINT."""
    args = parse_args(argv)
    sys.argv = sys.argv[:1]  # kserve parses sys.argv at import: it must not see ours
    try:
        with _stderr_held():
            loaded = load_model(args.framework, args.model, args.predictor)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, ModelLoadError) else f"{type(exc).__name__}: {exc}"
        print(LOAD_ERROR_PREFIX + _one_line(reason), file=sys.stderr)
        return LOAD_ERROR_EXIT
    grpc_host = args.grpc_host or args.host
    for host, port in ((args.host, args.port), (grpc_host, args.grpc_port)):
        try:
            if port is not None:
                _check_can_listen(host, port)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            print(f"{LISTEN_ERROR_PREFIX}{host}:{port}: {reason}", file=sys.stderr)
            return LISTEN_ERROR_EXIT
    try:
        import kserve  # noqa: F401
    except ImportError as exc:
        print(f"{NO_KSERVE_PREFIX}{sys.executable} cannot import kserve ({exc})", file=sys.stderr)
        return NO_KSERVE_EXIT
    grpc = (grpc_host, args.grpc_port) if args.grpc_port is not None else None
    serve(args.name, args.version, loaded, host=args.host, port=args.port, grpc=grpc)
    return 0


def _one_line(text: str) -> str:
    return " ".join(text.split())


@contextlib.contextmanager
def _stderr_held() -> Iterator[None]:
    """Hold what loading writes to stderr (warnings, native logs): on failure the error line
    must be stderr's only line, so held output goes to stderr on success, to stdout otherwise."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        ok = False
        try:
            yield
            ok = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read()
            if text:
                sys.stdout.flush()
                os.write(2 if ok else 1, text)


def _check_can_listen(host: str, port: int) -> None:
    """Fail early with a clear reason when host:port cannot be bound (in use, no such address)."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        sock.bind(addr)


def serve(
    name: str,
    version: str,
    loaded: LoadedModel,
    *,
    host: str,
    port: int,
    grpc: tuple[str, int] | None = None,
) -> None:
    """Serve `loaded` as model `name` version `version` on host:port (and over gRPC on
    `grpc`, a host and port) until stopped."""
    import kserve
    from fastapi.exceptions import RequestValidationError
    from kserve.model_server import app

    app.add_exception_handler(RequestValidationError, _request_validation_handler)
    app.add_middleware(_VersionedPaths, name=name, version=version)
    server = _replica_server_class()(
        host=host,
        grpc_at=grpc,
        version=version,
        http_port=port,
        enable_grpc=False,  # kserve's own binds [::]: ReplicaServer starts one on `host`
        workers=1,
        enable_latency_logging=False,
    )
    model: kserve.Model = _replica_model_class()(name, version, loaded)
    server.start([model])


async def _request_validation_handler(_request: Any, exc: Any) -> Any:
    # FastAPI answers a v2 body that is not an inference request with 422; the protocol says 400.
    from fastapi.responses import JSONResponse

    reasons = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "InferenceRequest")]
        if loc[:1] == ["bytes"]:
            continue  # the raw-bytes alternative of kserve's body type: not a reason for users
        reasons.append(f"{'.'.join(loc) or 'body'}: {err.get('msg')}")
    error = f"invalid inference request: {'; '.join(reasons) or 'not a JSON inference request'}"
    return JSONResponse(status_code=400, content={"error": error})


class _VersionedPaths:
    """ASGI middleware: `/v2/models/N/versions/V/...` is served as `/v2/models/N/...` when V is
    this replica's version (kserve has no versioned routes); any other version is a 404."""

    _PATH = re.compile(r"/v2/models/([^/]+)/versions/([^/]+)(/.*)?")

    def __init__(self, app: Any, name: str, version: str) -> None:
        self.app, self.name, self.version = app, name, version

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        match = self._PATH.fullmatch(scope.get("path", "")) if scope["type"] == "http" else None
        if match:
            model, version, rest = match.group(1), match.group(2), match.group(3) or ""
            if version != self.version:
                from fastapi.responses import JSONResponse

                error = f"Model with name {model} and version {version} does not exist."
                await JSONResponse(status_code=404, content={"error": error})(scope, receive, send)
                return
            path = f"/v2/models/{model}{rest}"
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


def _replica_server_class() -> Any:
    import kserve
    from kserve.protocol.dataplane import DataPlane

    class ReplicaDataPlane(DataPlane):
        """Model metadata with this replica's version and platform (kserve leaves them out)."""

        async def model_metadata(self, model_name: str) -> dict[str, Any]:
            metadata: dict[str, Any] = await super().model_metadata(model_name)
            model = self.get_model_from_registry(model_name)
            metadata["versions"] = [model.version]
            metadata["platform"] = model.loaded.platform
            return metadata

    class ReplicaServer(kserve.ModelServer):
        """kserve's ModelServer listening on one host instead of its hard-coded 0.0.0.0."""

        def __init__(
            self, host: str, grpc_at: tuple[str, int] | None, version: str, **kwargs: Any
        ) -> None:
            super().__init__(**kwargs)
            self.host, self.grpc_at, self.version = host, grpc_at, version
            self.dataplane = ReplicaDataPlane(model_registry=self.registered_models)

        def setup_event_loop(self) -> None:
            # start() builds its RESTServer (uvicorn.Config(host="0.0.0.0")) right before this
            # call and binds after it: the only place to set the host without copying start().
            rest = getattr(self, "_rest_server", None)
            if rest is None or not hasattr(rest, "config"):
                raise RuntimeError("this kserve version does not expose its uvicorn config")
            rest.config.host = self.host
            if self.grpc_at is not None:
                from .grpc_server import ReplicaGRPCServer

                grpc_host, grpc_port = self.grpc_at
                self._grpc_server = ReplicaGRPCServer(
                    grpc_port,
                    self.dataplane,
                    self.model_repository_extension,
                    kwargs={},
                    grace_period=self.grace_period,
                    host=grpc_host,
                    version=self.version,
                )
                self.servers.append(self._grpc_server.start(self.max_threads))
            super().setup_event_loop()

    return ReplicaServer


def _replica_model_class() -> Any:
    import kserve
    import numpy as np
    from kserve.errors import InferenceError, InvalidInput
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
    from kserve.utils.numpy_codec import from_np_dtype
    from kserve.utils.utils import generate_uuid

    class ReplicaModel(kserve.Model):
        """One loaded model answering v1 (`{"instances"}`) and v2 (`InferRequest`) payloads.

        Predictions run one at a time on a worker thread, so health checks answer during a
        long prediction. ValueError, TypeError and KeyError from the model are bad input (400).
        """

        def __init__(self, name: str, version: str, loaded: LoadedModel) -> None:
            super().__init__(name)
            self.version = version
            self.loaded = loaded
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
            self.ready = True  # loaded before the server starts

        def load(self) -> bool:
            self.ready = True
            return True

        def get_input_types(self) -> list[dict[str, Any]]:
            return self.loaded.inputs

        def get_output_types(self) -> list[dict[str, Any]]:
            return self.loaded.outputs

        async def predict(
            self,
            payload: Any,
            headers: dict[str, str] | None = None,
            response_headers: dict[str, str] | None = None,
        ) -> Any:
            if isinstance(payload, InferRequest):
                predictions = await self._run(self._v2_batch(payload))
                return self._v2_response(payload, predictions)
            return {"predictions": await self._run(self._v1_batch(payload))}

        async def _run(self, batch: Any) -> list[Any]:
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._executor, self.loaded.predict, batch)
            except (ValueError, TypeError, KeyError) as exc:
                raise InvalidInput(_one_line(f"{exc}") or type(exc).__name__) from exc

        @staticmethod
        def _v1_batch(payload: Any) -> list[Any]:
            if isinstance(payload, bytes | str):
                raise InvalidInput("send a JSON body with Content-Type: application/json")
            if not isinstance(payload, dict) or "instances" not in payload:
                raise InvalidInput('expected a JSON object {"instances": [...]}')
            instances = payload["instances"]
            if not isinstance(instances, list) or not instances:
                raise InvalidInput('"instances" must be a non-empty list')
            return instances

        def _v2_batch(self, request: Any) -> Any:
            parameters = request.parameters or {}
            try:
                if parameters.get("content_type") == "pd":
                    frame = request.as_dataframe()
                    return frame.to_dict("records") if self.loaded.wants_list else frame
                if len(request.inputs) != 1:
                    raise InvalidInput(f"expected one input tensor, got {len(request.inputs)}")
                tensor = request.inputs[0]
                if tensor.datatype == "BYTES" and all(isinstance(v, str) for v in tensor.data):
                    return list(tensor.data)
                array = tensor.as_numpy()
            except (ValueError, TypeError) as exc:
                raise InvalidInput(_one_line(f"{exc}")) from exc
            if array.size == 0:
                raise InvalidInput(f"input {tensor.name!r} is empty")
            return array.tolist() if self.loaded.wants_list else array

        def _v2_response(self, request: Any, predictions: list[Any]) -> Any:
            try:
                array = np.asarray(predictions)
            except ValueError as exc:
                raise InferenceError(f"predictions are not a tensor: {exc}") from exc
            if array.dtype.kind in "USO":
                if not all(isinstance(v, str) for v in array.flat):
                    raise InferenceError("predictions are not a tensor of numbers or strings")
                array = array.astype(object)
            names = [o["name"] for o in self.loaded.outputs]
            output = InferOutput(
                name=names[0] if names else "output-0",
                shape=list(array.shape),
                datatype=from_np_dtype(array.dtype),
            )
            output.set_data_from_numpy(array, binary_data=False)
            return InferResponse(
                response_id=request.id or generate_uuid(),
                model_name=self.name,
                model_version=self.version,
                infer_outputs=[output],
                # the binary tensor extension: raw bytes when the request asks for them
                use_binary_outputs=request.use_binary_outputs,
                requested_outputs=request.request_outputs,
            )

    return ReplicaModel


if __name__ == "__main__":
    sys.exit(main())
