"""A full load of every object, through REST or Bulk API 2.0, into an empty lakehouse: the
pipeline's own extraction (`extract_increment`) and its own Iceberg append (`ensure_table`,
`append_rows` with the raw layout), timed apart.

The API is forced through the object spec: `extraction.api` (`rest` / `bulk`) where specs have
it, else `extraction.bulk_threshold` set above any count (REST) or to the lowest value the spec
accepts (Bulk). Without that option the checkout has
no Bulk API and `--api bulk` answers `{"available": false}`.

    python -m benchmarks.project_side.extract --env-file FILE --home DIR --api rest|bulk
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import Json, emit, log
from benchmarks.project_side.features import BULK_OPTION, bulk_support

API_OPTION = "api"  # extraction.api: auto | rest | bulk, where the client has it
REST_THRESHOLDS = (10**12, 2**31 - 1, 10**9, 10**7)
BULK_THRESHOLDS = (0, 1, 2, 200, 1000, 2000, 10_000)


def with_threshold(spec: Any, candidates: Iterable[int]) -> Any:
    """The spec with the first `bulk_threshold` among `candidates` that validates."""
    from pydantic import ValidationError

    options = type(spec.extraction)
    current = spec.extraction.model_dump()
    for value in candidates:
        try:
            extraction = options.model_validate({**current, BULK_OPTION: value})
        except ValidationError:
            continue
        return spec.model_copy(update={"extraction": extraction})
    raise ValueError(f"no {BULK_OPTION} among {list(candidates)} validates for {spec.api_name}")


def spec_for(spec: Any, api: str, bulk_available: bool) -> Any:
    """The spec forcing `api`: through `extraction.api` (rest|bulk) when specs have it, else
    through the threshold."""
    if not bulk_available:
        return spec
    options = type(spec.extraction)
    if API_OPTION in getattr(options, "model_fields", {}):
        current = spec.extraction.model_dump()
        extraction = options.model_validate({**current, API_OPTION: api})
        return spec.model_copy(update={"extraction": extraction})
    return with_threshold(spec, BULK_THRESHOLDS if api == "bulk" else REST_THRESHOLDS)


def extract_object(client: Any, catalog: Any, settings: Any, spec: Any) -> Json:
    from sf_lakehouse.extraction import extract_increment
    from sf_lakehouse.lakehouse.tables import RAW_LAYOUT, append_rows, ensure_table

    started, cpu_started = time.perf_counter(), time.process_time()
    increment = extract_increment(
        client, None, spec, run_id="bench-full-load", extracted_at=dt.datetime.now(dt.UTC)
    )
    extracted, cpu_extracted = time.perf_counter(), time.process_time()
    identifier = settings.table_identifier(spec.raw_asset_key)
    table = ensure_table(catalog, identifier, increment.rows.schema, RAW_LAYOUT)
    written = append_rows(table, increment.rows)
    finished = time.perf_counter()
    return {
        "records": increment.fetched,
        "written": written,
        "api": increment.api,
        "api_calls": increment.api_calls,
        "extract_seconds": extracted - started,
        "extract_cpu_seconds": cpu_extracted - cpu_started,
        "write_seconds": finished - extracted,
        BULK_OPTION: getattr(spec.extraction, BULK_OPTION, None),
        f"extraction_{API_OPTION}": getattr(spec.extraction, API_OPTION, None),
    }


def full_load(env_file: Path, home: Path, api: str) -> Json:
    from sf_lakehouse.config import resolve_settings
    from sf_lakehouse.lakehouse.tables import open_catalog
    from sf_lakehouse.pipeline import apply_environment, load_env_file
    from sf_lakehouse.salesforce.client import connect, connection_from_environment

    bulk = bulk_support()
    if api == "bulk" and not bulk["available"]:
        return {"available": False, "reason": bulk["detail"]}
    apply_environment(load_env_file(env_file))
    settings = resolve_settings("local", home=home)
    catalog = open_catalog(settings.catalog_properties())
    client = connect(connection_from_environment(settings, os.environ))
    objects: Json = {}
    for spec in settings.objects:
        log(f"full load of {spec.api_name} ({api})")
        objects[spec.name] = extract_object(
            client, catalog, settings, spec_for(spec, api, bulk["available"])
        )
    totals = {
        key: sum(o[key] for o in objects.values())
        for key in ("records", "written", "extract_seconds", "extract_cpu_seconds", "write_seconds")
    }
    apis = sorted({o["api"] for o in objects.values()})
    return {"available": True, "api": "/".join(apis), "objects": objects, **totals}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env-file", type=Path, required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--api", choices=("rest", "bulk"), required=True)
    args = parser.parse_args(argv)
    emit(full_load(args.env_file, args.home.resolve(), args.api))


if __name__ == "__main__":
    main()
