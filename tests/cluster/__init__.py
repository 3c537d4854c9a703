"""A real Kubernetes control plane for the tests, built from Kubernetes' own Go modules
(``build.sh``, started by ``control_plane.py``), with process nodes (``node/``) that run pods as
local processes; ``faults.py`` injects what a real server cannot produce on demand, ``kserve.py``
installs KServe's CRD, ``external.py`` stands a cluster of one's own in for it.

Usage::

    with Cluster(tmp_path, images={IMAGE: sys.executable}) as cluster:
        cluster.add_node("node-0", gpus=2)
        kubeconfig = cluster.service_account_kubeconfig("team-a", "cloudml-notebook")
        ...

``cluster.admin_kubeconfig`` is an admin identity (for the harness, never for the code under
test); ``service_account_kubeconfig`` is a ServiceAccount's bound token, judged by RBAC like a
pod's. ``python -m cluster up|down`` does the same from a shell (``make cluster``).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jupyter_cloudml

from .admin import AdminClient, ClusterError
from .control_plane import ControlPlane, free_port

HERE = Path(__file__).resolve().parent
#: The checkout under test (a worktree when run from one): the images' `jupyter_cloudml`.
_CODE_UNDER_TEST = Path(jupyter_cloudml.__file__).resolve().parent.parent
Obj = dict[str, Any]

#: Lets the node agents read Services and Pods cluster-wide for pod DNS, as CoreDNS's may.
DNS_ROLE: Obj = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "cloudml-test:cluster-dns"},
    "rules": [
        {"apiGroups": [""], "resources": ["services", "pods"], "verbs": ["list", "watch"]},
    ],
}
DNS_USER = "cloudml-test:cluster-dns"


class Cluster(ControlPlane, AdminClient):
    """The control plane plus process nodes and the helpers tests use as the admin."""

    audited = True
    controlplane = True

    def __init__(
        self, workdir: Path, images: dict[str, str] | None = None, bin_dir: Path | None = None
    ) -> None:
        super().__init__(Path(workdir), bin_dir)
        self.images = dict(images or {})
        self.nodes: dict[str, subprocess.Popen[bytes]] = {}
        self._node_args: dict[str, list[str]] = {}
        self._ip_blocks = 10

    @property
    def server_url(self) -> str:
        return self.state.apiserver_url

    @property
    def ca_file(self) -> Path:
        assert self.ca is not None
        return self.ca.cert

    def start(self) -> None:
        super().start()
        self.apply(DNS_ROLE)
        self.apply(_cluster_role_binding(DNS_ROLE["metadata"]["name"], DNS_USER))

    # --- nodes -----------------------------------------------------------------------------

    def add_node(
        self,
        name: str = "node-0",
        *,
        cpu: str = "16",
        memory: str = "64Gi",
        gpus: int = 0,
        gpu_product: str = "NVIDIA-A100-SXM4-80GB",
        taints: tuple[str, ...] = (),
        wait: bool = True,
    ) -> None:
        """Start a node agent for ``name`` and wait until its Node is Ready."""
        assert self.ca is not None
        kubeconfig = self.node_kubeconfig(name)
        serving = self.node_serving_cert(name)
        dns = self.ca.issue("cluster-dns", DNS_USER)
        from .control_plane import kubeconfig as write_kubeconfig

        dns_kubeconfig = write_kubeconfig(
            self.workdir / "cluster-dns.kubeconfig",
            self.state.apiserver_url,
            self.ca.cert,
            dns,
            "cluster-dns",
        )
        images = self.workdir / "images.json"
        images.write_text(json.dumps(self.images))
        self._ip_blocks += 1
        args = [
            "-m",
            "cluster.node",
            f"--name={name}",
            f"--kubeconfig={kubeconfig}",
            f"--dns-kubeconfig={dns_kubeconfig}",
            f"--workdir={self.workdir / 'nodes' / name}",
            f"--port={free_port()}",
            f"--serving-cert={serving.cert}",
            f"--serving-key={serving.key}",
            f"--ca={self.ca.cert}",
            f"--apiserver-port={self.apiserver_port}",
            f"--images={images}",
            f"--cpu={cpu}",
            f"--memory={memory}",
            f"--gpus={gpus}",
            f"--gpu-product={gpu_product}",
            f"--ip-block={self._ip_blocks}",
            *(["--service-proxy"] if not self._node_args else []),
            *[f"--taint={t}" for t in taints],
        ]
        self._node_args[name] = args
        self.start_node(name, wait=wait)

    def start_node(self, name: str, wait: bool = True) -> None:
        """(Re)start the agent of a node added before."""
        self.nodes[name] = self._spawn_python(f"node-{name}", self._node_args[name])
        if wait:
            self._wait(lambda: self.node_ready(name), f"node {name}", 60)

    def _spawn_python(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        """Run ``python ARGS`` (a module of this package) as a process of the cluster."""
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        path = os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))
        proc = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={
                **os.environ,
                "PYTHONPATH": path,
                "CLOUDML_TEST_IMAGE_CODE": str(_CODE_UNDER_TEST),
            },
            cwd=self.workdir,
        )
        log.close()
        self.register(name, proc)
        return proc

    def node_ready(self, name: str) -> bool:
        try:
            node = self.get(f"/api/v1/nodes/{name}")
        except urllib.error.HTTPError:
            return False
        conditions = (node.get("status") or {}).get("conditions") or []
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        taints = [t["key"] for t in node.get("spec", {}).get("taints") or []]
        return ready and not any(t.startswith("node.kubernetes.io/") for t in taints)

    def install_kserve(self, ready_delay: float = 0.2) -> None:
        """KServe's InferenceService CRD, and the stand-in for its controller (``kserve.py``)."""
        import yaml

        from . import kserve

        assert self.bin_dir is not None and self.ca is not None
        crd = yaml.safe_load((self.bin_dir / kserve.CRD_FILE).read_text())
        self.apply(crd)

        def established() -> bool:
            found = self.get_object("customresourcedefinitions", crd["metadata"]["name"]) or {}
            conditions = (found.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

        self._wait(established, "the InferenceService CRD", 30)
        self.apply(kserve.ROLE)
        self.apply(_cluster_role_binding(kserve.USER, kserve.USER))
        from .control_plane import kubeconfig as write_kubeconfig

        pair = self.ca.issue("kserve-controller", kserve.USER)
        config = write_kubeconfig(
            self.workdir / "kserve.kubeconfig",
            self.state.apiserver_url,
            self.ca.cert,
            pair,
            "kserve",
        )
        self._spawn_python(
            "kserve-controller",
            ["-m", "cluster.kserve", f"--kubeconfig={config}", f"--ready-delay={ready_delay}"],
        )

    # --- admin requests --------------------------------------------------------------------

    def request(self, method: str, path: str, body: Obj | None = None, **query: Any) -> Obj:
        """One request as the admin; ``ClusterError`` on a refusal."""
        url = self.state.apiserver_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        content = "application/merge-patch+json" if method == "PATCH" else "application/json"
        request = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": content}
        )
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.ssl_context()) as r:
                answer: Obj = json.loads(r.read() or b"{}")
                return answer
        except urllib.error.HTTPError as exc:
            text = exc.read()
            try:
                decoded = json.loads(text)
            except ValueError:
                decoded = {"message": text.decode(errors="replace")}
            raise ClusterError(exc.code, decoded) from None

    def service_hosts(self) -> dict[str, str]:
        """Cluster DNS names -> loopback addresses, as the nodes' pods resolve them now."""
        first = next(iter(self._node_args), None)
        path = self.workdir / "nodes" / str(first) / "cluster-hosts"
        names: dict[str, str] = {}
        if first is not None and path.exists():
            for line in path.read_text().splitlines():
                address, *aliases = line.split()
                for alias in aliases:
                    names.setdefault(alias, address)
        return names

    @contextlib.contextmanager
    def resolving_services(self) -> Iterator[None]:
        """In this process, ``*.svc`` names resolve as in a pod (a notebook server's view)."""
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(host, str) and (host.endswith(".svc") or ".svc." in host):
                host = self.service_hosts().get(host, host)
            return real(host, *args, **kwargs)

        socket.getaddrinfo = getaddrinfo
        try:
            yield
        finally:
            socket.getaddrinfo = real

    def pod_log(self, namespace: str, pod: str, **query: Any) -> str:
        """A pod's log as the API server serves it (``pods/log``, from the node agent)."""
        url = f"{self.server_url}/api/v1/namespaces/{namespace}/pods/{pod}/log"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=120, context=self.ssl_context()) as response:
            return str(response.read().decode())

    def audit_events(self) -> list[Obj]:
        """Every audited request so far (the API server's audit log, JSON lines)."""
        if not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line]


def _cluster_role_binding(role: str, user: str) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }


def up(workdir: Path, images: dict[str, str], gpus: int = 2) -> Cluster:
    """Start a control plane and two nodes (one with GPUs) in ``workdir``, detached."""
    cluster = Cluster(workdir, images)
    try:
        cluster.start()
        cluster.add_node("node-0")
        cluster.add_node("gpu-node-0", gpus=gpus, taints=("nvidia.com/gpu=present:NoSchedule",))
    except BaseException:
        cluster.stop()
        raise
    return cluster


__all__ = ["Cluster", "ClusterError", "ControlPlane", "up"]
