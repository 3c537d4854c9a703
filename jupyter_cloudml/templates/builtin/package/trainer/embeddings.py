"""Sentence embeddings for text-classification: which features a job uses (`auto`: a local
sentence-transformers model when the package and the model are both here, else TF-IDF; never a
download) and the pipeline step that embeds a text column, pickled by its local model path."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin

from jupyter_cloudml.exceptions import InvalidSpec

INSTALL = "pip install sentence-transformers"


def package_missing() -> str | None:
    """Why sentence-transformers cannot be used by this interpreter, or None when it can."""
    if importlib.util.find_spec("sentence_transformers") is None:
        return f"sentence-transformers is not installed in this job's Python ({INSTALL})"
    return None


def local_model(name: str) -> tuple[str | None, str]:
    """The local folder of `name` (a path, or a model in the local Hugging Face cache) and
    where it was found; (None, where it looked) when it is in neither."""
    path = os.path.abspath(os.path.expanduser(name))
    if os.path.isdir(path):
        return path, f"the folder {path}"
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    looked = f"neither a folder nor in the Hugging Face cache {constants.HF_HUB_CACHE}"
    try:
        return snapshot_download(name, local_files_only=True), f"the Hugging Face cache ({name})"
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        return None, looked


def choose(features: str, model: str) -> tuple[str | None, str]:
    """The embedding model's folder (None: TF-IDF) and why; `embeddings` that cannot be used
    is an error naming what is missing."""
    if features == "tfidf":
        return None, "features=tfidf"
    missing = package_missing()
    folder, where = (None, "") if missing else local_model(model)
    if folder is None and missing is None:
        missing = f"embedding model {model!r} not found locally ({where}; nothing is downloaded)"
    if missing is not None:
        if features == "embeddings":
            raise InvalidSpec(f"--param features=embeddings: {missing}")
        return None, f"features=auto: TF-IDF, since {missing}"
    return folder, f"features={features}: sentence embeddings of {model} from {where}"


class SentenceEmbedder(TransformerMixin, BaseEstimator):
    """A scikit-learn transformer: a text column in, its sentence embeddings out. Pickled by
    the model's local folder (the model is loaded again where it is unpickled)."""

    def __init__(self, model_path: str, text_column: str, batch_size: int = 32) -> None:
        self.model_path, self.text_column, self.batch_size = model_path, text_column, batch_size
        self._model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_model": None}

    def fit(self, x: Any, y: Any = None) -> SentenceEmbedder:
        self._load()
        return self

    def transform(self, x: Any) -> Any:
        texts = x[self.text_column] if hasattr(x, "columns") else x
        texts = ["" if t is None else str(t) for t in list(texts)]
        return self._load().encode(texts, batch_size=self.batch_size, show_progress_bar=False)

    def _load(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            # device None: a GPU when the job (or the model server) was given one, else the CPU.
            self._model = SentenceTransformer(self.model_path, device=None, local_files_only=True)
        return self._model
