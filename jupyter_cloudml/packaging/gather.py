"""The files a package ships: local modules a cell imports from its folder, includes and
excludes, a trainer project's modules and its requirements."""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.machinery import PathFinder
from pathlib import Path, PurePosixPath

from ..exceptions import InvalidSpec, PackagingError
from .archive import PackagedFile, relative_inside
from .files import read_text_file

# Parsing whole modules costs ~200 ms/MB; finding the import statements with a regex first and
# parsing only those is ~20x faster. A match inside a docstring parses as prose and is dropped.
# (A leading "\n" rather than "^" in MULTILINE mode: re searches for it twice as fast.)
_IMPORT_STATEMENT = re.compile(
    rb"\n[ \t\f]*((?:import|from)[ \t\\][^\n\\(#]*(?:(?:\\\r?\n|\([^)]*\))[^\n\\(#]*)*)"
)


class Gathered:
    """Files gathered under one root folder, keyed by relative posix path."""

    def __init__(self, root: Path, skip: Callable[[str], bool]) -> None:
        self.root = root
        self.skip = skip
        self.files: dict[str, PackagedFile] = {}
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
            rel = local_module(self.root, name)
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
        self.files[rel] = PackagedFile(data, info.st_mode & 0o777)
        if rel.endswith(".py"):
            self.imported |= scan_imports(data, tuple(rel.split("/")[:-1]))


def source_root(source_dir: str | Path) -> Path:
    root = Path(source_dir).absolute()
    if not root.is_dir():
        raise PackagingError(f"source folder {str(source_dir)!r} does not exist")
    return root


def resolve_include(root: Path, item: str) -> str:
    """The relative path of an ``--include``; refuses a missing path or one outside ``root``."""
    full = os.path.normpath(os.path.join(root, item))
    rel = relative_inside(full, str(root))
    if rel is None:  # maybe only a symlink in root's own path makes it look outside
        rel = relative_inside(os.path.realpath(full), os.path.realpath(root))
    if rel is None:
        raise PackagingError(f"--include {item!r}: outside the source folder {root}")
    if not os.path.exists(full):
        raise PackagingError(f"--include {item!r}: no such file in {root}")
    return rel


def path_filter(patterns: Iterable[str]) -> Callable[[str], bool]:
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


def local_module(root: Path, name: str) -> str | None:
    """Where ``import name`` finds a module in ``root``: a package, a .py file or a namespace."""
    if loaded_elsewhere(name, root):
        return None
    folder = root / name
    if (folder / "__init__.py").is_file():
        return name
    if (root / f"{name}.py").is_file():
        return f"{name}.py"
    if folder.is_dir() and next(folder.rglob("*.py"), None) and not regular_on_path(name, root):
        return name
    return None


def loaded_elsewhere(name: str, root: Path) -> bool:
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
    return not any(relative_inside(os.path.realpath(p), real_root) for p in locations)


def regular_on_path(name: str, root: Path) -> bool:
    """Whether a regular module outside ``root`` wins over a namespace folder in it (as Python
    resolves it), e.g. a ``datasets/`` folder of scripts next to the installed ``datasets``."""
    others = [p for p in sys.path if Path(p or ".").absolute() != root]
    spec = PathFinder.find_spec(name, others)
    return spec is not None and spec.origin not in (None, "namespace")


def scan_imports(data: bytes, package: tuple[str, ...]) -> set[str]:
    """Top-level names a module's source imports; ``package`` resolves relative imports."""
    names: set[str] = set()
    for match in _IMPORT_STATEMENT.finditer(b"\n" + data):
        try:
            statement = ast.parse(match.group(1))
        except (SyntaxError, ValueError):
            continue
        names |= imported_top_levels(statement.body, package)
    return names


def imported_top_levels(nodes: Iterable[ast.AST], package: tuple[str, ...]) -> set[str]:
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


def project_modules(path: Path, module: str) -> list[str]:
    """What a project folder ships, as ``find_packages`` would: its packages and .py modules."""
    top = module.partition(".")[0]
    return sorted(
        entry.name
        for entry in path.iterdir()
        if (entry.is_dir() and ((entry / "__init__.py").is_file() or entry.name == top))
        or (entry.is_file() and entry.suffix == ".py")
    )


def check_module(module: str, files: Mapping[str, PackagedFile], root: Path) -> None:
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


def setup_requires(setup_py: Path) -> list[str]:
    """``install_requires`` of a setup.py when it is a literal list (inline or module-level)."""
    try:
        tree = ast.parse(setup_py.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return []
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and called_name(call.func) == "setup":
            for keyword in call.keywords:
                if keyword.arg == "install_requires":
                    value = keyword.value
                    if isinstance(value, ast.Name):
                        value = module_assignments(tree).get(value.id, value)
                    return literal_strings(value)
    return []


def module_assignments(tree: ast.Module) -> dict[str, ast.expr]:
    """Values bound to plain names at module level (``REQUIRED_PACKAGES = [...]``)."""
    bound: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            bound.update((t.id, node.value) for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and node.value and isinstance(node.target, ast.Name):
            bound[node.target.id] = node.value
    return bound


def called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def literal_strings(node: ast.expr) -> list[str]:
    """A literal list or tuple of strings, else nothing."""
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return []
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return []


def gather_requirements(
    root: Path, requirements_file: str | None, pip: Sequence[str], first: Sequence[str] = ()
) -> tuple[str, ...]:
    """Requirements in order (``first``, the file's lines, ``--pip`` items), without repeats."""
    items = [*first]
    if requirements_file:
        flag = f"--requirements {requirements_file!r}"
        path = root / requirements_file
        try:
            exists = path.exists()
        except OSError as error:  # e.g. a name longer than the system allows
            raise PackagingError(f"{flag}: {error.strerror or error}") from None
        if not exists:
            raise PackagingError(f"{flag}: no such file in {root}")
        try:
            lines = read_text_file(path).splitlines()
        except InvalidSpec as error:
            raise PackagingError(f"{flag}: {error}") from None
        items += [re.sub(r"(^|\s)#.*", "", line).strip() for line in lines]
    items += [item.strip() for item in pip]
    return tuple(dict.fromkeys(item for item in items if item))
