"""Benchmarks keep running: the control-plane benchmark in its smoke mode (tiny sizes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.slow
def test_control_plane_benchmark_runs_and_prints_its_table():
    out = subprocess.run(
        [sys.executable, str(BENCH / "bench_control_plane.py"), "--smoke"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert any("API requests per submission, distributed" in row for row in rows)
    assert any("submit -> first pod Running" in row for row in rows)
