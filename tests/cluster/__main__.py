"""``python -m cluster up [--dir D]`` / ``python -m cluster down [--dir D]`` (run from tests/):
a real control plane and two process nodes on loopback, left running; ``up`` prints the
``export KUBECONFIG=...`` line of its admin identity. ``make cluster`` / ``make cluster-down``."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from . import ControlPlane, up

DEFAULT_DIR = Path(__file__).resolve().parents[2] / ".cluster"
#: The images the nodes know: this interpreter has jupyter-cloudml installed.
IMAGES = ("jupyter-cloudml/trainer:latest", "jupyter-cloudml/serving:latest")


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
    cluster = up(workdir, {image: sys.executable for image in IMAGES})
    nodes = ", ".join(cluster.nodes)
    print(f"# kube-apiserver {cluster.state.apiserver_url}, nodes {nodes}; logs in {cluster.logs}")
    print(f"export KUBECONFIG={cluster.admin_kubeconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
