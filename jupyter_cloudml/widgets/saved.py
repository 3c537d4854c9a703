"""What a saved notebook keeps of a live view.

Beside the widget, every job, study and deployment output carries a static HTML copy of the
view's latest state (charts as embedded PNGs) and a one-line text; once the state is final, the
output is only that copy. A notebook reopened without its kernel, exported with nbconvert or shown
on GitHub then shows what the cell showed, not "Error displaying widget: model not found".

A copy taken before the end says when it was taken and how to get a live view again; the lab
extension swaps a widget that can no longer update (its kernel restarted, or the notebook was
reopened) for this copy.
"""

from __future__ import annotations

import base64
import html
import threading
import time
from typing import Any

import ipywidgets

#: The attribute that marks our static copies (the lab extension looks for it).
MARKER = "data-cloudml-view"
#: Their class (kept where an untrusted notebook's HTML loses data attributes).
CSS_CLASS = "cloudml-saved-view"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def static_html(widget: ipywidgets.Widget) -> str:
    """The widget tree as plain HTML: text and tables as shown, plots as embedded PNGs, a
    progress bar as a bar; controls (buttons, text boxes, menus) are left out, they only work
    live. Hidden widgets are left out too."""
    layout = getattr(widget, "layout", None)
    if layout is not None and layout.display == "none":
        return ""
    if isinstance(widget, ipywidgets.HTML):
        return f"<div>{widget.value}</div>" if widget.value else ""
    if isinstance(widget, ipywidgets.Image):
        if not widget.value:
            return ""
        data = base64.b64encode(widget.value).decode("ascii")
        alt = html.escape(getattr(widget, "caption", "") or "chart", quote=True)
        return f'<div><img alt="{alt}" src="data:image/{widget.format};base64,{data}"></div>'
    if isinstance(widget, ipywidgets.IntProgress):
        share = (
            0
            if widget.max <= widget.min
            else (widget.value - widget.min) / (widget.max - widget.min)
        )
        return (
            '<div style="display:inline-block;width:12em;height:0.7em;background:#e0e0e0;'
            f'margin-right:0.5em"><div style="width:{share:.0%};height:100%;background:#1976d2">'
            "</div></div>"
        )
    if isinstance(widget, ipywidgets.Box):
        inner = "".join(static_html(child) for child in widget.children)
        if not inner:
            return ""
        if isinstance(widget, ipywidgets.HBox):
            return f'<div style="display:flex;align-items:center;gap:0.5em">{inner}</div>'
        return f"<div>{inner}</div>"
    return ""


class SavedCopy:
    """Mixed into a view (an ipywidgets Box): `_repr_mimebundle_` adds the static copy, and
    `keep` refreshes the notebook's copy of the output it was shown in (`show`).

    A view says what it shows through `copy_subject` (its kind, id, status word, and whether that
    status is final); it calls `keep` when its status changes.
    """

    _handle: Any = None
    _kept: tuple[str, bool] | None = None
    _keep_lock = threading.Lock()

    def copy_subject(self) -> tuple[str, str, str, bool] | None:
        """(kind, id, status, final) of what is shown, or None before anything is."""
        raise NotImplementedError

    def static_copy(self) -> dict[str, str]:
        """The output's static form: `text/html` (marked) and `text/plain`."""
        subject = self.copy_subject()
        body = static_html(self)
        if subject is None:
            copy = f'<div class="{CSS_CLASS}" {MARKER}>{body}</div>'
            return {"text/html": copy, "text/plain": "(nothing yet)"}
        kind, ident, status, final = subject
        note = "" if final else _stale_note(kind, ident, status)
        return {
            "text/html": f'<div class="{CSS_CLASS}" {MARKER}="{kind}">{body}{note}</div>',
            "text/plain": f"{kind} {ident}: {status}",
        }

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        copy = self.static_copy()
        subject = self.copy_subject()
        if subject is not None and subject[3]:
            return copy
        bundle: dict[str, Any] = super()._repr_mimebundle_(**kwargs)  # type: ignore[misc]
        bundle.update(copy)
        return bundle

    def show(self) -> None:
        """Display the view in the notebook, in an output whose copy `keep` refreshes."""
        from IPython.display import display

        self._handle = display(self, display_id=True)
        self._kept = self._state()

    def keep(self, force: bool = False) -> None:
        """Refresh the notebook's copy of the output when the status changed since the last
        time (or `force`); once final, the output becomes the copy alone."""
        with self._keep_lock:
            if self._handle is None:
                return
            state = self._state()
            if state == self._kept and not force:
                return
            self._kept = state
            self._handle.update(self)

    def _state(self) -> tuple[str, bool] | None:
        subject = self.copy_subject()
        return None if subject is None else (subject[2], subject[3])


def _stale_note(kind: str, ident: str, status: str) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    call = html.escape(f'jupyter_cloudml.show("{ident}")')
    return (
        '<div class="cloudml-saved-note" style="color:#757575;font-size:0.85em">'
        f"A copy of this {html.escape(kind)} view taken {when}, while it was "
        f"{html.escape(status)}; it does not update. For a live view run <code>{call}</code>."
        "</div>"
    )
