"""What a rebuild of the dimension changed, as metadata the UI plots and previews."""

from typing import Any

import pyarrow as pa
from dagster import MetadataValue
from pyiceberg.table import Table

from sf_lakehouse.config import ObjectSpec
from sf_lakehouse.lakehouse.tables import state_before_last_write

PREVIEW_ROWS = 10


def _rows(table: Table, snapshot_id: int | None) -> pa.Table:
    return table.scan(snapshot_id=snapshot_id).to_arrow()


def change_metadata(table: Table, spec: ObjectSpec) -> dict[str, Any]:
    """Versions opened and closed by the latest write, compared with the state before it."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return {}
    current = _rows(table, snapshot.snapshot_id).to_pylist()
    before = state_before_last_write(table)
    previous_rows = _rows(table, before).to_pylist() if before is not None else []
    previous = {r["scd_id"]: r["is_current"] for r in previous_rows}
    opened = [r for r in current if r["scd_id"] not in previous]
    closed = [r for r in current if not r["is_current"] and previous.get(r["scd_id"]) is True]
    key = spec.key_column
    latest = sorted(opened, key=lambda r: (r["effective_from"], r[key]), reverse=True)
    columns = [
        key,
        *spec.tracked_columns,
        *(("is_deleted",) if spec.deletions else ()),
        "effective_from",
    ]
    return {
        "dimension_rows": len(current),
        "current_rows": sum(1 for r in current if r["is_current"]),
        "historical_rows": sum(1 for r in current if not r["is_current"]),
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
