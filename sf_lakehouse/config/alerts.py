"""The `alerts:` section of an environment: where the sensors' alerts go (the alert files, the
environment's SNS topic, Slack), who the topic e-mails, and the alarm settings of the run itself.

```yaml
alerts:
  directory: alerts                  # files (always written), under SF_LAKEHOUSE_HOME
  webserver_url: https://dagster.example.com
  sns: true                          # sf-lakehouse-<env>-alerts (AWS environments)
  email: [oncall@example.com]        # subscriptions of that topic
  slack: {channel: "#data-alerts", token_secret_id: slack/prod/bot-token}  # or token_env
  no_successful_run_hours: 26        # the alarm sf-lakehouse-<env>-no-successful-run
```
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from sf_lakehouse.config.errors import StrictModel

# An address SNS accepts for the `email` protocol (a sanity check, not RFC 5322).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class SlackSink(StrictModel):
    """Slack through dagster-slack: a bot token from Secrets Manager or an environment
    variable (never the token itself in the file), and the channel to post to."""

    channel: str = Field(min_length=2, max_length=80)
    token_secret_id: str | None = Field(default=None, min_length=1)
    token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # Slack's Web API base URL; another one for GovSlack or an egress proxy.
    api_url: str | None = Field(default=None, pattern=r"^https://")

    @field_validator("api_url")
    @classmethod
    def _slash(cls, value: str | None) -> str | None:
        # The client joins method names onto it: `https://host/api/` + `chat.postMessage`.
        return value if value is None or value.endswith("/") else value + "/"

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        # `#name` or a channel id (C0123ABCD); a bare name would post nowhere useful.
        if not (value.startswith("#") or value[:1] in ("C", "G")) or " " in value:
            raise ValueError("use '#channel-name' or a channel id such as C0123ABCD")
        return value

    @model_validator(mode="after")
    def _one_token_source(self) -> SlackSink:
        if (self.token_secret_id is None) == (self.token_env is None):
            raise ValueError(
                "give exactly one of token_secret_id (a Secrets Manager secret) or token_env "
                "(an environment variable holding the bot token)"
            )
        return self


class Alerts(StrictModel):
    directory: str = Field(min_length=1)
    webserver_url: str = Field(min_length=1)
    sns: bool = False
    email: tuple[str, ...] = ()
    slack: SlackSink | None = None
    # No successful run for this long raises sf-lakehouse-<env>-no-successful-run.
    no_successful_run_hours: int = Field(default=26, ge=1, le=24 * 7)

    @field_validator("webserver_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("email")
    @classmethod
    def _emails(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import re

        for address in value:
            if not re.match(EMAIL_PATTERN, address):
                raise ValueError(f"{address!r} is not an e-mail address")
        if len(set(value)) != len(value):
            raise ValueError("an address is listed twice")
        return value

    @model_validator(mode="after")
    def _email_needs_topic(self) -> Alerts:
        if self.email and not self.sns:
            raise ValueError("email subscribes to the SNS topic: set sns: true as well")
        return self


def aws_only_problem(alerts: Alerts, has_aws: bool) -> str | None:
    """Why an environment without an `aws` section cannot have these sinks (None: it can)."""
    if alerts.sns and not has_aws:
        return "alerts.sns needs an AWS environment (an aws section); set sns: false"
    if alerts.slack and alerts.slack.token_secret_id and not has_aws:
        return "alerts.slack.token_secret_id reads Secrets Manager: use token_env locally"
    return None
