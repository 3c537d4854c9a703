"""``FakeCluster``: the API server, the controllers and the kubelet, on a background event loop.

Usage::

    with FakeCluster(tmp_path, namespace="team-a", gpus=4) as cluster:
        kubernetes.config.load_kube_config(config_file=str(cluster.kubeconfig))
        ...
        cluster.get("jobs", "x")["status"]

``cluster.kubeconfig`` is the admin (never refused); ``cluster.kubeconfig_for(ns, sa)`` is a
service account whose requests RBAC authorizes (refusals in ``cluster.denied``). Every create
goes through LimitRange and ResourceQuota admission, the controllers' pods included.

Everything runs in one thread with its own asyncio loop; the test thread talks HTTP to
``cluster.url`` (the official client, or anything) and reads state with ``objects``/``get``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

import kmock

from .apiserver import ApiServer
from .base import Context, Controller
from .common import Obj
from .deployments import DeploymentController
from .events import EventRecorder
from .faults import Fault, Faults
from .gc import GarbageCollector
from .jobs import JobController
from .kserve import InferenceServiceController
from .kubelet import Kubelet
from .limitranges import LimitRanger
from .quota import QuotaAdmission, QuotaController
from .rbac import Authorizer, Identity, RequestAttributes, bootstrap_objects
from .resources import Registry
from .scheduler import Scheduler, node_object
from .store import Store

T = TypeVar("T")


class FakeCluster:
    """A one-node Kubernetes cluster for tests: a real HTTP API over loopback, controllers
    that act on the objects, and a kubelet that runs Job pods as local processes."""

    def __init__(
        self,
        tmp_path: Path | str,
        namespace: str = "default",
        *,
        gpus: int = 0,
        gpu_product: str = "NVIDIA-A100-SXM4-80GB",
        images: dict[str, str] | None = None,
        crds: Iterable[str] = (),
        cpus: int = 64,
        memory: str = "256Gi",
        node: str = "fake-node",
        grace_cap: float = 5.0,
        ready_delay: float = 0.2,
        job_backoff: float = 0.0,
        create_backoff: float = 1.0,
        history_limit: int = 10_000,
    ) -> None:
        self.tmp_path = Path(tmp_path)
        self.workdir = self.tmp_path / "fakecluster"
        self.namespace = namespace
        self.kubeconfig = self.workdir / "kubeconfig"
        self.images = dict(images if images is not None else {"python:3.11-slim": sys.executable})
        #: Host directory of each PersistentVolumeClaim (by claim name); filled on demand.
        self.pvc_dirs: dict[str, Path | str] = {}
        self.registry = Registry(crds)
        self.store = Store(self.registry, history_limit)
        limit_ranger = LimitRanger(self.store)
        self.quota = QuotaAdmission(self.store)
        self.store.mutating.append(limit_ranger.default)
        self.store.validating += [limit_ranger.check, self.quota]
        self.authorizer = Authorizer(self.store)
        self.faults = Faults()
        self.ctx = Context(self.store, EventRecorder(self.store, node), node)
        self._node = node_object(node, gpus, gpu_product, cpus, memory)
        self._options = {
            "grace_cap": grace_cap,
            "ready_delay": ready_delay,
            "job_backoff": job_backoff,
            "create_backoff": create_backoff,
        }
        self._crds = tuple(crds)
        self.apiserver = ApiServer(self.store, self.faults, self.authorizer)
        self.kubelet: Kubelet | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: kmock.Server | None = None
        self._tasks: list[asyncio.Future[None]] = []
        self._controllers: list[Controller] = []
        self._port: int | None = None
        self.url = ""

    # --- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> FakeCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="fakecluster", daemon=True)
        self._thread.start()
        try:
            self._call(self._start())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            self._call(self._stop(), timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = None

    async def _start(self) -> None:
        for ns in dict.fromkeys(["default", "kube-system", self.namespace]):
            self.store.create(
                self.registry.by_plural("namespaces"), None, {"metadata": {"name": ns}}
            )
        self.store.create(self.registry.by_plural("nodes"), None, self._node)
        for plural, obj in bootstrap_objects():
            self.store.create(self.registry.by_plural(plural), None, obj)
        await self.apiserver.__aenter__()
        await self._serve()
        self._write_kubeconfig()
        self.kubelet = Kubelet(
            self.ctx,
            images=self.images,
            kubeconfig=self.kubeconfig,
            workdir=self.workdir,
            pvc_dirs=self.pvc_dirs,
            grace_cap=float(self._options["grace_cap"]),
            ready_delay=float(self._options["ready_delay"]),
        )
        self.apiserver.log_source = self.kubelet.log_buffer
        create_backoff = float(self._options["create_backoff"])
        controllers: list[Controller] = [
            GarbageCollector(self.ctx),
            Scheduler(self.ctx),
            JobController(
                self.ctx,
                backoff=float(self._options["job_backoff"]),
                create_backoff=create_backoff,
            ),
            DeploymentController(self.ctx, create_backoff=create_backoff),
            QuotaController(self.ctx, self.quota),
            self.kubelet,
        ]
        for crd in self._crds:
            rt = self.registry.find(*crd.strip("/").split("/"))
            if rt is not None and rt.kind == "InferenceService":
                controllers.append(
                    InferenceServiceController(self.ctx, rt, float(self._options["ready_delay"]))
                )
        self._controllers = controllers
        self._tasks = [asyncio.ensure_future(c.run()) for c in controllers]

    async def _serve(self) -> None:
        server = kmock.Server(self.apiserver, port=self._port)
        await server.__aenter__()
        self._server = server
        self._port = server.port
        self.url = f"http://127.0.0.1:{server.port}"

    async def _unserve(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            self.apiserver.drop_streams()
            await asyncio.sleep(0)
            await server.__aexit__(None, None, None)

    async def _stop(self) -> None:
        for controller in self._controllers:
            controller.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.kubelet is not None:
            await self.kubelet.shutdown()
        await self._unserve()
        await self.apiserver.__aexit__(None, None, None)
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 15) -> T:
        """Run a coroutine on the cluster's loop and wait for its result."""
        assert self._loop is not None, "the cluster is not running (use it as a context manager)"
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(timeout)

    def _run(self, fn: Callable[[], T]) -> T:
        """Run a plain function on the cluster's loop (where every write happens)."""

        async def call() -> T:
            return fn()

        return self._call(call())

    def _write_kubeconfig(
        self, path: Path | None = None, user: dict[str, str] | None = None, namespace: str = ""
    ) -> None:
        """A kubeconfig for the cluster: the admin's (no credentials) unless told ``user``."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": user or {}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {
                        "cluster": "fake",
                        "user": "fake",
                        "namespace": namespace or self.namespace,
                    },
                }
            ],
            "current-context": "fake",
            "preferences": {},
        }
        (path or self.kubeconfig).write_text(json.dumps(config, indent=2))

    def kubeconfig_for(self, namespace: str, service_account: str) -> Path:
        """A kubeconfig whose bearer token is the service account
        ``system:serviceaccount:<namespace>:<service_account>`` (its requests are authorized
        by RBAC, unlike the admin's ``kubeconfig``), with ``namespace`` as its default."""
        assert self.url, "the cluster is not running (use it as a context manager)"
        token = self.authorizer.issue(Identity.service_account(namespace, service_account))
        path = self.workdir / f"kubeconfig-{namespace}-{service_account}"
        self._write_kubeconfig(path, {"token": token}, namespace)
        return path

    @property
    def denied(self) -> list[RequestAttributes]:
        """The attributes (user, verb, group, resource, namespace, name...) of every request
        RBAC refused so far, in order."""
        return self.authorizer.denied()

    # --- the API server ------------------------------------------------------------------------

    def stop_apiserver(self) -> None:
        """Close the port (connections are refused); objects and controllers stay."""
        self._call(self._unserve())

    def start_apiserver(self) -> None:
        """Listen again, on the same port."""
        if self._server is None:
            self._call(self._serve())

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(METHOD, path) of every API request received so far."""
        return list(self.apiserver.request_log)

    @property
    def request_params(self) -> list[dict[str, str]]:
        """The query parameters of ``requests``, in the same order."""
        return list(self.apiserver.request_params)

    @property
    def request_headers(self) -> list[dict[str, str]]:
        """The headers of ``requests``, in the same order."""
        return list(self.apiserver.request_headers)

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        times: int = 1,
        retry_after: float | None = None,
        reason: str = "",
        message: str = "",
    ) -> None:
        """Make the next ``times`` requests with ``method`` (``*`` for any) whose path matches
        ``path_regex`` fail with a ``Status`` of ``status`` (default reason and message as a
        real server words them, e.g. the ResourceQuota message for 403; ``Retry-After``)."""
        self.faults.add(
            Fault(
                method.upper(), re.compile(path_regex), status, times, retry_after, reason, message
            )
        )

    def expire_watches(self) -> None:
        """Send every open watch a 410 Gone ERROR and close it; older versions expire too."""
        self._run(lambda: self.store.close_watches("expire"))

    def drop_watches(self) -> None:
        """Break every open watch connection (no event, no clean end)."""
        self._run(lambda: self.store.close_watches("drop"))

    def compact(self) -> None:
        """Forget the watch history: watches from any earlier version get 410 Gone."""
        self._run(self.store.compact)

    # --- state ---------------------------------------------------------------------------------

    def objects(self, plural: str, namespace: str | None = None) -> list[Obj]:
        """Live objects of a resource (``jobs``, ``pods``, ``inferenceservices``...), all
        namespaces unless one is given."""
        return self.store.list(self.registry.by_plural(plural), namespace)[0]

    def get(self, plural: str, name: str, namespace: str | None = None) -> Obj | None:
        """One object (in ``namespace``, default the cluster's namespace), or None."""
        rt = self.registry.by_plural(plural)
        return self.store.get(rt, (namespace or self.namespace) if rt.namespaced else None, name)

    def create(self, plural: str, obj: Obj, namespace: str | None = None) -> Obj:
        """Create an object directly (test setup), as if through the API."""
        rt = self.registry.by_plural(plural)
        ns = (
            (namespace or obj.get("metadata", {}).get("namespace") or self.namespace)
            if rt.namespaced
            else None
        )
        return self._run(lambda: self.store.create(rt, ns, obj))

    def update_status(
        self, plural: str, name: str, status: Obj, namespace: str | None = None
    ) -> Obj | None:
        """Merge ``status`` into an object's status directly (test setup)."""
        rt = self.registry.by_plural(plural)

        def change(obj: Obj) -> None:
            obj.setdefault("status", {}).update(status)

        return self._run(lambda: self.store.update(rt, namespace or self.namespace, name, change))

    def events(self, name: str | None = None, namespace: str | None = None) -> list[Obj]:
        """Events (about the object ``name`` when given)."""
        found = self.objects("events", namespace)
        return [e for e in found if name is None or e["involvedObject"].get("name") == name]

    def logs(self, pod: str, namespace: str | None = None) -> str:
        """What a pod's main container printed so far."""
        found = self.get("pods", pod, namespace)
        if found is None or self.kubelet is None:
            return ""
        container = found["spec"]["containers"][0]["name"]
        buffer = self.kubelet.log_buffer(found["metadata"]["uid"], container)
        return buffer.text() if buffer is not None else ""

    @property
    def pids(self) -> list[int]:
        """Every process the kubelet started."""
        return list(self.kubelet.pids) if self.kubelet is not None else []

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions inside the fake itself (controllers, API handlers): should stay empty."""
        return [*self.ctx.errors, *self.apiserver.bugs]

    def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 10.0,
        interval: float = 0.05,
        what: str = "",
    ) -> T:
        """Poll until ``predicate()`` is truthy; its value (TimeoutError naming ``what``)."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}")
            time.sleep(interval)
