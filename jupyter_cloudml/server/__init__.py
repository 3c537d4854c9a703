"""The Jupyter server extension: REST under `{base_url}cloudml/api/` (see `openapi.yaml`).

Handlers are thin: parse the request, call `Client` off the event loop, answer JSON.
"""

from __future__ import annotations

from .app import CloudMLServerApp

__all__ = ["CloudMLServerApp"]
