"""Templates: trainer packages shipped with the product (or published by users) that train on a
user's data without model code; each declares its inputs, parameters with a default search
space, the metric it reports and what it saves (`spec`), and is found through `registry`."""

from .registry import ENTRY_POINT_GROUP, PATH_ENV, find_templates, get_template
from .spec import SPEC_FILE, Template, TemplateParam

__all__ = [
    "ENTRY_POINT_GROUP",
    "PATH_ENV",
    "SPEC_FILE",
    "Template",
    "TemplateParam",
    "find_templates",
    "get_template",
]
