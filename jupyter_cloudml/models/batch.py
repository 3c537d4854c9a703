"""Batch prediction: score many input files with a model, as an ordinary job.

`BatchPredictionSpec` is what the user asks for (Google's `jobs submit prediction` fields:
input paths, output path, data format, batch size, workers); `Client.submit_batch_prediction`
resolves its model and submits it as a `TrainSpec` whose entry module is the product's
predictor program (`jupyter_cloudml.serving.batch`), labelled with `BATCH_LABEL`.
"""

from __future__ import annotations

import dataclasses
import enum

from ..exceptions import InvalidSpec
from .common import MODULE_RE, check_name
from .jobs import JobInfo
from .serving import ModelFramework

#: The label that marks a job as a batch prediction (value "true"); it is listed as a job.
BATCH_LABEL = "cloudml.io/batch-prediction"
MAX_WORKERS = 64
MAX_BATCH_SIZE = 100_000


class DataFormat(str, enum.Enum):
    """How input files hold their instances."""

    #: One JSON value per line: the instance (a list of numbers, or an object).
    JSON = "json"
    #: A header row, then one instance per line (the values in column order).
    CSV = "csv"
    #: TFRecord framing around serialized `tf.train.Example`s (the features in name order).
    TFRECORD = "tf-record"
    #: Apache Parquet (needs pyarrow), one instance per row.
    PARQUET = "parquet"


@dataclasses.dataclass(frozen=True)
class BatchPredictionSpec:
    """Predict every instance of `input_paths` (globs, local or fsspec) with `model`, into
    `output_path`, in batches of `batch_size`, split over `workers` shards."""

    name: str
    model: str
    input_paths: tuple[str, ...]
    output_path: str
    data_format: DataFormat = DataFormat.JSON
    framework: ModelFramework | None = None
    predictor: str | None = None
    batch_size: int = 64
    workers: int = 1
    overwrite: bool = False
    retries: int = 0

    def __post_init__(self) -> None:
        check_name(self.name, "job name")
        object.__setattr__(self, "data_format", DataFormat(self.data_format))
        if self.framework is not None:
            object.__setattr__(self, "framework", ModelFramework(self.framework))
        if not self.model:
            raise InvalidSpec("give the model: --model PATH, job:ID[/PATH], STUDY or DEPLOYMENT")
        if not self.input_paths or not all(self.input_paths):
            raise InvalidSpec("give the input files: --input-paths 'in-*.json' (globs allowed)")
        if not self.output_path:
            raise InvalidSpec("give the output folder: --output-path out/")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise InvalidSpec(f"--batch-size must be 1..{MAX_BATCH_SIZE}, got {self.batch_size}")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise InvalidSpec(f"--workers must be 1..{MAX_WORKERS}, got {self.workers}")
        if self.retries < 0:
            raise InvalidSpec(f"--retries must be >= 0, got {self.retries}")
        if self.predictor is not None:
            module, _, cls = self.predictor.partition(":")
            if self.framework is not ModelFramework.CUSTOM or not (
                MODULE_RE.match(module) and cls.isidentifier()
            ):
                raise InvalidSpec(
                    f"--predictor {self.predictor!r}: give MODULE:CLASS with --framework custom"
                )


@dataclasses.dataclass(frozen=True)
class BatchPredictionInfo:
    """A batch prediction job and how far it got: `rows_done` of `rows_total` as its shards
    report them; `results` and `errors` counted in the shards that are finished."""

    job: JobInfo
    output_path: str
    data_format: DataFormat
    model: str
    workers: int
    files: int = 0
    shards_done: int = 0
    results: int = 0
    errors: int = 0
    rows_done: int = 0
    rows_total: int = 0
