"""List-then-watch of one resource in one namespace, kept in a local cache (an informer).

One ``Informer`` per resource kind and namespace replaces polling per job: it lists the
objects carrying the project's label once, then follows a watch from that list's
``resourceVersion``. A watch that drops is resumed from the last version seen; one the server
expires (``410 Gone``) is replaced by a fresh list, and objects that vanished meanwhile are
reported as deleted, so no transition is lost. Events are decoded straight from JSON.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from ...exceptions import CloudMLError
from .api import KubeApi

Obj = dict[str, Any]
#: Called with ("ADDED" | "MODIFIED" | "DELETED", object) for every change, in order.
Handler = Callable[[str, Obj], None]
WATCH_SECONDS = 300
GONE = 410


class Expired(Exception):
    """The server no longer has the history the watch asked for."""


def decode_event(line: bytes) -> tuple[str, Obj]:
    """One watch line -> (type, object); ``Expired`` for a 410, ``CloudMLError`` for errors."""
    event = json.loads(line)
    kind, obj = event["type"], event["object"]
    if kind == "ERROR":
        if obj.get("code") == GONE:
            raise Expired(obj.get("message", "resource version expired"))
        raise CloudMLError(f"watch error: {obj.get('message', obj)}")
    return kind, obj


class Informer:
    """Feeds ``on_event`` with the changes of the objects at ``path`` (e.g.
    ``/apis/batch/v1/namespaces/NS/jobs``) carrying ``selector``'s labels. It keeps the last
    version of each object, to tell what a relist changed."""

    def __init__(self, api: KubeApi, path: str, selector: str, on_event: Handler) -> None:
        self.api = api
        self.path = path
        self.selector = selector
        self.on_event = on_event
        self.objects: dict[str, Obj] = {}
        self.version = ""
        self.lock = threading.Lock()
        self.relists = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.log = logging.getLogger(__name__)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """List now (raising if the server cannot be reached), then watch in the background."""
        if self._thread is not None:
            return
        self.relist()
        self._thread = threading.Thread(target=self._run, name=f"watch {self.path}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    # --- the loop -------------------------------------------------------------------------------

    def relist(self) -> None:
        """Replace the cache with a fresh list, reporting what changed meanwhile."""
        listing = self.api.get(self.path, labelSelector=self.selector)
        fresh = {o["metadata"]["name"]: o for o in listing.get("items", [])}
        with self.lock:
            gone = [o for name, o in self.objects.items() if name not in fresh]
            added = [o for name, o in fresh.items() if name not in self.objects]
            modified = [
                o
                for name, o in fresh.items()
                if name in self.objects and _version(self.objects[name]) != _version(o)
            ]
            self.objects = fresh
            self.version = str(listing.get("metadata", {}).get("resourceVersion", ""))
            self.relists += 1
        for kind, objs in (("DELETED", gone), ("ADDED", added), ("MODIFIED", modified)):
            for obj in objs:
                self.on_event(kind, obj)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._watch()
                failures = 0
            except Expired:
                self.log.debug("watch of %s expired; relisting", self.path)
                self._relist_quietly()
            except (CloudMLError, OSError, ValueError, KeyError) as exc:
                failures += 1
                self.log.debug("watch of %s dropped (%s); resuming", self.path, exc)
                self._stop.wait(min(0.1 * 2**failures, 5.0))
            except Exception as exc:  # urllib3 protocol errors when a connection breaks
                failures += 1
                self.log.debug("watch of %s broke (%r); resuming", self.path, exc)
                self._stop.wait(min(0.1 * 2**failures, 5.0))

    def _relist_quietly(self) -> None:
        try:
            self.relist()
        except CloudMLError as exc:
            self.log.debug("relist of %s failed (%s); retrying", self.path, exc)
            self._stop.wait(1.0)

    def _watch(self) -> None:
        query = {
            "watch": True,
            "labelSelector": self.selector,
            "resourceVersion": self.version or None,
            "allowWatchBookmarks": True,
            "timeoutSeconds": WATCH_SECONDS,
        }
        for line in self.api.stream(self.path, query, timeout=WATCH_SECONDS + 30):
            if self._stop.is_set():
                return
            kind, obj = decode_event(line)
            self.apply(kind, obj)

    def apply(self, kind: str, obj: Obj) -> None:
        """Remember one event's object and pass the event on."""
        meta = obj.get("metadata", {})
        version = str(meta.get("resourceVersion", ""))
        if kind == "BOOKMARK":
            self.version = version or self.version
            return
        if not _selected(meta.get("labels") or {}, self.selector):
            return  # servers that ignore the selector
        name = meta["name"]
        with self.lock:
            if kind == "DELETED":
                self.objects.pop(name, None)
            else:
                self.objects[name] = obj
            if version:
                self.version = version
        self.on_event(kind, obj)


def _version(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))


def _selected(labels: dict[str, str], selector: str) -> bool:
    """Whether ``labels`` match an equality-based selector ``k=v,k2=v2``."""
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True
