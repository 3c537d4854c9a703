"""How a batch prediction reads: what was submitted, and its summary (rows, errors, output,
how to load the results)."""

from __future__ import annotations

from typing import Any

from ..models import BatchPredictionInfo, JobStatus
from .jobs import job_dict
from .text import format_fields, format_status


def format_batch_submitted(info: BatchPredictionInfo) -> str:
    """The line a submit prints."""
    return (
        f"submitted batch prediction {info.job.id}: {info.files} input file(s) in {info.workers} "
        f"shard(s) -> {info.output_path}"
    )


def format_batch_summary(info: BatchPredictionInfo) -> str:
    """Status, progress, rows predicted and failed, the output folder and how to load it."""
    job = info.job
    progress = f"{info.rows_done} / {info.rows_total} rows" if info.rows_total else "-"
    errors = f"{info.errors} row(s)" + " (see prediction.errors_stats-*)" * bool(info.errors)
    fields = [
        ("job", job.id),
        ("status", format_status(job)),
        ("model", info.model),
        ("progress", progress),
        ("shards", f"{info.shards_done} of {info.workers} finished"),
        ("predicted", f"{info.results} row(s)"),
        ("errors", errors),
        ("output", info.output_path),
    ]
    text = format_fields(fields)
    if job.status is JobStatus.SUCCEEDED or info.shards_done:
        text += (
            "\nload: jupyter_cloudml.prediction_results("
            f"{job.id!r})  # a DataFrame; errors=True for the failed rows"
        )
    return text


def batch_dict(info: BatchPredictionInfo) -> dict[str, Any]:
    """The summary as JSON (`--output json`)."""
    return {
        "job": job_dict(info.job),
        "output_path": info.output_path,
        "data_format": info.data_format.value,
        "model": info.model,
        "workers": info.workers,
        "files": info.files,
        "shards_done": info.shards_done,
        "results": info.results,
        "errors": info.errors,
        "rows_done": info.rows_done,
        "rows_total": info.rows_total,
    }
