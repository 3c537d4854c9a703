"""jupyter-cloudml: `%%cloudml_train` runs a notebook cell as a training job.

Importing this package stays cheap (job supervisors import it too); heavy parts load lazily.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext jupyter_cloudml`: register `%%cloudml_train` and `%cloudml`."""
    from .magics import CloudMLMagics

    ipython.register_magics(CloudMLMagics(shell=ipython))
