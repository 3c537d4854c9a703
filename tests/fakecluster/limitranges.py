"""The LimitRanger admission plugin for Pods: ``Container`` limits of the namespace's
LimitRanges fill in missing requests and limits (``defaultRequest``, ``default``) and bound
them (``min``, ``max``), as kube-apiserver's plugin does.

Not emulated: ``Pod`` and ``PersistentVolumeClaim`` limit types, ``maxLimitRequestRatio``.
"""

from __future__ import annotations

from collections.abc import Iterator

from .common import Obj, forbidden
from .quantity import Quantity
from .resources import ResourceType
from .store import Store

ANNOTATION = "kubernetes.io/limit-ranger"


def _containers(pod: Obj) -> Iterator[tuple[str, Obj]]:
    spec = pod.get("spec") or {}
    for kind, field in (("container", "containers"), ("init container", "initContainers")):
        for container in spec.get(field) or []:
            yield kind, container


class LimitRanger:
    """Mutating (``default``) and validating (``check``) admission of new Pods."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rt = store.registry.by_plural("limitranges")

    def _items(self, namespace: str) -> list[list[Obj]]:
        """The ``Container`` limits of each LimitRange in the namespace, by name."""
        ranges, _ = self.store.list(self.rt, namespace)
        found = []
        for limit_range in ranges:
            items = (limit_range.get("spec") or {}).get("limits") or []
            found.append([i for i in items if i.get("type") == "Container"])
        return found

    def default(self, rt: ResourceType, pod: Obj) -> None:
        """Give containers the defaults they lack, noting what was set in an annotation."""
        if rt.kind != "Pod":
            return
        for items in self._items(pod["metadata"].get("namespace") or "default"):
            notes: list[str] = []
            for kind, container in _containers(pod):
                resources = container.setdefault("resources", {})
                for field, source, word in (
                    ("requests", "defaultRequest", "request"),
                    ("limits", "default", "limit"),
                ):
                    defaults: Obj = {}
                    for item in items:
                        defaults.update(item.get(source) or {})
                    have = resources.setdefault(field, {})
                    added = sorted(name for name in defaults if name not in have)
                    for name in added:
                        have[name] = defaults[name]
                    if added:
                        notes.append(f"{', '.join(added)} {word} for {kind} {container['name']}")
                    if not have:
                        del resources[field]
            if notes:
                annotations = pod["metadata"].setdefault("annotations", {})
                annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)

    def check(self, rt: ResourceType, pod: Obj) -> None:
        """403 for a container outside a LimitRange's ``min``/``max``."""
        if rt.kind != "Pod":
            return
        for items in self._items(pod["metadata"].get("namespace") or "default"):
            errors: list[str] = []
            for item in items:
                for _, container in _containers(pod):
                    resources = container.get("resources") or {}
                    for name in sorted(item.get("min") or {}):
                        errors += _bound("minimum", name, item["min"][name], resources)
                    for name in sorted(item.get("max") or {}):
                        errors += _bound("maximum", name, item["max"][name], resources)
            if errors:
                why = (
                    errors[0] if len(set(errors)) == 1 else f"[{', '.join(dict.fromkeys(errors))}]"
                )
                raise forbidden(rt.group, rt.plural, pod["metadata"]["name"], why)


def _bound(which: str, name: str, enforced: object, resources: Obj) -> list[str]:
    """The LimitRanger's complaint about one resource of one container, if any."""
    bound = Quantity.parse(enforced)
    head = f"{which} {name} usage per Container is {bound}"
    request = (resources.get("requests") or {}).get(name)
    limit = (resources.get("limits") or {}).get(name)
    if which == "minimum":
        if request is None:
            return [f"{head}.  No request is specified"]
        for word, amount in (("request", request), ("limit", limit)):
            if amount is not None and Quantity.parse(amount).value < bound.value:
                return [f"{head}, but {word} is {Quantity.parse(amount)}"]
        return []
    if limit is None:
        return [f"{head}.  No limit is specified"]
    for word, amount in (("limit", limit), ("request", request)):
        if amount is not None and Quantity.parse(amount).value > bound.value:
            return [f"{head}, but {word} is {Quantity.parse(amount)}"]
    return []
