"""core/v1 Events as controllers record them (repeats aggregate into ``count``)."""

from __future__ import annotations

import contextlib
import time

from .common import ApiError, Obj, rfc3339
from .store import Store


class EventRecorder:
    """Writes Events about objects into the store, as client-go's recorder does."""

    def __init__(self, store: Store, host: str = "fake-node") -> None:
        self.store = store
        self.host = host
        self.rt = store.registry.by_plural("events")

    def record(
        self, obj: Obj, type_: str, reason: str, message: str, component: str = "kubelet"
    ) -> None:
        """A Normal/Warning event about ``obj``; an identical earlier one gets count + 1."""
        m = obj.get("metadata", {})
        namespace = m.get("namespace") or "default"
        involved = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
        }
        if not m.get("namespace"):
            involved.pop("namespace")
        if obj.get("kind") == "Pod" and reason in ("Pulled", "Created", "Started", "Killing"):
            involved["fieldPath"] = f"spec.containers{{{_first_container(obj)}}}"
        field = f"involvedObject.uid={m.get('uid')},reason={reason},type={type_}"
        existing, _ = self.store.list(self.rt, namespace, field_selector=field)
        for event in existing:
            if event.get("message") == message:

                def bump(e: Obj) -> None:
                    e["count"] = int(e.get("count") or 1) + 1
                    e["lastTimestamp"] = rfc3339()

                self.store.update_obj(self.rt, event, bump)
                return
        now = rfc3339()
        body = {
            "metadata": {"name": f"{m.get('name')}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": component, "host": self.host}
            if component == "kubelet"
            else {"component": component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": self.host if component == "kubelet" else "",
        }
        with contextlib.suppress(ApiError):  # refused (quota...): dropped, as client-go does
            self.store.create(self.rt, namespace, body)


def _first_container(pod: Obj) -> str:
    containers = pod.get("spec", {}).get("containers") or [{}]
    return str(containers[0].get("name", ""))
