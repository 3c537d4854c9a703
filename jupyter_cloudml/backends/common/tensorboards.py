"""What every backend's TensorBoards share: one id for the same set of jobs, and the fix of
TensorBoard's page that keeps every request under the server's proxy."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def tensorboard_id(job_ids: Sequence[str]) -> str:
    """The id of the TensorBoard over exactly these jobs (order and repeats do not matter),
    the same on every backend: `tb-` and 12 hex digits of a SHA-256 of the sorted ids."""
    digest = hashlib.sha256("\n".join(sorted(set(job_ids))).encode()).hexdigest()
    return f"tb-{digest[:12]}"


#: The pages TensorBoard answers at its root (`/` and `/index.html`).
INDEX_PATHS = ("/", "/index.html")
#: TensorBoard's page loads its fonts from the root of the host (`url(/font-roboto/...)`),
#: which behind a proxy is outside TensorBoard: from where the page is, they stay inside.
_ROOTED_FONTS = b"url(/font-roboto/"
_RELATIVE_FONTS = b"url(font-roboto/"


def relative_assets(page: bytes) -> bytes:
    """TensorBoard's index page with its assets addressed from the page, not the host root."""
    return page.replace(_ROOTED_FONTS, _RELATIVE_FONTS)
