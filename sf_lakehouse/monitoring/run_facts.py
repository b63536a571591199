"""Read a finished run's facts back from the Dagster instance (materialization metadata, check
evaluations, step timings, the failure), whoever started the run: `sf-lakehouse run`, the UI,
a schedule or a sensor."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus

from sf_lakehouse.config import Settings
from sf_lakehouse.monitoring.metrics import RunFacts
from sf_lakehouse.redact import one_line

EVENT_TYPES = {
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_CHECK_EVALUATION,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.RUN_FAILURE,
}


def object_of_keys(settings: Settings) -> dict[AssetKey, tuple[str, str]]:
    """Asset key -> (object API name, "raw" | "dimension")."""
    keys: dict[AssetKey, tuple[str, str]] = {}
    for spec in settings.objects:
        keys[AssetKey(list(spec.raw_asset_key))] = (spec.api_name, "raw")
        keys[AssetKey(list(spec.dimension_asset_key))] = (spec.api_name, "dimension")
    return keys


def objects_of_job(settings: Settings, job_name: str) -> list[str] | None:
    """The objects a pipeline job covers (one object's job, or the whole pipeline); None for
    any other job (maintenance): it has no metrics."""
    from sf_lakehouse.defs.jobs import PIPELINE_JOB_NAME

    if job_name == PIPELINE_JOB_NAME:
        return [spec.api_name for spec in settings.objects]
    for spec in settings.objects:
        if job_name == spec.job_name:
            return [spec.api_name]
    return None


def _plain(metadata: Any) -> dict[str, Any]:
    return {name: getattr(value, "value", value) for name, value in (metadata or {}).items()}


def run_facts(settings: Settings, instance: DagsterInstance, run_id: str) -> RunFacts | None:
    """The facts of a finished pipeline run (None: no such run, still running, or not a
    pipeline job)."""
    from sf_lakehouse.pipeline import short_error

    run = instance.get_run_by_id(run_id)
    if run is None or run.status not in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE):
        return None
    objects = objects_of_job(settings, run.job_name)
    if objects is None:
        return None
    keys = object_of_keys(settings)
    records = instance.get_records_for_run(run_id, of_type=EVENT_TYPES, limit=100_000).records
    facts = RunFacts(
        run_id=run_id,
        succeeded=run.status == DagsterRunStatus.SUCCESS,
        finished=dt.datetime.now(dt.UTC),
        objects=[],
    )
    step_objects: dict[str, list[str]] = {}
    first_failure: str | None = None
    run_failure: str | None = None
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            found = keys.get(materialization.asset_key)
            if found is None:
                continue
            name, kind = found
            target = facts.raw if kind == "raw" else facts.dimension
            target[name] = _plain(materialization.metadata)
            if event.step_key:
                step_objects.setdefault(event.step_key, []).append(name)
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            found = keys.get(evaluation.asset_key)
            if found is not None:
                facts.checks_failed.setdefault(found[0], 0)
                if not evaluation.passed:
                    facts.checks_failed[found[0]] += 1
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error if event.step_failure_data else None
            # No record's value in the reason `status` prints and the metrics files keep.
            failure = one_line(f"step {event.step_key} failed: {short_error(error)}")
            first_failure = first_failure or failure
            for key, (name, _) in keys.items():
                if event.step_key == "__".join(key.path):
                    step_objects.setdefault(event.step_key, []).append(name)
                    facts.reasons.setdefault(name, failure)
        elif event.event_type == DagsterEventType.RUN_FAILURE:
            run_failure = one_line(entry.message) or None
    facts.objects = objects
    for step in instance.get_run_step_stats(run_id):
        if step.start_time is not None and step.end_time is not None:
            facts.step_seconds[step.step_key] = step.end_time - step.start_time
    facts.step_objects = {k: sorted(set(v)) for k, v in step_objects.items()}
    if not facts.succeeded:
        facts.reason = first_failure or run_failure or "the run failed"
    return facts


def latest_updates(
    settings: Settings, instance: DagsterInstance
) -> dict[tuple[str, str], dt.datetime | None]:
    """When each raw table and dimension was last materialized (the freshness policies' and
    the freshness sensor's clock: the wall clock of the materialization)."""
    keys = object_of_keys(settings)
    latest = instance.get_latest_materialization_events(list(keys))  # one query, not one per key
    updates: dict[tuple[str, str], dt.datetime | None] = {}
    for key, found in keys.items():
        event = latest.get(key)
        updates[found] = dt.datetime.fromtimestamp(event.timestamp, dt.UTC) if event else None
    return updates


def publish_run_metrics(
    settings: Settings, instance: DagsterInstance, run_id: str, warn: Any = None
) -> bool:
    """Publish a finished run's metrics and the freshness lag after it; never raises."""
    from sf_lakehouse.monitoring.metrics import freshness_data, run_data
    from sf_lakehouse.monitoring.publish import publish

    try:
        facts = run_facts(settings, instance, run_id)
        if facts is None:
            return False
        points = run_data(facts, settings.environment)
        points += freshness_data(
            settings, latest_updates(settings, instance), facts.finished, run_id=run_id
        )
    except Exception as error:  # reading the instance failed: the run stays as it was
        (warn or print)(f"could not read run {run_id}'s metrics: {type(error).__name__}: {error}")
        return False
    return publish(settings, points, warn=warn)
