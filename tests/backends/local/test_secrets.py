"""Secret environment values (`--secret`, `--env-from-file`) reach the job's replicas and its
study's trials, and are written nowhere but one private file of the job, gone once it ends."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from cloudml_testkit import wait_for

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.backends.local.job_secrets import SECRETS_FILE
from jupyter_cloudml.backends.local.store import JobStore
from jupyter_cloudml.client import Client
from jupyter_cloudml.commands.unparse import reproduce_magic
from jupyter_cloudml.models import JobStatus
from jupyter_cloudml.views.jobs import format_job

TOKEN = "tok-7f3a9c1e5b"
DIGEST = hashlib.sha256(TOKEN.encode()).hexdigest()

SHOWS_DIGEST = """
import hashlib, os
print("digest", hashlib.sha256(os.environ["API_TOKEN"].encode()).hexdigest(), flush=True)
"""


def files_holding(home: Path, text: str) -> list[str]:
    """Every file of the home whose bytes contain `text` (the database and its WAL included)."""
    needle = text.encode()
    return [
        str(path.relative_to(home))
        for path in home.rglob("*")
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    ]


def test_a_secret_reaches_the_replica_and_is_kept_nowhere_once_the_job_ended(
    backend, make_spec, isolated_home
):
    job = backend.submit(make_spec(SHOWS_DIGEST, name="secret", secrets={"API_TOKEN": TOKEN}))
    kept = isolated_home / "jobs" / job.id / SECRETS_FILE
    wait_for(lambda: JobStore(isolated_home / "jobs.db").row(job.id)["finished"], 60)
    done = backend.get(job.id)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    assert f"digest {DIGEST}" in [line.text for line in backend.logs(job.id)]
    assert not kept.exists()
    assert files_holding(isolated_home, TOKEN) == []
    assert done.spec is not None and dict(done.spec.secrets) == {"API_TOKEN": ""}
    assert "Secrets:   API_TOKEN (value hidden)" in format_job(done)
    assert "--secret API_TOKEN" in reproduce_magic(done.spec, None)


def test_while_queued_the_value_is_in_one_file_only_the_owner_reads(make_spec, isolated_home):
    backend = LocalBackend(home=str(isolated_home), cpu_slots=1)
    old = os.umask(0o022)  # the most common umask, under which files are world-readable
    try:
        blocker = backend.submit(make_spec("import time; time.sleep(60)", name="busy"))
        job = backend.submit(make_spec(SHOWS_DIGEST, name="queued", secrets={"API_TOKEN": TOKEN}))
    finally:
        os.umask(old)
    assert backend.get(job.id).status is JobStatus.QUEUED
    kept = isolated_home / "jobs" / job.id / SECRETS_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert json.loads(kept.read_text()) == {"API_TOKEN": TOKEN}
    assert files_holding(isolated_home, TOKEN) == [f"jobs/{job.id}/{SECRETS_FILE}"]
    backend.cancel(job.id)
    backend.cancel(blocker.id)
    assert not kept.exists()
    assert files_holding(isolated_home, TOKEN) == []


STUDY_TRIAL = """
import hashlib, os
import jupyter_cloudml
p = jupyter_cloudml.params(x=0.0)
seen = hashlib.sha256(os.environ["API_TOKEN"].encode()).hexdigest() == DIGEST
jupyter_cloudml.report(step=1, score=p["x"] if seen else -10.0)
"""


def test_a_studys_trials_get_the_secret_through_the_driver(backend, make_spec, isolated_home):
    from jupyter_cloudml.models import ParamSpec, ParamType, TrialStatus, TuningSpec

    client = Client(backend)
    code = f"DIGEST = {DIGEST!r}\n" + STUDY_TRIAL
    trial = make_spec(code, name="tuned", secrets={"API_TOKEN": TOKEN})
    x = ParamSpec("x", ParamType.DOUBLE, 0.0, 1.0)
    tuning = TuningSpec(params=(x,), metric="score", max_trials=2, parallel_trials=2, seed=1)
    study = client.submit_study(trial, tuning)
    client.wait(study.id, timeout=240, poll=0.1)
    done = client.get_study(study.id)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    assert [t.status for t in done.trials] == [TrialStatus.SUCCEEDED] * 2
    assert all(t.value is not None and t.value >= 0 for t in done.trials)  # not -10: seen
    assert files_holding(isolated_home, TOKEN) == []
