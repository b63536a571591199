"""Iceberg maintenance on a real table: compaction, snapshot expiry and the orphan sweep keep
the data and free what no snapshot needs."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import pyarrow as pa

from sf_lakehouse.config import MaintenanceSettings, Settings
from sf_lakehouse.definitions import build_definitions
from sf_lakehouse.defs.jobs import MAINTENANCE_JOB_NAME
from sf_lakehouse.lakehouse.maintenance import data_file_paths, maintain_table, referenced_files
from sf_lakehouse.lakehouse.tables import RAW_LAYOUT, append_rows, ensure_table, open_catalog


def raw_identifier(settings: Settings) -> str:
    return settings.table_identifier(settings.object("User").raw_asset_key)


def files_on_disk(table) -> set[str]:
    root = Path(table.location().removeprefix("file://"))
    return {str(p) for p in root.rglob("*") if p.is_file()}


def small_appends(settings: Settings, count: int) -> None:
    catalog = open_catalog(settings.catalog_properties())
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("systemmodstamp", pa.timestamp("us")),
            ("_extracted_at", pa.timestamp("us")),
        ]
    )
    table = ensure_table(catalog, raw_identifier(settings), schema, RAW_LAYOUT)
    for n in range(count):
        stamp = dt.datetime(2026, 3, 1) + dt.timedelta(minutes=n)
        append_rows(
            table,
            pa.table(
                {"id": [f"005{n:015d}"], "systemmodstamp": [stamp], "_extracted_at": [stamp]},
                schema=schema,
            ),
        )
        table = catalog.load_table(raw_identifier(settings))


def test_maintenance_compacts_expires_and_sweeps_without_changing_data(settings: Settings) -> None:
    small_appends(settings, 12)
    catalog = open_catalog(settings.catalog_properties())
    table = catalog.load_table(raw_identifier(settings))
    before = table.scan().to_arrow().sort_by("id")
    assert len(data_file_paths(table)) == 12
    orphan = Path(table.location().removeprefix("file://")) / "data" / "stray.parquet"
    orphan.write_bytes(b"left behind by a crashed writer")
    old = (dt.datetime.now() - dt.timedelta(days=3)).timestamp()
    os.utime(orphan, (old, old))

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=30)  # every snapshot is past retention
    policy = MaintenanceSettings(
        snapshot_retention_hours=24,
        min_snapshots_to_keep=2,
        orphan_file_min_age_hours=24,
        compact_when_data_files_exceed=4,
    )
    on_disk_before = files_on_disk(table)
    report = maintain_table(table, raw_identifier(settings), policy, later)

    table = catalog.load_table(raw_identifier(settings))
    assert report.compacted and report.data_files_before == 12 and report.data_files_after == 1
    # 12 appends + the compaction (a delete and an append snapshot) - the 2 kept
    assert report.snapshots_kept == 2 and report.snapshots_expired == 12
    assert table.scan().to_arrow().sort_by("id").equals(before)
    assert not orphan.exists()
    # What is left on disk is exactly what the remaining metadata references ...
    referenced = {p.removeprefix("file://") for p in referenced_files(table)}
    assert files_on_disk(table) == referenced
    # ... and every file that was there before and is not referenced any more was swept: the
    # stray file, the 12 compacted-away data files, the expired manifests and metadata.
    swept = on_disk_before - referenced
    assert str(orphan) in swept and len(swept) > 12
    assert report.orphan_files_deleted == len(swept)


def test_maintenance_keeps_young_unreferenced_files(settings: Settings) -> None:
    small_appends(settings, 2)
    table = open_catalog(settings.catalog_properties()).load_table(raw_identifier(settings))
    young = Path(table.location().removeprefix("file://")) / "data" / "in-flight.parquet"
    young.write_bytes(b"a write still in progress")
    policy = MaintenanceSettings(
        snapshot_retention_hours=24,
        min_snapshots_to_keep=5,
        orphan_file_min_age_hours=24,
        compact_when_data_files_exceed=32,
    )
    report = maintain_table(table, "t", policy, dt.datetime.now(dt.UTC))
    assert young.exists()
    assert (report.compacted, report.snapshots_expired, report.orphan_files_deleted) == (
        False,
        0,
        0,
    )


def test_the_maintenance_job_reports_each_table(settings: Settings) -> None:
    small_appends(settings, 3)
    definitions = build_definitions(settings)
    result = definitions.resolve_job_def(MAINTENANCE_JOB_NAME).execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    observations = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    [raw] = [e.event_specific_data.asset_observation for e in observations]
    assert raw.asset_key == dg.AssetKey(["sf_raw", "sf_user"])
    assert raw.metadata["data_files_before"].value == 3
