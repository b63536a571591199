"""Names of an environment's monitoring resources (the one place they are spelt), Dagster-free:
deploy, the sensors and `status` all derive them from here."""

from __future__ import annotations

PREFIX = "sf-lakehouse"
# Per object: `sf-lakehouse-<env>-<object>-<suffix>`.
RAW_STALE = "raw-stale"
DIMENSION_STALE = "dimension-stale"
CHECKS_FAILED = "checks-failed"
REJECTS = "rejects"
OBJECT_ALARMS = (RAW_STALE, DIMENSION_STALE, CHECKS_FAILED, REJECTS)
# Per environment: `sf-lakehouse-<env>-<suffix>`.
NO_SUCCESSFUL_RUN = "no-successful-run"
API_USAGE = "api-usage"
ENVIRONMENT_ALARMS = (NO_SUCCESSFUL_RUN, API_USAGE)


def dashboard_name(environment: str) -> str:
    return f"{PREFIX}-{environment}"


def topic_name(environment: str) -> str:
    return f"{PREFIX}-{environment}-alerts"


def topic_arn(environment: str, region: str, account_id: str) -> str:
    return f"arn:aws:sns:{region}:{account_id}:{topic_name(environment)}"


def topic_key_alias(environment: str) -> str:
    """The KMS key that encrypts the topic (CloudWatch and EventBridge may use it)."""
    return f"alias/{topic_name(environment)}"


def glue_rule_name(environment: str) -> str:
    return f"{PREFIX}-{environment}-glue-job-state"


def object_alarm_name(environment: str, object_name: str, suffix: str) -> str:
    """`object_name`: the object's snake name (`user`, `opportunity`)."""
    return f"{PREFIX}-{environment}-{object_name}-{suffix}"


def environment_alarm_name(environment: str, suffix: str) -> str:
    return f"{PREFIX}-{environment}-{suffix}"
