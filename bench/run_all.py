"""Run every benchmark of this folder (``bench_*.py``), one after the other, and print their
tables.

Benchmarks are not tests: timings on a shared 2-core machine vary. Each prints a markdown
table that compares us with a reference measured in the same run (as ratios).
Run: .venv/bin/python bench/run_all.py [--smoke]  (``--smoke``: each with tiny sizes)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks they still run")
    args = parser.parse_args()
    failed = []
    for path in sorted(HERE.glob("bench_*.py")):
        print(f"\n## {path.name}\n", flush=True)
        flags = ["--smoke"] if args.smoke else []
        if subprocess.call([sys.executable, str(path), *flags]) != 0:
            failed.append(path.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
