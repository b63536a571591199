"""Alerts to people: besides the alert files the sensors write, the environment's SNS topic
(`alerts.sns: true`) and Slack through dagster-slack (`alerts.slack`).

A message names the object, the failed step or check, the error in one line and the run's
link. It never carries a secret or a record's values: quoted values in an error (the
extraction quotes the value that did not convert) are replaced before anything is sent.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sf_lakehouse.config import Settings
from sf_lakehouse.monitoring import names
from sf_lakehouse.owner_only import private_dir

# 'value' or "value": a record's value quoted by an error message.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
REDACTED = "'…'"
ERROR_MAX = 300
SLACK_TOKEN_KEYS = ("token", "bot_token", "slack_bot_token")


def one_line(text: str | None) -> str:
    """The error as one line without quoted values, at most ERROR_MAX characters."""
    flat = " ".join(_QUOTED.sub(REDACTED, text or "").split())
    return flat if len(flat) <= ERROR_MAX else flat[: ERROR_MAX - 1] + "…"


@dataclass(frozen=True)
class Alert:
    """One change of state. `state`: `failed` / `stale` / `warn` when something broke, `ok`
    when it is good again."""

    environment: str
    kind: str  # run, check, freshness
    state: str
    objects: tuple[str, ...]
    subject: str  # the failed step, the check, the table
    error: str
    link: str

    @property
    def recovered(self) -> bool:
        return self.state == "ok"

    def headline(self) -> str:
        what = ", ".join(self.objects) or "all objects"
        mark = "RESOLVED" if self.recovered else self.state.upper()
        return f"[sf-lakehouse {self.environment}] {mark} {self.kind} {self.subject} ({what})"

    def text(self) -> str:
        lines = [self.headline()]
        if self.error:
            lines.append(f"error: {one_line(self.error)}")
        lines.append(f"link: {self.link}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "kind": self.kind,
            "state": self.state,
            "objects": list(self.objects),
            "subject": self.subject,
            "error": one_line(self.error),
            "link": self.link,
        }


# --- files (always) ------------------------------------------------------------------------


def record_alert(directory: Path, kind: str, record: dict[str, Any], headline: str) -> Path:
    """Append one alert: a JSON line (`<kind>.jsonl`, for tools) and one readable line
    (`alerts.log`, for people). Returns the JSON Lines file."""
    private_dir(directory)
    path = directory / f"{kind}.jsonl"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, default=str, sort_keys=True) + "\n")
    with (directory / "alerts.log").open("a", encoding="utf-8") as handle:
        handle.write(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}Z {headline}\n")
    return path


# --- SNS ------------------------------------------------------------------------------------


def send_sns(settings: Settings, alert: Alert, client: Any = None) -> str:
    """Publish to `sf-lakehouse-<env>-alerts`; returns the message id."""
    import boto3

    aws = settings.require_aws()
    client = client or boto3.client("sns", region_name=aws.region)
    account = boto3.client("sts", region_name=aws.region).get_caller_identity()["Account"]
    response = client.publish(
        TopicArn=names.topic_arn(settings.environment, aws.region, str(account)),
        Subject=alert.headline()[:100],  # SNS caps e-mail subjects at 100 characters
        Message=alert.text(),
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": alert.kind},
            "state": {"DataType": "String", "StringValue": alert.state},
        },
    )
    return str(response["MessageId"])


# --- Slack ----------------------------------------------------------------------------------


def slack_token(settings: Settings) -> str:
    """The bot token, from Secrets Manager (the secret is the token, or a JSON object with a
    `token` key) or the environment variable the config names. Errors never show it."""
    sink = settings.config.alerts.slack
    if sink is None:
        raise ValueError("alerts.slack is not configured")
    if sink.token_env is not None:
        from dagster import EnvVar

        value = EnvVar(sink.token_env).get_value()
        if not value:
            raise ValueError(
                f"environment variable {sink.token_env} (the Slack bot token) is unset"
            )
        return value
    import boto3

    secret_id = str(sink.token_secret_id)
    region = settings.require_aws().region
    text = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=secret_id)[
        "SecretString"
    ]
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()
    if isinstance(parsed, dict):
        for key in SLACK_TOKEN_KEYS:
            if parsed.get(key):
                return str(parsed[key])
        raise ValueError(f"secret {secret_id} has none of the keys {', '.join(SLACK_TOKEN_KEYS)}")
    return text.strip()


def slack_client(settings: Settings) -> Any:
    """dagster-slack's client; `alerts.slack.api_url` (GovSlack, a proxy) replaces Slack's."""
    from dagster_slack import SlackResource

    sink = settings.config.alerts.slack
    client = SlackResource(token=slack_token(settings)).get_client()
    if sink is not None and sink.api_url:
        client.base_url = sink.api_url
    return client


def send_slack(settings: Settings, alert: Alert, client: Any = None) -> str:
    """`chat.postMessage` to the configured channel; returns the message's `ts`."""
    sink = settings.config.alerts.slack
    if sink is None:
        raise ValueError("alerts.slack is not configured")
    client = client or slack_client(settings)
    emoji = ":white_check_mark:" if alert.recovered else ":rotating_light:"
    response = client.chat_postMessage(
        channel=sink.channel,
        text=f"{emoji} {alert.text()}",
        unfurl_links=False,
    )
    return str(response.get("ts", ""))


# --- all configured sinks -------------------------------------------------------------------


def notify(settings: Settings, alert: Alert, warn: Callable[[str], Any]) -> list[str]:
    """Send to every external sink the environment configures (the files are written by the
    sensors themselves). A sink that fails warns and never stops the others; returns the
    sinks that took the message."""
    alerts = settings.config.alerts
    senders: list[tuple[str, Callable[[Settings, Alert], str]]] = []
    if alerts.sns:
        senders.append(("sns", send_sns))
    if alerts.slack is not None:
        senders.append(("slack", send_slack))
    delivered = []
    for name, send in senders:
        try:
            send(settings, alert)
            delivered.append(name)
        except Exception as error:
            warn(
                f"alert not delivered to {name} ({type(error).__name__}: "
                f"{one_line(str(error))[:200]}): {alert.headline()}"
            )
    return delivered
