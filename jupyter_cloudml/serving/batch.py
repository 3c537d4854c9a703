"""The batch predictor program: the entry module of every batch prediction job's replicas
(`python -m jupyter_cloudml.serving.batch`, in the job's working directory).

Replica i of N (`$CLOUDML_REPLICA_INDEX`, the job's `--workers N`) loads the model with the
endpoints' loaders (`loaders.load_model`), reads every N-th input file from the i-th, predicts
in batches of `batch_size` and writes shard i (`batch_outputs`). A batch the model refuses is
predicted again row by row, so only its bad rows become errors. Progress is reported as metrics
(`rows_done/shard-i`, `rows_total/shard-i`, `errors/shard-i`); a shard an earlier attempt
finished is skipped, so a retried job predicts no row twice.

The job's settings come from `$CLOUDML_BATCH` (JSON) and the input files from `INPUTS_FILE` in
its code package.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .batch_inputs import Row

BATCH_ENV = "CLOUDML_BATCH"
INPUTS_FILE = "batch_inputs.json"
PROGRAM_MODULE = "jupyter_cloudml.serving.batch"
REPORT_SECONDS = 1.0


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def local_model(location: str, scratch: str) -> str:
    """A local path of the model at `location` (a path, or an fsspec URI copied to `scratch`)."""
    if "://" not in location:
        return location
    import fsspec

    fs, path = fsspec.core.url_to_fs(location)
    target = os.path.join(scratch, os.path.basename(path.rstrip("/")) or "model")
    fs.get(path, target, recursive=fs.isdir(path))
    return target


class ShardRun:
    """Predicts one shard's files into a `ShardWriter`, reporting progress as it goes."""

    def __init__(self, predict: Any, writer: Any, batch_size: int, shard: int, total: int):
        self.predict = predict
        self.writer = writer
        self.batch_size = batch_size
        self.shard = shard
        self.total = total
        self.done = 0
        self.last_report = 0.0

    def run_file(self, path: str, data_format: Any) -> None:
        from ..exceptions import InvalidSpec
        from .batch_inputs import read_rows

        batch: list[Row] = []
        try:
            for row in read_rows(path, data_format):
                if row.error is not None:
                    self.writer.error(path, row.line, row.error)
                    self._advance(1)
                    continue
                batch.append(row)
                if len(batch) >= self.batch_size:
                    self._predict(path, batch)
                    batch = []
        except InvalidSpec as exc:  # the file as a whole cannot be read (any further)
            self.writer.error(path, 0, str(exc))
        if batch:
            self._predict(path, batch)

    def _predict(self, path: str, batch: list[Row]) -> None:
        instances = [row.instance for row in batch]
        try:
            predictions = self.predict(instances)
            if len(predictions) != len(instances):
                raise ValueError(
                    f"the model gave {len(predictions)} predictions for {len(instances)} rows"
                )
        except Exception as exc:
            if len(batch) > 1:  # isolate the rows the model refuses
                for row in batch:
                    self._predict(path, [row])
            else:
                self.writer.error(path, batch[0].line, _describe(exc), batch[0].instance)
                self._advance(1)
            return
        for row, prediction in zip(batch, predictions, strict=True):
            self.writer.result(path, row.line, row.instance, prediction, row.text)
        self._advance(len(batch))

    def _advance(self, rows: int) -> None:
        self.done += rows
        if time.monotonic() - self.last_report >= REPORT_SECONDS:
            self.report()

    def report(self) -> None:
        from ..metrics import report

        self.last_report = time.monotonic()
        tags = {"rows_done": self.done, "rows_total": self.total, "errors": self.writer.errors}
        report(step=self.done, **{f"{tag}/shard-{self.shard}": v for tag, v in tags.items()})


def run_shard(config: dict[str, Any], files: list[str], shard: int, attempt: str) -> int:
    """Predict shard `shard` of the job; returns the process exit code."""
    from ..models import DataFormat
    from .batch_inputs import count_rows, shard_files
    from .batch_outputs import ShardWriter, shard_done
    from .loaders import ModelLoadError, load_model

    shards, output = int(config["workers"]), config["output_path"]
    data_format = DataFormat(config["data_format"])
    if shard_done(output, shard, shards):
        print(f"shard {shard} of {shards} was finished by an earlier attempt: skipped", flush=True)
        return 0
    mine = shard_files(files, shard, shards)
    with tempfile.TemporaryDirectory(prefix="cloudml-model-") as scratch:
        try:
            path = local_model(config["model"], scratch)
            model = load_model(config["framework"], path, config.get("predictor"))
        except (ModelLoadError, OSError) as exc:
            print(f"cloudml: the model does not load: {exc}", file=sys.stderr, flush=True)
            return 2
        total = sum(_count(count_rows, f, data_format) for f in mine)
        print(f"shard {shard} of {shards}: {len(mine)} file(s), {total} row(s)", flush=True)
        writer = ShardWriter(output, shard, shards, attempt)
        runner = ShardRun(model.predict, writer, int(config["batch_size"]), shard, total)
        try:
            for name in mine:
                runner.run_file(name, data_format)
        except BaseException:
            writer.discard()
            raise
        runner.report()
        writer.commit()
    print(
        f"shard {shard} of {shards} done: {writer.rows} predicted, {writer.errors} error(s)",
        flush=True,
    )
    return 0


def _count(count_rows: Any, path: str, data_format: Any) -> int:
    from ..exceptions import InvalidSpec

    try:
        return int(count_rows(path, data_format))
    except InvalidSpec:
        return 1  # the file's one error row


def main() -> None:
    config = json.loads(os.environ[BATCH_ENV])
    shard = int(os.environ.get("CLOUDML_REPLICA_INDEX", "0"))
    attempt = os.environ.get("CLOUDML_ATTEMPT", "0")
    sys.exit(run_shard(config, json.loads(Path(INPUTS_FILE).read_text()), shard, attempt))


if __name__ == "__main__":
    main()
