"""The grammar of `cloudml hub VERB`: commands for the admins of a JupyterHub on Kubernetes."""

from __future__ import annotations

import argparse

HUB_VERBS = ("manifests", "rbac")
HUB_SUMMARIES = {
    "manifests": "print a tenant's namespace objects and notebook pod for a profile (no cluster)",
    "rbac": "print the hub's ClusterRole and ClusterRoleBinding for tenant namespaces",
}
#: Where the README installs the Zero to JupyterHub chart.
HUB_NAMESPACE = "cloudml-hub"


def add_hub_verb_options(verb: str, parser: argparse.ArgumentParser) -> None:
    """Arguments of `hub VERB`."""
    add = parser.add_argument
    add(
        "-o",
        "--output",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml (kubectl apply -f -) or json",
    )
    if verb == "rbac":
        add(
            "--hub-namespace",
            default=HUB_NAMESPACE,
            metavar="NS",
            help=f"namespace of the Helm release, where the hub runs (default {HUB_NAMESPACE})",
        )
        return
    add(
        "--user",
        required=True,
        metavar="NAME",
        help="JupyterHub username, as users log in (e.g. --user Alice.Smith)",
    )
    add(
        "--profile",
        metavar="SLUG",
        help="spawn-form profile (e.g. --profile gpu-a100-1); default: the default profile",
    )
    add(
        "--group",
        action="append",
        default=[],
        metavar="GROUP",
        help="a JupyterHub group of the user, for per-group quotas (repeatable)",
    )
    add(
        "--config",
        metavar="FILE",
        help="the hub's jupyterhub_config.py (default: the built-in defaults)",
    )
