"""The one write of an extraction run, shared by the in-process raw asset and the AWS Glue job:
the set-aside values into the rejects table (`store_rejects`), a type change's column, then the
new versions with the run's watermark, each one Iceberg commit. A failure before the last commit
leaves the watermark where it was, so the next run reads the same versions again."""

from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.catalog import Catalog

from sf_lakehouse.config import ObjectSpec
from sf_lakehouse.extraction.cursor import read_watermark, watermark_properties
from sf_lakehouse.extraction.increment import Increment
from sf_lakehouse.extraction.rejects import store_rejects
from sf_lakehouse.extraction.type_changes import change_properties, widened_columns
from sf_lakehouse.lakehouse.tables import (
    RAW_LAYOUT,
    append_rows,
    ensure_table,
    load_table_or_none,
    widen_columns,
)


@dataclass(frozen=True)
class Stored:
    """What `store_increment` wrote, and the warnings for the run's log."""

    appended: int
    rejects_table: str | None
    warnings: tuple[str, ...]


def store_increment(
    catalog: Catalog, raw_identifier: str, raw_database: str, spec: ObjectSpec, increment: Increment
) -> Stored:
    """Store what `extract_increment` read. A re-extract's corrections (stored versions read
    again) are appended beside the first read: rule 1 keeps the latest read of a version."""
    rejected = store_rejects(catalog, raw_database, spec, increment.rejects)
    table = load_table_or_none(catalog, raw_identifier)
    if table is None:
        # Created on the first run even when empty: dbt reads it as the staging model's source.
        table = ensure_table(catalog, raw_identifier, increment.rows.schema, RAW_LAYOUT)
    changes = change_properties(increment.type_changes)
    widened = widened_columns(increment.type_changes)
    if widened:
        table = widen_columns(table, widened, changes)
    stored = read_watermark(table, increment.cursor_column)
    watermark = max(filter(None, (stored, increment.watermark_after)), default=None)
    properties = {
        **changes,
        **watermark_properties(increment.cursor_column, watermark, increment.run_id),
    }
    unique_key = () if increment.corrections else None
    appended = append_rows(table, increment.rows, unique_key=unique_key, properties=properties)
    warnings = [change.describe() for change in increment.type_changes]
    if rejected is not None:
        warnings.append(rejected[1])
    future = increment.future_warning()
    if future:
        warnings.append(future)
    return Stored(appended, rejected[0] if rejected else None, tuple(warnings))
