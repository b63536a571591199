"""The HTTP session under simple-salesforce: a timeout on every request, what the responses say
about the org (server clock, API usage, bytes), and transient failures raised as such.

simple-salesforce takes a `requests.Session` and sends every call through `Session.request`
(login, query, query_more, describe, Bulk 2.0), without a timeout of its own: this session puts
one on each request that has none, so a stalled server can never hang a run or a sensor tick.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from sf_lakehouse.salesforce.deadline import Deadline
from sf_lakehouse.salesforce.errors import SessionExpired
from sf_lakehouse.salesforce.retry import TransientHTTPError, http_verdict

_API_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
LOGIN_PATHS = ("/services/Soap/u/", "/services/oauth2/token")


@dataclass
class Observations:
    """What the responses of one session said, for the run's metadata and the quota guard."""

    requests: int = 0
    logins: int = 0
    bytes: int = 0
    server_time: dt.datetime | None = None  # the latest HTTP Date (naive UTC)
    api_used: int | None = None
    api_limit: int | None = None


def parse_http_date(value: str | None) -> dt.datetime | None:
    """An HTTP `Date` header as naive UTC (None when absent or unreadable)."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def parse_api_usage(value: str | None) -> tuple[int, int] | None:
    """`api-usage=N/M` of a `Sforce-Limit-Info` header as (N, M)."""
    match = _API_USAGE.search(value or "")
    return (int(match[1]), int(match[2])) if match else None


class ObservedSession(requests.Session):
    """A `requests.Session` with a default timeout that records what each response says and
    raises `TransientHTTPError` / `SessionExpired` for responses worth a retry or a new login."""

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__()
        self.timeout_seconds = timeout_seconds
        self.observations = Observations()
        # The overall deadline of the extraction this session serves (None: timeouts only).
        self.deadline: Deadline | None = None
        self._lock = threading.Lock()

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        deadline = self.deadline
        wanted_path = urllib.parse.urlsplit(str(url)).path
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_seconds
        read_body = deadline is not None and not kwargs.get("stream")
        if deadline is not None:
            doing = f"waiting for {wanted_path}"
            kwargs["timeout"] = deadline.wait_at_most(float(kwargs["timeout"]), doing)
            kwargs["stream"] = True  # the body is read below, under the deadline
        try:
            response = super().request(method, url, *args, **kwargs)
        except requests.exceptions.Timeout:
            if deadline is not None:
                deadline.check(f"waiting for {wanted_path}")
            raise
        if read_body:
            assert deadline is not None
            _read_under_deadline(response, deadline, self.timeout_seconds, wanted_path)
        path = urllib.parse.urlsplit(str(response.url or url)).path
        streamed = bool(kwargs.get("stream")) and not read_body
        self._observe(response, path, 0 if streamed else len(response.content or b""))
        if response.status_code >= 400:
            body = b"" if streamed else response.content
            if response.status_code == 401 and path.startswith("/services/data/"):
                raise SessionExpired(path)
            verdict = http_verdict(response.status_code, path, body)
            if verdict is not None:
                raise TransientHTTPError(verdict)
        return response

    def _observe(self, response: requests.Response, path: str, size: int) -> None:
        usage = parse_api_usage(response.headers.get("Sforce-Limit-Info"))
        server_time = parse_http_date(response.headers.get("Date"))
        with self._lock:
            seen = self.observations
            seen.requests += 1
            seen.logins += path.startswith(LOGIN_PATHS) and response.status_code == 200
            seen.bytes += size
            if server_time is not None and (
                seen.server_time is None or server_time > seen.server_time
            ):
                seen.server_time = server_time
            if usage is not None:
                seen.api_used, seen.api_limit = usage


def _read_under_deadline(
    response: requests.Response, deadline: Deadline, timeout: float, path: str
) -> None:
    """Read the body chunk by chunk, each read bounded by what is left of the deadline: a
    server that trickles a byte every 30 s can hold a run no longer than its deadline."""
    raw = response.raw
    chunks: list[bytes] = []
    doing = f"reading the answer of {path} (a slow or trickling server)"
    try:
        while True:
            wait = deadline.wait_at_most(timeout, doing)
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(wait)
            try:
                chunk = raw.read1(1 << 16, decode_content=True)
            except (ReadTimeoutError, TimeoutError, ProtocolError) as error:
                deadline.check(doing)
                raise requests.exceptions.ConnectionError(f"reading {path}: {error}") from None
            if not chunk:
                break
            chunks.append(chunk)
    except BaseException:
        response.close()
        raise
    # requests' own cache of a read body: the callers (simple-salesforce) read `.content`.
    response._content = b"".join(chunks)
    response._content_consumed = True


class LoginHostAdapter(HTTPAdapter):
    """Sends requests for simple-salesforce's fixed login host to `login_url` instead.

    simple-salesforce always authenticates at https://<domain>.salesforce.com; this is how the
    pipeline reaches the emulator, or a login endpoint behind an egress proxy."""

    def __init__(self, source_prefix: str, target_base: str) -> None:
        super().__init__()
        self._source_prefix = source_prefix
        self._target_base = target_base.rstrip("/")

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        assert request.url is not None
        request.url = self._target_base + request.url[len(self._source_prefix) :]
        return super().send(request, **kwargs)


def http_session(
    timeout_seconds: float,
    *,
    ca_bundle: str | None = None,
    login_prefix: str | None = None,
    login_url: str | None = None,
) -> ObservedSession:
    session = ObservedSession(timeout_seconds)
    # REQUESTS_CA_BUNDLE would otherwise override `verify` for every request.
    session.trust_env = False
    if ca_bundle:
        session.verify = ca_bundle
    if login_prefix and login_url:
        session.mount(login_prefix, LoginHostAdapter(login_prefix, login_url))
    return session
