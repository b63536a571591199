"""What the run sensors send to people and publish as metrics: one alert per change of state
(a job that starts failing, a check that starts failing) and one when it is good again,
derived from the instance's own history (the job's previous finished run), so a restarted
daemon neither repeats nor forgets an alert.

Metrics of runs started by `sf-lakehouse run` are published by that command; the sensors
publish those of the other runs (UI, schedules, sensors)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    RunStatusSensorContext,
    SensorDefinition,
    run_status_sensor,
)

from sf_lakehouse.config import Settings
from sf_lakehouse.launch_tags import launched_by_cli
from sf_lakehouse.monitoring.run_facts import (
    latest_updates,
    object_of_keys,
    objects_of_job,
    publish_run_metrics,
)
from sf_lakehouse.monitoring.sinks import Alert, notify, record_alert

SUCCESS_SENSOR_NAME = "run_success_monitor"
FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE]


def previous_finished_run(instance: DagsterInstance, run: DagsterRun) -> DagsterRun | None:
    """The same job's newest finished run created before `run` (however many runs came since)."""
    record = instance.get_run_record_by_id(run.run_id)
    if record is None:
        return None
    runs = instance.get_runs(
        filters=RunsFilter(
            job_name=run.job_name, statuses=FINISHED, created_before=record.create_timestamp
        ),
        limit=1,
    )
    return runs[0] if runs else None


def failed_checks(
    settings: Settings, instance: DagsterInstance, run_id: str
) -> dict[tuple[str, str], tuple[str, str]]:
    """(asset, check) -> (object, one-line reason) of the checks that failed in a run."""
    keys = object_of_keys(settings)
    failed: dict[tuple[str, str], tuple[str, str]] = {}
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=10_000
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        evaluation = event.asset_check_evaluation_data
        if evaluation.passed:
            continue
        summary = evaluation.metadata.get("summary")
        reason = str(summary.value) if summary is not None else evaluation.description or ""
        name = keys.get(evaluation.asset_key, ("?", ""))[0]
        failed[(evaluation.asset_key.to_user_string(), evaluation.check_name)] = (name, reason)
    return failed


def run_link(settings: Settings, run_id: str) -> str:
    return f"{settings.config.alerts.webserver_url}/runs/{run_id}"


def failure_alert(settings: Settings, run: DagsterRun, steps: list[dict[str, str]]) -> Alert:
    objects = objects_of_job(settings, run.job_name) or []
    by_step = {"__".join(k.path): name for k, (name, _) in object_of_keys(settings).items()}
    failed_objects = sorted({by_step[s["step"]] for s in steps if s["step"] in by_step})
    subject = ", ".join(f"step {s['step']}" for s in steps) or f"job {run.job_name}"
    error = steps[0]["error"] if steps else "the run failed"
    return Alert(
        environment=settings.environment,
        kind="run",
        state="failed",
        objects=tuple(failed_objects or objects),
        subject=subject,
        error=error,
        link=run_link(settings, run.run_id),
    )


def check_alerts(
    settings: Settings, instance: DagsterInstance, run: DagsterRun, previous: DagsterRun | None
) -> list[Alert]:
    """One alert per check that failed now and not in the job's previous run, one per check
    that failed then and passed now."""
    now = failed_checks(settings, instance, run.run_id)
    before = failed_checks(settings, instance, previous.run_id) if previous else {}
    alerts = []
    for (asset, check), (name, reason) in sorted(now.items()):
        if (asset, check) not in before:
            subject = f"check {check} on {asset}"
            alerts.append(
                Alert(
                    settings.environment,
                    "check",
                    "failed",
                    (name,),
                    subject,
                    reason,
                    run_link(settings, run.run_id),
                )
            )
    evaluated = _evaluated_checks(instance, run.run_id)
    for (asset, check), (name, _) in sorted(before.items()):
        if (asset, check) not in now and (asset, check) in evaluated:
            subject = f"check {check} on {asset}"
            alerts.append(
                Alert(
                    settings.environment,
                    "check",
                    "ok",
                    (name,),
                    subject,
                    "",
                    run_link(settings, run.run_id),
                )
            )
    return alerts


def _evaluated_checks(instance: DagsterInstance, run_id: str) -> set[tuple[str, str]]:
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=10_000
    ).records
    found = set()
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is not None:
            data = event.asset_check_evaluation_data
            found.add((data.asset_key.to_user_string(), data.check_name))
    return found


def on_run_failed(
    settings: Settings,
    instance: DagsterInstance,
    run: DagsterRun,
    steps: list[dict[str, str]],
    warn: Callable[[str], Any],
) -> list[Alert]:
    """The failure sensor's part: metrics, and an alert when the job was not failing already.
    Returns the alerts sent."""
    if not launched_by_cli(run.tags):
        publish_run_metrics(settings, instance, run.run_id, warn=warn)
    previous = previous_finished_run(instance, run)
    alerts = []
    if previous is None or previous.status != DagsterRunStatus.FAILURE:
        alerts.append(failure_alert(settings, run, steps))
    alerts += check_alerts(settings, instance, run, previous)
    send(settings, alerts, warn)
    return alerts


def send(settings: Settings, alerts: list[Alert], warn: Callable[[str], Any]) -> None:
    """To the sinks; check alerts also to the files (the failure sensor writes run failures)."""
    for alert in alerts:
        if alert.kind == "check":
            record_alert(settings.alerts_dir, "checks", alert.as_json(), alert.headline())
        notify(settings, alert, warn)


def on_run_succeeded(
    settings: Settings, instance: DagsterInstance, run: DagsterRun, warn: Callable[[str], Any]
) -> list[Alert]:
    """Metrics, the recovery of a failing job, and the checks that changed state."""
    if objects_of_job(settings, run.job_name) is not None and not launched_by_cli(run.tags):
        publish_run_metrics(settings, instance, run.run_id, warn=warn)
    previous = previous_finished_run(instance, run)
    alerts = []
    if previous is not None and previous.status == DagsterRunStatus.FAILURE:
        alerts.append(
            Alert(
                settings.environment,
                "run",
                "ok",
                tuple(objects_of_job(settings, run.job_name) or ()),
                f"job {run.job_name}",
                "",
                run_link(settings, run.run_id),
            )
        )
    alerts += check_alerts(settings, instance, run, previous)
    send(settings, alerts, warn)
    return alerts


def build_success_sensor(settings: Settings) -> SensorDefinition:
    @run_status_sensor(
        run_status=DagsterRunStatus.SUCCESS,
        name=SUCCESS_SENSOR_NAME,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "After every successful run: publishes its metrics, says when a failing job or a "
            "failed check is good again, and alerts on checks that started failing "
            "(alerts.sns, alerts.slack)."
        ),
    )
    def run_success_monitor(context: RunStatusSensorContext) -> None:
        on_run_succeeded(settings, context.instance, context.dagster_run, context.log.warning)

    return run_success_monitor


def notify_freshness_change(
    settings: Settings,
    key: AssetKey,
    previous: str,
    status: str,
    last: dt.datetime | None,
    warn: Callable[[str], Any],
) -> Alert | None:
    """An alert when a table turns warn or fail, or fresh again after it was; None when its
    state did not change (`previous` is "" before the sensor's first look)."""
    stale = ("warn", "fail")
    if status == previous or (status not in stale and previous not in stale):
        return None
    name = object_of_keys(settings).get(key, ("?", ""))[0]
    asset = key.to_user_string()
    since = f"last update {last:%Y-%m-%d %H:%M} UTC" if last else "never materialized"
    alert = Alert(
        settings.environment,
        "freshness",
        "ok" if status == "fresh" else status,
        (name,),
        asset,
        "" if status == "fresh" else f"{asset} is past its {status} window: {since}",
        f"{settings.config.alerts.webserver_url}/assets/{asset}",
    )
    notify(settings, alert, warn)
    return alert


def publish_freshness_metrics(
    settings: Settings, instance: DagsterInstance, now: dt.datetime, warn: Callable[[str], Any]
) -> None:
    """The lag of every table on every tick, so the stale alarms see it grow between runs."""
    from sf_lakehouse.monitoring.metrics import freshness_data
    from sf_lakehouse.monitoring.publish import publish

    publish(settings, freshness_data(settings, latest_updates(settings, instance), now), warn=warn)
