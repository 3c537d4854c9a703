"""Browser tests: a real JupyterLab with the extension, driven in Chromium by Playwright.

A notebook cell starts a job with `%%cloudml_train`; the sidebar shows it, its detail panel
shows logs and a metric chart, a running job is cancelled from the panel, TensorBoard opens in
a lab tab and inline in the notebook. Needs /usr/bin/chromium (`.ci/run` installs it).
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from lab_testkit import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    SCREENSHOTS,
    Lab,
    open_lab,
    running_lab,
)

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.client import Client
from jupyter_cloudml.models import (
    DeploySpec,
    JobStatus,
    ParamSpec,
    ParamType,
    TrainSpec,
    TuningSpec,
)
from jupyter_cloudml.packaging import package_cell

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
        reason="no Chromium here (apt-get install chromium); CI installs it and never skips",
    ),
]

TRAIN_CELL = """%%cloudml_train --name ui-train
import time
import jupyter_cloudml
for step in range(8):
    print(f"step {step} loss {1.0 / (step + 1):.3f}", flush=True)
    jupyter_cloudml.report(step=step, loss=1.0 / (step + 1))
    time.sleep(0.5)
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, serving_python: str) -> Iterator[Lab]:
    with running_lab(tmp_path_factory.mktemp("lab"), serving_python) as the_lab:
        yield the_lab


@pytest.fixture(scope="module")
def browser(lab: Lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, lab: Lab):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not [e for e in errors if "cloudml" in e.lower()], errors


def run_all_cells(page) -> None:
    page.wait_for_selector(".jp-Notebook .jp-Cell:visible", timeout=60_000)
    page.wait_for_function(
        "() => { const w = window.jupyterapp.shell.currentWidget;"
        " return w && w.sessionContext && w.sessionContext.session"
        " && w.sessionContext.session.kernel"
        " && w.sessionContext.session.kernel.connectionStatus === 'connected'; }",
        timeout=60_000,
    )
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def open_sidebar(page) -> None:
    if not page.locator("#cloudml-sidebar").is_visible():
        page.locator('.jp-SideBar [data-id="cloudml-sidebar"]').click()
    page.wait_for_selector("#cloudml-sidebar", state="visible")


def wait_sidebar_status(page, job_id: str, status: str, timeout: float = 60) -> None:
    page.wait_for_function(
        "([id, status]) => { const el = document.querySelector("
        '`#cloudml-sidebar [data-job-id="${id}"] .jp-cloudml-status`);'
        " return el && el.textContent.trim() === status; }",
        arg=[job_id, status],
        timeout=timeout * 1000,
    )


def submit(lab: Lab, code: str, name: str) -> str:
    package = package_cell(code, source_dir=lab.root)
    return lab.client.submit(TrainSpec(name=name, package=package)).id


def test_a_job_from_a_cell_appears_in_the_sidebar_and_opens(page, lab: Lab):
    name = lab.notebook("train.ipynb", "%load_ext jupyter_cloudml", TRAIN_CELL)
    open_lab(page, lab, f"lab/tree/{name}")
    open_sidebar(page)
    run_all_cells(page)
    # The cell's output names the job once it is submitted; the sidebar lists it within 2 s.
    deadline = time.monotonic() + 60
    while not (jobs := lab.client.list().jobs):
        assert time.monotonic() < deadline, "the cell submitted no job"
        time.sleep(0.05)
    submitted = time.monotonic()
    job_id = jobs[0].id
    row = page.locator(f'#cloudml-sidebar [data-job-id="{job_id}"]')
    row.wait_for(state="visible", timeout=10_000)
    appeared = time.monotonic() - submitted
    assert appeared <= 2.0, f"the job appeared in the sidebar after {appeared:.2f} s"
    wait_sidebar_status(page, job_id, "SUCCEEDED")

    row.click()
    panel = page.locator(f"#cloudml-job-{job_id}")
    panel.wait_for(state="visible", timeout=10_000)
    logs = panel.locator(".jp-cloudml-logs .jp-cloudml-logline")
    logs.filter(has_text="step 7 loss 0.125").wait_for(timeout=20_000)
    assert logs.count() == 8
    assert "[worker-0]" in logs.first.inner_text()
    chart = panel.locator('.jp-cloudml-chart[data-metric="loss"] svg')
    chart.wait_for(timeout=20_000)
    assert chart.locator("path, polyline").count() >= 1
    if SCREENSHOTS:
        page.screenshot(path=f"{SCREENSHOTS}/detail.png")


def test_cancel_a_running_job_from_its_panel(page, lab: Lab):
    job_id = submit(lab, "import time\nprint('waiting', flush=True)\ntime.sleep(120)\n", "sleeper")
    lab.client.backend.get(job_id)
    open_lab(page, lab)
    open_sidebar(page)
    row = page.locator(f'#cloudml-sidebar [data-job-id="{job_id}"]')
    row.wait_for(state="visible", timeout=10_000)
    row.click()
    panel = page.locator(f"#cloudml-job-{job_id}")
    panel.locator(".jp-cloudml-logline", has_text="waiting").wait_for(timeout=30_000)
    panel.locator('[data-action="cancel"]').click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=10_000)  # asked first: "Keep running" leaves it running
    assert "Cancel job sleeper?" in dialog.inner_text()
    dialog.locator(".jp-mod-reject").click()
    dialog.wait_for(state="detached", timeout=10_000)
    assert lab.client.get(job_id).status is JobStatus.RUNNING
    panel.locator('[data-action="cancel"]').click()
    dialog.locator(".jp-mod-accept").click()
    panel.locator(".jp-cloudml-status", has_text="CANCELLED").first.wait_for(timeout=30_000)
    assert lab.client.get(job_id).status is JobStatus.CANCELLED
    wait_sidebar_status(page, job_id, "CANCELLED", timeout=15)


def test_tensorboard_opens_in_a_lab_tab_and_inline(page, lab: Lab):
    code = "import jupyter_cloudml\nfor s in range(3):\n    jupyter_cloudml.report(step=s, acc=s)\n"
    job_id = submit(lab, code, "tb-source")
    lab.client.wait(job_id, timeout=60, poll=0.1)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    open_lab(page, lab)
    open_sidebar(page)
    page.locator(f'#cloudml-sidebar [data-job-id="{job_id}"]').click()
    panel = page.locator(f"#cloudml-job-{job_id}")
    panel.locator('[data-action="tensorboard"]').click()
    frame_root = page.locator('[id^="cloudml-tensorboard-"]:visible')
    frame_root.wait_for(timeout=60_000)
    frame = frame_root.frame_locator("iframe")
    # TensorBoard's own page, served through the Jupyter server (no localhost URL).
    src = frame_root.locator("iframe").get_attribute("src") or ""
    assert "/proxy/" in src and "localhost" not in src and ":6006" not in src
    assert src.endswith("#scalars")  # the scalars, not the time series' settings pane
    frame.locator("body").wait_for(timeout=30_000)
    page.wait_for_function(
        "() => { const f = document.querySelector('[id^=\"cloudml-tensorboard-\"] iframe');"
        " return f && f.contentDocument && f.contentDocument.title.includes('TensorBoard'); }",
        timeout=60_000,
    )
    frame.get_by_text("acc", exact=True).first.wait_for(timeout=60_000)  # the scalar's card
    page.wait_for_load_state("networkidle")
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "tensorboard.png"))
    proxied = f"{lab.url}/proxy/"
    board_requests = [u for u in requested if "font" in u or "/data/" in u or "index.js" in u]
    assert any("/font-roboto/" in u for u in board_requests)  # its fonts, through the proxy
    assert board_requests and all(u.startswith(proxied) for u in board_requests), board_requests
    assert not [u for u in requested if not u.startswith(lab.url)], "requests left the server"

    name = lab.notebook("tb.ipynb", "%load_ext jupyter_cloudml", f"%cloudml tensorboard {job_id}")
    page.evaluate(
        f"() => {{ window.jupyterapp.commands.execute('docmanager:open', {{path: '{name}'}}); }}"
    )
    run_all_cells(page)
    inline = page.locator(".jp-cloudml-tensorboard iframe")
    inline.wait_for(timeout=60_000)
    assert "/proxy/" in (inline.get_attribute("src") or "")


def test_backend_errors_show_as_messages(page, lab: Lab):
    job_id = submit(lab, "print('short')\n", "short")
    lab.client.wait(job_id, timeout=60, poll=0.1)
    open_lab(page, lab)
    open_sidebar(page)
    page.locator(f'#cloudml-sidebar [data-job-id="{job_id}"]').click()
    panel = page.locator(f"#cloudml-job-{job_id}")
    panel.wait_for(state="visible", timeout=10_000)
    lab.client.delete(job_id)
    panel.locator('[data-action="refresh"]').click()
    error = panel.locator(".jp-cloudml-error").first
    error.wait_for(timeout=10_000)
    assert job_id in error.inner_text()


def test_a_missing_extra_shows_in_the_sidebar_with_its_pip_install(
    page, tmp_path_factory: pytest.TempPathFactory, serving_python: str
):
    """The server configured for Kubernetes where the `kubernetes` package cannot be imported
    (a sitecustomize blocks it): the sidebar says which extra to install, and nothing breaks."""
    base = tmp_path_factory.mktemp("lab-without-kubernetes")
    blocker = base / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['kubernetes'] = None\n")
    path = os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")]))
    with running_lab(base, serving_python, CLOUDML_BACKEND="kubernetes", PYTHONPATH=path) as lab:
        open_lab(page, lab)
        open_sidebar(page)
        error = page.locator("#cloudml-sidebar .jp-cloudml-error").first
        error.wait_for(timeout=20_000)
        assert "pip install 'jupyter-cloudml[kubernetes]'" in error.inner_text()
        log = (base / "server.log").read_text()
        assert "Traceback" not in log


def test_status_filter_and_name_search(page, lab: Lab):
    failed = submit(lab, "raise SystemExit('bad data')\n", "broken")
    lab.client.wait(failed, timeout=60, poll=0.1)
    running = submit(lab, "import time\ntime.sleep(60)\n", "long-run")
    open_lab(page, lab)
    open_sidebar(page)
    rows = page.locator("#cloudml-sidebar [data-job-id]")
    page.locator(f'#cloudml-sidebar [data-job-id="{running}"]').wait_for(timeout=10_000)
    if SCREENSHOTS:
        page.locator("#cloudml-sidebar").screenshot(path=f"{SCREENSHOTS}/sidebar.png")
    page.locator('#cloudml-sidebar select[aria-label="Status"]').select_option("failed")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#cloudml-sidebar [data-job-id]')]"
        ".every(r => r.querySelector('.jp-cloudml-status').textContent.trim() === 'FAILED')"
    )
    assert rows.count() == 1 and rows.first.get_attribute("data-job-id") == failed
    page.locator('#cloudml-sidebar select[aria-label="Status"]').select_option("all")
    page.locator("#cloudml-sidebar input.jp-cloudml-search").fill("long-r")
    page.wait_for_function(
        "() => document.querySelectorAll('#cloudml-sidebar [data-job-id]').length === 1"
    )
    assert rows.first.get_attribute("data-job-id") == running
    lab.client.cancel(running)


def test_a_study_shows_its_trials_best_first_and_a_chart(page, lab: Lab):
    code = "import jupyter_cloudml\np = jupyter_cloudml.params(x=0.0)\n"
    code += "jupyter_cloudml.report(step=0, score=-(p['x'] - 0.5) ** 2)\n"
    tuning = TuningSpec((ParamSpec("x", ParamType.DOUBLE, 0.0, 1.0),), "score", max_trials=3)
    package = package_cell(code, source_dir=lab.root)
    study = lab.client.submit_study(TrainSpec(name="ui-study", package=package), tuning)
    lab.client.wait(study.id, timeout=120, poll=0.2)
    best = lab.client.get_study(study.id).best_trial
    assert best is not None
    open_lab(page, lab)
    open_sidebar(page)
    page.locator('#cloudml-sidebar [data-tab="studies"]').click()
    page.locator(f'#cloudml-sidebar [data-study-id="{study.id}"]').click()
    panel = page.locator(f"#cloudml-study-{study.id}")
    panel.locator("tr[data-trial]").nth(2).wait_for(timeout=20_000)
    assert panel.locator("tr[data-trial]").count() == 3
    assert panel.locator("tr.jp-cloudml-best").get_attribute("data-trial") == str(best.number)
    assert panel.locator("svg").count() >= 1
    if SCREENSHOTS:
        page.screenshot(path=f"{SCREENSHOTS}/study.png")


def test_the_rest_api_answers_through_the_lab_server(lab: Lab):
    with urllib.request.urlopen(lab.page_url("cloudml/api/capabilities")) as response:
        assert json.loads(response.read())["backend"] == "local"


def test_a_deployment_opens_in_a_panel_and_answers_a_prediction(
    page, lab: Lab, serving_python: str, tmp_path: Path
):
    import joblib
    from sklearn.linear_model import LinearRegression

    path = tmp_path / "lin.joblib"
    joblib.dump(LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0]), path)
    client = Client(backend=LocalBackend(home=str(lab.home), serving_python=serving_python))
    client.deploy(DeploySpec("lin", str(path), "sklearn"))
    try:
        open_lab(page, lab)
        open_sidebar(page)
        page.locator('#cloudml-sidebar [data-tab="deployments"]').click()
        row = page.locator('#cloudml-sidebar [data-deployment-name="lin"]')
        row.wait_for(state="visible", timeout=30_000)
        assert row.locator(".jp-cloudml-status").count() == 1
        row.click()
        panel = page.locator("#cloudml-deployment-lin")
        panel.wait_for(state="visible", timeout=10_000)
        # The panel polls: the replicas turn READY without a click.
        page.wait_for_function(
            "() => { const badges = [...document.querySelectorAll("
            "'#cloudml-deployment-lin tr[data-replica] .jp-cloudml-replica-status')];"
            " return badges.length > 0 && badges.every(b => b.textContent.trim() === 'READY'); }",
            timeout=120_000,
        )
        panel.locator(".jp-cloudml-status", has_text="READY").first.wait_for(timeout=30_000)
        url = client.get_deployment("lin").url
        text = panel.inner_text()
        assert f"{url}/v1/models/lin:predict" in text
        assert f"{url}/v2/models/lin/infer" in text
        assert panel.locator('[data-action="copy-curl"]').count() == 1
        assert panel.locator('[data-action="delete"]').count() == 0

        tryit = panel.locator("textarea.jp-cloudml-tryit")
        assert json.loads(tryit.input_value()) == [[1.0, 2.0]]
        tryit.fill("[[2.0]]")
        panel.locator('[data-action="predict"]').click()
        answer = panel.locator(".jp-cloudml-predictions, .jp-cloudml-tryit-box .jp-cloudml-error")
        answer.first.wait_for(timeout=60_000)
        predictions = panel.locator(".jp-cloudml-predictions")
        assert predictions.count() == 1, answer.first.inner_text()
        assert json.loads(predictions.inner_text()) == [pytest.approx(4.0)]
        if SCREENSHOTS:
            page.screenshot(path=f"{SCREENSHOTS}/deployment.png")
    finally:
        client.undeploy("lin")


def open_notebook(page, name: str) -> None:
    page.evaluate(
        f"() => {{ window.jupyterapp.commands.execute('docmanager:open', {{path: '{name}'}}); }}"
    )


SAVED_COPY = ".jp-OutputArea-output .cloudml-saved-view"


def test_a_view_whose_kernel_restarted_shows_its_copy_saying_so(page, lab: Lab):
    name = lab.notebook(
        "restart.ipynb",
        "%load_ext jupyter_cloudml",
        "%%cloudml_train --name restart-sleeper\nimport time\ntime.sleep(120)",
    )
    open_lab(page, lab)
    open_notebook(page, name)
    run_all_cells(page)
    live = page.locator(".jp-OutputArea-output .widget-vbox", has_text="restart-sleeper")
    live.wait_for(timeout=60_000)
    page.locator(".jp-OutputArea-output", has_text="RUNNING").first.wait_for(timeout=60_000)
    assert page.locator(SAVED_COPY).count() == 0  # live: the widget shows, not the copy
    page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()"
    )
    copy = page.locator(SAVED_COPY)
    copy.wait_for(timeout=30_000)
    text = copy.inner_text()
    assert "restart-sleeper" in text and "does not update" in text
    assert 'jupyter_cloudml.show("restart-sleeper-' in text
    assert page.locator(".jp-OutputArea-output .widget-vbox").count() == 0


def test_a_notebook_saved_by_a_kernel_reopens_with_each_output(page, lab: Lab, tmp_path: Path):
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(source)
        for source in (
            "%load_ext jupyter_cloudml",
            "%%cloudml_train --name reopened-done --wait\nprint('finished work')",
            "%%cloudml_train --name reopened-running\nimport time\ntime.sleep(120)",
        )
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    env = {"CLOUDML_HOME": str(lab.home)}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    del notebook.metadata["widgets"]  # JupyterLab does not keep widget state unless told to
    nbformat.write(notebook, lab.root / "reopened.ipynb")

    open_lab(page, lab)
    open_notebook(page, "reopened.ipynb")
    copies = page.locator(SAVED_COPY)
    page.wait_for_function(
        f"() => document.querySelectorAll('{SAVED_COPY}').length === 2", timeout=30_000
    )
    done, running = copies.nth(0).inner_text(), copies.nth(1).inner_text()
    assert "SUCCEEDED" in done and "finished work" in done and "does not update" not in done
    assert "reopened-running" in running and "does not update" in running
    assert "model not found" not in page.locator(".jp-Notebook").inner_text()
    dirty = "() => window.jupyterapp.shell.currentWidget.context.model.dirty"
    assert page.evaluate(dirty) is False


# --- sidebar actions: deploy a study's best trial, change a deployment, told when it ends ----

MODEL_TRIAL = """
import os
import joblib
import jupyter_cloudml
from sklearn.linear_model import LinearRegression
p = jupyter_cloudml.params(x=0.0)
model = LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0 * p["x"]])
joblib.dump(model, os.path.join(os.environ["CLOUDML_JOB_DIR"], "model.joblib"))
jupyter_cloudml.report(step=0, score=-(p["x"] - 0.5) ** 2)
"""


def dialog_accept(page, has_text: str) -> None:
    """Accept the dialog that says `has_text`, and wait until it is gone."""
    dialog = page.locator(".jp-Dialog", has_text=has_text)
    dialog.wait_for(timeout=10_000)
    dialog.locator(".jp-mod-accept").click()
    dialog.wait_for(state="detached", timeout=10_000)


def test_a_study_deploys_its_best_trial_copies_its_magic_and_opens_a_trial(
    page, lab: Lab, serving_python: str
):
    tuning = TuningSpec((ParamSpec("x", ParamType.DOUBLE, 0.0, 1.0),), "score", max_trials=2)
    package = package_cell(MODEL_TRIAL, source_dir=lab.root)
    study = lab.client.submit_study(TrainSpec(name="ui-deploy", package=package), tuning)
    lab.client.wait(study.id, timeout=180, poll=0.2)
    best = lab.client.get_study(study.id).best_trial
    assert best is not None and best.job_id
    client = Client(backend=LocalBackend(home=str(lab.home), serving_python=serving_python))
    try:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        open_lab(page, lab)
        open_sidebar(page)
        page.locator('#cloudml-sidebar [data-tab="studies"]').click()
        page.locator(f'#cloudml-sidebar [data-study-id="{study.id}"]').click()
        panel = page.locator(f"#cloudml-study-{study.id}")
        row = panel.locator(f'tr[data-trial="{best.number}"]')
        row.wait_for(timeout=20_000)
        assert f"Best trial #{best.number}: x=" in (row.get_attribute("title") or "")
        assert "Click to open its job" in (row.get_attribute("title") or "")

        copy = panel.locator('[data-action="copy-magic"]')
        copy.click()
        assert copy.inner_text().startswith("Copied")  # feedback, then the label comes back
        magic = page.evaluate("() => navigator.clipboard.readText()")
        assert magic.startswith("%%cloudml_train --name ui-deploy --param 'x=uniform(0,1)'")
        assert "--metric score --trials 2" in magic and "joblib.dump(model" in magic
        page.wait_for_function(
            f"() => document.querySelector('#cloudml-study-{study.id} "
            "[data-action=\"copy-magic\"]').textContent === 'Copy magic'",
            timeout=5_000,
        )

        panel.locator('[data-action="deploy-best"]').click()
        form = page.locator(".jp-Dialog .jp-cloudml-deploy-form")
        form.wait_for(timeout=10_000)
        assert form.locator('input[data-field="name"]').input_value() == "ui-deploy"
        form.locator('input[data-field="name"]').fill("best-x")
        form.locator('select[data-field="framework"]').select_option("sklearn")
        form.locator('input[data-field="path"]').fill("model.joblib")
        page.locator(".jp-Dialog .jp-mod-accept").click()
        deployed = page.locator("#cloudml-deployment-best-x")
        deployed.wait_for(state="visible", timeout=180_000)  # opened once it serves
        deployed.locator(".jp-cloudml-status", has_text="READY").first.wait_for(timeout=60_000)
        (version,) = client.get_deployment("best-x").versions
        assert best.job_id in version.model and version.model.endswith("model.joblib")

        page.evaluate(f"() => window.jupyterapp.shell.activateById('cloudml-study-{study.id}')")
        row.click()  # a trial opens its job
        page.locator(f"#cloudml-job-{best.job_id}").wait_for(state="visible", timeout=10_000)
    finally:
        for deployment in client.deployments():
            client.undeploy(deployment.name)


def test_the_deployment_panel_splits_rolls_back_scales_and_undeploys(
    page, lab: Lab, serving_python: str, tmp_path: Path
):
    import joblib
    from sklearn.linear_model import LinearRegression

    path = tmp_path / "lin.joblib"
    joblib.dump(LinearRegression().fit([[0.0], [1.0]], [0.0, 2.0]), path)
    client = Client(backend=LocalBackend(home=str(lab.home), serving_python=serving_python))
    client.deploy(DeploySpec("two", str(path), "sklearn"))
    client.deploy(DeploySpec("two", str(path), "sklearn", version="v2"))

    def traffic() -> dict[str, int]:
        return {v.version: v.traffic for v in client.get_deployment("two").versions}

    try:
        open_lab(page, lab)
        open_sidebar(page)
        page.locator('#cloudml-sidebar [data-tab="deployments"]').click()
        page.locator('#cloudml-sidebar [data-deployment-name="two"]').click()
        panel = page.locator("#cloudml-deployment-two")
        panel.locator('input[data-traffic="v1"]').wait_for(timeout=30_000)
        assert traffic() == {"v1": 0, "v2": 100}

        panel.locator('input[data-traffic="v1"]').fill("30")
        panel.locator('[data-action="apply-traffic"]').click()  # 30 + 100: refused as typed
        error = panel.locator(".jp-cloudml-error", has_text="add up to 130%")
        error.wait_for(timeout=10_000)
        panel.locator('input[data-traffic="v2"]').fill("70")
        panel.locator('[data-action="apply-traffic"]').click()
        panel.locator(".jp-cloudml-traffic", has_text="now 30%").wait_for(timeout=30_000)
        assert traffic() == {"v1": 30, "v2": 70}

        panel.locator('[data-action="rollback"]').click()
        panel.locator(".jp-cloudml-traffic", has_text="now 100%").wait_for(timeout=30_000)
        assert traffic() == {"v1": 100, "v2": 0}

        v1 = panel.locator('.jp-cloudml-version[data-version="v1"]')
        v1.locator('input[data-replicas="v1"]').fill("2")
        v1.locator('[data-action="scale"]').click()
        page.wait_for_function(  # the Scale answer comes once both replicas are READY
            "() => [...document.querySelectorAll('#cloudml-deployment-two "
            '.jp-cloudml-version[data-version="v1"] .jp-cloudml-replica-status\')]'
            ".filter(b => b.textContent.trim() === 'READY').length === 2",
            timeout=120_000,
        )
        v1.locator('[data-action="scale"]', has_text="Scale").wait_for(timeout=60_000)
        assert client.get_deployment("two").versions[0].ready == 2

        panel.locator(
            '.jp-cloudml-version[data-version="v2"] [data-action="remove-version"]'
        ).click()
        dialog_accept(page, "Remove version v2 of two?")
        panel.locator('.jp-cloudml-version[data-version="v2"]').wait_for(
            state="detached", timeout=30_000
        )
        assert [v.version for v in client.get_deployment("two").versions] == ["v1"]

        panel.locator('[data-action="undeploy"]').click()
        dialog = page.locator(".jp-Dialog", has_text="Undeploy two?")
        dialog.wait_for(timeout=10_000)
        dialog.locator(".jp-mod-reject").click()  # asked first: no undeploy
        dialog.wait_for(state="detached", timeout=10_000)
        assert [d.name for d in client.deployments()] == ["two"]
        panel.locator('[data-action="undeploy"]').click()
        dialog_accept(page, "Undeploy two?")
        panel.wait_for(state="detached", timeout=60_000)  # the panel closes
        assert client.deployments() == []
        page.locator('#cloudml-sidebar [data-deployment-name="two"]').wait_for(
            state="detached", timeout=15_000
        )
    finally:
        for deployment in client.deployments():
            client.undeploy(deployment.name)


def test_a_job_that_ends_while_a_notebook_is_open_raises_a_notification(page, lab: Lab):
    name = lab.notebook("told.ipynb", "print('open')")
    open_lab(page, lab, f"lab/tree/{name}")
    page.wait_for_selector(".jp-Notebook .jp-Cell:visible", timeout=60_000)
    ok = submit(lab, "import time\ntime.sleep(4)\nprint('done')\n", "told-ok")
    bad = submit(lab, "import time\ntime.sleep(4)\nraise SystemExit(3)\n", "told-bad")
    toast = page.locator(".Toastify__toast", has_text="Job told-ok SUCCEEDED")
    toast.wait_for(timeout=60_000)
    failed = page.locator(".Toastify__toast", has_text="Job told-bad FAILED")
    failed.wait_for(timeout=60_000)
    toast.locator(".jp-toast-button", has_text="Open job").click()
    page.locator(f"#cloudml-job-{ok}").wait_for(state="visible", timeout=10_000)
    assert lab.client.get(bad).status is JobStatus.FAILED


def test_the_sidebar_header_shows_the_quota_in_use(page, lab: Lab):
    open_lab(page, lab)
    open_sidebar(page)
    quota = page.locator("#cloudml-sidebar .jp-cloudml-quota")
    quota.wait_for(timeout=30_000)
    assert "cpu slots" in quota.inner_text() and "/" in quota.inner_text()
    job_id = submit(lab, "import time\ntime.sleep(60)\n", "quota-holder")
    try:
        page.wait_for_function(
            "() => { const q = document.querySelector('#cloudml-sidebar .jp-cloudml-quota');"
            " return q && /cpu slots [1-9]/.test(q.textContent)"
            " && /[1-9] running/.test(q.textContent); }",
            timeout=30_000,
        )
        assert "local scheduler" in (quota.get_attribute("title") or "")
    finally:
        lab.client.cancel(job_id)
