"""Iceberg table maintenance: compact small files, expire old snapshots, delete orphan files.

Order matters: compaction commits a snapshot that replaces many small files with few; expiring
old snapshots makes the replaced files unreferenced; the orphan sweep then deletes files that no
remaining snapshot or metadata references and that are old enough not to belong to a write in
flight. Data never changes: compaction rewrites the same rows in one commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyarrow import fs as pafs
from pyiceberg.table import Table

from sf_lakehouse.config import MaintenanceSettings


@dataclass(frozen=True)
class MaintenanceReport:
    table: str
    data_files_before: int
    data_files_after: int
    compacted: bool
    snapshots_expired: int
    snapshots_kept: int
    orphan_files_deleted: int
    orphan_bytes_deleted: int

    def as_metadata(self) -> dict[str, int | bool | str]:
        return dict(self.__dict__)


def data_file_paths(table: Table) -> list[str]:
    snapshot = table.current_snapshot()
    if snapshot is None:
        return []
    return [task.file.file_path for task in table.scan().plan_files()]


def compact(table: Table, threshold: int) -> bool:
    """Rewrite the current rows in one commit when the table has more data files than
    `threshold` (appends of small increments leave many small files)."""
    if len(data_file_paths(table)) <= threshold:
        return False
    rows = table.scan().to_arrow()
    table.overwrite(rows, snapshot_properties={"sf-lakehouse-operation": "compaction"})
    return True


def snapshots_to_expire(table: Table, now: dt.datetime, settings: MaintenanceSettings) -> list[int]:
    """Snapshots older than the retention, except the newest `min_snapshots_to_keep` and the
    current one."""
    cutoff_ms = int(
        (now - dt.timedelta(hours=settings.snapshot_retention_hours)).timestamp() * 1000
    )
    ordered = sorted(table.snapshots(), key=lambda s: s.timestamp_ms, reverse=True)
    protected = {s.snapshot_id for s in ordered[: settings.min_snapshots_to_keep]}
    current = table.current_snapshot()
    if current is not None:
        protected.add(current.snapshot_id)
    return [
        s.snapshot_id
        for s in ordered
        if s.snapshot_id not in protected and s.timestamp_ms < cutoff_ms
    ]


def referenced_files(table: Table) -> set[str]:
    """Every file the table's metadata still points at: metadata files, manifest lists,
    manifests and data/delete files of all remaining snapshots."""
    metadata = table.metadata
    files = {table.metadata_location}
    files |= {entry.metadata_file for entry in metadata.metadata_log}
    for snapshot in metadata.snapshots:
        files.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            files.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                files.add(entry.data_file.file_path)
    return files


def _normalise(path: str) -> str:
    return path.removeprefix("file://").removeprefix("s3://").removeprefix("s3a://")


def delete_orphan_files(table: Table, now: dt.datetime, min_age_hours: int) -> tuple[int, int]:
    """Delete files under the table location that no metadata references and that are older
    than `min_age_hours`. Returns (files, bytes) deleted."""
    filesystem, root = pafs.FileSystem.from_uri(table.location())
    keep = {_normalise(p) for p in referenced_files(table)}
    cutoff = now - dt.timedelta(hours=min_age_hours)
    deleted = deleted_bytes = 0
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(root, recursive=True))
    except FileNotFoundError:
        return 0, 0
    for info in infos:
        if info.type != pafs.FileType.File or _normalise(info.path) in keep:
            continue
        modified = info.mtime
        if modified is not None and modified.replace(tzinfo=modified.tzinfo or dt.UTC) > cutoff:
            continue  # may belong to a write still in progress
        filesystem.delete_file(info.path)
        deleted += 1
        deleted_bytes += info.size or 0
    return deleted, deleted_bytes


def maintain_table(
    table: Table, identifier: str, settings: MaintenanceSettings, now: dt.datetime
) -> MaintenanceReport:
    before = len(data_file_paths(table))
    compacted = compact(table, settings.compact_when_data_files_exceed)
    table = table.refresh()
    expired = snapshots_to_expire(table, now, settings)
    if expired:
        table.maintenance.expire_snapshots().by_ids(expired).commit()
        table = table.refresh()
    files, size = delete_orphan_files(table, now, settings.orphan_file_min_age_hours)
    return MaintenanceReport(
        table=identifier,
        data_files_before=before,
        data_files_after=len(data_file_paths(table)),
        compacted=compacted,
        snapshots_expired=len(expired),
        snapshots_kept=len(table.snapshots()),
        orphan_files_deleted=files,
        orphan_bytes_deleted=size,
    )
