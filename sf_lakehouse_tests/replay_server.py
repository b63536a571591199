"""A tiny HTTPS server that answers with recorded responses (`contracts/`), for the client's
contract tests: the emulator's TLS certificates and HTTPS server, but the answers are the
recordings, in the order they were given for each route; every request is kept."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sf_lakehouse.emulator.tls import generate_certificates
from sf_lakehouse.emulator.transport import HTTPSServer, Request, Response, error

CONTRACTS = Path(__file__).parent / "contracts"


@dataclass
class Recorded:
    status: int
    file: str | None = None  # a file of contracts/ ({instance} filled in), or no body
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"


@dataclass
class Route:
    method: str
    path: str
    answers: list[Recorded]
    when: Callable[[Request], bool] = lambda request: True
    served: int = 0


class ReplayServer:
    def __init__(self, routes: list[Route], workdir: Path) -> None:
        self.routes = routes
        self.workdir = workdir
        self.requests: list[Request] = []
        self.unmatched: list[str] = []
        self._lock = threading.Lock()
        self.ca_bundle: Path | None = None
        self.instance = ""

    def answer(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
            for route in self.routes:
                # simple-salesforce asks for `query/?q=`; Salesforce answers either spelling.
                path = request.path.rstrip("/")
                if (route.method, route.path) == (request.method, path) and route.when(request):
                    recorded = route.answers[min(route.served, len(route.answers) - 1)]
                    route.served += 1
                    break
            else:
                self.unmatched.append(f"{request.method} {request.path}")
                return error(404, "NOT_FOUND", "no recording for this request")
        body = b""
        if recorded.file:
            text = (CONTRACTS / recorded.file).read_bytes()
            body = text.replace(b"{instance}", self.instance.encode())
        return Response(recorded.status, body, recorded.content_type, dict(recorded.headers))

    @contextmanager
    def running(self) -> Iterator[ReplayServer]:
        paths = generate_certificates(self.workdir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(paths.certificate, paths.private_key)
        server = HTTPSServer(("127.0.0.1", 0), context, self.answer)
        self.instance = f"127.0.0.1:{server.server_address[1]}"
        self.ca_bundle = paths.ca_bundle.resolve()
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.close_connections()
            server.server_close()

    @property
    def base_url(self) -> str:
        return f"https://{self.instance}"
