"""Turn a notebook cell, or a trainer package folder, into a standard Python package to ship.

A cell package holds the cell verbatim (``_cloudml_cell.py``), the runner (``_cloudml_main.py``,
run with ``python -m _cloudml_main``), the local modules the cell imports (found by scanning
imports, transitively), ``--include``d files, the exported variables and the names to return.
Everything is refused before submission when it cannot work: a syntax error, a missing
include, a variable that cannot be pickled."""

from __future__ import annotations

import ast
import gzip
import io
import json
import os
import tarfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._cell_main import CELL_FILE, EXPORTS_FILE, MAGIC_LINE, META_FILE, RETURNS_FILE
from ..exceptions import PackagingError
from ..models import CodePackage
from .archive import PackagedFile, build_archive, check_member, human_size, read_members
from .built import read_built
from .cell import (
    MAIN_MODULE,
    check_variable_names,
    parse_cell,
    pickle_exports,
    refuse_reserved,
)
from .gather import (
    Gathered,
    check_module,
    gather_requirements,
    imported_top_levels,
    path_filter,
    project_modules,
    resolve_include,
    setup_requires,
    source_root,
)

__all__ = [
    "MAIN_MODULE",
    "RETURNS_FILE",
    "describe_package",
    "package_built",
    "package_cell",
    "package_directory",
    "package_files",
    "unpack",
]


#: The program every cell package runs, copied in as `MAIN_MODULE`.
RUNNER_PATH = Path(__file__).parent.parent / "_cell_main.py"


ALWAYS_SKIP = ("__pycache__", "*.pyc", "*.pyo", ".ipynb_checkpoints", ".git")


ROLES = {
    f"{MAIN_MODULE}.py": "runner",
    CELL_FILE: "the cell",
    EXPORTS_FILE: "exported variables",
    META_FILE: "metadata",
}


def package_cell(
    cell: str,
    *,
    source_dir: str | Path,
    includes: Sequence[str] = (),
    excludes: Sequence[str] = (),
    requirements_file: str | None = None,
    pip: Sequence[str] = (),
    exports: Mapping[str, Any] | None = None,
    returns: Sequence[str] = (),
    built: Sequence[str] = (),
    built_given_as: str = "--packages",
    magic: bool = False,
) -> CodePackage:
    """Package a cell with the local modules it imports from ``source_dir`` (the notebook's folder).

    ``exports`` are notebook variables shipped by value; ``returns`` are the variables the job
    hands back (``returns.pkl``). ``magic``: the cell is the body of ``%%cloudml_train``, so
    its file starts with ``MAGIC_LINE`` and syntax errors and tracebacks give the lines the
    notebook shows. Raises PackagingError for anything that could not run.
    """
    cell = MAGIC_LINE + cell if magic else cell
    tree = parse_cell(cell)
    check_variable_names("--export", exports or {})
    check_variable_names("--return", returns)
    root = source_root(source_dir)
    requirements = gather_requirements(root, requirements_file, pip)
    gathered = Gathered(root, path_filter([*ALWAYS_SKIP, *excludes]))
    for item in includes:
        gathered.add(resolve_include(root, item))
    gathered.discover(imported_top_levels(ast.walk(tree), ()))
    refuse_reserved(gathered.files)
    meta = {"returns": list(returns), "exports": sorted(exports or {})}
    generated = {
        CELL_FILE: cell.encode("utf-8"),
        f"{MAIN_MODULE}.py": RUNNER_PATH.read_bytes(),
        META_FILE: json.dumps(meta, indent=1, sort_keys=True).encode(),
    }
    if exports:
        generated[EXPORTS_FILE] = pickle_exports(exports)
    built_files, built_requirements = read_built(built, built_given_as)
    files = {
        **gathered.files,
        **built_files,
        **{name: PackagedFile(data, 0o644) for name, data in generated.items()},
    }
    requirements = (*built_requirements, *requirements)
    return CodePackage(build_archive(files), MAIN_MODULE, tuple(sorted(files)), requirements)


def package_directory(
    package_path: str | Path,
    module: str,
    *,
    includes: Sequence[str] = (),
    excludes: Sequence[str] = (),
    requirements_file: str | None = None,
    pip: Sequence[str] = (),
    built: Sequence[str] = (),
    built_given_as: str = "--packages",
) -> CodePackage:
    """Package a trainer the Google AI Platform way (``--package-path trainer/ --module-name ...``).

    ``package_path`` is the Python package folder itself (shipped under its own name) or a
    project folder holding ``setup.py`` and the packages. ``install_requires`` of a
    ``setup.py`` is read statically (never executed) and added to the requirements.
    """
    path = Path(package_path).absolute()
    if not path.is_dir():
        raise PackagingError(f"--package-path {str(package_path)!r}: no such folder")
    if (path / "__init__.py").is_file():
        root, seeds = path.parent, [path.name]
        setup_py = next((p for p in (root / "setup.py", path / "setup.py") if p.is_file()), None)
    else:
        root, seeds = path, project_modules(path, module)
        setup_py = path / "setup.py"
    gathered = Gathered(root, path_filter([*ALWAYS_SKIP, *excludes]))
    for item in [*seeds, *(resolve_include(root, item) for item in includes)]:
        gathered.add(item)
    gathered.discover()
    check_module(module, gathered.files, root)
    install_requires = setup_requires(setup_py) if setup_py else []
    requirements = gather_requirements(root, requirements_file, pip, install_requires)
    built_files, built_requirements = read_built(built, built_given_as)
    files = {**gathered.files, **built_files}
    requirements = (*built_requirements, *requirements)
    return CodePackage(build_archive(files), module, tuple(sorted(files)), requirements)


def package_built(
    built: Sequence[str],
    module: str,
    pip: Sequence[str] = (),
    built_given_as: str = "--packages",
) -> CodePackage:
    """Only built packages (`--packages dist/trainer-0.1.tar.gz --module-name trainer.task`,
    no source): installed before `module` runs, as AI Platform runs its `packageUris`."""
    if not built:
        raise PackagingError("--module-name without code: give --package-path DIR or --packages")
    files, requirements = read_built(built, built_given_as)
    return CodePackage(build_archive(files), module, tuple(sorted(files)), (*requirements, *pip))


def describe_package(pkg: CodePackage) -> str:
    """What a package ships, as text for ``--dry-run``: entry module, files, requirements, names."""
    members, meta = read_members(pkg.archive)
    total = sum(size for _, size in members)
    lines = [
        f"entry module: {pkg.module} (python -m {pkg.module})",
        f"files: {len(members)}, {human_size(total)} ({human_size(len(pkg.archive))} compressed)",
    ]
    for name, size in members:
        role = f"  ({ROLES[name]})" if name in ROLES and meta is not None else ""
        lines.append(f"  {human_size(size):>9}  {name}{role}")
    lines.append(f"requirements: {', '.join(pkg.requirements) or 'none'}")
    if meta is not None:
        lines.append(f"exported variables: {', '.join(meta.get('exports', [])) or 'none'}")
        lines.append(f"returned variables: {', '.join(meta.get('returns', [])) or 'none'}")
    return "\n".join(lines)


def read_cell(archive: bytes) -> str | None:
    """The notebook cell a cell package runs; None for a script or package job."""
    data = read_member(archive, CELL_FILE)
    return None if data is None else data.decode("utf-8", errors="replace").removeprefix(MAGIC_LINE)


def read_member(archive: bytes, name: str) -> bytes | None:
    """One file of a package; None when it has none of that name."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            member = tar.extractfile(name)
            return None if member is None else member.read()
    except KeyError:
        return None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise PackagingError(f"the code package is not a readable archive: {exc}") from exc


def unpack(archive: bytes, dest: str | Path) -> None:
    """Extract a package into ``dest``, refusing members that would land outside it.

    Absolute names, ``..`` components, links pointing out of ``dest`` and device files raise
    PackagingError. Modes are masked by the process's umask, as for files it creates.
    """
    root = os.path.realpath(dest)
    os.makedirs(root, exist_ok=True)
    umask = os.umask(0)
    os.umask(umask)
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            for member in tar:
                check_member(member, root)
                member.mode &= ~umask  # files are as private as the extracting process wants
                if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                    tar.extract(member, root, filter="data")
                else:
                    tar.extract(member, root)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise PackagingError(f"cannot unpack the package: {exc}") from exc


def package_files(files: Mapping[str, bytes], module: str) -> CodePackage:
    """A package of generated files (no discovery), e.g. the input of a study driver."""
    archive = build_archive({rel: PackagedFile(data, 0o644) for rel, data in files.items()})
    return CodePackage(archive=archive, module=module, files=tuple(sorted(files)))
