"""Pages of a ``Selection`` as Salesforce sends them: REST JSON records and Bulk 2.0 CSV.

Only the rows of one page are turned into values, column by column.

- REST: datetimes ``2026-03-01T08:00:00.000+0000``, dates ``2026-03-01``, numbers and booleans
  as JSON, nulls as null; each record opens with ``attributes`` (type, url).
- Bulk CSV: a header row; every value quoted (``""`` for a quote), nulls as an empty field
  (unquoted); booleans ``true``/``false``; datetimes ``2026-03-01T08:00:00.000Z`` (Bulk writes
  UTC with a ``Z``, unlike REST); dates ``2026-03-01``; integers as written; doubles (currency,
  percent, double) as Java's ``Double.toString`` writes them: ``1500.0``, and from 10^7 on in
  scientific notation, ``7.13E7``.

A ``malform`` hook (fault injection) names, per selected field, the positions of the page whose
value is replaced: by one of the wrong type (``wrong_value``) for a ``malformed`` fault, by a
datetime (a ``future_stamp`` fault's stamp) otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .engine import Selection
from .faults import MALFORMED
from .vectors import format_datetimes

__all__ = ["Malform", "csv_page", "java_double", "json_records", "wrong_value"]

# (field name, field type, page size) -> {position of the page: its served value}
Malform = Callable[[str, str, int], dict[int, Any]]
_NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})


def wrong_value(ftype: str) -> Any:
    """A value of the wrong type for a field, one Salesforce would never send."""
    if ftype == "datetime":
        return "2026-13-45T99:00:00"
    if ftype == "date":
        return "2026-02-30"
    if ftype in _NUMBER_TYPES:
        return "not-a-number"
    if ftype == "boolean":
        return "maybe"
    return 12345  # a number where text (or an Id) belongs


def _replacement(value: Any, ftype: str, zone: str) -> Any:
    """What a malform hook's value is served as (REST ``+0000``, Bulk ``Z`` datetimes)."""
    if value is MALFORMED:
        return wrong_value(ftype)
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}{zone}"
    return value


def java_double(value: float) -> str:
    """``Double.toString``: ``1500.0``, ``0.001``; below 10^-3 and from 10^7 on ``7.13E7``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        return repr(float(value))
    sign, digits, exponent = Decimal(repr(float(value))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) - 1 + int(exponent)
    mantissa = text[0] + "." + (text[1:] or "0")
    return ("-" if sign else "") + f"{mantissa}E{power}"


def _page_rows(selection: Selection, start: int, stop: int) -> pa.Array:
    return selection.rows.slice(start, max(stop - start, 0))


def json_records(
    selection: Selection,
    start: int,
    stop: int,
    version_part: str,
    malform: Malform | None = None,
) -> list[dict[str, Any]]:
    """The records of a page, as the REST API returns them."""
    history = selection.history
    rows = _page_rows(selection, start, stop)
    name = history.spec.name
    ids = _json_values(history.column("Id", rows))
    columns: list[tuple[str, list[Any]]] = []
    for field in selection.fields:
        values = _json_values(history.column(field.name, rows))
        if malform is not None:
            for position, value in malform(field.name, field.type, len(values)).items():
                values[position] = _replacement(value, field.type, "+0000")
        columns.append((field.name, values))
    records = []
    prefix = f"/services/data/{version_part}/sobjects/{name}/"
    for i, record_id in enumerate(ids):
        attributes = {"type": name}
        if record_id:
            attributes["url"] = prefix + record_id
        record: dict[str, Any] = {"attributes": attributes}
        for field_name, values in columns:
            record[field_name] = values[i]
        records.append(record)
    return records


def _json_values(values: pa.Array) -> list[Any]:
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()  # (to_pylist would convert the whole dictionary)
    if pa.types.is_timestamp(values.type):
        return format_datetimes(values).to_pylist()
    if pa.types.is_date32(values.type):
        return values.cast(pa.string()).to_pylist()
    return values.to_pylist()


def _csv_text(values: pa.Array) -> pa.Array:
    """A column's values as Bulk CSV text (nulls stay null)."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        values, kind = values.dictionary_decode(), kind.value_type
    if pa.types.is_timestamp(kind):
        return format_datetimes(values, "Z")
    if pa.types.is_boolean(kind):
        return pc.if_else(values, "true", "false")
    if pa.types.is_floating(kind):
        return pa.array(
            [None if v is None else java_double(v) for v in values.to_pylist()], pa.string()
        )
    if pa.types.is_string(kind):
        return values
    if pa.types.is_null(kind):
        return pa.nulls(len(values), pa.string())
    try:
        return values.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in values.to_pylist()], pa.string())


def _quoted(text: pa.Array) -> pa.Array:
    escaped = pc.replace_substring(text, '"', '""')
    return pc.binary_join_element_wise('"', escaped, '"', "").fill_null("")


def csv_page(
    selection: Selection,
    start: int,
    stop: int,
    delimiter: str,
    line_ending: str,
    malform: Malform | None = None,
) -> bytes:
    """A page of Bulk 2.0 query results: the header row, then one row per record."""
    history = selection.history
    rows = _page_rows(selection, start, stop)
    header = delimiter.join('"' + f.name.replace('"', '""') + '"' for f in selection.fields)
    if len(rows) == 0:
        return (header + line_ending).encode("utf-8")
    cells = []
    for field in selection.fields:
        text = _csv_text(history.column(field.name, rows))
        if malform is not None:
            served = malform(field.name, field.type, len(text))
            if served:
                mask = pa.array([i in served for i in range(len(text))])
                bad = pa.array(
                    [str(_replacement(served[i], field.type, "Z")) for i in sorted(served)],
                    pa.string(),
                )
                text = pc.replace_with_mask(text, mask, bad)
        cells.append(_quoted(text))
    lines = pc.binary_join_element_wise(*cells, delimiter).to_pylist()
    return (line_ending.join([header, *lines]) + line_ending).encode("utf-8")
