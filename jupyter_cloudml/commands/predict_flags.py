"""The batch prediction part of the one grammar: `predict batch ...` and `%cloudml_predict ...`,
with gcloud's flag names (`gcloud ai-platform jobs submit prediction`) where they exist.

`grammar.py` dispatches `predict ...` here; `%cloudml_predict ...` is `predict batch ...`.
"""

from __future__ import annotations

import argparse

from ..models import BatchPredictionSpec, DataFormat, ModelFramework
from .flag_types import add_output_option, name_list, whole_number

PREDICT_VERBS = ("batch",)
PREDICT_SUMMARIES = {
    "batch": "predict every instance of input files with a model, as a job of --workers shards",
}
#: gcloud's `--data-format text` is JSON lines too; gzip-compressed TFRecords are not read.
FORMAT_ALIASES = {"text": DataFormat.JSON}


def data_format(text: str) -> DataFormat:
    """`--data-format`: json (or gcloud's text), csv, tf-record or parquet."""
    if text in FORMAT_ALIASES:
        return FORMAT_ALIASES[text]
    if text == "tf-record-gzip":
        raise argparse.ArgumentTypeError(
            "tf-record-gzip is not read: decompress the files and give --data-format tf-record"
        )
    try:
        return DataFormat(text)
    except ValueError:
        names = ", ".join(f.value for f in DataFormat)
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {names}") from None


def add_predict_verb_options(verb: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of `predict batch` (the one verb)."""
    add = parser.add_argument
    add(
        "--model",
        required=True,
        metavar="MODEL",
        help="a model file or folder (or fsspec URI), job:ID[/PATH] (a study's id: its best "
        "trial), or a deployment NAME[:VERSION] (e.g. --model job:iris-3f9a1c/model.joblib)",
    )
    add(
        "--input-paths",
        required=True,
        type=name_list,
        metavar="GLOB,...",
        help="input files, globs allowed, local or fsspec (e.g. --input-paths 'data/in-*.json')",
    )
    add(
        "--output-path",
        required=True,
        metavar="DIR",
        help="folder for prediction.results-* and prediction.errors_stats-* (e.g. out/)",
    )
    add(
        "--data-format",
        type=data_format,
        default=DataFormat.JSON,
        metavar="FORMAT",
        help="json (one instance per line; gcloud's text too), csv (with a header row), "
        "tf-record (tf.train.Example) or parquet (needs pyarrow) (default json)",
    )
    add(
        "--framework",
        choices=[f.value for f in ModelFramework],
        help="how to load the model (e.g. --framework sklearn); a deployment's is known",
    )
    add(
        "--predictor",
        metavar="MODULE:CLASS",
        help="custom: a class with load() and predict(instances) in the model folder",
    )
    add(
        "--batch-size",
        type=whole_number,
        default=64,
        metavar="N",
        help="instances per call of the model (default 64)",
    )
    add(
        "--workers",
        type=whole_number,
        default=1,
        metavar="N",
        help="replicas, each predicting every N-th input file (gcloud's --max-worker-count) "
        "(e.g. --workers 2)",
    )
    add("--name", default="batch-predict", help="job name (default batch-predict)")
    add("--retries", type=whole_number, default=0, metavar="N", help="retries of failed shards")
    add("--overwrite", action="store_true", help="replace results already in --output-path")
    add("--wait", action="store_true", help="block until the job ends, then show a summary")
    add(
        "--backend",
        metavar="NAME",
        help="where to run, instead of the configured backend (e.g. --backend kubernetes)",
    )
    add_output_option(parser)


def build_batch_spec(ns: argparse.Namespace) -> BatchPredictionSpec:
    """The `BatchPredictionSpec` of a parsed `predict batch` command."""
    return BatchPredictionSpec(
        name=ns.name,
        model=ns.model,
        input_paths=tuple(ns.input_paths),
        output_path=ns.output_path,
        data_format=ns.data_format,
        framework=ModelFramework(ns.framework) if ns.framework else None,
        predictor=ns.predictor,
        batch_size=ns.batch_size,
        workers=ns.workers,
        overwrite=ns.overwrite,
        retries=ns.retries,
    )
