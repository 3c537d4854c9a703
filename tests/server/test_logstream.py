"""`jupyter_cloudml.server.logstream.LogFollower`: a job's live log as batches, over a real
Client and a real LocalBackend (real supervisors and replicas writing real log files).

What the NDJSON log stream of the server sends is what `batches()` yields; these tests look at
it directly: every line once and in order, batched, live while the job runs, at most MAX_BATCH
lines a batch, keepalives in quiet spells, and the end once the job ended and all was sent.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time

import pytest
from cloudml_testkit import wait_for

from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import BackendUnavailable
from jupyter_cloudml.models import JobStatus, LogLine, Replicas
from jupyter_cloudml.server.logstream import MAX_BATCH, LogFollower


@pytest.fixture
def client(backend):
    return Client(backend=backend)


def collect(follower: LogFollower, interval: float, keepalive: float = 15.0, on_batch=None):
    """Every batch `batches()` yields, with the time it arrived."""

    async def run():
        got = []
        async for batch in follower.batches(interval, keepalive):
            got.append((time.time(), batch))
            if on_batch is not None:
                on_batch(batch)
        return got

    return asyncio.run(asyncio.wait_for(run(), timeout=60))


TICKS = """
import time
for i in range(15):
    print('tick', i, flush=True)
    time.sleep(0.06)
"""


def test_a_running_jobs_lines_arrive_live_in_batches_and_the_stream_ends_with_the_job(
    client, make_spec
):
    job = client.submit(make_spec(TICKS))
    follower = LogFollower(client.logs(job.id, follow=True))
    got = collect(follower, interval=0.15)
    ended = time.time()

    lines = [line for _, batch in got for line in batch]
    assert [line.text for line in lines] == [f"tick {i}" for i in range(15)]
    assert all(isinstance(line, LogLine) and line.replica == "worker-0" for line in lines)
    assert [line.time for line in lines] == sorted(line.time for line in lines)
    batches = [batch for _, batch in got]
    assert all(batches)  # no keepalive in under 15 s of quiet
    assert 1 < len(batches) < 15  # batched, and more than once: live

    done = client.get(job.id)
    assert done.status is JobStatus.SUCCEEDED and done.finished is not None
    first_arrival = got[0][0]
    assert first_arrival < done.finished - 0.3  # lines came while it ran, not at its end
    assert ended >= done.finished  # the stream ended only once the job had
    assert follower.error is None


def test_a_burst_is_split_into_batches_of_at_most_max_batch_lines(client, make_spec):
    count = 3 * MAX_BATCH + 123
    job = client.submit(make_spec(f"for i in range({count}):\n    print(i)\n"))
    assert client.wait(job.id, timeout=60, poll=0.05).status is JobStatus.SUCCEEDED

    follower = LogFollower(client.logs(job.id, follow=True))
    # the reader has read the whole file long before the second batch
    got = collect(follower, interval=1.0)
    sizes = [len(batch) for _, batch in got]
    assert sum(sizes) == count
    assert max(sizes) == MAX_BATCH  # the cap applies ...
    assert len(sizes) >= 4  # ... so a backlog goes over several batches
    assert [line.text for _, batch in got for line in batch] == [str(i) for i in range(count)]
    # the backlog after the wait goes out at once, not one batch per interval
    assert got[-1][0] - got[1][0] < 0.5


def test_quiet_spells_send_empty_keepalive_batches(client, make_spec):
    job = client.submit(make_spec("import time\ntime.sleep(1.5)\nprint('late', flush=True)\n"))
    follower = LogFollower(client.logs(job.id, follow=True))
    got = collect(follower, interval=0.05, keepalive=0.3)

    texts = [[line.text for line in batch] for _, batch in got]
    assert [t for t in texts if t] == [["late"]]
    first_line = next(i for i, t in enumerate(texts) if t)
    assert first_line >= 3  # at least 3 keepalives in 1.5 s of quiet
    assert all(t == [] for t in texts[:first_line])
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(got[:first_line])]
    assert all(gap >= 0.25 for gap in gaps)  # one per keepalive period, not per interval


def test_a_finished_jobs_tail_is_sent_and_the_stream_ends_at_once(client, make_spec):
    job = client.submit(make_spec("for i in range(50):\n    print('line', i)\n"))
    client.wait(job.id, timeout=60, poll=0.05)
    started = time.monotonic()
    got = collect(LogFollower(client.logs(job.id, follow=True, tail=3)), interval=0.05)
    assert time.monotonic() - started < 2.0
    assert [line.text for _, b in got for line in b] == ["line 47", "line 48", "line 49"]


def test_following_one_replica_of_a_distributed_job(client, make_spec):
    code = """
import os, time
for i in range(3):
    print(os.environ['CLOUDML_REPLICA'], i, flush=True)
    time.sleep(0.05)
"""
    job = client.submit(make_spec(code, replicas=Replicas(workers=2)))
    wait_for(lambda: client.get(job.id).status is JobStatus.RUNNING, timeout=30)
    one = collect(LogFollower(client.logs(job.id, replica="worker-1", follow=True)), 0.05)
    assert [line.text for _, b in one for line in b] == [f"worker-1 {i}" for i in range(3)]
    both = collect(LogFollower(client.logs(job.id, follow=True)), 0.05)
    assert sorted(line.text for _, b in both for line in b) == sorted(
        f"worker-{r} {i}" for r in (0, 1) for i in range(3)
    )


def test_stop_ends_the_stream_while_the_job_goes_on(client, make_spec):
    job = client.submit(
        make_spec(
            "import time\nfor i in range(10_000):\n    print(i, flush=True)\n    time.sleep(0.02)\n"
        )
    )
    try:
        follower = LogFollower(client.logs(job.id, follow=True))
        seen: list[str] = []

        def stop_after_lines(batch):
            seen.extend(line.text for line in batch)
            if seen:
                follower.stop()

        got = collect(follower, interval=0.1, on_batch=stop_after_lines)
        assert client.get(job.id).status is JobStatus.RUNNING  # ended by stop(), not the job
        texts = [line.text for _, b in got for line in b]
        assert texts == [str(i) for i in range(len(texts))]  # in order, nothing lost
        assert len(texts) < 500  # it stopped pulling, it did not read the whole run
    finally:
        assert client.cancel(job.id).status is JobStatus.CANCELLED


def test_a_backend_failure_while_following_is_kept_and_the_lines_before_it_are_sent(
    client, make_spec, isolated_home
):
    """The job store becomes unreadable after the lines on file were read (the follower's thread
    opens its own connection to check whether the job ended): the stream sends what it had,
    ends, and keeps the backend's error for the handler to report."""
    job = client.submit(make_spec("for i in range(5):\n    print(i)\n"))
    client.wait(job.id, timeout=60, poll=0.05)
    lines = client.logs(job.id, follow=True)  # the job is checked here, in this thread
    db = isolated_home / "jobs.db"
    moved = isolated_home / "jobs.db.away"
    os.rename(db, moved)
    db.mkdir()  # a folder where the database was: SQLite cannot open it
    try:
        follower = LogFollower(lines)
        got = collect(follower, interval=0.05)
    finally:
        db.rmdir()
        os.rename(moved, db)
    assert [line.text for _, b in got for line in b] == ["0", "1", "2", "3", "4"]
    assert isinstance(follower.error, BackendUnavailable)
    assert "cannot open the job store" in str(follower.error)
    assert client.get(job.id).status is JobStatus.SUCCEEDED  # the store is back
