"""The garbage collector: owner references, and the Foreground/Orphan deletion finalizers."""

from __future__ import annotations

import collections

from .base import Controller
from .common import Obj
from .resources import ResourceType
from .store import NAMESPACE_FINALIZER


class GarbageCollector(Controller):
    """Deletes objects whose owners are all gone (Background), deletes the dependents of an
    owner being deleted in the foreground before it, and frees the dependents of an owner
    deleted with the Orphan policy."""

    tick = 0.5

    def on_change(self, rt: ResourceType, kind: str, obj: Obj, old: Obj | None) -> None:
        """Wake on deletions and on objects with owners or a deletionTimestamp."""
        m = obj.get("metadata", {})
        if kind == "DELETED" or m.get("ownerReferences") or m.get("deletionTimestamp"):
            self.wake()

    def reconcile(self) -> None:
        """One sweep over every live object."""
        live = self.store.live()
        uids = {obj["metadata"]["uid"] for _, obj in live}
        dependents: dict[str, list[tuple[ResourceType, Obj]]] = collections.defaultdict(list)
        for rt, obj in live:
            for ref in obj["metadata"].get("ownerReferences") or []:
                dependents[str(ref.get("uid"))].append((rt, obj))
        for rt, obj in live:
            m = obj["metadata"]
            finalizers = m.get("finalizers") or []
            if m.get("deletionTimestamp") and "orphan" in finalizers:
                for drt, dep in dependents.get(m["uid"], []):
                    self._drop_refs(drt, dep, {m["uid"]})
                self._drop_finalizer(rt, obj, "orphan")
            elif m.get("deletionTimestamp") and "foregroundDeletion" in finalizers:
                deps = dependents.get(m["uid"], [])
                for drt, dep in deps:
                    if not dep["metadata"].get("deletionTimestamp"):
                        self.store.delete_obj(drt, dep, propagation="Foreground")
                if not deps:
                    self._drop_finalizer(rt, obj, "foregroundDeletion")
            if m.get("deletionTimestamp") and NAMESPACE_FINALIZER in finalizers:
                inside = [(r, o) for r, o in live if o["metadata"].get("namespace") == m["name"]]
                for irt, item in inside:
                    if not item["metadata"].get("deletionTimestamp"):
                        self.store.delete_obj(irt, item, propagation="Background")
                if not inside:
                    self._drop_finalizer(rt, obj, NAMESPACE_FINALIZER)
            refs = m.get("ownerReferences") or []
            if not refs or m.get("deletionTimestamp"):
                continue
            alive = [r for r in refs if r.get("uid") in uids]
            if not alive:
                self.store.delete_obj(rt, obj, propagation="Background")
            elif len(alive) < len(refs):
                self._drop_refs(
                    rt, obj, {r.get("uid") for r in refs} - {r.get("uid") for r in alive}
                )

    def _drop_refs(self, rt: ResourceType, obj: Obj, owner_uids: set[str | None]) -> None:
        def change(o: Obj) -> None:
            refs = [
                r
                for r in o["metadata"].get("ownerReferences") or []
                if r.get("uid") not in owner_uids
            ]
            if refs:
                o["metadata"]["ownerReferences"] = refs
            else:
                o["metadata"].pop("ownerReferences", None)

        self.store.update_obj(rt, obj, change)

    def _drop_finalizer(self, rt: ResourceType, obj: Obj, finalizer: str) -> None:
        def change(o: Obj) -> None:
            o["metadata"]["finalizers"] = [
                f for f in o["metadata"].get("finalizers") or [] if f != finalizer
            ]

        self.store.update_obj(rt, obj, change)
