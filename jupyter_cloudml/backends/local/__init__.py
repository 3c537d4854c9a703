"""The embedded local backend: jobs as supervised processes on this machine."""

from __future__ import annotations

from typing import Any

__all__ = ["LocalBackend"]


def __getattr__(name: str) -> Any:
    # Supervisors import submodules of this package; keep that free of traitlets and the backend.
    if name in ("LocalBackend", "BACKEND"):  # BACKEND: how `c.CloudML.backend` finds it
        from .backend import LocalBackend

        return LocalBackend
    raise AttributeError(name)
