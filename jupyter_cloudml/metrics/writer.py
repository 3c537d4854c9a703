"""``report()``: scalars from training code into TensorBoard event files of the job.

The records are written by TensorBoard's own ``RecordWriter`` from its ``Event`` protos, as its
``tensorboard.summary.Writer`` does (scalar tensors of the ``scalars`` plugin), but as float64
and without its ``EventFileWriter``, which imports TensorFlow whenever it is installed. TensorBoard
is imported on the first call only, so importing this module costs nothing.
"""

from __future__ import annotations

import operator
import os
import socket
import threading
import time
from typing import Any

ENV_LOG_DIR = "CLOUDML_LOG_DIR"
ENV_JOB_DIR = "CLOUDML_JOB_DIR"
ENV_REPLICA = "CLOUDML_REPLICA"
LOCAL_LOG_DIR = "cloudml-metrics"
_SOURCE = "jupyter_cloudml.metrics"

_lock = threading.Lock()
_writer: EventFile | None = None
_calls = 0


def log_dir() -> str:
    """Where ``report()`` writes: ``$CLOUDML_LOG_DIR``, else ``$CLOUDML_JOB_DIR/metrics/<replica>``,
    else ``./cloudml-metrics`` (so training code also runs outside a job)."""
    if os.environ.get(ENV_LOG_DIR):
        return os.environ[ENV_LOG_DIR]
    if os.environ.get(ENV_JOB_DIR):
        replica = os.environ.get(ENV_REPLICA) or "local"
        return os.path.join(os.environ[ENV_JOB_DIR], "metrics", replica)
    return os.path.abspath(LOCAL_LOG_DIR)


def report(step: int | None = None, **values: float) -> None:
    """Record scalar metrics of a training step, e.g. ``report(step=epoch, loss=0.3, acc=0.9)``.

    ``step`` defaults to the number of earlier calls in this process. Values are flushed to
    disk before returning, so the job view and a tuning study see them at once.
    """
    global _calls, _writer
    with _lock:
        if step is None:
            step = _calls
        else:
            try:
                step = operator.index(step)
            except TypeError:
                raise TypeError(f"report(step=...) takes an integer, not {step!r}") from None
        _calls += 1
        numbers = {}
        for tag, value in values.items():
            try:
                numbers[tag] = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"report({tag}=...) takes a number, not {value!r}") from None
        if not numbers:
            return
        if _writer is None or _writer.pid != os.getpid():  # first call, or a forked child
            _writer = EventFile(log_dir())
        _writer.write(step, numbers)


class EventFile:
    """One event file of this process in `directory`, named as TensorBoard names them."""

    def __init__(self, directory: str) -> None:
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        self.pid = os.getpid()
        self._event = event_pb2.Event
        os.makedirs(directory, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{self.pid}"
        self._file = open(os.path.join(directory, name), "ab")  # noqa: SIM115 (lives as long as the process)
        self._records = RecordWriter(self._file)
        first = self._event(wall_time=time.time(), file_version="brain.Event:2")
        first.source_metadata.writer = _SOURCE
        self._records.write(first.SerializeToString())
        self._metadata = _scalar_metadata()

    def write(self, step: int, numbers: dict[str, float], wall_time: float | None = None) -> None:
        """Append one event holding ``numbers`` at ``step`` and flush it."""
        event = self._event(wall_time=time.time() if wall_time is None else wall_time, step=step)
        for tag, number in numbers.items():
            value = event.summary.value.add(tag=tag)
            value.metadata.CopyFrom(self._metadata)
            value.tensor.dtype = 2  # DT_DOUBLE, a rank-0 tensor
            value.tensor.tensor_shape.SetInParent()
            value.tensor.double_val.append(number)
        self._records.write(event.SerializeToString())
        self._records.flush()

    def write_summary(self, summary: Any, step: int = 0) -> None:
        """Append one event holding a ``Summary`` proto (e.g. a plugin's) and flush it."""
        event = self._event(wall_time=time.time(), step=step)
        event.summary.CopyFrom(summary)
        self._records.write(event.SerializeToString())
        self._records.flush()

    def close(self) -> None:
        self._file.close()


def _scalar_metadata() -> Any:
    from tensorboard.compat.proto import summary_pb2

    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DataClass.DATA_CLASS_SCALAR,
    )
