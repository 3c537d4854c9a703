"""Packaging a cell or a trainer folder: what is shipped, what is refused, and how it runs."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
from cloudml_testkit import REPO
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyter_cloudml.exceptions import InvalidSpec, PackagingError
from jupyter_cloudml.models import CodePackage
from jupyter_cloudml.packaging import (
    MAIN_MODULE,
    describe_package,
    package_cell,
    package_directory,
    read_cell,
    unpack,
)

RUNNER = REPO / "jupyter_cloudml" / "_cell_main.py"
GENERATED = {"_cloudml_cell.py", "_cloudml_main.py", "_cloudml_meta.json"}


def write(root: Path, rel: str, text: str = "") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def user_files(pkg: CodePackage) -> set[str]:
    return set(pkg.files) - GENERATED - {"_cloudml_exports.pkl"}


def read_member(pkg: CodePackage, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(pkg.archive), mode="r:gz") as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


def run(
    pkg: CodePackage, tmp_path: Path, *args: str, primary: str = "1", flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Unpack the package into a fresh folder and run its entry module there, as a backend does."""
    dest = tmp_path / "unpacked"
    unpack(pkg.archive, dest)
    env = {**os.environ, "CLOUDML_PRIMARY": primary, "CLOUDML_OUTPUT_DIR": str(tmp_path / "out")}
    env.pop("PYTHONPATH", None)
    command = [sys.executable, *flags, "-m", pkg.module, *args]
    return subprocess.run(command, cwd=dest, env=env, capture_output=True, text=True, timeout=60)


def returned(tmp_path: Path) -> dict[str, object]:
    with open(tmp_path / "out" / "returns.pkl", "rb") as f:
        values: dict[str, object] = pickle.load(f)
    return values


# --- the cell -------------------------------------------------------------------------------


def test_syntax_error_names_the_line_and_its_text(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match=r"line 3: 'x = \(' \('\(' was never closed\)"):
        package_cell("a = 1\nb = 2\nx = (\n", source_dir=tmp_path)


@pytest.mark.parametrize(
    ("cell", "line"), [("!pip install torch", 1), ("x = 1\n%matplotlib inline", 2), ("%%time\n", 1)]
)
def test_ipython_syntax_is_refused_with_a_hint(tmp_path: Path, cell: str, line: int) -> None:
    with pytest.raises(PackagingError, match="runs as plain Python") as caught:
        package_cell(cell, source_dir=tmp_path)
    assert isinstance(caught.value, InvalidSpec)
    assert f"line {line}:" in str(caught.value)


def test_compile_errors_beyond_parsing_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match=r"line 2: .*'return' outside function"):
        package_cell("x = 1\nreturn x\n", source_dir=tmp_path)


def test_cell_is_shipped_verbatim_with_the_runner(tmp_path: Path) -> None:
    cell = "# a comment\nx = 1  # keep me\n"
    pkg = package_cell(cell, source_dir=tmp_path)
    assert pkg.module == MAIN_MODULE == "_cloudml_main"
    assert set(pkg.files) == GENERATED
    assert list(pkg.files) == sorted(pkg.files)
    assert read_member(pkg, "_cloudml_cell.py").decode() == cell
    assert read_member(pkg, "_cloudml_main.py") == RUNNER.read_bytes()


def test_archive_is_deterministic_with_modes_kept(tmp_path: Path) -> None:
    write(tmp_path, "cml_tool.py", "X = 1\n")
    script = write(tmp_path, "run.sh", "echo hi\n")
    script.chmod(0o755)
    first = package_cell("import cml_tool", source_dir=tmp_path, includes=["run.sh"])
    os.utime(script, (1, 1))
    second = package_cell("import cml_tool", source_dir=tmp_path, includes=["run.sh"])
    assert first.archive == second.archive
    with tarfile.open(fileobj=io.BytesIO(first.archive), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert list(members) == sorted(members)
    assert all(m.isfile() for m in members.values())
    assert members["run.sh"].mode == 0o755
    assert members["_cloudml_cell.py"].mode == 0o644
    assert len({m.mtime for m in members.values()}) == 1


# --- finding local modules ------------------------------------------------------------------


def make_project(root: Path) -> None:
    write(root, "cml_helpers.py", "import os\nfrom cml_util import g\n\ndef f():\n    return g()\n")
    write(root, "cml_util.py", "def g():\n    return 41\n")
    write(root, "cml_pkg/__init__.py", "from .core import h\n")
    write(
        root,
        "cml_pkg/core.py",
        "import cml_deep\nfrom . import sibling\n\ndef h():\n    return 1\n",
    )
    write(root, "cml_pkg/sibling.py", "")
    write(root, "cml_pkg/sub/__init__.py", "from ..core import h\nfrom .. import sibling\n")
    write(root, "cml_pkg/data/vocab.txt", "a b c\n")
    write(root, "cml_pkg/__pycache__/core.cpython-311.pyc", "junk")
    write(root, "cml_pkg/stale.pyc", "junk")
    write(root, "cml_pkg/.ipynb_checkpoints/core-checkpoint.py", "")
    write(root, "cml_deep.py", "X = 7\n")
    write(root, "cml_unused.py", "")
    write(root, "cml_ns/part.py", "def p():\n    return 2\n")
    write(root, "cml_lazy.py", "")
    write(root, "json.py", "raise RuntimeError('shadowed the standard library')\n")
    write(root, "hypothesis.py", "raise RuntimeError('shadowed an imported package')\n")
    write(root, "notes/readme.md", "")


CELL = """\
import os, json
import hypothesis
import cml_helpers
from cml_pkg.sub import h
from cml_ns import part
import not_installed_anywhere

def later():
    import cml_lazy

x = cml_helpers.f() + h() + part.p()
"""


def test_local_imports_are_found_transitively(tmp_path: Path) -> None:
    make_project(tmp_path)
    pkg = package_cell(CELL, source_dir=tmp_path)
    assert user_files(pkg) == {
        "cml_helpers.py",
        "cml_util.py",  # imported by cml_helpers
        "cml_pkg/__init__.py",
        "cml_pkg/core.py",
        "cml_pkg/sibling.py",
        "cml_pkg/sub/__init__.py",
        "cml_pkg/data/vocab.txt",  # package data travels with the package
        "cml_deep.py",  # imported from inside the package
        "cml_ns/part.py",  # a namespace folder
        "cml_lazy.py",  # imported inside a function
    }


def test_relative_import_in_an_included_module_pulls_its_package(tmp_path: Path) -> None:
    make_project(tmp_path)
    write(tmp_path, "cml_other/__init__.py", "")
    write(tmp_path, "cml_other/tools/run.py", "from ..base import B\n")
    write(tmp_path, "cml_other/base.py", "B = 1\n")
    pkg = package_cell("x = 1", source_dir=tmp_path, includes=["cml_other/tools/run.py"])
    assert user_files(pkg) == {
        "cml_other/__init__.py",
        "cml_other/base.py",
        "cml_other/tools/run.py",
    }


def test_found_modules_run_in_the_job(tmp_path: Path) -> None:
    make_project(tmp_path / "src")
    pkg = package_cell(
        CELL.replace("import not_installed_anywhere\n", ""),
        source_dir=tmp_path / "src",
        returns=["x"],
    )
    result = run(pkg, tmp_path)
    assert result.returncode == 0, result.stderr
    assert returned(tmp_path) == {"x": 44}


# --- include / exclude ----------------------------------------------------------------------


def test_includes_and_excludes(tmp_path: Path) -> None:
    make_project(tmp_path)
    write(tmp_path, "data/train.csv", "1,2\n")
    write(tmp_path, "data/labels.txt", "a\n")
    write(tmp_path, "data/cache/blob.bin", "x")
    write(tmp_path, "config.yaml", "lr: 0.1\n")
    pkg = package_cell(
        "import cml_helpers, cml_pkg",
        source_dir=tmp_path,
        includes=["data", str(tmp_path / "config.yaml")],
        excludes=["*.csv", "data/cache", "cml_pkg/data/", "sibling.py"],
    )
    assert user_files(pkg) == {
        "cml_helpers.py",
        "cml_util.py",
        "cml_pkg/__init__.py",
        "cml_pkg/core.py",
        "cml_pkg/sub/__init__.py",
        "cml_deep.py",
        "data/labels.txt",
        "config.yaml",
    }


def test_excluded_module_is_not_scanned(tmp_path: Path) -> None:
    make_project(tmp_path)
    pkg = package_cell("import cml_helpers", source_dir=tmp_path, excludes=["cml_helpers.py"])
    assert user_files(pkg) == set()


def test_missing_include_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match=rf"--include 'data.csv': no such file in {tmp_path}"):
        package_cell("x = 1", source_dir=tmp_path, includes=["data.csv"])


@pytest.mark.parametrize("include", ["../secret.txt", "sub/../../secret.txt", "/etc/hostname"])
def test_include_outside_the_source_folder_is_refused(tmp_path: Path, include: str) -> None:
    write(tmp_path, "secret.txt", "s")
    (tmp_path / "src" / "sub").mkdir(parents=True)
    with pytest.raises(PackagingError, match="outside the source folder"):
        package_cell("x = 1", source_dir=tmp_path / "src", includes=[include])


def test_user_file_cannot_take_a_reserved_name(tmp_path: Path) -> None:
    write(tmp_path, "_cloudml_main.py", "")
    with pytest.raises(PackagingError, match="reserves"):
        package_cell("x = 1", source_dir=tmp_path, includes=["_cloudml_main.py"])


def test_missing_source_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match="does not exist"):
        package_cell("x = 1", source_dir=tmp_path / "nope")


# --- requirements ---------------------------------------------------------------------------


def test_requirements_file_and_pip(tmp_path: Path) -> None:
    write(tmp_path, "reqs.txt", "# pinned\nnumpy>=1.26\n\n  pandas  # for tables\ntorch\n")
    pkg = package_cell(
        "x = 1", source_dir=tmp_path, requirements_file="reqs.txt", pip=["torch", "tqdm"]
    )
    assert pkg.requirements == ("numpy>=1.26", "pandas", "torch", "tqdm")


def test_missing_requirements_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match=r"--requirements 'reqs\.txt': no such file"):
        package_cell("x = 1", source_dir=tmp_path, requirements_file="reqs.txt")


# --- exports and returns --------------------------------------------------------------------


def test_exports_returns_and_argv_reach_the_job(tmp_path: Path) -> None:
    cell = (
        "import sys\n"
        "class Model:\n"
        "    def __init__(self, w):\n"
        "        self.w = w\n"
        "model = Model(scale(sum(data)))\n"
        "args = sys.argv\n"
        "print('cell ran with', args)\n"
    )
    exports = {"data": [1, 2, 3], "scale": lambda v: v * 10}
    pkg = package_cell(cell, source_dir=tmp_path, exports=exports, returns=["model", "args"])
    assert "_cloudml_exports.pkl" in pkg.files
    result = run(pkg, tmp_path, "--", "--lr", "0.1")
    assert result.returncode == 0, result.stderr
    assert "cell ran with" in result.stdout
    values = returned(tmp_path)
    assert values["args"] == ["_cloudml_cell.py", "--lr", "0.1"]
    assert values["model"].w == 60  # type: ignore[attr-defined]


def test_returns_are_written_by_the_primary_replica_only(tmp_path: Path) -> None:
    pkg = package_cell("x = 1", source_dir=tmp_path, returns=["x"])
    result = run(pkg, tmp_path, primary="0")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "out" / "returns.pkl").exists()


def test_a_return_name_the_cell_never_defined_is_said_and_the_others_return(
    tmp_path: Path,
) -> None:
    pkg = package_cell("x = 1", source_dir=tmp_path, returns=["x", "model"])
    result = run(pkg, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--return 'model': the cell defined no variable named 'model'" in result.stderr
    assert returned(tmp_path) == {"x": 1}


def test_unpicklable_return_fails_with_its_name(tmp_path: Path) -> None:
    pkg = package_cell(
        "import threading\nlock = threading.Lock()", source_dir=tmp_path, returns=["lock"]
    )
    result = run(pkg, tmp_path)
    assert result.returncode == 1
    assert "--return 'lock': cannot pickle" in result.stderr


def test_failing_cell_traceback_points_at_the_cell_line(tmp_path: Path) -> None:
    pkg = package_cell("a = 1\n\nraise ValueError('boom')\n", source_dir=tmp_path, returns=["a"])
    result = run(pkg, tmp_path)
    assert result.returncode == 1
    assert '_cloudml_cell.py", line 3, in <module>' in result.stderr
    assert "ValueError: boom" in result.stderr
    assert "_cloudml_main.py" not in result.stderr  # the runner's frames are left out
    assert not (tmp_path / "out" / "returns.pkl").exists()


def test_a_magic_cells_lines_are_the_editors(tmp_path: Path) -> None:
    """Line 1 of a notebook cell is `%%cloudml_train ...`: the body's first line is line 2."""
    body = "a = 1\n\nraise ValueError('boom')\n"
    pkg = package_cell(body, source_dir=tmp_path, magic=True)
    result = run(pkg, tmp_path)
    assert result.returncode == 1
    assert '_cloudml_cell.py", line 4, in <module>' in result.stderr
    assert "raise ValueError('boom')" in result.stderr  # the source line shown is that line
    assert read_cell(pkg.archive) == body  # the cell as the user wrote it
    with pytest.raises(PackagingError, match=r"line 3: 'x = \(' "):
        package_cell("a = 1\nx = (\n", source_dir=tmp_path, magic=True)


def test_cell_exit_status_is_kept(tmp_path: Path) -> None:
    pkg = package_cell("import sys\nsys.exit(3)", source_dir=tmp_path)
    assert run(pkg, tmp_path).returncode == 3


def test_runner_needs_only_the_standard_library(tmp_path: Path) -> None:
    pkg = package_cell(
        "import sys\ntotal = sum(data)\nmods = sorted(m for m in sys.modules if 'cloud' in m)",
        source_dir=tmp_path,
        exports={"data": [1, 2]},
        returns=["total", "mods"],
    )
    result = run(pkg, tmp_path, flags=("-S",))  # -S: no site-packages, so no cloudpickle
    assert result.returncode == 0, result.stderr
    assert returned(tmp_path) == {"total": 3, "mods": []}


def test_export_needing_an_absent_module_is_explained(tmp_path: Path) -> None:
    pkg = package_cell("y = f()", source_dir=tmp_path, exports={"f": lambda: 1})
    result = run(pkg, tmp_path, flags=("-S",))  # a lambda needs cloudpickle to load
    assert result.returncode == 1
    assert "--export: the exported variables need the module 'cloudpickle'" in result.stderr


def test_non_ascii_cell_runs(tmp_path: Path) -> None:
    pkg = package_cell(
        "# -*- coding: latin-1 -*-\nword = 'héllo ✓'\n", source_dir=tmp_path, returns=["word"]
    )
    result = run(pkg, tmp_path)
    assert result.returncode == 0, result.stderr
    assert returned(tmp_path) == {"word": "héllo ✓"}


@pytest.mark.parametrize(
    ("value", "kind"), [((i for i in range(3)), "generator"), (threading.Lock(), "_thread.lock")]
)
def test_unpicklable_export_is_refused_with_its_name(
    tmp_path: Path, value: object, kind: str
) -> None:
    with pytest.raises(PackagingError, match=rf"--export 'bad': cannot ship a {kind} by value \("):
        package_cell("x = 1", source_dir=tmp_path, exports={"ok": 1, "bad": value})


def test_variable_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match="--return 'a-b': not a Python variable name"):
        package_cell("x = 1", source_dir=tmp_path, returns=["a-b"])


def test_describe_package(tmp_path: Path) -> None:
    make_project(tmp_path)
    pkg = package_cell(
        "import cml_helpers",
        source_dir=tmp_path,
        pip=["numpy"],
        exports={"data": [1], "lr": 0.1},
        returns=["model"],
    )
    text = describe_package(pkg)
    assert "entry module: _cloudml_main" in text
    assert "cml_helpers.py" in text and "cml_util.py" in text
    assert f"files: {len(pkg.files)}," in text
    assert "KB" in text and " B  cml_util.py" in text
    assert "requirements: numpy" in text
    assert "exported variables: data, lr" in text
    assert "returned variables: model" in text


# --- unpack ---------------------------------------------------------------------------------


def archive_of(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([(tarfile.TarInfo("../evil"), b"x")], "'..'"),
        ([(tarfile.TarInfo("ok/../../evil"), b"x")], "'..'"),
        ([(tarfile.TarInfo("/tmp/evil"), b"x")], "absolute"),
        ([link("esc", "../../etc")], "outside"),
        ([link("esc", "/etc")], "outside"),
        ([link("hard", "../evil", tarfile.LNKTYPE)], "outside"),
        ([link("d", "."), link("d/up", "..")], "outside"),
    ],
)
def test_unpack_refuses_members_leaving_the_destination(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]], reason: str
) -> None:
    dest = tmp_path / "a" / "dest"
    with pytest.raises(PackagingError, match=reason):
        unpack(archive_of(*members), dest)
    assert not (tmp_path / "a" / "evil").exists()
    assert not (tmp_path / "evil").exists()


def test_unpack_refuses_garbage(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match="cannot unpack"):
        unpack(b"not an archive", tmp_path)


def test_unpack_round_trip(tmp_path: Path) -> None:
    make_project(tmp_path / "src")
    pkg = package_cell("import cml_pkg", source_dir=tmp_path / "src")
    unpack(pkg.archive, tmp_path / "dest")
    shipped = {
        p.relative_to(tmp_path / "dest").as_posix()
        for p in (tmp_path / "dest").rglob("*")
        if p.is_file()
    }
    assert shipped == set(pkg.files)


# --- Google AI Platform trainer packages ----------------------------------------------------

TASK = """\
import argparse
import os

from trainer import model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--job-dir", required=True)
    args = parser.parse_args()
    os.makedirs(args.job_dir, exist_ok=True)
    with open(os.path.join(args.job_dir, "result.txt"), "w") as f:
        f.write(str(model.answer()))


if __name__ == "__main__":
    main()
"""

SETUP = """\
from setuptools import find_packages, setup

REQUIRED_PACKAGES = ["tensorflow>=2.15", "cloudml-hypertune"]

setup(
    name="trainer",
    version="0.1",
    install_requires=REQUIRED_PACKAGES,
    packages=find_packages(),
)
raise SystemExit("setup.py must not be executed")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    write(root, "setup.py", SETUP)
    write(root, "trainer/__init__.py")
    write(root, "trainer/task.py", TASK)
    write(root, "trainer/model.py", "def answer():\n    return 42\n")
    write(root, "trainer/__pycache__/task.cpython-311.pyc", "junk")
    write(root, ".venv/lib/site.py", "")
    write(root, "notebook.ipynb", "{}")
    return root


@pytest.mark.parametrize("where", ["trainer", "."])
def test_google_trainer_package_runs(project: Path, tmp_path: Path, where: str) -> None:
    pkg = package_directory(project / where, "trainer.task", pip=["tqdm"])
    assert pkg.module == "trainer.task"
    assert pkg.requirements == ("tensorflow>=2.15", "cloudml-hypertune", "tqdm")
    expected = {"trainer/__init__.py", "trainer/task.py", "trainer/model.py"}
    assert set(pkg.files) == (expected if where == "trainer" else expected | {"setup.py"})
    job_dir = tmp_path / "job"
    result = run(pkg, tmp_path, "--job-dir", str(job_dir))
    assert result.returncode == 0, result.stderr
    assert (job_dir / "result.txt").read_text() == "42"


def test_trainer_module_must_exist(project: Path) -> None:
    with pytest.raises(PackagingError, match=r"'trainer\.train'.*modules there: .*trainer\.task"):
        package_directory(project, "trainer.train")


def test_trainer_package_main_module(tmp_path: Path) -> None:
    write(tmp_path, "trainer/__init__.py")
    write(tmp_path, "trainer/__main__.py", "print('main')\n")
    pkg = package_directory(tmp_path / "trainer", "trainer")
    assert pkg.requirements == ()
    assert run(pkg, tmp_path).stdout == "main\n"


@pytest.mark.parametrize(
    ("setup", "requirements"),
    [
        ("import setuptools\nsetuptools.setup(install_requires=['a', 'b==1'])", ("a", "b==1")),
        ("from setuptools import setup\nsetup(install_requires=load())", ()),
        ("REQS: list = ('x',)\nsetup(install_requires=REQS)", ("x",)),
        ("setup(install_requires=[f'{x}'])", ()),
        ("setup(", ()),
    ],
)
def test_setup_install_requires_is_read_statically(
    tmp_path: Path, setup: str, requirements: tuple[str, ...]
) -> None:
    write(tmp_path, "setup.py", setup)
    write(tmp_path, "trainer/__init__.py")
    write(tmp_path, "trainer/task.py")
    assert package_directory(tmp_path, "trainer.task").requirements == requirements


def test_missing_package_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match=r"--package-path .*: no such folder"):
        package_directory(tmp_path / "nope", "trainer.task")


# --- fuzz -----------------------------------------------------------------------------------

SNIPPETS = [
    "import fuzz_mod",
    "from fuzz_pkg import thing",
    "from . import x",
    "from .. import y",
    "import os, sys as s",
    "!ls -la",
    "%time 1",
    "%%bash",
    "x = (",
    "def f(:",
    "\tpass",
    "    y = 1",
    "await g()",
    "return 1",
    "yield 2",
    "nonlocal q",
    "from __future__ import braces",
    "'''",
    "print('é\\u1234')",
    "class A:\n    pass",
    "\x00",
    "-" * 2000 + "1",
    "[" * 150 + "]" * 150,
]


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    write(root, "fuzz_mod.py", "import fuzz_pkg\n")
    write(root, "fuzz_pkg/__init__.py", "from .inner import thing\n")
    write(root, "fuzz_pkg/inner.py", "thing = 1\n")
    return root


cells = st.one_of(
    st.text(),
    st.lists(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=12)), max_size=8).map("\n".join),
)


@settings(max_examples=300, deadline=None)
@given(cell=cells)
def test_any_text_packages_or_is_refused_cleanly(fuzz_dir: Path, cell: str) -> None:
    try:
        pkg = package_cell(cell, source_dir=fuzz_dir)
    except PackagingError as exc:
        assert str(exc)
        return
    assert pkg.module == MAIN_MODULE
    assert set(pkg.files) >= GENERATED


def test_requirement_files_that_are_no_text_files_are_refused(tmp_path):
    (tmp_path / "reqs.txt").write_bytes(b"x" * (2 << 20))
    (tmp_path / "main.py").write_text("print(1)\n")
    refusals = {
        "reqs.txt": "is larger than 1024 KiB",
        "/dev/zero": "it is not a regular file",
        "x" * 300: "File name too long",
    }
    for name, reason in refusals.items():
        with pytest.raises(PackagingError, match=f"--requirements '.*': .*{reason}"):
            package_cell("print(1)", source_dir=tmp_path, requirements_file=name)
