"""The node and the scheduler: one node with GPUs, pods placed by selector and free capacity."""

from __future__ import annotations

from .base import Context, Controller
from .common import Obj, set_condition
from .quantity import parse_float

GPU = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"


def pod_requests(pod: Obj) -> dict[str, float]:
    """What a pod asks of a node: the sum over containers (limits stand in for requests)."""
    total: dict[str, float] = {}
    for container in pod.get("spec", {}).get("containers") or []:
        res = container.get("resources") or {}
        asked = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        for name, amount in asked.items():
            total[name] = total.get(name, 0.0) + parse_float(amount)
    return total


def node_object(name: str, gpus: int, gpu_product: str, cpus: int, memory: str) -> Obj:
    """The one Node: its labels, capacity and a Ready condition."""
    capacity = {"cpu": str(cpus), "memory": memory, "pods": "110", GPU: str(gpus)}
    return {
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "fake",
                GPU_PRODUCT_LABEL: gpu_product,
                "nvidia.com/gpu.count": str(gpus),
                "nvidia.com/gpu.present": "true" if gpus else "false",
            },
        },
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": "00000000-0000-0000-0000-000000000000",
                "containerRuntimeVersion": "containerd://1.7.0",
                "kernelVersion": "6.1.0",
                "kubeProxyVersion": "v1.31.0",
                "kubeletVersion": "v1.31.0",
                "machineID": "fake",
                "operatingSystem": "linux",
                "osImage": "Fake Linux",
                "systemUUID": "00000000-0000-0000-0000-000000000000",
            },
        },
    }


def _affinity_ok(pod: Obj, labels: dict[str, str]) -> bool:
    """nodeSelector, and required node affinity terms (In, NotIn, Exists, DoesNotExist)."""
    spec = pod.get("spec", {})
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    for term in terms:
        ok = True
        for expr in term.get("matchExpressions") or []:
            key, op, values = expr["key"], expr["operator"], expr.get("values") or []
            ok = ok and {
                "In": labels.get(key) in values,
                "NotIn": labels.get(key) not in values,
                "Exists": key in labels,
                "DoesNotExist": key not in labels,
            }.get(op, False)
        if ok:
            return True
    return False


class Scheduler(Controller):
    """Binds pending pods to the node in creation order when they fit; the others get
    ``PodScheduled=False`` (Unschedulable) and a ``FailedScheduling`` event."""

    kinds = frozenset({"Pod", "Node"})
    tick = 0.5

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.pods_rt, self.nodes_rt = ctx.rt("pods"), ctx.rt("nodes")
        self._queue: dict[str, int] = {}

    def reconcile(self) -> None:
        """Place pending pods, first come first served, on what is free."""
        node = self.store.get(self.nodes_rt, None, self.ctx.node)
        if node is None:
            return
        labels = node["metadata"].get("labels") or {}
        free = {k: parse_float(v) for k, v in node["status"]["allocatable"].items()}
        pods = [p for rt, p in self.store.live() if rt == self.pods_rt]
        pending = []
        for pod in pods:
            phase = pod.get("status", {}).get("phase")
            if pod["spec"].get("nodeName") == self.ctx.node and phase not in (
                "Succeeded",
                "Failed",
            ):
                for name, amount in pod_requests(pod).items():
                    free[name] = free.get(name, 0.0) - amount
            elif not pod["spec"].get("nodeName") and not pod["metadata"].get("deletionTimestamp"):
                pending.append(pod)
        for pod in pending:  # first seen, first served (creation order)
            self._queue.setdefault(pod["metadata"]["uid"], len(self._queue))
        pending.sort(key=lambda p: self._queue[p["metadata"]["uid"]])
        for pod in pending:
            if not _affinity_ok(pod, labels):
                self._unschedulable(pod, "1 node(s) didn't match Pod's node affinity/selector")
                continue
            asked = pod_requests(pod)
            short = sorted(
                name for name, amount in asked.items() if amount > free.get(name, 0.0) + 1e-9
            )
            if short:
                self._unschedulable(pod, ", ".join(f"1 Insufficient {name}" for name in short))
                continue
            for name, amount in asked.items():
                free[name] = free.get(name, 0.0) - amount
            self._bind(pod)

    def _bind(self, pod: Obj) -> None:
        def change(p: Obj) -> None:
            p["spec"]["nodeName"] = self.ctx.node
            conditions = p.setdefault("status", {}).setdefault("conditions", [])
            set_condition(conditions, "PodScheduled", "True", lastProbeTime=None)
            for cond in conditions:
                if cond["type"] == "PodScheduled":
                    cond.pop("reason", None)
                    cond.pop("message", None)

        m = pod["metadata"]
        if self.store.update_obj(self.pods_rt, pod, change) is not None:
            self.ctx.events.record(
                pod,
                "Normal",
                "Scheduled",
                f"Successfully assigned {m['namespace']}/{m['name']} to {self.ctx.node}",
                "default-scheduler",
            )

    def _unschedulable(self, pod: Obj, why: str) -> None:
        message = f"0/1 nodes are available: {why}."
        for cond in pod.get("status", {}).get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("message") == message:
                return

        def change(p: Obj) -> None:
            conditions = p.setdefault("status", {}).setdefault("conditions", [])
            set_condition(
                conditions, "PodScheduled", "False", "Unschedulable", message, lastProbeTime=None
            )

        self.store.update_obj(self.pods_rt, pod, change)
        self.ctx.events.record(pod, "Warning", "FailedScheduling", message, "default-scheduler")
