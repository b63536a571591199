"""`sf-lakehouse repair`: remove duplicate versions from raw tables.

A raw table stores each record version, (`id`, `systemmodstamp`), once. Versions before this
release could be stored twice when two runs extracted at once; the blocking check
`raw_versions_are_unique` then stops every run. The repair rewrites the table in one Iceberg
commit, keeping of each duplicated version the row with the latest `_extracted_at` (rule 1 of
the design keeps that one too, so the dimensions do not change). The commit fails rather than
lose rows if anything else wrote the table meanwhile; then run the repair again. The snapshot is
marked `sf-lakehouse-operation: repair-duplicates`, so the row-count check starts counting
again from it. The previous snapshots stay until maintenance expires them.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa
from pyiceberg.table import Table

from sf_lakehouse.config import ObjectSpec, Settings
from sf_lakehouse.lakehouse.tables import load_table_or_none, open_catalog, rewrite_rows

REPAIR_OPERATION = "repair-duplicates"
KEY = ("id", "systemmodstamp")


@dataclass(frozen=True)
class RepairReport:
    table: str
    rows_before: int
    rows_after: int
    duplicate_versions: int
    written: bool

    @property
    def extra_rows(self) -> int:
        return self.rows_before - self.rows_after

    def line(self, dry_run: bool = False) -> str:
        if self.rows_before == self.rows_after:
            return f"{self.table}: every version is stored once ({self.rows_before} rows)"
        verb = "would remove" if dry_run else "removed"
        return (
            f"{self.table}: {verb} {self.extra_rows} extra rows of {self.duplicate_versions} "
            f"duplicated versions ({self.rows_before} -> {self.rows_after} rows)"
        )


def without_duplicate_versions(rows: pa.Table) -> pa.Table:
    """One row per (id, systemmodstamp): the one with the latest `_extracted_at` (then the
    greatest `_run_id`); rows with a NULL key are all kept. Column order and types are kept."""
    con = duckdb.connect()
    con.register("raw", rows)
    order = ["_extracted_at", "_run_id"]
    order = [c for c in order if c in rows.column_names]
    ranking = ", ".join(f'"{c}" desc nulls last' for c in order) or "1"
    kept = con.execute(
        f"""
        select * exclude (_repair_rank) from (
            select *, row_number() over (
                partition by id, systemmodstamp order by {ranking}
            ) as _repair_rank
            from raw
        )
        where _repair_rank = 1 or id is null or systemmodstamp is null
        """
    ).fetch_arrow_table()
    return kept.cast(rows.schema)


def duplicated_versions(rows: pa.Table) -> int:
    con = duckdb.connect()
    con.register("raw", rows.select(list(KEY)))
    [(count,)] = con.execute(
        "select count(*) from (select 1 from raw where id is not null and systemmodstamp is not "
        "null group by id, systemmodstamp having count(*) > 1)"
    ).fetchall()
    return int(count)


def repair_table(table: Table, identifier: str, dry_run: bool = False) -> RepairReport:
    rows = table.scan().to_arrow()
    if rows.num_rows == 0 or not all(k in rows.column_names for k in KEY):
        return RepairReport(identifier, rows.num_rows, rows.num_rows, 0, False)
    duplicates = duplicated_versions(rows)
    if duplicates == 0:
        return RepairReport(identifier, rows.num_rows, rows.num_rows, 0, False)
    kept = without_duplicate_versions(rows)
    if not dry_run:
        rewrite_rows(table, kept, operation=REPAIR_OPERATION)
    return RepairReport(identifier, rows.num_rows, kept.num_rows, duplicates, not dry_run)


def repair_raw_tables(
    settings: Settings, specs: tuple[ObjectSpec, ...], dry_run: bool = False
) -> list[RepairReport]:
    """Repair the raw table of each spec (one commit each); a missing table is skipped."""
    catalog = open_catalog(settings.catalog_properties())
    reports = []
    for spec in specs:
        identifier = settings.table_identifier(spec.raw_asset_key)
        table = load_table_or_none(catalog, identifier)
        if table is None:
            reports.append(RepairReport(identifier, 0, 0, 0, False))
            continue
        reports.append(repair_table(table, identifier, dry_run=dry_run))
    return reports
