"""A server in a background thread of this process: for tests, notebooks and benchmarks.

    with BackgroundServer(create_app(Service(config, load))) as server:
        client = openai.OpenAI(base_url=server.url, api_key="unused")

It binds 127.0.0.1 on a free port, waits until ``/health`` says the models are loaded, and
stops uvicorn (which closes the scheduler) on exit. ``codit serve`` itself does not use it.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any


class BackgroundServer:
    """uvicorn serving ``app`` from a daemon thread.

    Args:
        app: the ASGI app (``create_app(...)``).
        grace: seconds a stop waits for requests in flight.
    """

    def __init__(self, app: Any, grace: int = 5):
        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, log_level="warning", access_log=False, timeout_graceful_shutdown=grace
            )
        )
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The ``/v1`` base URL for OpenAI clients."""
        return self.root + "/v1"

    def start(self, timeout: float = 120.0) -> BackgroundServer:
        """Start serving and wait until the models are loaded."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError("the server stopped while starting")
            try:
                with urllib.request.urlopen(self.root + "/health", timeout=5) as reply:
                    if reply.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"the server was not ready within {timeout:g} s")

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(30)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
