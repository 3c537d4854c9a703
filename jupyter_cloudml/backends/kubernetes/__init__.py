"""The Kubernetes backend: jobs as Indexed ``batch/v1`` Jobs, built by pure manifest builders.

``names`` makes DNS-1123 names, ``labels`` holds every label/annotation key and selector,
``training`` builds a training job's manifests (plain dicts), and ``entrypoint`` runs inside
each pod, deriving the replica's distributed environment from its completion index.
"""


def __getattr__(name: str) -> object:
    """``KubernetesBackend`` imported on first use (it needs the ``kubernetes`` client)."""
    if name in ("KubernetesBackend", "BACKEND"):  # BACKEND: how `c.CloudML.backend` finds it
        from .backend import KubernetesBackend

        return KubernetesBackend
    raise AttributeError(name)
