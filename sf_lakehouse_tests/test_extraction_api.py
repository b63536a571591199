"""REST and Bulk API 2.0 extraction against the real emulator (HTTPS): the API chosen by the
estimate and the threshold, identical raw rows either way (deletions included), Bulk pages
converted one at a time, the run's metadata, re-login and restart in the middle of paging, the
quota guard, rejects, and the watermark that never passes the org's clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

import sf_lakehouse.extraction.increment as increment_module
from sf_lakehouse.config import ObjectSpec, Settings
from sf_lakehouse.emulator import generate_org
from sf_lakehouse.extraction import (
    ConversionError,
    CursorValueError,
    Increment,
    extract_increment,
    recorded_changes,
    rejects_identifier,
    store_increment,
    write_rejects,
)
from sf_lakehouse.extraction.increment import _check_placeable
from sf_lakehouse.lakehouse.tables import (
    RAW_LAYOUT,
    append_rows,
    ensure_table,
    load_table_or_none,
    open_catalog,
)
from sf_lakehouse.salesforce.client import (
    ClientPolicy,
    ConnectionSettings,
    SalesforceClient,
    connect,
    settings_from_environment,
)
from sf_lakehouse.salesforce.convert import records_to_converted
from sf_lakehouse.salesforce.errors import ApiQuotaExceeded
from sf_lakehouse.salesforce.types import FieldSpec
from sf_lakehouse_tests.histories import BASE, account, sf_datetime

START = dt.datetime(2026, 3, 1, 8, tzinfo=dt.UTC)
END = START + dt.timedelta(days=6)
RUN = {"run_id": "run-1", "extracted_at": dt.datetime(2026, 3, 8, tzinfo=dt.UTC)}


def client_for(emulator: Any, **policy: Any) -> SalesforceClient:
    values = settings_from_environment(emulator.env_vars())
    fast = {"retry_base_seconds": 0.01, "retry_max_seconds": 0.05, **policy}
    return connect(ConnectionSettings(**values, policy=ClientPolicy(**fast)))


def with_options(spec: ObjectSpec, **extraction: Any) -> ObjectSpec:
    data = spec.model_dump()
    data["extraction"] = {**data["extraction"], **extraction}
    return ObjectSpec.model_validate(data)


def record_rows(increment: Increment) -> list[dict[str, Any]]:
    rows = increment.rows.drop_columns(["_extracted_at", "_run_id"]).to_pylist()
    return sorted(rows, key=lambda r: (r["id"], r["systemmodstamp"]))


@pytest.fixture(scope="module")
def org_history() -> list[dict]:
    return generate_org(users=650, seed=3, start=START, days=6)


@pytest.fixture
def org(emulator_factory, org_history):
    return emulator_factory(org_history, now=END)


@pytest.mark.parametrize("object_name", ["User", "Account"])
def test_bulk_and_rest_read_the_same_raw_rows(settings: Settings, org, object_name: str) -> None:
    spec = settings.object(object_name)
    rest = extract_increment(
        client_for(org), None, with_options(spec, api="rest", page_size=200), **RUN
    )
    bulk = extract_increment(
        client_for(org), None, with_options(spec, api="bulk", bulk_page_size=100), **RUN
    )
    assert rest.api == f"rest_{'queryAll' if spec.deletions else 'query'}"
    assert bulk.api == f"bulk_{'queryAll' if spec.deletions else 'query'}"
    assert rest.rows.schema.equals(bulk.rows.schema)
    assert record_rows(rest) == record_rows(bulk)
    assert rest.fetched == bulk.fetched == rest.appended >= 50
    if spec.deletions:  # queryAll: deleted records come with IsDeleted true, over both APIs
        assert any(r["isdeleted"] for r in record_rows(bulk))
    assert bulk.stats["bulk_jobs"] and not rest.stats["bulk_jobs"]


def test_the_estimate_and_the_threshold_choose_the_api(settings: Settings, org) -> None:
    spec = settings.object("User")
    client = client_for(org)
    count = client.count("SELECT COUNT() FROM User")
    above = extract_increment(client, None, with_options(spec, bulk_threshold=count + 1), **RUN)
    assert above.api == "rest_query" and above.estimate == count == above.fetched
    at = extract_increment(client, None, with_options(spec, bulk_threshold=count), **RUN)
    assert at.api == "bulk_query" and at.estimate == count == at.fetched
    always = extract_increment(client, None, with_options(spec, bulk_threshold=0), **RUN)
    assert always.api == "bulk_query" and always.estimate is None  # no COUNT() needed
    forced = extract_increment(
        client, None, with_options(spec, api="rest", bulk_threshold=0), **RUN
    )
    assert forced.api == "rest_query" and forced.estimate is None


def test_bulk_results_arrive_as_several_bounded_batches(
    settings: Settings, org, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    original = increment_module.csv_to_arrow

    def counting(data: bytes, fields: Any) -> Any:
        converted = original(data, fields)
        sizes.append(converted.records)
        return converted

    monkeypatch.setattr(increment_module, "csv_to_arrow", counting)
    spec = with_options(settings.object("User"), api="bulk", bulk_page_size=100)
    increment = extract_increment(client_for(org), None, spec, **RUN)
    assert len(sizes) == increment.pages >= 2 and max(sizes) <= 100
    assert sum(sizes) == increment.fetched
    metadata = increment.metadata({"used": 1, "limit": 2})
    assert metadata["api"] == "bulk_query" and metadata["pages"] == len(sizes)
    assert metadata["rows_extracted"] == increment.fetched and metadata["bytes"] > 0
    assert metadata["rows_rejected"] == 0 and len(metadata["bulk_jobs"]) == 1
    assert metadata["server_time"] is not None and metadata["retries"] == 0


def test_rest_metadata_counts_pages_calls_and_bytes(settings: Settings, org) -> None:
    spec = with_options(settings.object("User"), api="rest", page_size=200)
    client = client_for(org)
    increment = extract_increment(client, None, spec, **RUN)
    metadata = increment.metadata(client.api_usage)
    pages = -(-increment.fetched // 200)
    assert metadata["pages"] == pages and metadata["api"] == "rest_query"
    assert metadata["api_calls"] == 1 + pages  # describe + pages (no COUNT() when forced)
    assert metadata["bytes"] > 200 * increment.fetched
    assert metadata["org_api_usage"] == org.api_calls and metadata["org_api_limit"] == 15000
    assert metadata["relogins"] == metadata["retries"] == metadata["query_restarts"] == 0


def test_a_second_run_over_bulk_appends_only_new_versions(
    settings: Settings, emulator_factory, org_history
) -> None:
    emulator = emulator_factory(org_history, now=START + dt.timedelta(days=3))
    spec = with_options(settings.object("Account"), bulk_threshold=0, bulk_page_size=100)
    catalog = open_catalog(settings.catalog_properties())
    identifier = settings.table_identifier(spec.raw_asset_key)
    first = extract_increment(client_for(emulator), None, spec, **RUN)
    table = ensure_table(catalog, identifier, first.rows.schema, RAW_LAYOUT)
    append_rows(table, first.rows)
    emulator.set_clock(END)
    second = extract_increment(client_for(emulator), catalog.load_table(identifier), spec, **RUN)
    assert second.since == first.watermark_after - dt.timedelta(seconds=spec.lookback_seconds)
    everything = extract_increment(client_for(emulator), None, spec, **RUN)
    stored = {(r["id"], r["systemmodstamp"]) for r in first.rows.to_pylist()}
    expected = [r for r in record_rows(everything) if (r["id"], r["systemmodstamp"]) not in stored]
    assert record_rows(second) == expected and second.appended > 0


def test_an_expired_session_in_the_middle_of_paging_logs_in_again(
    settings: Settings, org, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = with_options(settings.object("User"), api="rest", page_size=200)
    expected = record_rows(extract_increment(client_for(org), None, spec, **RUN))
    original = increment_module.records_to_converted

    def expire_after_each_page(records: Any, fields: Any) -> Any:
        org.expire_sessions()
        return original(records, fields)

    monkeypatch.setattr(increment_module, "records_to_converted", expire_after_each_page)
    increment = extract_increment(client_for(org), None, spec, **RUN)
    assert record_rows(increment) == expected
    assert increment.stats["relogins"] == increment.pages - 1 >= 1
    assert increment.metadata()["relogins"] == increment.pages - 1
    assert org.soap_logins >= increment.pages + 1


def test_an_expired_session_between_bulk_pages_logs_in_again(
    settings: Settings, org, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = with_options(settings.object("Account"), api="bulk", bulk_page_size=100)
    expected = record_rows(extract_increment(client_for(org), None, spec, **RUN))
    original = increment_module.csv_to_arrow

    def expire(data: bytes, fields: Any) -> Any:
        org.expire_sessions()
        return original(data, fields)

    monkeypatch.setattr(increment_module, "csv_to_arrow", expire)
    increment = extract_increment(client_for(org), None, spec, **RUN)
    assert record_rows(increment) == expected and increment.stats["relogins"] >= 1


def test_a_lost_query_locator_restarts_the_query_without_duplicates(
    settings: Settings, org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The emulator keeps 50 open cursors per user; opening more closes ours, like Salesforce."""
    spec = with_options(settings.object("User"), api="rest", page_size=200)
    expected = record_rows(extract_increment(client_for(org), None, spec, **RUN))
    other = client_for(org)
    original = increment_module.records_to_converted
    evicted: list[int] = []

    def evict_once(records: Any, fields: Any) -> Any:
        if not evicted:
            evicted.append(1)
            for _ in range(51):
                next(other.query_pages("SELECT Id FROM User", 200))
        return original(records, fields)

    monkeypatch.setattr(increment_module, "records_to_converted", evict_once)
    increment = extract_increment(client_for(org), None, spec, **RUN)
    assert increment.stats["query_restarts"] == 1
    assert record_rows(increment) == expected  # the re-read page is not appended twice
    assert increment.fetched > len(expected)


def test_the_quota_guard_stops_before_the_share_and_nothing_is_appended(
    settings: Settings, emulator_factory, org_history
) -> None:
    emulator = emulator_factory(org_history, now=END, daily_api_limit=20)
    catalog = open_catalog(settings.catalog_properties())
    spec = with_options(settings.object("User"), api="rest", page_size=200)
    identifier = settings.table_identifier(spec.raw_asset_key)
    client = client_for(emulator, max_api_usage_share=0.5)
    with pytest.raises(ApiQuotaExceeded) as stopped:
        for _ in range(20):
            increment = extract_increment(
                client, load_table_or_none(catalog, identifier), spec, **RUN
            )
            table = ensure_table(catalog, identifier, increment.rows.schema, RAW_LAYOUT)
            append_rows(table, increment.rows)
    assert emulator.api_calls <= 10  # never past half of the daily limit
    assert "max_api_usage_share=0.5" in str(stopped.value)
    assert "nothing was appended and the watermark is unchanged" in str(stopped.value)
    assert stopped.value.used <= 10 and stopped.value.limit == 20


def test_values_of_the_wrong_type_become_rejects_or_fail_the_run(
    settings: Settings, emulator_factory
) -> None:
    owner = "005000000000000AAA"
    history = [
        account("001000000000001AAA", 1, "Customer", owner, NumberOfEmployees=12),
        account("001000000000002AAA", 2, "Customer", owner, NumberOfEmployees="24 FTE"),
        account("001000000000003AAA", 3, "Partner", owner, NumberOfEmployees=7),
    ]
    emulator = emulator_factory(history, now=BASE + dt.timedelta(hours=1))
    spec = with_options(settings.object("Account"), api="rest")
    spec = ObjectSpec.model_validate(
        {**spec.model_dump(), "fields": [*spec.fields, "NumberOfEmployees"]}
    )
    for api in ("rest", "bulk"):
        increment = extract_increment(
            client_for(emulator), None, with_options(spec, api=api), **RUN
        )
        # The value is set aside, never the version: 002 is stored with the column NULL.
        stored = {r["id"]: r["numberofemployees"] for r in increment.rows.to_pylist()}
        assert stored == {
            "001000000000001AAA": 12,
            "001000000000002AAA": None,
            "001000000000003AAA": 7,
        }
        [reject] = increment.rejects.to_pylist()
        assert reject["id"] == "001000000000002AAA" and reject["field"] == "NumberOfEmployees"
        assert reject["value"] == "24 FTE" and reject["_run_id"] == "run-1"
        assert "NumberOfEmployees" in reject["reason"] and "re-extract" in reject["reason"]
        assert reject["systemmodstamp"] == (BASE + dt.timedelta(minutes=2)).replace(tzinfo=None)
        assert increment.metadata()["rows_rejected"] == 1
    catalog = open_catalog(settings.catalog_properties())
    identifier = rejects_identifier(settings.raw_database, spec)
    assert identifier == "sf_raw_local.sf_account_rejects"
    assert write_rejects(catalog, identifier, increment.rejects) == 1
    stored = catalog.load_table(identifier).scan().to_arrow()
    assert stored.column_names == [
        "id",
        "field",
        "value",
        "reason",
        "systemmodstamp",
        "_extracted_at",
        "_run_id",
    ]
    with pytest.raises(ConversionError) as failed:
        extract_increment(
            client_for(emulator), None, with_options(spec, on_conversion_error="fail"), **RUN
        )
    message = str(failed.value)
    assert "001000000000002AAA" in message and "NumberOfEmployees" in message
    assert "'24 FTE'" in message and "\n" not in message


@pytest.mark.parametrize("policy", ["widen", "new_column"])
def test_a_number_field_made_text_loses_no_version(
    settings: Settings, emulator_factory, policy: str
) -> None:
    """Headcount__c is a number in the org at the first run, text at the second (the same
    records, served by an org whose describe now says string). Regression (issue 16): the text
    values were rejected and their versions never stored. Now `widen` makes the column text
    (the stored 12.0 kept as "12"), `new_column` opens headcount__c__text; the change is
    recorded in the raw table until acknowledged."""
    owner = "005000000000000AAA"
    before = [account("001000000000001AAA", 1, "Customer", owner, Headcount__c=12.0)]
    after = [
        *before,
        account("001000000000001AAA", 90, "Customer", owner, Headcount__c="24 FTE"),
        account("001000000000002AAA", 91, "Partner", owner, Headcount__c="30"),
    ]
    spec = ObjectSpec.model_validate(
        {**settings.object("Account").model_dump(), "extraction": {"on_type_change": policy}}
    )
    catalog = open_catalog(settings.catalog_properties())
    identifier = settings.table_identifier(spec.raw_asset_key)
    first_org = emulator_factory(before, now=BASE + dt.timedelta(hours=3))
    first = extract_increment(client_for(first_org), None, spec, **RUN)
    assert first.rows.schema.field("headcount__c").type == pa.float64()
    store_increment(catalog, identifier, settings.raw_database, spec, first)
    second_org = emulator_factory(after, now=BASE + dt.timedelta(hours=3))
    run2 = {**RUN, "run_id": "run-2"}
    second = extract_increment(client_for(second_org), catalog.load_table(identifier), spec, **run2)
    assert second.rejected == 0
    [change] = second.type_changes
    assert (change.field, change.old_type, change.new_type) == ("Headcount__c", "number", "text")
    assert "acknowledge-type-change --object Account --field Headcount__c" in change.describe()
    assert store_increment(catalog, identifier, settings.raw_database, spec, second).appended == 2
    table = catalog.load_table(identifier)
    rows = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["systemmodstamp"])
    if policy == "widen":
        assert str(table.schema().find_field("headcount__c").field_type) == "string"
        assert [r["headcount__c"] for r in rows] == ["12", "24 FTE", "30"]
    else:
        assert str(table.schema().find_field("headcount__c").field_type) == "double"
        assert [r["headcount__c"] for r in rows] == [12.0, None, None]
        assert [r["headcount__c__text"] for r in rows] == [None, "24 FTE", "30"]
    [recorded] = recorded_changes(table)
    assert recorded.acknowledged_at is None and recorded.run_id == "run-2"
    # The next run finds the column as the org types it: no second change, nothing set aside.
    third = extract_increment(client_for(second_org), table, spec, **RUN)
    assert third.type_changes == () and third.rejected == 0


def test_a_record_without_a_readable_cursor_fails_the_run_with_its_id() -> None:
    fields = [
        FieldSpec("Id", "id"),
        FieldSpec("SystemModstamp", "datetime"),
        FieldSpec("LastModifiedDate", "datetime"),
    ]
    spec = ObjectSpec(
        api_name="User", id_prefix="005", track=("Division",), cursor="LastModifiedDate"
    )
    good = {
        "Id": "005A",
        "SystemModstamp": "2026-03-01T08:00:00.000+0000",
        "LastModifiedDate": "2026-03-01T08:00:00.000+0000",
    }
    _check_placeable(records_to_converted([good], fields), spec)
    for bad, words in [
        ({**good, "Id": "005B", "LastModifiedDate": None}, "005B has no lastmodifieddate"),
        (
            {**good, "Id": "005C", "LastModifiedDate": "yesterday"},
            "005C has an unreadable LastModifiedDate 'yesterday'",
        ),
        ({**good, "Id": "005D", "SystemModstamp": "soon"}, "005D has an unreadable SystemModstamp"),
    ]:
        with pytest.raises(CursorValueError, match=words):
            _check_placeable(records_to_converted([good, bad], fields), spec)


def test_the_watermark_never_passes_the_org_clock(settings: Settings, emulator_factory) -> None:
    """The org's clock is the HTTP Date of its answers; a record stamped later (clock skew)
    does not move the watermark past it."""
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    owner = "005000000000000AAA"
    history = [account("001000000000001AAA", future, "Customer", owner)]
    emulator = emulator_factory(history, now=future + dt.timedelta(seconds=1))
    increment = extract_increment(client_for(emulator), None, settings.object("Account"), **RUN)
    assert increment.fetched == 1 and increment.server_time is not None
    assert increment.watermark_after is not None
    assert increment.watermark_after <= increment.server_time
    assert sf_datetime(future)  # the record's own stamp is in the future of the wall clock
