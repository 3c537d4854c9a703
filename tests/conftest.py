"""Shared fixtures: every test gets its own CLOUDML_HOME and Jupyter dirs."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point every Jupyter and cloudml location at a temp dir."""
    home = tmp_path / "cloudml-home"
    monkeypatch.setenv("CLOUDML_HOME", str(home))
    for var, sub in [
        ("JUPYTER_CONFIG_DIR", "jupyter-config"),
        ("JUPYTER_DATA_DIR", "jupyter-data"),
        ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
        ("IPYTHONDIR", "ipython"),
    ]:
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("CLOUDML_BACKEND", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    yield home
    # The home's keeper, TensorBoards and endpoints outlive their starter by design; a test's
    # must not outlive the test (the keeper first: it would bring endpoints back).
    from jupyter_cloudml.backends.local.keeper import stop_keeper

    if home.is_dir():
        stop_keeper(home)
    from jupyter_cloudml.backends.local.tensorboards import LocalTensorBoards

    boards = LocalTensorBoards(home / "tensorboards")
    for board in boards.list():
        boards.stop(board.id)
    # Deployments too: their endpoint processes are detached.
    from jupyter_cloudml.backends.local.deployments import LocalDeployments

    endpoints = LocalDeployments(home / "deployments", serving_python=lambda: sys.executable)
    for desired in sorted((home / "deployments").glob("*/desired.json")):
        endpoints.undeploy(desired.parent.name)


@pytest.fixture
def backend(isolated_home: Path):
    """A LocalBackend with short retry backoff and cancel grace, for fast tests."""
    from jupyter_cloudml.backends.local import LocalBackend

    return LocalBackend(
        home=str(isolated_home), retry_backoff_seconds=0.1, cancel_grace_seconds=2.0
    )


@pytest.fixture
def make_spec(tmp_path: Path):
    """Build a TrainSpec from cell source (dedented) plus TrainSpec fields."""
    from jupyter_cloudml.models import TrainSpec
    from jupyter_cloudml.packaging import package_cell

    src = tmp_path / "notebook"
    src.mkdir(exist_ok=True)

    def make(code: str, name: str = "test", returns: tuple[str, ...] = (), **fields):
        package = package_cell(textwrap.dedent(code), source_dir=src, returns=returns)
        return TrainSpec(name=name, package=package, returns=returns, **fields)

    make.source_dir = src  # type: ignore[attr-defined]
    return make


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """IPython with the extension loaded and a fresh Client on this test's CLOUDML_HOME.

    The shell and its magics are process-wide singletons: each test gets a new Client.
    """
    from IPython.core.interactiveshell import InteractiveShell

    from jupyter_cloudml.client import Client

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_cloudml")
    shell.magics_manager.registry["CloudMLMagics"].client = Client()
    monkeypatch.chdir(tmp_path)
    return shell


@pytest.fixture(scope="session")
def serving_python() -> str:
    """The model servers' interpreter, made once (kserve layered over this environment)."""
    from jupyter_cloudml.serving.env import create_serving_env

    return create_serving_env(Path(__file__).resolve().parent.parent / ".venv-serving")


#: A kubeconfig of a cluster of one's own: the `realcluster` tests run there instead.
EXTERNAL_KUBECONFIG = os.environ.get("CLOUDML_TEST_KUBECONFIG", "")


def pytest_collection_modifyitems(config, items):
    """On a cluster of one's own, tests marked `controlplane` (they restart components, kill a
    node agent, read the audit log or resolve Services from here) are skipped."""
    if not EXTERNAL_KUBECONFIG:
        return
    skip = pytest.mark.skip(
        reason="needs the built-in control plane (unset CLOUDML_TEST_KUBECONFIG)"
    )
    for item in items:
        if "controlplane" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory, serving_python: str):
    """Kubernetes' own control plane (etcd, kube-apiserver, kube-controller-manager,
    kube-scheduler; built or reused by tests/cluster/build.sh) with two process nodes: ``node-0``
    and ``gpu-node-0`` (2 ``nvidia.com/gpu``, tainted), once per session; or, with
    ``$CLOUDML_TEST_KUBECONFIG``, that cluster (its trainer image: ``$CLOUDML_IMAGE``)."""
    from cloudml_testkit import GPU_PRODUCT, SERVING_IMAGE, TRAINER_IMAGE
    from cluster import Cluster

    if EXTERNAL_KUBECONFIG:
        from cluster.external import ExternalCluster

        external = ExternalCluster(Path(EXTERNAL_KUBECONFIG))
        yield external
        external.stop()
        return

    images = {TRAINER_IMAGE: sys.executable, SERVING_IMAGE: serving_python}
    with Cluster(tmp_path_factory.mktemp("kube"), images) as cluster:
        cluster.add_node("node-0")
        cluster.add_node(
            "gpu-node-0", gpus=2, gpu_product=GPU_PRODUCT,
            taints=("nvidia.com/gpu=present:NoSchedule",),
        )  # fmt: skip
        yield cluster


@pytest.fixture
def tenant(kube, tmp_path: Path):
    """A tenant namespace on the real control plane, set up as the hub sets one up (see
    ``k8s_testkit.make_tenant``); deleted afterwards."""
    from k8s_testkit import make_tenant

    # on a cluster of one's own, a folder its nodes mount at the same path (kind's extraMounts)
    shared = Path(os.environ.get("CLOUDML_TEST_SHARED_DIR") or tmp_path) / f"shared-{os.getpid()}"
    tenant = make_tenant(kube, shared / tmp_path.name)
    yield tenant
    kube.request("DELETE", f"/api/v1/namespaces/{tenant.namespace}")
