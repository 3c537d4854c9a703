"""The job store shared by every process of a home (SQLite in WAL mode)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jupyter_cloudml.backends.local.store import JobStore

WRITER = """
import sys, time
from jupyter_cloudml.backends.local.store import JobStore
JobStore(sys.argv[1])._conn().execute("INSERT INTO probe VALUES (?)", (int(sys.argv[2]),))
print("written", flush=True)
time.sleep(float(sys.argv[3]))
"""


def values(store: JobStore) -> list[int]:
    return [r[0] for r in store._conn().execute("SELECT v FROM probe ORDER BY v")]


def test_a_second_store_in_a_process_keeps_it_seeing_what_others_write(tmp_path: Path):
    """A process that opens the store twice (two backends in a kernel, a test reading the
    records) still sees what a live process writes after another one left. It did not: the
    second store closed a descriptor of the database, which dropped the process's SQLite locks,
    so the process that left took itself for the last reader and deleted the WAL."""
    db = tmp_path / "jobs.db"
    first = JobStore(db)
    first._conn().execute("CREATE TABLE probe (v INTEGER)")
    first._conn().execute("INSERT INTO probe VALUES (1)")
    JobStore(db)
    subprocess.run([sys.executable, "-c", WRITER, str(db), "2", "0"], check=True, timeout=60)
    stays = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), "3", "60"], stdout=subprocess.PIPE
    )
    try:
        assert stays.stdout is not None and stays.stdout.readline() == b"written\n"
        assert values(first) == [1, 2, 3]
        assert values(JobStore(db)) == [1, 2, 3]
    finally:
        stays.kill()
        stays.wait()
