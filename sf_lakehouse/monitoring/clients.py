"""boto3 clients of the monitoring calls (metrics, alerts, the Slack token): an outage of
CloudWatch, SNS or Secrets Manager must not hold a run's end or a sensor's tick for minutes
(boto3's defaults: 60 s timeouts, up to 5 attempts), so short timeouts and two attempts."""

from __future__ import annotations

from typing import Any

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 15
MAX_ATTEMPTS = 2  # in all, the first one included


def monitoring_client(service: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        retries={"total_max_attempts": MAX_ATTEMPTS, "mode": "standard"},
    )
    return boto3.client(service, region_name=region, config=config)
