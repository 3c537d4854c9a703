"""``python -m cluster.node --name N --kubeconfig K ...``: run one node agent until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
from pathlib import Path

from . import __doc__ as DOC
from .agent import NodeAgent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=DOC.split("\n\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--dns-kubeconfig", default="")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--port", type=int, required=True, help="the log endpoint's port")
    parser.add_argument("--serving-cert", required=True)
    parser.add_argument("--serving-key", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--apiserver-port", type=int, required=True)
    parser.add_argument("--images", required=True, help="a JSON file: image -> interpreter")
    parser.add_argument("--cpu", default="16")
    parser.add_argument("--memory", default="64Gi")
    parser.add_argument("--gpus", type=int, default=0)
    parser.add_argument("--gpu-product", default="NVIDIA-A100-SXM4-80GB")
    parser.add_argument("--taint", action="append", default=[], help="key=value:Effect")
    parser.add_argument("--ip-block", type=int, default=10, help="pod IPs are 127.<block>.x.y")
    parser.add_argument("--grace-cap", type=float, default=5.0)
    parser.add_argument(
        "--service-proxy", action="store_true", help="proxy ClusterIP Services (one node only)"
    )
    parser.add_argument("--kubelet-version", default="v1.37.2")
    args = parser.parse_args(argv)
    ipaddress.ip_address(f"127.{args.ip_block}.0.1")  # a valid block
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    asyncio.run(NodeAgent(args).run())


if __name__ == "__main__":
    main()
