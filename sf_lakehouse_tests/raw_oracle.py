"""What a raw table must hold, derived from the emulator's history and the org's describe, never
from the pipeline's own output: each version visible at some run, every field typed as the
org's describe types it (the tests' own reading of the raw data contract: lower-cased API names;
string, boolean, timestamp in UTC without zone, date, double, long). A conversion bug (a lost
4-byte character, a shifted timestamp, a number read as text) fails the comparison."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
from simple_salesforce import Salesforce

from sf_lakehouse.emulator import SalesforceEmulator
from sf_lakehouse.emulator.testing import redirecting_session
from sf_lakehouse_tests.histories import record_type

READ_COLUMNS = ("_extracted_at", "_run_id")
# The raw contract's column type per describe type (anything else is text).
COLUMN_TYPES = {
    "boolean": pa.bool_(),
    "datetime": pa.timestamp("us"),
    "date": pa.date32(),
    "double": pa.float64(),
    "currency": pa.float64(),
    "percent": pa.float64(),
    "int": pa.int64(),
    "long": pa.int64(),
}


def describe_types(emulator: SalesforceEmulator, api_name: str) -> dict[str, str]:
    """Lower-cased field name -> the type the org's describe gives it (over HTTPS)."""
    creds = emulator.credentials
    sf = Salesforce(
        username=creds.username,
        password=creds.password,
        security_token=creds.security_token,
        session=redirecting_session(emulator.base_url, emulator.ca_bundle),
        version=emulator.api_version,
    )
    described = getattr(sf, api_name).describe()
    return {field["name"].lower(): field["type"] for field in described["fields"]}


def stamp_of(text: str) -> dt.datetime:
    """`2026-03-01T08:00:00.000+0000` as naive UTC."""
    moment = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def typed(sf_type: str, value: Any) -> Any:
    if value is None:
        return None
    if sf_type == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if sf_type == "datetime":
        return stamp_of(value)
    if sf_type == "date":
        return dt.date.fromisoformat(value)
    if sf_type in ("double", "currency", "percent"):
        return float(value)
    if sf_type in ("int", "long"):
        return int(value)
    return str(value)


def visible_versions(
    history: Iterable[dict], clocks: Iterable[dt.datetime], api_name: str
) -> dict[tuple[str, dt.datetime], dict]:
    """(id, systemmodstamp) -> the history's version, for each version that was a record's
    latest visible one at some clock (what runs at those clocks read)."""
    versions = [v for v in history if record_type(v) == api_name]
    seen: dict[tuple[str, dt.datetime], dict] = {}
    for clock in clocks:
        now = clock.astimezone(dt.UTC).replace(tzinfo=None)
        latest: dict[str, dict] = {}
        for version in versions:
            stamp = stamp_of(version["SystemModstamp"])
            kept = latest.get(version["Id"])
            if stamp <= now and (kept is None or stamp > stamp_of(kept["SystemModstamp"])):
                latest[version["Id"]] = version
        for version in latest.values():
            seen[(version["Id"], stamp_of(version["SystemModstamp"]))] = version
    return seen


def expected_raw_row(version: dict, types: dict[str, str], columns: Iterable[str]) -> dict:
    """The raw row of a history version: every column typed from the describe."""
    by_column = {name.lower(): value for name, value in version.items() if name != "attributes"}
    return {c: typed(types[c], by_column.get(c)) for c in columns}


def assert_raw_table_holds_the_history(
    raw: pa.Table,
    history: list[dict],
    clocks: list[dt.datetime],
    api_name: str,
    types: dict[str, str],
    fields: Iterable[str],
) -> list[dict]:
    """Raw table == the versions visible at the clocks, every column equal and typed as the
    describe says; `fields` (the spec's, lower-cased) must all be columns. Returns the expected
    rows (with the raw table's read columns, for the SCD2 reference)."""
    columns = [c for c in raw.column_names if c not in READ_COLUMNS]
    assert set(fields) <= set(columns), sorted(set(fields) - set(columns))
    for column in columns:
        wanted = COLUMN_TYPES.get(types[column], pa.string())
        found = raw.schema.field(column).type
        if pa.types.is_large_string(found):  # pyiceberg reads Iceberg strings as large_string
            found = pa.string()
        assert found == wanted, (api_name, column, str(found), str(wanted))
    expected = visible_versions(history, clocks, api_name)
    stored = raw.to_pylist()
    keys = [(r["id"], r["systemmodstamp"]) for r in stored]
    assert len(keys) == len(set(keys)), f"{api_name}: a version stored twice"
    assert set(keys) == set(expected), api_name
    rows = []
    for row in stored:
        version = expected[(row["id"], row["systemmodstamp"])]
        wanted_row = expected_raw_row(version, types, columns)
        assert {c: row[c] for c in columns} == wanted_row, (api_name, row["id"])
        rows.append(wanted_row | {c: row[c] for c in READ_COLUMNS})
    return rows
