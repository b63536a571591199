"""Every fault kind of the emulator's fault injection, over REST and Bulk API 2.0: the
extraction either reads exactly the rows of a fault-free run, or fails with a message that names
the cause; it never hangs past its timeout; retries, re-logins and restarts show in the run's
metadata."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest
import requests

from sf_lakehouse.config import ObjectSpec, Settings, resolve_settings
from sf_lakehouse.emulator import SalesforceEmulator, generate_org
from sf_lakehouse.extraction import CursorValueError, Increment, extract_increment
from sf_lakehouse.lakehouse.tables import RAW_LAYOUT, append_rows, ensure_table, open_catalog
from sf_lakehouse.salesforce.client import (
    ClientPolicy,
    ConnectionSettings,
    SalesforceClient,
    connect,
    settings_from_environment,
)
from sf_lakehouse.salesforce.errors import BulkJobError, SalesforceUnavailable
from sf_lakehouse_tests.histories import opportunity

START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
END = START + dt.timedelta(days=6)
RUN = {"run_id": "run-f", "extracted_at": dt.datetime(2026, 3, 8, tzinfo=dt.UTC)}
POLICY = {
    "timeout_seconds": 1.0,
    "max_retries": 4,
    "retry_base_seconds": 0.01,
    "retry_max_seconds": 0.05,
    "rate_limit_retry_seconds": 0.02,
    "bulk_poll_seconds": 0.1,
    "bulk_max_wait_seconds": 5.0,
}
APIS = {"rest": {"api": "rest", "page_size": 200}, "bulk": {"api": "bulk", "bulk_page_size": 100}}


def client_for(emulator: Any, **policy: Any) -> SalesforceClient:
    values = settings_from_environment(emulator.env_vars())
    return connect(ConnectionSettings(**values, policy=ClientPolicy(**{**POLICY, **policy})))


def with_options(spec: ObjectSpec, **extraction: Any) -> ObjectSpec:
    data = spec.model_dump()
    data["extraction"] = {**data["extraction"], **extraction}
    return ObjectSpec.model_validate(data)


def record_rows(increment: Increment) -> list[dict[str, Any]]:
    rows = increment.rows.drop_columns(["_extracted_at", "_run_id"]).to_pylist()
    return sorted(rows, key=lambda r: (r["id"], r["systemmodstamp"]))


def put_faults(emulator: Any, plan: dict[str, Any]) -> None:
    """The control endpoint of the contract (`PUT /_emulator/faults`)."""
    response = requests.put(
        f"{emulator.base_url}/_emulator/faults",
        data=json.dumps(plan),
        verify=str(emulator.ca_bundle),
        timeout=10,
    )
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def history() -> list[dict]:
    return generate_org(users=450, seed=9, start=START, days=6)


@pytest.fixture(scope="module")
def shared_org(history, tmp_path_factory: pytest.TempPathFactory):
    """One emulator for the module's tests (each turns its own faults on): starting one and
    reading the baseline for every test cost more than the tests themselves."""
    emulator = SalesforceEmulator(
        history, workdir=tmp_path_factory.mktemp("org"), now=END, bulk_processing_seconds=0.05
    )
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def org(shared_org):
    """The shared emulator with no fault on when a test starts and after it ends (its fault
    counts restart with the test's own plan)."""
    shared_org.clear_faults()
    yield shared_org
    shared_org.clear_faults()


# 225 visible opportunities: two REST pages, three Bulk pages, besides describe (and polls).
OBJECT = "Opportunity"


@pytest.fixture(scope="module")
def baseline(shared_org) -> dict[str, list[dict]]:
    """What a fault-free extraction reads, over each API."""
    shared_org.clear_faults()
    spec = resolve_settings("local").object(OBJECT)
    return {
        api: record_rows(
            extract_increment(client_for(shared_org), None, with_options(spec, **o), **RUN)
        )
        for api, o in APIS.items()
    }


RECOVERABLE = [
    ({"kind": "http_503", "body": "html", "every": 3}, "retries"),
    ({"kind": "http_503", "body": "json", "every": 3}, "retries"),
    ({"kind": "http_502", "body": "html", "every": 3}, "retries"),
    ({"kind": "http_500", "body": "json", "every": 3}, "retries"),
    ({"kind": "http_500", "body": "html", "every": 2}, "retries"),
    ({"kind": "reset", "every": 3}, "retries"),
    ({"kind": "stall", "seconds": 3, "every": 3}, "retries"),
    ({"kind": "rate_limited", "every": 3}, "rate_limited"),
    ({"kind": "session_expired", "every": 3}, "relogins"),
]


@pytest.mark.parametrize("api", list(APIS))
@pytest.mark.parametrize(("fault", "counter"), RECOVERABLE, ids=lambda v: str(v))
def test_transient_faults_are_recovered_with_the_same_rows(
    settings: Settings, org, baseline, api: str, fault: dict, counter: str
) -> None:
    put_faults(org, {"seed": 1, "faults": [fault]})
    spec = with_options(settings.object(OBJECT), **APIS[api])
    started = time.monotonic()
    increment = extract_increment(client_for(org), None, spec, **RUN)
    assert time.monotonic() - started < 60
    assert record_rows(increment) == baseline[api]
    metadata = increment.metadata()
    assert metadata[counter] >= 1, metadata
    assert metadata["api"] == f"{api}_queryAll"
    report = org.fault_report()
    assert report["injected"][fault["kind"]] >= 1


def test_an_invalid_locator_restarts_the_rest_query(settings: Settings, org, baseline) -> None:
    # Every next page is refused: the query restarts from the highest cursor value it read.
    put_faults(org, {"seed": 1, "faults": [{"kind": "invalid_locator"}]})
    spec = with_options(settings.object(OBJECT), **APIS["rest"])
    increment = extract_increment(client_for(org), None, spec, **RUN)
    assert record_rows(increment) == baseline["rest"]
    assert increment.metadata()["query_restarts"] >= 1


def test_a_server_that_stalls_for_ever_fails_within_the_timeouts(settings: Settings, org) -> None:
    put_faults(org, {"seed": 1, "faults": [{"kind": "stall", "seconds": 60}]})
    policy = {"timeout_seconds": 0.5, "max_retries": 1}
    values = settings_from_environment(org.env_vars())
    settings_ = ConnectionSettings(**values, policy=ClientPolicy(**{**POLICY, **policy}))
    started = time.monotonic()
    # The login itself is not faulted (no fault names its path): the first data call stalls.
    client = connect(settings_)
    with pytest.raises(
        SalesforceUnavailable, match=r"describe of Account failed after 2 attempts: timed out"
    ):
        extract_increment(client, None, settings.object("Account"), **RUN)
    assert time.monotonic() - started < 2 * 0.5 + 5


def test_a_failed_bulk_job_names_the_job(settings: Settings, org) -> None:
    put_faults(org, {"seed": 1, "faults": [{"kind": "bulk_failed"}]})
    spec = with_options(settings.object(OBJECT), **APIS["bulk"])
    with pytest.raises(BulkJobError) as failed:
        extract_increment(client_for(org), None, spec, **RUN)
    message = str(failed.value)
    assert failed.value.job_id in message and "is Failed" in message
    assert "extraction.api: rest" in message


def test_a_stuck_bulk_job_is_aborted_after_the_wait(settings: Settings, org) -> None:
    put_faults(org, {"seed": 1, "faults": [{"kind": "bulk_stuck"}]})
    spec = with_options(settings.object(OBJECT), **APIS["bulk"])
    started = time.monotonic()
    with pytest.raises(BulkJobError) as failed:
        extract_increment(client_for(org, bulk_max_wait_seconds=1.0), None, spec, **RUN)
    assert time.monotonic() - started < 10
    message = str(failed.value)
    assert f"{failed.value.job_id} (Opportunity) is still InProgress" in message
    assert "aborted it" in message and "bulk_max_wait_seconds=1" in message
    job = client_for(org).call(
        "job", lambda: client_for(org)._sf.restful(f"jobs/query/{failed.value.job_id}")
    )
    assert job["state"] == "Aborted"


@pytest.mark.parametrize("api", list(APIS))
def test_commit_lag_is_caught_up_by_the_lookback(
    settings: Settings, emulator_factory, history, api: str
) -> None:
    """A version whose transaction commits after a later version was read (Salesforce stamps
    SystemModstamp when a transaction starts): run 1 reads the org before that commit, with the
    30 s commit_lag fault on, and stores what it read in the raw table; run 2 reads the org after
    it, starting from the raw table's watermark. The version sits below that watermark, inside
    the lookback (300 s): only the lookback finds it."""
    spec = with_options(settings.object(OBJECT), **APIS[api])
    late = opportunity(
        "006LATE00000001AAA",
        END - dt.timedelta(minutes=3),
        "Prospecting",
        10.0,
        "001000000000001AAA",
        "005000000000001AAA",
    )
    read = opportunity(
        "006LATE00000002AAA",
        END - dt.timedelta(minutes=2),
        "Closed Won",
        20.0,
        "001000000000001AAA",
        "005000000000001AAA",
    )
    before = emulator_factory([*history, read], now=END + dt.timedelta(seconds=30))
    put_faults(before, {"seed": 1, "faults": [{"kind": "commit_lag", "seconds": 30}]})
    first = extract_increment(client_for(before), None, spec, **RUN)
    assert first.server_time is not None and first.watermark_after <= first.server_time
    # The watermark is `read`'s stamp (naive UTC, as the raw table stores it).
    assert first.watermark_after == (END - dt.timedelta(minutes=2)).replace(tzinfo=None)
    catalog = open_catalog(settings.catalog_properties())
    identifier = settings.table_identifier(spec.raw_asset_key)
    append_rows(ensure_table(catalog, identifier, first.rows.schema, RAW_LAYOUT), first.rows)

    after = emulator_factory([*history, read, late], now=END + dt.timedelta(seconds=30))
    second = extract_increment(client_for(after), catalog.load_table(identifier), spec, **RUN)
    assert [r["id"] for r in record_rows(second)] == [late["Id"]]
    assert second.since == first.watermark_after - dt.timedelta(seconds=spec.lookback_seconds)
    append_rows(catalog.load_table(identifier), second.rows)
    stored = catalog.load_table(identifier).scan().to_arrow()
    everything = record_rows(extract_increment(client_for(after), None, spec, **RUN))
    assert (
        sorted(
            stored.drop_columns(["_extracted_at", "_run_id"]).to_pylist(),
            key=lambda r: (r["id"], r["systemmodstamp"]),
        )
        == everything
    )


@pytest.mark.parametrize("api", list(APIS))
@pytest.mark.parametrize("field", ["NumberOfEmployees", "AnnualRevenue", "CreatedDate"])
def test_malformed_values_are_rejected_never_dropped(
    settings: Settings, org, api: str, field: str
) -> None:
    spec = settings.object("Account")
    spec = ObjectSpec.model_validate(
        {**spec.model_dump(), "fields": [*spec.fields, "NumberOfEmployees", "AnnualRevenue"]}
    )
    spec = with_options(spec, **APIS[api])
    clean = record_rows(extract_increment(client_for(org), None, spec, **RUN))
    put_faults(org, {"seed": 3, "faults": [{"kind": "malformed", "field": field, "every": 7}]})
    increment = extract_increment(client_for(org), None, spec, **RUN)
    rejects = increment.rejects.to_pylist()
    assert rejects and {r["field"] for r in rejects} == {field}
    assert all(field in r["reason"] and r["id"] for r in rejects)
    rejected_ids = {r["id"] for r in rejects}
    # Only the value is set aside: every version is stored, that field NULL (issue 16).
    column = field.lower()
    expected = [{**r, column: None} if r["id"] in rejected_ids else r for r in clean]
    assert record_rows(increment) == expected
    assert increment.fetched == len(clean)
    assert increment.metadata()["rows_rejected"] == len(rejects)


def test_a_number_where_rest_says_text_is_rejected(settings: Settings, org) -> None:
    spec = with_options(settings.object("Account"), **APIS["rest"])
    put_faults(org, {"seed": 3, "faults": [{"kind": "malformed", "field": "Industry", "every": 5}]})
    increment = extract_increment(client_for(org), None, spec, **RUN)
    assert increment.rejects.num_rows and set(increment.rejects.column("field").to_pylist()) == {
        "Industry"
    }


@pytest.mark.parametrize("api", list(APIS))
def test_a_malformed_cursor_fails_the_run_with_the_record(
    settings: Settings, org, api: str
) -> None:
    put_faults(
        org, {"seed": 3, "faults": [{"kind": "malformed", "field": "SystemModstamp", "every": 9}]}
    )
    spec = with_options(settings.object("Account"), **APIS[api])
    with pytest.raises(
        CursorValueError, match=r"Account record 001\w+ has an unreadable SystemModstamp"
    ):
        extract_increment(client_for(org), None, spec, **RUN)


def test_login_faults_are_retried_also_when_logging_in_again(
    settings: Settings, org, baseline
) -> None:
    put_faults(
        org,
        {
            "seed": 2,
            "faults": [
                {"kind": "http_503", "body": "html", "path": "/services/Soap", "every": 2},
                {"kind": "session_expired", "every": 3},
            ],
        },
    )
    spec = with_options(settings.object(OBJECT), **APIS["rest"])
    increment = extract_increment(client_for(org), None, spec, **RUN)
    assert record_rows(increment) == baseline["rest"]
    assert increment.stats["relogins"] >= 1 and increment.stats["retries"] >= 1
    assert org.fault_report()["injected"]["http_503"] >= 1


def test_bad_credentials_are_never_retried(org, monkeypatch: pytest.MonkeyPatch) -> None:
    import sf_lakehouse.salesforce.client as client_module

    attempts: list[int] = []
    original = client_module._login

    def counting(*args: Any) -> Any:
        attempts.append(1)
        return original(*args)

    monkeypatch.setattr(client_module, "_login", counting)
    values = {**settings_from_environment(org.env_vars()), "password": "wrong-password-value"}
    with pytest.raises(
        Exception, match=r"login \(password\) failed .*INVALID_LOGIN.*check the"
    ) as failed:
        connect(ConnectionSettings(**values, policy=ClientPolicy(**POLICY)))
    assert attempts == [1]
    assert "wrong-password-value" not in str(failed.value)
