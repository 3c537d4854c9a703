"""8 processes submit 50 jobs each at the same moment: every record must land exactly once.

Prints a table: records expected / stored / distinct, submit latency percentiles, and the same
insert load on a bare SQLite table (WAL, same busy timeout) as the floor.
Run: .venv/bin/python bench/bench_concurrency.py [--procs 8] [--jobs 50] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def submitter(home: str, jobs: int, start: float, out: multiprocessing.Queue) -> None:
    from jupyter_cloudml.backends.local import LocalBackend
    from jupyter_cloudml.models import TrainSpec
    from jupyter_cloudml.packaging import package_cell

    backend = LocalBackend(home=home, cpu_slots=2)
    package = package_cell("pass", source_dir=home)
    while time.time() < start:
        time.sleep(0.001)
    ids, latencies = [], []
    for _ in range(jobs):
        t0 = time.perf_counter()
        ids.append(backend.submit(TrainSpec(name="bench", package=package)).id)
        latencies.append(time.perf_counter() - t0)
    out.put((ids, latencies))


def bare_inserter(path: str, rows: int, start: float, out: multiprocessing.Queue) -> None:
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    while time.time() < start:
        time.sleep(0.001)
    latencies = []
    for _ in range(rows):
        t0 = time.perf_counter()
        conn.execute("INSERT INTO t (v) VALUES (?)", (os.urandom(8).hex(),))
        latencies.append(time.perf_counter() - t0)
    out.put(([], latencies))


def run(target, args_for, procs: int) -> tuple[list[str], list[float], float]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    start = time.time() + 1.5
    workers = [
        multiprocessing.Process(target=target, args=(*args_for, start, queue)) for _ in range(procs)
    ]
    for w in workers:
        w.start()
    results = [queue.get(timeout=600) for _ in workers]
    wall = time.time() - start
    for w in workers:
        w.join()
    ids = [i for r in results for i in r[0]]
    lat = [x for r in results for x in r[1]]
    return ids, lat, wall


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    if args.smoke:
        args.procs, args.jobs = 2, 4
    with tempfile.TemporaryDirectory() as home:
        ids, lat, wall = run(submitter, (home, args.jobs), args.procs)
        from jupyter_cloudml.backends.local import LocalBackend
        from jupyter_cloudml.client import Client
        from jupyter_cloudml.models import JobQuery

        backend = LocalBackend(home=home)
        page = backend.list(JobQuery(limit=10_000))
        stored = [j.id for j in page.jobs]
        client = Client(backend=backend)
        finished = [client.wait(i, timeout=600).status.value for i in ids]
        db = os.path.join(home, "bare.db")
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.close()
        _, bare_lat, bare_wall = run(bare_inserter, (db, args.jobs), args.procs)
    expected = args.procs * args.jobs
    print(f"| {args.procs} processes x {args.jobs} submits | value |")
    print("| --- | --- |")
    print(
        f"| records expected / stored / distinct ids | {expected} / {len(stored)} / "
        f"{len(set(stored))} |"
    )
    print(f"| ids returned == ids stored | {sorted(ids) == sorted(stored)} |")
    print(f"| jobs that then SUCCEEDED | {finished.count('SUCCEEDED')} |")
    print(f"| submit p50 / p99 (ms) | {pct(lat, 50):.1f} / {pct(lat, 99):.1f} |")
    print(
        f"| bare SQLite insert p50 / p99 (ms), the floor | {pct(bare_lat, 50):.2f} / "
        f"{pct(bare_lat, 99):.2f} |"
    )
    print(
        f"| wall time submit vs bare (s) | {wall:.2f} vs {bare_wall:.2f} "
        f"(x{wall / bare_wall:.0f}) |"
    )
    print(
        json.dumps(
            {"lost": expected - len(set(stored)), "duplicated": len(stored) - len(set(stored))}
        )
    )


if __name__ == "__main__":
    main()
