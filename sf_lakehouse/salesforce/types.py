"""Salesforce field types as Arrow types, and records converted with them (no Dagster)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

# Salesforce field types -> Arrow. Anything not listed (string, picklist, reference, id, email,
# textarea, ...) is text; compound fields (address, location) are never extracted.
ARROW_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "datetime": pa.timestamp("us"),
    "date": pa.date32(),
    "double": pa.float64(),
    "currency": pa.float64(),
    "percent": pa.float64(),
    "int": pa.int64(),
    "long": pa.int64(),
}
COMPOUND_TYPES = frozenset({"address", "location"})


class SalesforceConfigError(ValueError):
    """Salesforce settings are incomplete or wrong; the message says which and how to fix."""


def arrow_type(sf_type: str) -> pa.DataType:
    return ARROW_TYPES.get(sf_type, pa.string())


@dataclass(frozen=True)
class FieldSpec:
    """One extracted field: its Salesforce API name, Salesforce type and whether it is custom.
    `column_type` is the raw table's type of its column when that differs from what describe
    says now (the field's type changed in the org and the column was widened); `column_name`
    the raw column when it is not the lower-cased API name (the new column a type change
    opened, `score__c__text`)."""

    name: str
    sf_type: str
    custom: bool = False
    column_type: pa.DataType | None = None
    column_name: str | None = None

    @property
    def column(self) -> str:
        """The raw column the values go to."""
        return self.column_name or self.name.lower()

    @property
    def source_column(self) -> str:
        """The lower-cased API name, as Salesforce's records and CSV headers name the field."""
        return self.name.lower()

    @property
    def arrow_type(self) -> pa.DataType:
        return self.column_type if self.column_type is not None else arrow_type(self.sf_type)


def parse_sf_datetime(value: str) -> dt.datetime:
    """Salesforce datetimes (`2026-03-01T08:00:00.000+0000`) as naive UTC, microsecond precision."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def format_soql_datetime(value: dt.datetime) -> str:
    """A SOQL datetime literal (UTC, unquoted)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _convert(value: Any, spec: FieldSpec) -> Any:
    if value is None:
        return None
    if spec.sf_type == "datetime":
        return parse_sf_datetime(value)
    if spec.sf_type == "date":
        return dt.date.fromisoformat(value)
    if spec.sf_type in ("double", "currency", "percent"):
        return float(value)
    if spec.sf_type in ("int", "long"):
        return int(value)
    if spec.sf_type == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if isinstance(value, dict | list):
        return repr(value)
    return str(value)


def arrow_schema(fields: Sequence[FieldSpec]) -> pa.Schema:
    return pa.schema([pa.field(f.column, f.arrow_type, nullable=True) for f in fields])


def records_to_arrow(records: Iterable[dict[str, Any]], fields: Sequence[FieldSpec]) -> pa.Table:
    """Typed Arrow table with lower-cased column names from Salesforce REST records."""
    columns: dict[str, list[Any]] = {f.column: [] for f in fields}
    for record in records:
        for spec in fields:
            columns[spec.column].append(_convert(record.get(spec.name), spec))
    return pa.Table.from_pydict(columns, schema=arrow_schema(fields))


def select_fields(
    described: Sequence[dict[str, Any]], configured: Sequence[str], object_name: str
) -> list[FieldSpec]:
    """Configured fields plus every custom field of the object, typed from describe()."""
    by_name = {f["name"].lower(): f for f in described}
    missing = [name for name in configured if name.lower() not in by_name]
    if missing:
        raise SalesforceConfigError(
            f"{object_name} has no field(s) {', '.join(missing)} in this org; add them to the org "
            f"or remove them from config/objects/ (the {object_name} spec)"
        )
    chosen = [by_name[name.lower()] for name in configured]
    chosen_names = {f["name"] for f in chosen}
    chosen += [
        f
        for f in described
        if f.get("custom") and f["name"] not in chosen_names and f.get("type") not in COMPOUND_TYPES
    ]
    return [FieldSpec(f["name"], f.get("type", "string"), bool(f.get("custom"))) for f in chosen]
