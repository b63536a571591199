"""The stored benchmark results: `benchmarks/results/size-<N>.json` (one per size) and
`benchmarks/results/demo.json` (`make demo`'s time), and lookups over them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import RESULTS_DIR, Json, read_json

DEMO_PATH = RESULTS_DIR / "demo.json"


def load_results(directory: Path = RESULTS_DIR) -> list[Json]:
    results = [read_json(p) for p in directory.glob("size-*.json")]
    return sorted(results, key=lambda r: r["records_requested"])


def measured(results: Sequence[Json]) -> list[Json]:
    return [r for r in results if "pipeline" in r]


def at_size(results: Sequence[Json], records: int) -> Json | None:
    for result in measured(results):
        if result["records_requested"] == records:
            return result
    return None


def status_of(result: Json) -> str:
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    if "error" in result:
        return f"failed: {result['error']}"
    return "measured"


def largest(results: Sequence[Json]) -> Json | None:
    done = measured(results)
    return done[-1] if done else None


def load_demo(path: Path = DEMO_PATH) -> Json | None:
    return read_json(path) if path.is_file() else None
