"""`CloudMLServerApp`: the jupyter-server extension that serves the sidebar's REST API."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Integer

from ..client import Client
from ..config import load_config
from ..exceptions import CloudMLError

T = TypeVar("T")


class CloudMLServerApp(ExtensionApp):
    """Jobs, studies, logs, metrics and TensorBoards of the configured backend, over REST."""

    name = "jupyter_cloudml"
    load_other_extensions = True

    worker_threads = Integer(
        8,
        config=True,
        help="""Threads that run blocking backend calls off the event loop.
        Example: c.CloudMLServerApp.worker_threads = 16""",
    )
    log_batch_seconds = Float(
        0.25,
        config=True,
        help="""Default time a log stream gathers lines before sending them as one batch.
        Example: c.CloudMLServerApp.log_batch_seconds = 0.5""",
    )

    def initialize_settings(self) -> None:
        self._executor = ThreadPoolExecutor(self.worker_threads, thread_name_prefix="cloudml")
        self._client: Client | None = None
        self.settings["cloudml"] = self
        # The backend touched once now, so that the local backend's keeper comes back with the
        # server (after a reboot); the Client requests use is made on first use, as before, and
        # a backend that cannot be made says why to each request.
        with contextlib.suppress(CloudMLError):
            self._new_client()

    def initialize_handlers(self) -> None:
        from .deployments import DEPLOYMENT_HANDLERS
        from .handlers import HANDLERS
        from .tensorboard_proxy import ROUTE, TensorBoardProxyHandler

        self.handlers.extend(HANDLERS)
        self.handlers.extend(DEPLOYMENT_HANDLERS)
        self.handlers.append((ROUTE, TensorBoardProxyHandler))

    @property
    def client(self) -> Client:
        """The `Client` over the configured backend, made on first use (errors reach callers)."""
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def _new_client(self) -> Client:
        config = load_config()
        config.merge(self.config)  # the server's own config (c.CloudML...) wins
        return Client(config=config)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking function (a backend call) in the worker threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def stop_extension(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
