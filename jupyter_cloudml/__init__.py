"""jupyter-cloudml: `%%cloudml_train` runs a notebook cell as a training job.

Importing this package stays cheap (job supervisors import it too); heavy parts load lazily.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext jupyter_cloudml`: register `%%cloudml_train` and `%cloudml`."""
    from .magics import CloudMLMagics, help_without_a_body

    ipython.register_magics(CloudMLMagics(shell=ipython))
    cleanups = ipython.input_transformers_cleanup
    if help_without_a_body not in cleanups:
        cleanups.append(help_without_a_body)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The Jupyter server extension (REST API for the lab sidebar), enabled on install."""
    from .server import CloudMLServerApp

    return [{"module": "jupyter_cloudml", "app": CloudMLServerApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension shipped in the package (sidebar, TensorBoard frames)."""
    return [{"src": "labextension", "dest": "jupyter-cloudml"}]


def __getattr__(name: str) -> Any:
    # Training code calls these; importing them lazily keeps `import jupyter_cloudml` cheap.
    if name == "params":
        from .tuning.params import params

        return params
    if name == "report":
        from .metrics import report

        return report
    if name == "prediction_results":
        from .client import Client

        return lambda job_or_path, **kw: Client().prediction_results(job_or_path, **kw)
    if name == "predict":
        from .client import Client

        return lambda deployment, instances, **kw: Client().predict(deployment, instances, **kw)
    if name == "show":
        from .magics.show import show

        return show
    if name == "Client":
        from .client import Client

        return Client
    raise AttributeError(f"module 'jupyter_cloudml' has no attribute {name!r}")
