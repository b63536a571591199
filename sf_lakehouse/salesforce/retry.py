"""Which Salesforce failures are worth another try, and how long to wait before it.

Pure functions and one loop: `http_verdict` classifies a response (the transport raises on the
transient ones), `classify` an exception, `backoff_seconds` is exponential with jitter, and
`call_with_retries` runs one API call under a `ClientPolicy`. Retried: connection resets and
refusals, timeouts, 5xx (JSON or HTML bodies), 429 and REQUEST_LIMIT_EXCEEDED (longer backoff).
Never retried: bad SOQL (MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE, ...), bad credentials,
TLS verification failures. An expired session logs in again; an invalid query locator restarts.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, TypeVar

import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)
from urllib3.exceptions import HTTPError as Urllib3Error

from sf_lakehouse.salesforce.errors import (
    QueryLocatorInvalid,
    SalesforceApiError,
    SalesforceConfigError,
    SalesforceQueryError,
    SalesforceUnavailable,
    SessionExpired,
)

T = TypeVar("T")
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
RATE_LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED"})
TRANSIENT_CODES = frozenset({"SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW", "QUERY_TIMEOUT"})
LOCATOR_CODES = frozenset({"INVALID_QUERY_LOCATOR"})
MAX_RELOGINS_PER_CALL = 2


@dataclass(frozen=True)
class ClientPolicy:
    """Timeouts, retries and guards of one client (`salesforce.*` in the pipeline config)."""

    timeout_seconds: float = 120.0
    max_retries: int = 5
    retry_base_seconds: float = 1.0
    retry_max_seconds: float = 60.0
    rate_limit_retry_seconds: float = 30.0
    max_api_usage_share: float = 0.9
    bulk_poll_seconds: float = 2.0
    bulk_max_wait_seconds: float = 1800.0

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0 or self.max_retries < 0:
            raise SalesforceConfigError("timeout_seconds must be > 0 and max_retries >= 0")
        if not 0 < self.max_api_usage_share <= 1:
            raise SalesforceConfigError("max_api_usage_share must be in (0, 1]")

    @classmethod
    def from_config(cls, section: Any, **overrides: Any) -> ClientPolicy:
        """From any object with these attribute names (the validated `salesforce` section)."""
        values = {f.name: getattr(section, f.name) for f in fields(cls) if hasattr(section, f.name)}
        return cls(**{**values, **overrides})


class Kind(Enum):
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    RELOGIN = "relogin"
    RESTART = "restart"
    QUERY = "query"  # the query is wrong: fix the SOQL / the spec
    AUTH = "auth"  # the credentials are wrong
    TLS = "tls"  # the certificate does not verify
    FATAL = "fatal"


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    reason: str

    @property
    def retryable(self) -> bool:
        return self.kind in (Kind.RETRY, Kind.RATE_LIMITED)


class TransientHTTPError(Exception):
    """A response that is worth another try (raised by the transport)."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


def error_code(content: Any) -> str | None:
    """Salesforce's `errorCode` from an error body (`[{"errorCode": ...}]`, parsed or not)."""
    if isinstance(content, bytes | str):
        try:
            content = json.loads(content)
        except ValueError:
            return None
    if isinstance(content, list) and content and isinstance(content[0], dict):
        code = content[0].get("errorCode")
        return str(code) if code else None
    if isinstance(content, dict) and content.get("errorCode"):
        return str(content["errorCode"])
    return None


def one_line(text: str) -> str:
    """Salesforce's messages can span lines (MALFORMED_QUERY points at a column): one line."""
    return " ".join(str(text).split())


def _error_message(content: Any) -> str:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return one_line(content[0].get("message", ""))
    return ""


def _body_kind(body: bytes, code: str | None) -> str:
    if code:
        return code
    head = body[:200].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "HTML error page"
    return "empty body" if not head else "non-JSON body"


def http_verdict(status: int, path: str, body: bytes) -> Verdict | None:
    """How the transport treats a response: None lets simple-salesforce see it."""
    code = error_code(body) if body[:1] in (b"[", b"{") else None
    where = f"HTTP {status} ({_body_kind(body, code)}) from {path}"
    if code in RATE_LIMIT_CODES or status == 429:
        return Verdict(Kind.RATE_LIMITED, f"rate limited: {where}")
    if status == 500 and b"exceptionCode" in body:
        return None  # a SOAP fault (INVALID_LOGIN, ...): simple-salesforce names it
    if status in TRANSIENT_STATUSES or code in TRANSIENT_CODES:
        return Verdict(Kind.RETRY, where)
    return None


def classify(error: BaseException) -> Verdict:
    """What to do about an exception of a Salesforce call."""
    if isinstance(error, TransientHTTPError):
        return error.verdict
    if isinstance(error, SessionExpired | SalesforceExpiredSession):
        return Verdict(Kind.RELOGIN, "session expired (401 INVALID_SESSION_ID)")
    if isinstance(error, requests.exceptions.SSLError):
        text = str(error)
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            return Verdict(Kind.TLS, "TLS certificate verification failed")
        return Verdict(Kind.RETRY, f"TLS connection broken ({type(error).__name__})")
    if isinstance(error, requests.exceptions.Timeout):
        return Verdict(Kind.RETRY, f"timed out ({type(error).__name__})")
    if isinstance(error, requests.exceptions.RequestException | Urllib3Error | ConnectionError):
        return Verdict(Kind.RETRY, f"connection failed ({type(error).__name__})")
    if isinstance(error, json.JSONDecodeError):
        return Verdict(Kind.RETRY, "truncated or garbled response body")
    if isinstance(error, SalesforceAuthenticationFailed):
        return _login_verdict(error)
    if isinstance(error, SalesforceError):
        return _api_verdict(error)
    return Verdict(Kind.FATAL, f"{type(error).__name__}: {error}")


def _login_verdict(error: SalesforceAuthenticationFailed) -> Verdict:
    code = error.code
    if code in RATE_LIMIT_CODES:
        return Verdict(Kind.RATE_LIMITED, f"login rate limited ({code})")
    if (isinstance(code, int) and code in TRANSIENT_STATUSES) or code in TRANSIENT_CODES:
        return Verdict(Kind.RETRY, f"login failed with {code}")
    return Verdict(Kind.AUTH, f"login refused ({code or 'no code'})")


def _api_verdict(error: SalesforceError) -> Verdict:
    code = error_code(error.content)
    message = _error_message(error.content)
    detail = f"{code}: {message}" if code and message else (code or f"HTTP {error.status}")
    if code in LOCATOR_CODES:
        return Verdict(Kind.RESTART, f"the query's next page is gone ({detail})")
    if code in RATE_LIMIT_CODES:
        return Verdict(Kind.RATE_LIMITED, f"rate limited ({detail})")
    if code in TRANSIENT_CODES or (
        isinstance(error, SalesforceGeneralError) and error.status in TRANSIENT_STATUSES
    ):
        return Verdict(Kind.RETRY, detail)
    if isinstance(error, SalesforceMalformedRequest):
        return Verdict(Kind.QUERY, detail)
    if isinstance(error, SalesforceRefusedRequest):
        return Verdict(Kind.FATAL, f"refused ({detail}); check the user's permissions")
    return Verdict(Kind.FATAL, detail)


def backoff_seconds(
    attempt: int, policy: ClientPolicy, *, rate_limited: bool, rng: random.Random | None = None
) -> float:
    """Exponential backoff with jitter: base * 2**attempt, capped, times a factor in [0.5, 1)."""
    base = policy.rate_limit_retry_seconds if rate_limited else policy.retry_base_seconds
    cap = max(policy.retry_max_seconds, base)
    return min(cap, base * 2**attempt) * (0.5 + (rng or random).random() / 2)


@dataclass
class CallCounters:
    """What the retry loop did, for the run's metadata."""

    api_calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    relogins: int = 0
    last_retry_reason: str | None = None


def call_with_retries(
    what: str,
    call: Callable[[], T],
    *,
    policy: ClientPolicy,
    counters: CallCounters,
    relogin: Callable[[], None] | None = None,
    before_attempt: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    describe_failure: Callable[[str, Verdict, int, ClientPolicy], Exception] | None = None,
) -> T:
    """Run one API call; retry the transient failures, log in again on an expired session, and
    raise a one-line `SalesforceApiError` (or `QueryLocatorInvalid`) for everything else."""
    attempt = relogins = 0
    while True:
        if before_attempt is not None:
            before_attempt()
        counters.api_calls += 1
        try:
            return call()
        except SalesforceApiError:
            raise
        except Exception as error:
            verdict = classify(error)
            if verdict.kind is Kind.RELOGIN and relogin is not None:
                if relogins >= MAX_RELOGINS_PER_CALL:
                    raise SalesforceApiError(
                        f"{what}: the session expired again right after {relogins} fresh "
                        "logins; check the connected app's session policy (IP restrictions, "
                        "session timeout)"
                    ) from None
                relogins += 1
                counters.relogins += 1
                relogin()
                continue
            if verdict.retryable and attempt < policy.max_retries:
                delay = backoff_seconds(
                    attempt, policy, rate_limited=verdict.kind is Kind.RATE_LIMITED
                )
                attempt += 1
                counters.retries += 1
                counters.rate_limited += verdict.kind is Kind.RATE_LIMITED
                counters.last_retry_reason = verdict.reason
                sleep(delay)
                continue
            raise (describe_failure or failure)(what, verdict, attempt + 1, policy) from None


def failure(what: str, verdict: Verdict, attempts: int, policy: ClientPolicy) -> Exception:
    """The exception that ends a run for `verdict`, with a message that names the fix."""
    if verdict.kind is Kind.RESTART:
        return QueryLocatorInvalid(f"{what}: {verdict.reason}")
    if verdict.kind is Kind.QUERY:
        return SalesforceQueryError(
            f"Salesforce rejected {what}: {verdict.reason}; fix the object's spec in "
            "config/objects/ (fields, api_name)"
        )
    if verdict.kind is Kind.AUTH:
        return SalesforceConfigError(f"{what}: {verdict.reason}; check the credentials")
    if verdict.kind is Kind.TLS:
        return SalesforceConfigError(
            f"{what}: {verdict.reason}; set ca_bundle (SF_CA_BUNDLE) to the server's CA file"
        )
    if verdict.kind is Kind.RELOGIN:
        return SalesforceConfigError(
            f"{what}: the session expired and a session id (auth_method session) cannot log in "
            "again; use password or client credentials"
        )
    if verdict.retryable:
        hint = (
            " (the org's API request limit; wait for it to recover)"
            if verdict.kind is Kind.RATE_LIMITED
            else ""
        )
        return SalesforceUnavailable(
            f"{what} failed after {attempts} attempt{'s' if attempts > 1 else ''}: "
            f"{verdict.reason}{hint}; salesforce.timeout_seconds={policy.timeout_seconds:g}, "
            f"max_retries={policy.max_retries}; nothing was appended, the next run catches up"
        )
    return SalesforceApiError(f"{what} failed: {verdict.reason}")
