"""What a build of a dimension changed, as metadata the UI plots and previews; after an
incremental build only the rebuilt records are read."""

from typing import Any

import pyarrow.compute as pc
from dagster import MetadataValue
from pyiceberg.table import Table

from sf_lakehouse.config import ObjectSpec
from sf_lakehouse.lakehouse.increments import last_build_keys, rows_of
from sf_lakehouse.lakehouse.tables import state_before_last_write

PREVIEW_ROWS = 10


def _rows(
    table: Table,
    snapshot_id: int | None,
    key: str,
    keys: set[str] | None,
    columns: tuple[str, ...],
) -> list[dict[str, Any]]:
    """The rows at a snapshot (their `columns` that the snapshot's schema has): all of them, or
    those of `keys`."""
    snapshot = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
    if snapshot is None:
        return []
    schema = table.schemas().get(snapshot.schema_id) if snapshot.schema_id is not None else None
    names = (schema or table.schema()).column_names
    columns = tuple(c for c in columns if c in names)
    if keys is None:
        scan = table.scan(snapshot_id=snapshot_id, selected_fields=columns)
        return scan.to_arrow().to_pylist()
    return rows_of(table, key, keys, snapshot_id=snapshot_id, columns=columns).to_pylist()


def change_metadata(
    table: Table, spec: ObjectSpec, raw: Table | None = None, snapshot_before_run: Any = ()
) -> dict[str, Any]:
    """Versions opened and closed by this run's write, compared with the state before it. After
    an incremental build only the rebuilt records are read; `snapshot_before_run` (the table's
    snapshot id when the run's build started) tells a run that wrote nothing."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return {}
    wrote = snapshot_before_run == () or snapshot.snapshot_id != snapshot_before_run
    key = spec.key_column
    columns = [
        key,
        *spec.tracked_columns,
        *(("is_deleted",) if spec.deletions else ()),
        "effective_from",
    ]
    read = ("scd_id", "is_current", *columns)
    keys = last_build_keys(table, raw) if raw is not None and wrote else None
    if not wrote or keys == set():
        current: list[dict[str, Any]] = []
        previous_rows: list[dict[str, Any]] = []
    else:
        current = _rows(table, snapshot.snapshot_id, key, keys, read)
        previous_rows = _rows(table, state_before_last_write(table), key, keys, read)
    previous = {r["scd_id"]: r["is_current"] for r in previous_rows}
    opened = [r for r in current if r["scd_id"] not in previous]
    closed = [r for r in current if not r["is_current"] and previous.get(r["scd_id"]) is True]
    latest = sorted(opened, key=lambda r: (r["effective_from"], r[key]), reverse=True)
    flags = table.scan(selected_fields=("is_current",)).to_arrow().column("is_current")
    current_rows = int(pc.sum(flags).as_py() or 0)
    return {
        "dimension_rows": len(flags),
        "current_rows": current_rows,
        "historical_rows": len(flags) - current_rows,
        "records_rebuilt": 0 if not wrote else len(keys) if keys is not None else current_rows,
        "versions_opened": len(opened),
        "versions_closed": len(closed),
        "latest_changes": MetadataValue.md(
            markdown_preview(latest[:PREVIEW_ROWS], len(opened), columns)
        ),
    }


def _cell(value: Any) -> str:
    return "" if value is None else str(value).replace("|", "\\|")


def markdown_preview(rows: list[dict[str, Any]], total: int, columns: list[str]) -> str:
    if not rows:
        return "No version opened in this run."
    lines = [
        f"**{total} versions opened in this run** (latest {len(rows)}):",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
