"""Jobs, schedules and sensors: how the pipeline runs without someone pressing a button."""

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import (
    AssetKey,
    AssetObservation,
    AssetSelection,
    DefaultSensorStatus,
    JobDefinition,
    OpExecutionContext,
    RunFailureSensorContext,
    RunRequest,
    ScheduleDefinition,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    job,
    op,
    run_failure_sensor,
    sensor,
)
from dagster_shared.error import SerializableErrorInfo

from sf_lakehouse.defs import DIMENSION_KEY, RAW_USER_KEY
from sf_lakehouse.extraction import read_watermark
from sf_lakehouse.lakehouse.maintenance import maintain_table
from sf_lakehouse.defs.resources import LakehouseResource
from sf_lakehouse.salesforce import (
    SalesforceClient,
    SalesforceResource,
    format_soql_datetime,
    parse_sf_datetime,
)
from sf_lakehouse.config import FreshnessWindow, Settings

PIPELINE_JOB_NAME = "sf_user_pipeline"
MAINTENANCE_JOB_NAME = "lakehouse_maintenance"
CHANGE_SENSOR_NAME = "salesforce_user_change_sensor"
FRESHNESS_SENSOR_NAME = "freshness_alert_sensor"
FAILURE_SENSOR_NAME = "run_failure_recorder"


# --- alerts: what the sensors record for an operator -------------------------------------------


def record_alert(directory: Path, kind: str, record: dict[str, Any], headline: str) -> Path:
    """Append one alert: a JSON line (`<kind>.jsonl`, for tools) and one readable line
    (`alerts.log`, for people). Returns the JSON Lines file."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kind}.jsonl"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, default=str, sort_keys=True) + "\n")
    with (directory / "alerts.log").open("a", encoding="utf-8") as handle:
        handle.write(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}Z {headline}\n")
    return path


# --- the change sensor ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeProbe:
    changed: int
    newest: dt.datetime | None
    since: dt.datetime | None

    @property
    def run_key(self) -> str:
        return f"changes-through-{self.newest.isoformat() if self.newest else 'none'}"


def probe_changes(
    client: SalesforceClient, object_name: str, cursor_field: str, since: dt.datetime | None
) -> ChangeProbe:
    """Ask cheaply whether records changed after `since`: one COUNT() query, plus one row
    for the newest change when there are any."""
    where = f" WHERE {cursor_field} > {format_soql_datetime(since)}" if since else ""
    changed = client.count(f"SELECT COUNT() FROM {object_name}{where}")
    if changed == 0:
        return ChangeProbe(0, None, since)
    [newest_record] = list(
        client.query(
            f"SELECT {cursor_field} FROM {object_name}{where} ORDER BY {cursor_field} DESC LIMIT 1"
        )
    )
    return ChangeProbe(changed, parse_sf_datetime(newest_record[cursor_field]), since)


def build_change_sensor(settings: Settings) -> SensorDefinition:
    sf = settings.salesforce

    @sensor(
        name=CHANGE_SENSOR_NAME,
        job_name=PIPELINE_JOB_NAME,
        minimum_interval_seconds=settings.operations.change_sensor_interval_seconds,
        default_status=DefaultSensorStatus.STOPPED,
        description=(
            f"Starts {PIPELINE_JOB_NAME} when Salesforce {sf.object_name} records changed after "
            f"the raw table's watermark ({sf.cursor_field}); one run per set of changes."
        ),
    )
    def salesforce_user_change_sensor(
        context: SensorEvaluationContext,
        salesforce: SalesforceResource,
        lakehouse: LakehouseResource,
    ) -> SensorResult | SkipReason:
        raw = lakehouse.load_table(settings.raw_table_identifier)
        watermark = read_watermark(raw, sf.cursor_field.lower())
        probe = probe_changes(salesforce.connect(), sf.object_name, sf.cursor_field, watermark)
        since = watermark.isoformat() if watermark else "the beginning (raw table is empty)"
        if probe.changed == 0:
            return SkipReason(f"no {sf.object_name} changed since {since}")
        if context.cursor == probe.run_key:
            return SkipReason(
                f"{probe.changed} {sf.object_name} changes through {probe.newest} already have a "
                "run; waiting for it to reach the raw table"
            )
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=probe.run_key,
                    tags={
                        "sf_lakehouse/trigger": CHANGE_SENSOR_NAME,
                        "sf_lakehouse/changed_records": str(probe.changed),
                        "sf_lakehouse/changes_through": str(probe.newest),
                    },
                )
            ],
            cursor=probe.run_key,
        )

    return salesforce_user_change_sensor


# --- freshness ------------------------------------------------------------------------------


def utcnow() -> dt.datetime:
    """The sensor's clock (a function, so tests can move it)."""
    return dt.datetime.now(dt.UTC)


def freshness_status(
    last_update: dt.datetime | None, window: FreshnessWindow, now: dt.datetime
) -> str:
    """`fresh`, `warn`, `fail`, or `never` (not materialized yet)."""
    if last_update is None:
        return "never"
    age = now - last_update
    if age > dt.timedelta(minutes=window.fail_after_minutes):
        return "fail"
    if age > dt.timedelta(minutes=window.warn_after_minutes):
        return "warn"
    return "fresh"


def build_freshness_sensor(settings: Settings) -> SensorDefinition:
    windows = {
        AssetKey(list(RAW_USER_KEY)): settings.operations.raw_freshness,
        AssetKey(list(DIMENSION_KEY)): settings.operations.dimension_freshness,
    }

    @sensor(
        name=FRESHNESS_SENSOR_NAME,
        minimum_interval_seconds=settings.operations.freshness_sensor_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Evaluates the freshness windows of the raw table and the dimension (the same "
            "windows as their FreshnessPolicy) and records an alert once per stale state."
        ),
    )
    def freshness_alert_sensor(context: SensorEvaluationContext) -> SkipReason:
        now = utcnow()
        already = json.loads(context.cursor) if context.cursor else {}
        states = {}
        for key, window in windows.items():
            event = context.instance.get_latest_materialization_event(key)
            last = dt.datetime.fromtimestamp(event.timestamp, dt.UTC) if event else None
            status = freshness_status(last, window, now)
            name = key.to_user_string()
            states[name] = status
            state_id = f"{status}@{last.isoformat() if last else 'never'}"
            if status in ("warn", "fail") and already.get(name) != state_id:
                record_alert(
                    settings.alerts_dir,
                    "freshness",
                    {
                        "asset": name,
                        "status": status,
                        "last_update": last,
                        "warn_after_minutes": window.warn_after_minutes,
                        "fail_after_minutes": window.fail_after_minutes,
                        "link": f"{settings.operations.webserver_url}/assets/{name}",
                    },
                    f"FRESHNESS {status.upper()} {name}: last update {last}",
                )
            already[name] = state_id
        context.update_cursor(json.dumps(already, sort_keys=True))
        return SkipReason(", ".join(f"{name}: {status}" for name, status in states.items()))

    return freshness_alert_sensor


# --- run failures ---------------------------------------------------------------------------


def root_error_message(error: SerializableErrorInfo | None) -> str:
    """The innermost cause's message: Dagster wraps user errors in execution errors."""
    if error is None:
        return "unknown error"
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def failure_record(context: RunFailureSensorContext, webserver_url: str) -> dict[str, Any]:
    run = context.dagster_run
    steps = []
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error if event.step_failure_data else None
        steps.append({"step": event.step_key, "error": root_error_message(error)[:500]})
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "link": f"{webserver_url}/runs/{run.run_id}",
        "error": (context.failure_event.message or "").strip()[:500],
        "failed_steps": steps,
        "tags": {k: v for k, v in run.tags.items() if k.startswith("sf_lakehouse/")},
    }


def build_failure_sensor(settings: Settings) -> SensorDefinition:
    @run_failure_sensor(
        name=FAILURE_SENSOR_NAME,
        default_status=DefaultSensorStatus.RUNNING,
        description="Records every failed run (link, failed steps, errors) in the alerts log.",
    )
    def run_failure_recorder(context: RunFailureSensorContext) -> None:
        record = failure_record(context, settings.operations.webserver_url)
        steps = "; ".join(f"{s['step']}: {s['error']}" for s in record["failed_steps"])
        headline = f"RUN FAILED {record['job']} {record['link']} {steps or record['error']}"
        record_alert(settings.alerts_dir, "run_failures", record, headline)
        context.log.error(headline)

    return run_failure_recorder


# --- maintenance ----------------------------------------------------------------------------


def build_maintenance_job(settings: Settings) -> JobDefinition:
    tables = {
        settings.raw_table_identifier: AssetKey(list(RAW_USER_KEY)),
        settings.dimension_identifier: AssetKey(list(DIMENSION_KEY)),
    }

    @op(description="Compact small files, expire old snapshots and delete orphan files.")
    def maintain_iceberg_tables(context: OpExecutionContext, lakehouse: LakehouseResource) -> None:
        now = dt.datetime.now(dt.UTC)
        for identifier, key in tables.items():
            table = lakehouse.load_table(identifier)
            if table is None:
                context.log.info(f"{identifier} does not exist yet; nothing to maintain")
                continue
            report = maintain_table(table, identifier, settings.operations.maintenance, now)
            context.log.info(f"{identifier}: {report}")
            context.log_event(AssetObservation(asset_key=key, metadata=report.as_metadata()))

    @job(
        name=MAINTENANCE_JOB_NAME,
        description="Iceberg maintenance of the raw table and the dimension (retention in "
        "config/pipeline-config.yml).",
    )
    def lakehouse_maintenance() -> None:
        maintain_iceberg_tables()

    return lakehouse_maintenance


def build_automation(settings: Settings) -> dict[str, list[Any]]:
    """Jobs, schedules and sensors of one environment."""
    ops = settings.operations
    pipeline_job = define_asset_job(
        PIPELINE_JOB_NAME,
        selection=AssetSelection.all(),
        description="Extract Salesforce Users into the raw table, then rebuild the SCD2 dimension.",
    )
    maintenance_job = build_maintenance_job(settings)
    schedules = [
        ScheduleDefinition(
            name=f"{PIPELINE_JOB_NAME}_schedule",
            job=pipeline_job,
            cron_schedule=ops.pipeline_schedule.cron,
            execution_timezone=ops.pipeline_schedule.timezone,
            description="Extract and rebuild on a fixed cadence, whether or not the sensor fired.",
        ),
        ScheduleDefinition(
            name=f"{MAINTENANCE_JOB_NAME}_schedule",
            job=maintenance_job,
            cron_schedule=ops.maintenance_schedule.cron,
            execution_timezone=ops.maintenance_schedule.timezone,
        ),
    ]
    sensors = [
        build_change_sensor(settings),
        build_freshness_sensor(settings),
        build_failure_sensor(settings),
    ]
    return {"jobs": [pipeline_job, maintenance_job], "schedules": schedules, "sensors": sensors}
