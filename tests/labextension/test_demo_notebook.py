"""The demo notebook as a user runs it in JupyterLab: "Restart kernel and run all" twice without
an error, its study in TensorBoard's HParams dashboard, then saved and reopened in a fresh
server with every job, study and deployment output still there."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from lab_testkit import CHROMIUM, CHROMIUM_FLAGS, SCREENSHOTS, open_lab, running_lab

ROOT = Path(__file__).resolve().parents[2]
DEMO = "demo.ipynb"
SAVED_COPY = ".jp-OutputArea-output .cloudml-saved-view"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
        reason="no Chromium here (apt-get install chromium); CI installs it and never skips",
    ),
]

#: The notebook's error outputs, read from its model (what would be saved).
ERRORS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const errors = [];
  for (const cell of panel.model.cells) {
    if (cell.type !== 'code') continue;
    for (let i = 0; i < cell.outputs.length; i++) {
      const output = cell.outputs.get(i).toJSON();
      if (output.output_type === 'error') errors.push(output.ename + ': ' + output.evalue);
    }
  }
  return errors;
}"""

#: Every code cell has run: it has an execution count and the kernel is idle.
ALL_RAN = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel || kernel.status !== 'idle') return false;
  for (const cell of panel.model.cells) {
    if (cell.type === 'code' && !cell.executionCount) return false;
  }
  return true;
}"""

#: The cells' execution counts, to tell a fresh run from the one before.
COUNTS = """() => Array.from(window.jupyterapp.shell.currentWidget.model.cells)
  .filter(c => c.type === 'code').map(c => c.executionCount)"""


def restart_and_run_all(page) -> None:
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext.session && w.sessionContext.session.kernel;"
        " return k && k.connectionStatus === 'connected'; }",
        timeout=60_000,
    )
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:restart-run-all')")
    page.locator(".jp-Dialog .jp-mod-accept").click(timeout=30_000)
    page.wait_for_function(
        "() => Array.from(window.jupyterapp.shell.currentWidget.model.cells)"
        ".some(c => c.type === 'code' && !c.executionCount)",
        timeout=60_000,
    )  # the restart cleared the counts
    page.wait_for_function(ALL_RAN, timeout=600_000, polling=1000)


def hparams_groups(page) -> str:
    """What TensorBoard's HParams dashboard says of the study, in its inline frame."""
    page.evaluate(
        "() => { const f = document.querySelector('.jp-cloudml-tensorboard iframe');"
        " f.contentWindow.location.hash = 'hparams'; }"
    )
    frame = page.frame_locator(".jp-cloudml-tensorboard iframe")
    count = frame.get_by_text("Number of matching session groups")
    count.wait_for(timeout=60_000)
    return count.inner_text()


def test_the_demo_runs_twice_then_reopens_with_its_outputs(tmp_path: Path, serving_python: str):
    from playwright.sync_api import sync_playwright

    first_root = tmp_path / "first"
    first_root.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        with running_lab(first_root, serving_python) as lab:
            shutil.copy(ROOT / "examples" / DEMO, lab.root / DEMO)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            open_lab(page, lab, f"lab/tree/{DEMO}")
            page.wait_for_selector(".jp-Notebook .jp-Cell:visible", timeout=60_000)
            for run in (1, 2):
                restart_and_run_all(page)
                assert page.evaluate(ERRORS) == [], f"run {run}"
            deploy = page.locator(".jp-Cell", has_text="%cloudml_deploy iris")
            assert "already serves" in deploy.inner_text()  # the second run: a no-op, said so
            study = lab.client.list_studies()[0]
            assert len(study.trials) == 8
            assert hparams_groups(page).endswith(": 8")  # one row per trial
            if SCREENSHOTS:
                page.screenshot(path=f"{SCREENSHOTS}/demo.png", full_page=True)
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            page.wait_for_function(
                "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000
            )
            saved = (lab.root / DEMO).read_bytes()
            page.close()
        second_root = tmp_path / "second"
        second_root.mkdir()
        with running_lab(second_root, serving_python) as fresh:
            (fresh.root / DEMO).write_bytes(saved)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            open_lab(page, fresh, f"lab/tree/{DEMO}")
            page.wait_for_selector(".jp-Notebook .jp-Cell:visible", timeout=60_000)
            page.wait_for_function(
                f"() => document.querySelectorAll('{SAVED_COPY}').length >= 5", timeout=60_000
            )
            text = page.locator(".jp-Notebook").inner_text()
            assert "model not found" not in text
            for shown in ("linear-regression", "sgd-tuning", "tf-cluster", "ddp", "iris"):
                assert page.locator(SAVED_COPY, has_text=shown).count() >= 1, shown
            page.close()
        browser.close()
