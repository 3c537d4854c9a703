"""`train --template ...` through the one grammar into a TrainSpec and a study
(`build_train_spec`, `build_tuning_spec`), and the bad inputs refused before anything is
submitted, on real files."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from jupyter_cloudml.commands.grammar import parse_command
from jupyter_cloudml.commands.study_flags import build_tuning_spec
from jupyter_cloudml.commands.train_spec import build_train_spec
from jupyter_cloudml.exceptions import InvalidSpec
from jupyter_cloudml.models import Goal, ParamType
from jupyter_cloudml.models.kinds import TEMPLATE_LABEL


@pytest.fixture
def table(tmp_path: Path) -> Path:
    frame = pd.DataFrame(
        {"x": [1.0, 2.0, 3.0, 4.0], "colour": ["red", "blue", "red", "blue"], "y": [1, 2, 3, 5]}
    )
    frame["label"] = ["a", "b", "a", "b"]
    frame.to_csv(tmp_path / "rows.csv", index=False)
    return tmp_path / "rows.csv"


def job(tmp_path: Path, *flags: str, user_ns=None, cell=None):
    ns = parse_command(["train", *flags])
    spec = build_train_spec(ns, cell=cell, source_dir=tmp_path, user_ns=user_ns)
    return spec, build_tuning_spec(ns, tmp_path)


def refused(tmp_path: Path, *flags: str, user_ns=None, cell=None) -> str:
    with pytest.raises(InvalidSpec) as error:
        job(tmp_path, *flags, user_ns=user_ns, cell=cell)
    return str(error.value)


def members(spec) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(spec.package.archive)) as tar:
        return set(tar.getnames())


def test_a_template_job_runs_its_package_with_every_parameter(tmp_path, table):
    spec, tuning = job(
        tmp_path, "--template", "tabular-regression", "--data", "rows.csv", "--target", "y",
        "--param", "max_iter=250", "--seed", "7",
    )  # fmt: skip
    assert tuning is None
    assert spec.name == "tabular-regression" and spec.package.module == "trainer.tabular"
    assert spec.labels[TEMPLATE_LABEL] == "tabular-regression"
    args = list(spec.args)
    assert args[:6] == ["--task", "regression", "--data", str(table), "--target", "y"]
    assert args[6:8] == ["--seed", "7"]
    assert "--max_iter=250" in args and "--learning_rate=0.1" in args and "--model=hgb" in args
    assert "trainer/tabular.py" in members(spec)


def test_tune_searches_the_template_space_less_the_fixed_parameters(tmp_path, table):
    spec, tuning = job(
        tmp_path, "--template", "tabular-regression", "--data", "rows.csv", "--target", "y",
        "--tune", "--trials", "6", "--parallel", "2", "--seed", "3",
        "--param", "max_iter=80", "--param", "model=choice(hgb,mlp)",
    )  # fmt: skip
    assert tuning is not None and tuning.metric == "r2" and tuning.goal is Goal.MAXIMIZE
    assert (tuning.max_trials, tuning.parallel_trials, tuning.seed) == (6, 2, 3)
    names = {p.name for p in tuning.params}
    assert names == {
        "learning_rate",
        "max_leaf_nodes",
        "min_samples_leaf",
        "l2_regularization",
        "model",
    }
    model = next(p for p in tuning.params if p.name == "model")
    assert model.type is ParamType.CATEGORICAL and model.values == ("hgb", "mlp")
    assert "--max_iter=80" in spec.args
    assert not any(a.startswith(("--learning_rate=", "--model=")) for a in spec.args)


def test_a_notebook_dataframe_is_shipped_by_value(tmp_path):
    frame = pd.DataFrame({"f": [1, 2, 3, 4], "label": ["x", "y", "x", "y"]})
    spec, _ = job(
        tmp_path, "--template", "tabular-classification", "--data", "df", "--target", "label",
        user_ns={"df": frame},
    )  # fmt: skip
    assert "data.pkl" in members(spec)
    assert spec.args[2:4] == ("--data", "data.pkl")
    with tarfile.open(fileobj=io.BytesIO(spec.package.archive)) as tar:
        shipped = pd.read_pickle(tar.extractfile("data.pkl"))
    pd.testing.assert_frame_equal(shipped, frame)


def test_parquet_files_and_globs_are_read_and_checked(tmp_path):
    for part in (0, 1):
        frame = pd.DataFrame({"x": [part, 2.0], "y": ["a", "b"]})
        frame.to_parquet(tmp_path / f"part-{part}.parquet")
    spec, _ = job(
        tmp_path, "--template", "tabular-classification", "--data", "part-*.parquet",
        "--target", "y",
    )  # fmt: skip
    assert spec.args[2:4] == ("--data", str(tmp_path / "part-*.parquet"))
    message = refused(
        tmp_path, "--template", "tabular-regression", "--data", "part-*.parquet", "--target", "y"
    )
    assert message == "--target y: regression needs a numeric target, part-*.parquet has 'a'"
    from jupyter_cloudml.templates.data import read_table

    assert len(read_table(str(tmp_path / "part-*.parquet"))) == 4


def test_a_uri_is_left_for_the_job_to_read(tmp_path):
    spec, _ = job(
        tmp_path, "--template", "tabular-regression", "--data", "s3://bucket/rows-*.csv",
        "--target", "y",
    )  # fmt: skip
    assert spec.args[2:4] == ("--data", "s3://bucket/rows-*.csv")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--target", "nope"], "--target nope: no such column in rows.csv (columns: x, colour, y"),
        (
            ["--target", "label"],
            "--target label: regression needs a numeric target, rows.csv has 'a'",
        ),
        (
            ["--target", "y", "--param", "depth=3"],
            "--param depth: template tabular-regression has no such parameter",
        ),
        (
            ["--target", "y", "--param", "max_iter=many"],
            "--param max_iter=many: expected a whole number",
        ),
        (
            ["--target", "y", "--param", "model=xgb"],
            "--param model=xgb: choose from hgb, linear, mlp",
        ),
        (
            ["--target", "y", "--param", "max_iter=int(1,5)"],
            "--param max_iter=int(1,5): a search space needs --tune",
        ),
        (["--target", "y", "--trials", "4"], "--trials tune the template: add --tune"),
        (
            ["--target", "y", "--metric", "rmse"],
            "--template runs the template's own code: drop --metric",
        ),
        (
            ["--target", "y", "--module", "x.y"],
            "--template runs the template's own code: drop --module",
        ),
        ([], "--template tabular-regression needs --target COL"),
    ],
)
def test_bad_template_flags_are_refused_before_submitting(tmp_path, table, flags, message):
    got = refused(tmp_path, "--template", "tabular-regression", "--data", "rows.csv", *flags)
    assert got.startswith(message), got


def test_bad_data_is_refused_before_submitting(tmp_path, table):
    base = ["--template", "tabular-classification", "--target", "label"]
    (tmp_path / "empty.csv").write_text("")
    assert refused(tmp_path, *base, "--data", "empty.csv") == "--data empty.csv: " + (
        f"{tmp_path / 'empty.csv'} is empty"
    )
    (tmp_path / "header.csv").write_text("x,label\n")
    assert refused(tmp_path, *base, "--data", "header.csv") == "--data header.csv: no rows"
    assert refused(tmp_path, *base, "--data", "missing.csv").startswith(
        "--data missing.csv: no such file"
    )
    (tmp_path / "binary.parquet").write_bytes(b"\x00\x01 not parquet")
    assert "--data binary.parquet: " in refused(tmp_path, *base, "--data", "binary.parquet")
    pd.DataFrame({"x": [1, 2], "label": ["a", "a"]}).to_csv(tmp_path / "one.csv", index=False)
    assert refused(tmp_path, *base, "--data", "one.csv") == (
        "--target label: one class only ('a') in one.csv; classification needs at least two"
    )
    frame = pd.DataFrame({"x": [1, 2], "label": ["a", "a"]})
    assert "one class only" in refused(tmp_path, *base, "--data", "df", user_ns={"df": frame})
    assert refused(tmp_path, *base, "--data", "rows", user_ns={"rows": [1, 2]}) == (
        "--data rows: the notebook variable rows is a list, not a DataFrame (give a DataFrame, "
        "or a path)"
    )


def test_an_image_folder_without_classes_is_refused(tmp_path):
    base = ["--template", "image-classification", "--data"]
    (tmp_path / "photos" / "cats").mkdir(parents=True)
    (tmp_path / "photos" / "cats" / "a.png").write_bytes(b"png")
    (tmp_path / "photos" / "notes").mkdir()
    message = refused(tmp_path, *base, "photos")
    assert message.startswith("--data photos: an image folder needs a subfolder of images per")
    assert "only 'cats' found" in message
    assert refused(tmp_path, *base, "nowhere").startswith("--data nowhere: not a folder")
    assert refused(tmp_path, *base, "photos", "--target", "y").startswith("--target: template")


def test_template_flags_without_a_template_and_code_with_one_are_refused(tmp_path, table):
    assert refused(tmp_path, "train.py", "--data", "rows.csv") == (
        "--data go with --template NAME (see 'cloudml templates list')"
    )
    assert refused(tmp_path, "--tune", "--target", "y").startswith("--target, --tune go with")
    message = refused(
        tmp_path, "--template", "tabular-regression", "--data", "rows.csv", "--target", "y",
        cell="print(1)",
    )  # fmt: skip
    assert message == "--template runs the template's own code: leave the cell empty"
