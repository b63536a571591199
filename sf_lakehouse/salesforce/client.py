"""Salesforce over simple-salesforce, without Dagster (the AWS Glue job imports this module).

`connect()` logs in and returns a `SalesforceClient`: REST pages (`query_pages`), Bulk API 2.0
query jobs (`bulk_query`), `describe`, `count`. Every HTTP call has a timeout; transient failures
are retried with backoff, an expired session logs in again (also in the middle of paging), and a
quota guard stops before `max_api_usage_share` of the org's daily API limit. `stats()` says what
happened (calls, retries, re-logins, bytes, the server's clock, the org's API usage).
The connection settings (`ConnectionSettings`, SF_* variables, secrets) live in `connection`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import SFBulk2Handler, _Bulk2Client

from sf_lakehouse.salesforce.bulk import BulkQuery
from sf_lakehouse.salesforce.connection import (
    AUTH_METHODS,
    CONNECTION_FIELDS,
    ENVIRONMENT_VARIABLES,
    REFUSED_WITH_SECRET,
    SECRET_FIELDS,
    ConnectionSettings,
    check_login_url,
    client_policy,
    connection_from_environment,
    masked_value,
    normalize_domain,
    refuse_secret_overrides,
    settings_from_environment,
    with_secret_credentials,
)
from sf_lakehouse.salesforce.deadline import Deadline
from sf_lakehouse.salesforce.errors import ApiQuotaExceeded
from sf_lakehouse.salesforce.http import LoginHostAdapter, ObservedSession, http_session
from sf_lakehouse.salesforce.retry import (
    CallCounters,
    ClientPolicy,
    Kind,
    Verdict,
    call_with_retries,
    failure,
)
from sf_lakehouse.salesforce.types import SalesforceConfigError

__all__ = [
    "AUTH_METHODS",
    "CONNECTION_FIELDS",
    "ENVIRONMENT_VARIABLES",
    "REFUSED_WITH_SECRET",
    "SECRET_FIELDS",
    "ClientPolicy",
    "ConnectionSettings",
    "SalesforceClient",
    "check_login_url",
    "client_policy",
    "connect",
    "connection_from_environment",
    "masked_value",
    "normalize_domain",
    "refuse_secret_overrides",
    "settings_from_environment",
    "with_secret_credentials",
]

T = TypeVar("T")
# The login-host rewriting adapter under its earlier name (tests patch it here).
_LoginHostAdapter = LoginHostAdapter


class SalesforceClient:
    """One authenticated connection: every call with timeouts, retries, re-login and the quota
    guard; counts what a run did."""

    def __init__(
        self,
        sf: Salesforce,
        api_version: str,
        *,
        policy: ClientPolicy | None = None,
        session: ObservedSession | None = None,
        login: Callable[[], Salesforce] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        deadline: Deadline | None = None,
    ) -> None:
        self._sf = sf
        self.api_version = api_version
        self.policy = policy or ClientPolicy()
        self._session = session if session is not None else sf.session
        self._login = login
        self.deadline = deadline
        self._plain_sleep = sleep
        # Retry backoffs and Bulk polls never sleep past the deadline.
        self._sleep = _bounded_sleep(sleep, deadline)
        self.counters = CallCounters()

    # --- what happened ---------------------------------------------------------------------

    @property
    def api_calls(self) -> int:
        """API call attempts this client made (retries included, logins not)."""
        return self.counters.api_calls

    @property
    def api_usage(self) -> dict[str, int]:
        """Org-wide usage from the last Sforce-Limit-Info header: {'used': n, 'limit': m}."""
        seen = getattr(self._session, "observations", None)
        if seen is not None and seen.api_used is not None and seen.api_limit is not None:
            return {"used": seen.api_used, "limit": seen.api_limit}
        usage = self._sf.api_usage.get("api-usage")
        if usage is None:
            return {}
        return {"used": int(usage.used), "limit": int(usage.total)}

    @property
    def server_time(self) -> dt.datetime | None:
        """The org's clock: the latest HTTP `Date` of its responses (naive UTC)."""
        seen = getattr(self._session, "observations", None)
        return seen.server_time if seen is not None else None

    def stats(self) -> dict[str, Any]:
        """Counters as plain values (subtract two of them for one run's share)."""
        seen = getattr(self._session, "observations", None)
        return {
            "api_calls": self.counters.api_calls,
            "retries": self.counters.retries,
            "rate_limited": self.counters.rate_limited,
            "relogins": self.counters.relogins,
            "http_requests": seen.requests if seen else 0,
            "bytes": seen.bytes if seen else 0,
        }

    # --- calls -----------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one API call under the policy (retries, re-login, quota guard)."""
        return call_with_retries(
            what,
            fn,
            policy=self.policy,
            counters=self.counters,
            relogin=self._relogin if self._login is not None else None,
            before_attempt=self._before_attempt,
            sleep=self._sleep,
        )

    def set_deadline(self, deadline: Deadline | None) -> None:
        """Count every later call, retry, sleep and body read against `deadline` (one client
        serving several objects in turn gets each object's own)."""
        self.deadline = deadline
        self._sleep = _bounded_sleep(self._plain_sleep, deadline)
        if isinstance(self._session, ObservedSession):
            self._session.deadline = deadline

    def _before_attempt(self) -> None:
        if self.deadline is not None:
            self.deadline.check("about to call Salesforce again")
        self._guard_quota()

    def _relogin(self) -> None:
        assert self._login is not None
        login_counters = CallCounters()
        try:
            self._sf = call_with_retries(
                "Salesforce login after an expired session",
                self._login,
                policy=self.policy,
                counters=login_counters,
                sleep=self._sleep,
            )
        finally:
            self.counters.retries += login_counters.retries
            self.counters.rate_limited += login_counters.rate_limited

    def _guard_quota(self) -> None:
        usage = self.api_usage
        if not usage.get("limit"):
            return
        used, limit = usage["used"], usage["limit"]
        allowed = self.policy.max_api_usage_share * limit
        if used + 1 > allowed:
            raise ApiQuotaExceeded(
                f"Salesforce API usage is {used}/{limit} ({used / limit:.0%} of the org's daily "
                f"limit): salesforce.max_api_usage_share={self.policy.max_api_usage_share:g} "
                f"stops the run before call {used + 1} passes {allowed:.0f}; nothing was "
                "appended and the watermark is unchanged. Run again when the org's 24-hour "
                "usage has fallen, or raise max_api_usage_share",
                used,
                limit,
            )

    def describe(self, object_name: str) -> list[dict[str, Any]]:
        result = self.call(
            f"describe of {object_name}", lambda: getattr(self._sf, object_name).describe()
        )
        return list(result["fields"])

    def query_pages(
        self, soql: str, page_size: int = 2000, *, include_deleted: bool = False
    ) -> Iterator[list[dict[str, Any]]]:
        """The records of a query (`queryAll` with `include_deleted`) page by page, without the
        attributes key. A page that fails is fetched again from the same `nextRecordsUrl`
        (after a new login when the session expired); `QueryLocatorInvalid` when it is gone."""
        headers = {"Sforce-Query-Options": f"batchSize={page_size}"}
        verb = "queryAll" if include_deleted else "query"
        page = self.call(
            f"REST {verb}",
            lambda: self._sf.query(soql, include_deleted=include_deleted, headers=headers),
        )
        number = 1
        while True:
            yield [{k: v for k, v in r.items() if k != "attributes"} for r in page["records"]]
            if page.get("done", True) or not page.get("nextRecordsUrl"):
                return
            number += 1
            next_url = page["nextRecordsUrl"]
            page = self.call(
                f"REST {verb} page {number}",
                lambda url=next_url: self._sf.query_more(
                    url, identifier_is_url=True, headers=headers
                ),
            )

    def query(
        self, soql: str, page_size: int = 2000, *, include_deleted: bool = False
    ) -> Iterator[dict[str, Any]]:
        """All records of a query, one at a time (small queries: sensors, probes)."""
        for page in self.query_pages(soql, page_size, include_deleted=include_deleted):
            yield from page

    def count(self, soql: str, *, include_deleted: bool = False) -> int:
        result = self.call(
            "COUNT() query", lambda: self._sf.query(soql, include_deleted=include_deleted)
        )
        return int(result["totalSize"])

    def limits(self) -> dict[str, Any]:
        """The org's limits (`DailyApiRequests`: Max, Remaining, ...)."""
        return dict(self.call("limits", lambda: self._sf.limits()))

    def bulk_query(self, object_name: str) -> BulkQuery:
        """A Bulk API 2.0 query job of one object (`pages()` runs it)."""

        def bulk2() -> _Bulk2Client:
            handler = SFBulk2Handler(self._sf.session_id, self._sf.bulk2_url, session=self._session)
            return _Bulk2Client(object_name, handler.bulk2_url, handler.headers, handler.session)

        return BulkQuery(
            self.call,
            bulk2,
            object_name=object_name,
            poll_seconds=self.policy.bulk_poll_seconds,
            max_wait_seconds=self.policy.bulk_max_wait_seconds,
            sleep=self._sleep,
        )


def _login(settings: ConnectionSettings, session: ObservedSession, mode: str) -> Salesforce:
    common: dict[str, Any] = {"session": session, "version": settings.api_version}
    if mode == "password":
        return Salesforce(
            username=settings.username,
            password=settings.password,
            security_token=settings.security_token,
            domain=settings.domain,
            **common,
        )
    if mode == "client_credentials":
        return Salesforce(
            consumer_key=settings.client_id,
            consumer_secret=settings.client_secret,
            domain=settings.domain,
            **common,
        )
    return Salesforce(session_id=settings.session_id, instance_url=settings.instance_url, **common)


def _bounded_sleep(
    sleep: Callable[[float], None], deadline: Deadline | None
) -> Callable[[float], None]:
    if deadline is None:
        return sleep

    def bounded(seconds: float) -> None:
        if seconds >= deadline.remaining():
            raise deadline.exceeded(f"waiting {seconds:.1f} s to try again")
        sleep(seconds)

    return bounded


def connect(
    settings: ConnectionSettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    deadline: Deadline | None = None,
) -> SalesforceClient:
    """Log in (transient failures retried); errors are one line naming the server and the fix,
    never the credentials. With a `deadline`, the login and every later call, retry and body
    read of the client count against it."""
    mode = settings.auth_mode()
    where = settings.login_url or settings.domain
    policy = settings.client_policy()
    session = http_session(
        policy.timeout_seconds,
        ca_bundle=settings.ca_bundle,
        login_prefix=f"https://{settings.domain}.salesforce.com",
        login_url=settings.login_url,
    )
    session.deadline = deadline

    def login_failure(what: str, verdict: Verdict, attempts: int, p: ClientPolicy) -> Exception:
        if verdict.kind is Kind.AUTH:
            return SalesforceConfigError(
                f"Salesforce login ({mode}) failed at {where}: {verdict.reason}; "
                "check the credentials"
            )
        if verdict.kind is Kind.TLS:
            return SalesforceConfigError(
                f"TLS verification of {where} failed; set ca_bundle (SF_CA_BUNDLE) to the CA "
                "file of that server"
            )
        if verdict.retryable:
            return SalesforceConfigError(
                f"cannot reach Salesforce at {where} ({verdict.reason}, {attempts} attempts); "
                "is the server (or `sf-lakehouse emulator`) running?"
            )
        return failure(what, verdict, attempts, p)

    login = partial(_login, settings, session, mode)
    sf = call_with_retries(
        f"Salesforce login ({mode})",
        login,
        policy=policy,
        counters=CallCounters(),
        sleep=_bounded_sleep(sleep, deadline),
        before_attempt=(lambda: deadline.check("logging in")) if deadline is not None else None,
        describe_failure=login_failure,
    )
    return SalesforceClient(
        sf,
        settings.api_version,
        policy=policy,
        session=session,
        login=login if mode != "session" else None,
        sleep=sleep,
        deadline=deadline,
    )
