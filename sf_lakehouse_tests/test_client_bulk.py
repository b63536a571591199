"""Bulk API 2.0 query jobs: failed and stuck jobs end with an error that names the job and the
fix (the stuck one is aborted), and result pages are parsed into Arrow with the describe types,
a page at a time (CSV as Salesforce writes it: quoted, empty for null, true/false, `Z` times)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from sf_lakehouse.salesforce.bulk import BulkQuery
from sf_lakehouse.salesforce.convert import REJECT_SCHEMA, csv_to_arrow, records_to_converted
from sf_lakehouse.salesforce.errors import BulkJobError
from sf_lakehouse.salesforce.types import FieldSpec


class FakeBulk2:
    """simple-salesforce's _Bulk2Client, as far as BulkQuery uses it."""

    def __init__(self, states: list[dict[str, Any]]) -> None:
        self.states = states
        self.aborted: list[str] = []
        self.result_calls = 0

    def create_job(self, operation: Any, query: str) -> dict[str, Any]:
        return {"id": "750000000000001AAA", "state": "UploadComplete"}

    def get_job(self, job_id: str, is_query: bool) -> dict[str, Any]:
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]

    def abort_job(self, job_id: str, is_query: bool) -> dict[str, Any]:
        self.aborted.append(job_id)
        return {"state": "Aborted"}

    def get_query_results(self, job_id: str, locator: str, max_records: int) -> dict[str, Any]:
        self.result_calls += 1
        pages = {"": ("p2", '"Id"\n"a"\n'), "p2": ("", '"Id"\n"b"\n')}
        next_locator, body = pages[locator]
        return {"locator": next_locator, "number_of_records": 1, "records": body}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def bulk_query(fake: FakeBulk2, clock: FakeClock, max_wait: float = 60) -> BulkQuery:
    return BulkQuery(
        lambda what, fn: fn(),
        lambda: fake,  # type: ignore[arg-type, return-value]
        object_name="Account",
        poll_seconds=5,
        max_wait_seconds=max_wait,
        sleep=clock.sleep,
        clock=clock,
    )


def test_a_job_that_stays_in_progress_is_aborted_with_a_clear_error() -> None:
    fake, clock = FakeBulk2([{"state": "InProgress"}]), FakeClock()
    with pytest.raises(BulkJobError) as failed:
        list(
            bulk_query(fake, clock).pages(
                "SELECT Id FROM Account", include_deleted=True, page_size=100
            )
        )
    message = str(failed.value)
    assert failed.value.job_id == "750000000000001AAA" and fake.aborted == ["750000000000001AAA"]
    assert "750000000000001AAA (Account) is still InProgress after 60s" in message
    assert "bulk_max_wait_seconds" in message and "extraction.api: rest" in message
    assert max(clock.sleeps) <= 5  # polls at most bulk_poll_seconds apart
    assert clock.now <= 60 + 5


@pytest.mark.parametrize("state", ["Failed", "Aborted"])
def test_a_failed_job_names_the_job_and_salesforce_s_reason(state: str) -> None:
    fake = FakeBulk2([{"state": "InProgress"}, {"state": state, "errorMessage": "QUERY_TIMEOUT"}])
    with pytest.raises(
        BulkJobError, match=f"750000000000001AAA \\(Account\\) is {state}: QUERY_TIMEOUT"
    ):
        list(
            bulk_query(fake, FakeClock()).pages(
                "SELECT Id FROM Account", include_deleted=False, page_size=100
            )
        )
    assert fake.result_calls == 0 and fake.aborted == []


def test_result_pages_follow_the_locator_one_page_at_a_time() -> None:
    fake = FakeBulk2([{"state": "JobComplete"}])
    pages = bulk_query(fake, FakeClock()).pages(
        "SELECT Id FROM Account", include_deleted=False, page_size=1
    )
    first = next(pages)
    assert fake.result_calls == 1 and first.data == b'"Id"\n"a"\n' and first.number == 1
    assert [p.data for p in pages] == [b'"Id"\n"b"\n'] and fake.result_calls == 2


FIELDS = [
    FieldSpec("Id", "id"),
    FieldSpec("Name", "string"),
    FieldSpec("IsActive", "boolean"),
    FieldSpec("SystemModstamp", "datetime"),
    FieldSpec("Hire_Date__c", "date", True),
    FieldSpec("Score__c", "double", True),
    FieldSpec("Seats__c", "int", True),
]
CSV = (
    b'"Id","Name","IsActive","SystemModstamp","Hire_Date__c","Score__c","Seats__c"\n'
    b'"005A","O\'Neil, ""Chlo\xc3\xa9""","true","2026-03-01T08:00:00.000Z","2026-02-01","1.5","3"\n'
    b'"005B","line one\nline two","false","2026-03-01T08:00:00.123+0000",,"",""\n'
    b'"005C",,,"2026-03-01T09:30:00.000Z","","-2E3","-7"\n'
)


def test_bulk_csv_converts_with_the_describe_types() -> None:
    converted = csv_to_arrow(CSV, FIELDS)
    assert converted.rejects.num_rows == 0 and converted.records == 3
    assert converted.rows.schema.types == [
        pa.string(),
        pa.string(),
        pa.bool_(),
        pa.timestamp("us"),
        pa.date32(),
        pa.float64(),
        pa.int64(),
    ]
    assert converted.rows.to_pylist() == [
        {
            "id": "005A",
            "name": 'O\'Neil, "Chloé"',
            "isactive": True,
            "systemmodstamp": dt.datetime(2026, 3, 1, 8),
            "hire_date__c": dt.date(2026, 2, 1),
            "score__c": 1.5,
            "seats__c": 3,
        },
        {
            "id": "005B",
            "name": "line one\nline two",
            "isactive": False,
            "systemmodstamp": dt.datetime(2026, 3, 1, 8, 0, 0, 123000),
            "hire_date__c": None,
            "score__c": None,
            "seats__c": None,
        },
        {
            "id": "005C",
            "name": None,
            "isactive": None,
            "systemmodstamp": dt.datetime(2026, 3, 1, 9, 30),
            "hire_date__c": None,
            "score__c": -2000.0,
            "seats__c": -7,
        },
    ]


def test_bulk_and_rest_pages_give_the_same_rows() -> None:
    rest = [
        {
            "Id": "005A",
            "Name": 'O\'Neil, "Chloé"',
            "IsActive": True,
            "SystemModstamp": "2026-03-01T08:00:00.000+0000",
            "Hire_Date__c": "2026-02-01",
            "Score__c": 1.5,
            "Seats__c": 3,
        },
        {
            "Id": "005B",
            "Name": "line one\nline two",
            "IsActive": False,
            "SystemModstamp": "2026-03-01T08:00:00.123+0000",
            "Hire_Date__c": None,
            "Score__c": None,
            "Seats__c": None,
        },
        {
            "Id": "005C",
            "Name": None,
            "IsActive": None,
            "SystemModstamp": "2026-03-01T09:30:00.000+0000",
            "Hire_Date__c": None,
            "Score__c": -2000.0,
            "Seats__c": -7,
        },
    ]
    assert records_to_converted(rest, FIELDS).rows.equals(csv_to_arrow(CSV, FIELDS).rows)


def test_a_value_of_the_wrong_type_is_set_aside_never_its_record() -> None:
    """Regression (issue 16): a record with one bad value left the rows whole; now only the
    value is set aside (NULL in its column, text in the rejects)."""
    bad = CSV.replace(b'"1.5"', b'"24 FTE"').replace(b'"-7"', b'"seven"')
    converted = csv_to_arrow(bad, FIELDS)
    rows = {r["id"]: r for r in converted.rows.to_pylist()}
    assert list(rows) == ["005A", "005B", "005C"]
    assert rows["005A"]["score__c"] is None and rows["005A"]["name"] is not None
    assert rows["005C"]["seats__c"] is None
    rejects = converted.rejects
    assert rejects.schema.equals(REJECT_SCHEMA)
    by_field = {r["field"]: r for r in rejects.to_pylist()}
    assert by_field["Score__c"]["id"] == "005A" and by_field["Score__c"]["value"] == "24 FTE"
    assert by_field["Score__c"]["systemmodstamp"] == dt.datetime(2026, 3, 1, 8)
    assert by_field["Seats__c"]["id"] == "005C" and by_field["Seats__c"]["value"] == "seven"
    reason = by_field["Score__c"]["reason"]
    assert "Score__c" in reason and "stored with score__c NULL" in reason
    assert "re-extract" in reason


def test_a_widened_column_takes_numbers_as_text() -> None:
    """A column widened to text (the org made the field a number again) keeps every value."""
    widened = FieldSpec("Score__c", "double", True, column_type=pa.string())
    converted = records_to_converted([{"Score__c": 12.5}, {"Score__c": "24 FTE"}], [widened])
    assert converted.rows.column("score__c").to_pylist() == ["12.5", "24 FTE"]
    assert converted.rejects.num_rows == 0


def test_a_new_column_takes_the_values_of_a_changed_field() -> None:
    moved = FieldSpec("Score__c", "string", True, column_name="score__c__text")
    csv = b'"Score__c"\n"24 FTE"\n'
    for converted in (
        records_to_converted([{"Score__c": "24 FTE"}], [moved]),
        csv_to_arrow(csv, [moved]),
    ):
        assert converted.rows.column_names == ["score__c__text"]
        assert converted.rows.column("score__c__text").to_pylist() == ["24 FTE"]
