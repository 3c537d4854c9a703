"""Kubernetes' own control plane on loopback: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler built by ``tests/cluster/build.sh``, started as processes the way a test control
plane is (envtest, ``hack/local-up-cluster.sh``): a self-made CA, serving and client
certificates, a service-account signing key, Node and RBAC authorization, the admission plugins
a production cluster enables, and an audit log of every request.

Nothing listens beyond 127.0.0.1; Service ClusterIPs are numbers in etcd that nothing connects
to. Every process is recorded with its PID in ``state.json`` and stopped by it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .pki import APISERVER_NAMES, LOOPBACK, CertificateAuthority, KeyPair, service_account_keys

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"
SERVICE_CIDR = "10.96.0.0/16"
ADMISSION_PLUGINS = (
    "NamespaceLifecycle,LimitRanger,ServiceAccount,NodeRestriction,TaintNodesByCondition,"
    "PodSecurity,Priority,DefaultTolerationSeconds,DefaultStorageClass,"
    "StorageObjectInUseProtection,PersistentVolumeClaimResize,RuntimeClass,"
    "CertificateApproval,CertificateSigning,ClusterTrustBundleAttest,"
    "CertificateSubjectRestriction,DefaultIngressClass,OwnerReferencesPermissionEnforcement,"
    "MutatingAdmissionPolicy,MutatingAdmissionWebhook,ValidatingAdmissionPolicy,"
    "ValidatingAdmissionWebhook,ResourceQuota"
)
CONTROLLERS = ",".join(
    f"{name}-controller"
    for name in (
        "job",
        "ttl-after-finished",
        "garbage-collector",
        "replicaset",
        "deployment",
        "resourcequota",
        "namespace",
        "serviceaccount",
        "serviceaccount-token",
        "endpointslice",
        "node-lifecycle",
        "taint-eviction",
        "pod-garbage-collector",
        "root-ca-certificate-publisher",
        "clusterrole-aggregation",
        "persistentvolume-binder",
        "persistentvolume-protection",
        "persistentvolumeclaim-protection",
        "ttl",
    )
)
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  resources: [{group: coordination.k8s.io, resources: [leases]}]
- level: Metadata
"""


def binaries() -> Path:
    """The folder with the four binaries: built by ``build.sh`` (or reused from its cache)."""
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    return Path(out.strip().splitlines()[-1])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class State:
    """What a running control plane is: its folder, addresses and processes (by PID)."""

    workdir: str
    apiserver_url: str = ""
    etcd_url: str = ""
    pids: dict[str, int] = field(default_factory=dict)

    def save(self) -> None:
        path = Path(self.workdir) / "state.json"
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, workdir: Path) -> State:
        return cls(**json.loads((workdir / "state.json").read_text()))


def kubeconfig(path: Path, server: str, ca: Path, user: KeyPair, name: str) -> Path:
    """A kubeconfig for a certificate identity."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "test", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [
            {
                "name": name,
                "user": {"client-certificate": str(user.cert), "client-key": str(user.key)},
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": "test", "user": name}}],
        "current-context": name,
    }
    path.write_text(json.dumps(doc, indent=1))
    path.chmod(0o600)
    return path


class ControlPlane:
    """etcd + the API server + the controller manager + the scheduler in ``workdir``.

    ``start()`` returns when the API server is ready and the controllers have made the default
    namespace's ServiceAccount; ``stop()`` ends every process by its PID. Use as a context
    manager, or ``start()`` / ``ControlPlane.stop_folder(workdir)`` across processes.
    """

    def __init__(self, workdir: Path, bin_dir: Path | None = None) -> None:
        self.workdir = Path(workdir)
        self.bin_dir = bin_dir
        self.pki = self.workdir / "pki"
        self.logs = self.workdir / "logs"
        self.state = State(str(self.workdir))
        self.ca: CertificateAuthority | None = None
        self.admin_kubeconfig = self.workdir / "admin.kubeconfig"
        self.audit_log = self.logs / "audit.log"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.apiserver_port = 0

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Certificates, then etcd, the API server, the controller manager and the scheduler."""
        bin_dir = self.bin_dir or binaries()
        self.bin_dir = bin_dir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self._certificates()
        self.start_etcd()
        self.start_apiserver()
        self._start_controllers()
        self.wait_for_default_service_account()

    def _certificates(self) -> None:
        ca = self.ca = CertificateAuthority(self.pki)
        self.serving = ca.issue(
            "apiserver", "kube-apiserver", dns=APISERVER_NAMES, ips=(LOOPBACK,), server=True
        )
        self.kubelet_client = ca.issue(
            "apiserver-kubelet-client", "kube-apiserver-kubelet-client", groups=("system:masters",)
        )
        self.sa_keys = service_account_keys(self.pki)
        self.apiserver_port = free_port()
        url = self.state.apiserver_url = f"https://127.0.0.1:{self.apiserver_port}"
        admin = ca.issue("admin", "cloudml-test-admin", groups=("system:masters",))
        kubeconfig(self.admin_kubeconfig, url, ca.cert, admin, "admin")
        for component in ("kube-controller-manager", "kube-scheduler"):
            pair = ca.issue(component, f"system:{component}")
            kubeconfig(self.workdir / f"{component}.kubeconfig", url, ca.cert, pair, component)
        (self.workdir / "audit-policy.yaml").write_text(AUDIT_POLICY)

    def node_kubeconfig(self, node: str) -> Path:
        """A kubeconfig for the node agent of ``node`` (``system:node:<node>``)."""
        assert self.ca is not None
        pair = self.ca.issue(f"node-{node}", f"system:node:{node}", groups=("system:nodes",))
        path = self.workdir / f"node-{node}.kubeconfig"
        return kubeconfig(path, self.state.apiserver_url, self.ca.cert, pair, f"node-{node}")

    def node_serving_cert(self, node: str) -> KeyPair:
        """The node agent's serving certificate (the API server calls it for pod logs)."""
        assert self.ca is not None
        return self.ca.issue(f"kubelet-{node}", node, dns=(node,), ips=(LOOPBACK,), server=True)

    def start_etcd(self) -> None:
        """etcd on loopback (data kept across restarts of etcd alone)."""
        assert self.bin_dir is not None
        if not self.state.etcd_url:
            client, peer = free_port(), free_port()
            self.state.etcd_url = f"http://127.0.0.1:{client}"
            self._etcd_peer = f"http://127.0.0.1:{peer}"
        self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=default",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.state.etcd_url}",
                f"--advertise-client-urls={self.state.etcd_url}",
                f"--listen-peer-urls={self._etcd_peer}",
                f"--initial-advertise-peer-urls={self._etcd_peer}",
                f"--initial-cluster=default={self._etcd_peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        self._wait(lambda: self._http_ok(self.state.etcd_url + "/health"), "etcd", 30)

    def start_apiserver(self) -> None:
        """The API server (again, after ``kill("kube-apiserver")``: same port and keys)."""
        assert self.bin_dir is not None and self.ca is not None
        self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers={self.state.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--cert-dir={self.pki}",
                f"--tls-cert-file={self.serving.cert}",
                f"--tls-private-key-file={self.serving.key}",
                f"--client-ca-file={self.ca.cert}",
                f"--service-account-key-file={self.sa_keys.cert}",
                f"--service-account-signing-key-file={self.sa_keys.key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--api-audiences=https://kubernetes.default.svc.cluster.local",
                "--authorization-mode=Node,RBAC",
                f"--enable-admission-plugins={ADMISSION_PLUGINS}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--endpoint-reconciler-type=none",  # its Endpoints would name a loopback IP
                f"--kubelet-client-certificate={self.kubelet_client.cert}",
                f"--kubelet-client-key={self.kubelet_client.key}",
                f"--kubelet-certificate-authority={self.ca.cert}",
                "--kubelet-preferred-address-types=InternalIP",
                "--allow-privileged=true",
                f"--audit-policy-file={self.workdir / 'audit-policy.yaml'}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--profiling=false",
                "--v=0",
            ],
        )
        self.wait_ready()

    def _start_controllers(self) -> None:
        assert self.ca is not None
        self._spawn(
            "kube-controller-manager",
            [
                *self._component("kube-controller-manager"),
                f"--service-account-private-key-file={self.sa_keys.key}",
                f"--root-ca-file={self.ca.cert}",
                "--use-service-account-credentials=true",
                f"--controllers={CONTROLLERS}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--node-monitor-grace-period=20s",
            ],
        )
        self._spawn("kube-scheduler", self._component("kube-scheduler"))

    def _component(self, name: str) -> list[str]:
        """A control-plane component's command: its binary, its own kubeconfig (also to check
        the requests it serves), its health port on loopback, no leader election."""
        assert self.bin_dir is not None
        config = self.workdir / f"{name}.kubeconfig"
        return [
            str(self.bin_dir / name),
            f"--kubeconfig={config}",
            f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            f"--cert-dir={self.workdir / (name + '-certs')}",
            "--leader-elect=false",
            "--v=0",
        ]

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to one component and wait for it to end (a fault to inject)."""
        proc = self.procs.pop(name, None)
        self.state.pids.pop(name, None)
        self.state.save()
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            proc.wait(30)

    def stop(self) -> None:
        """End every process by its PID: clients first, then the API server, then etcd."""
        stop_pids(self.state.pids)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)  # reaped
        self.procs.clear()
        self.state.pids.clear()
        if Path(self.workdir).is_dir():
            self.state.save()

    @staticmethod
    def stop_folder(workdir: Path) -> list[str]:
        """Stop the processes a control plane (and its nodes) recorded in ``workdir``."""
        state = State.load(workdir)
        stopped = stop_pids(state.pids)
        state.pids.clear()
        state.save()
        return stopped

    # --- helpers ---------------------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=self.workdir,
        )
        log.close()
        self.procs[name] = proc
        self.state.pids[name] = proc.pid
        self.state.save()

    def register(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        """Record another process (a node agent) to be stopped with the control plane."""
        self.procs[name] = proc
        self.state.pids[name] = proc.pid
        self.state.save()

    def _check_alive(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None:
            tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def _wait(self, ready: Callable[[], object], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in self.procs:
                self._check_alive(name)
            if ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"{what} not ready after {timeout:g} s (logs in {self.logs})")

    def ssl_context(self) -> ssl.SSLContext:
        """TLS as the admin: trusts the CA, presents the admin certificate."""
        assert self.ca is not None
        ctx = ssl.create_default_context(cafile=str(self.ca.cert))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def _http_ok(self, url: str, ctx: ssl.SSLContext | None = None) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def get(self, path: str) -> dict[str, Any]:
        """GET an API path as the admin (for readiness checks and tests)."""
        url = self.state.apiserver_url + path
        with urllib.request.urlopen(url, timeout=10, context=self.ssl_context()) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def wait_ready(self, timeout: float = 120) -> None:
        """Until ``/readyz`` answers 200."""
        ctx = self.ssl_context()
        self._wait(
            lambda: self._http_ok(self.state.apiserver_url + "/readyz", ctx),
            "kube-apiserver",
            timeout,
        )

    def wait_for_default_service_account(self, timeout: float = 60) -> None:
        """Until the controllers run (they make each namespace's ``default`` account)."""

        def made() -> bool:
            try:
                self.get("/api/v1/namespaces/default/serviceaccounts/default")
                return True
            except (urllib.error.URLError, OSError):
                return False

        self._wait(made, "kube-controller-manager", timeout)


def stop_pids(pids: dict[str, int], grace: float = 5.0) -> list[str]:
    """Stop recorded process groups one by one, in dependency order (nodes and controllers,
    then the API server, then etcd): SIGTERM, and SIGKILL what is left after ``grace``."""
    last = ("kube-apiserver", "etcd")
    order = [n for n in reversed(list(pids)) if n not in last] + [n for n in last if n in pids]
    for name in order:
        pid = pids[name]
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            continue
        deadline = time.monotonic() + grace
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if _running(pid):
                os.killpg(pid, signal.SIGKILL)
    return order


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
