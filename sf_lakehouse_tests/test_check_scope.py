"""The Python checks of a run look at what the run changed; the full variant reads whole
tables. Real runs on the emulator, the Iceberg catalog and dbt."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pyarrow as pa

from sf_lakehouse.config import Settings
from sf_lakehouse.definitions import build_definitions
from sf_lakehouse.defs.checks import FULL_CHECKS_JOB_NAME
from sf_lakehouse.lakehouse.tables import open_catalog, replace_rows
from sf_lakehouse_tests.histories import BASE, user

A, B, C = "005000000000000AAA", "005000000000000BBB", "005000000000000CCC"
HISTORY = [
    user(A, 0, "EMEA"),
    user(B, 1, "APAC"),
    user(C, 2, "LATAM"),
    user(A, 120, "APAC"),  # visible from the second run on
]


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {
        e.check_name: e
        for e in result.get_asset_check_evaluations()
        if e.asset_key.path[-1] in ("sf_user", "dim_sf_user_scd")
    }


def test_runs_check_the_changed_records_and_the_full_job_checks_everything(
    settings: Settings, connected
) -> None:
    emulator = connected(HISTORY, BASE + dt.timedelta(minutes=60))
    definitions = build_definitions(settings)
    instance = dg.DagsterInstance.ephemeral()
    job = definitions.resolve_job_def(settings.object("User").job_name)
    first = evaluations(job.execute_in_process(instance=instance))
    assert first["dimension_matches_the_scd2_rule"].metadata["checked"].value == "whole table"

    emulator.set_clock(BASE + dt.timedelta(minutes=180))
    second = evaluations(job.execute_in_process(instance=instance))
    assert all(e.passed for e in second.values())
    scope = second["dimension_matches_the_scd2_rule"].metadata["checked"].value
    assert scope == "1 records changed in this run"  # A only
    assert second["raw_versions_are_unique"].metadata["checked"].value == scope

    # Damage a record no run touches: runs stay cheap and green, the full job finds it.
    catalog = open_catalog(settings.catalog_properties())
    table = catalog.load_table(
        settings.table_identifier(settings.object("User").dimension_asset_key)
    )
    rows = table.scan().to_arrow()
    division = pa.array(
        [
            "Mars" if u == C else d
            for u, d in zip(rows["user_id"].to_pylist(), rows["division"].to_pylist(), strict=True)
        ]
    )
    replace_rows(
        table, rows.set_column(rows.schema.get_field_index("division"), "division", division)
    )
    quiet = evaluations(job.execute_in_process(instance=instance))
    assert quiet["dimension_matches_the_scd2_rule"].passed
    full = definitions.resolve_job_def(FULL_CHECKS_JOB_NAME).execute_in_process(
        instance=instance, raise_on_error=False
    )
    rule = evaluations(full)["dimension_matches_the_scd2_rule"]
    assert not rule.passed and rule.metadata["example_ids"].value == [C]
    assert rule.metadata["checked"].value == "whole table"
