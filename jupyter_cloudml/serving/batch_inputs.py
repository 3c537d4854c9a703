"""The input side of batch prediction: input globs into files, files into numbered instances.

Every format yields `Row`s: the instance and its line (a record's or row's number from 1), or
the reason it could not be read, so one bad line is an error of that line, never of the job.
Files are opened through fsspec (local paths or URIs such as `gs://`, `s3://`, `memory://`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from ..exceptions import InvalidSpec
from ..models import DataFormat


class Row(NamedTuple):
    """One input row: `instance`, or `error` (why it could not be read), at `line`; `text` is
    the instance as the JSON the line held, when it held JSON (written back as it is)."""

    line: int
    instance: Any = None
    error: str | None = None
    text: str | None = None


def expand_inputs(patterns: Sequence[str]) -> list[str]:
    """Every file the globs match, sorted and without duplicates (as fsspec URLs for URIs).

    A pattern that matches nothing is refused, naming it: an empty glob is a mistake."""
    import fsspec

    files: list[str] = []
    for pattern in patterns:
        try:
            fs, _, paths = fsspec.get_fs_token_paths(pattern)
        except (ValueError, ImportError) as exc:
            raise InvalidSpec(f"--input-paths {pattern!r}: {exc}") from None
        matched = [p for p in paths if fs.isfile(p)]
        if not matched:
            raise InvalidSpec(f"--input-paths {pattern!r} matches no file")
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        files += [p if protocol in ("file", "local") else fs.unstrip_protocol(p) for p in matched]
    return sorted(set(files))


def shard_files(files: Sequence[str], shard: int, shards: int) -> list[str]:
    """The files of shard `shard` of `shards`: every `shards`-th file from the `shard`-th."""
    if len(files) < shards:
        raise InvalidSpec(
            f"--workers {shards} needs at least {shards} input files, got {len(files)} "
            f"(each worker takes whole files): give fewer workers or split the input"
        )
    return list(files[shard::shards])


def read_rows(path: str, data_format: DataFormat) -> Iterator[Row]:
    """The rows of one input file; a file that cannot be opened raises InvalidSpec."""
    import fsspec

    try:
        handle = fsspec.open(path, "rb").open()
    except (OSError, ValueError) as exc:
        raise InvalidSpec(f"cannot read input file {path}: {exc}") from None
    with handle:
        if data_format is DataFormat.JSON:
            yield from _json_rows(handle)
        elif data_format is DataFormat.CSV:
            yield from _csv_rows(handle)
        elif data_format is DataFormat.TFRECORD:
            yield from _tfrecord_rows(handle.read(), path)
        else:
            yield from _parquet_rows(handle, path)


def count_rows(path: str, data_format: DataFormat) -> int:
    """How many rows `read_rows` yields for `path` (for progress: rows done of rows total),
    without parsing them where lines are rows."""
    if data_format not in (DataFormat.JSON, DataFormat.CSV):
        return sum(1 for _ in read_rows(path, data_format))
    import fsspec

    try:
        with fsspec.open(path, "rb") as handle:
            lines = sum(1 for raw in handle if raw.strip())
    except (OSError, ValueError) as exc:
        raise InvalidSpec(f"cannot read input file {path}: {exc}") from None
    return max(lines - 1, 0) if data_format is DataFormat.CSV else lines


def _text_lines(handle: Any) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text, error) of every non-blank line, decoded as UTF-8 one by one."""
    for number, raw in enumerate(handle, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, None, f"line is not UTF-8 (byte {exc.start}: {raw[exc.start]:#04x})"
            continue
        if text.strip():
            yield number, text.rstrip("\r\n"), None


def _json_rows(handle: Any) -> Iterator[Row]:
    for number, text, error in _text_lines(handle):
        if error is not None or text is None:
            yield Row(number, error=error)
            continue
        try:
            instance = json.loads(text)
        except ValueError as exc:
            yield Row(number, error=f"not JSON: {exc}")
            continue
        yield Row(number, instance=instance, text=text)


def _csv_value(text: str) -> Any:
    """A CSV field as a number where it reads as a finite one, else as the text."""
    try:
        number = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return text
        return value if math.isfinite(value) else text
    return number


def _csv_rows(handle: Any) -> Iterator[Row]:
    header: list[str] | None = None
    for number, text, error in _text_lines(handle):
        if error is not None or text is None:
            if header is None:
                raise InvalidSpec(f"the CSV header (line {number}) is not UTF-8")
            yield Row(number, error=error)
            continue
        try:
            fields = next(csv.reader([text], strict=True))
        except csv.Error as exc:
            yield Row(number, error=f"not a CSV row: {exc}")
            continue
        if header is None:
            header = fields
            continue
        if len(fields) != len(header):
            reason = f"{len(fields)} fields where the header names {len(header)}"
            yield Row(number, error=reason)
            continue
        yield Row(number, instance=[_csv_value(f) for f in fields])


def _tfrecord_rows(data: bytes, path: str) -> Iterator[Row]:
    from ..metrics.records import CorruptEventFile, split_records
    from .tf_example import decode_example

    try:
        payloads, _, used = split_records(data, path)
    except CorruptEventFile as exc:
        yield Row(1, error=f"{exc}; the file is not read further")
        return
    for number, payload in enumerate(payloads, start=1):
        try:
            yield Row(number, instance=decode_example(payload))
        except ValueError as exc:
            yield Row(number, error=str(exc))
    if used != len(data):
        yield Row(len(payloads) + 1, error=f"truncated record at byte offset {used}")


def _parquet_rows(handle: Any, path: str) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidSpec(
            "--data-format parquet needs pyarrow where the job runs (pip install pyarrow)"
        ) from None
    try:
        parquet = pq.ParquetFile(handle)
    except Exception as exc:
        raise InvalidSpec(f"{path} is not a Parquet file: {exc}") from None
    number = 0
    for batch in parquet.iter_batches():
        columns = [column.to_pylist() for column in batch.columns]
        for values in zip(*columns, strict=True):
            number += 1
            yield Row(number, instance=list(values))
