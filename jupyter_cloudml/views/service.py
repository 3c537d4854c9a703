"""A backend's service on this host (`cloudml local service install|uninstall|status`) as text."""

from __future__ import annotations

from ..models import ServiceInfo
from .text import format_fields


def _manager(info: ServiceInfo) -> str:
    return info.problem or f"{info.active}, {info.enabled}"


def _keeper(info: ServiceInfo) -> str:
    if not info.keeper_running:
        return f"not running for {info.serves}"
    who = "the service's" if info.keeper_is_service else "started on demand"
    return f"running for {info.serves} ({who})"


def format_service(info: ServiceInfo, details: bool = False) -> str:
    """What was done, then the state (what systemd says, or with `details` also the unit file
    and the keeper), then the commands left to run, each on its own line, ready to paste."""
    lines = list(info.done)
    if details:
        state = "installed" if info.installed else "not installed"
        lines.append(
            format_fields(
                [
                    ("unit", f"{info.name}, {state} ({info.unit_file})"),
                    ("systemd", _manager(info)),
                    ("keeper", _keeper(info)),
                ]
            )
        )
    elif info.problem:  # one line, and the commands under it
        lines.append(info.problem + ("; run these where it is:" if info.todo else ""))
    else:
        lines.append(f"{info.name}: {_manager(info)}")
    if info.todo and (details or not info.problem):
        lines.append("run these where systemctl --user works:" if info.problem else "still to run:")
    lines.extend(f"  {command}" for command in info.todo)
    return "\n".join(lines)
