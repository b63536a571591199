"""Authentication of the emulator: SOAP partner login, the OAuth token endpoint, sessions.

One integration user and one connected app (``EmulatorCredentials``) are accepted. Sessions
are opaque tokens shaped like Salesforce's (``<org id>!<random>``) and live until expired.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs
from xml.sax.saxutils import escape as xml_escape

from .transport import Request, Response, json_response

__all__ = ["Authenticator", "EmulatorCredentials"]

INVALID_LOGIN_MESSAGE = "Invalid username, password, security token; or user locked out."


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


def _oauth_error(code: str, description: str) -> Response:
    return json_response(400, {"error": code, "error_description": description})


class Authenticator:
    """Issues and checks sessions; counts successful logins."""

    def __init__(self, credentials: EmulatorCredentials, org_id: str, user_id: str) -> None:
        self.credentials = credentials
        self.org_id = org_id
        self.user_id = user_id
        self._lock = threading.Lock()
        self._sessions: set[str] = set()
        self.soap_logins = 0
        self.oauth_logins = 0

    # --- sessions ------------------------------------------------------------------------

    def new_session(self) -> str:
        session_id = f"{self.org_id[:15]}!{secrets.token_urlsafe(72)}"
        with self._lock:
            self._sessions.add(session_id)
        return session_id

    def is_valid(self, authorization: str) -> bool:
        """Whether an ``Authorization: Bearer|OAuth <session>`` header holds a live session."""
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            return scheme.lower() in ("bearer", "oauth") and token.strip() in self._sessions

    def expire(self, authorization: str) -> bool:
        """Invalidate the session of an ``Authorization`` header; whether it was live."""
        token = authorization.partition(" ")[2].strip()
        with self._lock:
            live = token in self._sessions
            self._sessions.discard(token)
        return live

    def expire_all(self) -> int:
        """Invalidate every issued session; return how many there were."""
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
        return count

    def _password_ok(self, username: str | None, password: str | None) -> bool:
        creds = self.credentials
        expected = creds.password + creds.security_token
        return (
            username is not None
            and password is not None
            and hmac.compare_digest(username.encode(), creds.username.encode())
            and hmac.compare_digest(password.encode(), expected.encode())
        )

    # --- SOAP partner login ----------------------------------------------------------------

    @staticmethod
    def _soap_fault(code: str, message: str) -> Response:
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
        return Response(500, body.encode("utf-8"), "text/xml;charset=UTF-8")

    def soap_login(self, request: Request, base_url: str) -> Response:
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
        session_id = self.new_session()
        with self._lock:
            self.soap_logins += 1
        creds, org = self.credentials, self.org_id
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{base_url}/services/Soap/m/{version}/{org[:15]}"
            "</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired>"
            "<sandbox>false</sandbox>"
            f"<serverUrl>{base_url}/services/Soap/u/{version}/{org[:15]}</serverUrl>"
            f"<sessionId>{xml_escape(session_id)}</sessionId>"
            f"<userId>{self.user_id}</userId>"
            "<userInfo>"
            "<currencySymbol>$</currencySymbol>"
            f"<organizationId>{org}</organizationId>"
            "<organizationMultiCurrency>false</organizationMultiCurrency>"
            "<organizationName>sf-lakehouse emulator</organizationName>"
            "<sessionSecondsValid>7200</sessionSecondsValid>"
            f"<userEmail>{xml_escape(creds.username)}</userEmail>"
            "<userFullName>Integration User</userFullName>"
            f"<userId>{self.user_id}</userId>"
            "<userLanguage>en_US</userLanguage>"
            "<userLocale>en_US</userLocale>"
            f"<userName>{xml_escape(creds.username)}</userName>"
            "<userTimeZone>Etc/UTC</userTimeZone>"
            "<userType>Standard</userType>"
            "</userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(200, body.encode("utf-8"), "text/xml;charset=UTF-8")

    # --- OAuth 2.0 token endpoint ----------------------------------------------------------

    def oauth_token(self, request: Request, base_url: str) -> Response:
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
                return _oauth_error("invalid_client", "invalid client credentials")
        grant = form.get("grant_type")
        if grant not in ("password", "client_credentials"):
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        creds = self.credentials
        client_ok = (
            client_id is not None
            and client_secret is not None
            and hmac.compare_digest(client_id.encode(), creds.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), creds.client_secret.encode())
        )
        if not client_ok:
            return _oauth_error("invalid_client", "invalid client credentials")
        if grant == "password" and not self._password_ok(
            form.get("username"), form.get("password")
        ):
            return _oauth_error("invalid_grant", "authentication failure")
        session_id = self.new_session()
        with self._lock:
            self.oauth_logins += 1
        identity = f"{base_url}/id/{self.org_id}/{self.user_id}"
        issued_at = str(int(datetime.now(UTC).timestamp() * 1000))
        signature = base64.b64encode(
            hmac.new(
                creds.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        return json_response(
            200,
            {
                "access_token": session_id,
                "instance_url": base_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
                "signature": signature,
            },
        )
