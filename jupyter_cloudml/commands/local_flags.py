"""The grammar of `cloudml local VERB`: the local backend's own commands on this machine."""

from __future__ import annotations

import argparse

from .flag_types import add_output_option

LOCAL_VERBS = ("service",)
LOCAL_SUMMARIES = {
    "service": "install, uninstall or show the systemd user unit that serves the home across "
    "reboots",
}
SERVICE_ACTIONS = ("install", "uninstall", "status")


def add_local_verb_options(verb: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of `local VERB` (there is one verb: `service`)."""
    add = parser.add_argument
    add(
        "action",
        choices=SERVICE_ACTIONS,
        metavar="ACTION",
        help="install (write the unit, then enable and start it where systemctl --user works), "
        "uninstall (stop, disable, remove it) or status (e.g. install)",
    )
    add(
        "--home",
        metavar="DIR",
        help="the home to serve instead of the configured one (c.LocalBackend.home, "
        "$CLOUDML_HOME); each home has a unit of its own (e.g. --home /data/cloudml)",
    )
    add_output_option(parser)
