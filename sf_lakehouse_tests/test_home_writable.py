"""The small pieces of `lakehouse/writable.py`: which errors of a run are the home's storage
(and their fix), and which folders and files a run writes (the end-to-end runs are in
test_unwritable_home.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sf_lakehouse.config import resolve_settings
from sf_lakehouse.lakehouse.writable import storage_fix, written_paths


@pytest.mark.parametrize(
    ("message", "fix"),
    [
        ("OSError: [Errno 27] File too large: '{home}/dbt_target/x'", "free space on the disk"),
        ("OSError: [Errno 28] No space left on device: '{home}/warehouse/a'", "free space"),
        ("OperationalError: (sqlite3.OperationalError) disk I/O error", "free space"),
        ("OperationalError: attempt to write a readonly database", "writable by the user"),
        ("PermissionError: [Errno 13] Permission denied: '{home}/logs/x.log'", "writable"),
        ('IO Error: Could not write file "{home}/dbt.duckdb": Read-only file system', "writable"),
    ],
)
def test_a_write_that_failed_in_the_home_names_the_fix(
    tmp_path: Path, message: str, fix: str
) -> None:
    """Regression (issue 16, item 12): a disk that filled up during a run named no fix."""
    settings = resolve_settings("local", home=tmp_path)
    found = storage_fix(message.format(home=tmp_path), settings)
    assert found is not None and fix in found and str(tmp_path) in found, found


@pytest.mark.parametrize(
    "message",
    [
        "PermissionError: [Errno 13] Permission denied: '/etc/ssl/ca.pem'",  # not the home
        "ValueError: invalid literal for int()",
        "SalesforceError: INVALID_FIELD: No such column 'Nope__c'",
    ],
)
def test_other_errors_get_no_storage_fix(tmp_path: Path, message: str) -> None:
    assert storage_fix(message, resolve_settings("local", home=tmp_path)) is None


def test_the_written_paths_leave_out_each_runs_own_files(tmp_path: Path) -> None:
    """Old runs' event logs and storage folders (one per run, thousands over time) are never
    written again: the check before a run stays cheap."""
    settings = resolve_settings("local", home=tmp_path)
    run_id = str(uuid.uuid4())
    history = settings.dagster_home / "history" / "runs"
    (settings.dagster_home / "storage" / run_id / "compute_logs").mkdir(parents=True)
    history.mkdir(parents=True)
    for name in ("index.db", f"{run_id}.db"):
        (history / name).write_bytes(b"")
    (settings.dagster_home / "history" / "runs.db").write_bytes(b"")
    settings.catalog_db_path.write_bytes(b"")
    folders, files = written_paths(settings)
    assert settings.dagster_home / "storage" in folders and history in folders
    assert not any(run_id in str(path) for path in [*folders, *files])
    assert {p.name for p in files} == {"index.db", "runs.db", "catalog.db"}
