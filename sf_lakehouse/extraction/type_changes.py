"""Fields whose type changed in the org: the raw column's way through, and its record.

When describe types a field differently from its raw column (a custom field made text from a
number), `extraction.on_type_change` chooses the way, so no value and no version is lost:

- `widen` (the default): the column takes a type that holds both (two number types: double;
  anything else: text). Iceberg promotes no number to text, so the column is replaced under the
  same name and every stored row rewritten with its value cast, in one commit: the dimension
  follows the org with the next build.
- `new_column`: the column keeps its type and its values; the values from the change on go to
  a new column named after the new type (`score__c__text`); nothing stored is rewritten.

Each change is recorded in the raw table's properties (`sf-lakehouse.type-change.<column>`,
JSON), in the commit that makes it; the asset check `raw_column_types_unchanged` stays failed
until the operator acknowledges it (`sf-lakehouse acknowledge-type-change`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import pyarrow as pa
from pyiceberg.table import Table

from sf_lakehouse.salesforce.types import FieldSpec

TYPE_CHANGE_PREFIX = "sf-lakehouse.type-change."
WIDEN, NEW_COLUMN = "widen", "new_column"
_TYPE_WORDS = {"string": "text", "double": "number", "int64": "integer", "bool": "boolean"}


def type_word(arrow: pa.DataType) -> str:
    """`text`, `number`, `integer`, `boolean`, `datetime`, `date`: a type as people say it."""
    if pa.types.is_timestamp(arrow):
        return "datetime"
    if pa.types.is_date(arrow):
        return "date"
    return _TYPE_WORDS.get(str(arrow), str(arrow))


def widened_type(stored: pa.DataType, described: pa.DataType) -> pa.DataType:
    """A type holding the values of both: the stored one when it does; double for two number
    types; else text."""
    if stored == described or pa.types.is_string(stored):
        return stored
    numbers = (pa.types.is_integer, pa.types.is_floating)
    if any(f(stored) for f in numbers) and any(f(described) for f in numbers):
        return stored if pa.types.is_floating(stored) else pa.float64()
    return pa.string()


@dataclass(frozen=True)
class TypeChange:
    """One field's type change and what the run did about it."""

    object_name: str
    field: str
    column: str  # the raw column that held the old type
    old_type: str  # type words (`number`, `text`)
    new_type: str
    policy: str
    target_column: str  # where the field's values go from now on
    target_type: str  # Arrow type of that column (`string`, `double`)
    detected_at: str  # ISO, UTC
    run_id: str
    acknowledged_at: str | None = None

    @property
    def property_name(self) -> str:
        return TYPE_CHANGE_PREFIX + self.column

    def to_property(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_property(cls, value: str) -> TypeChange:
        return cls(**json.loads(value))

    def describe(self) -> str:
        """One line: what changed, where the values go, how to acknowledge."""
        way = (
            f"column {self.column} widened to {self.target_type} (every stored value kept)"
            if self.policy == WIDEN
            else f"new values go to the new column {self.target_column}; {self.column} keeps "
            "the old ones"
        )
        return (
            f"{self.object_name}.{self.field} changed type in the org from {self.old_type} to "
            f"{self.new_type}: {way} (extraction.on_type_change: {self.policy}); acknowledge "
            f"with: sf-lakehouse acknowledge-type-change --object {self.object_name} "
            f"--field {self.field}"
        )


def recorded_changes(table: Table | None) -> list[TypeChange]:
    """Every type change recorded in the raw table, acknowledged or not."""
    if table is None:
        return []
    return [
        TypeChange.from_property(value)
        for name, value in sorted(table.properties.items())
        if name.startswith(TYPE_CHANGE_PREFIX)
    ]


def _plain(arrow: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(arrow) or pa.types.is_string_view(arrow):
        return pa.string()
    if pa.types.is_timestamp(arrow):
        return pa.timestamp("us")
    return arrow


def plan_columns(
    fields: Sequence[FieldSpec],
    table: Table | None,
    *,
    object_name: str,
    policy: str,
    run_id: str,
    now: dt.datetime,
) -> tuple[list[FieldSpec], list[TypeChange]]:
    """The fields placed in the raw table's columns, and the type changes this run makes."""
    if table is None:
        return list(fields), []
    stored = {f.name: _plain(f.type) for f in table.schema().as_arrow()}
    known = {c.column for c in recorded_changes(table)}
    placed: list[FieldSpec] = []
    changes: list[TypeChange] = []
    for spec in fields:
        column_type = stored.get(spec.source_column)
        described = spec.arrow_type
        if column_type is None or column_type == described:
            placed.append(spec)
            continue
        if policy == NEW_COLUMN:
            target = f"{spec.source_column}__{type_word(described)}"
            spec = replace(spec, column_name=target)
            target_type = described
        else:
            target, target_type = spec.source_column, widened_type(column_type, described)
            spec = replace(spec, column_type=target_type)
        placed.append(spec)
        if stored.get(target) == target_type or spec.source_column in known:
            continue  # made by an earlier run (or the org narrowed a widened column)
        changes.append(
            TypeChange(
                object_name=object_name,
                field=spec.name,
                column=spec.source_column,
                old_type=type_word(column_type),
                new_type=type_word(described),
                policy=policy,
                target_column=target,
                target_type=str(target_type),
                detected_at=now.astimezone(dt.UTC).replace(tzinfo=None).isoformat(),
                run_id=run_id,
            )
        )
    return placed, changes


def widened_columns(changes: Sequence[TypeChange]) -> dict[str, pa.DataType]:
    """Column -> its new type, for the changes that widen a column in place."""
    return {c.column: pa.type_for_alias(c.target_type) for c in changes if c.policy == WIDEN}


def change_properties(changes: Sequence[TypeChange]) -> Mapping[str, str]:
    return {c.property_name: c.to_property() for c in changes}


def acknowledged(change: TypeChange, when: dt.datetime) -> TypeChange:
    stamp = when.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    return replace(change, acknowledged_at=stamp)
