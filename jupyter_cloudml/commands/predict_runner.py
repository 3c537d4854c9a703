"""The runner of `predict batch` (and `%cloudml_predict`): submit, optionally wait, print."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

from ..models import JobStatus
from ..views.batch import batch_dict, format_batch_submitted, format_batch_summary
from ..views.text import dumps
from .predict_flags import build_batch_spec

if TYPE_CHECKING:
    from ..client import Client


def run_predict_command(client: Client, ns: argparse.Namespace, out: TextIO) -> int:
    """Submit a parsed `predict batch`; with `--wait`, block and print the summary. The exit
    code is 1 when a waited-for job did not succeed."""
    as_json = ns.output == "json"
    job = client.submit_batch_prediction(build_batch_spec(ns))
    info = client.batch_prediction(job.id)
    if not as_json or not ns.wait:
        print(dumps(batch_dict(info)) if as_json else format_batch_submitted(info), file=out)
    if not ns.wait:
        return 0
    client.wait(job.id)
    info = client.batch_prediction(job.id)
    print(dumps(batch_dict(info)) if as_json else format_batch_summary(info), file=out)
    return 0 if info.job.status is JobStatus.SUCCEEDED else 1
