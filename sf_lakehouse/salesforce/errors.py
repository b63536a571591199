"""Why a Salesforce call or an extraction failed: one exception type per cause, each message one
line that names the cause and the fix (no Dagster; the Glue job raises the same ones).

`SalesforceConfigError` (settings, credentials, fields) lives in `types`; everything here is a
run-time failure: the run appended nothing and the watermark did not move.
"""

from __future__ import annotations

from sf_lakehouse.salesforce.types import SalesforceConfigError

__all__ = [
    "ApiQuotaExceeded",
    "BulkJobError",
    "QueryLocatorInvalid",
    "SalesforceApiError",
    "SalesforceConfigError",
    "SalesforceQueryError",
    "SalesforceUnavailable",
    "SessionExpired",
]


class SalesforceApiError(RuntimeError):
    """A Salesforce call failed for good; the message names the cause and the fix."""


class SalesforceUnavailable(SalesforceApiError):
    """Transient failures (timeouts, resets, 5xx, rate limits) outlasted the retries."""


class SalesforceQueryError(SalesforceApiError):
    """Salesforce refused the query itself (bad SOQL, unknown field or object): never retried."""


class ApiQuotaExceeded(SalesforceApiError):
    """The org's daily API usage reached `salesforce.max_api_usage_share` of its limit."""

    def __init__(self, message: str, used: int, limit: int) -> None:
        super().__init__(message)
        self.used = used
        self.limit = limit


class BulkJobError(SalesforceApiError):
    """A Bulk API 2.0 job failed, was aborted, or did not finish in time."""

    def __init__(self, message: str, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class QueryLocatorInvalid(SalesforceApiError):
    """A query's next page is gone (INVALID_QUERY_LOCATOR): the reader restarts the query."""


class SessionExpired(Exception):
    """401 INVALID_SESSION_ID on a data call; the client logs in again and repeats the call.
    Raised by the transport, before simple-salesforce's own (header-dropping) refresh."""

    def __init__(self, url: str) -> None:
        super().__init__(f"session expired (401 INVALID_SESSION_ID) at {url}")
        self.url = url
