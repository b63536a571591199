"""What both sides of the benchmark share: settings from the environment, paths, JSON.

Standard library only: the harness (benchmarks/.venv, with dlt, psutil, matplotlib) and the
project side (`benchmarks.project_side`, run with the project's own venv) both import it.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO_ROOT / "benchmarks"
RESULTS_DIR = BENCH_DIR / "results"
PLOT_PATH = RESULTS_DIR / "time_vs_size.png"
README_PATH = REPO_ROOT / "README.md"

DEFAULT_SIZES = (400, 10_000, 100_000, 1_000_000)
DEFAULT_RUNS = 10
PEERS = ("dlt_scd2", "dlt_scd2_parquet", "dbt_snapshot")
# Share of an org's records that are Users, Accounts and Opportunities: generate_org's own
# defaults (accounts = users // 3, opportunities = users // 2), i.e. 6 : 2 : 3.
ORG_SHARES = (6, 2, 3)

Json = dict[str, Any]


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise SystemExit(f"{name}={text!r}: expected comma-separated integers") from None
    if not values or min(values) < 1:
        raise SystemExit(f"{name}={text!r}: expected positive integers, e.g. 10000,100000")
    return values


def _names(text: str, name: str, known: tuple[str, ...]) -> tuple[str, ...]:
    values = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise SystemExit(f"{name}: unknown {', '.join(unknown)}; known: {', '.join(known)}")
    return values


def _default_project_python() -> Path:
    return REPO_ROOT / ".venv" / "bin" / "python"


@dataclass(frozen=True)
class BenchConfig:
    """Everything `make bench` can be told, from BENCH_* environment variables."""

    sizes: tuple[int, ...]
    runs: int
    change_percent: float
    seed: int
    peers: tuple[str, ...]
    workdir: Path
    project_python: Path
    keep_work: bool
    force: bool
    update_readme: bool
    demo: bool

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> BenchConfig:
        env = os.environ if environ is None else environ
        sizes = _ints(env.get("BENCH_SIZES", ",".join(map(str, DEFAULT_SIZES))), "BENCH_SIZES")
        runs = _ints(env.get("BENCH_RUNS", str(DEFAULT_RUNS)), "BENCH_RUNS")[0]
        peers = _names(env.get("BENCH_PEERS", ",".join(PEERS)), "BENCH_PEERS", PEERS)
        return cls(
            sizes=sizes,
            runs=max(runs, 2),
            change_percent=float(env.get("BENCH_CHANGE_PERCENT", "1")),
            seed=int(env.get("BENCH_SEED", "7")),
            peers=peers,
            workdir=Path(env.get("BENCH_WORKDIR") or BENCH_DIR / "work").resolve(),
            project_python=Path(env.get("BENCH_PROJECT_PYTHON") or _default_project_python()),
            keep_work=env.get("BENCH_KEEP_WORK", "0") == "1",
            force=env.get("BENCH_FORCE", "0") == "1",
            update_readme=env.get("BENCH_UPDATE_README", "1") == "1",
            demo=env.get("BENCH_DEMO", "1") == "1",
        )


def org_shape(records: int) -> tuple[int, int, int]:
    """(users, accounts, opportunities) adding up to `records` distinct records."""
    total = sum(ORG_SHARES)
    users = max(1, round(records * ORG_SHARES[0] / total))
    accounts = round(records * ORG_SHARES[1] / total)
    return users, accounts, max(records - users - accounts, 0)


def size_label(records: int) -> str:
    """400 -> '400', 10000 -> '10k', 1000000 -> '1M'."""
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if records >= scale and records % (scale // 10) == 0:
            value = records / scale
            return f"{value:g}{unit}"
    return str(records)


def result_path(records: int) -> Path:
    return RESULTS_DIR / f"size-{records}.json"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", "utf-8")
    partial.replace(path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def emit(result: Any) -> None:
    """A project-side module's answer: one JSON line on stdout (logs go to stderr)."""
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def last_json_line(text: str) -> Any:
    """The JSON answer of a project-side module: its last stdout line that parses."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith(("{", "[")):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise ValueError(f"no JSON answer in output: {text[-500:]!r}")


def seconds(value: float | None, digits: int = 2) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)
