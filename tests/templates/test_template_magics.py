"""Templates in IPython: `%cloudml templates`, and `%%cloudml_train --template ...` alone in a
cell (no code needed) refusing bad data before submitting."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell


def submitted(shell: InteractiveShell) -> int:
    return shell.magics_manager.registry["CloudMLMagics"].client.list().total


def test_the_templates_verbs_run_in_a_notebook(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_line_magic("cloudml", "templates")
    listed = capsys.readouterr().out
    assert listed.startswith("NAME") and "text-classification" in listed
    shell.run_line_magic("cloudml", "templates describe text-classification")
    described = capsys.readouterr().out
    assert re.search(r"^C +1\.0 +loguniform\(0\.01,100\) +inverse", described, re.MULTILINE)
    assert "--- trainer/text.py ---" in described and "def pipeline(args" in described
    assert "--- trainer/common.py ---" in described and "trainer/image.py" not in described


def test_a_template_cell_needs_no_body_and_bad_data_is_refused_before_submitting(
    shell: InteractiveShell, tmp_path
) -> None:
    pd.DataFrame({"x": [1, 2, 3]}).to_csv(tmp_path / "rows.csv", index=False)
    result = shell.run_cell(
        "%%cloudml_train --template tabular-regression --data rows.csv --target y\n"
    )
    assert isinstance(result.error_in_exec, UsageError)
    assert str(result.error_in_exec) == ("--target y: no such column in rows.csv (columns: x)")
    shell.user_ns["df"] = pd.DataFrame({"x": [1, 2], "label": ["a", "a"]})
    with pytest.raises(UsageError, match=r"one class only \('a'\) in DataFrame df"):
        shell.run_line_magic(
            "cloudml_train", "--template tabular-classification --data df --target label"
        )
    with pytest.raises(UsageError, match="leave the cell empty"):
        shell.run_cell_magic(
            "cloudml_train", "--template tabular-regression --data rows.csv --target x", "x = 1"
        )
    assert submitted(shell) == 0
