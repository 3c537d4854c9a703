"""``python -m cluster up [--dir D]`` / ``python -m cluster down [--dir D]`` (run from tests/):
a real control plane and two process nodes on loopback, left running; ``up`` prints the
``export KUBECONFIG=...`` line of its admin identity. ``make cluster`` / ``make cluster-down``."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from . import ControlPlane, up

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / ".cluster"
#: The model servers' interpreter (`make run` / `make pytest` make it): kserve over this one.
SERVING_PYTHON = ROOT / ".venv-serving" / "bin" / "python"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster", description=__doc__)
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="state folder (.cluster)")
    args = parser.parse_args()
    workdir = args.dir.resolve()
    if args.action == "down":
        if not (workdir / "state.json").exists():
            print(f"no cluster in {workdir}")
            return 0
        stopped = ControlPlane.stop_folder(workdir)
        print(f"stopped {', '.join(stopped) or 'nothing'}; state kept in {workdir}")
        return 0
    if (workdir / "state.json").exists():
        ControlPlane.stop_folder(workdir)
        shutil.rmtree(workdir)
    serving = SERVING_PYTHON if SERVING_PYTHON.exists() else Path(sys.executable)
    images = {
        "jupyter-cloudml/trainer:latest": sys.executable,  # has jupyter-cloudml installed
        "jupyter-cloudml/serving:latest": str(serving),
    }
    cluster = up(workdir, images)
    nodes = ", ".join(cluster.nodes)
    print(f"# kube-apiserver {cluster.state.apiserver_url}, nodes {nodes}; logs in {cluster.logs}")
    print(f"export KUBECONFIG={cluster.admin_kubeconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
