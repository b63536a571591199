"""Which Salesforce failures are retried, how long the client waits, and what it says when it
gives up (pure functions and the retry loop with a fake call)."""

from __future__ import annotations

import random

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sf_lakehouse.salesforce.errors import (
    QueryLocatorInvalid,
    SalesforceConfigError,
    SalesforceQueryError,
    SalesforceUnavailable,
    SessionExpired,
)
from sf_lakehouse.salesforce.http import parse_api_usage, parse_http_date
from sf_lakehouse.salesforce.retry import (
    CallCounters,
    ClientPolicy,
    Kind,
    TransientHTTPError,
    backoff_seconds,
    call_with_retries,
    classify,
    error_code,
    http_verdict,
)

HTML = b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>"
SOAP_FAULT = (
    b'<?xml version="1.0"?><soapenv:Envelope><soapenv:Body><soapenv:Fault>'
    b"<faultcode>INVALID_LOGIN</faultcode><detail><sf:LoginFault><sf:exceptionCode>INVALID_LOGIN"
    b"</sf:exceptionCode></sf:LoginFault></detail></soapenv:Fault></soapenv:Body>"
    b"</soapenv:Envelope>"
)


def sf_error(cls, status: int, code: str, message: str = "m"):
    return cls(
        "https://x/services/data/v59.0/query",
        status,
        "query",
        [{"errorCode": code, "message": message}],
    )


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (503, HTML, Kind.RETRY),
        (503, b'[{"errorCode":"SERVER_UNAVAILABLE","message":"down"}]', Kind.RETRY),
        (502, HTML, Kind.RETRY),
        (500, HTML, Kind.RETRY),
        (500, b'[{"errorCode":"UNKNOWN_EXCEPTION","message":"x"}]', Kind.RETRY),
        (504, b"", Kind.RETRY),
        (429, b"", Kind.RATE_LIMITED),
        (
            403,
            b'[{"errorCode":"REQUEST_LIMIT_EXCEEDED","message":"TotalRequests"}]',
            Kind.RATE_LIMITED,
        ),
    ],
)
def test_transient_responses_are_raised_by_the_transport(status, body, kind) -> None:
    verdict = http_verdict(status, "/services/data/v59.0/query", body)
    assert verdict is not None and verdict.kind is kind
    assert str(status) in verdict.reason


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, SOAP_FAULT),  # a bad password: simple-salesforce names it, never retried
        (400, b'[{"errorCode":"MALFORMED_QUERY","message":"unexpected token"}]'),
        (400, b'[{"errorCode":"INVALID_QUERY_LOCATOR","message":"gone"}]'),
        (404, b'[{"errorCode":"NOT_FOUND","message":"no"}]'),
        (403, b'[{"errorCode":"INSUFFICIENT_ACCESS","message":"no"}]'),
    ],
)
def test_other_responses_are_left_to_simple_salesforce(status, body) -> None:
    assert http_verdict(status, "/services/data/v59.0/query", body) is None


@pytest.mark.parametrize("code", ["MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE"])
def test_bad_soql_is_never_retried(code: str) -> None:
    verdict = classify(sf_error(SalesforceMalformedRequest, 400, code, "No such column 'Foo'"))
    assert verdict.kind is Kind.QUERY and not verdict.retryable
    assert code in verdict.reason and "Foo" in verdict.reason


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (sf_error(SalesforceMalformedRequest, 400, "INVALID_QUERY_LOCATOR"), Kind.RESTART),
        (sf_error(SalesforceRefusedRequest, 403, "REQUEST_LIMIT_EXCEEDED"), Kind.RATE_LIMITED),
        (sf_error(SalesforceRefusedRequest, 403, "INSUFFICIENT_ACCESS"), Kind.FATAL),
        (sf_error(SalesforceGeneralError, 502, "BAD_GATEWAY"), Kind.RETRY),
        (SalesforceGeneralError("u", 503, "query", "<html>down</html>"), Kind.RETRY),
        (sf_error(SalesforceResourceNotFound, 404, "NOT_FOUND"), Kind.FATAL),
        (sf_error(SalesforceExpiredSession, 401, "INVALID_SESSION_ID"), Kind.RELOGIN),
        (SessionExpired("/services/data/v59.0/query"), Kind.RELOGIN),
        (SalesforceAuthenticationFailed("INVALID_LOGIN", "bad password"), Kind.AUTH),
        (SalesforceAuthenticationFailed(503, "<html>down</html>"), Kind.RETRY),
        (SalesforceAuthenticationFailed("REQUEST_LIMIT_EXCEEDED", "x"), Kind.RATE_LIMITED),
        (requests.exceptions.ReadTimeout("read timed out"), Kind.RETRY),
        (requests.exceptions.ConnectTimeout("connect timed out"), Kind.RETRY),
        (requests.exceptions.ConnectionError("Connection reset by peer"), Kind.RETRY),
        (requests.exceptions.ChunkedEncodingError("IncompleteRead"), Kind.RETRY),
        (ConnectionResetError(104, "reset"), Kind.RETRY),
        (requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed"), Kind.TLS),
        (requests.exceptions.SSLError("EOF occurred in violation of protocol"), Kind.RETRY),
        (ValueError("a bug"), Kind.FATAL),
    ],
)
def test_exceptions_are_classified(error: Exception, kind: Kind) -> None:
    assert classify(error).kind is kind


def test_error_codes_are_read_from_parsed_and_raw_bodies() -> None:
    assert error_code([{"errorCode": "INVALID_FIELD"}]) == "INVALID_FIELD"
    assert error_code(b'[{"errorCode": "INVALID_TYPE"}]') == "INVALID_TYPE"
    assert error_code("<html>") is None and error_code(None) is None


def test_backoff_grows_exponentially_with_jitter_up_to_a_cap() -> None:
    policy = ClientPolicy(retry_base_seconds=1, retry_max_seconds=10, rate_limit_retry_seconds=30)
    rng = random.Random(1)
    for attempt, full in [(0, 1), (1, 2), (2, 4), (3, 8), (4, 10), (9, 10)]:
        delays = [backoff_seconds(attempt, policy, rate_limited=False, rng=rng) for _ in range(50)]
        assert all(full / 2 <= d < full for d in delays)
        assert len(set(delays)) > 1  # jitter: clients retrying together spread out
    limited = backoff_seconds(0, policy, rate_limited=True, rng=rng)
    assert 15 <= limited < 30  # REQUEST_LIMIT_EXCEEDED waits longer, above the normal cap


class Script:
    """A call that fails with the given exceptions, then returns 'ok'."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


FAST = ClientPolicy(max_retries=3, retry_base_seconds=0.001, retry_max_seconds=0.002)


def run(call, **kwargs):
    counters = CallCounters()
    slept: list[float] = []
    result = call_with_retries(
        "REST query",
        call,
        policy=kwargs.pop("policy", FAST),
        counters=counters,
        sleep=slept.append,
        **kwargs,
    )
    return result, counters, slept


def test_transient_failures_are_retried_and_counted() -> None:
    verdict = http_verdict(503, "/services/data/v59.0/query", HTML)
    assert verdict is not None
    call = Script(TransientHTTPError(verdict), requests.exceptions.ReadTimeout("t"))
    result, counters, slept = run(call)
    assert result == "ok" and call.calls == 3
    assert counters.retries == 2 and counters.api_calls == 3 and len(slept) == 2


def test_the_retries_are_bounded_and_the_failure_names_the_cause() -> None:
    call = Script(*[requests.exceptions.ReadTimeout("t")] * 10)
    with pytest.raises(SalesforceUnavailable) as failed:
        run(call)
    assert call.calls == FAST.max_retries + 1
    message = str(failed.value)
    assert "REST query failed after 4 attempts: timed out (ReadTimeout)" in message
    assert "max_retries=3" in message and "\n" not in message


def test_bad_soql_fails_at_once_with_salesforce_s_words() -> None:
    call = Script(sf_error(SalesforceMalformedRequest, 400, "INVALID_FIELD", "No such column"))
    with pytest.raises(SalesforceQueryError, match="INVALID_FIELD: No such column") as failed:
        run(call)
    assert call.calls == 1 and "config/objects/" in str(failed.value)


def test_an_expired_session_logs_in_again_and_repeats_the_call() -> None:
    logins: list[int] = []
    call = Script(SessionExpired("/services/data/v59.0/query/01gXX-2000"))
    result, counters, _ = run(call, relogin=lambda: logins.append(1))
    assert result == "ok" and logins == [1] and counters.relogins == 1 and counters.retries == 0


def test_a_session_that_cannot_log_in_again_says_so() -> None:
    with pytest.raises(SalesforceConfigError, match="cannot log in again"):
        run(Script(SessionExpired("/services/data/v59.0/query")))


def test_an_invalid_locator_asks_the_reader_to_restart() -> None:
    call = Script(sf_error(SalesforceMalformedRequest, 400, "INVALID_QUERY_LOCATOR"))
    with pytest.raises(QueryLocatorInvalid):
        run(call)
    assert call.calls == 1


def test_the_guard_before_each_attempt_can_stop_the_call() -> None:
    class Stop(Exception):
        pass

    def guard() -> None:
        raise Stop

    call = Script()
    with pytest.raises(Stop):
        run(call, before_attempt=guard)
    assert call.calls == 0


def test_response_headers_give_the_org_clock_and_api_usage() -> None:
    assert parse_http_date("Sun, 01 Mar 2026 08:00:05 GMT").isoformat() == "2026-03-01T08:00:05"
    assert parse_http_date("not a date") is None and parse_http_date(None) is None
    assert parse_api_usage("api-usage=13/15000, per-app-api-usage=2/100(appName=x)") == (
        13,
        15000,
    )
    assert parse_api_usage("") is None


def test_salesforce_s_multi_line_messages_become_one_line() -> None:
    message = "\nSELECT Foo FROM User\n       ^\nERROR at Row:1:Column:8\nNo such column 'Foo'"
    call = Script(sf_error(SalesforceMalformedRequest, 400, "INVALID_FIELD", message))
    with pytest.raises(SalesforceQueryError) as failed:
        run(call)
    assert "\n" not in str(failed.value)
    assert "INVALID_FIELD: SELECT Foo FROM User ^ ERROR at Row:1:Column:8" in str(failed.value)


def test_the_policy_comes_from_the_environment_config(settings) -> None:
    from sf_lakehouse.salesforce.client import client_policy

    policy = client_policy(settings)
    assert policy == ClientPolicy()  # the defaults of the config model and of the client agree
    assert client_policy(settings, timeout_seconds=20, max_retries=1).timeout_seconds == 20
