"""The metrics of one environment (CloudWatch namespace `SfLakehouse`, dimensions `Environment`
and `Object`): their names, and how a finished run's own events become data points.

One source: the numbers are read back from what the run recorded (the raw assets' and the
dimensions' materialization metadata, the asset check evaluations, the step timings), never
measured a second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sf_lakehouse.config import FreshnessWindow, ObjectSpec, Settings

NAMESPACE = "SfLakehouse"
ENVIRONMENT = "Environment"
OBJECT = "Object"
STEP = "Step"

ROWS_EXTRACTED = "RowsExtracted"
ROWS_APPENDED = "RowsAppended"
RECORDS_REJECTED = "RecordsRejected"
VERSIONS_OPENED = "VersionsOpened"
VERSIONS_CLOSED = "VersionsClosed"
STEP_SECONDS = "StepSeconds"
API_USAGE_PERCENT = "ApiUsagePercent"
RAW_FRESHNESS_LAG = "RawFreshnessLagMinutes"
DIMENSION_FRESHNESS_LAG = "DimensionFreshnessLagMinutes"
CHECKS_FAILED = "ChecksFailed"
RUNS_SUCCEEDED = "RunsSucceeded"
RUNS_FAILED = "RunsFailed"

UNITS = {
    ROWS_EXTRACTED: "Count",
    ROWS_APPENDED: "Count",
    RECORDS_REJECTED: "Count",
    VERSIONS_OPENED: "Count",
    VERSIONS_CLOSED: "Count",
    STEP_SECONDS: "Seconds",
    API_USAGE_PERCENT: "Percent",
    RAW_FRESHNESS_LAG: "None",  # minutes: CloudWatch has no minute unit
    DIMENSION_FRESHNESS_LAG: "None",
    CHECKS_FAILED: "Count",
    RUNS_SUCCEEDED: "Count",
    RUNS_FAILED: "Count",
}
# Raw materialization metadata -> metric (the extraction's own counters).
RAW_METADATA_METRICS = {
    "rows_extracted": ROWS_EXTRACTED,
    "rows_appended": ROWS_APPENDED,
    "rows_rejected": RECORDS_REJECTED,
}
DIMENSION_METADATA_METRICS = {
    "versions_opened": VERSIONS_OPENED,
    "versions_closed": VERSIONS_CLOSED,
}


@dataclass(frozen=True)
class Datum:
    """One data point. `object` None: an environment-wide point (dimension Environment only).
    `detail` is kept by the local files only (the one-line reason of a failed run)."""

    metric: str
    value: float
    timestamp: dt.datetime
    environment: str
    object: str | None = None
    step: str | None = None
    run_id: str | None = None
    detail: str | None = None

    def dimensions(self) -> list[dict[str, str]]:
        dims = [{"Name": ENVIRONMENT, "Value": self.environment}]
        if self.object is not None:
            dims.append({"Name": OBJECT, "Value": self.object})
        if self.step is not None:
            dims.append({"Name": STEP, "Value": self.step})
        return dims

    def cloudwatch(self) -> dict[str, Any]:
        return {
            "MetricName": self.metric,
            "Dimensions": self.dimensions(),
            "Timestamp": self.timestamp,
            "Value": float(self.value),
            "Unit": UNITS[self.metric],
        }

    def as_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "time": self.timestamp.isoformat(),
            "namespace": NAMESPACE,
            "metric": self.metric,
            "value": self.value,
            "unit": UNITS[self.metric],
            "dimensions": {d["Name"]: d["Value"] for d in self.dimensions()},
        }
        if self.run_id:
            record["run_id"] = self.run_id
        if self.detail:
            record["detail"] = self.detail
        return record


@dataclass
class RunFacts:
    """What a finished run recorded, per object (by API name)."""

    run_id: str
    succeeded: bool
    finished: dt.datetime
    objects: list[str]
    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    dimension: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks_failed: dict[str, int] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)
    step_objects: dict[str, list[str]] = field(default_factory=dict)
    reason: str | None = None
    # A failed step's reason, per object whose own step failed.
    reasons: dict[str, str] = field(default_factory=dict)


def api_usage_percent(metadata: dict[str, Any]) -> float | None:
    used, limit = metadata.get("org_api_usage"), metadata.get("org_api_limit")
    if not isinstance(used, int | float) or not isinstance(limit, int | float) or limit <= 0:
        return None
    return round(100.0 * used / limit, 3)


def run_data(facts: RunFacts, environment: str) -> list[Datum]:
    """The data points of one finished run."""
    at = facts.finished
    points: list[Datum] = []

    def add(metric: str, value: float, obj: str | None, **extra: Any) -> None:
        points.append(Datum(metric, value, at, environment, obj, run_id=facts.run_id, **extra))

    usages = []
    for name in facts.objects:
        raw = facts.raw.get(name)
        if raw is not None:
            for key, metric in RAW_METADATA_METRICS.items():
                add(metric, float(raw.get(key) or 0), name)
            usage = api_usage_percent(raw)
            if usage is not None:
                add(API_USAGE_PERCENT, usage, name)
                usages.append(usage)
        dim = facts.dimension.get(name)
        if dim is not None or raw is not None:
            for key, metric in DIMENSION_METADATA_METRICS.items():
                add(metric, float((dim or {}).get(key) or 0), name)
        add(CHECKS_FAILED, float(facts.checks_failed.get(name, 0)), name)
        outcome = RUNS_SUCCEEDED if facts.succeeded else RUNS_FAILED
        reason = None if facts.succeeded else facts.reasons.get(name, facts.reason)
        add(outcome, 1.0, name, detail=reason)
    for step, seconds in facts.step_seconds.items():
        for name in facts.step_objects.get(step, []):
            add(STEP_SECONDS, round(seconds, 3), name, step=step)
    # Environment-wide: what the no-successful-run and api-usage alarms watch.
    if facts.succeeded:
        add(RUNS_SUCCEEDED, 1.0, None)
    else:
        add(RUNS_FAILED, 1.0, None, detail=facts.reason)
    if usages:
        add(API_USAGE_PERCENT, max(usages), None)
    return points


def lag_minutes(last_update: dt.datetime | None, now: dt.datetime) -> float | None:
    if last_update is None:
        return None
    return round(max(0.0, (now - last_update).total_seconds() / 60.0), 2)


def freshness_data(
    settings: Settings,
    last_updates: dict[tuple[str, str], dt.datetime | None],
    now: dt.datetime,
    run_id: str | None = None,
) -> list[Datum]:
    """Freshness lag of every object's raw table and dimension, judged as the freshness
    policies judge it: minutes since the asset's latest materialization. `last_updates` is
    keyed by (object API name, "raw" | "dimension"); a table never materialized has no point
    (the stale alarms treat missing data as not breaching, no-successful-run catches it)."""
    points = []
    for spec in settings.objects:
        for kind, metric in (("raw", RAW_FRESHNESS_LAG), ("dimension", DIMENSION_FRESHNESS_LAG)):
            lag = lag_minutes(last_updates.get((spec.api_name, kind)), now)
            if lag is not None:
                points.append(
                    Datum(metric, lag, now, settings.environment, spec.api_name, run_id=run_id)
                )
    return points


def freshness_status(
    last_update: dt.datetime | None, window: FreshnessWindow, now: dt.datetime
) -> str:
    """`fresh`, `warn`, `fail`, or `never` (not materialized yet): the freshness policies'
    windows, for the sensor, the metrics and `status` alike."""
    if last_update is None:
        return "never"
    age = now - last_update
    if age > dt.timedelta(minutes=window.fail_after_minutes):
        return "fail"
    if age > dt.timedelta(minutes=window.warn_after_minutes):
        return "warn"
    return "fresh"


def window_of(spec: ObjectSpec, kind: str) -> FreshnessWindow:
    return spec.freshness.raw if kind == "raw" else spec.freshness.dimension


def batches(points: Sequence[Datum], size: int = 1000) -> Iterable[list[Datum]]:
    """PutMetricData takes at most 1,000 points (and 1 MB) per call; 1,000 of ours are far
    below 1 MB (each is a few hundred bytes)."""
    for start in range(0, len(points), size):
        yield list(points[start : start + size])
