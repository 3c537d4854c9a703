"""Benchmark the tfevents reader against TensorBoard's EventAccumulator and tbparse (a script,
not a test). Prints markdown tables; ratios are measured in the same run.

(a) a scalar-heavy file of 1,000,000 events in the layouts real writers use (tensorboardX and
    torch simple values, tensorboard.summary.Writer float tensors, tf.summary v2 tensor_content
    with metadata once per tag, report()'s float64 tensors), 8 tags: ``read_scalars`` against
    ``EventAccumulator`` (size_guidance 0 = keep all) and tbparse. Target: >= 20x faster than
    EventAccumulator.
(b) an image-heavy file: 2,000 images of 256x256 RGB as incompressible PNGs (~197 KB), a scalar
    every 10 images; every record's CRC is checked by all three. Target: >= 100x.
(c) incremental: a ScalarReader has read a file of 100,000 events; 1,000 events are appended;
    time until ``read_new()`` returns them. Target: <= 50 ms.
(d) ``from jupyter_cloudml.metrics import report; report(...)`` in a fresh process, which every
    trial pays once, next to ``tensorboard.summary.Writer`` doing the same.

    .venv/bin/python bench/bench_metrics.py [--quick] [--skip-tbparse] [--smoke]

``--quick`` divides the sizes by 10, ``--smoke`` by 100 (and (d) runs once). One run of the
references (they take a minute each); the median of 3 for ours.
"""

from __future__ import annotations

import argparse
import gc
import io
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata

from jupyter_cloudml.metrics import ScalarReader, read_scalars
from jupyter_cloudml.metrics.events import EventDecoder
from jupyter_cloudml.metrics.records import frame, split_records
from jupyter_cloudml.metrics.tfevents import _to_scalars

TAGS = ["loss", "accuracy", "learning_rate", "val/loss", "val/accuracy", "grad_norm", "epoch", "t"]
METADATA = scalar_metadata.create_summary_metadata("", "")


def scalar_value(i: int, tag: str, number: float, first: bool) -> summary_pb2.Summary.Value:
    """One value in the layout of one of four writers, chosen by the tag."""
    layout = TAGS.index(tag) % 4
    if layout == 0:  # tensorboardX, torch.utils.tensorboard
        return summary_pb2.Summary.Value(tag=tag, simple_value=number)
    value = summary_pb2.Summary.Value(tag=tag)
    if layout == 1:  # tensorboard.summary.Writer
        value.tensor.CopyFrom(tensor_pb2.TensorProto(dtype=1, float_val=[number]))
        value.tensor.tensor_shape.SetInParent()
        value.metadata.CopyFrom(METADATA)
    elif layout == 2:  # tf.summary.scalar (TF2): tensor_content, metadata once
        value.tensor.CopyFrom(
            tensor_pb2.TensorProto(dtype=1, tensor_content=np.float32(number).tobytes())
        )
        value.tensor.tensor_shape.SetInParent()
        if first:
            value.metadata.CopyFrom(METADATA)
    else:  # jupyter_cloudml.report(): float64 tensors
        value.tensor.CopyFrom(tensor_pb2.TensorProto(dtype=2, double_val=[number]))
        value.tensor.tensor_shape.SetInParent()
        value.metadata.CopyFrom(METADATA)
    return value


def version_record() -> bytes:
    return frame(event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString())


def scalar_records(count: int, start: int = 0) -> bytes:
    records = []
    for i in range(start, start + count):
        tag = TAGS[i % len(TAGS)]
        event = event_pb2.Event(wall_time=1.7e9 + i * 0.01, step=i // len(TAGS))
        event.summary.value.append(scalar_value(i, tag, 1.0 / (i + 1), i < len(TAGS)))
        records.append(frame(event.SerializeToString()))
    return b"".join(records)


def image_records(count: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(0)
    pngs = []
    for _ in range(8):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(buffer, "PNG")
        pngs.append(buffer.getvalue())
    records = [version_record()]
    for i in range(count):
        event = event_pb2.Event(wall_time=1.7e9 + i, step=i)
        image = summary_pb2.Summary.Image(
            height=256, width=256, colorspace=3, encoded_image_string=pngs[i % len(pngs)]
        )
        event.summary.value.add(tag="samples", image=image)
        records.append(frame(event.SerializeToString()))
        if i % 10 == 0:
            event = event_pb2.Event(wall_time=1.7e9 + i, step=i)
            event.summary.value.add(tag="loss", simple_value=1.0 / (i + 1))
            records.append(frame(event.SerializeToString()))
    return b"".join(records)


def seconds(action: Callable[[], object], runs: int = 1) -> float:
    """Median wall time of ``action``; collected garbage of earlier runs is not charged."""
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def accumulator(path: Path) -> None:
    EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0}).Reload()


def tbparse(path: Path) -> None:
    from tbparse import SummaryReader

    reader = SummaryReader(str(path), event_types={"scalars", "tensors"})
    reader.scalars, reader.tensors  # noqa: B018 (what is timed)


def compare(name: str, path: Path, target: float, skip_tbparse: bool) -> list[str]:
    ours = seconds(lambda: read_scalars(path), runs=3)
    ea = seconds(lambda: accumulator(path))
    tb = float("nan") if skip_tbparse else seconds(lambda: tbparse(path))
    size = path.stat().st_size / 1e6
    return [
        f"| {name} ({size:.0f} MB) | {ours:.2f} | {ea:.2f} | {ea / ours:.1f}x | {tb:.2f} "
        f"| {tb / ours:.1f}x | >= {target:.0f}x |"
    ]


def profile(path: Path) -> str:
    """Where our time goes on the scalar file: framing + CRC, decoding, Scalar objects."""
    data = path.read_bytes()
    gc.disable()
    try:
        start = time.perf_counter()
        payloads, offsets, _ = split_records(data, str(path))
        framed = time.perf_counter()
        points: dict[str, list[tuple[int, float, float]]] = {}
        EventDecoder().decode(payloads, offsets, str(path), points)
        decoded = time.perf_counter()
        _to_scalars(points)
        built = time.perf_counter()
    finally:
        gc.enable()
    n = len(payloads) / 1e9
    return (
        f"per event: framing + CRC32C {(framed - start) / n:.0f} ns, "
        f"decoding {(decoded - framed) / n:.0f} ns, "
        f"sorting + Scalar objects {(built - decoded) / n:.0f} ns "
        f"(file read not included)"
    )


def incremental(folder: Path, base: int, appended: int) -> float:
    """Median seconds for read_new() to return ``appended`` events appended to a read file."""
    path = folder / "events.out.tfevents.incremental"
    path.write_bytes(version_record() + scalar_records(base))
    reader = ScalarReader(folder)
    reader.read_new()
    times = []
    for run in range(5):
        chunk = scalar_records(appended, start=base + run * appended)
        with path.open("ab") as file:
            file.write(chunk)
        start = time.perf_counter()
        new = reader.read_new()
        times.append(time.perf_counter() - start)
        assert sum(map(len, new.values())) == appended
    return statistics.median(times)


FIRST_REPORT = {
    "jupyter_cloudml.report": (
        "from jupyter_cloudml.metrics import report\nreport(loss=0.5, accuracy=0.9)"
    ),
    "tensorboard.summary.Writer": (
        "from tensorboard.summary import Writer\nw = Writer(d)\nw.add_scalar('loss', 0.5, 0)\n"
        "w.add_scalar('accuracy', 0.9, 0)\nw.flush()"
    ),
}


def first_report(code: str, preload: str, folder: Path, runs: int) -> float:
    """Median seconds of import + first report in a fresh interpreter (``runs`` runs)."""
    script = (
        f"{preload}\nimport os, time\nd = {str(folder)!r}\nos.environ['CLOUDML_LOG_DIR'] = d\n"
        f"t = time.perf_counter()\n{code}\nprint(time.perf_counter() - t)"
    )
    times = [
        float(subprocess.check_output([sys.executable, "-c", script], text=True))
        for _ in range(runs)
    ]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="sizes divided by 10")
    parser.add_argument("--skip-tbparse", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    scale = 100 if args.smoke else 10 if args.quick else 1
    report_runs = 1 if args.smoke else 5
    events, images = 1_000_000 // scale, 2_000 // scale
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scalars = folder / "scalars" / "events.out.tfevents.scalars"
        scalars.parent.mkdir()
        scalars.write_bytes(version_record() + scalar_records(events))
        pictures = folder / "images" / "events.out.tfevents.images"
        pictures.parent.mkdir()
        pictures.write_bytes(image_records(images))

        print("| file | read_scalars s | EventAccumulator s | ratio | tbparse s | ratio | target |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for line in compare(f"(a) {events:,} scalar events", scalars, 20, args.skip_tbparse):
            print(line, flush=True)
        for line in compare(f"(b) {images:,} images", pictures, 100, args.skip_tbparse):
            print(line, flush=True)
        print(f"\n(a) profile, {profile(scalars)}")

        (folder / "incremental").mkdir()
        latency = incremental(folder / "incremental", 100_000 // scale, 1_000)
        print(
            f"\n(c) 1,000 events appended to a read file of {100_000 // scale:,}: read_new() "
            f"returns them in {latency * 1000:.1f} ms (median of 5; target <= 50 ms)"
        )

        print("\n| (d) import + first report, fresh process | nothing loaded | numpy loaded |")
        print("|---|---:|---:|")
        for name, code in FIRST_REPORT.items():
            cold = first_report(code, "", folder / "d", report_runs)
            warm = first_report(code, "import numpy", folder / "d", report_runs)
            print(f"| {name} | {cold * 1000:.0f} ms | {warm * 1000:.0f} ms |", flush=True)


if __name__ == "__main__":
    main()
