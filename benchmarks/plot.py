"""The PNG plot: time against size for every tool, log-log (`benchmarks/results/*.png`).

python -m benchmarks.plot        # re-draw from benchmarks/results/size-*.json
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmarks import figures
from benchmarks.common import PLOT_PATH, Json

PANELS = (
    (
        "SCD Type 2 on the same observations",
        ("scd_stage", "dbt_snapshot", "dlt_scd2", "dlt_scd2_parquet", "rebuild"),
    ),
    (
        "Pipeline stages",
        ("full_load_rest", "full_load_bulk", "iceberg_write", "whole_run_change"),
    ),
)


def series(results: Sequence[Json], tool: str) -> tuple[list[int], list[float]]:
    points = []
    for result in results:
        value = figures.tool_seconds(result)[tool] if "pipeline" in result else None
        if value is not None and value > 0:
            points.append((result["org"]["records"], value))
    points.sort()
    return [p[0] for p in points], [p[1] for p in points]


def render(results: Sequence[Json], path: Path = PLOT_PATH) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [r for r in results if "pipeline" in r]
    if not measured:
        return None
    fig, axes = plt.subplots(1, len(PANELS), figsize=(14, 5.5))
    for axis, (title, tools) in zip(axes, PANELS, strict=True):
        for tool in tools:
            xs, ys = series(measured, tool)
            if xs:
                axis.plot(xs, ys, marker="o", label=figures.TOOLS[tool])
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("records in the org")
        axis.set_ylabel("seconds")
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7, loc="upper left")
    commit = measured[-1].get("features", {}).get("git", {}).get("commit", "?")
    fig.suptitle(f"sf_lakehouse benchmarks (commit {commit})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    from benchmarks.stored import load_results

    print(render(load_results()))
