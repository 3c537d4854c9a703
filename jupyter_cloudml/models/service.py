"""A backend's service on this host: what keeps its work going with nobody using the product."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ServiceInfo:
    """A backend's service as `Backend.install_service`, `uninstall_service` and
    `service_status` report it. The local backend's is a systemd user unit that runs the home's
    keeper (the process that finds dead supervisors and endpoints and starts queued jobs), so
    that it serves across reboots."""

    #: The service's name for its manager (e.g. `jupyter-cloudml-keeper.service`).
    name: str
    #: Where its definition is, or would be (the unit file).
    unit_file: str
    #: What it keeps going (the local backend: its home).
    serves: str
    #: Whether the definition exists.
    installed: bool
    #: Whether a keeper watches now, whoever started it; and whether it is the service's.
    keeper_running: bool = False
    keeper_is_service: bool = False
    #: Why the service manager could not be asked, in one line ("" when it could).
    problem: str = ""
    #: What the manager says, when it could be asked: `active`, `inactive`, `failed`, ...
    active: str | None = None
    #: ... and whether it starts the service on its own: `enabled`, `disabled`, ...
    enabled: str | None = None
    #: What this call did, one line each.
    done: tuple[str, ...] = ()
    #: Commands left to run by hand, each ready to paste into a shell.
    todo: tuple[str, ...] = ()
