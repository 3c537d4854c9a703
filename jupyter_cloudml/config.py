"""Configuration (traitlets), read the same way by the kernel, the CLI and the server.

Files named `jupyter_cloudml_config.py` / `.json` in any Jupyter config directory are loaded, e.g.
`~/.jupyter/jupyter_cloudml_config.py` with `c.CloudML.backend = "local"`.
"""

from __future__ import annotations

import os

from traitlets import Unicode
from traitlets.config import Config, Configurable
from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

from .exceptions import InvalidSpec

CONFIG_BASENAME = "jupyter_cloudml_config"

#: Short names for the built-in backends; any other value is a dotted class path.
BACKENDS = {
    "local": "jupyter_cloudml.backends.local.LocalBackend",
    "kubernetes": "jupyter_cloudml.backends.kubernetes.KubernetesBackend",
}


class CloudML(Configurable):
    """Top-level settings of jupyter-cloudml."""

    backend = Unicode(
        "local",
        config=True,
        help="""Where jobs run: 'local' (embedded, this machine), 'kubernetes' (a cluster,
        see `KubernetesBackend`) or a dotted path to a
        `jupyter_cloudml.backends.base.Backend` subclass. Overridden by $CLOUDML_BACKEND.
        Example: c.CloudML.backend = "local" """,
    )

    def backend_name(self, override: str | None = None) -> str:
        """The backend to use: `override` (a --backend flag), else $CLOUDML_BACKEND, else config."""
        return override or os.environ.get("CLOUDML_BACKEND") or self.backend

    def backend_class(self, override: str | None = None) -> type:
        """Import the backend class (see `backend_name`)."""
        from importlib import import_module

        from .backends.base import Backend

        name = self.backend_name(override)
        path = BACKENDS.get(name, name)
        module, _, attr = path.rpartition(".")
        try:
            cls = getattr(import_module(module), attr) if module else None
        except (ImportError, AttributeError):
            cls = None
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            known = ", ".join(sorted(BACKENDS))
            raise InvalidSpec(
                f"unknown backend {name!r}: use one of {known} or a Backend class path"
            )
        return cls


def load_config() -> Config:
    """Merge every `jupyter_cloudml_config.{json,py}` on the Jupyter config path (user last)."""
    from jupyter_core.paths import jupyter_config_path

    config = Config()
    for directory in reversed(jupyter_config_path()):
        for loader_cls, ext in ((JSONFileConfigLoader, ".json"), (PyFileConfigLoader, ".py")):
            if os.path.isfile(os.path.join(directory, CONFIG_BASENAME + ext)):
                loader = loader_cls(CONFIG_BASENAME + ext, path=directory)
                config.merge(loader.load_config())
    return config
