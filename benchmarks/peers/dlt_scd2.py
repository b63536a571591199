"""dlt's `scd2` merge strategy on the pipeline's per-run observations, into DuckDB.

Configured for the same versions as the pipeline's dimension:

* `write_disposition={"disposition": "merge", "strategy": "scd2",
  "row_version_column_name": "row_hash"}`: dlt compares a hash column instead of hashing the
  whole row, and `row_hash` covers the record id and the compared columns only (the tracked
  fields, plus is_deleted for objects with deletions), so a change of a carried field starts no
  version, as in rule 2;
* `merge_key` = the record id: a run holds only the records that changed, so records absent from
  a run must stay current (without a merge key, scd2 retires every record missing from a load);
* DuckDB destination; variant `rows` yields Python dicts (dlt's default loader file format for
  DuckDB), variant `parquet` yields Arrow tables loaded as parquet (`loader_file_format`).

One `pipeline.run` per run of the pipeline, all objects in it, in one long-lived process (its
import and set-up are reported apart, not counted in the runs).

    python -m benchmarks.peers.dlt_scd2 --observations DIR --objects FILE --work DIR \
        --variant rows|parquet
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import Json, emit, log
from benchmarks.peers.observations import ObjectInfo, load_objects, run_dirs, run_number

HASH_COLUMN = "row_hash"
DATASET = "scd2"


def row_hash(values: Sequence[Any]) -> str:
    """md5 of the id and the compared values; JSON keeps NULL apart from any value."""
    return hashlib.md5(json.dumps(values, default=str).encode(), usedforsecurity=False).hexdigest()


def hashed_rows(table: Any, obj: ObjectInfo) -> Iterator[dict[str, Any]]:
    for row in table.to_pylist():
        row[HASH_COLUMN] = row_hash([row[obj.key], *(row[c] for c in obj.compared)])
        yield row


def hashed_arrow(table: Any, obj: ObjectInfo) -> Any:
    """The same hash computed in DuckDB over the Arrow table (no Python per row)."""
    import duckdb

    values = ", ".join(f'cast("{c}" as varchar)' for c in (obj.key, *obj.compared))
    con = duckdb.connect()
    con.register("observations", table)
    return con.execute(
        f"select *, md5(to_json([{values}])) as {HASH_COLUMN} from observations"
    ).arrow()


def scd2_resource(obj: ObjectInfo, path: Path, variant: str) -> Any:
    import dlt
    import pyarrow.parquet as pq

    @dlt.resource(
        name=obj.name,
        write_disposition={
            "disposition": "merge",
            "strategy": "scd2",
            "row_version_column_name": HASH_COLUMN,
        },
        merge_key=obj.key,
    )
    def observations() -> Iterator[Any]:
        table = pq.read_table(path)
        if table.num_rows == 0:
            return
        if variant == "parquet":
            yield hashed_arrow(table, obj)
        else:
            yield from hashed_rows(table, obj)

    return observations


def row_counts(pipeline: Any, objects: Sequence[ObjectInfo]) -> dict[str, int]:
    counts = {}
    with pipeline.sql_client() as client:
        for obj in objects:
            table = client.make_qualified_table_name(obj.name)
            counts[obj.name] = int(client.execute_sql(f"select count(*) from {table}")[0][0])
    return counts


def run_series(observations: Path, objects: Sequence[ObjectInfo], work: Path, variant: str) -> Json:
    started = time.perf_counter()
    import dlt

    pipeline = dlt.pipeline(
        pipeline_name=f"bench_scd2_{variant}",
        destination=dlt.destinations.duckdb(str(work / f"dlt_{variant}.duckdb")),
        dataset_name=DATASET,
        pipelines_dir=str(work / "dlt_pipelines"),
    )
    setup = time.perf_counter() - started
    loader_format = "parquet" if variant == "parquet" else None
    runs = []
    for run_dir in run_dirs(observations):
        resources = [scd2_resource(o, run_dir / f"{o.name}.parquet", variant) for o in objects]
        begin, cpu = time.perf_counter(), time.process_time()
        pipeline.run(resources, loader_file_format=loader_format)
        elapsed, cpu = time.perf_counter() - begin, time.process_time() - cpu
        counts = row_counts(pipeline, objects)
        log(f"dlt {variant} {run_dir.name}: {elapsed:.2f} s, rows {counts}")
        runs.append(
            {"number": run_number(run_dir), "seconds": elapsed, "cpu_seconds": cpu, "rows": counts}
        )
    return {
        "tool": "dlt_scd2" if variant == "rows" else "dlt_scd2_parquet",
        "version": dlt.__version__,
        "setup_seconds": setup,
        "runs": runs,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--observations", type=Path, required=True)
    parser.add_argument("--objects", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--variant", choices=("rows", "parquet"), required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    args.work.mkdir(parents=True, exist_ok=True)
    emit(run_series(args.observations, load_objects(args.objects), args.work, args.variant))


if __name__ == "__main__":
    main()
