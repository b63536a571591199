"""Every HTTP call of the client times out: login, describe, query, query_more, COUNT and Bulk
2.0, against servers on 127.0.0.1 that stall (a bare socket that never answers, and an HTTPS
server that answers some requests and stalls on others); transient answers are retried over the
wire (503 HTML, a connection reset in the middle of a body)."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sf_lakehouse.emulator.tls import generate_certificates
from sf_lakehouse.salesforce.client import ClientPolicy, ConnectionSettings, connect
from sf_lakehouse.salesforce.errors import SalesforceUnavailable
from sf_lakehouse.salesforce.types import SalesforceConfigError

TIMEOUT = 0.4
POLICY = ClientPolicy(
    timeout_seconds=TIMEOUT, max_retries=1, retry_base_seconds=0.01, retry_max_seconds=0.02
)
# Two attempts of TIMEOUT each, the backoff, and generous slack for a loaded machine.
BOUND = 2 * TIMEOUT + 3.0


class StallingSocket:
    """Accepts TCP connections and never says a word (not even a TLS handshake)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


Route = Callable[[str, str], Any]


class ScriptedHTTPS:
    """HTTPS on 127.0.0.1: `route(method, path)` returns (status, headers, body), "stall"
    (no answer until the server stops) or "reset" (half a body, then the connection closes)."""

    def __init__(self, workdir: Path, route: Route) -> None:
        paths = generate_certificates(workdir)
        self.ca_bundle = str(paths.ca_bundle)
        self.stop_event = threading.Event()
        self.requests: list[tuple[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                outer.requests.append((self.command, self.path))
                answer = route(self.command, self.path)
                if answer == "stall":
                    outer.stop_event.wait(30)
                    self.close_connection = True
                    return
                if answer == "reset":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b'{"totalSize": 1, "done": tr')
                    self.wfile.flush()
                    self.close_connection = True
                    return
                status, headers, body = answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = handle_one

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(paths.certificate, paths.private_key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def staller() -> Iterator[StallingSocket]:
    server = StallingSocket()
    yield server
    server.close()


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[Callable[[Route], ScriptedHTTPS]]:
    servers: list[ScriptedHTTPS] = []

    def start(route: Route) -> ScriptedHTTPS:
        server = ScriptedHTTPS(tmp_path / f"tls{len(servers)}", route)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def session_settings(port: int, ca_bundle: str | None = None) -> ConnectionSettings:
    """An existing session: connect() makes no call, so the first call is the one tested."""
    return ConnectionSettings(
        session_id="00D000000000001!session",
        instance_url=f"https://127.0.0.1:{port}",
        ca_bundle=ca_bundle,
        policy=POLICY,
    )


def timed(call: Callable[[], Any]) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises((SalesforceUnavailable, SalesforceConfigError)) as failed:
        call()
    return failed.value, time.monotonic() - started


def test_a_stalled_login_times_out(staller: StallingSocket) -> None:
    settings = ConnectionSettings(
        login_url=f"https://127.0.0.1:{staller.port}",
        username="u@example.com",
        password="pw",
        security_token="tok",
        policy=POLICY,
    )
    error, took = timed(lambda: connect(settings))
    assert took < BOUND
    assert "cannot reach Salesforce" in str(error) and "timed out" in str(error)
    assert "pw" not in str(error).split("at https")[0]


@pytest.mark.parametrize(
    ("what", "call"),
    [
        ("describe of User", lambda c: c.describe("User")),
        ("REST query", lambda c: list(c.query_pages("SELECT Id FROM User"))),
        ("COUNT() query", lambda c: c.count("SELECT COUNT() FROM User")),
        (
            "creating a Bulk API query job",
            lambda c: list(
                c.bulk_query("User").pages(
                    "SELECT Id FROM User", include_deleted=False, page_size=100
                )
            ),
        ),
    ],
)
def test_every_data_call_times_out(staller: StallingSocket, what: str, call) -> None:
    client = connect(session_settings(staller.port))
    error, took = timed(lambda: call(client))
    assert took < BOUND
    assert isinstance(error, SalesforceUnavailable)
    assert str(error).startswith(what) and "timed out" in str(error)
    assert client.counters.retries == POLICY.max_retries


def json_answer(payload: Any, status: int = 200) -> tuple[int, dict[str, str], bytes]:
    headers = {
        "Content-Type": "application/json",
        "Sforce-Limit-Info": "api-usage=5/15000",
    }
    return status, headers, json.dumps(payload).encode()


FIRST_PAGE = {
    "totalSize": 3,
    "done": False,
    "nextRecordsUrl": "/services/data/v59.0/query/01gSTALL-1",
    "records": [{"attributes": {"type": "User"}, "Id": "005000000000001AAA"}],
}


def test_a_stalled_next_page_times_out(scripted) -> None:
    def route(method: str, path: str) -> Any:
        if "/query/?q=" in path:
            return json_answer(FIRST_PAGE)
        return "stall"

    server = scripted(route)
    client = connect(session_settings(server.port, server.ca_bundle))
    pages = client.query_pages("SELECT Id FROM User", 200)
    assert [r["Id"] for r in next(pages)] == ["005000000000001AAA"]
    error, took = timed(lambda: next(pages))
    assert took < BOUND
    assert str(error).startswith("REST query page 2 failed after 2 attempts: timed out")
    stalled = [p for _, p in server.requests if p.endswith("01gSTALL-1")]
    assert len(stalled) == 2  # the same nextRecordsUrl, asked again


def test_stalled_bulk_results_time_out(scripted) -> None:
    job = {"id": "750STALL", "state": "JobComplete", "operation": "query", "object": "User"}

    def route(method: str, path: str) -> Any:
        if method == "POST" and path.endswith("/jobs/query"):
            return json_answer({**job, "state": "UploadComplete"})
        if method == "GET" and path.endswith("/jobs/query/750STALL"):
            return json_answer(job)
        return "stall"

    server = scripted(route)
    client = connect(session_settings(server.port, server.ca_bundle))
    pages = client.bulk_query("User").pages(
        "SELECT Id FROM User", include_deleted=False, page_size=100
    )
    error, took = timed(lambda: list(pages))
    assert took < BOUND
    assert str(error).startswith("Bulk job 750STALL result page 1 failed after 2 attempts")


def test_an_html_503_and_a_reset_body_are_retried_over_the_wire(scripted) -> None:
    answers = iter(
        [
            (503, {"Content-Type": "text/html"}, b"<html><body>Service Unavailable</body></html>"),
            "reset",
            json_answer({"totalSize": 7, "done": True, "records": []}),
        ]
    )
    server = scripted(lambda method, path: next(answers))
    client = connect(
        session_settings(server.port, server.ca_bundle).replace(
            policy=ClientPolicy(timeout_seconds=5, max_retries=3, retry_base_seconds=0.01)
        )
    )
    assert client.count("SELECT COUNT() FROM User") == 7
    assert client.counters.retries == 2
    assert "non-JSON" not in (client.counters.last_retry_reason or "")
    assert client.api_usage == {"used": 5, "limit": 15000}
