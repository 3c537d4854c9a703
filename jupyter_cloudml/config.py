"""Configuration (traitlets), read the same way by the kernel, the CLI and the server.

Files named `jupyter_cloudml_config.py` / `.json` in any Jupyter config directory are loaded, e.g.
`~/.jupyter/jupyter_cloudml_config.py` with `c.CloudML.backend = "local"`.
"""

from __future__ import annotations

import os
import re
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from traitlets import Dict, List, Unicode
from traitlets.config import Config, Configurable
from traitlets.config.loader import JSONFileConfigLoader, PyFileConfigLoader

from .exceptions import BackendUnavailable, InvalidSpec, MissingExtra

if TYPE_CHECKING:
    from .backends.base import Backend

CONFIG_BASENAME = "jupyter_cloudml_config"

#: The entry-point group naming backends (`local`, `kubernetes`, and any a package adds:
#: `[project.entry-points."jupyter_cloudml.backends"] slurm = "pkg.module:SlurmBackend"`).
BACKEND_GROUP = "jupyter_cloudml.backends"


class CloudML(Configurable):
    """Top-level settings of jupyter-cloudml."""

    backend = Unicode(
        "local",
        config=True,
        help="""Where jobs run: 'local' (embedded, this machine), 'kubernetes' (a cluster,
        see `KubernetesBackend`), the name of a backend another package installs (entry-point
        group `jupyter_cloudml.backends`) or a dotted path to a
        `jupyter_cloudml.backends.base.Backend` subclass. Overridden by $CLOUDML_BACKEND.
        Example: c.CloudML.backend = "local" """,
    )

    runtime_images = Dict(
        per_key_traits=Unicode(),
        config=True,
        help="""The image that stands for each Google AI Platform runtime version, for configs
        that give a `runtimeVersion` (`--config config.yaml`); a version without an image runs
        on the backend's own and the dry run says so.
        Example: c.CloudML.runtime_images = {"2.11": "tensorflow/tensorflow:2.11.0"}""",
    )

    template_path = List(
        Unicode(),
        config=True,
        help="""Folders of user templates, after those of $CLOUDML_TEMPLATE_PATH: each is a
        template folder (a `template.yaml` beside its trainer) or holds template folders.
        `cloudml templates list` shows them beside the built-in ones.
        Example: c.CloudML.template_path = ["~/team-templates"]""",
    )

    def backend_name(self, override: str | None = None) -> str:
        """The backend to use: `override` (a --backend flag), else $CLOUDML_BACKEND, else config."""
        return override or os.environ.get("CLOUDML_BACKEND") or self.backend

    def backend_class(self, override: str | None = None) -> type[Backend]:
        """Import the backend class (see `backend_name`): an installed backend's entry point,
        else the `BACKEND` of this package's `backends/NAME/`, else a dotted class path. A
        backend whose optional extra is missing says which one to install."""
        from .backends.base import Backend

        name = self.backend_name(override)
        installed = {ep.name: ep for ep in entry_points(group=BACKEND_GROUP)}
        try:
            if name in installed:
                cls = installed[name].load()
            elif re.fullmatch(r"[a-z][a-z0-9_]*", name):  # run from a source tree: no entry points
                cls = getattr(import_module(f"{__package__}.backends.{name}"), "BACKEND", None)
            else:
                module, _, attr = name.rpartition(".")
                cls = getattr(import_module(module), attr) if module else None
        except ModuleNotFoundError as exc:
            if name in installed:
                raise _missing_extra(installed[name], exc) from None
            cls = None
        except (ImportError, AttributeError):
            cls = None
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            known = ", ".join(sorted(installed))
            raise InvalidSpec(
                f"unknown backend {name!r}: use one of {known} or a Backend class path"
            )
        return cls


def _missing_extra(entry: EntryPoint, exc: ModuleNotFoundError) -> BackendUnavailable:
    """`No module named 'kubernetes'`, with the `pip install` of the extra that brings it."""
    dist = entry.dist
    extras = (dist.metadata.get_all("Provides-Extra") or []) if dist is not None else []
    if dist is not None and dist.metadata["Name"] == "jupyter-cloudml" and entry.name in extras:
        return MissingExtra(f"the {entry.name} backend", exc.name, entry.name)
    return BackendUnavailable(
        f"the {entry.name} backend needs {exc.name!r}, which is not installed: install the "
        f"package that provides it"
    )


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


def runtime_image(runtime_version: str | None, python_version: str | None = None) -> str | None:
    """The image configured for a Google runtime version (`c.CloudML.runtime_images`), if any."""
    if runtime_version is None:
        return None
    images = CloudML(config=load_config()).runtime_images
    return images.get(f"{runtime_version}/{python_version}") or images.get(runtime_version)
