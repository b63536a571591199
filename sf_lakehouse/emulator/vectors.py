"""Vectorised helpers over Arrow arrays: datetimes in and out, values of dictionary arrays.

Datetimes are held as ``timestamp[us, UTC]``; ``parse_datetimes`` reads Salesforce/ISO-8601
strings (the fast path is one Arrow cast, odd but valid spellings go through Python), and
``format_datetimes`` writes them back the way the REST API (``+0000``) or Bulk CSV (``Z``) does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from .history import parse_sf_datetime

__all__ = [
    "TIMESTAMP",
    "encode_strings",
    "format_datetimes",
    "map_values",
    "parse_dates",
    "parse_datetimes",
    "timestamp_scalar",
]

TIMESTAMP = pa.timestamp("us", tz="UTC")
_STRICT_DATETIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:?\d{2})$"
_STRICT_DATE = r"^\d{4}-\d{2}-\d{2}$"


def timestamp_scalar(moment: datetime) -> pa.Scalar:
    """An aware datetime as a ``timestamp[us, UTC]`` scalar (naive ones are UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return pa.scalar(moment.astimezone(UTC), type=TIMESTAMP)


def _python_datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        return parse_sf_datetime(value)
    except ValueError:
        return None


def parse_datetimes(values: pa.Array) -> pa.Array:
    """Datetime strings as ``timestamp[us, UTC]``; null where a value is not a datetime.

    Naive values are UTC, as ``parse_sf_datetime`` takes them. A column whose values all have a
    zone, or all none, is one vectorised cast (a dictionary column: one per distinct value);
    a mixed or odd one goes value by value through ``parse_sf_datetime``.
    """
    if pa.types.is_timestamp(values.type):
        if values.type.tz is None:
            return values.cast(pa.timestamp("us")).cast(TIMESTAMP)
        return values.cast(TIMESTAMP)
    if pa.types.is_dictionary(values.type):
        return pc.take(parse_datetimes(values.dictionary), values.indices)
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        return pa.nulls(len(values), TIMESTAMP)
    if pc.all(pc.match_substring(values, "T").fill_null(True)).as_py():
        for kind in (TIMESTAMP, pa.timestamp("us")):  # zoned, then naive (taken as UTC)
            try:
                return pc.cast(values, kind).cast(TIMESTAMP)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
    strict = pc.match_substring_regex(values, _STRICT_DATETIME).fill_null(True)
    fast = pc.if_else(strict, values, pa.scalar(None, values.type))
    try:
        parsed = pc.cast(fast, TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed, strict = pa.nulls(len(values), TIMESTAMP), _falses(len(values))
    slow = pc.invert(strict)
    if not pc.any(slow).as_py():
        return parsed
    others = values.filter(slow).to_pylist()
    replacements = pa.array([_python_datetime(v) for v in others], TIMESTAMP)
    return pc.replace_with_mask(parsed, slow, replacements)


def _falses(size: int) -> pa.Array:
    return pa.nulls(size, pa.bool_()).fill_null(False)


def parse_dates(values: pa.Array) -> pa.Array:
    """``YYYY-MM-DD`` strings as ``date32``; null where a value is not such a date."""
    if pa.types.is_date32(values.type):
        return values
    if pa.types.is_timestamp(values.type):
        return values.cast(pa.date32())
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if not pa.types.is_string(values.type):
        return pa.nulls(len(values), pa.date32())
    ok = pc.match_substring_regex(values, _STRICT_DATE).fill_null(False)
    kept = pc.if_else(ok, values, pa.scalar(None, pa.string()))
    try:
        return pc.cast(kept, pa.date32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        out: list[date | None] = []
        for value in kept.to_pylist():
            try:
                out.append(date.fromisoformat(value) if value is not None else None)
            except ValueError:
                out.append(None)
        return pa.array(out, pa.date32())


def format_datetimes(values: pa.Array, zone: str = "+0000") -> pa.Array:
    """Timestamps as ``2026-03-01T08:00:00.000+0000`` (REST) or ``...000Z`` (Bulk CSV)."""
    millis = values.cast(pa.timestamp("ms", tz="UTC"), safe=False)
    text = pc.strftime(millis, format="%Y-%m-%dT%H:%M:%S")
    return pc.binary_join_element_wise(text, zone, "")


def map_values(values: pa.Array, function: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``function`` applied to every value; on a dictionary array, once per distinct value."""
    if pa.types.is_dictionary(values.type):
        mapped = function(values.dictionary)
        if pa.types.is_boolean(mapped.type):
            return pc.take(mapped, values.indices)
        return pa.DictionaryArray.from_arrays(values.indices, mapped)
    return function(values)


def encode_strings(values: pa.Array) -> pa.Array:
    """String arrays dictionary-encoded (most text repeats across versions); others as given."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return pc.dictionary_encode(values.cast(pa.string()))
    return values
