"""The serving interpreter: a venv with kserve, layered over the main environment.

kserve pins versions (psutil<6, protobuf<7, python-dateutil<3) that clash with the main
environment, so replicas run in their own venv. A `.pth` file appends the base interpreter's
site-packages after the venv's own: kserve's pinned dependencies win, and everything else (the
user's scikit-learn, xgboost, torch, their own packages) falls through to the main environment.

    python -m jupyter_cloudml.serving.env PATH [--base-python PYTHON]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

# Bump when the recipe changes: environments built by an older recipe are rebuilt.
RECIPE_VERSION = "1"
KSERVE_REQUIREMENT = "kserve==0.21.*"
SERVING_MODULE = "kserve"  # imported once after a build, to prove the environment works
MARKER_NAME = ".cloudml-serving-env"
# Processed last among the venv's .pth files, so the base comes after everything of the venv.
PTH_NAME = "zz_cloudml_base_env.pth"
PIP_TAIL_LINES = 15


class ServingEnvError(RuntimeError):
    """The serving interpreter could not be created (venv or pip failed, base unusable)."""


def serving_python(path: str | Path) -> Path:
    """The interpreter of the serving environment at `path` (built or not)."""
    return Path(path).absolute() / "bin" / "python"


def find_serving_env(path: str | Path) -> str | None:
    """The serving interpreter at `path` if it was built by the current recipe, else None."""
    root = Path(path).absolute()
    python = serving_python(root)
    if python.exists() and _read_marker(root) == _marker_text():
        return str(python)
    return None


def create_serving_env(
    path: str | Path, base_python: str = sys.executable, *, private: bool = False
) -> str:
    """Create (or reuse) the serving venv at `path` over `base_python`; return its interpreter.
    `private`: everything it writes is its owner's only (umask 077), as in a cloudml home.

    Idempotent and safe when several processes call it at once: they serialise on a lock file
    beside `path`, and a venv built by the current recipe is reused (only its `.pth` to the base
    is refreshed, which is cheap). Raises ServingEnvError with pip's last lines when pip fails.
    """
    root = Path(path).absolute()
    umask = 0o077 if private else None  # the owner's only, as all of a cloudml home
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root.parent / f"{root.name}.lock"):
        base_dirs = _base_site_packages(base_python)
        python = find_serving_env(root)
        built = python is None
        if python is None:
            _build(root, base_python, umask)
            python = str(serving_python(root))
        if private and (built or stat.S_IMODE(root.stat().st_mode) & 0o077):
            _strip_group_and_other(root)  # also one an older version built under the umask
        _write_pth(root, base_dirs, private)
        _check(python, base_dirs, import_module=built)
        _write_marker(root, private)
        return python


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with os.fdopen(
        os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a"
    ) as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _marker_text() -> str:
    return json.dumps({"recipe": RECIPE_VERSION, "requirement": KSERVE_REQUIREMENT})


def _read_marker(root: Path) -> str | None:
    try:
        return (root / MARKER_NAME).read_text().strip()
    except OSError:
        return None


def _write_marker(root: Path, private: bool) -> None:
    _replace_text(root / MARKER_NAME, _marker_text() + "\n", private)


def _replace_text(path: Path, text: str, private: bool) -> None:
    """Write `path` atomically; 0600 when `private`, else as the umask says."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    with os.fdopen(
        os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666), "w"
    ) as out:
        out.write(text)
    tmp.replace(path)


def _build(root: Path, base_python: str, umask: int | None) -> None:
    foreign = root.is_file() or (root.is_dir() and any(root.iterdir()))
    if foreign and not (root / "pyvenv.cfg").exists():
        raise ServingEnvError(f"{root} exists and is not a virtual environment; not touching it")
    shutil.rmtree(root, ignore_errors=True)  # a half-built or outdated venv
    _run([base_python, "-m", "venv", str(root)], "python -m venv", umask)
    _run(
        [
            str(serving_python(root)),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            KSERVE_REQUIREMENT,
        ],
        f"pip install {KSERVE_REQUIREMENT}",
        umask,
    )


def _strip_group_and_other(root: Path) -> None:
    """Take every right of group and others away under `root` (pip chmods its scripts 0755
    whatever the umask)."""
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) & 0o077:
            path.chmod(stat.S_IMODE(mode) & 0o700)


def _run(cmd: Sequence[str], what: str, umask: int | None = None) -> str:
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, check=False, umask=-1 if umask is None else umask
        )
    except OSError as exc:
        raise ServingEnvError(f"{what} could not start: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-PIP_TAIL_LINES:]
        raise ServingEnvError(f"{what} failed (exit code {proc.returncode}):\n" + "\n".join(tail))
    return proc.stdout


def _base_site_packages(base_python: str) -> list[str]:
    out = _run(
        [base_python, "-c", "import json, site; print(json.dumps(site.getsitepackages()))"],
        f"{base_python} (reading its site-packages)",
    )
    try:
        dirs = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise ServingEnvError(f"cannot read the site-packages of {base_python}: {out!r}") from exc
    return [d for d in dirs if os.path.isdir(d)]


def _site_packages(root: Path) -> Path:
    found = sorted(root.glob("lib/python*/site-packages"))
    if not found:
        raise ServingEnvError(f"{root} has no lib/python*/site-packages")
    return found[0]


def _write_pth(root: Path, base_dirs: list[str], private: bool) -> None:
    # `import` lines rather than bare paths: addsitedir also runs the base's own .pth files
    # (editable installs such as this package's), and appends after the venv's directories.
    text = "".join(f"import site; site.addsitedir({d!r})\n" for d in base_dirs)
    pth = _site_packages(root) / PTH_NAME
    if not pth.exists() or pth.read_text() != text:
        _replace_text(pth, text, private)


def _check(python: str, base_dirs: list[str], import_module: bool) -> None:
    code = "import json, sys; print(json.dumps(sys.path))"
    if import_module:
        code = f"import {SERVING_MODULE}; " + code
    out = _run([python, "-c", code], f"{python} (checking the new environment)")
    path = json.loads(out.strip().splitlines()[-1])
    missing = [d for d in base_dirs if d not in path]
    if missing:
        raise ServingEnvError(f"{python} does not see the base site-packages {missing}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: create the serving environment at PATH and print its interpreter."""
    parser = argparse.ArgumentParser(
        prog="python -m jupyter_cloudml.serving.env",
        description="Create the serving interpreter (a venv with kserve over this environment).",
    )
    parser.add_argument("path", help="where to create the venv, e.g. .venv-serving")
    parser.add_argument(
        "--base-python",
        default=sys.executable,
        help="interpreter whose packages the replicas can import (default: this one)",
    )
    args = parser.parse_args(argv)
    try:
        print(create_serving_env(args.path, base_python=args.base_python))
    except ServingEnvError as exc:
        print(f"cloudml-serving: cannot create the serving environment: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
