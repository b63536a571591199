"""`status` for an AWS environment: the recent points of the environment's metrics, read back
from CloudWatch (GetMetricData) in the shape of the local JSON Lines records."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sf_lakehouse.config import Settings
from sf_lakehouse.monitoring import metrics as m

# CloudWatch keeps no run ids and aggregates per period: five-minute points of the last days.
PERIOD_SECONDS = 300
MAX_DAYS = 3
STATISTICS = {
    m.RUNS_SUCCEEDED: "Sum",
    m.RUNS_FAILED: "Sum",
    m.RECORDS_REJECTED: "Sum",
    m.CHECKS_FAILED: "Sum",
    m.API_USAGE_PERCENT: "Maximum",
    m.RAW_FRESHNESS_LAG: "Minimum",  # the freshest reading of the period
    m.DIMENSION_FRESHNESS_LAG: "Minimum",
}


def queries(settings: Settings) -> list[dict[str, Any]]:
    found = []
    for index, spec in enumerate(settings.objects):
        for number, (metric, stat) in enumerate(STATISTICS.items()):
            found.append(
                {
                    "Id": f"q{index}_{number}",
                    "Label": f"{spec.api_name}|{metric}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": m.NAMESPACE,
                            "MetricName": metric,
                            "Dimensions": [
                                {"Name": m.ENVIRONMENT, "Value": settings.environment},
                                {"Name": m.OBJECT, "Value": spec.api_name},
                            ],
                        },
                        "Period": PERIOD_SECONDS,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
            )
    return found


def read_cloudwatch(
    settings: Settings, now: dt.datetime, days: int = MAX_DAYS, client: Any = None
) -> list[dict[str, Any]]:
    import boto3

    region = settings.require_aws().region
    client = client or boto3.client("cloudwatch", region_name=region)
    wanted = queries(settings)
    labels = {q["Id"]: q["Label"] for q in wanted}
    start = now - dt.timedelta(days=min(days, MAX_DAYS))
    records = []
    for offset in range(0, len(wanted), 500):  # at most 500 queries per call
        kwargs: dict[str, Any] = {
            "MetricDataQueries": wanted[offset : offset + 500],
            "StartTime": start,
            "EndTime": now + dt.timedelta(minutes=5),
        }
        while True:
            page = client.get_metric_data(**kwargs)
            for result in page.get("MetricDataResults", []):
                name, metric = labels[result["Id"]].split("|", 1)
                for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                    records.append(
                        {
                            "time": stamp.astimezone(dt.UTC).isoformat(),
                            "metric": metric,
                            "value": value,
                            "dimensions": {m.ENVIRONMENT: settings.environment, m.OBJECT: name},
                        }
                    )
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    return records
