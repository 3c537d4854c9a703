"""REST handlers under `{base_url}cloudml/api/`; the contract is `openapi.yaml` beside this file.

Every handler requires the Jupyter server's authentication, calls `Client` in a worker thread
and answers JSON; typed errors become their HTTP status with a `{code, message}` body.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.iostream import StreamClosedError

from .. import exceptions
from ..commands.unparse import reproduce_magic, reproduce_study_magic
from ..models import (
    JobInfo,
    JobQuery,
    JobStatus,
    TensorBoardInfo,
    job_kind,
    narrow_query,
    to_dict,
)
from ..views.jobs import job_dict
from ..views.studies import study_dict
from ..views.tensorboards import proxy_path
from .logstream import LogFollower

if TYPE_CHECKING:  # the app imports this module to register its handlers
    from .app import CloudMLServerApp

T = TypeVar("T")

#: The `code` of each error kind in a JSON error body.
ERROR_CODES: Mapping[type[exceptions.CloudMLError], str] = {
    exceptions.InvalidSpec: "invalid",
    exceptions.NotFound: "not_found",
    exceptions.Conflict: "conflict",
    exceptions.QuotaExceeded: "quota_exceeded",
    exceptions.Unsupported: "unsupported",
    exceptions.BackendUnavailable: "unavailable",
}
HTTP_CODES = {400: "invalid", 403: "not_authenticated", 404: "not_found", 405: "invalid"}
ID = r"(?P<{}>[^/]+)"


def error_code(exc: exceptions.CloudMLError) -> str:
    for kind in type(exc).__mro__:
        if kind in ERROR_CODES:
            return ERROR_CODES[kind]
    return "error"


class CloudMLHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every handler: the app, its client, JSON in and out, typed errors."""

    @property
    def app(self) -> CloudMLServerApp:
        app: CloudMLServerApp = self.settings["cloudml"]
        return app

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` in a worker thread; a `CloudMLError` becomes an HTTP answer."""
        return await self.app.call(fn, *args, **kwargs)

    async def client_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A `Client` method in a worker thread (the client itself is made there too)."""
        return await self.call(lambda: getattr(self.app.client, method)(*args, **kwargs))

    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def json_body(self) -> dict[str, Any]:
        """The request's JSON object; `InvalidSpec` for anything else."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise exceptions.InvalidSpec("the request body is not JSON") from None
        except RecursionError:
            raise exceptions.InvalidSpec("the request body is nested too deeply") from None
        if not isinstance(body, dict):
            raise exceptions.InvalidSpec("the request body must be a JSON object")
        return body

    def reply_done(self) -> None:
        """204: done, nothing to say (delete, stop)."""
        self.set_status(204)
        self.finish()

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, exceptions.CloudMLError):  # an answer, not a server fault
            self.log.info("cloudml: %s %s: %s", self.request.method, self.request.path, value)
        else:
            super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, exceptions.CloudMLError):
            status_code, code, message = exc.http_status, error_code(exc), str(exc)
        elif isinstance(exc, web.HTTPError):
            code = HTTP_CODES.get(status_code, "error")
            message = exc.log_message or exc.reason or HTTPStatus(status_code).phrase
        else:
            code, message = "error", f"internal error: {exc!r}"
            self.log.error("cloudml: unhandled error", exc_info=kwargs.get("exc_info"))
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"code": code, "message": message}))

    # --- query arguments -------------------------------------------------------------------

    def int_arg(self, name: str, default: int, low: int, high: int | None = None) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise exceptions.InvalidSpec(f"{name} must be a whole number, got {raw!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"{low}..{high}" if high is not None else f">= {low}"
            raise exceptions.InvalidSpec(f"{name} must be {bound}, got {value}")
        return value

    def float_arg(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.get_query_argument(name, None)
        try:
            value = default if raw is None else float(raw)
        except ValueError:
            raise exceptions.InvalidSpec(f"{name} must be a number, got {raw!r}") from None
        if not low <= value <= high:
            raise exceptions.InvalidSpec(f"{name} must be {low}..{high}, got {value}")
        return value

    def query(self) -> JobQuery:
        """The filters and page of a listing request."""
        statuses = []
        for raw in self.get_query_arguments("status"):
            try:
                statuses.append(JobStatus(raw.upper()))
            except ValueError:
                known = ", ".join(s.value for s in JobStatus)
                raise exceptions.InvalidSpec(f"unknown status {raw!r}: use {known}") from None
        labels = {}
        for raw in self.get_query_arguments("label"):
            key, sep, value = raw.partition("=")
            if not sep:
                raise exceptions.InvalidSpec(f"label filter {raw!r} must be KEY=VALUE")
            labels[key] = value
        return JobQuery(
            status=tuple(statuses),
            name=self.get_query_argument("name", None) or None,
            labels=labels,
            limit=self.int_arg("limit", 50, 1, 500),
            offset=self.int_arg("offset", 0, 0),
        )


def job_json(job: JobInfo) -> dict[str, Any]:
    """A job as the API shows it: `job_dict` plus its kind and the study of a trial."""
    data = job_dict(job)
    data["kind"], data["study"] = job_kind(job)
    return data


def page_json(query: JobQuery) -> dict[str, int]:
    return {"limit": query.limit, "offset": query.offset}


def tensorboard_json(board: TensorBoardInfo) -> dict[str, Any]:
    return {
        "id": board.id,
        "jobs": list(board.jobs),
        "url": proxy_path(board),
        "status": "reused" if board.reused else "launched",
    }


class CapabilitiesHandler(CloudMLHandler):
    @web.authenticated
    async def get(self) -> None:
        caps = await self.client_call("capabilities")
        self.reply({**to_dict(caps), "studies": True})


class QuotaHandler(CloudMLHandler):
    @web.authenticated
    async def get(self) -> None:
        self.reply(to_dict(await self.client_call("quota")))


class JobsHandler(CloudMLHandler):
    @web.authenticated
    async def get(self) -> None:
        query = narrow_query(
            self.query(),
            kind=self.get_query_argument("kind", "any"),
            study=self.get_query_argument("study", None),
        )
        page = await self.client_call("list", query)
        jobs = [job_json(job) for job in page.jobs]
        self.reply({"jobs": jobs, "total": page.total, **page_json(query)})


class JobHandler(CloudMLHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        def detail() -> dict[str, Any]:
            client = self.app.client
            job = client.get(job_id)
            data = job_json(job)
            data["events"] = [to_dict(event) for event in client.events(job_id)]
            try:
                spec = job.spec
                data["magic"] = reproduce_magic(spec, client.cell(job_id)) if spec else ""
            except (exceptions.NotFound, exceptions.InvalidSpec):
                data["magic"] = ""  # the code package is gone or unreadable
            return data

        self.reply(await self.call(detail))

    @web.authenticated
    async def delete(self, job_id: str) -> None:
        await self.client_call("delete", job_id)
        self.reply_done()


class JobCancelHandler(CloudMLHandler):
    @web.authenticated
    async def post(self, job_id: str) -> None:
        self.reply(job_json(await self.client_call("cancel", job_id)))


class LogsHandler(CloudMLHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        since = self.get_query_argument("since", None)
        try:
            since_time = None if since is None else float(since)
        except ValueError:
            raise exceptions.InvalidSpec(f"since must be a Unix time, got {since!r}") from None
        replica = self.get_query_argument("replica", None)
        tail = self.int_arg("tail", 1000, 0, 100_000)
        lines = await self.call(
            lambda: list(self.app.client.logs(job_id, replica=replica, since=since_time, tail=tail))
        )
        self.reply({"lines": [to_dict(line) for line in lines]})


class LogStreamHandler(CloudMLHandler):
    """Newline-delimited JSON batches of a job's log until the job ends."""

    follower: LogFollower | None = None

    @web.authenticated
    async def get(self, job_id: str) -> None:
        interval = self.float_arg("interval", self.app.log_batch_seconds, 0.05, 5.0)
        tail = self.int_arg("tail", 1000, 0, 100_000)
        replica = self.get_query_argument("replica", None)
        await self.client_call("get", job_id)  # 404 before the stream starts
        stop = threading.Event()
        lines = await self.client_call(
            "logs", job_id, replica=replica, follow=True, tail=tail, stop=stop
        )
        self.follower = LogFollower(lines, stop)
        self.set_header("Content-Type", "application/x-ndjson")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # no proxy buffering (nginx, hub proxies)
        try:
            async for batch in self.follower.batches(interval):
                self.write(json.dumps({"lines": [to_dict(line) for line in batch]}) + "\n")
                await self.flush()
            if self.follower.error is not None:
                error = self.follower.error
                self.write(json.dumps({"lines": [], "error": str(error)}) + "\n")
            job = await self.client_call("get", job_id)
            end = {"lines": [], "end": True, "status": job.status.value}
            self.write(json.dumps(end) + "\n")
            self.finish()
        except StreamClosedError:
            self.follower.stop()

    def on_connection_close(self) -> None:
        if self.follower is not None:
            self.follower.stop()


class MetricsHandler(CloudMLHandler):
    @web.authenticated
    async def get(self, job_id: str) -> None:
        cursor = self.get_query_argument("cursor", None) or None
        update = await self.client_call("metrics", job_id, cursor)
        self.reply(to_dict(update))


class StudiesHandler(CloudMLHandler):
    @web.authenticated
    async def get(self) -> None:
        query = self.query()
        studies, total = await self.client_call("page_studies", query)
        self.reply(
            {
                "studies": [study_dict(s) for s in studies],
                "total": total,
                **page_json(query),
            }
        )


class StudyHandler(CloudMLHandler):
    @web.authenticated
    async def get(self, study_id: str) -> None:
        def detail() -> dict[str, Any]:
            client = self.app.client
            study = client.get_study(study_id)
            data = study_dict(study)
            try:
                template, cell = client.trial_template(study.id)
                data["magic"] = reproduce_study_magic(template, study.tuning, cell)
            except (exceptions.NotFound, exceptions.InvalidSpec):
                data["magic"] = ""  # the code package is gone or unreadable
            return data

        self.reply(await self.call(detail))

    @web.authenticated
    async def delete(self, study_id: str) -> None:
        await self.client_call("delete_study", study_id)
        self.reply_done()


class StudyCancelHandler(CloudMLHandler):
    @web.authenticated
    async def post(self, study_id: str) -> None:
        self.reply(study_dict(await self.client_call("cancel_study", study_id)))


class TensorBoardsHandler(CloudMLHandler):
    @web.authenticated
    async def get(self) -> None:
        boards = await self.client_call("tensorboards")
        self.reply({"tensorboards": [tensorboard_json(b) for b in boards]})

    @web.authenticated
    async def post(self) -> None:
        jobs = self.json_body().get("jobs")
        if not (isinstance(jobs, list) and jobs and all(isinstance(j, str) for j in jobs)):
            raise exceptions.InvalidSpec('give the jobs as {"jobs": ["JOB_ID", ...]}')
        board = await self.client_call("tensorboard", jobs)
        self.reply(tensorboard_json(board), status=200 if board.reused else 201)


class TensorBoardHandler(CloudMLHandler):
    @web.authenticated
    async def delete(self, tensorboard_id: str) -> None:
        await self.client_call("stop_tensorboard", tensorboard_id)
        self.reply_done()


def _route(path: str) -> str:
    return "/cloudml/api" + path.format(
        job=ID.format("job_id"),
        study=ID.format("study_id"),
        tb=ID.format("tensorboard_id"),
        deployment=ID.format("name"),
    )


HANDLERS: list[tuple[str, type[CloudMLHandler]]] = [
    (_route("/capabilities"), CapabilitiesHandler),
    (_route("/quota"), QuotaHandler),
    (_route("/jobs"), JobsHandler),
    (_route("/jobs/{job}"), JobHandler),
    (_route("/jobs/{job}/cancel"), JobCancelHandler),
    (_route("/jobs/{job}/logs"), LogsHandler),
    (_route("/jobs/{job}/logs/stream"), LogStreamHandler),
    (_route("/jobs/{job}/metrics"), MetricsHandler),
    (_route("/studies"), StudiesHandler),
    (_route("/studies/{study}"), StudyHandler),
    (_route("/studies/{study}/cancel"), StudyCancelHandler),
    (_route("/tensorboards"), TensorBoardsHandler),
    (_route("/tensorboards/{tb}"), TensorBoardHandler),
]
