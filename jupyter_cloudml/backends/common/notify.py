"""`--notify URL`: the final record of a job or study, POSTed as JSON to a webhook (a chat or
e-mail bridge) once it has ended."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from ...models import JobInfo, StudyInfo, to_dict

ATTEMPTS = 3
TIMEOUT_SECONDS = 10.0


def notify_payload(info: JobInfo | StudyInfo, kind: str) -> dict[str, Any]:
    """What the webhook receives: `kind` ("job" or "study") and the record, without the code."""
    shown = dataclasses.replace(info, spec=None) if isinstance(info, JobInfo) else info
    return {"kind": kind, kind: to_dict(shown)}


def post_notification(
    url: str, payload: dict[str, Any], attempts: int = ATTEMPTS, backoff: float = 1.0
) -> str | None:
    """POST `payload` as JSON to `url`, trying `attempts` times; None once it is taken (2xx),
    else why it was not (for the job's events)."""
    body = json.dumps(payload).encode()
    problem = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
                if 200 <= answer.status < 300:
                    return None
                problem = f"HTTP {answer.status}"
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code} {exc.reason}"
            if 400 <= exc.code < 500 and exc.code != 429:
                break  # the hook refuses it: asking again will not help
        except (OSError, ValueError) as exc:
            problem = str(getattr(exc, "reason", "") or exc)
    host = urlsplit(url).netloc or url
    return f"could not notify {host}: {problem}"
