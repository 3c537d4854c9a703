"""A full disk under the home, for real: a 2 MiB tmpfs mounted in a user and mount namespace of
the test's own (`unshare -rm`, no root needed). A job that fills it fails with the reason, a
submit onto it is one clear line, and the home works again once there is room."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cloudml_testkit import REPO

SCENARIO = r"""
import json, os, subprocess, sys, time
from jupyter_cloudml.backends.local.keeper import stop_keeper
from jupyter_cloudml.backends.local.store import JobStore

home = os.environ["CLOUDML_HOME"]
seen = {}

def cli(*argv):
    done = subprocess.run([sys.executable, "-m", "jupyter_cloudml.cli", *argv],
                          capture_output=True, text=True, timeout=120)
    return {"code": done.returncode, "out": done.stdout, "err": done.stderr}

def ended(job_id):
    for _ in range(600):
        row = JobStore(os.path.join(home, "jobs.db")).row(job_id)
        if row["finished"]:
            return {"status": row["status"], "reason": row["reason"]}
        time.sleep(0.1)
    return {"status": "still " + row["status"], "reason": row["reason"]}

job_id = cli("train", "fill.py", "--name", "fill")["out"].split()[2]
seen["filler_job"] = ended(job_id)
with open("../ballast", "wb", buffering=0) as ballast:  # whatever room is left
    try:
        while True:
            ballast.write(b"\0" * 4096)
    except OSError:
        pass
seen["submit_on_full_disk"] = cli("train", "quick.py", "--name", "quick")
os.remove("../ballast")
cli("jobs", "delete", job_id)
job_id = cli("train", "quick.py", "--name", "again")["out"].split()[2]
seen["after_room_was_made"] = ended(job_id)
stop_keeper(home)
print(json.dumps(seen))
"""


def user_namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not user_namespaces(), reason="needs unprivileged user namespaces")
def test_a_full_disk_is_the_jobs_reason_and_a_one_line_refusal(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    work = disk / "work"
    (tmp_path / "fill.py").write_text("for i in range(200_000):\n    print('x' * 200)\n")
    (tmp_path / "quick.py").write_text("print('fine')\n")
    script = tmp_path / "scenario.py"
    script.write_text(SCENARIO)
    shell = (
        f"mount -t tmpfs -o size=2m cloudml-test {disk} && mkdir {work} "
        f"&& cp {tmp_path}/fill.py {tmp_path}/quick.py {work} && cd {work} "
        f"&& exec {sys.executable} {script}"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(REPO),
        "CLOUDML_HOME": str(disk / "home"),
    }
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", shell], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["filler_job"] == {
        "status": "FAILED",
        "reason": "no space left on device writing logs",
    }
    refused = seen["submit_on_full_disk"]
    assert refused["code"] == 1 and refused["out"] == ""
    assert refused["err"] == (
        f"cloudml: error: cannot submit the job: no space left on device in {disk / 'home'}; "
        "free some space and try again\n"
    )
    assert seen["after_room_was_made"] == {"status": "SUCCEEDED", "reason": ""}
