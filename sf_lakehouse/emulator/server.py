"""The Salesforce API emulator: a real HTTPS server on 127.0.0.1 serving User records.

It speaks the parts of the Salesforce API the pipeline uses, in Salesforce's shapes, so that the
unmodified simple-salesforce library works against it: SOAP partner login, the OAuth token
endpoint, REST ``query``/``queryAll`` with ``nextRecordsUrl`` paging, ``sobjects`` describe,
``limits``, and Bulk API 2.0 query jobs. A local control plane under ``/_emulator/`` moves the
clock and expires sessions.

Clock semantics: a history version is visible when its SystemModstamp <= now; queries see the
latest visible version of each Id, and describe lists the fields of the visible versions.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import ssl
import threading
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape as xml_escape

from . import soql
from .history import format_sf_datetime, parse_sf_datetime
from .synthetic import salesforce_id
from .tls import generate_certificates

__all__ = ["EmulatorCredentials", "SalesforceEmulator"]

LOGGER = logging.getLogger(__name__)
OBJECT_NAME = "User"
# Salesforce closes a user's oldest query cursors beyond a limit; be a little more generous.
MAX_OPEN_CURSORS = 50
MAX_BULK_JOBS = 500
DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
INVALID_LOGIN_MESSAGE = "Invalid username, password, security token; or user locked out."
# Standard User fields whose type Salesforce fixes, whatever the values look like.
KNOWN_TYPES = {
    "Id": "id",
    "Username": "string",
    "Email": "email",
    "IsActive": "boolean",
    "CreatedDate": "datetime",
    "LastModifiedDate": "datetime",
    "SystemModstamp": "datetime",
    "LastLoginDate": "datetime",
}
SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
    "double": "xsd:double",
    "int": "xsd:int",
}
NOT_NILLABLE = {
    "Id",
    "Username",
    "LastName",
    "Email",
    "IsActive",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
}


@dataclass(frozen=True)
class EmulatorCredentials:
    """The one integration user and connected app the emulator accepts."""

    username: str = "integration@sf-lakehouse.example"
    password: str = "emulator-password"
    security_token: str = "EMULATORTOKEN"
    client_id: str = "sf-lakehouse-emulator-client"
    client_secret: str = "emulator-client-secret"

    def __repr__(self) -> str:
        # Secrets stay out of logs and tracebacks.
        return (
            f"EmulatorCredentials(username={self.username!r}, password='***', "
            f"security_token='***', client_id={self.client_id!r}, client_secret='***')"
        )


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    params: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


@dataclass
class _Cursor:
    records: list[dict[str, Any]]
    batch_size: int


@dataclass
class _BulkJob:
    info: dict[str, Any]
    fields: list[str]
    records: list[dict[str, Any]]
    delimiter: str
    line_ending: str


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return _Response(status, body, headers=dict(headers or {}))


def _error(status: int, code: str, message: str) -> _Response:
    return _json(status, [{"message": message, "errorCode": code}])


def _not_found() -> _Response:
    return _error(404, "NOT_FOUND", "The requested resource does not exist")


def _label(name: str) -> str:
    """``Audit_Phase__c`` -> ``Audit Phase``; ``SystemModstamp`` -> ``System Modstamp``."""
    if name == "Id":
        return "User ID"
    base = name.removesuffix("__c").replace("_", " ")
    words: list[str] = []
    for i, ch in enumerate(base):
        if ch.isupper() and i and base[i - 1].islower():
            words.append(" ")
        words.append(ch)
    return "".join(words).strip()


def _looks_like_datetime(value: str) -> bool:
    if "T" not in value or len(value) < 19:
        return False
    try:
        parse_sf_datetime(value)
    except ValueError:
        return False
    return True


def _looks_like_date(value: str) -> bool:
    if len(value) != 10:
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _infer_type(name: str, values: list[Any]) -> str:
    """Salesforce describe type for a field, from its name and the values seen in the history."""
    if name in KNOWN_TYPES:
        return KNOWN_TYPES[name]
    if not values:
        return "string"
    if all(isinstance(v, bool) for v in values):
        return "boolean"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "double"
    if all(isinstance(v, str) for v in values):
        if all(_looks_like_datetime(v) for v in values):
            return "datetime"
        if all(_looks_like_date(v) for v in values):
            return "date"
        if name.endswith("Id") and all(
            len(v) in (15, 18) and v.isascii() and v.isalnum() for v in values
        ):
            return "reference"
    return "string"


def _describe_field(fdef: soql.FieldDef) -> dict[str, Any]:
    ftype, name = fdef.type, fdef.name
    length = {"id": 18, "reference": 18, "email": 128}.get(ftype, 255 if ftype == "string" else 0)
    if name == "Username":
        length = 80
    info: dict[str, Any] = {
        "name": name,
        "label": _label(name),
        "type": ftype,
        "soapType": SOAP_TYPES.get(ftype, "xsd:string"),
        "custom": name.endswith("__c"),
        "nillable": name not in NOT_NILLABLE and ftype != "boolean",
        "length": length,
        "byteLength": length * 3,
        "precision": 18 if ftype == "double" else 0,
        "scale": 0,
        "digits": 9 if ftype == "int" else 0,
        "filterable": True,
        "sortable": True,
        "groupable": ftype not in ("datetime", "double"),
        "createable": name not in ("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp"),
        "updateable": name not in ("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp"),
        "calculated": False,
        "unique": name == "Username",
        "externalId": False,
        "idLookup": name in ("Id", "Username"),
        "defaultValue": None,
        "picklistValues": [],
        "referenceTo": [OBJECT_NAME] if ftype == "reference" else [],
        "relationshipName": name[:-2] if ftype == "reference" else None,
    }
    return info


def _csv_cell(value: Any) -> str:
    """RFC 4180 quoting like Bulk API 2.0 results: every value quoted, null left empty."""
    if value is None:
        return ""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return '"' + text.replace('"', '""') + '"'


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], context: ssl.SSLContext, emulator: SalesforceEmulator
    ) -> None:
        self.ssl_context = context
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SalesforceEmulator/1.0"
    sys_version = ""
    timeout = 60
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines carry session ids and queries: never print them.
        return

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
        request = _Request(
            method=self.command,
            path=url.path,
            params=parse_qs(url.query, keep_blank_values=True),
            headers=self.headers,
            body=self._read_body(),
        )
        try:
            response = self.server.emulator._handle(request)
        except Exception:
            # The path only: query strings and bodies may hold queries or credentials.
            LOGGER.exception("emulator failed on %s %s", request.method, request.path)
            response = _error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred.")
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class SalesforceEmulator:
    """A Salesforce org holding the User records of a history file, behind real HTTPS."""

    def __init__(
        self,
        history: list[dict[str, Any]],
        *,
        workdir: Path,
        port: int = 0,
        now: datetime | None = None,
        credentials: EmulatorCredentials = EmulatorCredentials(),
        api_version: str = "59.0",
        daily_api_limit: int = 15000,
    ) -> None:
        self.credentials = credentials
        self.api_version = api_version
        self.daily_api_limit = daily_api_limit
        self._workdir = Path(workdir)
        self._requested_port = port
        self._lock = threading.RLock()
        self._clock = self._normalize(now) if now is not None else None

        # Versions sorted by SystemModstamp, so "visible at t" is a prefix of this list.
        pairs = sorted(
            ((parse_sf_datetime(r["SystemModstamp"]), r) for r in history),
            key=lambda p: (p[0], p[1]["Id"]),
        )
        self._versions = [r for _, r in pairs]
        self._stamps = [s for s, _ in pairs]
        self._by_id: dict[str, tuple[list[datetime], list[dict[str, Any]]]] = {}
        for stamp, record in pairs:
            stamps, records = self._by_id.setdefault(record["Id"], ([], []))
            stamps.append(stamp)
            records.append(record)
        self._schema_cache: dict[int, soql.ObjectSchema] = {}

        self._org_id = salesforce_id("00D", 1)
        self._user_id = salesforce_id("005", 999_999)
        self._sessions: set[str] = set()
        self._cursors: dict[str, _Cursor] = {}
        self._jobs: dict[str, _BulkJob] = {}
        self._api_calls = 0
        self._soap_logins = 0
        self._oauth_logins = 0
        self._server: _HTTPServer | None = None
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
        self._server = _HTTPServer(("127.0.0.1", self._requested_port), context, self)
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

    def expire_sessions(self) -> None:
        """Invalidate every issued session: the next API call gets 401 INVALID_SESSION_ID."""
        with self._lock:
            self._sessions.clear()

    @property
    def api_calls(self) -> int:
        """Authenticated REST/Bulk calls served (reported in Sforce-Limit-Info)."""
        with self._lock:
            return self._api_calls

    @property
    def soap_logins(self) -> int:
        """Successful SOAP logins served."""
        with self._lock:
            return self._soap_logins

    @property
    def oauth_logins(self) -> int:
        """Successful OAuth token grants served."""
        with self._lock:
            return self._oauth_logins

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

    # --- the org at the current clock ----------------------------------------------------

    def _visible_count(self, now: datetime) -> int:
        return bisect.bisect_right(self._stamps, now)

    def _schema(self, now: datetime) -> soql.ObjectSchema:
        count = self._visible_count(now)
        with self._lock:
            cached = self._schema_cache.get(count)
        if cached is not None:
            return cached
        # Fields in order of first appearance; Id and SystemModstamp exist even with no rows.
        values: dict[str, list[Any]] = {"Id": []}
        for record in self._versions[:count]:
            for name, value in record.items():
                bucket = values.setdefault(name, [])
                if value is not None:
                    bucket.append(value)
        values.setdefault("SystemModstamp", [])
        schema = soql.ObjectSchema(
            OBJECT_NAME,
            tuple(soql.FieldDef(name, _infer_type(name, vals)) for name, vals in values.items()),
        )
        with self._lock:
            self._schema_cache[count] = schema
        return schema

    def _visible_records(self, now: datetime) -> list[dict[str, Any]]:
        visible = []
        for stamps, records in self._by_id.values():
            index = bisect.bisect_right(stamps, now)
            if index:
                visible.append(records[index - 1])
        return visible

    def _run_query(self, text: str) -> soql.QueryResult:
        query = soql.parse(text)
        now = self.now()
        return soql.execute(query, self._schema(now), self._visible_records(now))

    # --- routing -------------------------------------------------------------------------

    def _handle(self, request: _Request) -> _Response:
        parts = [p for p in request.path.split("/") if p]
        if parts[:1] == ["_emulator"]:
            return self._control(request, parts[1:])
        if parts[:3] == ["services", "Soap", "u"] and len(parts) == 4:
            if request.method != "POST":
                return _error(405, "METHOD_NOT_ALLOWED", "Use POST for the SOAP login.")
            return self._soap_login(request)
        if parts == ["services", "oauth2", "token"]:
            if request.method != "POST":
                return _error(405, "METHOD_NOT_ALLOWED", "Use POST for the token endpoint.")
            return self._oauth_token(request)
        if parts == ["services", "data"]:
            return _json(
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
        return _not_found()

    def _control(self, request: _Request, parts: list[str]) -> _Response:
        if parts == ["clock"] and request.method == "GET":
            return _json(200, {"now": format_sf_datetime(self.now())})
        if parts == ["clock"] and request.method == "PUT":
            try:
                payload = json.loads(request.body or b"{}")
                moment = parse_sf_datetime(payload["now"])
            except (ValueError, KeyError, TypeError):
                return _error(
                    400, "INVALID_CLOCK", 'Send {"now": "<ISO-8601>"}, e.g. 2026-03-01T08:00:00Z.'
                )
            self.set_clock(moment)
            return _json(200, {"now": format_sf_datetime(self.now())})
        if parts == ["expire-sessions"] and request.method == "POST":
            with self._lock:
                expired = len(self._sessions)
            self.expire_sessions()
            return _json(200, {"expired": expired})
        if parts == ["stats"] and request.method == "GET":
            return _json(
                200,
                {
                    "apiCalls": self.api_calls,
                    "soapLogins": self.soap_logins,
                    "oauthLogins": self.oauth_logins,
                },
            )
        return _not_found()

    # --- authentication ------------------------------------------------------------------

    def _new_session(self) -> str:
        session_id = f"{self._org_id[:15]}!{secrets.token_urlsafe(72)}"
        with self._lock:
            self._sessions.add(session_id)
        return session_id

    def _password_ok(self, username: str | None, password: str | None) -> bool:
        creds = self.credentials
        expected = creds.password + creds.security_token
        return (
            username is not None
            and password is not None
            and hmac.compare_digest(username.encode(), creds.username.encode())
            and hmac.compare_digest(password.encode(), expected.encode())
        )

    def _soap_fault(self, code: str, message: str) -> _Response:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:sf="urn:fault.partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><soapenv:Fault>"
            f"<faultcode>sf:{code}</faultcode>"
            f"<faultstring>{code}: {xml_escape(message)}</faultstring>"
            '<detail><sf:LoginFault xsi:type="sf:LoginFault">'
            f"<sf:exceptionCode>{code}</sf:exceptionCode>"
            f"<sf:exceptionMessage>{xml_escape(message)}</sf:exceptionMessage>"
            "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        )
        return _Response(500, body.encode("utf-8"), "text/xml;charset=UTF-8")

    def _soap_login(self, request: _Request) -> _Response:
        try:
            root = ET.fromstring(request.body)
        except ET.ParseError:
            return self._soap_fault("INVALID_REQUEST", "The request body is not valid XML.")
        found: dict[str, str] = {}
        for element in root.iter():
            local = element.tag.rsplit("}", 1)[-1]
            if local in ("username", "password") and local not in found:
                found[local] = element.text or ""
        if not self._password_ok(found.get("username"), found.get("password")):
            return self._soap_fault("INVALID_LOGIN", INVALID_LOGIN_MESSAGE)
        version = request.path.rstrip("/").rsplit("/", 1)[-1]
        session_id = self._new_session()
        with self._lock:
            self._soap_logins += 1
        base, creds = self.base_url, self.credentials
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{base}/services/Soap/m/{version}/{self._org_id[:15]}"
            "</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired>"
            "<sandbox>false</sandbox>"
            f"<serverUrl>{base}/services/Soap/u/{version}/{self._org_id[:15]}</serverUrl>"
            f"<sessionId>{xml_escape(session_id)}</sessionId>"
            f"<userId>{self._user_id}</userId>"
            "<userInfo>"
            "<currencySymbol>$</currencySymbol>"
            f"<organizationId>{self._org_id}</organizationId>"
            "<organizationMultiCurrency>false</organizationMultiCurrency>"
            "<organizationName>sf-lakehouse emulator</organizationName>"
            "<sessionSecondsValid>7200</sessionSecondsValid>"
            f"<userEmail>{xml_escape(creds.username)}</userEmail>"
            "<userFullName>Integration User</userFullName>"
            f"<userId>{self._user_id}</userId>"
            "<userLanguage>en_US</userLanguage>"
            "<userLocale>en_US</userLocale>"
            f"<userName>{xml_escape(creds.username)}</userName>"
            "<userTimeZone>Etc/UTC</userTimeZone>"
            "<userType>Standard</userType>"
            "</userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return _Response(200, body.encode("utf-8"), "text/xml;charset=UTF-8")

    def _oauth_token(self, request: _Request) -> _Response:
        form = {
            k: v[0]
            for k, v in parse_qs(
                request.body.decode("utf-8", "replace"), keep_blank_values=True
            ).items()
        }
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
                client_id, _, client_secret = decoded.partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return _json(
                    400,
                    {"error": "invalid_client", "error_description": "invalid client credentials"},
                )
        grant = form.get("grant_type")
        if grant not in ("password", "client_credentials"):
            return _json(
                400,
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
            )
        creds = self.credentials
        client_ok = (
            client_id is not None
            and client_secret is not None
            and hmac.compare_digest(client_id.encode(), creds.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), creds.client_secret.encode())
        )
        if not client_ok:
            return _json(
                400, {"error": "invalid_client", "error_description": "invalid client credentials"}
            )
        if grant == "password" and not self._password_ok(
            form.get("username"), form.get("password")
        ):
            return _json(
                400, {"error": "invalid_grant", "error_description": "authentication failure"}
            )
        session_id = self._new_session()
        with self._lock:
            self._oauth_logins += 1
        identity = f"{self.base_url}/id/{self._org_id}/{self._user_id}"
        issued_at = str(int(datetime.now(UTC).timestamp() * 1000))
        signature = base64.b64encode(
            hmac.new(
                creds.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        return _json(
            200,
            {
                "access_token": session_id,
                "instance_url": self.base_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
                "signature": signature,
            },
        )

    # --- REST and Bulk API ---------------------------------------------------------------

    def _data_api(self, request: _Request, version_part: str, rest: list[str]) -> _Response:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        with self._lock:
            valid = scheme.lower() in ("bearer", "oauth") and token.strip() in self._sessions
            if valid:
                self._api_calls += 1
                used = self._api_calls
        if not valid:
            return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        response = self._data_route(request, version_part, rest)
        response.headers["Sforce-Limit-Info"] = f"api-usage={used}/{self.daily_api_limit}"
        return response

    def _data_route(self, request: _Request, version_part: str, rest: list[str]) -> _Response:
        method = request.method
        head = rest[0] if rest else ""
        if head in ("query", "queryAll") and method == "GET":
            if len(rest) == 1:
                return self._rest_query(request, version_part)
            if len(rest) == 2:
                return self._rest_query_more(version_part, rest[1])
        if head == "sobjects" and method == "GET":
            return self._sobjects(version_part, rest[1:])
        if rest == ["limits"] and method == "GET":
            remaining = max(self.daily_api_limit - self.api_calls, 0)
            return _json(
                200,
                {
                    "DailyApiRequests": {"Max": self.daily_api_limit, "Remaining": remaining},
                    "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - len(self._jobs)},
                },
            )
        if rest[:2] == ["jobs", "query"]:
            return self._bulk(request, version_part, rest[2:])
        if not rest and method == "GET":
            prefix = f"/services/data/{version_part}"
            return _json(
                200,
                {
                    "limits": f"{prefix}/limits",
                    "query": f"{prefix}/query",
                    "queryAll": f"{prefix}/queryAll",
                    "sobjects": f"{prefix}/sobjects",
                    "jobs": f"{prefix}/jobs",
                },
            )
        return _not_found()

    @staticmethod
    def _batch_size(request: _Request) -> int:
        options = request.headers.get("Sforce-Query-Options", "")
        for option in options.split(","):
            key, _, value = option.strip().partition("=")
            if key.strip().lower() == "batchsize":
                try:
                    wanted = int(value.strip())
                except ValueError:
                    break
                # Salesforce treats the batch size as a hint within 200..2000.
                return min(max(wanted, MIN_BATCH_SIZE), DEFAULT_BATCH_SIZE)
        return DEFAULT_BATCH_SIZE

    def _record_json(self, version_part: str, row: dict[str, Any], record_id: str | None) -> dict:
        attributes = {"type": OBJECT_NAME}
        if record_id:
            attributes["url"] = f"/services/data/{version_part}/sobjects/{OBJECT_NAME}/{record_id}"
        return {"attributes": attributes, **row}

    def _rest_query(self, request: _Request, version_part: str) -> _Response:
        text = request.param("q")
        if not text:
            return _error(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            query = soql.parse(text)
            now = self.now()
            result = soql.execute(query, self._schema(now), self._visible_records(now))
        except soql.SoqlError as exc:
            return _error(400, exc.error_code, exc.message)
        if result.is_count:
            return _json(200, {"totalSize": result.total_size, "done": True, "records": []})
        records = [
            self._record_json(version_part, row, record_id)
            for row, record_id in zip(result.records, result.ids, strict=True)
        ]
        cursor = _Cursor(records, self._batch_size(request))
        locator = None
        if len(records) > cursor.batch_size:
            locator = "01g" + "".join(
                secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(15)
            )
            with self._lock:
                self._cursors[locator] = cursor
                while len(self._cursors) > MAX_OPEN_CURSORS:
                    del self._cursors[next(iter(self._cursors))]  # the oldest goes first
        return self._query_page(version_part, locator, cursor, 0)

    def _query_page(
        self, version_part: str, locator: str | None, cursor: _Cursor, offset: int
    ) -> _Response:
        end = offset + cursor.batch_size
        payload: dict[str, Any] = {
            "totalSize": len(cursor.records),
            "done": locator is None or end >= len(cursor.records),
            "records": cursor.records[offset:end],
        }
        if not payload["done"]:
            payload["nextRecordsUrl"] = f"/services/data/{version_part}/query/{locator}-{end}"
        return _json(200, payload)

    def _rest_query_more(self, version_part: str, identifier: str) -> _Response:
        locator, _, offset_text = identifier.rpartition("-")
        with self._lock:
            cursor = self._cursors.get(locator)
        if cursor is None or not offset_text.isdigit() or int(offset_text) > len(cursor.records):
            return _error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._query_page(version_part, locator, cursor, int(offset_text))

    def _sobjects(self, version_part: str, rest: list[str]) -> _Response:
        now = self.now()
        if not rest:
            return _json(
                200,
                {
                    "encoding": "UTF-8",
                    "maxBatchSize": 200,
                    "sobjects": [self._object_summary(version_part)],
                },
            )
        if rest[0].casefold() != OBJECT_NAME.casefold():
            return _not_found()
        if len(rest) == 1:
            return _json(
                200, {"objectDescribe": self._object_summary(version_part), "recentItems": []}
            )
        if rest[1:] == ["describe"]:
            schema = self._schema(now)
            return _json(
                200,
                {
                    **self._object_summary(version_part),
                    "fields": [_describe_field(f) for f in schema.fields],
                },
            )
        if len(rest) == 2:
            wanted = rest[1][:15]
            for record in self._visible_records(now):
                if record["Id"][:15] == wanted:
                    schema = self._schema(now)
                    row = {
                        f.name: (
                            format_sf_datetime(parse_sf_datetime(record[f.name]))
                            if f.type == "datetime" and record.get(f.name)
                            else record.get(f.name)
                        )
                        for f in schema.fields
                    }
                    return _json(200, self._record_json(version_part, row, record["Id"]))
        return _not_found()

    def _object_summary(self, version_part: str) -> dict[str, Any]:
        prefix = f"/services/data/{version_part}/sobjects/{OBJECT_NAME}"
        return {
            "name": OBJECT_NAME,
            "label": "User",
            "labelPlural": "Users",
            "keyPrefix": "005",
            "custom": False,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "createable": False,
            "updateable": False,
            "deletable": False,
            "urls": {
                "sobject": prefix,
                "describe": f"{prefix}/describe",
                "rowTemplate": f"{prefix}/{{ID}}",
            },
        }

    # --- Bulk API 2.0 query jobs ---------------------------------------------------------

    def _bulk(self, request: _Request, version_part: str, rest: list[str]) -> _Response:
        method = request.method
        if not rest and method == "POST":
            return self._bulk_create(request, version_part)
        if not rest and method == "GET":
            with self._lock:
                jobs = [dict(job.info) for job in self._jobs.values()]
            return _json(200, {"done": True, "records": jobs, "nextRecordsUrl": None})
        if not rest:
            return _not_found()
        with self._lock:
            job = self._jobs.get(rest[0])
        if job is None:
            return _not_found()
        if len(rest) == 1 and method == "GET":
            return _json(200, job.info)
        if len(rest) == 1 and method == "DELETE":
            with self._lock:
                self._jobs.pop(rest[0], None)
            return _Response(204)
        if len(rest) == 1 and method == "PATCH":
            # Query jobs finish at creation, so an abort request finds nothing to abort.
            return _json(200, job.info)
        if rest[1:] == ["results"] and method == "GET":
            return self._bulk_results(request, job)
        return _not_found()

    def _bulk_create(self, request: _Request, version_part: str) -> _Response:
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            return _error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON.")
        if not isinstance(payload, dict):
            return _error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object.")
        operation = payload.get("operation")
        if operation not in ("query", "queryAll"):
            return _error(400, "INVALIDJOB", f"Invalid operation for a query job: {operation}")
        delimiters = {
            "COMMA": ",",
            "TAB": "\t",
            "PIPE": "|",
            "SEMICOLON": ";",
            "CARET": "^",
            "BACKQUOTE": "`",
        }
        delimiter_name = payload.get("columnDelimiter") or "COMMA"
        line_ending_name = payload.get("lineEnding") or "LF"
        if delimiter_name not in delimiters or line_ending_name not in ("LF", "CRLF"):
            return _error(400, "INVALIDJOB", "Unsupported columnDelimiter or lineEnding.")
        try:
            result = self._run_query(str(payload.get("query") or ""))
        except soql.SoqlError as exc:
            return _error(400, exc.error_code, exc.message)
        if result.is_count:
            return _error(400, "INVALIDJOB", "Aggregate queries are not supported in Bulk API 2.0.")
        job_id = "750" + "".join(
            secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(15)
        )
        created = format_sf_datetime(self.now())
        info = {
            "id": job_id,
            "operation": operation,
            "object": OBJECT_NAME,
            "createdById": self._user_id,
            "createdDate": created,
            "systemModstamp": created,
            "state": "UploadComplete",
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(version_part.lstrip("v") or self.api_version),
            "lineEnding": line_ending_name,
            "columnDelimiter": delimiter_name,
        }
        response = _json(200, dict(info))
        # The snapshot is taken now; the job is complete by the time anyone asks.
        info.update(
            state="JobComplete",
            jobType="V2Query",
            numberRecordsProcessed=len(result.records),
            retries=0,
            totalProcessingTime=1,
        )
        with self._lock:
            while len(self._jobs) >= MAX_BULK_JOBS:
                del self._jobs[next(iter(self._jobs))]
            self._jobs[job_id] = _BulkJob(
                info=info,
                fields=[f.name for f in result.fields],
                records=result.records,
                delimiter=delimiters[delimiter_name],
                line_ending="\r\n" if line_ending_name == "CRLF" else "\n",
            )
        return response

    def _bulk_results(self, request: _Request, job: _BulkJob) -> _Response:
        offset = 0
        locator = request.param("locator")
        if locator:
            try:
                offset = int(base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)))
            except (ValueError, binascii.Error):
                offset = -1
            if not 0 <= offset <= len(job.records):
                return _error(400, "INVALID_QUERY_LOCATOR", f"Invalid locator: {locator}")
        max_records = request.param("maxRecords")
        try:
            page_size = int(max_records) if max_records else len(job.records) or 1
        except ValueError:
            return _error(400, "INVALIDJOB", "maxRecords must be a positive integer.")
        if page_size <= 0:
            return _error(400, "INVALIDJOB", "maxRecords must be a positive integer.")
        end = offset + page_size
        page = job.records[offset:end]
        lines = [job.delimiter.join(_csv_cell(name) for name in job.fields)]
        lines.extend(
            job.delimiter.join(_csv_cell(row[name]) for name in job.fields) for row in page
        )
        body = "".join(line + job.line_ending for line in lines).encode("utf-8")
        next_locator = (
            base64.urlsafe_b64encode(str(end).encode()).decode().rstrip("=")
            if end < len(job.records)
            else "null"
        )
        return _Response(
            200,
            body,
            "text/csv;charset=UTF-8",
            {"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(len(page))},
        )
