"""A local lakehouse home that was moved or copied.

Iceberg stores absolute file locations (the SQL catalog's `metadata_location`, and every
metadata and manifest file inside it), so they cannot be made relative to the home. Instead
each opening of the local catalog checks that its tables live under this home's warehouse: a
moved home would fail on a path of its old place, and a copied one (a restored backup) would
write into the original's warehouse, where maintenance can delete the other's files. Both are
refused with one line saying what to do.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from pathlib import Path

from sf_lakehouse.config.errors import ConfigError


class LakehouseMovedError(ConfigError):
    """The catalog's tables live outside this home's warehouse."""


def _local(location: str) -> Path:
    return Path(urllib.parse.unquote(location.removeprefix("file://")))


def foreign_table_location(catalog_db: Path, warehouse: Path) -> tuple[str, Path] | None:
    """The first table whose metadata is not under `warehouse` (its name and location)."""
    if not catalog_db.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{catalog_db}?mode=ro", uri=True) as con:
            rows = con.execute(
                "select table_namespace, table_name, metadata_location from iceberg_tables"
            ).fetchall()
    except sqlite3.Error:
        return None  # not created yet (no iceberg_tables): nothing to check
    inside = Path(urllib.parse.unquote(str(warehouse))).resolve()
    for namespace, name, location in rows:
        if not location:
            continue
        path = _local(location)
        if not path.is_relative_to(inside) and not path.resolve().is_relative_to(inside):
            return f"{namespace}.{name}", path
    return None


def check_home_location(home: Path, catalog_db: Path, warehouse: Path) -> None:
    """One line when the home's tables point into another warehouse (the home was moved or
    copied): where they point, and what to do."""
    found = foreign_table_location(catalog_db, warehouse)
    if found is None:
        return
    name, location = found
    parts = location.parts
    origin = Path(*parts[: parts.index("warehouse")]) if "warehouse" in parts else location.parent
    raise LakehouseMovedError(
        f"lakehouse home {home} was moved or copied from {origin}: its tables (e.g. {name}) "
        f"still point into {origin}'s warehouse, so they are not opened here (a copy would "
        f"write into the original's files); move the home back to {origin}, or set "
        f"SF_LAKEHOUSE_HOME={origin}"
    )
