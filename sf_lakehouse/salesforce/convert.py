"""Salesforce pages as typed Arrow, and the values that do not convert as rejects.

Bulk API 2.0 CSV pages are parsed by pyarrow.csv with explicit column types (no Python object per
record); REST pages (JSON records) become string columns first. Either way each column is then
held to its type; a value that does not convert never raises a bare `ArrowInvalid` and is never
dropped in silence: it is set aside, NULL in its column, and comes back as one reject per bad
value (record id, field, raw value as text, reason). The record itself is kept: a value must
never cost the version (its other fields, its tracked changes) its place in the history.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sf_lakehouse.redact import shorten
from sf_lakehouse.salesforce.types import FieldSpec, arrow_schema, parse_sf_datetime

UTC_MICROS = pa.timestamp("us", tz="UTC")
REJECT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string()),
        pa.field("field", pa.string()),
        pa.field("value", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("systemmodstamp", pa.timestamp("us")),
    ]
)
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class Converted:
    """One page: every record typed (a value that did not convert is NULL there), the mask of
    records with such a value, and one reject per such value (kept as text)."""

    table: pa.Table
    rejects: pa.Table
    rejected: pa.Array | None = None

    @property
    def records(self) -> int:
        return self.table.num_rows

    @property
    def rows(self) -> pa.Table:
        """Every record: a value that did not convert is set aside (NULL here, text in the
        rejects), never the version."""
        return self.table

    @property
    def rejected_records(self) -> int:
        return 0 if self.rejected is None else int(pc.sum(self.rejected).as_py() or 0)


def _read_type(target: pa.DataType) -> pa.DataType:
    return UTC_MICROS if pa.types.is_timestamp(target) else target


def csv_to_arrow(data: bytes, fields: Sequence[FieldSpec], delimiter: str = ",") -> Converted:
    """A Bulk API 2.0 result page (CSV: header, quoted values, empty for null, `true`/`false`,
    ISO datetimes with `Z` or `+0000`) as typed Arrow."""
    if not data.strip():
        return _empty(fields)
    by_column = {f.source_column: f for f in fields}
    first_line = data[: data.find(b"\n")] if b"\n" in data else data
    header_names = next(csv.reader([first_line.decode("utf-8").rstrip("\r")], delimiter=delimiter))
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    read = pacsv.ReadOptions(use_threads=True, block_size=1 << 24)
    wanted = [n for n in header_names if n.lower() in by_column]

    def options(types: Callable[[FieldSpec], pa.DataType]) -> pacsv.ConvertOptions:
        return pacsv.ConvertOptions(
            column_types={n: types(by_column[n.lower()]) for n in wanted},
            include_columns=wanted,
            true_values=["true"],
            false_values=["false"],
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )

    try:
        typed = pacsv.read_csv(
            io.BytesIO(data),
            read_options=read,
            parse_options=parse,
            convert_options=options(lambda f: _read_type(f.arrow_type)),
        )
    except pa.ArrowInvalid:
        strings = pacsv.read_csv(
            io.BytesIO(data),
            read_options=read,
            parse_options=parse,
            convert_options=options(lambda f: pa.string()),
        )
        return strings_to_arrow(_by_column(strings, fields), fields)
    columns = _by_column(typed, fields)
    arrays = [
        columns[f.column].cast(f.arrow_type)
        if pa.types.is_timestamp(f.arrow_type)
        else columns[f.column]
        for f in fields
    ]
    return Converted(pa.Table.from_arrays(arrays, schema=arrow_schema(fields)), _no_rejects())


def _by_column(table: pa.Table, fields: Sequence[FieldSpec]) -> dict[str, Any]:
    found = {name.lower(): table.column(name) for name in table.column_names}
    missing = pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
    return {f.column: found.get(f.source_column, missing) for f in fields}


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def records_to_converted(
    records: Sequence[dict[str, Any]], fields: Sequence[FieldSpec]
) -> Converted:
    """REST records (parsed JSON) as typed Arrow, through the same checks as Bulk pages; a JSON
    number or boolean where describe says text is rejected too (REST never sends one)."""
    columns: dict[str, Any] = {}
    wrong_json: dict[str, pa.Array] = {}
    for spec in fields:
        values = [r.get(spec.name) for r in records]
        columns[spec.column] = pa.array([_text(v) for v in values], pa.string())
        # A widened column (a field that was a number, now text) takes the number as text.
        if _is_text(spec.arrow_type) and spec.column_type is None:
            flags = [v is not None and not isinstance(v, str) for v in values]
            if any(flags):
                wrong_json[spec.column] = pa.array(flags, pa.bool_())
    return strings_to_arrow(columns, fields, wrong_json)


def _is_text(arrow: pa.DataType) -> bool:
    return pa.types.is_string(arrow) or pa.types.is_large_string(arrow)


def strings_to_arrow(
    columns: dict[str, Any],
    fields: Sequence[FieldSpec],
    known_bad: dict[str, pa.Array] | None = None,
) -> Converted:
    """Text columns (by lower-cased name) held to each field's type; failures (and the values
    in `known_bad`) become rejects."""
    arrays: list[pa.Array] = []
    bad_masks: list[tuple[FieldSpec, pa.Array]] = []
    for spec in fields:
        text = columns[spec.column]
        if isinstance(text, pa.ChunkedArray):
            text = text.combine_chunks()
        typed, bad = convert_column(text, spec.arrow_type)
        extra = (known_bad or {}).get(spec.column)
        if extra is not None:
            bad = extra if bad is None else pc.or_(bad, extra)
        arrays.append(typed)
        if bad is not None:
            bad_masks.append((spec, bad))
    rows = pa.Table.from_arrays(arrays, schema=arrow_schema(fields))
    if not bad_masks:
        return Converted(rows, _no_rejects())
    any_bad = bad_masks[0][1]
    for _, mask in bad_masks[1:]:
        any_bad = pc.or_(any_bad, mask)
    return Converted(rows, _rejects(rows, columns, bad_masks), any_bad)


def _rejects(
    rows: pa.Table, columns: dict[str, Any], bad_masks: list[tuple[FieldSpec, pa.Array]]
) -> pa.Table:
    ids = rows.column("id") if "id" in rows.column_names else pa.nulls(rows.num_rows, pa.string())
    stamps = (
        rows.column("systemmodstamp")
        if "systemmodstamp" in rows.column_names
        and pa.types.is_timestamp(rows.schema.field("systemmodstamp").type)
        else pa.nulls(rows.num_rows, pa.timestamp("us"))
    )
    parts = []
    for spec, mask in bad_masks:
        values = pc.filter(columns[spec.column], mask)
        reasons = [reject_reason(spec, v) for v in values.to_pylist()]
        parts.append(
            pa.table(
                {
                    "id": pc.filter(ids, mask).cast(pa.string()),
                    "field": pa.array([spec.name] * len(values), pa.string()),
                    "value": values.cast(pa.string()),
                    "reason": pa.array(reasons, pa.string()),
                    "systemmodstamp": pc.filter(stamps, mask),
                },
                schema=REJECT_SCHEMA,
            )
        )
    return pa.concat_tables(parts)


def reject_reason(spec: FieldSpec, value: str | None) -> str:
    """Why a value was set aside, naming the field and how to fix it (the value is cut short:
    a reason is read in logs and summaries)."""
    target = _type_name(spec.arrow_type)
    return (
        f"{spec.name}: {shorten(value)} is not a {target}, though describe types {spec.name} as "
        f"{spec.sf_type}; the version is stored with {spec.column} NULL. Have the org's admin "
        f"fix the value (a type change is handled by extraction.on_type_change), then re-extract "
        f"from this version's systemmodstamp (sf-lakehouse re-extract)"
    )


def _type_name(arrow: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow):
        return "datetime"
    if pa.types.is_floating(arrow):
        return "number"
    if pa.types.is_integer(arrow):
        return "integer"
    if pa.types.is_boolean(arrow):
        return "boolean (true/false)"
    if pa.types.is_date(arrow):
        return "date"
    return str(arrow)


def convert_column(text: pa.Array, target: pa.DataType) -> tuple[pa.Array, pa.Array | None]:
    """Text held to `target`: (typed values, mask of values that did not convert, or None)."""
    if _is_text(target):
        return text.cast(target), None
    if pa.types.is_boolean(target):
        lower = pc.utf8_lower(text)
        is_true = pc.equal(lower, "true")
        valid = pc.or_(is_true, pc.equal(lower, "false"))
        bad = pc.fill_null(pc.invert(valid), False)
        typed = pc.if_else(bad, pa.scalar(None, pa.bool_()), is_true)
        return typed, (bad if pc.any(bad).as_py() else None)
    try:
        if pa.types.is_timestamp(target):
            return pc.cast(text, UTC_MICROS).cast(target), None
        return pc.cast(text, target), None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    key = _parser_key(target)
    pattern = {"float": _NUMBER, "integer": _INTEGER}.get(key)
    if pattern is not None:
        # Vectorised: mask what cannot be a number, cast the rest.
        bad = pc.fill_null(pc.invert(pc.match_substring_regex(text, pattern.pattern)), False)
        try:
            return pc.cast(pc.if_else(bad, pa.scalar(None, text.type), text), target), bad
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    parse = _PARSERS[key]
    values: list[Any] = []
    bad_flags: list[bool] = []
    for item in text.to_pylist():
        if item is None:
            values.append(None)
            bad_flags.append(False)
            continue
        try:
            values.append(parse(item))
            bad_flags.append(False)
        except (ValueError, TypeError, OverflowError):
            values.append(None)
            bad_flags.append(True)
    return pa.array(values, target), pa.array(bad_flags, pa.bool_())


def _parse_number(value: str) -> float:
    if not _NUMBER.match(value):
        raise ValueError(value)
    return float(value)


def _parse_integer(value: str) -> int:
    if not _INTEGER.match(value):
        raise ValueError(value)
    return int(value)


def _parse_datetime(value: str) -> dt.datetime:
    if "T" not in value:
        raise ValueError(value)
    return parse_sf_datetime(value)


_PARSERS: dict[str, Callable[[str], Any]] = {
    "timestamp": _parse_datetime,
    "date": dt.date.fromisoformat,
    "float": _parse_number,
    "integer": _parse_integer,
}


def _parser_key(target: pa.DataType) -> str:
    if pa.types.is_timestamp(target):
        return "timestamp"
    if pa.types.is_date(target):
        return "date"
    if pa.types.is_floating(target):
        return "float"
    if pa.types.is_integer(target):
        return "integer"
    raise TypeError(f"no conversion from text to {target}")


def _no_rejects() -> pa.Table:
    return REJECT_SCHEMA.empty_table()


def _empty(fields: Sequence[FieldSpec]) -> Converted:
    return Converted(arrow_schema(fields).empty_table(), _no_rejects())
