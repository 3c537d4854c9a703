"""Cell executed -> user code running, through a real Jupyter kernel.

For each run, the time from sending the `%%cloudml_train` cell to the kernel until the cell's
first statement runs in the replica (it writes time.time() to a file), beside the floor: the same
code started by a bare `subprocess.Popen` from the same kernel. Prints a markdown table.
Run: .venv/bin/python bench/bench_submit_latency.py [--runs 15] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import start_new_kernel

PROBE = "import time; open({path!r}, 'w').write(repr(time.time()))"


def run_cell(client, code: str) -> None:
    reply = client.execute_interactive(code, timeout=60, output_hook=lambda msg: None)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"cell failed: {reply['content']}")


def measure(client, make_cell, folder: Path, runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        path = folder / f"probe-{time.monotonic_ns()}-{i}"
        cell = make_cell(PROBE.format(path=str(path)))
        t0 = time.time()
        client.execute(cell)
        deadline = time.monotonic() + 60
        while not (path.exists() and path.read_text()):
            if time.monotonic() > deadline:
                raise TimeoutError(cell)
            time.sleep(0.002)
        samples.append(float(path.read_text()) - t0)
        time.sleep(0.3)  # let the job finish so runs do not queue behind each other
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    if args.smoke:
        args.runs = 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = dict(os.environ, CLOUDML_HOME=str(folder / "home"))
        km, kc = start_new_kernel(kernel_name="python3", cwd=tmp, env=env)
        try:
            run_cell(kc, "%load_ext jupyter_cloudml\nimport subprocess, sys")
            run_cell(kc, "%%cloudml_train --name warmup\npass")  # first-import costs
            ours = measure(
                kc, lambda code: f"%%cloudml_train --name latency\n{code}", folder, args.runs
            )
            floor = measure(
                kc,
                lambda code: f"subprocess.Popen([sys.executable, '-c', {code!r}])",
                folder,
                args.runs,
            )
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    med, fmed = statistics.median(ours), statistics.median(floor)
    print("| cell executed -> user code running | median (s) | p90 (s) | ratio to floor |")
    print("| --- | --- | --- | --- |")
    q = statistics.quantiles
    print(
        f"| `%%cloudml_train` (local backend) | {med:.3f} | {q(ours, n=10)[-1]:.3f} | "
        f"x{med / fmed:.1f} |"
    )
    print(f"| bare `subprocess.Popen`, the floor | {fmed:.3f} | {q(floor, n=10)[-1]:.3f} | x1.0 |")
    print(f"(runs: {args.runs}; target: median <= 0.6 s)")


if __name__ == "__main__":
    main()
