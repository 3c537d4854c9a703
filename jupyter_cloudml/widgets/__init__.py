"""Live notebook views of jobs, studies and deployments (ipywidgets); the only place ipywidgets
is imported."""

from __future__ import annotations

from .deployment import DeploymentView, DeploymentWatcher, deployment_widget
from .job import JobView
from .study import StudyView, StudyWatcher, study_widget
from .watch import JobWatcher, job_widget

__all__ = [
    "DeploymentView",
    "DeploymentWatcher",
    "JobView",
    "JobWatcher",
    "StudyView",
    "StudyWatcher",
    "deployment_widget",
    "job_widget",
    "study_widget",
]
