"""Running the pipeline job outside the UI (the `run`, `demo` and `repair` commands).

A run started here is tagged with the lakehouse home and the pid of the `sf-lakehouse` process;
its full Dagster and dbt log goes to `<home>/logs/run-<run id>.log`, and the terminal gets a
short summary. A run whose process was killed (SIGKILL) stays STARTED in the instance until the
next command on the same home takes the lock: `mark_abandoned_runs` marks it failed then and
frees the pool slots it held.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import (
    DagsterInstance,
    DagsterRun,
    Definitions,
    ExecuteInProcessResult,
    RunsFilter,
)
from dagster_shared.error import SerializableErrorInfo

from sf_lakehouse.config import Settings
from sf_lakehouse.definitions import PIPELINE_JOB_NAME, build_definitions
from sf_lakehouse.defs.jobs import IN_PROGRESS

# Re-exported: callers read env files through here (they live in a Dagster-free module).
from sf_lakehouse.env_file import apply_environment as apply_environment
from sf_lakehouse.env_file import load_env_file as load_env_file
from sf_lakehouse.lakehouse.writable import storage_fix
from sf_lakehouse.launch_tags import CLI, HOME_TAG, LAUNCHED_BY_TAG, LOG_TAG
from sf_lakehouse.launch_tags import PID_TAG as PID_TAG  # re-exported: commands read it here
from sf_lakehouse.owner_only import private_dir

# Telemetry and the first-run pop-up off; the daemon evaluates FreshnessPolicy only when enabled.
# Every concurrency pool (sf_lakehouse.defs.pools) admits one step at a time.
INSTANCE_YAML = """\
# Written by sf-lakehouse (sf_lakehouse/pipeline.py); rewritten when the project changes it.
telemetry:
  enabled: false
nux:
  enabled: false
freshness:
  enabled: true
concurrency:
  pools:
    default_limit: 1
"""
# Earlier INSTANCE_YAMLs: a home that still has one of these gets the current one.
_OLD_INSTANCE_YAMLS = (
    "telemetry:\n  enabled: false\nnux:\n  enabled: false\nfreshness:\n  enabled: true\n",
)
_WRITTEN_BY_US = "# Written by sf-lakehouse"


INTERRUPTED = "DagsterExecutionInterruptedError"
CHECK_FAILED = "DagsterAssetCheckFailedError"
REPAIRABLE_CHECK = "raw_versions_are_unique"


def dagster_instance(settings: Settings) -> DagsterInstance:
    """The instance under DAGSTER_HOME, else a persistent one under SF_LAKEHOUSE_HOME."""
    if os.environ.get("DAGSTER_HOME"):
        return DagsterInstance.get()
    home = private_dir(settings.dagster_home)
    config = home / "dagster.yaml"
    current = config.read_text(encoding="utf-8") if config.exists() else None
    if current is None or (
        current != INSTANCE_YAML
        and (current in _OLD_INSTANCE_YAMLS or current.startswith(_WRITTEN_BY_US))
    ):
        config.write_text(INSTANCE_YAML, encoding="utf-8")
    return DagsterInstance.from_config(str(home))


def run_tags(settings: Settings, log_path: Path | None = None) -> dict[str, str]:
    """Tags of a run started by this process: which home, which pid, where its log is."""
    tags = {
        LAUNCHED_BY_TAG: CLI,
        HOME_TAG: str(settings.home.resolve()),
        PID_TAG: str(os.getpid()),
    }
    if log_path is not None:
        tags[LOG_TAG] = str(log_path)
    return tags


def mark_abandoned_runs(instance: DagsterInstance, settings: Settings) -> list[DagsterRun]:
    """Mark failed the runs of this home that an `sf-lakehouse` process started and never
    finished (it was killed), and free the pool slots they hold. Call it holding the home's
    lock: then no other `sf-lakehouse` process of this home is running, so every such run is
    abandoned."""
    runs = instance.get_runs(
        filters=RunsFilter(
            statuses=IN_PROGRESS,
            tags={LAUNCHED_BY_TAG: CLI, HOME_TAG: str(settings.home.resolve())},
        )
    )
    abandoned = [run for run in runs if run.tags.get(PID_TAG) != str(os.getpid())]
    for run in abandoned:
        instance.report_run_failed(
            run,
            message=f"The sf-lakehouse process (pid {run.tags.get(PID_TAG, '?')}) that ran this "
            f"run ended without finishing it (killed); marked failed by pid {os.getpid()}.",
        )
        free_pool_slots(instance, run.run_id)
    return abandoned


def free_pool_slots(instance: DagsterInstance, run_id: str) -> None:
    """Release the concurrency slots a finished run still holds (a killed run keeps them)."""
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        storage.free_concurrency_slots_for_run(run_id)


def close_run(instance: DagsterInstance, run_id: str, reason: str) -> bool:
    """After this process stopped executing a run: mark it failed if it is still in progress,
    and free its slots. Returns True when it had to be marked."""
    run = instance.get_run_by_id(run_id)
    marked = False
    if run is not None and run.status in IN_PROGRESS:
        instance.report_run_failed(run, message=reason)
        marked = True
    free_pool_slots(instance, run_id)
    return marked


def new_run_id() -> str:
    return str(uuid.uuid4())


def run_log_path(settings: Settings, run_id: str) -> Path:
    return settings.logs_dir / f"run-{run_id}.log"


@contextlib.contextmanager
def output_to(log_path: Path) -> Iterator[None]:
    """Everything this process prints (Dagster's console log, dbt's output that dagster-dbt
    echoes, warnings) goes to `log_path`, line by line, while the block runs."""
    private_dir(log_path.parent)
    with (
        log_path.open("a", encoding="utf-8", buffering=1) as log,
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
    ):
        yield


def run_pipeline(
    settings: Settings,
    instance: DagsterInstance,
    log_level: str = "INFO",
    job_name: str = PIPELINE_JOB_NAME,
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    definitions: Definitions | None = None,
) -> ExecuteInProcessResult:
    """Materialize the asset graph once (extract every object, then dbt build); `job_name`
    picks one object's job instead. `definitions`: already built for `settings` (a process
    builds them once: the follow-up run reuses them)."""
    defs = definitions or build_definitions(settings)
    job = defs.resolve_job_def(job_name)
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    return job.execute_in_process(
        instance=instance,
        run_config=run_config,
        raise_on_error=False,
        run_id=run_id,
        tags=dict(tags or {}),
    )


# --- what went wrong, in a few lines ---------------------------------------------------------


def _root(error: SerializableErrorInfo | None) -> SerializableErrorInfo | None:
    while error is not None and error.cause is not None:
        error = error.cause
    return error


def short_error(error: SerializableErrorInfo | None) -> str:
    """The innermost cause as one line: the project's own errors by their message alone,
    others as `Class: message`."""
    if error is None:
        return "unknown error"
    while error.cause is not None:
        error = error.cause
    if error.cls_name == INTERRUPTED:
        return "interrupted"
    lines = error.message.strip().splitlines()
    text = lines[0].strip() if lines else error.cls_name or "unknown error"
    qualified = re.match(r"^([A-Za-z_][\w.]*)\.(\w+): (.*)$", text)
    if qualified:
        module, cls, message = qualified.groups()
        text = message if module.startswith("sf_lakehouse") else f"{cls}: {message}"
    return text if len(text) <= 400 else text[:397] + "..."


def _repair_hint(asset_key: str, settings: Settings | None) -> str:
    if settings is None:
        return "; fix: sf-lakehouse repair"
    for spec in settings.objects:
        if asset_key == "/".join(spec.raw_asset_key):
            return f"; fix: sf-lakehouse repair --object {spec.api_name}"
    return "; fix: sf-lakehouse repair"


def run_problems(result: ExecuteInProcessResult, settings: Settings | None = None) -> list[str]:
    """Failed steps and failed asset checks of a run, one readable line each (steps failing
    for the same reason share a line)."""
    by_message: dict[str, list[str]] = {}
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error if event.step_failure_data else None
        if _root(error) is not None and _root(error).cls_name == CHECK_FAILED:
            continue  # a blocking check failed: its own line below says which and why
        by_message.setdefault(short_error(error), []).append(event.step_key or "?")
    problems = []
    for message, steps in by_message.items():
        label = f"step {steps[0]}" if len(steps) == 1 else f"steps {', '.join(sorted(steps))}"
        fix = storage_fix(message, settings) if settings is not None else None
        problems.append(f"{label} failed: {message}" + (f"; fix: {fix}" if fix else ""))
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed:
            summary = evaluation.metadata.get("summary")
            detail = summary.value if summary is not None else evaluation.description or ""
            asset = evaluation.asset_key.to_user_string()
            hint = (
                _repair_hint(asset, settings) if evaluation.check_name == REPAIRABLE_CHECK else ""
            )
            problems.append(f"check {evaluation.check_name} on {asset} failed: {detail}{hint}")
    return problems


def skipped_steps(result: ExecuteInProcessResult) -> list[str]:
    return sorted({e.step_key for e in result.get_step_skipped_events() if e.step_key})


def was_interrupted(result: ExecuteInProcessResult) -> bool:
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error if event.step_failure_data else None
        while error is not None:
            if error.cls_name in (INTERRUPTED, "KeyboardInterrupt"):
                return True
            error = error.cause
    return False


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    succeeded: bool
    problems: tuple[str, ...]
    skipped: tuple[str, ...]
    interrupted: bool

    @classmethod
    def of(cls, result: ExecuteInProcessResult, settings: Settings) -> RunSummary:
        return cls(
            run_id=result.run_id,
            succeeded=result.success,
            problems=tuple(run_problems(result, settings)),
            skipped=tuple(skipped_steps(result)),
            interrupted=was_interrupted(result),
        )


def _raw_materializations(result: ExecuteInProcessResult, settings: Settings) -> dict[str, Any]:
    """Per object: the metadata of its raw asset's materialization in this run."""
    found = {}
    nodes = {n.name for n in result.job_def.nodes}
    for spec in settings.objects:
        node = "__".join(spec.raw_asset_key)
        if node not in nodes:
            continue
        for materialization in result.asset_materializations_for_node(node):
            if "rows_extracted" in materialization.metadata:
                found[spec.api_name] = materialization.metadata
                break
    return found


def _number(metadata: Any, name: str) -> int:
    value = metadata.get(name)
    return int(value.value) if value is not None and isinstance(value.value, int) else 0


def extraction_counts(result: ExecuteInProcessResult, settings: Settings) -> dict[str, str]:
    """Per object: `N read, M new` from the raw assets' metadata, with the values rejected and
    the requests the client retried when there were any."""
    counts = {}
    for name, metadata in _raw_materializations(result, settings).items():
        text = (
            f"{_number(metadata, 'rows_extracted')} read, {_number(metadata, 'rows_appended')} new"
        )
        for key, label in (("rows_rejected", "values set aside"), ("retries", "requests retried")):
            if _number(metadata, key):
                text += f", {_number(metadata, key)} {label}"
        counts[name] = text
    return counts


def rejects_warnings(result: ExecuteInProcessResult, settings: Settings) -> list[str]:
    """One line per object whose values this run set aside (how many, where, the first reason:
    it names the field and the fix), per type change it met, and per object that read versions
    stamped after the org's clock."""
    from sf_lakehouse.lakehouse.tables import load_table_or_none, open_catalog

    lines = []
    for name, metadata in _raw_materializations(result, settings).items():
        changes = metadata.get("type_changes")
        lines += [str(c) for c in (changes.value if changes is not None else None) or []]
        future = _number(metadata, "future_stamped_versions")
        if future:
            lines.append(
                f"{name}: {future} version(s) stamped after the org's clock: stored, the "
                "watermark not moved past the org's clock"
            )
        rejected = _number(metadata, "rows_rejected")
        where = metadata.get("rejects_table")
        if not rejected or where is None:
            continue
        line = f"{name}: {rejected} value(s) set aside into {where.value} (versions stored)"
        table = load_table_or_none(open_catalog(settings.catalog_properties()), where.value)
        if table is not None:
            rows = table.scan(row_filter=f"_run_id == '{result.run_id}'", limit=1).to_arrow()
            if rows.num_rows:
                first = rows.to_pylist()[0]
                line += f"; first: record {first['id']}: {first['reason']}"
        lines.append(line)
    return lines


def runs_of_home(instance: DagsterInstance, settings: Settings) -> Sequence[DagsterRun]:
    """Runs started by `sf-lakehouse` on this home, newest first."""
    return instance.get_runs(
        filters=RunsFilter(tags={LAUNCHED_BY_TAG: CLI, HOME_TAG: str(settings.home.resolve())})
    )
