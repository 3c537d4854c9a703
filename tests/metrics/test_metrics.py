"""Metrics: the tfevents reader against TensorBoard's EventAccumulator on files written by real
writers, incremental reads, damaged files, report() in a job process, cloudml-hypertune."""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.util import tensor_util

from jupyter_cloudml.exceptions import InvalidSpec
from jupyter_cloudml.metrics import CorruptEventFile, ScalarReader, read_hypertune, read_scalars
from jupyter_cloudml.metrics.records import frame
from jupyter_cloudml.models import Scalar

NUMERIC_DTYPES = {"float16", "float32", "float64", "int32", "int64"}


# --- reference: TensorBoard's own reader ---------------------------------------------------------


def event_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and "tfevents" in p.name)


def accumulator_scalars(root: Path) -> dict[str, list[tuple[int, float, float]]]:
    """EventAccumulator's scalars (simple values) and scalar tensors, file by file, merged and
    sorted."""
    merged: dict[str, list[tuple[int, float, float]]] = {}
    for path in event_files(root):
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0, "tensors": 0}).Reload()
        tags = acc.Tags()
        for tag in tags["scalars"]:
            merged.setdefault(tag, []).extend(
                (e.step, e.wall_time, e.value) for e in acc.Scalars(tag)
            )
        for tag in tags["tensors"]:
            metadata = acc.summary_metadata.get(tag)
            if metadata is not None and metadata.plugin_data.plugin_name not in ("", "scalars"):
                continue
            for e in acc.Tensors(tag):
                array = tensor_util.make_ndarray(e.tensor_proto)
                if array.size == 1 and array.dtype.name in NUMERIC_DTYPES:
                    merged.setdefault(tag, []).append((e.step, e.wall_time, float(array.item())))
    return {tag: sorted(points) for tag, points in merged.items()}


def as_tuples(scalars: dict[str, list[Scalar]]) -> dict[str, list[tuple[int, float, float]]]:
    return {
        tag: [(s.step, s.wall_time, s.value) for s in points] for tag, points in scalars.items()
    }


def assert_like_accumulator(root: Path) -> dict[str, list[tuple[int, float, float]]]:
    """Same points as EventAccumulator, each tag's sorted by (step, wall_time)."""
    ours = as_tuples(read_scalars(root))
    for points in ours.values():
        keys = [p[:2] for p in points]
        assert keys == sorted(keys)
    # Points tied on (step, wall_time) have no order between EventAccumulator's two reservoirs.
    assert {tag: sorted(points) for tag, points in ours.items()} == accumulator_scalars(root)
    return ours


# --- writing events by hand (tf.summary v2 style: scalar tensors, metadata once per tag) ---------


def event(step: int, wall_time: float, *values: summary_pb2.Summary.Value) -> bytes:
    e = event_pb2.Event(step=step, wall_time=wall_time)
    e.summary.value.extend(values)
    return frame(e.SerializeToString())


def version_event() -> bytes:
    return frame(event_pb2.Event(wall_time=1.0, file_version="brain.Event:2").SerializeToString())


def tensor_value(tag: str, number: float, dtype: str, content: bool, metadata: bool):
    array = np.array(number, dtype=dtype)
    if content:
        proto = tensor_pb2.TensorProto(
            dtype=tensor_util.make_tensor_proto(array).dtype,
            tensor_shape=tensor_shape_pb2.TensorShapeProto(),
            tensor_content=array.tobytes(),
        )
    else:
        proto = tensor_util.make_tensor_proto(array)
    value = summary_pb2.Summary.Value(tag=tag, tensor=proto)
    if metadata:
        value.metadata.CopyFrom(scalar_metadata.create_summary_metadata("", ""))
    return value


def write_v2_style(path: Path, steps: int = 20) -> None:
    """What TF2's tf.summary.scalar writes, in each dtype, content or typed values."""
    records = [version_event()]
    kinds = [(d, c) for d in sorted(NUMERIC_DTYPES) for c in (True, False)]
    for step in range(steps):
        for i, (dtype, content) in enumerate(kinds):
            number = (step * 3 - 17) * (0.25 if dtype.startswith("float") else 1)
            tag = f"v2/{dtype}/{'content' if content else 'values'}"
            value = tensor_value(tag, number, dtype, content, metadata=step == 0)
            records.append(event(step, 1000.0 + step + i / 100, value))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(records))


# --- equality with EventAccumulator, per writer --------------------------------------------------


def test_tensorboard_writer(tmp_path: Path) -> None:
    from tensorboard.summary import Writer

    writer = Writer(str(tmp_path))
    for step in range(50):
        writer.add_scalar("loss", 1 / (step + 1), step)
        writer.add_scalar("accuracy", step / 50, step)
    writer.close()
    ours = assert_like_accumulator(tmp_path)
    assert len(ours["loss"]) == 50 and ours["loss"][3][2] == pytest.approx(0.25)


def test_tensorboardx_writer(tmp_path: Path) -> None:
    tensorboardX = pytest.importorskip("tensorboardX")
    writer = tensorboardX.SummaryWriter(str(tmp_path))
    for step in range(30):
        writer.add_scalar("train/loss", 2.0 - step * 0.01, step)
        writer.add_scalar("named", step, step, display_name="Named", summary_description="d")
        writer.add_scalars("group", {"a": step, "b": -step}, step)  # nested run folders
    writer.close()
    ours = assert_like_accumulator(tmp_path)
    assert len(ours["train/loss"]) == 30 and len(ours["group"]) == 60


def test_torch_writer(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    for step in range(30):
        writer.add_scalar("old", step * 0.5, step)
        writer.add_scalar("new", step * 0.5, step, new_style=True)
        writer.add_scalar("double", step / 3, step, new_style=True, double_precision=True)
    writer.close()
    ours = assert_like_accumulator(tmp_path)
    assert ours["double"][1][2] == 1 / 3  # float64 kept exactly


def test_v2_style_tensors_in_every_dtype(tmp_path: Path) -> None:
    write_v2_style(tmp_path / "events.out.tfevents.1.host")
    ours = assert_like_accumulator(tmp_path)
    assert len(ours) == 10
    assert [(p[0], p[2]) for p in ours["v2/int32/values"][:2]] == [(0, -17.0), (1, -14.0)]


def test_many_tags_many_files_nested_folders(tmp_path: Path) -> None:
    from tensorboard.summary import Writer

    for run in ("a", "b/c", "b/d/e"):
        writer = Writer(str(tmp_path / run))
        for step in range(0, 300, 7):
            for t in range(40):
                writer.add_scalar(f"tag{t:02d}", step * t, step, wall_time=1e9 + step + t / 100)
        writer.close()
    write_v2_style(tmp_path / "b" / "events.out.tfevents.2.v2")
    ours = assert_like_accumulator(tmp_path)
    assert len(ours) == 50 and len(ours["tag07"]) == 3 * 43
    steps = [p[0] for p in ours["tag07"]]
    assert steps == sorted(steps)


def test_large_and_negative_steps_and_step_zero(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.steps"
    steps = [0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**40, 2**62, -1, -(2**40)]
    values = [summary_pb2.Summary.Value(tag="s", simple_value=float(i)) for i in range(len(steps))]
    records = (event(s, 5.0 + i, v) for i, (s, v) in enumerate(zip(steps, values, strict=True)))
    path.write_bytes(version_event() + b"".join(records))
    ours = assert_like_accumulator(path)
    assert [p[0] for p in ours["s"]] == sorted(steps)


def test_unknown_fields_are_stepped_over(tmp_path: Path) -> None:
    """Fields a newer writer may add, with keys of one or two bytes, at every level."""
    value = tensor_value("t", 2.5, "float32", content=False, metadata=True)
    value.tensor.uint32_val.append(7)  # field 16: a two-byte key inside the tensor
    summary = summary_pb2.Summary(value=[value]).SerializeToString()
    unknown = b"\xa2\x06\x03abc" + b"\x98\x03\x05"  # fields 100 (bytes) and 51 (varint)
    inner = summary[2:] + unknown  # the Value, with unknown fields after its own
    summary = b"\x0a" + _varint(len(inner)) + inner + unknown
    data = b"\x09" + struct.pack("<d", 4.0) + b"\x10\x02" + unknown
    data += b"\x2a" + _varint(len(summary)) + summary + unknown
    path = tmp_path / "events.out.tfevents.unknown"
    path.write_bytes(version_event() + frame(data) + frame(data))
    assert assert_like_accumulator(path) == {"t": [(2, 4.0, 2.5), (2, 4.0, 2.5)]}


def test_point_order_within_a_tag_is_step_then_wall_time(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.order"
    value = summary_pb2.Summary.Value(tag="x", simple_value=1.0)
    path.write_bytes(event(5, 3.0, value) + event(2, 9.0, value) + event(5, 1.0, value))
    assert [(s.step, s.wall_time) for s in read_scalars(path)["x"]] == [
        (2, 9.0),
        (5, 1.0),
        (5, 3.0),
    ]


# --- what is not a scalar ------------------------------------------------------------------------


def test_images_histograms_text_audio_are_skipped(tmp_path: Path) -> None:
    tensorboardX = pytest.importorskip("tensorboardX")
    from torch.utils.tensorboard import SummaryWriter

    rng = np.random.default_rng(0)
    x = tensorboardX.SummaryWriter(str(tmp_path / "x"))
    t = SummaryWriter(str(tmp_path / "t"))
    for step in range(3):
        for writer in (x, t):
            writer.add_image("image", rng.random((3, 64, 64)), step)
            writer.add_histogram("weights", rng.normal(size=1000), step)
            writer.add_text("note", f"step {step}", step)
            writer.add_scalar("loss", 1.0 / (step + 1), step)
        t.add_audio("sound", rng.uniform(-1, 1, (1, 800)), step, sample_rate=8000)
    x.close()
    t.close()
    ours = assert_like_accumulator(tmp_path)
    assert set(ours) == {"loss"} and len(ours["loss"]) == 6


def test_v2_image_and_histogram_tensors_are_skipped_even_without_metadata(tmp_path: Path) -> None:
    from tensorboard.plugins.histogram import metadata as histogram_metadata

    histogram = summary_pb2.Summary.Value(
        tag="hist", tensor=tensor_util.make_tensor_proto(np.array([[0.0, 1.0, 5.0]]))
    )
    one_bucket = summary_pb2.Summary.Value(
        tag="hist", tensor=tensor_util.make_tensor_proto(np.array(3.0))
    )  # a one-element tensor of a non-scalar tag, as a writer that sends metadata once may
    first = summary_pb2.Summary.Value()
    first.CopyFrom(histogram)
    first.metadata.CopyFrom(histogram_metadata.create_summary_metadata("", ""))
    scalar = tensor_value("acc", 0.5, "float32", content=True, metadata=True)
    path = tmp_path / "events.out.tfevents.v2"
    records = [event(0, 1.0, first, scalar), event(1, 2.0, histogram), event(2, 3.0, one_bucket)]
    path.write_bytes(version_event() + b"".join(records))
    assert assert_like_accumulator(path) == {"acc": [(0, 1.0, 0.5)]}

    path.write_bytes(version_event() + event(0, 1.0, first, scalar))
    reader = ScalarReader(path)
    reader.read_new()
    with path.open("ab") as file:  # resumed from a cursor, the tag's plugin is still known
        file.write(event(2, 3.0, one_bucket))
    assert ScalarReader(path, cursor=reader.cursor()).read_new() == {}


def test_image_payload_is_never_parsed(tmp_path: Path) -> None:
    """The bytes inside an image value are garbage to a protobuf parser; we step over them."""
    garbage = bytes([0xFF]) * 5000
    value_bytes = b"\x0a\x03img" + b"\x22" + _varint(len(garbage)) + garbage
    summary = b"\x0a" + _varint(len(value_bytes)) + value_bytes
    data = (
        b"\x09" + struct.pack("<d", 7.0) + b"\x10\x03" + b"\x2a" + _varint(len(summary)) + summary
    )
    scalar = summary_pb2.Summary.Value(tag="loss", simple_value=0.5)
    path = tmp_path / "events.out.tfevents.img"
    path.write_bytes(frame(data) + event(3, 8.0, scalar))
    assert as_tuples(read_scalars(path)) == {"loss": [(3, 8.0, 0.5)]}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


# --- incremental reading -------------------------------------------------------------------------


def test_incremental_reads_return_only_what_was_appended(tmp_path: Path) -> None:
    from tensorboard.summary import Writer

    reader = ScalarReader(tmp_path)
    assert reader.read_new() == {}
    writer = Writer(str(tmp_path / "run1"))
    for step in range(5):
        writer.add_scalar("loss", step, step)
    writer.flush()
    assert [s.step for s in reader.read_new()["loss"]] == [0, 1, 2, 3, 4]
    assert reader.read_new() == {}
    for step in range(5, 8):
        writer.add_scalar("loss", step, step)
    writer.flush()
    other = Writer(str(tmp_path / "run2" / "deeper"))
    other.add_scalar("acc", 0.5, 1)
    other.flush()
    new = reader.read_new()
    assert [s.step for s in new["loss"]] == [5, 6, 7] and [s.value for s in new["acc"]] == [0.5]
    writer.close()
    other.close()
    assert reader.read_new() == {}


def test_half_written_last_record_is_read_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.half"
    records = [
        event(i, 10.0 + i, summary_pb2.Summary.Value(tag="x", simple_value=i)) for i in range(4)
    ]
    path.write_bytes(b"".join(records[:2]) + records[2][:5])  # not even a whole header
    reader = ScalarReader(tmp_path)
    assert [s.step for s in reader.read_new()["x"]] == [0, 1]
    offset = len(records[0]) + len(records[1])
    assert json.loads(reader.cursor())["files"] == {path.name: [offset]}
    with path.open("ab") as file:
        file.write(records[2][5:-3])  # header and most of the data
    assert reader.read_new() == {}
    assert read_scalars(path)["x"][-1].step == 1
    with path.open("ab") as file:
        file.write(records[2][-3:] + records[3])
    assert [s.step for s in reader.read_new()["x"]] == [2, 3]


def test_cursor_round_trip(tmp_path: Path) -> None:
    from tensorboard.summary import Writer

    writer = Writer(str(tmp_path / "sub"))
    writer.add_scalar("loss", 1.0, 1)
    writer.flush()
    first = ScalarReader(tmp_path)
    assert set(first.read_new()) == {"loss"}
    cursor = first.cursor()
    files = json.loads(cursor)["files"]
    assert list(files) == [f"sub/{os.listdir(tmp_path / 'sub')[0]}"]  # relative to the path
    writer.add_scalar("loss", 2.0, 2)
    writer.flush()
    resumed = ScalarReader(tmp_path, cursor=cursor)
    assert as_tuples(resumed.read_new())["loss"][0][::2] == (2, 2.0)
    assert resumed.read_new() == {}
    assert ScalarReader(tmp_path, cursor=resumed.cursor()).read_new() == {}
    assert ScalarReader(tmp_path, cursor=cursor).cursor() == cursor
    writer.close()


@pytest.mark.parametrize(
    "cursor", ["nope", "{}", '{"v":1,"files":{"a":[-1]}}', '{"v":9,"files":{}}']
)
def test_bad_cursor_is_a_clear_error(tmp_path: Path, cursor: str) -> None:
    with pytest.raises(InvalidSpec, match="cursor"):
        ScalarReader(tmp_path, cursor=cursor)


def test_replaced_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.r"
    value = summary_pb2.Summary.Value(tag="x", simple_value=1.0)
    path.write_bytes(event(1, 1.0, value) + event(2, 2.0, value))
    reader = ScalarReader(tmp_path)
    reader.read_new()
    path.write_bytes(event(9, 9.0, value))
    assert [s.step for s in reader.read_new()["x"]] == [9]


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_scalars(tmp_path / "nothing")
    assert ScalarReader(tmp_path / "nothing").read_new() == {}


# --- damaged files -------------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "what"), [(3, "header"), (14, "data"), (-2, "data")])
def test_corrupt_record_names_file_and_offset(tmp_path: Path, where: int, what: str) -> None:
    path = tmp_path / "events.out.tfevents.bad"
    records = [event(i, 1.0, summary_pb2.Summary.Value(tag="x", simple_value=i)) for i in range(5)]
    damaged = bytearray(records[2])
    damaged[where] ^= 0x40
    path.write_bytes(b"".join(records[:2]) + bytes(damaged) + b"".join(records[3:]))
    offset = len(records[0]) + len(records[1])
    with pytest.raises(CorruptEventFile, match=f"{what}.* at byte offset {offset}") as info:
        read_scalars(tmp_path)
    assert str(path) in str(info.value)
    reader = ScalarReader(tmp_path)
    with pytest.raises(CorruptEventFile):
        reader.read_new()
    assert reader.cursor() == '{"v":1,"files":{}}'  # nothing consumed


def test_corrupt_file_consumes_nothing_from_the_others(tmp_path: Path) -> None:
    good, bad = tmp_path / "a" / "events.out.tfevents.1", tmp_path / "b" / "events.out.tfevents.2"
    good.parent.mkdir()
    bad.parent.mkdir()
    value = summary_pb2.Summary.Value(tag="x", simple_value=1.0)
    good.write_bytes(event(1, 1.0, value))
    bad.write_bytes(event(1, 1.0, value))
    reader = ScalarReader(tmp_path)
    assert len(reader.read_new()["x"]) == 2
    cursor = reader.cursor()
    with good.open("ab") as file:
        file.write(event(2, 2.0, value))
    with bad.open("ab") as file:
        file.write(event(2, 2.0, value)[:-1] + b"?")
    with pytest.raises(CorruptEventFile, match=re.escape(str(bad))):
        reader.read_new()
    assert reader.cursor() == cursor
    bad.write_bytes(event(1, 1.0, value) + event(2, 2.0, value))  # repaired
    assert [s.step for s in reader.read_new()["x"]] == [2, 2]


def test_malformed_event_with_good_checksums(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.malformed"
    path.write_bytes(event(1, 1.0) + frame(b"\x2a\x10\x0a"))  # summary longer than the event
    with pytest.raises(CorruptEventFile, match=r"malformed event .* byte offset \d+"):
        read_scalars(path)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400), framed=st.booleans())
def test_fuzz_random_bytes(tmp_path: Path, data: bytes, framed: bool) -> None:
    path = tmp_path / "events.out.tfevents.fuzz"
    path.write_bytes(frame(data) if framed else data)
    try:
        result = read_scalars(path)
    except CorruptEventFile:
        return
    assert all(isinstance(s, Scalar) for points in result.values() for s in points)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzz_bit_flips_in_a_real_file(tmp_path: Path, data: st.DataObject) -> None:
    records = [version_event()] + [
        event(i, 2.0 + i, tensor_value("t", i, "float32", content=False, metadata=True))
        for i in range(3)
    ]
    raw = bytearray(b"".join(records))
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    cut = data.draw(st.integers(0, len(raw)))
    path = tmp_path / "events.out.tfevents.flip"
    path.write_bytes(bytes(raw[:cut]))
    with contextlib.suppress(CorruptEventFile):
        read_scalars(path)


# Random valid events: the decoder (with its byte-template fast path) must agree with protobuf.
_tags = st.sampled_from(["loss", "acc", "val/loss", "", "ünï"])
_numbers = st.floats(width=32, allow_nan=False)
_values = st.one_of(
    st.builds(lambda t, v, m: (t, v, m, "simple"), _tags, _numbers, st.booleans()),
    st.builds(
        lambda t, v, m, d, c: (t, v, m, (d, c)),
        _tags,
        st.integers(-1000, 1000),
        st.booleans(),
        st.sampled_from(sorted(NUMERIC_DTYPES)),
        st.booleans(),
    ),
)
_events = st.lists(
    st.tuples(st.integers(-(2**63), 2**63 - 1), st.floats(0, 2e9), st.lists(_values, max_size=3)),
    max_size=25,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=_events)
def test_decoder_agrees_with_protobuf(tmp_path: Path, events: list) -> None:
    records = []
    for step, wall_time, values in events:
        protos = []
        for tag, number, with_metadata, kind in values:
            if kind == "simple":
                value = summary_pb2.Summary.Value(tag=tag, simple_value=number)
                if with_metadata:
                    value.metadata.display_name = "shown"
            else:
                value = tensor_value(tag, number, kind[0], kind[1], with_metadata)
            protos.append(value)
        records.append(event(step, wall_time, *protos))
    path = tmp_path / "events.out.tfevents.prop"
    path.write_bytes(version_event() + b"".join(records))
    assert_like_accumulator(path)


# --- report() ------------------------------------------------------------------------------------


def _run(code: str, env: dict[str, str], cwd: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDML_")}
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**clean, **env},
        cwd=cwd,
        check=True,
        timeout=120,
    )


def test_report_in_a_job_process(tmp_path: Path) -> None:
    job_dir = tmp_path / "job"
    _run(
        """
        from jupyter_cloudml.metrics import report
        for epoch in range(3):
            report(loss=1.0 / (epoch + 1), accuracy=epoch / 3)
        report(step=10, loss=0.1)
        report(**{"val/loss": 0.2})
        """,
        {"CLOUDML_JOB_DIR": str(job_dir), "CLOUDML_REPLICA": "worker-1"},
        tmp_path,
    )
    files = event_files(job_dir)
    assert len(files) == 1 and files[0].parent == job_dir / "metrics" / "worker-1"
    ours = assert_like_accumulator(job_dir)
    assert [(s[0], s[2]) for s in ours["loss"]] == [(0, 1.0), (1, 0.5), (2, 1 / 3), (10, 0.1)]
    assert ours["accuracy"][1][2] == 1 / 3  # float64, not rounded to float32
    assert [s[0] for s in ours["val/loss"]] == [4]  # step=None counts earlier calls


def test_report_log_dir_and_local_default(tmp_path: Path) -> None:
    code = "from jupyter_cloudml.metrics import report; report(step=1, x=2)"
    _run(
        code,
        {"CLOUDML_LOG_DIR": str(tmp_path / "logs"), "CLOUDML_JOB_DIR": "/nonexistent"},
        tmp_path,
    )
    assert as_tuples(read_scalars(tmp_path / "logs"))["x"][0][::2] == (1, 2.0)
    _run(code, {}, tmp_path)
    assert as_tuples(read_scalars(tmp_path / "cloudml-metrics"))["x"][0][::2] == (1, 2.0)


def test_report_is_flushed_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_cloudml.metrics import writer

    monkeypatch.setenv("CLOUDML_LOG_DIR", str(tmp_path))
    monkeypatch.setattr(writer, "_writer", None)
    monkeypatch.setattr(writer, "_calls", 0)
    reader = ScalarReader(tmp_path)
    writer.report(loss=0.5)
    assert as_tuples(reader.read_new()) == {"loss": [(0, pytest.approx(time.time(), abs=60), 0.5)]}
    writer.report(loss=0.25)
    assert [s.step for s in reader.read_new()["loss"]] == [1]


def test_report_bad_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_cloudml.metrics import report

    monkeypatch.setenv("CLOUDML_LOG_DIR", str(tmp_path))
    with pytest.raises(TypeError, match="integer"):
        report(step=1.5, loss=1.0)
    with pytest.raises(TypeError, match="number"):
        report(loss="high")


# --- cloudml-hypertune ---------------------------------------------------------------------------


@pytest.fixture
def metric_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "hypertune" / "output.metrics"
    monkeypatch.setenv("CLOUD_ML_HP_METRIC_FILE", str(path))
    monkeypatch.setenv("CLOUD_ML_TRIAL_ID", "7")
    return path


def test_hypertune_round_trip(metric_file: Path) -> None:
    hypertune = pytest.importorskip("hypertune")
    assert read_hypertune(metric_file) == ({}, 0)
    hpt = hypertune.HyperTune()
    for epoch in range(1, 4):
        hpt.report_hyperparameter_tuning_metric("accuracy", 0.5 + epoch / 10, global_step=epoch)
    scalars, offset = read_hypertune(metric_file)
    assert [(s.step, s.value) for s in scalars["accuracy"]] == [(1, 0.6), (2, 0.7), (3, 0.8)]
    assert read_hypertune(metric_file, offset) == ({}, offset)
    hpt.report_hyperparameter_tuning_metric("accuracy", 0.9, global_step=4)
    hpt.report_hyperparameter_tuning_metric("", 1.5)  # default tag, no step: the line number
    scalars, offset = read_hypertune(metric_file, offset)
    assert [(s.step, s.value) for s in scalars["accuracy"]] == [(4, 0.9)]
    assert [(s.step, s.value) for s in scalars["training/hptuning/metric"]] == [(5, 1.5)]
    report = json.loads(metric_file.read_text().splitlines()[-1])
    assert scalars["training/hptuning/metric"][0].wall_time == report["timestamp"]


def test_hypertune_rewrites_lose_nothing(metric_file: Path) -> None:
    """The library rewrites its file each time, keeping 100 lines; a new instance starts empty."""
    hypertune = pytest.importorskip("hypertune")
    seen: list[int] = []
    offset = 0
    hpt = hypertune.HyperTune()
    for step in range(1, 131):
        if step == 121:  # a new instance empties the file (after a read, as reads are frequent)
            hpt = hypertune.HyperTune()
        hpt.report_hyperparameter_tuning_metric("loss", 1 / step, global_step=step)
        if step % 3 == 0:
            scalars, offset = read_hypertune(metric_file, offset)
            seen += [s.step for s in scalars.get("loss", [])]
    scalars, offset = read_hypertune(metric_file, offset)
    seen += [s.step for s in scalars.get("loss", [])]
    assert seen == list(range(1, 131))


def test_hypertune_partial_line_waits(metric_file: Path) -> None:
    metric_file.parent.mkdir(parents=True)
    line = json.dumps({"timestamp": 5.5, "trial": "1", "acc": "0.5", "global_step": "3"})
    metric_file.write_text(line + "\n" + line.replace("5.5", "6.5")[:20])
    scalars, offset = read_hypertune(metric_file)
    assert as_tuples(scalars) == {"acc": [(3, 5.5, 0.5)]}
    metric_file.write_text(line + "\n" + line.replace("5.5", "6.5") + "\nnot json\n")
    scalars, offset = read_hypertune(metric_file, offset)
    assert as_tuples(scalars) == {"acc": [(3, 6.5, 0.5)]}
