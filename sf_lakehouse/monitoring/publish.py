"""Where the metrics go: CloudWatch (`PutMetricData`, batched) for an AWS environment, JSON Lines
under `$SF_LAKEHOUSE_HOME/metrics/` locally. A failure to publish warns and never fails a run."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sf_lakehouse.config import Settings
from sf_lakehouse.monitoring.metrics import NAMESPACE, Datum, batches
from sf_lakehouse.owner_only import private_dir

METRICS_DIR_NAME = "metrics"
# Local files older than this are deleted when a new day's file starts (CloudWatch keeps
# one-hour points for 15 months; a laptop needs less).
RETENTION_DAYS = 90
logger = logging.getLogger(__name__)


def metrics_dir(settings: Settings) -> Path:
    return settings.home / METRICS_DIR_NAME


def metrics_file(settings: Settings, day: dt.date) -> Path:
    """One file per UTC day: `metrics/<yyyy-mm-dd>.jsonl`."""
    return metrics_dir(settings) / f"{day.isoformat()}.jsonl"


def write_jsonl(settings: Settings, points: Sequence[Datum]) -> Path | None:
    if not points:
        return None
    day = points[0].timestamp.date()
    path = metrics_file(settings, day)
    private_dir(path.parent)
    if not path.exists():
        prune(settings, day)
    lines = "".join(json.dumps(p.as_json(), sort_keys=True) + "\n" for p in points)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(lines)  # one write: readers never see half of a run's points
    return path


def prune(settings: Settings, today: dt.date) -> list[Path]:
    """Delete the day files older than RETENTION_DAYS; returns them."""
    removed = []
    for path in metrics_dir(settings).glob("*.jsonl"):
        try:
            old = (today - dt.date.fromisoformat(path.stem)).days > RETENTION_DAYS
        except ValueError:
            continue  # not ours
        if old:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def read_jsonl(settings: Settings, days: int = 31) -> list[dict[str, Any]]:
    """The local points of the last `days` days, oldest first (unreadable lines skipped)."""
    directory = metrics_dir(settings)
    if not directory.is_dir():
        return []
    today = dt.datetime.now(dt.UTC).date()
    records = []
    for path in sorted(directory.glob("*.jsonl")):
        try:
            if (today - dt.date.fromisoformat(path.stem)).days > days:
                continue
        except ValueError:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash
    return records


def put_cloudwatch(region: str, points: Sequence[Datum], client: Any = None) -> int:
    """PutMetricData in batches of at most 1,000 points; returns the number of calls."""
    if client is None:
        import boto3
        from botocore.config import Config

        # An outage must not hold the run's end for minutes: short timeouts, few retries.
        config = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 2})
        client = boto3.client("cloudwatch", region_name=region, config=config)
    calls = 0
    for batch in batches(points):
        client.put_metric_data(Namespace=NAMESPACE, MetricData=[p.cloudwatch() for p in batch])
        calls += 1
    return calls


def publish(settings: Settings, points: Iterable[Datum], warn: Any = None) -> bool:
    """Publish to the environment's sink; on any error, warn (through `warn`, else the
    module's logger) and return False: monitoring never fails the pipeline."""
    data = list(points)
    if not data:
        return True
    aws = settings.aws
    try:
        if aws is None:
            write_jsonl(settings, data)
        else:
            put_cloudwatch(aws.region, data)
        return True
    except Exception as error:  # an outage, missing permission, a full disk: warn only
        where = "CloudWatch" if aws is not None else str(metrics_dir(settings))
        text = " ".join(str(error).split())[:300]
        message = (
            f"could not publish {len(data)} metric(s) to {where} ({type(error).__name__}: {text}); "
            "the run itself is not affected"
        )
        (warn or logger.warning)(message)
        return False
