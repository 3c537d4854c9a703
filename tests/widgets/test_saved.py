"""What a saved notebook keeps of a live view: the static copy beside the widget, the copy alone
once the state is final, and a notebook run by a real kernel and exported by nbconvert."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from jupyter_cloudml.models import (
    DeploymentInfo,
    DeploymentStatus,
    JobInfo,
    JobStatus,
    MetricsUpdate,
    Scalar,
)
from jupyter_cloudml.widgets import DeploymentView, JobView
from jupyter_cloudml.widgets.saved import MARKER, WIDGET_MIME

JOB = JobInfo(id="mnist-abc123", name="mnist", status=JobStatus.RUNNING)


class Handle:
    """Stands in for IPython's DisplayHandle: records what each update sent."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def update(self, obj: Any) -> None:
        self.sent.append(obj._repr_mimebundle_())


def test_a_live_view_carries_a_static_copy_that_says_it_does_not_update() -> None:
    view = JobView()
    view.update(JOB)
    bundle = view._repr_mimebundle_()
    assert bundle[WIDGET_MIME]["model_id"] == view.model_id
    copy = bundle["text/html"]
    assert MARKER in copy and "mnist-abc123" in copy and "RUNNING" in copy
    assert 'jupyter_cloudml.show("mnist-abc123")' in copy.replace("&quot;", '"')
    assert bundle["text/plain"] == "job mnist-abc123: RUNNING"


def test_a_final_view_is_its_copy_alone_with_the_plot_embedded() -> None:
    view = JobView()
    view.update(JOB)
    points = [Scalar(step=i, value=1.0 / (i + 1), wall_time=float(i)) for i in range(5)]
    view.update_metrics(MetricsUpdate(scalars={"loss": points}, cursor="c"))
    view.update(dataclasses.replace(JOB, status=JobStatus.SUCCEEDED))
    view.flush_metrics()
    bundle = view._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}
    assert "data:image/png;base64," in bundle["text/html"]
    assert "SUCCEEDED" in bundle["text/html"] and "does not update" not in bundle["text/html"]


def test_keep_refreshes_the_output_only_when_the_status_changes() -> None:
    view = JobView()
    view.update(JOB)
    view._handle, view._kept = Handle(), view._state()
    view.keep()
    assert view._handle.sent == []  # nothing changed
    view.update(dataclasses.replace(JOB, status=JobStatus.FAILED, reason="exit code 1"))
    view.keep()
    (sent,) = view._handle.sent
    assert WIDGET_MIME not in sent and "exit code 1" in sent["text/html"]


def test_controls_are_left_out_of_the_copy() -> None:
    view = DeploymentView(predict=lambda rows: [0])
    info = DeploymentInfo(name="iris", status=DeploymentStatus.READY, url="http://x/iris")
    view.update(info)
    copy = view._repr_mimebundle_()["text/html"]
    assert "iris" in copy and "Try it" in copy  # the box's title is text
    assert "Predict" not in copy and "textarea" not in copy.lower()


NOTEBOOK = [
    "%load_ext jupyter_cloudml",
    """\
    %%cloudml_train --name saved-job --wait
    import jupyter_cloudml
    for step in range(3):
        jupyter_cloudml.report(step=step, loss=1.0 / (step + 1))
    print("trained")
    """,
    "%%cloudml_train --name saved-study --param x=uniform(-1,1) --metric loss --goal minimize"
    " --trials 2 --parallel 2 --seed 3 --wait\n"
    "import jupyter_cloudml\n"
    "p = jupyter_cloudml.params(x=0.0)\n"
    'jupyter_cloudml.report(step=0, loss=p["x"] ** 2)\n',
    """\
    %%cloudml_train --name still-running
    import time
    time.sleep(60)
    """,
]


@pytest.mark.slow
def test_a_saved_notebook_keeps_each_output_and_exports_it(tmp_path: Path) -> None:
    cells = [nbformat.v4.new_code_cell(textwrap.dedent(source)) for source in NOTEBOOK]
    notebook = nbformat.v4.new_notebook(cells=cells)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    path = tmp_path / "saved.ipynb"
    nbformat.write(notebook, path)
    reread = nbformat.read(path, as_version=4)

    def shown(cell: Any) -> dict[str, Any]:
        (data,) = [o["data"] for o in cell.outputs if o.output_type == "display_data"]
        return data

    job, study, running = (shown(cell) for cell in reread.cells[1:])
    assert WIDGET_MIME not in job and "SUCCEEDED" in job["text/html"]
    assert "data:image/png;base64," in job["text/html"] and "trained" in job["text/html"]
    # the study's output is final as soon as the cell ends, not a poll later
    assert WIDGET_MIME not in study and "SUCCEEDED" in study["text/html"]
    assert "2 succeeded" in study["text/html"] or "2/2" in study["text/html"]
    assert WIDGET_MIME in running and "does not update" in running["text/html"]

    with_state, _ = HTMLExporter().from_notebook_node(reread)
    assert with_state.count(MARKER) == 2  # the running view is drawn from the widget state
    del reread.metadata["widgets"]  # as JupyterLab saves unless told to keep widget state
    exported, _ = HTMLExporter().from_notebook_node(reread)
    assert exported.count(MARKER) == 3
    assert "model not found" not in exported and "does not update" in exported
