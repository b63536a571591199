"""Sensors: the change sensor (starts the jobs of the objects that changed), the freshness
sensor and the run-failure recorder, and the alerts they write for an operator."""

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    sensor,
)
from dagster_shared.error import SerializableErrorInfo

from sf_lakehouse.config import FreshnessWindow, ObjectSpec, Settings
from sf_lakehouse.defs.alerting import (
    build_success_sensor,
    notify_freshness_change,
    on_run_failed,
    publish_freshness_metrics,
)
from sf_lakehouse.defs.jobs import PIPELINE_JOB_NAME, runs_in_progress
from sf_lakehouse.extraction import read_watermark
from sf_lakehouse.lakehouse.resource import LakehouseResource
from sf_lakehouse.monitoring.metrics import freshness_status
from sf_lakehouse.monitoring.sinks import record_alert
from sf_lakehouse.salesforce.client import SalesforceClient, client_policy, connect
from sf_lakehouse.salesforce.deadline import DeadlineExceeded, probe_deadline
from sf_lakehouse.salesforce.resource import SalesforceResource
from sf_lakehouse.salesforce.types import format_soql_datetime, parse_sf_datetime

CHANGE_SENSOR_NAME = "salesforce_change_sensor"
FRESHNESS_SENSOR_NAME = "freshness_alert_sensor"
FAILURE_SENSOR_NAME = "run_failure_recorder"


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
    client: SalesforceClient, spec: ObjectSpec, since: dt.datetime | None
) -> ChangeProbe:
    """Ask cheaply whether records changed after `since`: one COUNT() query (queryAll for
    objects with deletions, so deletions and undeletes count), plus one row for the newest
    change when there are any."""
    cursor = spec.cursor
    where = f" WHERE {cursor} > {format_soql_datetime(since)}" if since else ""
    changed = client.count(
        f"SELECT COUNT() FROM {spec.api_name}{where}", include_deleted=spec.deletions
    )
    if changed == 0:
        return ChangeProbe(0, None, since)
    [newest_record] = list(
        client.query(
            f"SELECT {cursor} FROM {spec.api_name}{where} ORDER BY {cursor} DESC LIMIT 1",
            include_deleted=spec.deletions,
        )
    )
    return ChangeProbe(changed, parse_sf_datetime(newest_record[cursor]), since)


def build_change_sensor(settings: Settings, object_jobs: Sequence[Any]) -> SensorDefinition:
    """`object_jobs`: the per-object jobs, in the order of `settings.objects`."""
    specs = settings.objects
    names = ", ".join(spec.api_name for spec in specs)

    @sensor(
        name=CHANGE_SENSOR_NAME,
        jobs=list(object_jobs),
        minimum_interval_seconds=settings.config.sensors.salesforce_change_interval_seconds,
        default_status=DefaultSensorStatus.STOPPED,
        description=(
            f"Asks Salesforce, per object ({names}), how many records changed after the raw "
            "table's watermark, and starts the job of each object that changed; one run per "
            "set of changes."
        ),
    )
    def salesforce_change_sensor(
        context: SensorEvaluationContext,
        salesforce: SalesforceResource,
        lakehouse: LakehouseResource,
    ) -> SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else {}
        requests: list[RunRequest] = []
        skipped: list[str] = []
        busy = {
            run.job_name: run
            for run in runs_in_progress(
                context.instance, [PIPELINE_JOB_NAME, *(spec.job_name for spec in specs)]
            )
        }
        client = None  # connected when an object needs asking
        for spec in specs:
            running = busy.get(spec.job_name) or busy.get(PIPELINE_JOB_NAME)
            if running is not None:
                # Its pool would make a new run wait; the next tick asks again.
                skipped.append(
                    f"{spec.api_name}: run {running.run_id} of {running.job_name} in progress"
                )
                continue
            raw = lakehouse.load_table(spec.raw_asset_key)
            watermark = read_watermark(raw, spec.cursor.lower())
            deadline = probe_deadline(spec)
            try:
                if client is None:
                    client = connect(
                        salesforce.connection_settings().replace(policy=client_policy(settings)),
                        deadline=deadline,
                    )
                client.set_deadline(deadline)
                probe = probe_changes(client, spec, watermark)
            except DeadlineExceeded as error:
                # One slow object never holds back the tick's questions about the others.
                skipped.append(str(error))
                continue
            if probe.changed == 0:
                skipped.append(f"{spec.api_name}: no change")
                continue
            if cursor.get(spec.name) == probe.run_key:
                skipped.append(f"{spec.api_name}: {probe.changed} changes already have a run")
                continue
            cursor[spec.name] = probe.run_key
            requests.append(
                RunRequest(
                    job_name=spec.job_name,
                    run_key=f"{spec.name}-{probe.run_key}",
                    tags={
                        "sf_lakehouse/trigger": CHANGE_SENSOR_NAME,
                        "sf_lakehouse/object": spec.api_name,
                        "sf_lakehouse/changed_records": str(probe.changed),
                        "sf_lakehouse/changes_through": str(probe.newest),
                    },
                )
            )
        return SensorResult(
            run_requests=requests,
            skip_reason=None if requests else SkipReason("; ".join(skipped)),
            cursor=json.dumps(cursor, sort_keys=True),
        )

    return salesforce_change_sensor


# --- freshness ------------------------------------------------------------------------------


def utcnow() -> dt.datetime:
    """The sensor's clock (a function, so tests can move it)."""
    return dt.datetime.now(dt.UTC)


def freshness_windows(specs: Sequence[ObjectSpec]) -> dict[AssetKey, FreshnessWindow]:
    """Every raw table's and dimension's window, from its object spec."""
    windows: dict[AssetKey, FreshnessWindow] = {}
    for spec in specs:
        windows[AssetKey(list(spec.raw_asset_key))] = spec.freshness.raw
        windows[AssetKey(list(spec.dimension_asset_key))] = spec.freshness.dimension
    return windows


def build_freshness_sensor(settings: Settings) -> SensorDefinition:
    windows = freshness_windows(settings.objects)

    @sensor(
        name=FRESHNESS_SENSOR_NAME,
        minimum_interval_seconds=settings.config.sensors.freshness_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Evaluates the freshness windows of every raw table and dimension (the same windows "
            "as their FreshnessPolicy), records an alert once per stale state, sends one to "
            "alerts.sns / alerts.slack per change of state (and when fresh again), and publishes "
            "the freshness lag metrics."
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
            previous = str(already.get(name, "")).split("@")[0]
            notify_freshness_change(settings, key, previous, status, last, context.log.warning)
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
                        "link": f"{settings.config.alerts.webserver_url}/assets/{name}",
                    },
                    f"FRESHNESS {status.upper()} {name}: last update {last}",
                )
            already[name] = state_id
        context.update_cursor(json.dumps(already, sort_keys=True))
        publish_freshness_metrics(settings, context.instance, now, context.log.warning)
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
        description=(
            "Records every failed run (link, failed steps, errors) in the alerts log, publishes "
            "its metrics, and alerts alerts.sns / alerts.slack when the job was not failing yet."
        ),
    )
    def run_failure_recorder(context: RunFailureSensorContext) -> None:
        record = failure_record(context, settings.config.alerts.webserver_url)
        steps = "; ".join(f"{s['step']}: {s['error']}" for s in record["failed_steps"])
        headline = f"RUN FAILED {record['job']} {record['link']} {steps or record['error']}"
        record_alert(settings.alerts_dir, "run_failures", record, headline)
        context.log.error(headline)
        on_run_failed(
            settings,
            context.instance,
            context.dagster_run,
            steps=record["failed_steps"],
            warn=context.log.warning,
        )

    return run_failure_recorder


def build_sensors(settings: Settings, object_jobs: Sequence[Any]) -> list[SensorDefinition]:
    return [
        build_change_sensor(settings, object_jobs),
        build_freshness_sensor(settings),
        build_failure_sensor(settings),
        build_success_sensor(settings),
    ]
