"""`make bench`: every size of BENCH_SIZES, the pipeline and its peers on the same data.

For each size: generate the org, start the emulator, full loads through REST and Bulk API 2.0,
the runs (each a whole `sf-lakehouse run`), a quiet run, a run with 1 % changed, the SCD stage
rebuilt from scratch; then dlt's scd2 (rows and parquet) and dbt snapshot on the observations
the raw tables received in each run, their row counts checked against the pipeline's
dimensions. Before the sizes, `make demo`'s time (benchmarks/demo.py). Writes
`benchmarks/results/size-<N>.json` and `demo.json`, the plot, and README's "Benchmarks"
section; prints a summary. Settings: see `BenchConfig` (BENCH_* environment variables).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import signal
import sys
import time
from pathlib import Path

import psutil

from benchmarks import figures, plot, report, stored
from benchmarks.common import (
    REPO_ROOT,
    BenchConfig,
    Json,
    last_json_line,
    log,
    result_path,
    size_label,
    write_json,
)
from benchmarks.demo import measure_demo
from benchmarks.emulator import EmulatorProcess
from benchmarks.measure import run_measured
from benchmarks.pipeline_series import SizeContext, run_pipeline_side
from benchmarks.project import Project, ProjectError

# Until a size has been measured, assume what the emulator held per version when this
# harness was written (about 4 KB of Python objects); later sizes use the measured value.
DEFAULT_EMULATOR_BYTES_PER_VERSION = 4096
MEMORY_HEADROOM = 0.6  # the pipeline and the peers need memory too
PEER_TIMEOUT = 6 * 3600.0


def machine() -> Json:
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "python": platform.python_version(),
    }


def detect_features(project: Project, logs: Path) -> Json:
    answer, _ = project.call("benchmarks.project_side.features", log_path=logs / "features.log")
    return answer  # type: ignore[no-any-return]


def generate_org(cfg: BenchConfig, project: Project, records: int, logs: Path) -> Json:
    output = cfg.workdir / "orgs" / f"{records}-seed{cfg.seed}"
    answer, measured = project.call(
        "benchmarks.project_side.org",
        "--records",
        str(records),
        "--seed",
        str(cfg.seed),
        "--runs",
        str(cfg.runs),
        "--change-percent",
        str(cfg.change_percent),
        "--output",
        str(output),
        log_path=logs / "org.log",
    )
    return {**answer, "process": measured.summary()}


def memory_verdict(cfg: BenchConfig, versions: int, bytes_per_version: float) -> str | None:
    """Why this size cannot run here (the emulator would not fit), or None."""
    needed = versions * bytes_per_version
    available = psutil.virtual_memory().available * MEMORY_HEADROOM
    if cfg.force or needed <= available:
        return None
    return (
        f"the emulator would need about {needed / 2**30:.1f} GiB ({versions} versions at "
        f"{bytes_per_version:.0f} bytes each, as measured) and {available / 2**30:.1f} GiB is "
        "available; set BENCH_FORCE=1 to try anyway"
    )


def peer_command(tool: str, project: Project, work: Path, objects: Path) -> list[str]:
    common = ["--observations", str(work / "observations"), "--objects", str(objects)]
    if tool == "dbt_snapshot":
        module = "benchmarks.peers.dbt_snapshot.runner"
        extra = ["--work", str(work / "peers" / tool), "--dbt", str(project.dbt())]
    else:
        module = "benchmarks.peers.dlt_scd2"
        variant = "parquet" if tool.endswith("parquet") else "rows"
        extra = ["--work", str(work / "peers" / tool), "--variant", variant]
    return [sys.executable, "-m", module, *common, *extra]


def run_peer(tool: str, project: Project, work: Path, objects: Path) -> Json:
    log(f"  peer {tool}")
    log_path = work / "logs" / f"peer-{tool}.log"
    measured = run_measured(
        peer_command(tool, project, work, objects),
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        log_path=log_path,
        cwd=REPO_ROOT,
        timeout=PEER_TIMEOUT,
    )
    if measured.returncode != 0:
        return {"error": f"{tool} exited {measured.returncode}; see {log_path}"}
    answer: Json = last_json_line(measured.stdout)
    return {**answer, "process": measured.summary()}


def compare_counts(runs: list[Json], peer: Json) -> Json:
    """The peer's row count per object after each run against the pipeline's dimension."""
    expected = {r["number"]: r["dimension_rows"] for r in runs if "dimension_rows" in r}
    mismatches = []
    compared = 0
    for peer_run in peer.get("runs", []):
        pipeline_rows = expected.get(peer_run["number"])
        if pipeline_rows is None:
            continue
        compared += 1
        for name, count in sorted(pipeline_rows.items()):
            got = peer_run["rows"].get(name)
            if got != count:
                mismatches.append(
                    {"run": peer_run["number"], "object": name, "pipeline": count, "peer": got}
                )
    return {
        "compared_runs": compared,
        "matches": compared > 0 and not mismatches,
        "mismatch_count": len(mismatches),
        "mismatches": mismatches[:20],
    }


def run_peers(cfg: BenchConfig, project: Project, work: Path, runs: list[Json]) -> Json:
    if not (work / "observations").is_dir():
        return {}
    objects = work / "objects.json"
    peers = {}
    for tool in cfg.peers:
        result = run_peer(tool, project, work, objects)
        if "error" not in result:
            result["row_counts"] = compare_counts(runs, result)
        peers[tool] = result
    return peers


def prepare_work(cfg: BenchConfig, records: int, features: Json) -> Path:
    work = cfg.workdir / f"size-{records}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    write_json(work / "objects.json", features["objects"])
    return work


def emulator_timeout(versions: int) -> float:
    return 120.0 + versions / 2000


def bench_size(
    cfg: BenchConfig, project: Project, features: Json, records: int, bytes_per_version: float
) -> Json:
    started = time.perf_counter()
    work = prepare_work(cfg, records, features)
    result: Json = {
        "records_requested": records,
        "label": size_label(records),
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {"runs": cfg.runs, "change_percent": cfg.change_percent, "seed": cfg.seed},
        "machine": machine(),
        "features": {k: v for k, v in features.items() if k != "objects"},
    }
    log(f"size {size_label(records)}: generating the org")
    org = generate_org(cfg, project, records, work / "logs")
    result["org"] = {k: v for k, v in org.items() if k not in ("runs", "key")}
    verdict = memory_verdict(cfg, org["versions"], bytes_per_version)
    if verdict is not None:
        log(f"size {size_label(records)} skipped: {verdict}")
        return {**result, "skipped": verdict}
    ctx = SizeContext(project=project, work=work)
    history = Path(org["history_file"])
    log(f"size {size_label(records)}: {org['records']} records, {org['versions']} versions")
    with EmulatorProcess(project, history, work / "emulator", org["runs"][0]["clock"]) as emulator:
        emulator.start(emulator_timeout(org["versions"]))
        loaded = figures.mib(emulator.rss_after_load)
        log(f"  emulator loaded in {emulator.load_seconds:.1f} s, {loaded}")
        result["pipeline"] = run_pipeline_side(ctx, emulator, org)
        result["emulator"] = emulator.stats()
    result["emulator"]["bytes_per_version"] = emulator.rss_after_load / max(org["versions"], 1)
    result["peers"] = run_peers(cfg, project, work, result["pipeline"]["runs"])
    result["seconds"] = time.perf_counter() - started
    if not cfg.keep_work:
        shutil.rmtree(work / "lakehouse", ignore_errors=True)
        shutil.rmtree(work / "peers", ignore_errors=True)
    return result


def _measured_bytes_per_version(result: Json) -> float | None:
    """What the emulator held per record version at a size big enough to say (10k+ versions)."""
    measured = (result.get("emulator") or {}).get("bytes_per_version")
    if measured and (result.get("org") or {}).get("versions", 0) >= 10_000:
        return float(measured)
    return None


def stored_bytes_per_version(results: list[Json]) -> float:
    """The largest measured size's figure (kept results), so that `BENCH_SIZES=1000000` alone
    does not fall back to the harness's first guess."""
    measured = [
        (result["org"]["versions"], value)
        for result in results
        if (value := _measured_bytes_per_version(result)) is not None
    ]
    return max(measured)[1] if measured else DEFAULT_EMULATOR_BYTES_PER_VERSION


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM like Ctrl+C: unwind, so the emulator and running steps are stopped."""
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    cfg = BenchConfig.from_environment()
    project = Project(cfg.project_python)
    project.check()
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    features = detect_features(project, cfg.workdir)
    log(f"bulk: {features['bulk']['detail']}; incremental: {features['incremental']['detail']}")
    bytes_per_version = stored_bytes_per_version(stored.load_results())
    if cfg.demo:
        log("make demo: sf-lakehouse demo into an empty home")
        demo = measure_demo(project, cfg.workdir)
        write_json(stored.DEMO_PATH, demo)
        log(f"  {demo['process']['seconds']:.1f} s, exit {demo['returncode']}")
    results = []
    for records in sorted(cfg.sizes):
        try:
            result = bench_size(cfg, project, features, records, bytes_per_version)
        except ProjectError as error:
            result = {"records_requested": records, "error": str(error)}
        write_json(result_path(records), result)
        results.append(result)
        bytes_per_version = _measured_bytes_per_version(result) or bytes_per_version
        print(report.summary_text([result]), flush=True)
    all_results, demo = stored.load_results(), stored.load_demo()
    plot.render(all_results)
    if cfg.update_readme:
        report.update_readme(all_results, demo)
    print(report.summary_text(all_results, demo))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as interrupted:
        log(f"interrupted ({interrupted}); results of the sizes finished so far are kept")
        sys.exit(130)
