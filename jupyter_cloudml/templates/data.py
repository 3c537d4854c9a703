"""The data of a template job, read and checked the same way before submitting (where the data
can be read from here) and inside the job: tables (CSV, Parquet, a shipped DataFrame) and
image folders. Every problem is an `InvalidSpec` saying what is wrong with which input."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..exceptions import InvalidSpec

if TYPE_CHECKING:
    import pandas as pd

#: A notebook DataFrame shipped by value (`--data df`), inside the job's package.
SHIPPED_TABLE = "data.pkl"

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def read_table(data: str, shown_as: str | None = None) -> pd.DataFrame:
    """The rows of `--data`: a CSV or Parquet file, a glob of them, an fsspec URI, or a pickled
    DataFrame (`.pkl`, what `--data df` ships); several files are concatenated. Messages say
    `--data SHOWN_AS` (what the user wrote; default `data`)."""
    import fsspec
    import pandas as pd

    shown = shown_as or data

    try:
        files = fsspec.open_files(data, mode="rb", expand=True)
    except Exception as exc:
        raise InvalidSpec(f"--data {shown}: cannot open: {exc}") from None
    if not files:
        raise InvalidSpec(f"--data {shown}: no such file (nothing matches)")
    frames = []
    for file in files:
        path = file.path
        try:
            with file as handle:
                if path.endswith(".pkl"):
                    frames.append(pd.read_pickle(handle))
                elif path.endswith((".parquet", ".pq")):
                    frames.append(pd.read_parquet(handle))
                else:
                    frames.append(pd.read_csv(handle))
        except FileNotFoundError:
            raise InvalidSpec(f"--data {shown}: no such file: {path}") from None
        except ImportError as exc:
            raise InvalidSpec(f"--data {shown}: reading {path} needs {exc.name}: {exc}") from None
        except pd.errors.EmptyDataError:
            raise InvalidSpec(f"--data {shown}: {path} is empty") from None
        except Exception as exc:
            raise InvalidSpec(f"--data {shown}: cannot read {path}: {exc}") from None
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if frame.empty:
        raise InvalidSpec(f"--data {shown}: no rows")
    return frame


def check_table(frame: pd.DataFrame, target: str, task: str | None, shown_as: str) -> None:
    """Refuse a table a template cannot learn from: no target column, a target with one class,
    a regression target that is not numeric, no feature column."""
    import pandas as pd

    if target not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise InvalidSpec(f"--target {target}: no such column in {shown_as} (columns: {columns})")
    values = frame[target].dropna()
    if values.empty:
        raise InvalidSpec(f"--target {target}: every value is missing in {shown_as}")
    if frame.shape[1] < 2:
        raise InvalidSpec(f"--data {shown_as}: no column besides the target {target}")
    if task == "classification" and values.nunique() < 2:
        only = values.iloc[0]
        raise InvalidSpec(
            f"--target {target}: one class only ({only!r}) in {shown_as}; "
            "classification needs at least two"
        )
    if task == "regression" and not pd.api.types.is_numeric_dtype(values):
        sample = next((v for v in values if not _is_number(v)), values.iloc[0])
        raise InvalidSpec(
            f"--target {target}: regression needs a numeric target, {shown_as} has {sample!r}"
        )


def check_column(frame: pd.DataFrame, column: str, flag: str, shown_as: str) -> None:
    """Refuse a named column that the table lacks (e.g. the text column)."""
    if column not in frame.columns:
        columns = ", ".join(map(str, frame.columns[:20]))
        raise InvalidSpec(f"{flag} {column}: no such column in {shown_as} (columns: {columns})")


def _is_number(value: object) -> bool:
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def image_classes(folder: str | Path, shown_as: str | None = None) -> dict[str, list[Path]]:
    """The images of an image-classification folder, by class (one subfolder each); refused
    when it is no folder, or has fewer than two classes with images."""
    root = Path(folder)
    folder = shown_as or folder
    if not root.is_dir():
        raise InvalidSpec(f"--data {folder}: not a folder (an image template reads a folder)")
    found = {
        child.name: sorted(
            p for p in child.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
        )
        for child in sorted(root.iterdir())
        if child.is_dir() and not child.name.startswith(".")
    }
    found = {name: images for name, images in found.items() if images}
    if len(found) < 2:
        have = f"only {next(iter(found))!r}" if found else "none"
        raise InvalidSpec(
            f"--data {folder}: an image folder needs a subfolder of images per class, at least "
            f"two classes ({have} found; images are {', '.join(IMAGE_SUFFIXES)})"
        )
    return found


def is_local(data: str) -> bool:
    """Whether `--data` is read from this machine's files (not an fsspec URI)."""
    return "://" not in data or data.startswith("file://")


def local_path(data: str, source_dir: str | Path) -> str:
    """A local `--data` made absolute (relative to where the command runs), for the job."""
    data = data.removeprefix("file://")
    return os.path.abspath(os.path.join(source_dir, os.path.expanduser(data)))
