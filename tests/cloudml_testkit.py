"""Small helpers shared by test modules (`pythonpath = ["tests"]` puts this folder on sys.path)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

#: The repository's root folder, wherever under tests/ a test module lives.
REPO = Path(__file__).resolve().parent.parent

#: Images the test cluster's nodes know (each stands for a local interpreter), and its GPUs.
TRAINER_IMAGE = "jupyter-cloudml/trainer:latest"
SERVING_IMAGE = "jupyter-cloudml/serving:latest"
GPU_PRODUCT = "NVIDIA-A100-SXM4-80GB"


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll `predicate` every 10 ms until it holds; fail the test after `timeout` seconds."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        pause.wait(0.01)
    raise AssertionError("condition not reached in time")


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Wait until process `pid` has exited (or is a zombie nobody reaped yet)."""
    import psutil

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_for(gone, timeout)
