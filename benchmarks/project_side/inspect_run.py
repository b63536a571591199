"""What one `sf-lakehouse run` did, read back from its Dagster instance and its tables.

* step durations from the run's event log, grouped into stages: `extract` (raw asset steps
  minus their Iceberg write), `iceberg_write` (STEP_OUTPUT to HANDLED_OUTPUT of a raw step: the
  IO manager's append), `raw_checks`, `dbt` (the dbt step: staging, dimensions, dbt tests) and
  `dimension_checks`; the SCD stage is `dbt` + `dimension_checks`;
* per object: the rows the raw table received in this run, the API the extraction used, and
  the dimension's row count after the run;
* the rows the raw table received (`_run_id` = this run), shaped like the staging model, as
  `<export>/<object>.parquet`: the observations every peer is fed.

    python -m benchmarks.project_side.inspect_run --home DIR --run-id ID|latest [--export DIR]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import Json, emit

STAGES = ("extract", "iceberg_write", "raw_checks", "dbt", "dimension_checks", "other")


def stage_of(step_key: str, raw_steps: set[str]) -> str:
    if step_key in raw_steps:
        return "extract"
    if step_key.endswith("_raw_checks"):
        return "raw_checks"
    if step_key.endswith("_dimension_checks"):
        return "dimension_checks"
    if "dbt" in step_key:
        return "dbt"
    return "other"


def _event_times(instance: Any, run_id: str) -> dict[str, dict[str, float]]:
    """step key -> {event type: timestamp of its last such event}."""
    times: dict[str, dict[str, float]] = defaultdict(dict)
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and entry.step_key:
            times[entry.step_key][event.event_type_value] = entry.timestamp
    return times


def _raw_api(instance: Any, run_id: str, raw_steps: dict[str, str]) -> dict[str, str]:
    """object -> the `api` its raw asset reported (query, queryAll, bulk...)."""
    from dagster import DagsterEventType

    apis: dict[str, str] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.dagster_event.event_specific_data.materialization
        name = raw_steps.get(entry.step_key or "")
        api = materialization.metadata.get("api")
        if name is not None and api is not None:
            apis[name] = str(api.value)
    return apis


def step_timings(home: Path, run_id: str, raw_steps: dict[str, str]) -> Json:
    """Per step seconds, per stage seconds, per object Iceberg write seconds."""
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(home / "dagster"))
    stats = instance.get_run_stats(run_id)
    steps = {
        s.step_key: (s.end_time or 0) - (s.start_time or 0)
        for s in instance.get_run_step_stats(run_id)
    }
    events = _event_times(instance, run_id)
    writes = {}
    for step_key, name in raw_steps.items():
        marks = events.get(step_key, {})
        if "STEP_OUTPUT" in marks and "HANDLED_OUTPUT" in marks:
            writes[name] = marks["HANDLED_OUTPUT"] - marks["STEP_OUTPUT"]
    stages = dict.fromkeys(STAGES, 0.0)
    for step_key, duration in steps.items():
        stages[stage_of(step_key, set(raw_steps))] += duration
    stages["iceberg_write"] = sum(writes.values())
    stages["extract"] -= stages["iceberg_write"]
    return {
        "run_seconds": (stats.end_time or 0) - (stats.start_time or 0),
        "steps": steps,
        "stages": stages,
        "scd_stage": stages["dbt"] + stages["dimension_checks"],
        "iceberg_write": writes,
        "api": _raw_api(instance, run_id, raw_steps),
    }


def staging_shape(rows: Any, spec: Any) -> Any:
    """Raw rows as the staging model renames them: what the SCD logic of every tool reads."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from sf_lakehouse.config import snake_case
    from sf_lakehouse.config.objects import raw_column

    def column(field: str) -> Any:
        name = raw_column(field)
        return rows.column(name) if name in rows.column_names else pa.nulls(rows.num_rows)

    arrays = {spec.key_column: rows.column("id")}
    for field in (*spec.carry, *spec.track):
        arrays[snake_case(field)] = column(field)
    if spec.deletions:
        arrays["is_deleted"] = pc.fill_null(column("IsDeleted").cast(pa.bool_()), False)
    arrays["system_modstamp"] = rows.column("systemmodstamp")
    return pa.table(arrays)


def export_and_count(home: Path, run_id: str, export: Path | None) -> tuple[Json, Json, Json]:
    """Per object: rows appended in this run, raw rows in all, dimension rows; and the export."""
    import pyarrow.parquet as pq
    from pyiceberg.expressions import EqualTo

    from sf_lakehouse.config import resolve_settings
    from sf_lakehouse.lakehouse.tables import load_table_or_none, open_catalog

    settings = resolve_settings("local", home=home)
    catalog = open_catalog(settings.catalog_properties())
    appended: Json = {}
    raw_rows: Json = {}
    dimension_rows: Json = {}
    for spec in settings.objects:
        raw = load_table_or_none(catalog, settings.table_identifier(spec.raw_asset_key))
        dim = load_table_or_none(catalog, settings.table_identifier(spec.dimension_asset_key))
        if raw is None:
            continue
        rows = raw.scan(row_filter=EqualTo("_run_id", run_id)).to_arrow()
        appended[spec.name] = rows.num_rows
        raw_rows[spec.name] = raw.scan(selected_fields=("id",)).to_arrow().num_rows
        if dim is not None:
            key = (spec.key_column,)
            dimension_rows[spec.name] = dim.scan(selected_fields=key).to_arrow().num_rows
        if export is not None:
            export.mkdir(parents=True, exist_ok=True)
            pq.write_table(staging_shape(rows, spec), export / f"{spec.name}.parquet")
    return appended, raw_rows, dimension_rows


def latest_run_id(home: Path) -> str:
    """The newest run of the instance (when `sf-lakehouse run` did not print its id)."""
    from dagster import DagsterInstance

    runs = DagsterInstance.from_config(str(home / "dagster")).get_runs(limit=1)
    if not runs:
        raise SystemExit(f"no Dagster run under {home / 'dagster'}")
    return str(runs[0].run_id)


def inspect_run(home: Path, run_id: str, export: Path | None) -> Json:
    from sf_lakehouse.config import resolve_settings

    settings = resolve_settings("local", home=home)
    run_id = latest_run_id(home) if run_id == "latest" else run_id
    raw_steps = {"__".join(spec.raw_asset_key): spec.name for spec in settings.objects}
    timings = step_timings(home, run_id, raw_steps)
    appended, raw_rows, dimension_rows = export_and_count(home, run_id, export)
    return {
        "run_id": run_id,
        **timings,
        "appended": appended,
        "raw_rows": raw_rows,
        "dimension_rows": dimension_rows,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--export", type=Path)
    args = parser.parse_args(argv)
    emit(inspect_run(args.home.resolve(), args.run_id, args.export))


if __name__ == "__main__":
    main()
