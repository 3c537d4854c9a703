"""A missing optional extra is one line naming the `pip install` that brings it, in the CLI and
in the magics (the REST API answers it 503 with the same message), never a traceback.

Each case runs in a fresh interpreter where the extra's packages cannot be imported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from jupyter_cloudml.exceptions import BackendUnavailable, MissingExtra

BLOCK = "import sys\nfor name in {names!r}:\n    sys.modules[name] = None\n"


def run(code: str, names: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    script = BLOCK.format(names=names) + code
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


@pytest.mark.parametrize(
    ("argv", "blocked", "line"),
    [
        (
            ["jobs", "list"],
            ["kubernetes"],
            "cloudml: error: the kubernetes backend needs 'kubernetes', which is not installed: "
            "pip install 'jupyter-cloudml[kubernetes]'",
        ),
        (
            ["hub", "manifests", "--user", "bob"],
            ["jupyterhub", "kubespawner"],
            "cloudml: error: 'cloudml hub manifests' needs 'jupyterhub', which is not installed: "
            "pip install 'jupyter-cloudml[hub]'",
        ),
    ],
)
def test_the_cli_names_the_extra(argv, blocked, line):
    code = f"from jupyter_cloudml.cli import main\nraise SystemExit(main({argv!r}))\n"
    out = run(code, blocked, CLOUDML_BACKEND="kubernetes")
    assert out.returncode == 1
    assert out.stderr.strip() == line
    assert "Traceback" not in out.stderr


def test_the_magics_name_the_extra():
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "shell.run_line_magic('load_ext', 'jupyter_cloudml')\n"
        "shell.run_cell('%cloudml jobs')\n"
    )
    out = run(code, ["kubernetes"], CLOUDML_BACKEND="kubernetes")
    shown = out.stdout + out.stderr
    assert "pip install 'jupyter-cloudml[kubernetes]'" in shown
    assert "Traceback" not in shown and "ModuleNotFoundError" not in shown


def test_the_rest_api_answers_it_as_an_unusable_backend():
    error = MissingExtra("the kubernetes backend", "kubernetes", "kubernetes")
    assert isinstance(error, BackendUnavailable) and error.http_status == 503
