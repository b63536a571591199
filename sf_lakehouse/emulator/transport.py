"""HTTP plumbing of the emulator: request/response values and the threaded HTTPS server.

The server knows nothing of Salesforce: it turns each HTTP request into a ``Request``, hands it
to one function and writes the ``Response`` back. TLS handshakes happen in each connection's
own thread, and ``close_connections`` drops kept-alive connections on stop.

Three transport faults: a ``Response`` with ``drop`` closes the connection without answering; one
with ``truncate`` sends its headers (the full ``Content-Length``) and part of its body, then
closes the connection, as a reset in the middle of a body does; one with ``trickle`` sends its
body one byte every ``trickle`` seconds. The ``Date`` header of every
response comes from the server's ``clock`` (RFC 7231, e.g. ``Sun, 01 Mar 2026 08:00:00 GMT``).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "HTTPSServer",
    "Request",
    "Response",
    "error",
    "json_body",
    "json_response",
    "not_found",
]

LOGGER = logging.getLogger("sf_lakehouse.emulator.server")

try:  # a dependency of dagster-dbt
    import orjson
except ImportError:  # pragma: no cover - json does the same, slower
    orjson = None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without an answer
    truncate: bool = False  # send the headers and part of the body, then close
    trickle: float = 0.0  # seconds between the bytes of the body (a trickling server)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    client: str = "127.0.0.1"  # the peer's address

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


def json_body(payload: Any) -> bytes:
    """Compact UTF-8 JSON, as Salesforce sends it (orjson when installed: pages are big)."""
    if orjson is not None:
        try:
            return orjson.dumps(payload)
        except (TypeError, orjson.JSONEncodeError):
            pass  # e.g. an integer beyond 64 bits: the standard library writes it
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json_body(payload), headers=dict(headers or {}))


def error(status: int, code: str, message: str) -> Response:
    """Salesforce's error array: ``[{"message": ..., "errorCode": ...}]``."""
    return json_response(status, [{"message": message, "errorCode": code}])


def not_found() -> Response:
    return error(404, "NOT_FOUND", "The requested resource does not exist")


Handler = Callable[[Request], Response]


class HTTPSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        context: ssl.SSLContext,
        app: Handler,
        clock: Callable[[], datetime] | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.ssl_context = context
        self.app = app
        self.clock = clock
        self.stopping = stopping  # set on stop: a trickling answer hangs up
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        # Handshake later, in the connection's own thread, so one slow client blocks no one.
        wrapped = self.ssl_context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        )
        with self.connections_lock:
            self.connections.add(wrapped)
        return wrapped, address

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Drop kept-alive connections too, so a stopped emulator really stops answering."""
        with self.connections_lock:
            connections = list(self.connections)
            self.connections.clear()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Broken TLS handshakes and dropped connections are the client's business; stay quiet.
        return


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SalesforceEmulator/1.0"
    sys_version = ""
    timeout = 60
    server: HTTPSServer

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines carry session ids and queries: never print them.
        return

    def date_time_string(self, timestamp: float | None = None) -> str:
        clock = self.server.clock
        if timestamp is not None or clock is None:
            return super().date_time_string(timestamp)
        return email.utils.format_datetime(clock(), usegmt=True)

    def _hang_up(self) -> None:
        """Close the connection at once (no TLS goodbye), as a dropped connection does."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            params=parse_qs(url.query, keep_blank_values=True),
            headers=self.headers,
            body=self._read_body(),
            client=str(self.client_address[0]),
        )
        try:
            response = self.server.app(request)
        except Exception:
            # The path only: query strings and bodies may hold queries or credentials.
            LOGGER.exception("emulator failed on %s %s", request.method, request.path)
            response = error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.")
        if response.drop:
            self._hang_up()
            return
        body = response.body
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(max(len(body), 1 if response.truncate else 0)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if response.truncate:
            self.wfile.write(body[: len(body) // 2])
            self._hang_up()
            return
        if self.command != "HEAD" and body and response.trickle:
            self._trickle(body, response.trickle)
        elif self.command != "HEAD" and body:
            self.wfile.write(body)

    def _trickle(self, body: bytes, seconds: float) -> None:
        """One byte every `seconds`, until the body is sent, the client hangs up or the
        server stops."""
        stopping = self.server.stopping
        for index in range(len(body)):
            try:
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
            except OSError:
                return
            if stopping is not None and stopping.wait(seconds):
                self._hang_up()
                return

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch
