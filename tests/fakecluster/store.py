"""The API server's storage semantics: metadata, resource versions, watch history, deletion.

Every mutation runs on the cluster's event loop thread; readers on other threads take
``Store.lock`` (a snapshot under the lock is consistent). One global integer resource version is
bumped on every create, update and delete, and every resource keeps a bounded history of its
events so a watch can resume from a version (or get ``410 Gone`` when it is too old).
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import copy
import dataclasses
import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

from .common import ApiError, Obj, meta, random_suffix, rfc3339
from .patches import apply_patch
from .resources import (
    Registry,
    ResourceType,
    apply_defaults,
    check_immutable,
    prepare_for_create,
    validate,
)
from .selectors import Matcher, field_matcher, label_matcher

Listener = Callable[[ResourceType, str, Obj, "Obj | None"], None]
#: An admission plugin's hook on create: may change the object (mutating) or raise an
#: ``ApiError`` (validating); runs under the store's lock.
Admission = Callable[[ResourceType, Obj], None]
Key = tuple[str | None, str]
#: Warning the real API server gives when a Job is deleted without a propagation policy.
JOB_ORPHAN_WARNING = (
    '299 - "child pods are preserved by default when jobs are deleted; set '
    "propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress "
    'this warning"'
)
#: Holds a deleted Namespace until the objects in it are gone (the garbage collector's job).
NAMESPACE_FINALIZER = "kubernetes"
#: Kinds whose default deletion policy is Orphan (legacy API behaviour kept by batch/v1 Jobs).
ORPHAN_BY_DEFAULT = {("batch", "Job")}


def not_found(rt: ResourceType, name: str) -> ApiError:
    """The 404 Status of a missing object."""
    return ApiError(
        404,
        "NotFound",
        f'{rt.qualified} "{name}" not found',
        {"name": name, "group": rt.group, "kind": rt.plural},
    )


def conflict(rt: ResourceType, name: str, why: str) -> ApiError:
    """The 409 Status of a write that lost a race."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}',
        {"name": name, "group": rt.group, "kind": rt.plural},
    )


def _spec_part(obj: Obj) -> str:
    """The spec: what ``metadata.generation`` counts the changes of."""
    return json.dumps(obj.get("spec"), sort_keys=True)


@dataclasses.dataclass(eq=False)
class Watcher:
    """One open watch: the events it still has to send, already filtered."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    labels: Matcher
    fields: Matcher
    queue: asyncio.Queue[tuple[str, Any]] = dataclasses.field(default_factory=asyncio.Queue)
    last_rv: int = 0

    def matches(self, obj: Obj | None) -> bool:
        """Whether the object is in this watch's namespace, name and selectors."""
        if obj is None:
            return False
        m = obj.get("metadata", {})
        if self.namespace is not None and m.get("namespace") != self.namespace:
            return False
        if self.name is not None and m.get("name") != self.name:
            return False
        return self.labels(obj) and self.fields(obj)

    def offer(self, kind: str, obj: Obj, old: Obj | None) -> None:
        """Queue the event as this watcher sees it (objects leaving the selection are DELETED)."""
        new_in = kind != "DELETED" and self.matches(obj)
        old_in = self.matches(old)
        if kind == "ADDED":
            out = "ADDED" if new_in else None
        elif kind == "MODIFIED":
            out = "MODIFIED" if new_in and old_in else "ADDED" if new_in else None
            out = "DELETED" if out is None and old_in else out
        else:
            out = "DELETED" if self.matches(obj) or old_in else None
        if out is not None:
            self.queue.put_nowait(("event", {"type": out, "object": copy.deepcopy(obj)}))

    def close(self, how: str) -> None:
        """End the stream: ``expire`` (410 ERROR event) or ``drop`` (abrupt)."""
        self.queue.put_nowait((how, None))


class Store:
    """All objects of all resources, and who is watching them."""

    def __init__(self, registry: Registry, history_limit: int = 10_000) -> None:
        self.registry = registry
        self.lock = threading.RLock()
        self.rv = 1
        self.history_limit = history_limit
        self._objects: dict[ResourceType, dict[Key, Obj]] = collections.defaultdict(dict)
        self._history: dict[ResourceType, collections.deque[tuple[int, str, Obj, Obj | None]]] = (
            collections.defaultdict(collections.deque)
        )
        self._floor: dict[ResourceType, int] = collections.defaultdict(int)
        self.watchers: set[Watcher] = set()
        self._listeners: list[Listener] = []
        #: Admission on create, in order: mutating plugins before validation, validating ones
        #: after it (every create goes through them: API clients' and controllers').
        self.mutating: list[Admission] = []
        self.validating: list[Admission] = []

    # --- reading -------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj | None:
        """A copy of the object, or None."""
        with self.lock:
            obj = self._objects[rt].get((namespace if rt.namespaced else None, name))
            return copy.deepcopy(obj) if obj is not None else None

    def require(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        """A copy of the object, or a 404 ``ApiError``."""
        obj = self.get(rt, namespace, name)
        if obj is None:
            raise not_found(rt, name)
        return obj

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[Obj], int]:
        """Copies of the matching objects, sorted by namespace and name, and the current rv."""
        labels, fields = label_matcher(label_selector), field_matcher(field_selector)
        with self.lock:
            items = [
                copy.deepcopy(obj)
                for (ns, _), obj in self._objects[rt].items()
                if (namespace is None or ns == namespace) and labels(obj) and fields(obj)
            ]
            return sorted(items, key=_sort_key), self.rv

    def live(self) -> builtins.list[tuple[ResourceType, Obj]]:
        """Every live object, not copied (stored objects are replaced, never edited in place,
        so these stay consistent): read-only."""
        with self.lock:
            return [(rt, obj) for rt, objs in self._objects.items() for obj in objs.values()]

    # --- events and watches --------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(rt, type, obj, old)`` after every change (on the loop thread)."""
        self._listeners.append(listener)

    def _emit(self, rt: ResourceType, kind: str, obj: Obj, old: Obj | None) -> None:
        snapshot = copy.deepcopy(obj)
        history = self._history[rt]
        history.append((self.rv, kind, snapshot, old))
        while len(history) > self.history_limit:
            self._floor[rt] = history.popleft()[0]
        for watcher in list(self.watchers):
            if watcher.rt == rt:
                watcher.offer(kind, snapshot, old)
        for listener in self._listeners:
            listener(rt, kind, snapshot, old)

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
    ) -> Watcher:
        """A new watcher, primed with the initial events (ADDED for every object without a
        version; the history after it with one; a 410 ERROR when that is too old)."""
        watcher = Watcher(
            rt, namespace, name, label_matcher(label_selector), field_matcher(field_selector)
        )
        with self.lock:
            since = int(resource_version) if resource_version not in (None, "", "0") else None
            if since is None:
                for obj in self._objects[rt].values():
                    if watcher.matches(obj):
                        watcher.queue.put_nowait(
                            ("event", {"type": "ADDED", "object": copy.deepcopy(obj)})
                        )
            elif since < self._floor[rt]:
                watcher.last_rv = since
                watcher.close("expire")
            else:
                for rv, kind, obj, old in self._history[rt]:
                    if rv > since:
                        watcher.offer(kind, obj, old)
            watcher.last_rv = since or self.rv
            self.watchers.add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        """Forget a watcher (its stream ended)."""
        with self.lock:
            self.watchers.discard(watcher)

    def floor(self, rt: ResourceType) -> int:
        """The oldest resourceVersion a watch of ``rt`` can resume from."""
        return self._floor[rt]

    def compact(self) -> None:
        """Forget all watch history: any watch from an older version gets ``410 Gone``."""
        with self.lock:
            for rt in self.registry.types:
                self._history[rt].clear()
                self._floor[rt] = self.rv

    def close_watches(self, how: str) -> None:
        """Expire (``expire``, after compacting the history) or drop every open watch."""
        with self.lock:
            if how == "expire":
                self.compact()
            for watcher in list(self.watchers):
                watcher.close(how)
            self.watchers.clear()

    # --- writing -------------------------------------------------------------------------------

    def _bump(self, obj: Obj) -> None:
        self.rv += 1
        meta(obj)["resourceVersion"] = str(self.rv)

    def create(
        self, rt: ResourceType, namespace: str | None, body: Obj, *, dry_run: bool = False
    ) -> Obj:
        """Store a new object: uid, resourceVersion, timestamps, defaults; 409 if it exists."""
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        obj = copy.deepcopy(body)
        m = meta(obj)
        ns = namespace if rt.namespaced else None
        if rt.namespaced:
            if m.get("namespace") and namespace and m["namespace"] != namespace:
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request",
                )
            ns = ns or m.get("namespace") or "default"
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        with self.lock:
            if rt.namespaced and rt.kind != "Event":
                self._check_namespace(ns)
            if not m.get("name"):
                if not m.get("generateName"):
                    raise ApiError(
                        422,
                        "Invalid",
                        f'{rt.kind} in version "{rt.version}" is invalid: metadata.name: '
                        "Required value: name or generateName is required",
                    )
                name = m["generateName"] + random_suffix()
                while (ns, name) in self._objects[rt]:
                    name = m["generateName"] + random_suffix()
                m["name"] = name
            name = m["name"]
            if (ns, name) in self._objects[rt]:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{rt.qualified} "{name}" already exists',
                    {"name": name, "group": rt.group, "kind": rt.plural},
                )
            for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
                m.pop(field, None)
            if ns is not None:
                m["namespace"] = ns
            else:
                m.pop("namespace", None)
            m["uid"] = str(uuid.uuid4())
            m["creationTimestamp"] = rfc3339()
            m["generation"] = 1
            apply_defaults(rt, obj)
            for admit in self.mutating:
                admit(rt, obj)
            prepare_for_create(rt, obj)
            validate(rt, obj)
            for admit in self.validating:
                admit(rt, obj)
            if dry_run:
                return obj
            self._bump(obj)
            self._objects[rt][(ns, name)] = obj
            self._emit(rt, "ADDED", obj, None)
            return copy.deepcopy(obj)

    def _check_namespace(self, ns: str | None) -> None:
        """404 for a namespace that does not exist, 403 for one being deleted."""
        nstype = self.registry.by_plural("namespaces")
        found = self._objects[nstype].get((None, str(ns)))
        if found is None:
            raise ApiError(
                404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"}
            )
        if found["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {ns} because it is being terminated",
            )

    def _commit(self, rt: ResourceType, old: Obj, new: Obj, *, dry_run: bool = False) -> Obj:
        """Store ``new`` in place of ``old`` if anything changed (bumping versions); an object
        whose deletion waits only for finalizers that are now gone is removed."""
        m_old, m_new = old["metadata"], meta(new)
        for field in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp"):
            if field in m_old:
                m_new[field] = m_old[field]
            else:
                m_new.pop(field, None)
        m_new["resourceVersion"] = m_old.get("resourceVersion")
        m_new["generation"] = m_old.get("generation", 1)
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        if new == old:
            return copy.deepcopy(old)
        check_immutable(rt, old, new)
        validate(rt, new)
        if _spec_part(new) != _spec_part(old):
            m_new["generation"] = int(m_old.get("generation") or 1) + 1
        if dry_run:
            return new
        key = (m_old.get("namespace"), m_old["name"])
        self._bump(new)
        if m_new.get("deletionTimestamp") and not m_new.get("finalizers"):
            del self._objects[rt][key]
            self._emit(rt, "DELETED", new, old)
        else:
            self._objects[rt][key] = new
            self._emit(rt, "MODIFIED", new, old)
        return copy.deepcopy(new)

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        change: Callable[[Obj], None],
        uid: str | None = None,
    ) -> Obj | None:
        """Controllers' writes: ``change`` edits a copy in place; None if the object is gone
        (or, given ``uid``, replaced by another of the same name)."""
        with self.lock:
            current = self._objects[rt].get((namespace if rt.namespaced else None, name))
            if current is None or uid not in (None, current["metadata"]["uid"]):
                return None
            new = copy.deepcopy(current)
            change(new)
            return self._commit(rt, current, new)

    def update_obj(self, rt: ResourceType, obj: Obj, change: Callable[[Obj], None]) -> Obj | None:
        """``update`` of the very object ``obj`` is a copy of (same uid)."""
        m = obj["metadata"]
        return self.update(rt, m.get("namespace"), m["name"], change, m["uid"])

    def delete_obj(self, rt: ResourceType, obj: Obj, **options: Any) -> Obj | None:
        """Controllers' deletes: ``delete`` of that very object; None if it is already gone."""
        m = obj["metadata"]
        try:
            preconditions = {"uid": m["uid"]}
            return self.delete(
                rt, m.get("namespace"), m["name"], preconditions=preconditions, **options
            )[0]
        except ApiError as exc:
            if exc.code in (404, 409):
                return None
            raise

    def _write(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        make: Callable[[Obj], Obj],
        subresource: str | None,
        dry_run: bool,
    ) -> Obj:
        with self.lock:
            current = self._objects[rt].get((namespace if rt.namespaced else None, name))
            if current is None:
                raise not_found(rt, name)
            new = make(copy.deepcopy(current))
            if not isinstance(new, dict):
                raise ApiError(400, "BadRequest", "the result is not an object")
            wanted_rv = (new.get("metadata") or {}).get("resourceVersion")
            if wanted_rv and str(wanted_rv) != current["metadata"].get("resourceVersion"):
                raise conflict(
                    rt,
                    name,
                    "the object has been modified; please apply your changes to the latest "
                    "version and try again",
                )
            if subresource == "status":
                status = new.get("status")
                new = copy.deepcopy(current)
                new["status"] = status if status is not None else {}
            elif rt.status:
                new["status"] = copy.deepcopy(current.get("status", {}))
                if "status" not in current:
                    new.pop("status")
            return self._commit(rt, current, new, dry_run=dry_run)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        content_type: str,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """PATCH by content type (merge, strategic merge, JSON patch); status only for /status."""
        return self._write(
            rt,
            namespace,
            name,
            lambda cur: apply_patch(cur, body, content_type, custom=rt.custom),
            subresource,
            dry_run,
        )

    def replace(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """PUT: the whole object (409 when its resourceVersion is stale)."""
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        if (body.get("metadata") or {}).get("name", name) != name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the URL")
        return self._write(rt, namespace, name, lambda _: copy.deepcopy(body), subresource, dry_run)

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        grace: int | None = None,
        preconditions: Obj | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """DELETE: (the object, whether it is gone now). Pods on a node and objects with
        finalizers (Foreground/Orphan add one) are only marked with a deletionTimestamp."""
        with self.lock:
            key = (namespace if rt.namespaced else None, name)
            current = self._objects[rt].get(key)
            if current is None:
                raise not_found(rt, name)
            m = current["metadata"]
            for field, value in (preconditions or {}).items():
                if value is not None and m.get(field) != value:
                    raise conflict(
                        rt, name, f"Precondition failed: {field} in precondition: {value}"
                    )
            policy = propagation or (
                "Orphan" if (rt.group, rt.kind) in ORPHAN_BY_DEFAULT else "Background"
            )
            new = copy.deepcopy(current)
            nm = meta(new)
            finalizers = list(nm.get("finalizers") or [])
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            if policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
            if rt.kind == "Namespace" and NAMESPACE_FINALIZER not in finalizers:
                finalizers.append(NAMESPACE_FINALIZER)
                new.setdefault("status", {})["phase"] = "Terminating"
            seconds = self._grace(rt, current, grace)
            if m.get("deletionTimestamp"):
                if seconds == 0 and rt.kind == "Pod" and not finalizers:
                    return self._remove(rt, key, dry_run), True
                return copy.deepcopy(current), False
            if not finalizers and not seconds:
                return self._remove(rt, key, dry_run), True
            nm["finalizers"] = finalizers
            if not finalizers:
                nm.pop("finalizers")
            nm["deletionTimestamp"] = rfc3339()
            nm["deletionGracePeriodSeconds"] = seconds
            if dry_run:
                return new, False
            self._bump(new)
            self._objects[rt][key] = new
            self._emit(rt, "MODIFIED", new, current)
            return copy.deepcopy(new), False

    def _grace(self, rt: ResourceType, obj: Obj, grace: int | None) -> int:
        """Seconds of graceful termination: only pods bound to a node and still running."""
        if rt.kind != "Pod":
            return 0
        if not obj.get("spec", {}).get("nodeName"):
            return 0
        if obj.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if grace is not None:
            return max(0, int(grace))
        return int(obj.get("spec", {}).get("terminationGracePeriodSeconds", 30))

    def _remove(self, rt: ResourceType, key: Key, dry_run: bool = False) -> Obj:
        current = self._objects[rt][key]
        if dry_run:
            return copy.deepcopy(current)
        gone = copy.deepcopy(current)
        del self._objects[rt][key]
        self._bump(gone)
        self._emit(rt, "DELETED", gone, current)
        return copy.deepcopy(gone)

    def remove(
        self, rt: ResourceType, namespace: str | None, name: str, uid: str | None = None
    ) -> Obj | None:
        """Drop an object at once (the kubelet's last word on a terminated pod)."""
        with self.lock:
            key = (namespace if rt.namespaced else None, name)
            current = self._objects[rt].get(key)
            if current is None or uid not in (None, current["metadata"]["uid"]):
                return None
            return self._remove(rt, key)

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None,
        field_selector: str | None,
        **options: Any,
    ) -> builtins.list[Obj]:
        """DELETE on a collection: every matching object, as ``delete`` would."""
        items, _ = self.list(rt, namespace, label_selector, field_selector)
        out = []
        for item in items:
            m = item["metadata"]
            try:
                out.append(self.delete(rt, m.get("namespace"), m["name"], **options)[0])
            except ApiError:
                continue
        return out


def _sort_key(obj: Obj) -> tuple[str, str]:
    m = obj.get("metadata", {})
    return (m.get("namespace") or "", m.get("name") or "")
