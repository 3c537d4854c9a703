"""Live notebook views of jobs (ipywidgets); the only place ipywidgets is imported."""

from __future__ import annotations

from .job import JobView
from .watch import JobWatcher, job_widget

__all__ = ["JobView", "JobWatcher", "job_widget"]
