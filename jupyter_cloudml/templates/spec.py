"""What a template declares (`template.yaml`): its trainer package, inputs, hyperparameters with
defaults and a search space, the metric it reports and what it saves; read strictly."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..exceptions import InvalidSpec
from ..models import ParamSpec, ParamType
from ..packaging.config_yaml import FieldReader, parse_strict_yaml
from ..packaging.files import read_text_file

SPEC_FILE = "template.yaml"

#: What `--data` is for each kind of template (checked before submitting where it can be).
KINDS = {
    "tabular": "a CSV or Parquet file (a path, a glob or an fsspec URI) or a DataFrame",
    "text": "a CSV or Parquet file with a text column, or a DataFrame",
    "image": "a folder with one subfolder of images per class",
}

#: What the target is for: what the early checks of the target column expect.
TASKS = ("classification", "regression")

_KEYS = (
    "name",
    "summary",
    "kind",
    "task",
    "package",
    "module",
    "args",
    "inputs",
    "params",
    "metric",
    "goal",
    "framework",
    "saves",
)
_PARAM_KEYS = ("default", "space", "choices", "help")


@dataclasses.dataclass(frozen=True)
class TemplateParam:
    """One hyperparameter: its default, its default search space (None: not tuned), its help."""

    name: str
    default: float | int | str
    space: ParamSpec | None
    help: str
    #: The values a string parameter takes (empty: any).
    choices: tuple[str, ...] = ()

    def value(self, text: str) -> float | int | str:
        """A `--param NAME=TEXT` value, typed as the default is; refused when it cannot be."""
        if isinstance(self.default, str):
            if self.choices and text not in self.choices:
                choices = ", ".join(self.choices)
                raise InvalidSpec(f"--param {self.name}={text}: choose from {choices}")
            return text
        kind = int if isinstance(self.default, int) else float
        try:
            return kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise InvalidSpec(f"--param {self.name}={text}: expected {what}") from None


@dataclasses.dataclass(frozen=True)
class Template:
    """A template: a trainer package (`package_dir`, `module`) and what it declares."""

    name: str
    summary: str
    kind: str
    task: str | None
    package_dir: Path
    module: str
    args: tuple[str, ...]
    inputs: dict[str, str]
    params: tuple[TemplateParam, ...]
    metric: str
    goal: str
    framework: str
    saves: tuple[str, ...]
    #: Where it comes from: "built-in", an entry point, or a folder.
    source: str

    def param(self, name: str) -> TemplateParam:
        """The parameter `name`, or InvalidSpec naming the template's own."""
        for p in self.params:
            if p.name == name:
                return p
        import difflib

        names = [p.name for p in self.params]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise InvalidSpec(
            f"--param {name}: template {self.name} has no such parameter{hint}; "
            f"its parameters: {', '.join(names) or 'none'}"
        )

    def code(self) -> dict[str, str]:
        """The trainer's code by path inside the package, to read and copy into a cell: the
        entry module, then the package's modules it imports."""
        import ast

        entry = self.package_dir / (self.module.replace(".", "/") + ".py")
        files = [entry]
        top = self.module.split(".")[0]
        for node in ast.walk(ast.parse(read_text_file(entry))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                path = self.package_dir / (name.replace(".", "/") + ".py")
                if name.split(".")[0] == top and path.is_file() and path not in files:
                    files.append(path)
        return {str(f.relative_to(self.package_dir)): read_text_file(f) for f in files}


def load_template(path: Path, source: str) -> Template:
    """Read one `template.yaml` (or a built-in `NAME.yaml`); every mistake names its field."""
    name = str(path)
    raw = parse_strict_yaml(name, read_text_file(path))
    read = FieldReader(name)
    doc = read.mapping(raw, "(top)", _KEYS)
    for key in ("name", "summary", "kind", "metric"):
        if key not in doc:
            read.fail(key, "missing")
    kind = read.string(doc["kind"], "kind")
    if kind not in KINDS:
        read.fail("kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    task = read.string(doc["task"], "task") if "task" in doc else None
    if task is not None and task not in TASKS:
        read.fail("task", f"expected one of {', '.join(TASKS)}, got {task!r}")
    package_dir = (path.parent / read.string(doc.get("package", "."), "package")).resolve()
    if not package_dir.is_dir():
        read.fail("package", f"no such folder: {package_dir}")
    goal = read.string(doc.get("goal", "maximize"), "goal").lower()
    if goal not in ("maximize", "minimize"):
        read.fail("goal", f"expected maximize or minimize, got {goal!r}")
    return Template(
        name=read.string(doc["name"], "name"),
        summary=read.string(doc["summary"], "summary"),
        kind=kind,
        task=task,
        package_dir=package_dir,
        module=read.string(doc.get("module", "trainer.task"), "module"),
        args=tuple(_strings(read, doc.get("args", []), "args")),
        inputs={
            str(k): read.string(v, f"inputs.{k}")
            for k, v in read.mapping(doc.get("inputs", {}), "inputs", ("data", "target")).items()
        },
        params=tuple(_params(read, doc.get("params") or {})),
        metric=read.string(doc["metric"], "metric"),
        goal=goal,
        framework=read.string(doc.get("framework", "sklearn"), "framework"),
        saves=tuple(_strings(read, doc.get("saves", []), "saves")),
        source=source,
    )


def _strings(read: FieldReader, value: Any, path: str) -> list[str]:
    if not isinstance(value, list):
        read.fail(path, "expected a list")
    return [read.string(str(item), f"{path}[{i}]") for i, item in enumerate(value)]


def _params(read: FieldReader, raw: Any) -> list[TemplateParam]:
    from ..tuning.space import parse_param

    if not isinstance(raw, dict):
        read.fail("params", "expected a mapping of NAME: {default, space, help}")
    found = []
    for key, value in raw.items():
        where = f"params.{key}"
        fields = read.mapping(value, where, _PARAM_KEYS)
        if "default" not in fields:
            read.fail(where, "missing default")
        default = fields["default"]
        if isinstance(default, bool) or not isinstance(default, int | float | str):
            read.fail(f"{where}.default", "expected a number or a string")
        space = None
        if "space" in fields:
            try:
                space = parse_param(f"{key}={read.string(fields['space'], where + '.space')}")
            except InvalidSpec as exc:
                read.fail(f"{where}.space", str(exc))
        choices = tuple(_strings(read, fields.get("choices", []), f"{where}.choices"))
        if space is not None and space.type is ParamType.CATEGORICAL and not choices:
            choices = tuple(map(str, space.values))
        help_text = str(fields.get("help", ""))
        found.append(TemplateParam(str(key), default, space, help_text, choices))
    return found
