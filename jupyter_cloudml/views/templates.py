"""How templates and their evaluation reports read: tables and descriptions for `templates
list|describe`, and a finished template job's report as text (CLI) or HTML with its plot."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .text import format_table as table

if TYPE_CHECKING:
    from ..templates import Template


def template_dict(t: Template, code: bool = False) -> dict[str, Any]:
    """A template as JSON: what it declares (and its code, for describe)."""
    from ..tuning.space import param_to_text

    found: dict[str, Any] = {
        "name": t.name,
        "summary": t.summary,
        "kind": t.kind,
        "task": t.task,
        "source": t.source,
        "module": t.module,
        "inputs": dict(t.inputs),
        "params": [
            {
                "name": p.name,
                "default": p.default,
                "space": param_to_text(p.space).partition("=")[2] if p.space else None,
                "choices": list(p.choices),
                "help": p.help,
            }
            for p in t.params
        ],
        "metric": t.metric,
        "goal": t.goal,
        "framework": t.framework,
        "saves": list(t.saves),
    }
    if code:
        found["code"] = t.code()
    return found


def format_template_table(templates: Sequence[Template]) -> str:
    """`templates list`: one row per template."""
    if not templates:
        return "no templates"
    rows = [
        [t.name, t.kind, t.task or "-", f"{t.metric} ({t.goal})", t.source, t.summary]
        for t in templates
    ]
    return table(["NAME", "KIND", "TASK", "METRIC", "SOURCE", "SUMMARY"], rows)


def format_template(t: Template, code: bool = True) -> str:
    """`templates describe NAME`: inputs, parameters (default, search space), metric, saves,
    and the trainer's code to read or copy into a cell."""
    d = template_dict(t)
    lines = [
        f"Template:  {t.name} ({t.source})",
        f"Summary:   {t.summary}",
        f"Kind:      {t.kind}" + (f", {t.task}" if t.task else ""),
        f"Metric:    {t.metric} ({t.goal}), on a held-out split",
        f"Saves:     {', '.join(t.saves) or '-'} (deploy with --framework {t.framework})",
        f"Entry:     python -m {t.module} {' '.join(t.args)}".rstrip(),
        "",
        "Inputs:",
        *(f"  --{name:<8} {text}" for name, text in t.inputs.items()),
        "",
        "Parameters (--param NAME=VALUE; --tune searches the spaces):",
    ]
    rows = [
        [
            p["name"],
            str(p["default"]),
            p["space"] or "-",
            p["help"] + (f" (one of {', '.join(p['choices'])})" if p["choices"] else ""),
        ]
        for p in d["params"]
    ]
    lines.append(table(["NAME", "DEFAULT", "SEARCH SPACE", "HELP"], rows) if rows else "  none")
    if code:
        for path, text in t.code().items():
            lines += ["", f"--- {path} ---", text.rstrip()]
    return "\n".join(lines)


def format_report(report: Mapping[str, Any]) -> str:
    """A template job's evaluation report as text: the metrics on the held-out rows."""
    metrics = report.get("metrics", {})
    head = (
        f"evaluation ({report.get('task', '?')}, {report.get('n_test', '?')} held-out rows"
        + (f", model {report['model']}" if report.get("model") else "")
        + "):"
    )
    lines = [head, *(f"  {name:<10} {_number(value)}" for name, value in metrics.items())]
    matrix = report.get("confusion_matrix")
    if matrix:
        labels = [str(x) for x in matrix["labels"]]
        rows = [
            [label, *map(str, row)] for label, row in zip(labels, matrix["matrix"], strict=True)
        ]
        lines += ["  confusion matrix (rows true, columns predicted):"]
        lines += ["  " + line for line in table(["", *labels], rows).splitlines()]
    return "\n".join(lines)


def report_html(report: Mapping[str, Any], png: bytes | None) -> str:
    """The report as HTML, its plot embedded as a data URI (kept in a saved notebook)."""
    rows = "".join(
        f"<tr><td>{html.escape(str(name))}</td><td>{html.escape(_number(value))}</td></tr>"
        for name, value in report.get("metrics", {}).items()
    )
    image = ""
    if png:
        data = base64.b64encode(png).decode("ascii")
        image = f'<img alt="evaluation plot" src="data:image/png;base64,{data}"/>'
    title = html.escape(
        f"Evaluation: {report.get('task', '')}, {report.get('n_test', '?')} held-out rows"
    )
    return f'<div class="cloudml-evaluation"><b>{title}</b><table>{rows}</table>{image}</div>'


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
