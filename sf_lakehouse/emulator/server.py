"""The Salesforce API emulator: a real HTTPS server on 127.0.0.1 serving a history's org.

It speaks the parts of the Salesforce API the pipeline uses, in Salesforce's shapes, so that the
unmodified simple-salesforce library works against it: SOAP partner login, the OAuth token
endpoint (``auth``), REST ``query``/``queryAll`` with ``nextRecordsUrl`` paging and ``sobjects``
(``rest``), ``limits``, and Bulk API 2.0 query jobs (``bulk``), for every object of the org
(``org``, ``objects``). A local control plane under ``/_emulator/`` moves the clock and expires
sessions. This module holds the emulator's lifecycle, clock and routing.

Clock semantics: a history version is visible when its SystemModstamp <= now; queries see the
latest visible version of each Id (deleted or not according to that version), and describe
lists the standard fields plus those of the visible versions.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .auth import Authenticator, EmulatorCredentials
from .bulk import BulkApi
from .faults import LOGIN_PREFIXES, FaultPlanError, Faults, Plan, error_response, parse_plan
from .history import format_sf_datetime, parse_sf_datetime
from .org import Org
from .rest import RestApi
from .synthetic import salesforce_id
from .tls import generate_certificates
from .transport import HTTPSServer, Request, Response, error, json_response, not_found

__all__ = ["EmulatorCredentials", "SalesforceEmulator"]

DEFAULT_CREDENTIALS = EmulatorCredentials()


class SalesforceEmulator:
    """A Salesforce org holding the records of a history, behind real HTTPS.

    ``history`` is a history file (a path: read in columns, line by line errors), an ``Org``, or
    versions in the history-file format (see ``history.py``), validated like a file
    (``HistoryError`` names the offending record). ``faults`` is a fault plan (see ``faults``).
    """

    def __init__(
        self,
        history: Iterable[dict[str, Any]] | Path | str | Org,
        *,
        workdir: Path,
        port: int = 0,
        now: datetime | None = None,
        credentials: EmulatorCredentials = DEFAULT_CREDENTIALS,
        api_version: str = "59.0",
        daily_api_limit: int = 15000,
        faults: dict[str, Any] | Plan | None = None,
        bulk_processing_seconds: float | None = 0.5,
    ) -> None:
        self.credentials = credentials
        self.api_version = api_version
        self.daily_api_limit = daily_api_limit
        self._workdir = Path(workdir)
        self._requested_port = port
        self._lock = threading.RLock()
        self._clock = self._normalize(now) if now is not None else None

        if isinstance(history, Org):
            self.org = history
        elif isinstance(history, str | Path):
            self.org = Org.from_file(Path(history))
        else:
            self.org = Org(history)
        self.faults = Faults()
        if faults is not None:
            self.set_faults(faults)
        self._stopping = threading.Event()
        self._org_id = salesforce_id("00D", 1)
        self._user_id = salesforce_id("005", 999_999)
        self._auth = Authenticator(credentials, self._org_id, self._user_id)
        self._rest = RestApi(self.org, self.visible_now, self.faults, now=self.now)
        self._bulk = BulkApi(
            self.org,
            self.now,
            self.visible_now,
            self._user_id,
            api_version,
            self.faults,
            bulk_processing_seconds,
        )
        self._api_calls = 0
        self._server: HTTPSServer | None = None
        self._thread: threading.Thread | None = None
        self._ca_bundle: Path | None = None

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> SalesforceEmulator:
        """Generate certificates into the workdir and serve on 127.0.0.1 in a thread."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        paths = generate_certificates(self._workdir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(paths.certificate, paths.private_key)
        self._ca_bundle = paths.ca_bundle.resolve()
        self._stopping.clear()
        self._server = HTTPSServer(
            ("127.0.0.1", self._requested_port),
            context,
            self._handle,
            clock=self.now,
            stopping=self._stopping,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="salesforce-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # stalled requests give up
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> SalesforceEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            return self._requested_port
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_bundle(self) -> Path:
        if self._ca_bundle is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return self._ca_bundle

    # --- clock, sessions, counters -------------------------------------------------------

    @staticmethod
    def _normalize(moment: datetime) -> datetime:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # naive clocks are taken as UTC
        return moment.astimezone(UTC)

    def now(self) -> datetime:
        """The emulator clock (aware UTC); the wall clock until ``set_clock`` is called."""
        with self._lock:
            return self._clock if self._clock is not None else datetime.now(UTC)

    def set_clock(self, now: datetime) -> None:
        with self._lock:
            self._clock = self._normalize(now)

    def visible_now(self) -> datetime:
        """The moment whose versions queries see: ``now``, minus a ``commit_lag`` fault's lag."""
        lag = self.faults.commit_lag()
        if not lag:
            return self.now()
        self.faults.count_lag()
        return self.now() - timedelta(seconds=lag)

    # --- faults --------------------------------------------------------------------------

    def set_faults(self, plan: dict[str, Any] | Plan) -> None:
        """Switch a fault plan on (``FaultPlanError`` if it is not valid); counts restart."""
        self.faults.set(plan if isinstance(plan, Plan) else parse_plan(plan))

    def clear_faults(self) -> dict[str, Any]:
        """Switch faults off; return the plan that was on and how many faults it injected."""
        return self.faults.clear()

    def fault_report(self) -> dict[str, Any]:
        """The plan and the number of faults injected per kind (``GET /_emulator/faults``)."""
        return self.faults.report()

    def expire_sessions(self) -> None:
        """Invalidate every issued session: the next API call gets 401 INVALID_SESSION_ID."""
        self._auth.expire_all()

    @property
    def api_calls(self) -> int:
        """Authenticated REST/Bulk calls served (reported in Sforce-Limit-Info)."""
        with self._lock:
            return self._api_calls

    @property
    def soap_logins(self) -> int:
        """Successful SOAP logins served."""
        return self._auth.soap_logins

    @property
    def oauth_logins(self) -> int:
        """Successful OAuth token grants served."""
        return self._auth.oauth_logins

    def env_vars(self) -> dict[str, str]:
        """Settings that point the pipeline at this emulator (these hold the credentials)."""
        return {
            # The client credentials below need a My Domain; password login is what works here.
            "SF_AUTH_METHOD": "password",
            "SF_LOGIN_URL": self.base_url,
            "SF_DOMAIN": "login",
            "SF_USERNAME": self.credentials.username,
            "SF_PASSWORD": self.credentials.password,
            "SF_SECURITY_TOKEN": self.credentials.security_token,
            "SF_CLIENT_ID": self.credentials.client_id,
            "SF_CLIENT_SECRET": self.credentials.client_secret,
            "SF_CA_BUNDLE": str(self.ca_bundle),
            "SF_API_VERSION": self.api_version,
        }

    def write_env_file(self, path: Path) -> None:
        """Write ``KEY=VALUE`` lines of ``env_vars()``, readable by the owner only (0600)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{key}={value}\n" for key, value in self.env_vars().items())
        # Write aside and rename, so a reader never sees half a file (or a wider mode).
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(partial, 0o600)
        os.replace(partial, path)

    # --- routing -------------------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] == ["_emulator"]:
            if request.client not in ("127.0.0.1", "::1"):
                return error(403, "FORBIDDEN", "The control plane answers 127.0.0.1 only.")
            return self._control(request, parts[1:])
        data_api = parts[:2] == ["services", "data"]
        if not data_api and not request.path.startswith(LOGIN_PREFIXES):
            return self._route(request, parts)
        fault = self.faults.request_fault(request.path, data_api)
        response: Response | None = None
        if fault is not None and fault.kind == "stall":
            if self._stopping.wait(fault.seconds) or fault.then == "close":
                return Response(0, drop=True)
        elif fault is not None and fault.kind not in ("reset", "trickle"):
            if fault.kind == "session_expired":  # really expired: the client logs in again
                self._auth.expire(request.headers.get("Authorization", ""))
            response = error_response(fault)
        if response is None:
            response = self._route(request, parts)
        if fault is not None and fault.kind == "reset":
            response.truncate = True
        if fault is not None and fault.kind == "trickle":
            response.trickle = fault.seconds
        if data_api and not response.content_type.startswith("text/html"):
            response.headers["Sforce-Limit-Info"] = (
                f"api-usage={self.api_calls}/{self.daily_api_limit}"
            )
        return response

    def _route(self, request: Request, parts: list[str]) -> Response:
        if parts[:3] == ["services", "Soap", "u"] and len(parts) == 4:
            if request.method != "POST":
                return error(405, "METHOD_NOT_ALLOWED", "Use POST for the SOAP login.")
            return self._auth.soap_login(request, self.base_url)
        if parts == ["services", "oauth2", "token"]:
            if request.method != "POST":
                return error(405, "METHOD_NOT_ALLOWED", "Use POST for the token endpoint.")
            return self._auth.oauth_token(request, self.base_url)
        if parts == ["services", "data"]:
            return json_response(
                200,
                [
                    {
                        "label": "Emulator",
                        "url": f"/services/data/v{self.api_version}",
                        "version": self.api_version,
                    }
                ],
            )
        if parts[:2] == ["services", "data"] and len(parts) >= 3 and parts[2].startswith("v"):
            return self._data_api(request, parts[2], parts[3:])
        return not_found()

    def _control(self, request: Request, parts: list[str]) -> Response:
        method = request.method
        if parts == ["clock"] and method == "GET":
            return json_response(200, {"now": format_sf_datetime(self.now())})
        if parts == ["clock"] and method == "PUT":
            try:
                payload = json.loads(request.body or b"{}")
                moment = parse_sf_datetime(payload["now"])
            except (ValueError, KeyError, TypeError):
                return error(
                    400, "INVALID_CLOCK", 'Send {"now": "<ISO-8601>"}, e.g. 2026-03-01T08:00:00Z.'
                )
            self.set_clock(moment)
            return json_response(200, {"now": format_sf_datetime(self.now())})
        if parts == ["bulk", "complete"] and method == "POST":
            return json_response(200, {"completed": self._bulk.complete_jobs()})
        if parts == ["expire-sessions"] and method == "POST":
            return json_response(200, {"expired": self._auth.expire_all()})
        if parts == ["stats"] and method == "GET":
            return json_response(
                200,
                {
                    "apiCalls": self.api_calls,
                    "soapLogins": self.soap_logins,
                    "oauthLogins": self.oauth_logins,
                },
            )
        if parts == ["faults"]:
            return self._faults_control(request)
        return not_found()

    def _faults_control(self, request: Request) -> Response:
        if request.method == "GET":
            return json_response(200, self.fault_report())
        if request.method == "DELETE":
            return json_response(200, self.clear_faults())
        if request.method != "PUT":
            return error(405, "METHOD_NOT_ALLOWED", "Use GET, PUT or DELETE for the faults.")
        try:
            self.set_faults(json.loads(request.body or b"null"))
        except ValueError as exc:  # FaultPlanError, or a body that is not JSON
            message = str(exc) if isinstance(exc, FaultPlanError) else f"Not JSON: {exc}"
            return error(400, "INVALID_FAULT_PLAN", message)
        return json_response(200, self.fault_report())

    def _data_api(self, request: Request, version_part: str, rest: list[str]) -> Response:
        if not self._auth.is_valid(request.headers.get("Authorization", "")):
            return error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        with self._lock:
            self._api_calls += 1
        return self._data_route(request, version_part, rest)

    def _data_route(self, request: Request, version_part: str, rest: list[str]) -> Response:
        method = request.method
        head = rest[0] if rest else ""
        if head in ("query", "queryAll") and method == "GET":
            if len(rest) == 1:
                return self._rest.query(request, version_part, head)
            if len(rest) == 2:
                return self._rest.query_more(request, version_part, head, rest[1])
        if head == "sobjects" and method == "GET":
            return self._rest.sobjects(request, version_part, rest[1:])
        if rest == ["limits"] and method == "GET":
            remaining = max(self.daily_api_limit - self.api_calls, 0)
            return json_response(
                200,
                {
                    "DailyApiRequests": {"Max": self.daily_api_limit, "Remaining": remaining},
                    "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": self._bulk.remaining_jobs},
                },
            )
        if rest[:2] == ["jobs", "query"]:
            return self._bulk.route(request, version_part, rest[2:])
        if not rest and method == "GET":
            prefix = f"/services/data/{version_part}"
            return json_response(
                200,
                {
                    "limits": f"{prefix}/limits",
                    "query": f"{prefix}/query",
                    "queryAll": f"{prefix}/queryAll",
                    "sobjects": f"{prefix}/sobjects",
                    "jobs": f"{prefix}/jobs",
                },
            )
        return not_found()
