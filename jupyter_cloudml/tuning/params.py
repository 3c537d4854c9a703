"""`jupyter_cloudml.params()`: a trial's hyperparameters inside the training code.

Standard library only: it runs in every trial, possibly under another interpreter.
"""

from __future__ import annotations

import json
import os
from typing import Any

PARAMS_ENV = "CLOUDML_PARAMS"


def params(**defaults: Any) -> dict[str, Any]:
    """This trial's hyperparameters over `defaults` (outside a study: just the defaults).

    Example: `p = jupyter_cloudml.params(lr=0.01, layers=2)` then `p["lr"]`.
    """
    values = dict(defaults)
    raw = os.environ.get(PARAMS_ENV)
    if raw:
        values.update(json.loads(raw))
    return values
