"""Process plumbing of the local backend."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
from cloudml_testkit import wait_for

from jupyter_cloudml.backends.local.processes import wait_ended

#: A parent that starts a child which exits at once, and never reaps it.
NEGLECTFUL_PARENT = """
import subprocess, time
child = subprocess.Popen(["true"])
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_zombie_of_another_process_has_ended():
    """An endpoint brought back by the keeper is the keeper's child: once it exits it stays a
    zombie until the keeper reaps it, and undeploying it waited 30 s for that."""
    parent = subprocess.Popen([sys.executable, "-c", NEGLECTFUL_PARENT], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        wait_for(lambda: child.status() == psutil.STATUS_ZOMBIE, timeout=10)
        began = time.monotonic()
        assert wait_ended(child, timeout=10)
        assert time.monotonic() - began < 1.0
    finally:
        parent.kill()
        parent.wait()


def test_a_running_process_has_not_ended_and_a_child_of_ours_is_reaped():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proc = psutil.Process(sleeper.pid)
    assert not wait_ended(proc, timeout=0.2)
    sleeper.kill()
    assert wait_ended(proc, timeout=10)
    assert not psutil.pid_exists(sleeper.pid)  # reaped, not left a zombie
