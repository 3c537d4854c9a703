"""Pod logs as the project's LogLines: the kubelet's timestamps, replica names, follow.

Every pod's log is read with ``timestamps=true``, so lines of different replicas merge in the
order they were written. Following a job reads each pod's log as a stream in its own thread;
pods that appear later (a retried replica) are picked up as they come.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from ...exceptions import CloudMLError
from ...models import LogLine
from .api import KubeApi
from .status import Obj, pod_replica, timestamp

CONTAINER = "trainer"
_END = object()


def parse_line(raw: bytes, replica: str) -> LogLine:
    """``2026-11-24T10:00:00.123456789Z text`` -> LogLine (time of arrival if unstamped)."""
    text = raw.decode("utf-8", "replace").rstrip("\r")
    stamp, sep, rest = text.partition(" ")
    when = _stamp(stamp) if sep else None
    if when is None:
        return LogLine(time.time(), replica, text)
    return LogLine(when, replica, rest)


def pod_log_path(namespace: str, pod: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{pod}/log"


def read_pod(
    api: KubeApi, pod: Obj, since: float | None = None, tail: int | None = None
) -> list[LogLine]:
    """The lines a pod printed so far; none when it has not started (or is gone)."""
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    query: dict[str, object] = {"timestamps": True, "container": CONTAINER}
    if tail is not None:
        query["tailLines"] = max(tail, 0)
    if since is not None:
        query["sinceSeconds"] = max(1, math.ceil(time.time() - since))
    try:
        raw = api.stream(pod_log_path(namespace, name), query, timeout=60)
        return [parse_line(line, pod_replica(pod)) for line in raw]
    except CloudMLError:
        return []  # not started yet, or deleted meanwhile: nothing to show


def follow_pods(
    api: KubeApi,
    pods: Callable[[], list[Obj]],
    finished: Callable[[], bool],
    wait: Callable[[float], None],
    skip: dict[str, int],
    stop: threading.Event,
) -> Iterator[LogLine]:
    """Lines of every pod ``pods()`` returns, as they are written, until ``finished()`` and
    every stream has ended, or ``stop`` is set. ``skip`` says how many lines of a pod were
    already shown. However it ends, every pod's stream is shut, so no thread stays behind."""
    lines: queue.Queue[object] = queue.Queue()
    started: set[str] = set()
    open_streams = 0
    responses: list[Any] = []  # the pumps' open streams
    closing = threading.Event()

    def opened(response: Any) -> None:
        responses.append(response)
        if closing.is_set():  # it opened as the follow ended
            response.shutdown()

    def pump(pod: Obj, already: int) -> None:
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        query = {"timestamps": True, "follow": True, "container": CONTAINER}
        replica = pod_replica(pod)
        try:
            stream = api.stream(pod_log_path(namespace, name), query, opened=opened)
            for n, line in enumerate(stream):
                if closing.is_set():
                    return
                if n >= already:
                    lines.put(parse_line(line, replica))
        except CloudMLError:
            pass
        finally:
            lines.put(_END)

    try:
        while not stop.is_set():
            for pod in pods():
                name = pod["metadata"]["name"]
                phase = pod.get("status", {}).get("phase")
                if name in started or phase not in ("Running", "Succeeded", "Failed"):
                    continue
                started.add(name)
                open_streams += 1
                threading.Thread(target=pump, args=(pod, skip.get(name, 0)), daemon=True).start()
            try:
                item = lines.get(timeout=0.2)
            except queue.Empty:
                if open_streams == 0 and finished():
                    return
                wait(0.3)
                continue
            if item is _END:
                open_streams -= 1
            else:
                assert isinstance(item, LogLine)
                yield item
    finally:  # the job ended, `stop` was set or the reader closed us: end every pump
        closing.set()
        for response in list(responses):
            with contextlib.suppress(Exception):
                response.shutdown()


def _stamp(text: str) -> float | None:
    if len(text) < 20 or text[4] != "-" or text[10] != "T":
        return None
    try:
        return timestamp(text)
    except ValueError:
        return None
