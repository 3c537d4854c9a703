"""The input side of batch prediction on real files: globs, shards, every format, bad lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jupyter_cloudml.exceptions import InvalidSpec
from jupyter_cloudml.metrics.records import frame
from jupyter_cloudml.models import DataFormat
from jupyter_cloudml.serving.batch_inputs import (
    Row,
    count_rows,
    expand_inputs,
    read_rows,
    shard_files,
)
from jupyter_cloudml.serving.tf_example import decode_example, example_bytes


def test_globs_expand_sorted_without_duplicates(tmp_path: Path):
    for name in ("in-2.json", "in-1.json", "other.csv"):
        (tmp_path / name).write_text("[1]\n")
    files = expand_inputs([str(tmp_path / "in-*.json"), str(tmp_path / "in-1.json")])
    assert files == [str(tmp_path / "in-1.json"), str(tmp_path / "in-2.json")]


def test_an_empty_glob_is_refused_naming_it(tmp_path: Path):
    (tmp_path / "in-1.json").write_text("[1]\n")
    with pytest.raises(InvalidSpec, match=r"'.*nope-\*\.json' matches no file"):
        expand_inputs([str(tmp_path / "in-*.json"), str(tmp_path / "nope-*.json")])


def test_fsspec_uris_are_globbed_and_read():
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/batch-test/a.json", b"[1, 2]\n[3, 4]\n")
    fs.pipe("/batch-test/b.json", b"[5, 6]\n")
    files = expand_inputs(["memory://batch-test/*.json"])
    assert files == ["memory:///batch-test/a.json", "memory:///batch-test/b.json"]
    assert [r.instance for r in read_rows(files[0], DataFormat.JSON)] == [[1, 2], [3, 4]]


def test_shards_take_every_nth_file_and_cover_all_once():
    files = [f"f{i}" for i in range(7)]
    shards = [shard_files(files, i, 3) for i in range(3)]
    assert shards == [["f0", "f3", "f6"], ["f1", "f4"], ["f2", "f5"]]
    assert sorted(f for shard in shards for f in shard) == sorted(files)


def test_more_workers_than_files_is_refused():
    with pytest.raises(InvalidSpec, match="--workers 3 needs at least 3 input files, got 2"):
        shard_files(["a", "b"], 0, 3)


def test_json_lines_with_bad_lines(tmp_path: Path):
    path = tmp_path / "in.json"
    path.write_bytes(b'[1, 2]\n\n{"a": 1}\n[1,\n\xff\xfe\n  \n"text"\n')
    rows = list(read_rows(str(path), DataFormat.JSON))
    assert [(r.line, r.instance) for r in rows if r.error is None] == [
        (1, [1, 2]),
        (3, {"a": 1}),
        (7, "text"),
    ]
    errors = {r.line: r.error for r in rows if r.error is not None}
    assert errors[4].startswith("not JSON: ")
    assert errors[5] == "line is not UTF-8 (byte 0: 0xff)"
    assert count_rows(str(path), DataFormat.JSON) == 5


def test_csv_header_numbers_and_ragged_rows(tmp_path: Path):
    path = tmp_path / "in.csv"
    path.write_bytes(b'a,b,c\n1,2.5,x\n3,4\n"5",6e1,"y,z"\n7,nan,8\n\xff,1,2\n')
    rows = list(read_rows(str(path), DataFormat.CSV))
    assert rows[0] == Row(2, instance=[1, 2.5, "x"])
    assert rows[1] == Row(3, error="2 fields where the header names 3")
    assert rows[2] == Row(4, instance=[5, 60.0, "y,z"])
    assert rows[3] == Row(5, instance=[7, "nan", 8])  # not a finite number: kept as text
    assert rows[4].line == 6 and "not UTF-8" in (rows[4].error or "")


def test_csv_without_a_readable_header_is_refused(tmp_path: Path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"\xff\xfe,a\n1,2\n")
    with pytest.raises(InvalidSpec, match=r"the CSV header \(line 1\) is not UTF-8"):
        list(read_rows(str(path), DataFormat.CSV))


def test_tfrecord_of_examples(tmp_path: Path):
    path = tmp_path / "in.tfrecord"
    records = [
        example_bytes({"x1": [1.5], "x0": [2], "name": [b"a"]}),
        b"\xff\xff\xff",  # framed, but no Example
        example_bytes({"x": [1.0, 2.0, 3.0]}),
    ]
    data = b"".join(frame(r) for r in records)
    path.write_bytes(data + frame(records[0])[:-3])  # a truncated last record
    rows = list(read_rows(str(path), DataFormat.TFRECORD))
    assert rows[0] == Row(1, instance=["a", 2, 1.5])  # features in name order
    assert rows[1].line == 2 and rows[1].error.startswith("not a tf.train.Example")
    assert rows[2] == Row(3, instance=[1.0, 2.0, 3.0])
    assert rows[3].line == 4 and rows[3].error == f"truncated record at byte offset {len(data)}"


def test_a_corrupt_tfrecord_stops_that_file_with_the_offset(tmp_path: Path):
    path = tmp_path / "in.tfrecord"
    good = frame(example_bytes({"x": [1.0]}))
    bad = bytearray(frame(example_bytes({"x": [2.0]})))
    bad[-1] ^= 0xFF
    path.write_bytes(good + bytes(bad))
    rows = list(read_rows(str(path), DataFormat.TFRECORD))
    assert len(rows) == 1 and "corrupt record data at byte offset" in (rows[0].error or "")


def test_examples_round_trip_and_bad_ones_say_why():
    assert decode_example(example_bytes({"b": [b"x", b"y"], "a": [1, 2]})) == [1, 2, "x", "y"]
    with pytest.raises(ValueError, match="the Example has no features"):
        decode_example(b"")
    with pytest.raises(ValueError, match="not UTF-8"):
        decode_example(example_bytes({"a": [b"\xff"]}))


def test_parquet_rows(tmp_path: Path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow

    path = tmp_path / "in.parquet"
    pq.write_table(pyarrow.table({"a": [1.0, 2.0], "b": [3, 4]}), path)
    assert [r.instance for r in read_rows(str(path), DataFormat.PARQUET)] == [[1.0, 3], [2.0, 4]]


def test_an_unreadable_file_is_named(tmp_path: Path):
    with pytest.raises(InvalidSpec, match=r"cannot read input file .*missing\.json"):
        list(read_rows(str(tmp_path / "missing.json"), DataFormat.JSON))


_LINES = st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=30)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=_LINES, fmt=st.sampled_from([DataFormat.JSON, DataFormat.CSV]))
def test_fuzz_text_readers_never_fail_and_number_lines(tmp_path: Path, lines, fmt):
    """Any bytes: each row is an instance or an error, on a real line, in order; nothing
    raises but a CSV header that is not text."""
    path = tmp_path / f"fuzz.{fmt.value}"
    path.write_bytes(b"\n".join(lines))
    try:
        rows = list(read_rows(str(path), fmt))
    except InvalidSpec as exc:
        assert fmt is DataFormat.CSV and "CSV header" in str(exc)
        return
    numbers = [r.line for r in rows]
    assert numbers == sorted(set(numbers))
    assert all(1 <= n <= max(len(lines), 1) for n in numbers)
    for r in rows:
        assert r.error is None or (isinstance(r.error, str) and r.error)
        if r.error is None:
            json.dumps(r.instance)  # what a results line holds
    nonblank = [n for n, b in enumerate(lines, 1) if b.strip() and not _is_blank_text(b)]
    if fmt is DataFormat.JSON:
        assert numbers == nonblank


def _is_blank_text(raw: bytes) -> bool:
    try:
        return not raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=300))
def test_fuzz_tfrecord_reader_never_fails(tmp_path: Path, data: bytes):
    path = tmp_path / "fuzz.tfrecord"
    path.write_bytes(data)
    rows = list(read_rows(str(path), DataFormat.TFRECORD))
    assert all(r.error or r.instance for r in rows)
    assert [r.line for r in rows] == list(range(1, len(rows) + 1))
