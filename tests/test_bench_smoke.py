"""Benchmarks keep running: every ``bench/bench_*.py`` in its smoke mode (tiny sizes), as a
subprocess, must exit 0 and print well-formed markdown tables. No figure is asserted."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def needs_control_plane(path: Path) -> bool:
    """A benchmark that starts Kubernetes' own control plane (``tests/cluster``)."""
    return "from cluster import" in path.read_text()


BENCHMARKS = [
    pytest.param(
        path,
        id=path.stem,
        marks=(pytest.mark.controlplane,) if needs_control_plane(path) else (),
    )
    for path in sorted(BENCH.glob("bench_*.py"))
]


def tables(stdout: str) -> list[list[str]]:
    """The markdown tables of ``stdout``: runs of consecutive lines starting with ``|``."""
    found: list[list[str]] = []
    previous = ""
    for line in stdout.splitlines():
        if line.startswith("|"):
            if previous.startswith("|"):
                found[-1].append(line)
            else:
                found.append([line])
        previous = line
    return found


def run_smoke(path: Path, timeout: float) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``path --smoke``; on a timeout it is interrupted (so
    it stops what it started) and the test fails."""
    proc = subprocess.Popen(
        [sys.executable, str(path), "--smoke"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"{path.name} --smoke took over {timeout:.0f} s:\n{err[-3000:]}")
    return proc.returncode, out, err


@pytest.mark.slow
@pytest.mark.parametrize("path", BENCHMARKS)
def test_benchmark_runs_in_smoke_mode_and_prints_its_tables(path: Path):
    code, out, err = run_smoke(path, timeout=180)
    assert code == 0, err[-3000:]
    found = tables(out)
    assert found, f"no markdown table in the output:\n{out[-3000:]}"
    for table in found:
        header, *rows = table
        assert rows and set(rows[0]) <= set("|-: "), f"no separator under the header:\n{table}"
        assert rows[1:], f"a table without rows:\n{table}"
        widths = {row.count("|") for row in table}
        assert widths == {header.count("|")}, f"rows with other column counts:\n{table}"
