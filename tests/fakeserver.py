"""A real OpenAI-compatible HTTP server on 127.0.0.1 with scripted replies, for tests.

``FakeServer`` serves ``POST /v1/chat/completions`` from a thread. By default it answers
``"echo: <last user message>"``; a test sets ``server.script`` to a function
``(body, n) -> Reply`` (``n`` counts requests from 0) to script status codes, delays, malformed
bodies, dropped connections or the server dying. It records every request body in ``requests``,
their ``Authorization`` headers in ``authorization``, and the most requests it ever had in
flight in ``max_in_flight``.

    with FakeServer() as server:
        server.script = lambda body, n: Reply(status=429) if n == 0 else Reply(text="ok")
        backend = OpenAIBackend("m", server.url, max_retries=2, retry_delay=0.01)

Reusable by any test of a pipeline that talks to an OpenAI-compatible endpoint.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """What the server does with one request.

    Attributes:
        text: the assistant's content (None sends ``"content": null``).
        status: the HTTP status; non-200 replies carry an OpenAI-style error body.
        delay: seconds to wait before answering (longer than the client's timeout = a timeout).
        body: raw bytes to send instead of a completion (a malformed reply).
        drop: close the connection without answering (the server dying mid-request).
        finish_reason: the choice's finish reason.
        headers: extra response headers, e.g. ``{"Retry-After": "0"}``.
        error: the error message of a non-200 reply.
    """

    text: str | None = "ok"
    status: int = 200
    delay: float = 0.0
    body: bytes | None = None
    drop: bool = False
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)
    error: str = "scripted error"


def last_user(body: dict[str, Any]) -> str:
    """The content of the last user message of a request body."""
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")


def echo(body: dict[str, Any], n: int) -> Reply:
    """The default script: answer ``echo: <last user message>``."""
    return Reply(text="echo: " + last_user(body))


def completion(model: str, text: str | None, finish_reason: str = "stop") -> dict[str, Any]:
    """An OpenAI chat-completion body."""
    words = len((text or "").split())
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": words, "total_tokens": 7 + words},
    }


class FakeServer:
    """An OpenAI-compatible chat-completions server on a free port of 127.0.0.1."""

    def __init__(self, script: Callable[[dict[str, Any], int], Reply] = echo):
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.authorization: list[str] = []  # the Authorization header of each request
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._alive = False

    @property
    def url(self) -> str:
        """The base URL to give a client, ending in ``/v1``."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> FakeServer:
        self._thread.start()
        self._alive = True
        return self

    def stop(self) -> None:
        """Stop serving and close the port: later connections are refused."""
        if self._alive:
            self._alive = False
            self._httpd.shutdown()
            self._httpd.server_close()

    def stop_soon(self) -> None:
        """Stop from inside a request handler (``stop`` would wait for that handler)."""
        threading.Thread(target=self.stop, daemon=True).start()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body leave in two writes; with Nagle's algorithm on, the second
                # waits for the client's delayed ACK, about 40 ms per request.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    n = len(server.requests)
                    server.requests.append(body)
                    server.authorization.append(self.headers.get("Authorization", ""))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if self.path.rstrip("/") != "/v1/chat/completions":
                        self._send(
                            404, json.dumps({"error": {"message": "no such route"}}).encode()
                        )
                        return
                    reply = server.script(body, n)
                    if reply.delay:
                        time.sleep(reply.delay)
                    if reply.drop:
                        self.close_connection = True
                        self.connection.close()
                        return
                    if reply.body is not None:
                        payload = reply.body
                    elif reply.status != 200:
                        payload = json.dumps(
                            {
                                "error": {
                                    "message": reply.error,
                                    "type": "scripted",
                                    "code": reply.status,
                                }
                            }
                        ).encode()
                    else:
                        payload = json.dumps(
                            completion(body.get("model", ""), reply.text, reply.finish_reason)
                        ).encode()
                    self._send(reply.status, payload, reply.headers)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _send(
                self, status: int, payload: bytes, headers: dict[str, str] | None = None
            ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout) before the reply

        return Handler
