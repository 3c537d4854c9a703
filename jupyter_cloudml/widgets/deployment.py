"""The deployment widget: `DeploymentView` (display and a "try it" box), `DeploymentWatcher`
(polls a client), `deployment_widget`.

Endpoint URL and status, each version with its share of the traffic and its replicas' health,
selectable curl and Python snippets, and a box that sends rows to the endpoint. Nothing here
calls the endpoint itself: the watcher asks the client (`get_deployment`, `model_metadata`) and
the box calls the `predict` it is handed (`deployment_widget`'s calls `Client.predict`).
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import ipywidgets

from ..exceptions import CloudMLError, NotFound
from ..models import (
    DeploymentInfo,
    DeploymentStatus,
    JobStatus,
    ServingReplicaInfo,
    ServingReplicaStatus,
    VersionInfo,
)
from ..views.deployments import curl_snippet, python_snippet, replicas_text
from .job import STATUS_COLORS, describe_error, render_error, render_pill
from .saved import SavedCopy
from .watch import Watcher

log = logging.getLogger(__name__)

__all__ = ["DeploymentView", "DeploymentWatcher", "deployment_widget", "example_rows"]

#: Badge colors: a deployment or replica takes the color of the job state it resembles.
DEPLOYMENT_COLORS: dict[DeploymentStatus, str] = {
    DeploymentStatus.STARTING: STATUS_COLORS[JobStatus.STARTING],
    DeploymentStatus.READY: STATUS_COLORS[JobStatus.SUCCEEDED],
    DeploymentStatus.DEGRADED: STATUS_COLORS[JobStatus.RETRYING],
    DeploymentStatus.FAILED: STATUS_COLORS[JobStatus.FAILED],
    DeploymentStatus.STOPPED: STATUS_COLORS[JobStatus.CANCELLED],
}
REPLICA_COLORS: dict[ServingReplicaStatus, str] = {
    ServingReplicaStatus.STARTING: STATUS_COLORS[JobStatus.STARTING],
    ServingReplicaStatus.READY: STATUS_COLORS[JobStatus.SUCCEEDED],
    ServingReplicaStatus.RESTARTING: STATUS_COLORS[JobStatus.RETRYING],
    ServingReplicaStatus.FAILED: STATUS_COLORS[JobStatus.FAILED],
}

#: What the "try it" box holds until the model's width is known (`curl_snippet`'s default).
DEFAULT_EXAMPLE = "[[1.0, 2.0]]"
PREDICT_LABEL = "Predict"
REFRESH_SECONDS = 2.0
#: How long the watcher waits for the model's metadata (once, to prefill the example rows).
METADATA_TIMEOUT = 2.0

# One click selects the whole snippet (ipywidgets has no clipboard widget): then Ctrl+C.
_SNIPPET = (
    "margin:2px 0 6px;padding:4px 6px;border:1px solid #ddd;background:#f7f7f7;"
    "font-family:monospace;white-space:pre-wrap;word-break:break-all;user-select:all"
)
_RESULT = "margin:2px 0;font-family:monospace;white-space:pre-wrap;max-height:14em;overflow-y:auto"
_BAR = "display:inline-block;width:60px;height:8px;background:#e0e0e0;vertical-align:middle"
_BAR_FILL = "display:block;height:8px;background:#1976d2;width:{}%"


def render_status(status: DeploymentStatus) -> str:
    """A deployment's status as a colored pill."""
    return render_pill(status.value, DEPLOYMENT_COLORS[status])


def render_deployment_header(info: DeploymentInfo) -> str:
    """Name, status badge and the reason when there is one."""
    parts = [
        f"<b>{html.escape(info.name)}</b>",
        render_status(info.status),
    ]
    if info.reason:
        parts.append(f"<i>{html.escape(info.reason)}</i>")
    return " ".join(parts)


def render_endpoint(info: DeploymentInfo) -> str:
    """The endpoint's base URL and the two protocols' predict routes under it."""
    url, name = html.escape(info.url), html.escape(info.name)
    return (
        f'endpoint <a href="{url}" target="_blank"><code>{url}</code></a>'
        f"<br>v1 (KServe): <code>POST {url}/v1/models/{name}:predict</code>"
        f"<br>v2 (Open Inference Protocol): <code>POST {url}/v2/models/{name}/infer</code>"
        + (f"<br>gRPC: <code>{html.escape(info.grpc_url)}</code>" if info.grpc_url else "")
    )


def render_replica(replica: ServingReplicaInfo) -> str:
    """One replica: name, health badge, restarts, and why when it is not READY."""
    pill = render_pill(replica.status.value, REPLICA_COLORS[replica.status])
    parts = [html.escape(replica.name), pill]
    if replica.restarts:
        parts.append(f"restarted {replica.restarts}x")
    if replica.reason and replica.status is not ServingReplicaStatus.READY:
        parts.append(f"<i>{html.escape(replica.reason)}</i>")
    return " ".join(parts)


def render_versions(versions: tuple[VersionInfo, ...]) -> str:
    """The versions as an HTML table: traffic share (with a bar), model, replicas' health."""
    if not versions:
        return "<i>no versions</i>"
    head = "<tr><th>version</th><th>traffic</th><th>model</th><th>replicas</th></tr>"
    rows = []
    for v in versions:
        bar = f'<span style="{_BAR}"><span style="{_BAR_FILL.format(v.traffic)}"></span></span>'
        replicas = "<br>".join(render_replica(r) for r in v.replicas) or "-"
        rows.append(
            f'<tr class="cloudml-version" data-version="{html.escape(v.version)}">'
            f"<td><b>{html.escape(v.version)}</b></td>"
            f"<td>{bar} {v.traffic}%</td>"
            f"<td>{html.escape(v.framework.value)} <code>{html.escape(v.model)}</code></td>"
            f"<td>{replicas_text(v)}<br>{replicas}</td></tr>"
        )
    return f'<table class="cloudml-versions">{head}{"".join(rows)}</table>'


def render_snippets(info: DeploymentInfo, example: str) -> str:
    """The curl command and the Python call, each in a box one click selects whole."""
    return (
        f'curl:<pre style="{_SNIPPET}">{html.escape(curl_snippet(info, example))}</pre>'
        f'python:<pre style="{_SNIPPET}">{html.escape(python_snippet(info, example))}</pre>'
    )


def render_predictions(predictions: list[Any]) -> str:
    """Predictions as JSON, one row a line."""
    body = "\n".join(json.dumps(p) for p in predictions)
    return f'<pre style="{_RESULT}">{html.escape(body)}</pre>'


def example_rows(metadata: Mapping[str, Any]) -> str | None:
    """Two rows, as JSON, of the width a model's v2 metadata (`Client.model_metadata`) gives its
    first input (shape `[-1, N]`); None when it gives none (no fixed width, a custom model)."""
    try:
        shape = metadata["inputs"][0]["shape"]
    except (KeyError, IndexError, TypeError):
        return None
    if not (isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int)):
        return None
    width = shape[1]
    if not 0 < width <= 64:
        return None
    return json.dumps([[0.0] * width, [1.0] * width])


class DeploymentView(SavedCopy, ipywidgets.VBox):
    """One deployment: status, endpoint, versions and replicas, snippets, and a "try it" box;
    fed by `update` (usually from a `DeploymentWatcher`).

    Children: `HTML` widgets `outcome` (what the command did), `header`, `endpoint`, `error`,
    `versions`, `snippets`, then the try-it box: `rows` (Textarea of JSON rows),
    `predict_button`, `predictions` (HTML: the answer, or the error in red).
    `predict(rows) -> predictions` is what the button calls, in a thread of its own so the
    kernel stays free; without it the box is hidden.
    """

    def __init__(
        self,
        predict: Callable[[Any], list[Any]] | None = None,
        outcome: str = "",
        **kwargs: Any,
    ) -> None:
        #: What the command that showed the view did (a deploy's "v2 deployed ..."), if any.
        self.outcome = ipywidgets.HTML(f"<b>{html.escape(outcome)}</b>" if outcome else "")
        self.header = ipywidgets.HTML()
        self.endpoint = ipywidgets.HTML()
        self.error = ipywidgets.HTML()
        self.versions = ipywidgets.HTML()
        self.snippets = ipywidgets.HTML()
        self.rows = ipywidgets.Textarea(
            value=DEFAULT_EXAMPLE,
            description="Rows",
            placeholder="a JSON list of rows, e.g. [[5.1, 3.5, 1.4, 0.2]]",
            layout=ipywidgets.Layout(width="100%", height="5em"),
        )
        self.predict_button = ipywidgets.Button(
            description=PREDICT_LABEL,
            button_style="primary",
            icon="play",
            tooltip="send the rows to the endpoint (KServe v1 :predict)",
        )
        self.predictions = ipywidgets.HTML()
        self.try_it = ipywidgets.VBox(
            [ipywidgets.HTML("<b>Try it</b>"), self.rows, self.predict_button, self.predictions],
            layout=ipywidgets.Layout(display=None if predict else "none"),
        )
        self._predict = predict
        self._info: DeploymentInfo | None = None
        self._example = DEFAULT_EXAMPLE
        self._gone = False
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        #: The watcher feeding this view, if `deployment_widget` started one.
        self.watcher: DeploymentWatcher | None = None
        self.predict_button.on_click(lambda _button: self.run_predict())
        super().__init__(
            children=[
                self.outcome,
                self.header,
                self.endpoint,
                self.error,
                self.versions,
                self.snippets,
                self.try_it,
            ],
            **kwargs,
        )

    @property
    def example(self) -> str:
        """The example rows the snippets and the try-it box start from."""
        return self._example

    def update(self, info: DeploymentInfo) -> None:
        """Show `info` (and clear a problem shown before)."""
        with self._lock:
            self._info = info
            self.header.value = render_deployment_header(info)
            self.endpoint.value = render_endpoint(info)
            self.error.value = ""
            self.versions.value = render_versions(info.versions)
            self.snippets.value = render_snippets(info, self._example)
            if not self.predicting:
                self.predict_button.disabled = not self._serving

    def set_example(self, example: str) -> None:
        """Use `example` (JSON rows) in the snippets, and in the box unless the user typed."""
        with self._lock:
            if self.rows.value == self._example:
                self.rows.value = example
            self._example = example
            if self._info is not None:
                self.snippets.value = render_snippets(self._info, example)

    def show_error(self, message: str) -> None:
        """Show a problem fetching the deployment (cleared by the next successful `update`)."""
        with self._lock:
            self.error.value = render_error(message)

    def show_gone(self, message: str) -> None:
        """The deployment is no more: say so, and send no more rows to it."""
        with self._lock:
            name = html.escape(self._info.name) if self._info is not None else ""
            stopped = render_status(DeploymentStatus.STOPPED)
            self.header.value = f"<b>{name}</b> {stopped} <i>{html.escape(message)}</i>"
            self.error.value = ""
            self._gone = True
            self.predict_button.disabled = True

    def copy_subject(self) -> tuple[str, str, str, bool] | None:
        info = self._info
        if info is None:
            return None
        if self._gone:
            return "deployment", info.name, DeploymentStatus.STOPPED.value, True
        return "deployment", info.name, info.status.value, info.status is DeploymentStatus.STOPPED

    # --- try it ---------------------------------------------------------------------------

    @property
    def _serving(self) -> bool:
        """Whether there is an endpoint to send rows to (not removed, not STOPPED)."""
        info = self._info
        return not self._gone and (info is None or info.status is not DeploymentStatus.STOPPED)

    @property
    def predicting(self) -> bool:
        """True while a prediction started by the button is on its way."""
        return self._thread is not None and self._thread.is_alive()

    def run_predict(self) -> threading.Thread | None:
        """Send the box's rows to `predict` in a daemon thread (what the button does); the
        answer or the problem lands in `predictions`. None when one is already on its way."""
        with self._lock:
            if self._predict is None or self.predicting:
                return None
            text = self.rows.value
            self.predict_button.disabled = True
            self.predict_button.description = "Predicting..."
            self.predictions.value = "<i>waiting for the endpoint...</i>"
            self._thread = threading.Thread(
                target=self._run_predict, args=(self._predict, text), daemon=True
            )
            self._thread.start()
            return self._thread

    def wait_predict(self, timeout: float | None = None) -> None:
        """Wait for the prediction on its way, if any."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run_predict(self, predict: Callable[[Any], list[Any]], text: str) -> None:
        try:
            try:
                rows = json.loads(text)
            except ValueError as exc:
                shown = render_error(f"the rows are not valid JSON: {exc}")
            else:
                shown = render_predictions(predict(rows))
        except Exception as exc:  # shown to the user, never raised into the kernel
            log.debug("try-it prediction failed", exc_info=True)
            shown = render_error(describe_error(exc))
        with self._lock:
            self.predictions.value = shown
            self.predict_button.description = PREDICT_LABEL
            self.predict_button.disabled = not self._serving


class DeploymentSource(Protocol):
    """The part of `Client` a deployment widget needs."""

    def get_deployment(self, name: str) -> DeploymentInfo: ...

    def predict(
        self, name: str, instances: Any, version: str | None = None, timeout: float = 60.0
    ) -> list[Any]: ...

    def model_metadata(
        self, name: str, version: str | None = None, timeout: float = 60.0
    ) -> dict[str, Any]: ...


@dataclasses.dataclass(frozen=True)
class DeploymentPoll:
    """What one poll saw, in the shape `Watcher` stops on: the watch ends (a terminal status)
    once the deployment is STOPPED or gone."""

    info: DeploymentInfo | None

    @property
    def status(self) -> JobStatus:
        ended = self.info is None or self.info.status is DeploymentStatus.STOPPED
        return JobStatus.CANCELLED if ended else JobStatus.RUNNING


class DeploymentWatcher(Watcher[DeploymentPoll]):
    """Feeds `view` the deployment every `interval` seconds until it is STOPPED or removed
    (see `Watcher`); once it is READY, asks the client once for the model's metadata, whose input
    width prefills the example rows."""

    def __init__(
        self,
        client: DeploymentSource,
        name: str,
        view: DeploymentView,
        *,
        interval: float = REFRESH_SECONDS,
        retries: int = 5,
        max_backoff: float = 10.0,
    ) -> None:
        super().__init__(view, name, interval=interval, retries=retries, max_backoff=max_backoff)
        self.client = client
        self.view = view
        self.example_known = False

    def poll(self) -> DeploymentPoll:
        """Fetch the deployment and show it; a removed deployment ends the watch."""
        try:
            info = self.client.get_deployment(self.name)
        except NotFound as exc:
            self.view.show_gone(describe_error(exc))
            self.view.keep()
            return DeploymentPoll(None)
        self.view.update(info)
        if not self.example_known and info.status is DeploymentStatus.READY:
            self.example_known = True
            example = self.example(info.name)
            if example is not None:
                self.view.set_example(example)
                self.view.keep(force=True)
        self.view.keep()
        return DeploymentPoll(info)

    def example(self, name: str) -> str | None:
        """Example rows for the model `client.model_metadata` describes; None when it says no
        width or cannot be had (the box keeps its default: nothing to show the user)."""
        try:
            metadata = self.client.model_metadata(name, timeout=METADATA_TIMEOUT)
        except (CloudMLError, ValueError):
            log.debug("no example shape for %s", name, exc_info=True)
            return None
        return example_rows(metadata)


def deployment_widget(
    client: DeploymentSource, name: str, *, interval: float = REFRESH_SECONDS, outcome: str = ""
) -> DeploymentView:
    """A `DeploymentView` of `name`, filled once right away, then refreshed every `interval`
    seconds by a `DeploymentWatcher` while the deployment runs; its button calls
    `client.predict(name, rows)` (the version the endpoint's traffic split picks). `outcome`
    heads it: what the command that shows it did."""

    def predict(rows: Any) -> list[Any]:
        return client.predict(name, rows, version=None)

    view = DeploymentView(predict=predict, outcome=outcome)
    view.watcher = DeploymentWatcher(client, name, view, interval=interval)
    view.watcher.follow()
    return view
