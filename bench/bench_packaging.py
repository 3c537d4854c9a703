"""Benchmark ``package_cell`` against plain tar+gzip of the same folder (a script, not a test).

Builds a notebook folder holding N MB of realistic Python modules (text of the interpreter's
own standard library, renamed): a package of many modules plus a chain of top-level modules
importing each other, all imported by the cell. Prints a markdown table with the median time
of ``package_cell``, its cost per MB (target: <= 50 ms/MB), and its ratio to ``tarfile`` with
gzip at the default level, ``tarfile`` at level 1, and ``shutil.make_archive``.

    .venv/bin/python bench/bench_packaging.py [--sizes 1 5 20] [--runs 5] [--smoke]
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from jupyter_cloudml.packaging import package_cell

CHAIN = 10
CELL = "import benchlib\nimport bench_chain_0\nmodel = benchlib.__name__\n"
TARGET_MS_PER_MB = 50.0


def stdlib_sources() -> Iterator[bytes]:
    """Python source texts from the standard library, cycled forever."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts)
    while True:
        for path in paths:
            try:
                yield path.read_bytes()
            except OSError:
                continue


def build_source(root: Path, megabytes: float) -> int:
    """Fill ``root`` with ~``megabytes`` of modules the cell imports; returns the bytes written."""
    budget = int(megabytes * 1_000_000)
    written = 0
    sources = stdlib_sources()
    package = root / "benchlib"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Benchmark package."""\n')
    for i in range(CHAIN):
        text = next(sources)
        follow = f"import bench_chain_{i + 1}\n" if i + 1 < CHAIN else ""
        (root / f"bench_chain_{i}.py").write_bytes(follow.encode() + text)
        written += len(text)
    index = 0
    while written < budget:
        text = next(sources)
        (package / f"m{index:05d}.py").write_bytes(text)
        written += len(text)
        index += 1
    (root / "notes.md").write_text("not imported, not shipped\n")
    return written


def median_ms(action: Callable[[], object], runs: int) -> float:
    """Median wall time of ``action`` in milliseconds, after one warm-up run."""
    action()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def tar_folder(root: Path, level: int | None) -> bytes:
    """The floor: the folder as a gzip'd tar in memory with ``tarfile`` (default level 9)."""
    buffer = io.BytesIO()
    options = {} if level is None else {"compresslevel": level}
    with tarfile.open(fileobj=buffer, mode="w:gz", **options) as tar:  # type: ignore[call-overload]
        tar.add(root, arcname=".")
    return buffer.getvalue()


def make_archive(root: Path, out: Path) -> None:
    shutil.make_archive(str(out / "pkg"), "gztar", root_dir=root)


def bench(megabytes: float, runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp, "src"), Path(tmp, "out")
        out.mkdir()
        build_source(root, megabytes)
        package = package_cell(CELL, source_dir=root)
        shipped = sum(len(p.read_bytes()) for p in root.rglob("*.py")) / 1e6
        ours = median_ms(lambda: package_cell(CELL, source_dir=root), runs)
        return {
            "mb": shipped,
            "files": len(package.files),
            "archive_mb": len(package.archive) / 1e6,
            "ours": ours,
            "tar9": median_ms(lambda: tar_folder(root, None), runs),
            "tar1": median_ms(lambda: tar_folder(root, 1), runs),
            "make_archive": median_ms(lambda: make_archive(root, out), runs),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 5, 20])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    if args.smoke:
        args.sizes, args.runs = [0.2], 1
    print(
        "| MB shipped | files | archive MB | package_cell median ms | ms per MB "
        "| tarfile gz (default 9) ms | ratio | tarfile gz level 1 ms | ratio "
        "| shutil.make_archive ms | ratio |"
    )
    print("|" + "---:|" * 11)
    for size in args.sizes:
        r = bench(size, args.runs)
        print(
            f"| {r['mb']:.1f} | {r['files']:.0f} | {r['archive_mb']:.2f} | {r['ours']:.1f} "
            f"| {r['ours'] / r['mb']:.1f} "
            f"| {r['tar9']:.1f} | {r['ours'] / r['tar9']:.2f} "
            f"| {r['tar1']:.1f} | {r['ours'] / r['tar1']:.2f} "
            f"| {r['make_archive']:.1f} | {r['ours'] / r['make_archive']:.2f} |"
        )
    print(f"\ntarget: <= {TARGET_MS_PER_MB:.0f} ms per MB; ratio = package_cell time / other time")


if __name__ == "__main__":
    main()
