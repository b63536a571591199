"""The Dagster resource over the Salesforce client: configuration in, `SalesforceClient` out."""

from __future__ import annotations

import os
from typing import Any

from dagster import ConfigurableResource, EnvVar
from pydantic import Field, PrivateAttr

from sf_lakehouse.config import ConfigError, Settings
from sf_lakehouse.salesforce.client import (
    CONNECTION_FIELDS,
    ENVIRONMENT_VARIABLES,
    ConnectionSettings,
    SalesforceClient,
    connect,
    with_secret_credentials,
)


class SalesforceResource(ConfigurableResource):
    """Salesforce over simple-salesforce: username + password + security token, OAuth client
    credentials, or an existing session id + instance URL. Pass secrets with `EnvVar`."""

    domain: str = Field(
        default="login",
        description="login, test, or a My Domain prefix (mycompany.my) of <domain>.salesforce.com",
    )
    login_url: str | None = Field(
        default=None,
        description="Send authentication to this base URL instead of https://<domain>."
        "salesforce.com (the emulator, or a login endpoint behind a proxy).",
    )
    auth_method: str | None = Field(
        default=None,
        description="password, client_credentials or session: which credentials to log in "
        "with; needed only when several sets are given",
    )
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    client_id: str | None = Field(default=None, description="OAuth client credentials flow")
    client_secret: str | None = None
    session_id: str | None = Field(
        default=None, description="An existing session (with instance_url)"
    )
    instance_url: str | None = None
    secret_id: str | None = Field(
        default=None,
        description="Read the credentials from this AWS Secrets Manager secret (JSON with "
        "username/password/security_token[/domain] or client_id/client_secret[/domain])",
    )
    aws_region: str | None = Field(default=None, description="Region of the secret")
    ca_bundle: str | None = Field(
        default=None, description="CA bundle file to verify TLS with (the emulator writes one)"
    )
    api_version: str = "59.0"
    timeout_seconds: float = 120.0

    _client: SalesforceClient | None = PrivateAttr(default=None)

    def connection_settings(self) -> ConnectionSettings:
        settings = ConnectionSettings(
            **{
                name: getattr(self, name)
                for name in ConnectionSettings.__dataclass_fields__
                if name in type(self).model_fields
            }
        )
        if self.secret_id:
            settings = with_secret_credentials(settings, self.secret_id, self.aws_region)
        return settings

    def auth_mode(self) -> str:
        return self.connection_settings().auth_mode()

    def connect(self) -> SalesforceClient:
        """Log in (once per resource instance) and return the client."""
        if self._client is None:
            self._client = connect(self.connection_settings())
        return self._client


def salesforce_from_environment(settings: Settings) -> SalesforceResource:
    """Salesforce resource wired to the SF_* variables that are set; secrets stay EnvVars so
    their values never reach run config, logs or the UI."""
    config: dict[str, Any] = {"api_version": settings.api_version}
    auth = settings.auth
    if auth.source == "secretsmanager":
        if not auth.secret_id:
            raise ConfigError(
                f"environments.{settings.environment}.salesforce_auth.secret_id is missing"
            )
        config["secret_id"] = auth.secret_id
        config["aws_region"] = settings.require_aws().region
        # Connection settings may still come from the environment; credentials may not.
        allowed = CONNECTION_FIELDS
    else:
        allowed = set(ENVIRONMENT_VARIABLES)
    for field_name, var in ENVIRONMENT_VARIABLES.items():
        if field_name in allowed and os.environ.get(var):
            config[field_name] = EnvVar(var)
    return SalesforceResource(**config)
