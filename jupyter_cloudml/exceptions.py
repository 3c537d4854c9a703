"""Typed domain errors: every layer raises these, every surface renders them as one message."""

from __future__ import annotations


class CloudMLError(Exception):
    """Base of every error jupyter-cloudml raises on purpose."""

    #: HTTP status a REST handler maps this error to.
    http_status = 500


class InvalidSpec(CloudMLError):
    """A job, tuning or deployment specification (or a flag) is malformed."""

    http_status = 400


class PackagingError(InvalidSpec):
    """The code to ship cannot be packaged (syntax error, missing include, unpicklable export)."""


class NotFound(CloudMLError):
    """No job, study or deployment has this id."""

    http_status = 404


class Conflict(CloudMLError):
    """The operation does not fit the object's current state (e.g. fetch of a running job)."""

    http_status = 409


class QuotaExceeded(CloudMLError):
    """The request asks for more resources than the tenant or machine may use."""

    http_status = 429


class Unsupported(CloudMLError):
    """The configured backend does not offer this (see `Backend.capabilities()`)."""

    http_status = 501


class BackendUnavailable(CloudMLError):
    """The backend cannot be reached or its store cannot be opened."""

    http_status = 503


class MissingExtra(BackendUnavailable):
    """An optional dependency is not installed: the message names the extra that brings it."""

    def __init__(self, what: str, module: str | None, extra: str) -> None:
        super().__init__(
            f"{what} needs {module or 'a package'!r}, which is not installed: "
            f"pip install 'jupyter-cloudml[{extra}]'"
        )
