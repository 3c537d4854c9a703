"""`jupyter_cloudml.show(...)`: a fresh live view of a job, a study or a deployment, for a
notebook whose earlier view stopped updating (its kernel restarted, or it was reopened)."""

from __future__ import annotations

from ..client import Client
from ..exceptions import InvalidSpec
from ..models import is_study


def show(
    job_or_study: str | None = None, *, deployment: str | None = None, client: Client | None = None
) -> None:
    """Display a live view: `show("mnist-3f9a1c")` of a job or a study by id or name,
    `show(deployment="iris")` of a deployment."""
    from ..widgets import deployment_widget, job_widget, study_widget

    if (job_or_study is None) == (deployment is None):
        raise InvalidSpec('give a job or study id, or deployment="NAME" (e.g. show("iris-3f9a1c"))')
    client = client or Client()
    if deployment is not None:
        client.get_deployment(deployment)  # an unknown name fails here, not in the view
        deployment_widget(client, deployment).show()
        return
    assert job_or_study is not None
    job = client.find(job_or_study, "any")
    view = study_widget(client, job.id) if is_study(job) else job_widget(client, job.id)
    view.show()
