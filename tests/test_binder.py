"""binder/: what mybinder.org (repo2docker) builds to run the demo on the local backend. The files
parse, the scripts are valid shell and do what the demo needs, the environment has what the build
and the demo import, and the Binder link opens the demo."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import stat
import subprocess
import sys
import urllib.parse
from pathlib import Path

import nbformat
import pytest
import yaml
from IPython.core.inputtransformer2 import TransformerManager
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from jupyter_cloudml.serving.env import serving_python

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
SCRIPTS = ["postBuild", "start"]
DEMO = "examples/demo.ipynb"


def environment() -> dict:
    with open(BINDER / "environment.yml") as f:
        env = yaml.safe_load(f)
    assert isinstance(env, dict)
    return env


def conda_packages() -> dict[str, str]:
    """The conda dependencies of environment.yml: name -> version spec ('' for none)."""
    out = {}
    for dep in environment()["dependencies"]:
        if isinstance(dep, str):
            name, _, version = dep.partition("=")
            out[name.strip()] = version.strip("= ")
    return out


def pip_requirements() -> list[Requirement]:
    sections = [d["pip"] for d in environment()["dependencies"] if isinstance(d, dict)]
    return [Requirement(line) for section in sections for line in section]


def demo_imports() -> set[str]:
    """Top-level modules the demo's cells import outside `try: ... except ImportError`.

    `%%cloudml_train` cells run as jobs of the local backend, in the same environment: their
    body counts too."""
    found: set[str] = set()
    notebook = nbformat.read(ROOT / DEMO, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        source = cell.source
        if source.startswith("%%"):
            source = source.partition("\n")[2]
        tree = ast.parse(TransformerManager().transform_cell(source))
        guarded = {
            id(node)
            for handler in ast.walk(tree)
            if isinstance(handler, ast.Try) and _catches_import_error(handler)
            for stmt in handler.body
            for node in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def _catches_import_error(node: ast.Try) -> bool:
    names = {"ImportError", "ModuleNotFoundError"}
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        if any(isinstance(k, ast.Name) and k.id in names for k in kinds):
            return True
    return False


def installed_closure(roots: set[str]) -> set[str]:
    """The distributions `roots` bring in, as this environment has them (no extras)."""
    seen: set[str] = set()
    todo = [canonicalize_name(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for req in map(Requirement, requires):
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def run_script(
    name: str, *args: str, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BINDER / name), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


# --- the files -----------------------------------------------------------------------------------


def test_environment_has_the_python_and_node_the_build_needs() -> None:
    env = environment()
    assert env["channels"] == ["conda-forge"]
    conda = conda_packages()
    requires_python = SpecifierSet(
        importlib.metadata.metadata("jupyter-cloudml")["Requires-Python"]
    )
    assert requires_python.contains(Version(conda["python"]))
    # The images build the lab extension with the same node major (the `node` stage).
    dockerfile = (ROOT / "images" / "Dockerfile").read_text()
    node_image = re.search(r"^FROM node:(\d+)[.\w-]* AS node$", dockerfile, re.M)
    assert node_image and conda["nodejs"] == node_image.group(1)
    assert "pip" in conda


def test_environment_has_the_jupyterlab_the_lab_extension_is_built_against() -> None:
    package = json.loads((ROOT / "labextension" / "package.json").read_text())
    built_for = Version(package["dependencies"]["@jupyterlab/application"])
    (jupyterlab,) = [r for r in pip_requirements() if r.name == "jupyterlab"]
    assert jupyterlab.specifier.contains(built_for)
    assert not jupyterlab.specifier.contains(Version(f"{built_for.major + 1}.0.0"))


def test_demo_imports_only_what_binder_installs() -> None:
    imports = demo_imports() - set(sys.stdlib_module_names)
    assert {"jupyter_cloudml", "sklearn"} <= imports  # what this test is about
    roots = {"jupyter-cloudml", *(r.name for r in pip_requirements()), *conda_packages()}
    available = installed_closure(roots)
    providers = dict(importlib.metadata.packages_distributions())
    providers["jupyter_cloudml"] = ["jupyter-cloudml"]  # installed editable here: no top-level
    for module in sorted(imports):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists & available, f"the demo imports {module}; binder/ does not install it"


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_are_executable_shell_that_parses(name: str) -> None:
    path = BINDER / name
    assert path.stat().st_mode & stat.S_IXUSR, f"binder/{name} is not executable"
    shebang = path.read_text().splitlines()[0]
    assert shebang in ("#!/bin/sh", "#!/bin/bash", "#!/usr/bin/env bash"), shebang
    shell = "sh" if shebang == "#!/bin/sh" else "bash"
    proc = subprocess.run([shell, "-n", str(path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_binder_link_opens_the_demo_in_lab() -> None:
    text = (BINDER / "README.md").read_text()
    links = re.findall(r"\((https://mybinder\.org/v2/gh/[^)\s]+)\)", text)
    assert links, "binder/README.md has no mybinder.org link"
    for link in links:
        url = urllib.parse.urlparse(link)
        owner, repo, ref = url.path.split("/")[3:6]
        assert owner and repo and ref
        (urlpath,) = urllib.parse.parse_qs(url.query)["urlpath"]
        assert urlpath == f"lab/tree/{DEMO}"
    nbformat.validate(nbformat.read(ROOT / DEMO, as_version=4))


# --- the scripts, run ----------------------------------------------------------------------------


def test_start_selects_the_local_backend_and_execs_the_server(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "CLOUDML_BACKEND": "kubernetes"}
    proc = run_script(
        "start",
        "sh",
        "-c",
        'echo "$CLOUDML_BACKEND $CLOUDML_SERVING_PYTHON $0 $1"; exit 3',
        "server",
        "--ip=0.0.0.0",
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 3, proc.stderr  # the server's own exit status
    backend, python, *argv = proc.stdout.split()
    assert backend == "local" and argv == ["server", "--ip=0.0.0.0"]
    assert Path(python).parent.parent.parent == tmp_path


def test_post_build_installs_the_repository_and_the_interpreter_start_uses(
    tmp_path: Path,
) -> None:
    """postBuild with a stand-in `python` that records its calls (run in a scratch folder, as
    repo2docker runs it in the repository)."""
    fake = tmp_path / "bin" / "python"
    fake.parent.mkdir()
    log = tmp_path / "calls"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\n')
    fake.chmod(0o755)
    repo, home = tmp_path / "repo", tmp_path / "home"
    (repo / "labextension" / "node_modules" / "react").mkdir(parents=True)
    (repo / "labextension" / "src").mkdir()
    home.mkdir()
    env = {"PATH": f"{fake.parent}:/usr/bin:/bin", "HOME": str(home)}
    proc = run_script("postBuild", cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    pip = calls[0].split()
    assert pip[:3] == ["-m", "pip", "install"] and re.fullmatch(r"\.(\[[\w,-]+\])?", pip[-1])
    module, folder = calls[1].split()[1:]
    assert calls[1].split()[0] == "-m" and module == "jupyter_cloudml.serving.env"
    assert len(calls) == 2
    assert not (repo / "labextension" / "node_modules").exists()
    assert (repo / "labextension" / "src").exists()
    started = run_script("start", "sh", "-c", 'echo "$CLOUDML_SERVING_PYTHON"', cwd=repo, env=env)
    assert started.stdout.strip() == str(serving_python(folder))
