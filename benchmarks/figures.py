"""Headline figures derived from one size's result JSON (what the summary, the plot and the
README table show). Standard library only; every figure is None when it was not measured."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from benchmarks.common import Json

# Tools in the plot and the tables: key -> label.
TOOLS = {
    "scd_stage": "pipeline SCD stage (dbt step + dimension checks), 10 runs",
    "dbt_snapshot": "dbt snapshot CLI, 10 runs",
    "dlt_scd2": "dlt scd2 (rows), 10 runs",
    "dlt_scd2_parquet": "dlt scd2 (parquet), 10 runs",
    "rebuild": "SCD stage full rebuild (dbt build --full-refresh + checks), once",
    "full_load_rest": "full load REST -> Iceberg",
    "full_load_bulk": "full load Bulk 2.0 -> Iceberg",
    "iceberg_write": "Iceberg write of the full load",
    "whole_run_change": "whole sf-lakehouse run, 1 % changed",
}


def runs_of(result: Json, kind: str) -> list[Json]:
    runs = (result.get("pipeline") or {}).get("runs") or []
    return [r for r in runs if r.get("kind") == kind and "error" not in r]


def one_run(result: Json, kind: str) -> Json | None:
    runs = runs_of(result, kind)
    return runs[0] if runs else None


def series_complete(result: Json) -> bool:
    expected = result.get("config", {}).get("runs", 10)
    return len(runs_of(result, "series")) == expected


def total(values: Iterable[float | None]) -> float | None:
    numbers = list(values)
    if not numbers or any(v is None for v in numbers):
        return None
    return float(sum(v for v in numbers if v is not None))


def scd_stage_series(result: Json) -> float | None:
    if not series_complete(result):
        return None
    return total(r.get("scd_stage") for r in runs_of(result, "series"))


def peer(result: Json, tool: str) -> Json | None:
    found = (result.get("peers") or {}).get(tool)
    return found if found and not found.get("error") and found.get("runs") else None


def peer_series(result: Json, tool: str) -> float | None:
    found = peer(result, tool)
    if found is None or not series_complete(result):
        return None
    count = result.get("config", {}).get("runs", 10)
    runs = [r for r in found["runs"] if r["number"] <= count]
    return total(r["seconds"] for r in runs) if len(runs) == count else None


def full_load(result: Json, api: str) -> Json | None:
    load = ((result.get("pipeline") or {}).get("full_load") or {}).get(api)
    return load if load and load.get("available") and "error" not in load else None


def full_load_seconds(result: Json, api: str) -> float | None:
    load = full_load(result, api)
    return None if load is None else load["extract_seconds"] + load["write_seconds"]


def iceberg_write_seconds(result: Json) -> float | None:
    load = full_load(result, "bulk") or full_load(result, "rest")
    return None if load is None else load["write_seconds"]


def client_rate(load: Json | None) -> float | None:
    """Records per second of client CPU (extraction only: paging, parsing, Arrow)."""
    if load is None or not load.get("extract_cpu_seconds"):
        return None
    return load["records"] / load["extract_cpu_seconds"]


def wall_rate(load: Json | None) -> float | None:
    if load is None or not load.get("extract_seconds"):
        return None
    return load["records"] / load["extract_seconds"]


def run_seconds(run: Json | None) -> float | None:
    return None if run is None else run["process"]["seconds"]


def rebuild_seconds(result: Json) -> float | None:
    rebuild = (result.get("pipeline") or {}).get("rebuild") or {}
    return rebuild.get("seconds")


def pipeline_peak(result: Json) -> tuple[int | None, str]:
    """Highest process-tree RSS of a pipeline process: a run or a full load."""
    candidates: list[tuple[int, str]] = []
    for run in (result.get("pipeline") or {}).get("runs") or []:
        if "process" in run:
            label = f"run {run['number']} ({run['kind']})"
            candidates.append((run["process"]["peak_tree_rss_bytes"], label))
    for api in ("rest", "bulk"):
        load = full_load(result, api)
        if load is not None:
            candidates.append((load["process"]["peak_tree_rss_bytes"], f"full load {api}"))
    if not candidates:
        return None, ""
    return max(candidates)


def emulator_peak(result: Json) -> int | None:
    return (result.get("emulator") or {}).get("peak_rss_bytes")


def tool_seconds(result: Json) -> dict[str, float | None]:
    """Every tool's figure of one size (seconds)."""
    return {
        "scd_stage": scd_stage_series(result),
        "dbt_snapshot": peer_series(result, "dbt_snapshot"),
        "dlt_scd2": peer_series(result, "dlt_scd2"),
        "dlt_scd2_parquet": peer_series(result, "dlt_scd2_parquet"),
        "rebuild": rebuild_seconds(result),
        "full_load_rest": full_load_seconds(result, "rest"),
        "full_load_bulk": full_load_seconds(result, "bulk"),
        "iceberg_write": iceberg_write_seconds(result),
        "whole_run_change": run_seconds(one_run(result, "change")),
    }


def gib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 2**30:.2f} GiB"


def mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f} MiB"


def secs(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f} s" if value < 100 else f"{value:.0f} s"


def rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1000:.0f}k/s"


def mean(values: Iterable[Any]) -> float | None:
    numbers = [v for v in values if v is not None]
    return sum(numbers) / len(numbers) if numbers else None
