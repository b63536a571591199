"""`dbt snapshot` on the pipeline's per-run observations, into DuckDB.

Configured for the same versions as the pipeline's dimension: the `check` strategy on the
compared columns (the tracked fields, plus is_deleted for objects with deletions), `unique_key`
the record id, `updated_at` the SystemModstamp (so a version starts at the observation's
SystemModstamp, as in rule 3, rather than at the snapshot's wall clock). Records absent from a
run stay current (no `hard_deletes`: a run holds only the records that changed).

Each run is one `dbt snapshot` CLI invocation (the project's own dbt-core and dbt-duckdb),
reading that run's parquet files from a fixed directory, so dbt's partial parsing applies.

    python -m benchmarks.peers.dbt_snapshot.runner --observations DIR --objects FILE \
        --work DIR --dbt PATH
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import Json, emit, log
from benchmarks.measure import run_measured
from benchmarks.peers.observations import ObjectInfo, load_objects, run_dirs, run_number

TEMPLATE = Path(__file__).resolve().parent / "template"
SCHEMA = "snapshots"


def snapshot_sql(obj: ObjectInfo) -> str:
    compared = ", ".join(f"'{c}'" for c in obj.compared)
    return (
        f"{{% snapshot snap_{obj.name} %}}\n"
        "{{ config(\n"
        f"    target_schema='{SCHEMA}',\n"
        f"    unique_key='{obj.key}',\n"
        "    strategy='check',\n"
        f"    check_cols=[{compared}],\n"
        "    updated_at='system_modstamp'\n"
        ") }}\n"
        'select * from read_parquet(\'{{ env_var("BENCH_OBSERVATIONS") }}/'
        f"{obj.name}.parquet')\n"
        "{% endsnapshot %}\n"
    )


def render_project(project: Path, objects: Sequence[ObjectInfo]) -> None:
    shutil.rmtree(project, ignore_errors=True)
    shutil.copytree(TEMPLATE, project)
    (project / "snapshots").mkdir()
    (project / "models").mkdir()
    for obj in objects:
        (project / "snapshots" / f"snap_{obj.name}.sql").write_text(snapshot_sql(obj), "utf-8")


def stage_run(run_dir: Path, current: Path) -> None:
    """The run's observations at the fixed path the snapshots read (not timed)."""
    shutil.rmtree(current, ignore_errors=True)
    shutil.copytree(run_dir, current)


def row_counts(database: Path, objects: Sequence[ObjectInfo]) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        return {
            o.name: int(con.execute(f"select count(*) from {SCHEMA}.snap_{o.name}").fetchone()[0])
            for o in objects
        }
    finally:
        con.close()


def dbt_env(database: Path, current: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DBT_PROFILES_DIR")}
    return env | {
        "BENCH_SNAPSHOT_DB": str(database),
        "BENCH_OBSERVATIONS": str(current),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def run_series(observations: Path, objects: Sequence[ObjectInfo], work: Path, dbt: Path) -> Json:
    project, current, database = work / "project", work / "current", work / "snapshot_peer.duckdb"
    render_project(project, objects)
    database.unlink(missing_ok=True)
    command = [str(dbt), "snapshot", "--project-dir", str(project), "--profiles-dir", str(project)]
    runs = []
    for run_dir in run_dirs(observations):
        stage_run(run_dir, current)
        measured = run_measured(
            command, env=dbt_env(database, current), log_path=work / f"{run_dir.name}.log"
        )
        if measured.returncode != 0:
            return {"tool": "dbt_snapshot", "runs": runs, "error": f"dbt snapshot failed: {work}"}
        counts = row_counts(database, objects)
        log(f"dbt snapshot {run_dir.name}: {measured.seconds:.2f} s, rows {counts}")
        runs.append(
            {
                "number": run_number(run_dir),
                "seconds": measured.seconds,
                "cpu_seconds": measured.cpu_seconds,
                "rows": counts,
                "peak_tree_rss_bytes": measured.peak_tree_rss_bytes,
            }
        )
    return {
        "tool": "dbt_snapshot",
        "runs": runs,
        "peak_tree_rss_bytes": max((r["peak_tree_rss_bytes"] for r in runs), default=0),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--observations", type=Path, required=True)
    parser.add_argument("--objects", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--dbt", type=Path, required=True)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    emit(run_series(args.observations, load_objects(args.objects), args.work, args.dbt))


if __name__ == "__main__":
    main()
