"""Everything the local backend writes in its home is its owner's only (folders 0700, files
0600), whatever the umask: the job database with its `--env` values, code packages, exported
variables, logs, metrics, outputs, a TensorBoard's and a deployment's files."""

from __future__ import annotations

import os
import stat

import pytest
from cloudml_testkit import wait_for
from fault_testkit import exposed

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.client import Client
from jupyter_cloudml.models import DeploySpec, JobStatus, ModelFramework

TRAIN = """
import os, pathlib, joblib
from sklearn.linear_model import LogisticRegression
import jupyter_cloudml
jupyter_cloudml.report(step=1, loss=0.5)
model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
joblib.dump(model, pathlib.Path(os.environ["CLOUDML_JOB_DIR"], "model.joblib"))
print("token is", os.environ["API_TOKEN"])
answer = 42
"""


@pytest.fixture
def loose_umask():
    """The most common umask there is, under which files are world-readable by default."""
    before = os.umask(0o022)
    yield
    os.umask(before)


@pytest.mark.slow
def test_every_file_of_the_home_is_the_owners_only(
    loose_umask, isolated_home, make_spec, serving_python
):
    client = Client(LocalBackend(home=str(isolated_home), serving_python=serving_python))
    assert stat.S_IMODE(isolated_home.stat().st_mode) == 0o700
    spec = make_spec(TRAIN, name="secret", returns=("answer",), env={"API_TOKEN": "s3cr3t"})
    job = client.submit(spec)
    assert client.wait(job.id, timeout=120).status is JobStatus.SUCCEEDED
    assert client.fetch(job.id) == {"answer": 42}
    assert client.metrics(job.id).scalars["loss"]
    board = client.tensorboard([job.id])
    client.deploy(
        DeploySpec("private", f"job:{job.id}/model.joblib", ModelFramework.SKLEARN, replicas=1)
    )
    assert client.predict("private", [[2.5]]) == [1]
    wait_for(lambda: (isolated_home / "tensorboards" / f"{board.id}.json").exists(), 10)

    assert exposed(isolated_home) == []
    stored = b"".join(p.read_bytes() for p in isolated_home.glob("jobs.db*"))
    assert b"s3cr3t" in stored  # the --env value the files' modes keep from other users
    client.stop_tensorboard(board.id)


def test_an_existing_home_open_to_others_is_closed(loose_umask, tmp_path):
    home = tmp_path / "shared-home"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    LocalBackend(home=str(home))
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert exposed(home) == []
