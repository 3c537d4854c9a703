"""Live notebook views of jobs and studies (ipywidgets); the only place ipywidgets is imported."""

from __future__ import annotations

from .job import JobView
from .study import StudyView, StudyWatcher, study_widget
from .watch import JobWatcher, job_widget

__all__ = ["JobView", "JobWatcher", "StudyView", "StudyWatcher", "job_widget", "study_widget"]
