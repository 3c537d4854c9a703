"""Model loaders, one per framework: each turns a model file into a `predict(batch) -> list`.

Loaders import their framework lazily, so a replica pays only for the one it serves. They raise
ModelLoadError (a one-line reason) when the model cannot be loaded, and their predict raises
BadInput (a ValueError) when a batch does not fit the model.

`FRAMEWORKS`, at the end, is the one table of what each `ModelFramework` needs to be served:
its loader, the model files it looks for in a folder and KServe's name for it. Importing this
module fails if a framework has no entry.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models import ModelFramework

_PICKLE_EXTENSIONS = (".joblib", ".pkl", ".pickle")
_ONNX_TYPES = {
    "tensor(float)": ("float32", "FP32"),
    "tensor(double)": ("float64", "FP64"),
    "tensor(float16)": ("float16", "FP16"),
    "tensor(int64)": ("int64", "INT64"),
    "tensor(int32)": ("int32", "INT32"),
    "tensor(int8)": ("int8", "INT8"),
    "tensor(uint8)": ("uint8", "UINT8"),
    "tensor(bool)": ("bool", "BOOL"),
    "tensor(string)": ("object", "BYTES"),
}

Predict = Callable[[Any], list[Any]]


class ModelLoadError(Exception):
    """The model cannot be loaded; str() is a one-line reason for the user."""


class BadInput(ValueError):
    """A batch that does not fit the model (wrong width, rank or type)."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model: its predict function and what the v2 metadata endpoint reports."""

    predict: Predict
    source: str
    platform: str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    # Whether predict takes a JSON-native list (custom code) rather than an array.
    wants_list: bool = False


def load_model(framework: str, model_path: str, predictor: str | None = None) -> LoadedModel:
    """Load `model_path` (a file or a folder) with the loader for `framework`."""
    try:
        support = FRAMEWORKS[ModelFramework(framework)]
    except ValueError:
        names = ", ".join(f.value for f in ModelFramework)
        raise ModelLoadError(f"unknown framework {framework!r} (one of {names})") from None
    if support.load is None:
        if not predictor:
            raise ModelLoadError("--framework custom needs --predictor module:Class")
        return load_custom(model_path, predictor)
    return support.load(find_model_file(model_path, support.suffixes))


def find_model_file(model_path: str, extensions: tuple[str, ...]) -> Path:
    """`model_path` itself if it is a file, else the one file in the folder with an extension."""
    path = Path(model_path)
    if path.is_file():
        return path
    if not path.exists():
        raise ModelLoadError(f"no such file or folder: {model_path}")
    if not path.is_dir():
        raise ModelLoadError(f"not a file or folder: {model_path}")
    found = sorted(
        p
        for p in path.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions
    )
    patterns = ", ".join(f"*{ext}" for ext in extensions)
    if not found:
        raise ModelLoadError(f"no model file ({patterns}) in {model_path}")
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ModelLoadError(f"several model files in {model_path}: {names}; pass one file")
    return found[0]


def _import_framework(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelLoadError(
            f"{package} is not installed where the serving interpreter can import it ({exc})"
        ) from exc


def _unpickle(path: Path) -> Any:
    # Models saved with cloudpickle load with plain pickle as long as cloudpickle is importable.
    try:
        import joblib
    except ImportError:
        joblib = None
    errors: list[str] = []
    if joblib is not None:
        try:
            return joblib.load(path)
        except Exception as exc:
            errors.append(_describe(exc))
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception as exc:
        errors.append(_describe(exc))
    missing = [e for e in errors if "No module named" in e]
    if missing:  # the likeliest fix: the package the model needs is not installed
        reason = f"{missing[0]} (install that package in the main environment)"
    else:
        reason = errors[-1]  # plain pickle's error reads better than joblib's
    raise ModelLoadError(f"cannot unpickle {path.name}: {reason}")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _as_matrix(batch: Any, dtype: Any, n_features: int | None) -> Any:
    """A 2-D numeric array from a batch of rows, or BadInput saying why not."""
    import numpy as np

    try:
        x = np.asarray(batch, dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"instances must be rows of numbers: {_describe(exc)}") from exc
    if x.ndim != 2:
        raise BadInput(f"instances must be a list of rows (2-D), got shape {list(x.shape)}")
    if n_features is not None and x.shape[1] != n_features:
        raise BadInput(f"each instance needs {n_features} features, got {x.shape[1]}")
    return x


def _tolist(result: Any) -> list[Any]:
    """Predictions as JSON-native values (numpy arrays and scalars become lists and numbers)."""
    if hasattr(result, "tolist"):
        result = result.tolist()
    if isinstance(result, tuple):
        result = list(result)
    if not isinstance(result, list):
        raise RuntimeError(f"predict returned a {type(result).__name__}, not a list or an array")
    return result


def _datatype(dtype: Any) -> str:
    """The Open Inference Protocol datatype of a numpy dtype (BYTES for strings and objects)."""
    kinds = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}
    return kinds.get(getattr(dtype, "kind", "O"), "BYTES")


def _n_features(model: Any) -> int | None:
    n: Any = getattr(model, "n_features_in_", None)
    return int(n) if hasattr(n, "__index__") else None


def _tensor(name: str, datatype: str, shape: list[int]) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape}


def load_sklearn(path: Path) -> LoadedModel:
    """A pickled scikit-learn estimator or pipeline (joblib, pickle or cloudpickle)."""
    model = _unpickle(path)
    if not callable(getattr(model, "predict", None)):
        raise ModelLoadError(f"{path.name} holds a {type(model).__name__}, which has no predict()")
    n_features = _n_features(model)

    def predict(batch: Any) -> list[Any]:
        # The estimator validates width and types itself (its ValueErrors become HTTP 400).
        x = batch
        if isinstance(batch, list) and batch and isinstance(batch[0], dict):
            import pandas as pd

            x = pd.DataFrame(batch)  # rows as {column: value}, for column transformers
        return _tolist(model.predict(x))

    inputs = [_tensor("input-0", "FP64", [-1, n_features])] if n_features else []
    classes = getattr(model, "classes_", None)
    out_type = _datatype(classes.dtype) if classes is not None else "FP64"
    return LoadedModel(predict, str(path), "sklearn", inputs, [_tensor("output-0", out_type, [-1])])


def load_xgboost(path: Path) -> LoadedModel:
    """An xgboost Booster (json, ubj, bst, model) or a pickled XGBModel (sklearn API)."""
    xgb = _import_framework("xgboost", "xgboost")
    if path.suffix.lower() in _PICKLE_EXTENSIONS:
        model = _unpickle(path)
        if not isinstance(model, xgb.XGBModel | xgb.Booster):
            raise ModelLoadError(
                f"{path.name} holds a {type(model).__name__}, not an xgboost model"
            )
    else:
        model = xgb.Booster()
        try:
            model.load_model(str(path))
        except Exception as exc:
            reason = f"cannot load {path.name} as an xgboost model: {_describe(exc)}"
            raise ModelLoadError(reason) from exc
    booster = model if isinstance(model, xgb.Booster) else model.get_booster()
    n_features = booster.num_features() or None

    def predict(batch: Any) -> list[Any]:
        x = _as_matrix(batch, "float32", n_features)
        if isinstance(model, xgb.Booster):
            return _tolist(model.predict(xgb.DMatrix(x)))
        return _tolist(model.predict(x))

    return LoadedModel(
        predict,
        str(path),
        "xgboost",
        [_tensor("input-0", "FP32", [-1, n_features or -1])],
        [_tensor("output-0", "FP32", [-1])],
    )


def load_onnx(path: Path) -> LoadedModel:
    """An ONNX model through onnxruntime: the first input in, the first output out."""
    ort = _import_framework("onnxruntime", "onnxruntime")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        reason = f"cannot load {path.name} with onnxruntime: {_describe(exc)}"
        raise ModelLoadError(reason) from exc
    first_in, first_out = session.get_inputs()[0], session.get_outputs()[0]
    dtype, datatype = _ONNX_TYPES.get(first_in.type, ("float32", "FP32"))
    shape = [d if isinstance(d, int) else -1 for d in first_in.shape]

    def predict(batch: Any) -> list[Any]:
        import numpy as np

        try:
            x = np.asarray(batch, dtype=dtype)
        except (ValueError, TypeError) as exc:
            raise BadInput(f"instances must be {datatype} values: {_describe(exc)}") from exc
        if x.ndim != len(shape) or any(
            want not in (-1, got) for want, got in zip(shape, x.shape, strict=False)
        ):
            raise BadInput(f"input {first_in.name!r} has shape {shape}, got {list(x.shape)}")
        try:
            result = session.run([first_out.name], {first_in.name: x})[0]
        except Exception as exc:
            if type(exc).__name__ in ("InvalidArgument", "Fail"):
                raise BadInput(_describe(exc)) from exc
            raise
        return _tolist(result)

    outputs = [
        _tensor(
            o.name,
            _ONNX_TYPES.get(o.type, ("", ""))[1],
            [d if isinstance(d, int) else -1 for d in (o.shape or [])],
        )
        for o in session.get_outputs()[:1]
    ]
    return LoadedModel(
        predict, str(path), "onnxruntime_onnx", [_tensor(first_in.name, datatype, shape)], outputs
    )


def load_pytorch(path: Path) -> LoadedModel:
    """TorchScript first, else a whole pickled `torch.nn.Module`; eval mode, float32, no grad."""
    torch = _import_framework("torch", "torch")
    try:
        with warnings.catch_warnings():  # torch deprecates TorchScript; the user chose it
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.load(str(path), map_location="cpu")
        platform = "pytorch_torchscript"
    except Exception as script_exc:
        try:
            model = torch.load(str(path), map_location="cpu", weights_only=False)
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load {path.name} as TorchScript ({_describe(script_exc)}) "
                f"nor with torch.load ({_describe(exc)})"
            ) from exc
        platform = "pytorch"
    if not isinstance(model, torch.nn.Module | torch.jit.ScriptModule):
        raise ModelLoadError(
            f"{path.name} holds a {type(model).__name__}, not a module: save the whole "
            "module (torch.save(model)) or TorchScript (torch.jit.save(torch.jit.script(m)))"
        )
    model.eval()

    def predict(batch: Any) -> list[Any]:
        import numpy as np

        try:
            x = torch.from_numpy(np.asarray(batch, dtype=np.float32))
        except (ValueError, TypeError) as exc:
            raise BadInput(f"instances must be numbers: {_describe(exc)}") from exc
        try:
            with torch.no_grad():
                out = model(x)
        except RuntimeError as exc:  # shape mismatches surface as RuntimeError
            raise BadInput(_describe(exc)) from exc
        if isinstance(out, tuple | list):
            out = out[0]
        return _tolist(out.detach().cpu().numpy())

    return LoadedModel(predict, str(path), platform)


def load_custom(model_path: str, predictor: str) -> LoadedModel:
    """`module:Class` from the model folder: built with no args (or model_dir=), load() once."""
    module_name, _, class_name = predictor.partition(":")
    if not module_name or not class_name:
        raise ModelLoadError(f"--predictor must be module:Class, got {predictor!r}")
    path = Path(model_path)
    if not path.exists():
        raise ModelLoadError(f"no such file or folder: {model_path}")
    model_dir = (path if path.is_dir() else path.parent).absolute()
    sys.path.insert(0, str(model_dir))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelLoadError(
            f"cannot import {module_name!r} (model folder {model_dir}): {_describe(exc)}"
        ) from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise ModelLoadError(f"module {module_name!r} has no class {class_name!r}")
    try:
        params = inspect.signature(cls).parameters
        accepts_dir = "model_dir" in params or any(
            p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
        )
        instance = cls(model_dir=str(model_dir)) if accepts_dir else cls()
        if callable(getattr(instance, "load", None)):
            instance.load()
    except Exception as exc:
        raise ModelLoadError(f"{predictor} failed to load: {_describe(exc)}") from exc
    if not callable(getattr(instance, "predict", None)):
        raise ModelLoadError(f"{predictor} has no predict(instances) method")

    def predict(batch: Any) -> list[Any]:
        return _tolist(instance.predict(batch))

    return LoadedModel(predict, f"{model_dir}:{predictor}", "custom", wants_list=True)


@dataclass(frozen=True)
class FrameworkSupport:
    """What serving one framework takes."""

    #: Loads a model file; None: the user's --predictor class does (`load_custom`).
    load: Callable[[Path], LoadedModel] | None
    #: The model files looked for when --model is a folder.
    suffixes: tuple[str, ...] = ()
    #: ``modelFormat.name`` of KServe's own runtime for it; None: KServe runs our model server.
    kserve_format: str | None = None


FRAMEWORKS: dict[ModelFramework, FrameworkSupport] = {
    ModelFramework.SKLEARN: FrameworkSupport(load_sklearn, _PICKLE_EXTENSIONS, "sklearn"),
    ModelFramework.XGBOOST: FrameworkSupport(
        load_xgboost, (".json", ".ubj", ".bst", ".model", *_PICKLE_EXTENSIONS), "xgboost"
    ),
    ModelFramework.PYTORCH: FrameworkSupport(load_pytorch, (".pt", ".pth"), "pytorch"),
    ModelFramework.ONNX: FrameworkSupport(load_onnx, (".onnx",), "onnx"),
    ModelFramework.CUSTOM: FrameworkSupport(None),
}
if _missing := [f.value for f in ModelFramework if f not in FRAMEWORKS]:
    raise RuntimeError(f"serving.loaders.FRAMEWORKS has no entry for {', '.join(_missing)}")
