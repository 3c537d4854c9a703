"""The template registry: the built-in templates, those installed packages declare (entry-point
group `jupyter_cloudml.templates`) and folders holding a `template.yaml` beside their trainer.

A user folder is registered in one of two ways: named directly (`--template ./my-template`), or
found on the template search path (`$CLOUDML_TEMPLATE_PATH`, then `c.CloudML.template_path`):
each entry is a template folder, or a folder whose subfolders are template folders. An entry
point's value is a module whose folder holds `template.yaml`, or a path string to such a folder.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from pathlib import Path

from ..exceptions import InvalidSpec
from .spec import SPEC_FILE, Template, load_template

#: The entry-point group through which installed packages publish templates.
ENTRY_POINT_GROUP = "jupyter_cloudml.templates"

#: Folders searched for templates, before `c.CloudML.template_path` (os.pathsep-separated).
PATH_ENV = "CLOUDML_TEMPLATE_PATH"

BUILTIN_DIR = Path(__file__).parent / "builtin"


def builtin_templates() -> list[Template]:
    """The templates shipped with the product (`builtin/*.yaml`, each naming its package)."""
    return [load_template(path, source="built-in") for path in sorted(BUILTIN_DIR.glob("*.yaml"))]


def search_path(configured: Sequence[str] = ()) -> list[str]:
    """The folders searched for user templates: `$CLOUDML_TEMPLATE_PATH`, then `configured`."""
    from_env = [p for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p.strip()]
    return [os.path.abspath(os.path.expanduser(p)) for p in (*from_env, *configured)]


def _folder_templates(folders: Iterable[str]) -> list[Template]:
    found = []
    for folder in folders:
        root = Path(folder)
        if (root / SPEC_FILE).is_file():
            found.append(load_template(root / SPEC_FILE, source=str(root)))
        elif root.is_dir():
            for child in sorted(root.iterdir()):
                if (child / SPEC_FILE).is_file():
                    found.append(load_template(child / SPEC_FILE, source=str(child)))
        else:
            raise InvalidSpec(f"template search path: {folder} is not a folder")
    return found


def _entry_point_templates() -> list[Template]:
    found = []
    for point in entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {point.name!r} ({point.value})"
        try:
            target = point.load()
        except Exception as exc:
            raise InvalidSpec(f"template {where} does not load: {exc}") from None
        file = getattr(target, "__file__", None)
        folder = Path(file).parent if file else Path(str(target))
        if not (folder / SPEC_FILE).is_file():
            raise InvalidSpec(f"template {where}: no {SPEC_FILE} in {folder}")
        found.append(load_template(folder / SPEC_FILE, source=where))
    return found


def find_templates(configured_path: Sequence[str] = ()) -> dict[str, Template]:
    """Every template by name: built-in ones, then installed ones, then the search path's. A
    name given twice is refused, naming both places (a user template never shadows silently)."""
    found: dict[str, Template] = {}
    every = [
        *builtin_templates(),
        *_entry_point_templates(),
        *_folder_templates(search_path(configured_path)),
    ]
    for template in every:
        if template.name in found:
            first = found[template.name].source
            raise InvalidSpec(
                f"template {template.name!r} is defined twice: by {first} and by "
                f"{template.source}; rename one"
            )
        found[template.name] = template
    return found


def looks_like_folder(name: str) -> bool:
    """Whether `--template NAME` names a folder (`./mine`, `~/t`, `/abs`, `a/b`), not a name."""
    return name.startswith((".", "~", os.sep)) or os.sep in name or "/" in name


def get_template(
    name: str, configured_path: Sequence[str] = (), source_dir: str | Path = "."
) -> Template:
    """The template `--template NAME` names: a folder (relative to `source_dir`) or a known name;
    an unknown name is refused with the closest one and the list."""
    if looks_like_folder(name):
        folder = Path(source_dir, os.path.expanduser(name))
        if not (folder / SPEC_FILE).is_file():
            raise InvalidSpec(f"--template {name}: no {SPEC_FILE} in {folder}")
        return load_template(folder / SPEC_FILE, source=str(folder.absolute()))
    known = find_templates(configured_path)
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise InvalidSpec(
        f"--template {name}: no such template{hint}; known: {', '.join(sorted(known))}"
    )
