"""CloudWatch: the dashboard `sf-lakehouse-<env>` and the alarms `sf-lakehouse-<env>-...`, both
built from the object specs (an added object adds its widgets and its four alarms).

Alarms notify the alerts topic when they fire and when they are good again (OK action)."""

from __future__ import annotations

import json
from typing import Any

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Change, Step, aws_errors, error_code, matches
from sf_lakehouse.aws.iam import GLUE_METRICS_NAMESPACE
from sf_lakehouse.config import ObjectSpec, Settings
from sf_lakehouse.monitoring import metrics as m
from sf_lakehouse.monitoring import names

HOUR = 3600
# Widgets are 24 units wide: four per row.
WIDGET_WIDTH = 6
WIDGET_HEIGHT = 6


def _dims(environment: str, spec: ObjectSpec | None = None) -> list[str]:
    values = [m.ENVIRONMENT, environment]
    return [*values, m.OBJECT, spec.api_name] if spec is not None else values


def _metric(metric: str, environment: str, spec: ObjectSpec | None = None, **options: Any) -> list:
    line: list[Any] = [m.NAMESPACE, metric, *_dims(environment, spec)]
    return [*line, options] if options else line


def _widget(title: str, metrics: list, region: str, stat: str, **extra: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "title": title,
        "view": "timeSeries",
        "region": region,
        "stat": stat,
        "period": HOUR if stat == "Sum" else 300,
        "metrics": metrics,
    }
    properties.update(extra)
    return {
        "type": "metric",
        "width": WIDGET_WIDTH,
        "height": WIDGET_HEIGHT,
        "properties": properties,
    }


def _window_annotations(warn: int, fail: int) -> dict[str, Any]:
    return {
        "horizontal": [
            {"label": f"warn {warn} min", "value": warn, "color": "#ff9900"},
            {"label": f"fail {fail} min", "value": fail, "color": "#d13212"},
        ]
    }


def object_widgets(settings: Settings, spec: ObjectSpec, region: str) -> list[dict[str, Any]]:
    """One row per object: rows and versions per run, freshness against its windows, rejects."""
    env = settings.environment
    header = {
        "type": "text",
        "width": 24,
        "height": 1,
        "properties": {"markdown": f"## {spec.api_name}"},
    }
    return [
        header,
        _widget(
            f"{spec.api_name}: rows and versions per run",
            [
                _metric(m.ROWS_EXTRACTED, env, spec),
                _metric(m.ROWS_APPENDED, env, spec),
                _metric(m.VERSIONS_OPENED, env, spec),
                _metric(m.VERSIONS_CLOSED, env, spec),
            ],
            region,
            "Sum",
        ),
        _widget(
            f"{spec.api_name}: raw freshness lag (minutes)",
            [_metric(m.RAW_FRESHNESS_LAG, env, spec)],
            region,
            "Maximum",
            annotations=_window_annotations(
                spec.freshness.raw.warn_after_minutes, spec.freshness.raw.fail_after_minutes
            ),
        ),
        _widget(
            f"{spec.api_name}: dimension freshness lag (minutes)",
            [_metric(m.DIMENSION_FRESHNESS_LAG, env, spec)],
            region,
            "Maximum",
            annotations=_window_annotations(
                spec.freshness.dimension.warn_after_minutes,
                spec.freshness.dimension.fail_after_minutes,
            ),
        ),
        _widget(
            f"{spec.api_name}: rejected values and failed checks",
            [_metric(m.RECORDS_REJECTED, env, spec), _metric(m.CHECKS_FAILED, env, spec)],
            region,
            "Sum",
        ),
    ]


def dashboard_body(settings: Settings) -> dict[str, Any]:
    aws = settings.require_aws()
    env, region = settings.environment, aws.region
    guard = 100 * settings.config.salesforce.max_api_usage_share
    widgets: list[dict[str, Any]] = []
    for spec in settings.objects:
        widgets += object_widgets(settings, spec, region)
    widgets.append(
        {
            "type": "text",
            "width": 24,
            "height": 1,
            "properties": {"markdown": f"## Environment {env}"},
        }
    )
    widgets += [
        _widget(
            "Salesforce API usage (% of the daily limit)",
            [_metric(m.API_USAGE_PERCENT, env)],
            region,
            "Maximum",
            annotations={"horizontal": [{"label": f"quota guard {guard:g}%", "value": guard}]},
        ),
        _widget(
            "Runs succeeded and failed",
            [_metric(m.RUNS_SUCCEEDED, env), _metric(m.RUNS_FAILED, env, color="#d13212")],
            region,
            "Sum",
        ),
        _widget(
            f"Athena bytes scanned ({aws.athena_workgroup})",
            [["AWS/Athena", "ProcessedBytes", "WorkGroup", aws.athena_workgroup]],
            region,
            "Sum",
        ),
        _widget(
            f"Glue job {aws.glue_job_name}: runs",
            [
                [
                    GLUE_METRICS_NAMESPACE,
                    name,
                    "JobName",
                    aws.glue_job_name,
                    "JobRunId",
                    "ALL",
                    "Type",
                    "count",
                ]
                for name in ("glue.succeed.ALL", "glue.error.ALL")
            ],
            region,
            "Sum",
        ),
    ]
    return {"widgets": widgets}


def plan_dashboard(ctx: DeployContext) -> Step:
    name = names.dashboard_name(ctx.aws.environment)
    resource = f"cloudwatch dashboard {name}"
    cloudwatch = ctx.client("cloudwatch")
    body = dashboard_body(ctx.settings)
    summary = f"{len(ctx.settings.objects)} object(s), API usage, runs, Athena, Glue"
    with aws_errors(resource, ("cloudwatch:GetDashboard",)):
        try:
            current = json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"])
        except Exception as error:
            if error_code(error) not in ("ResourceNotFound", "ResourceNotFoundException"):
                raise
            current = None
    if current == body:
        return Step(Change(resource, "none", summary))

    def put() -> None:
        with aws_errors(resource, ("cloudwatch:PutDashboard",)):
            cloudwatch.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))

    action = "create" if current is None else "update"
    return Step(Change(resource, action, summary), put, ("cloudwatch:PutDashboard",))


# --- alarms ---------------------------------------------------------------------------------


def _alarm(
    name: str,
    description: str,
    metric: str,
    dimensions: list[str],
    statistic: str,
    comparison: str,
    threshold: float,
    topic: str,
    *,
    period: int = HOUR,
    periods: int = 1,
    missing: str = "notBreaching",
) -> dict[str, Any]:
    pairs = list(zip(dimensions[::2], dimensions[1::2], strict=True))
    return {
        "AlarmName": name,
        "AlarmDescription": description,
        "Namespace": m.NAMESPACE,
        "MetricName": metric,
        "Dimensions": [{"Name": k, "Value": v} for k, v in pairs],
        "Statistic": statistic,
        "Period": period,
        "EvaluationPeriods": periods,
        "DatapointsToAlarm": periods,
        "Threshold": float(threshold),
        "ComparisonOperator": comparison,
        "TreatMissingData": missing,
        "ActionsEnabled": True,
        "AlarmActions": [topic],
        "OKActions": [topic],
    }


def desired_alarms(settings: Settings, topic: str) -> list[dict[str, Any]]:
    env = settings.environment
    alarms = []
    for spec in settings.objects:
        dims = _dims(env, spec)
        raw, dim = spec.freshness.raw, spec.freshness.dimension
        alarms += [
            _alarm(
                names.object_alarm_name(env, spec.name, names.RAW_STALE),
                f"{spec.api_name} raw table older than its fail window ({raw.fail_after_minutes} "
                "min since the last extraction)",
                m.RAW_FRESHNESS_LAG,
                dims,
                "Maximum",
                "GreaterThanThreshold",
                raw.fail_after_minutes,
                topic,
            ),
            _alarm(
                names.object_alarm_name(env, spec.name, names.DIMENSION_STALE),
                f"{spec.api_name} dimension older than its fail window ({dim.fail_after_minutes} "
                "min since the last build)",
                m.DIMENSION_FRESHNESS_LAG,
                dims,
                "Maximum",
                "GreaterThanThreshold",
                dim.fail_after_minutes,
                topic,
            ),
            _alarm(
                names.object_alarm_name(env, spec.name, names.CHECKS_FAILED),
                f"an asset check of {spec.api_name} failed",
                m.CHECKS_FAILED,
                dims,
                "Sum",
                "GreaterThanThreshold",
                0,
                topic,
            ),
            _alarm(
                names.object_alarm_name(env, spec.name, names.REJECTS),
                f"{spec.api_name} values were rejected (the object's rejects table)",
                m.RECORDS_REJECTED,
                dims,
                "Sum",
                "GreaterThanThreshold",
                0,
                topic,
            ),
        ]
    hours = settings.config.alerts.no_successful_run_hours
    guard = 100 * settings.config.salesforce.max_api_usage_share
    alarms += [
        # One hour per period, so the window can reach seven days; silence breaches.
        _alarm(
            names.environment_alarm_name(env, names.NO_SUCCESSFUL_RUN),
            f"no successful pipeline run in {hours} h (alerts.no_successful_run_hours)",
            m.RUNS_SUCCEEDED,
            _dims(env),
            "Sum",
            "LessThanThreshold",
            1,
            topic,
            periods=hours,
            missing="breaching",
        ),
        _alarm(
            names.environment_alarm_name(env, names.API_USAGE),
            f"Salesforce API usage past the quota guard's {guard:g}% "
            "(salesforce.max_api_usage_share)",
            m.API_USAGE_PERCENT,
            _dims(env),
            "Maximum",
            "GreaterThanOrEqualToThreshold",
            guard,
            topic,
            period=300,
        ),
    ]
    return alarms


def plan_alarms(ctx: DeployContext, topic: str) -> list[Step]:
    cloudwatch = ctx.client("cloudwatch")
    desired = desired_alarms(ctx.settings, topic)
    wanted = [a["AlarmName"] for a in desired]
    current: dict[str, dict[str, Any]] = {}
    with aws_errors("cloudwatch alarms", ("cloudwatch:DescribeAlarms",)):
        for offset in range(0, len(wanted), 100):  # DescribeAlarms takes 100 names at a time
            paginator = cloudwatch.get_paginator("describe_alarms")
            for page in paginator.paginate(AlarmNames=wanted[offset : offset + 100]):
                for alarm in page.get("MetricAlarms", []):
                    current[alarm["AlarmName"]] = alarm
    steps = []
    for alarm in desired:
        name = alarm["AlarmName"]
        resource = f"cloudwatch alarm {name}"
        summary = (
            f"{alarm['MetricName']} {alarm['Statistic']} "
            f"{_SYMBOLS[alarm['ComparisonOperator']]} {alarm['Threshold']:g}"
        )
        existing = current.get(name)
        if existing is not None and matches(existing, alarm):
            steps.append(Step(Change(resource, "none", summary)))
            continue

        def put(alarm: dict[str, Any] = alarm, resource: str = resource) -> None:
            with aws_errors(resource, ("cloudwatch:PutMetricAlarm",)):
                cloudwatch.put_metric_alarm(**alarm)

        action = "create" if existing is None else "update"
        steps.append(Step(Change(resource, action, summary), put, ("cloudwatch:PutMetricAlarm",)))
    return steps


_SYMBOLS = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
}
