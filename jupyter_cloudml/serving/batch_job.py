"""Batch prediction as the rest of the system sees it: an ordinary job running the predictor
program (`serving.batch`), one replica per shard, marked with `BATCH_LABEL`.

What can be checked before submitting is checked here, each with its own message: the input
globs (no match, an unreadable file, fewer files than workers), the model files, and an output
folder that already holds results.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..exceptions import InvalidSpec, NotFound
from ..models import (
    BATCH_LABEL,
    BatchPredictionInfo,
    BatchPredictionSpec,
    DataFormat,
    JobInfo,
    ModelFramework,
    Replicas,
    Scalar,
    TrainSpec,
)
from .batch import BATCH_ENV, INPUTS_FILE, PROGRAM_MODULE
from .batch_inputs import expand_inputs, shard_files


def plan_inputs(spec: BatchPredictionSpec) -> list[str]:
    """The input files of `spec`: every glob matched, local files readable, enough for the
    workers."""
    if spec.data_format is DataFormat.PARQUET:
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise InvalidSpec("--data-format parquet needs pyarrow (pip install pyarrow)") from None
    files = expand_inputs(spec.input_paths)
    for path in files:
        if "://" not in path and not os.access(path, os.R_OK):
            raise InvalidSpec(f"input file {path} is not readable (permission denied)")
    shard_files(files, 0, spec.workers)  # refuses fewer files than workers
    return files


def check_model(location: str, framework: ModelFramework, predictor: str | None) -> None:
    """A local model path must hold the framework's model file (loading is left to the job,
    whose interpreter has the framework)."""
    from .loaders import FRAMEWORKS, ModelLoadError, find_model_file

    if "://" in location or predictor is not None:
        return
    try:
        find_model_file(location, FRAMEWORKS[framework].suffixes)
    except ModelLoadError as exc:
        raise InvalidSpec(f"--model: {exc}") from None


def batch_job_spec(
    spec: BatchPredictionSpec,
    model_location: str,
    framework: ModelFramework,
    predictor: str | None,
    files: list[str],
) -> TrainSpec:
    """The job that predicts `files` with the model at `model_location`, `spec.workers`
    replicas each taking one shard."""
    from ..packaging import package_files

    config = {
        "model": model_location,
        "model_ref": spec.model,
        "framework": framework.value,
        "predictor": predictor,
        "input_paths": list(spec.input_paths),
        "output_path": _absolute(spec.output_path),
        "data_format": spec.data_format.value,
        "batch_size": spec.batch_size,
        "workers": spec.workers,
        "files": len(files),
    }
    package = package_files({INPUTS_FILE: json.dumps(files).encode()}, PROGRAM_MODULE)
    return TrainSpec(
        name=spec.name,
        package=package,
        env={BATCH_ENV: json.dumps(config)},
        replicas=Replicas(workers=spec.workers),
        retries=spec.retries,
        labels={BATCH_LABEL: "true"},
    )


def is_batch_prediction(job: JobInfo) -> bool:
    return job.spec is not None and job.spec.labels.get(BATCH_LABEL) == "true"


def batch_config(job: JobInfo) -> dict[str, Any]:
    """The settings of a batch prediction job (its output path, model, format, ...)."""
    if job.spec is None or not is_batch_prediction(job):
        raise NotFound(f"job {job.id} is not a batch prediction (see `cloudml jobs describe`)")
    config: dict[str, Any] = json.loads(job.spec.env[BATCH_ENV])
    return config


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(os.path.expanduser(path))


def progress(scalars: Mapping[str, Sequence[Scalar]]) -> tuple[int, int]:
    """(rows done, rows total) over the shards, from the last values each one reported."""
    done = total = 0
    for tag, values in scalars.items():
        if values and tag.startswith("rows_done/shard-"):
            done += int(values[-1].value)
        elif values and tag.startswith("rows_total/shard-"):
            total += int(values[-1].value)
    return done, total


def batch_info(job: JobInfo, scalars: Mapping[str, Sequence[Scalar]]) -> BatchPredictionInfo:
    """What a batch prediction job got done: its shards' reports and its finished outputs."""
    from .batch_outputs import ERRORS, RESULTS, count_lines, existing_results

    config = batch_config(job)
    output = config["output_path"]
    done, total = progress(scalars)
    finished = [n for n in existing_results(output) if n.startswith(RESULTS + "-")]
    return BatchPredictionInfo(
        job=job,
        output_path=output,
        data_format=DataFormat(config["data_format"]),
        model=config["model_ref"],
        workers=int(config["workers"]),
        files=int(config["files"]),
        shards_done=len(finished),
        results=count_lines(output, RESULTS),
        errors=count_lines(output, ERRORS),
        rows_done=done,
        rows_total=total,
    )
