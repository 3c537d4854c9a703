"""`--notify URL` on the local backend: the job's final record to its webhook, and the outcome
among the job's events (`Notified`, or `NotifyFailed` with the reason)."""

from __future__ import annotations

from ..common.notify import ATTEMPTS, notify_payload, post_notification
from .store import JobStore, row_to_info


def notify_end(store: JobStore, job_id: str, url: str, attempts: int = ATTEMPTS) -> None:
    """POST the ended job's record to `url` and note how that went."""
    row = store.row(job_id)
    if row is None:
        return
    problem = post_notification(url, notify_payload(row_to_info(row), "job"), attempts=attempts)
    if problem is None:
        store.add_event(job_id, "Notified", f"posted the final job to {url}")
    else:
        store.add_event(job_id, "NotifyFailed", problem, type="Warning")
