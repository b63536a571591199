"""The pipeline side of one size: a full load through REST and through Bulk API 2.0, the runs
of the series with the emulator's clock moving forward (each one a whole `sf-lakehouse run`
process), a run with nothing changed, a run with 1 % changed, and the SCD stage rebuilt from
scratch (`dbt build --full-refresh` plus the dimension checks)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import REPO_ROOT, Json, log
from benchmarks.emulator import EmulatorProcess
from benchmarks.measure import run_measured
from benchmarks.project import Project, ProjectError

RUN_ID = re.compile(r"\brun ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")
# Generous limits: a step that takes longer is reported as failed, not waited for forever.
RUN_TIMEOUT = 3 * 3600.0


@dataclass(frozen=True)
class SizeContext:
    """Where one size's work happens."""

    project: Project
    work: Path

    @property
    def lakehouse(self) -> Path:
        return self.work / "lakehouse"

    @property
    def observations(self) -> Path:
        return self.work / "observations"

    @property
    def logs(self) -> Path:
        return self.work / "logs"


def full_load(ctx: SizeContext, emulator: EmulatorProcess, api: str) -> Json:
    """Every object's records at the end of the history, into an empty lakehouse."""
    home = ctx.work / f"full-load-{api}"
    shutil.rmtree(home, ignore_errors=True)
    emulator.reset_peak()
    answer, measured = ctx.project.call(
        "benchmarks.project_side.extract",
        "--env-file",
        str(emulator.env_file),
        "--home",
        str(home),
        "--api",
        api,
        log_path=ctx.logs / f"full-load-{api}.log",
        timeout=RUN_TIMEOUT,
    )
    shutil.rmtree(home, ignore_errors=True)
    if not answer.get("available"):
        return answer
    return {
        **answer,
        "process": measured.summary(),
        "emulator_peak_rss_bytes": emulator.peak_rss,
    }


def _run_id(stdout: str) -> str | None:
    match = RUN_ID.search(stdout)
    return match.group(1) if match else None


def pipeline_run(ctx: SizeContext, emulator: EmulatorProcess, plan: Json) -> Json:
    """One whole `sf-lakehouse run` at the plan's clock, then what it did (inspect_run)."""
    number = plan["number"]
    emulator.set_clock(plan["clock"])
    log_path = ctx.logs / f"run-{number:02d}.log"
    measured = run_measured(
        ctx.project.cli("run", "--env-file", str(emulator.env_file), "--quiet"),
        env=ctx.project.env(SF_LAKEHOUSE_HOME=str(ctx.lakehouse)),
        log_path=log_path,
        cwd=REPO_ROOT,
        timeout=RUN_TIMEOUT,
    )
    # The id `sf-lakehouse run` prints; else the instance's newest run (another output format).
    run_id = _run_id(measured.stdout) or _run_id(log_path.read_text("utf-8", errors="replace"))
    result: Json = {**plan, "process": measured.summary()}
    if measured.returncode != 0:
        return {**result, "error": f"sf-lakehouse run exited {measured.returncode}; {log_path}"}
    answer, _ = ctx.project.call(
        "benchmarks.project_side.inspect_run",
        "--home",
        str(ctx.lakehouse),
        "--run-id",
        run_id or "latest",
        "--export",
        str(ctx.observations / f"run-{number:02d}"),
        log_path=ctx.logs / f"inspect-{number:02d}.log",
    )
    _drop_dbt_run_dirs(answer["run_id"])
    return {**result, **answer}


def _drop_dbt_run_dirs(run_id: str) -> None:
    """dagster-dbt leaves a target directory per run (`sf_lakehouse_dbt-<run id[:7]>-...`)."""
    target = REPO_ROOT / "dbt_project" / "target"
    for path in target.glob(f"sf_lakehouse_dbt-{run_id[:7]}-*"):
        shutil.rmtree(path, ignore_errors=True)


def scd_rebuild(ctx: SizeContext) -> Json:
    """The SCD stage from scratch on the final raw tables: dbt build --full-refresh + checks."""
    answer, measured = ctx.project.call(
        "benchmarks.project_side.scd_stage",
        "--home",
        str(ctx.lakehouse),
        "--full-refresh",
        log_path=ctx.logs / "scd-full-refresh.log",
        timeout=RUN_TIMEOUT,
    )
    return {**answer, "process": measured.summary()}


def run_pipeline_side(ctx: SizeContext, emulator: EmulatorProcess, org: Json) -> Json:
    """Full loads (REST, Bulk), the runs, and the rebuild, in this order."""
    final_clock = org["runs"][-1]["clock"]
    emulator.set_clock(final_clock)
    loads = {}
    for api in ("rest", "bulk"):
        log(f"  full load through {api}")
        loads[api] = _guarded(lambda api=api: full_load(ctx, emulator, api))
    runs = []
    for plan in org["runs"]:
        log(f"  run {plan['number']} ({plan['kind']}) at {plan['clock']}")
        run = _guarded(lambda plan=plan: pipeline_run(ctx, emulator, plan))
        runs.append({**plan, **run})
        if "error" in run:
            log(f"    failed: {run['error']}")
            break
        log(
            f"    {run['process']['seconds']:.1f} s, SCD stage {run['scd_stage']:.1f} s, "
            f"appended {sum(run['appended'].values())}"
        )
    rebuild = _guarded(lambda: scd_rebuild(ctx)) if runs and "error" not in runs[-1] else None
    return {"full_load": loads, "runs": runs, "rebuild": rebuild}


def _guarded(step: Callable[[], Json]) -> Json:
    """A step's answer, or {"error": ...} when the project side failed."""
    try:
        return step()
    except (ProjectError, OSError) as error:  # OSError: the emulator went away
        return {"error": f"{type(error).__name__}: {error}"}
