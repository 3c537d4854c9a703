"""Browser tests: a real JupyterLab with the extension, driven in Chromium by Playwright.

A notebook cell starts a job with `%%cloudml_train`; the sidebar shows it, its detail panel
shows logs and a metric chart, a running job is cancelled from the panel, TensorBoard opens in
a lab tab and inline in the notebook. Needs /usr/bin/chromium (`.ci/run` installs it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.backends.local.processes import free_ports
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

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TOKEN = "cloudml-ui-test"
SCREENSHOTS = os.environ.get("CLOUDML_SCREENSHOTS")  # a folder: save the README screenshots

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


def free_port() -> int:
    return free_ports(1)[0]


class Lab:
    """A running `jupyter lab` on loopback with its own homes, and a Client on its backend."""

    def __init__(self, root: Path, port: int, home: Path) -> None:
        self.root, self.port, self.home = root, port, home
        self.url = f"http://127.0.0.1:{port}"
        self.client = Client(backend=LocalBackend(home=str(home)))

    def page_url(self, path: str) -> str:
        return f"{self.url}/{path}?token={TOKEN}"

    def notebook(self, name: str, *cells: str) -> str:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        nbformat.write(nb, self.root / name)
        return name


@contextlib.contextmanager
def running_lab(base: Path, serving_python: str, **env_extra: str) -> Iterator[Lab]:
    """`jupyter lab` on loopback with its own homes under `base` (and `env_extra` set)."""
    root, home = base / "notebooks", base / "cloudml-home"
    root.mkdir()
    env = dict(os.environ, CLOUDML_HOME=str(home), CLOUDML_SERVING_PYTHON=serving_python)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[var] = str(base / var.lower())
    env.pop("CLOUDML_BACKEND", None)
    env.update(env_extra)
    # No "get Jupyter news?" toast over the page (and no request for it).
    settings = base / "jupyter_config_dir" / "lab" / "user-settings" / "@jupyterlab"
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port = free_port()
    log = open(base / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--expose-app-in-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={TOKEN}",
            "--FileContentsManager.delete_to_trash=False",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    the_lab = Lab(root, port, home)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{the_lab.url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "jupyter lab did not start: " + (base / "server.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.2)
        yield the_lab
    finally:
        if env.get("CLOUDML_BACKEND", "local") == "local":
            for job in the_lab.client.list().jobs:
                if not job.status.terminal:
                    the_lab.client.cancel(job.id)
            for board in the_lab.client.tensorboards():
                the_lab.client.stop_tensorboard(board.id)
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


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


def open_lab(page, lab: Lab, path: str = "lab") -> None:
    page.goto(lab.page_url(path) + "&reset")  # no tabs restored from an earlier test
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started", timeout=60_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)


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
    dialog_accept = page.locator(".jp-Dialog .jp-mod-accept")
    if dialog_accept.count():
        dialog_accept.click()
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
