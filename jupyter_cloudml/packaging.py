"""Turn a notebook cell, or a trainer package folder, into a standard Python package to ship.

A cell package holds the cell verbatim (``_cloudml_cell.py``), the runner (``_cloudml_main.py``,
run with ``python -m _cloudml_main``), the local modules the cell imports (found by scanning
imports, transitively), ``--include``d files, the exported variables and the names to return.
Everything is refused before submission when it cannot work: a syntax error, a missing
include, a variable that cannot be pickled.
"""

from __future__ import annotations

import ast
import fnmatch
import gzip
import io
import json
import os
import re
import stat
import sys
import tarfile
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.machinery import PathFinder
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from ._cell_main import CELL_FILE, EXPORTS_FILE, META_FILE, RETURNS_FILE
from .exceptions import PackagingError
from .models import CodePackage

__all__ = [
    "MAIN_MODULE",
    "RETURNS_FILE",
    "describe_package",
    "package_cell",
    "package_directory",
    "package_files",
    "unpack",
]

#: The module a cell package runs (``python -m _cloudml_main``).
MAIN_MODULE = "_cloudml_main"
RUNNER_PATH = Path(__file__).with_name("_cell_main.py")
RESERVED = frozenset({f"{MAIN_MODULE}.py", CELL_FILE, EXPORTS_FILE, META_FILE})
ALWAYS_SKIP = ("__pycache__", "*.pyc", "*.pyo", ".ipynb_checkpoints", ".git")
FIXED_MTIME = 315532800  # 1980-01-01, as reproducible builds use
ROLES = {
    f"{MAIN_MODULE}.py": "runner",
    CELL_FILE: "the cell",
    EXPORTS_FILE: "exported variables",
    META_FILE: "metadata",
}

# Parsing whole modules costs ~200 ms/MB; finding the import statements with a regex first and
# parsing only those is ~20x faster. A match inside a docstring parses as prose and is dropped.
# (A leading "\n" rather than "^" in MULTILINE mode: re searches for it twice as fast.)
_IMPORT_STATEMENT = re.compile(
    rb"\n[ \t\f]*((?:import|from)[ \t\\][^\n\\(#]*(?:(?:\\\r?\n|\([^)]*\))[^\n\\(#]*)*)"
)


class _File(NamedTuple):
    data: bytes
    mode: int


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
) -> CodePackage:
    """Package a cell with the local modules it imports from ``source_dir`` (the notebook's folder).

    ``exports`` are notebook variables shipped by value; ``returns`` are the variables the job
    hands back (``returns.pkl``). Raises PackagingError for anything that could not run.
    """
    tree = _parse_cell(cell)
    _check_variable_names("--export", exports or {})
    _check_variable_names("--return", returns)
    root = _source_root(source_dir)
    requirements = _requirements(root, requirements_file, pip)
    gathered = _Gathered(root, _path_filter([*ALWAYS_SKIP, *excludes]))
    for item in includes:
        gathered.add(_resolve_include(root, item))
    gathered.discover(_imported_top_levels(ast.walk(tree), ()))
    _refuse_reserved(gathered.files)
    meta = {"returns": list(returns), "exports": sorted(exports or {})}
    generated = {
        CELL_FILE: cell.encode("utf-8"),
        f"{MAIN_MODULE}.py": RUNNER_PATH.read_bytes(),
        META_FILE: json.dumps(meta, indent=1, sort_keys=True).encode(),
    }
    if exports:
        generated[EXPORTS_FILE] = _pickle_exports(exports)
    files = {**gathered.files, **{name: _File(data, 0o644) for name, data in generated.items()}}
    return CodePackage(_archive(files), MAIN_MODULE, tuple(sorted(files)), requirements)


def package_directory(
    package_path: str | Path,
    module: str,
    *,
    includes: Sequence[str] = (),
    excludes: Sequence[str] = (),
    requirements_file: str | None = None,
    pip: Sequence[str] = (),
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
        root, seeds = path, _project_modules(path, module)
        setup_py = path / "setup.py"
    gathered = _Gathered(root, _path_filter([*ALWAYS_SKIP, *excludes]))
    for item in [*seeds, *(_resolve_include(root, item) for item in includes)]:
        gathered.add(item)
    gathered.discover()
    _check_module(module, gathered.files, root)
    install_requires = _setup_requires(setup_py) if setup_py else []
    requirements = _requirements(root, requirements_file, pip, install_requires)
    files = gathered.files
    return CodePackage(_archive(files), module, tuple(sorted(files)), requirements)


def describe_package(pkg: CodePackage) -> str:
    """What a package ships, as text for ``--dry-run``: entry module, files, requirements, names."""
    members, meta = _read_members(pkg.archive)
    total = sum(size for _, size in members)
    lines = [
        f"entry module: {pkg.module} (python -m {pkg.module})",
        f"files: {len(members)}, {_human_size(total)} ({_human_size(len(pkg.archive))} compressed)",
    ]
    for name, size in members:
        role = f"  ({ROLES[name]})" if name in ROLES and meta is not None else ""
        lines.append(f"  {_human_size(size):>9}  {name}{role}")
    lines.append(f"requirements: {', '.join(pkg.requirements) or 'none'}")
    if meta is not None:
        lines.append(f"exported variables: {', '.join(meta.get('exports', [])) or 'none'}")
        lines.append(f"returned variables: {', '.join(meta.get('returns', [])) or 'none'}")
    return "\n".join(lines)


def read_cell(archive: bytes) -> str | None:
    """The notebook cell a cell package runs; None for a script or package job."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            member = tar.extractfile(CELL_FILE)
            return None if member is None else member.read().decode("utf-8", errors="replace")
    except KeyError:
        return None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise PackagingError(f"the code package is not a readable archive: {exc}") from exc


def unpack(archive: bytes, dest: str | Path) -> None:
    """Extract a package into ``dest``, refusing members that would land outside it.

    Absolute names, ``..`` components, links pointing out of ``dest`` and device files raise
    PackagingError.
    """
    root = os.path.realpath(dest)
    os.makedirs(root, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
            for member in tar:
                _check_member(member, root)
                if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
                    tar.extract(member, root, filter="data")
                else:
                    tar.extract(member, root)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise PackagingError(f"cannot unpack the package: {exc}") from exc


# --- the cell -------------------------------------------------------------------------------


def _parse_cell(cell: str) -> ast.Module:
    """Parse and compile the cell as plain Python; a syntax error names the line."""
    try:
        tree = ast.parse(cell, "<cell>")
        compile(tree, "<cell>", "exec")
    except SyntaxError as exc:
        raise PackagingError(_syntax_message(cell, exc)) from None
    except ValueError as exc:  # e.g. a lone surrogate: the cell cannot be saved as UTF-8
        raise PackagingError(f"the cell cannot be read as Python source: {exc}") from None
    except (MemoryError, RecursionError):
        raise PackagingError("the cell is nested too deeply for Python to compile") from None
    return tree


def _syntax_message(cell: str, exc: SyntaxError) -> str:
    """``syntax error in the cell, line 3: 'x = (' ('(' was never closed)`` plus a hint."""
    if not exc.lineno:
        return f"syntax error in the cell: {exc.msg}"
    lines = cell.split("\n")
    text = (exc.text or (lines[exc.lineno - 1] if exc.lineno <= len(lines) else "")).strip()
    if len(text) > 80:
        text = text[:77] + "..."
    message = f"syntax error in the cell, line {exc.lineno}: {text!r} ({exc.msg})"
    if text.startswith(("!", "%")):
        message += (
            "; IPython syntax (!command, %magic) is not available: the cell runs as plain Python"
        )
    elif "await" in exc.msg:
        message += "; top-level await works only in IPython: use asyncio.run(...) in the cell"
    return message


def _check_variable_names(flag: str, names: Iterable[str]) -> None:
    """Refuse names that cannot be Python variables."""
    for name in names:
        if not name.isidentifier():
            raise PackagingError(f"{flag} {name!r}: not a Python variable name")


def _pickle_exports(exports: Mapping[str, Any]) -> bytes:
    """All exported values in one cloudpickle (so shared objects stay shared)."""
    import cloudpickle

    try:
        data: bytes = cloudpickle.dumps(dict(exports))
    except Exception as exc:
        raise _export_error(exports, exc) from exc
    return data


def _export_error(exports: Mapping[str, Any], error: Exception) -> PackagingError:
    """Name the exported variable that cannot be pickled, and why."""
    import cloudpickle

    for name, value in exports.items():
        try:
            cloudpickle.dumps(value)
        except Exception as exc:
            kind = type(value)
            type_name = kind.__qualname__
            if kind.__module__ != "builtins":
                type_name = f"{kind.__module__}.{type_name}"
            return PackagingError(f"--export {name!r}: cannot ship a {type_name} by value ({exc})")
    return PackagingError(f"--export: cannot ship the exported variables by value ({error})")


def _refuse_reserved(files: Mapping[str, _File]) -> None:
    """The runner's file names cannot be taken by the user's files."""
    clash = sorted(RESERVED.intersection(files))
    if clash:
        raise PackagingError(f"{clash[0]!r} is a name jupyter-cloudml reserves: rename that file")


# --- gathering files ------------------------------------------------------------------------


class _Gathered:
    """Files gathered under one root folder, keyed by relative posix path."""

    def __init__(self, root: Path, skip: Callable[[str], bool]) -> None:
        self.root = root
        self.skip = skip
        self.files: dict[str, _File] = {}
        #: Top-level module names imported by the gathered .py files.
        self.imported: set[str] = set()

    def add(self, rel: str) -> None:
        """Add a file, or every file in a folder, minus skipped ones."""
        path = self.root / rel
        if rel != "." and self.skip(rel):
            return
        if not path.is_dir():
            self._add_file(rel, path)
            return
        for dirpath, dirnames, filenames in os.walk(path):
            folder = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            prefix = "" if folder == "." else folder + "/"
            dirnames[:] = sorted(d for d in dirnames if not self.skip(prefix + d))
            for name in sorted(filenames):
                if not self.skip(prefix + name):
                    self._add_file(prefix + name, Path(dirpath, name))

    def discover(self, names: Iterable[str] = ()) -> None:
        """Add the local modules named or imported so far, and those they import, transitively."""
        seen: set[str] = set()
        pending = set(names) | self.imported
        while pending:
            name = pending.pop()
            seen.add(name)
            rel = _local_module(self.root, name)
            if rel is not None:
                self.add(rel)
            pending |= self.imported - seen

    def _add_file(self, rel: str, path: Path) -> None:
        if rel in self.files:
            return
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                return
            data = path.read_bytes()
        except OSError as exc:
            raise PackagingError(f"cannot read {path}: {exc.strerror}") from None
        self.files[rel] = _File(data, info.st_mode & 0o777)
        if rel.endswith(".py"):
            self.imported |= _scan_imports(data, tuple(rel.split("/")[:-1]))


def _source_root(source_dir: str | Path) -> Path:
    root = Path(source_dir).absolute()
    if not root.is_dir():
        raise PackagingError(f"source folder {str(source_dir)!r} does not exist")
    return root


def _resolve_include(root: Path, item: str) -> str:
    """The relative path of an ``--include``; refuses a missing path or one outside ``root``."""
    full = os.path.normpath(os.path.join(root, item))
    rel = _relative_inside(full, str(root))
    if rel is None:  # maybe only a symlink in root's own path makes it look outside
        rel = _relative_inside(os.path.realpath(full), os.path.realpath(root))
    if rel is None:
        raise PackagingError(f"--include {item!r}: outside the source folder {root}")
    if not os.path.exists(full):
        raise PackagingError(f"--include {item!r}: no such file in {root}")
    return rel


def _relative_inside(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` as a posix path, or None when it is not inside."""
    rel = os.path.relpath(path, root)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return rel.replace(os.sep, "/")


def _path_filter(patterns: Iterable[str]) -> Callable[[str], bool]:
    """Predicate: does a relative path, or a folder above it, match a glob (by path or name)?"""
    cleaned = {PurePosixPath(p.strip()).as_posix() for p in patterns if p.strip()}
    regex = re.compile("|".join(fnmatch.translate(p) for p in sorted(cleaned)) or "(?!)")

    def matches(rel: str) -> bool:
        parts = rel.split("/")
        return any(
            regex.match(part) or regex.match("/".join(parts[: i + 1]))
            for i, part in enumerate(parts)
        )

    return matches


def _local_module(root: Path, name: str) -> str | None:
    """Where ``import name`` finds a module in ``root``: a package, a .py file or a namespace."""
    if _loaded_elsewhere(name, root):
        return None
    folder = root / name
    if (folder / "__init__.py").is_file():
        return name
    if (root / f"{name}.py").is_file():
        return f"{name}.py"
    if folder.is_dir() and next(folder.rglob("*.py"), None) and not _regular_on_path(name, root):
        return name
    return None


def _loaded_elsewhere(name: str, root: Path) -> bool:
    """Whether ``import name`` already means a module outside ``root`` in the notebook: the
    standard library, or a module this process has loaded from another folder."""
    if name in sys.stdlib_module_names or name in sys.builtin_module_names:
        return True
    module = sys.modules.get(name)
    if module is None:
        return False
    file = getattr(module, "__file__", None)
    locations = [file] if file else list(getattr(module, "__path__", []))
    real_root = os.path.realpath(root)
    return not any(_relative_inside(os.path.realpath(p), real_root) for p in locations)


def _regular_on_path(name: str, root: Path) -> bool:
    """Whether a regular module outside ``root`` wins over a namespace folder in it (as Python
    resolves it), e.g. a ``datasets/`` folder of scripts next to the installed ``datasets``."""
    others = [p for p in sys.path if Path(p or ".").absolute() != root]
    spec = PathFinder.find_spec(name, others)
    return spec is not None and spec.origin not in (None, "namespace")


def _scan_imports(data: bytes, package: tuple[str, ...]) -> set[str]:
    """Top-level names a module's source imports; ``package`` resolves relative imports."""
    names: set[str] = set()
    for match in _IMPORT_STATEMENT.finditer(b"\n" + data):
        try:
            statement = ast.parse(match.group(1))
        except (SyntaxError, ValueError):
            continue
        names |= _imported_top_levels(statement.body, package)
    return names


def _imported_top_levels(nodes: Iterable[ast.AST], package: tuple[str, ...]) -> set[str]:
    """Top-level names imported by the import statements among ``nodes``, for code living in
    ``package`` (which resolves relative imports)."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.add(node.module.partition(".")[0])
            elif 0 < node.level <= len(package):
                names.add(package[0])
    return names


# --- trainer packages -----------------------------------------------------------------------


def _project_modules(path: Path, module: str) -> list[str]:
    """What a project folder ships, as ``find_packages`` would: its packages and .py modules."""
    top = module.partition(".")[0]
    return sorted(
        entry.name
        for entry in path.iterdir()
        if (entry.is_dir() and ((entry / "__init__.py").is_file() or entry.name == top))
        or (entry.is_file() and entry.suffix == ".py")
    )


def _check_module(module: str, files: Mapping[str, _File], root: Path) -> None:
    """Refuse an entry module that is not shipped, listing the modules that are."""
    base = module.replace(".", "/")
    if f"{base}.py" in files or f"{base}/__main__.py" in files:
        return
    modules = sorted(
        rel[: -len(".py")].removesuffix("/__main__").replace("/", ".")
        for rel in files
        if rel.endswith(".py") and not rel.endswith("__init__.py")
    )
    listed = ", ".join(modules[:20]) + (", ..." if len(modules) > 20 else "")
    raise PackagingError(
        f"--module-name {module!r}: neither {base}.py nor {base}/__main__.py is in {root}; "
        f"modules there: {listed or 'none'}"
    )


def _setup_requires(setup_py: Path) -> list[str]:
    """``install_requires`` of a setup.py when it is a literal list (inline or module-level)."""
    try:
        tree = ast.parse(setup_py.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return []
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and _called_name(call.func) == "setup":
            for keyword in call.keywords:
                if keyword.arg == "install_requires":
                    value = keyword.value
                    if isinstance(value, ast.Name):
                        value = _module_assignments(tree).get(value.id, value)
                    return _literal_strings(value)
    return []


def _module_assignments(tree: ast.Module) -> dict[str, ast.expr]:
    """Values bound to plain names at module level (``REQUIRED_PACKAGES = [...]``)."""
    bound: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            bound.update((t.id, node.value) for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and node.value and isinstance(node.target, ast.Name):
            bound[node.target.id] = node.value
    return bound


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _literal_strings(node: ast.expr) -> list[str]:
    """A literal list or tuple of strings, else nothing."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return []
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return []


# --- requirements ---------------------------------------------------------------------------


def _requirements(
    root: Path, requirements_file: str | None, pip: Sequence[str], first: Sequence[str] = ()
) -> tuple[str, ...]:
    """Requirements in order (``first``, the file's lines, ``--pip`` items), without repeats."""
    items = [*first]
    if requirements_file:
        path = root / requirements_file
        if not path.is_file():
            raise PackagingError(f"--requirements {requirements_file!r}: no such file in {root}")
        lines = path.read_text(encoding="utf-8").splitlines()
        items += [re.sub(r"(^|\s)#.*", "", line).strip() for line in lines]
    items += [item.strip() for item in pip]
    return tuple(dict.fromkeys(item for item in items if item))


# --- the archive ----------------------------------------------------------------------------


def package_files(files: Mapping[str, bytes], module: str) -> CodePackage:
    """A package of generated files (no discovery), e.g. the input of a study driver."""
    archive = _archive({rel: _File(data, 0o644) for rel, data in files.items()})
    return CodePackage(archive=archive, module=module, files=tuple(sorted(files)))


def _archive(files: Mapping[str, _File]) -> bytes:
    """A deterministic gzip'd tar: sorted regular files, fixed times and owners, level 1."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=1, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for rel in sorted(files):
            data, mode = files[rel]
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), mode, FIXED_MTIME
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _read_members(archive: bytes) -> tuple[list[tuple[str, int]], dict[str, Any] | None]:
    """The archive's (name, size) pairs and its cell metadata (None for a trainer package)."""
    members: list[tuple[str, int]] = []
    meta = None
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:*") as tar:
        for member in tar:
            if not member.isfile():
                continue
            members.append((member.name, member.size))
            if member.name == META_FILE:
                f = tar.extractfile(member)
                meta = json.load(f) if f is not None else None
    return members, meta


def _check_member(member: tarfile.TarInfo, root: str) -> None:
    """Refuse a member that would be written, or point, outside ``root``."""
    name = member.name

    def refuse(reason: str) -> PackagingError:
        return PackagingError(f"refusing to unpack {name!r}: {reason}")

    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise refuse("absolute path")
    if ".." in re.split(r"[/\\]", name):
        raise refuse("'..' in the path")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise refuse("not a regular file, folder or link")
    if _relative_inside(os.path.realpath(os.path.join(root, name)), root) is None:
        raise refuse("it would land outside the destination")
    if member.issym() or member.islnk():
        base = os.path.dirname(name) if member.issym() else ""
        target = os.path.realpath(os.path.join(root, base, member.linkname))
        if _relative_inside(target, root) is None:
            raise refuse(f"link to {member.linkname!r} outside the destination")


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
