"""The Dagster resource over the Salesforce client: configuration in, `SalesforceClient` out."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from dagster import ConfigurableResource, EnvVar
from pydantic import Field, PrivateAttr

from sf_lakehouse.config import ConfigError, Settings
from sf_lakehouse.launch_lock import LaunchLocked
from sf_lakehouse.salesforce.client import (
    CONNECTION_FIELDS,
    ENVIRONMENT_VARIABLES,
    SECRET_FIELDS,
    ConnectionSettings,
    SalesforceClient,
    connect,
    masked_value,
    refuse_secret_overrides,
    with_secret_credentials,
)

_SECRET_DESCRIPTION = "Secret: pass it with EnvVar; never shown in a repr or a log line"


class SalesforceResource(LaunchLocked, ConfigurableResource):
    """Salesforce over simple-salesforce: username + password + security token, OAuth client
    credentials, or an existing session id + instance URL. Pass secrets with `EnvVar`.

    A run's launch configuration may change only the API version and the timeout: never where
    the credentials go (`domain`, `login_url`, `ca_bundle`, `instance_url`), which credentials or
    which Secrets Manager secret are used (`secret_id`, `aws_region`, the credential fields).
    """

    launch_configurable: ClassVar[frozenset[str]] = frozenset({"api_version", "timeout_seconds"})
    launch_label: ClassVar[str] = "salesforce"

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
    # Dagster config has no SecretStr: secret fields are plain strings whose values the
    # resource's repr/str replace with '***' (and Dagster resolves EnvVars only at run time).
    password: str | None = Field(default=None, description=_SECRET_DESCRIPTION)
    security_token: str | None = Field(default=None, description=_SECRET_DESCRIPTION)
    client_id: str | None = Field(default=None, description="OAuth client credentials flow")
    client_secret: str | None = Field(default=None, description=_SECRET_DESCRIPTION)
    session_id: str | None = Field(
        default=None, description="An existing session (with instance_url). " + _SECRET_DESCRIPTION
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

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name in SECRET_FIELDS and value:
                yield name, "***"
            else:
                yield name, value

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={masked_value(name, getattr(self, name, None))}"
            for name in type(self).model_fields
        )
        return f"{type(self).__name__}({shown})"

    __str__ = __repr__

    def launch_refusal_reason(self) -> str:
        return (
            "nothing given at launch may change where the Salesforce credentials go or which "
            "credentials (or Secrets Manager secret) are read"
        )

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
        # Only the API version may still come from the environment: no credentials, and no
        # login URL or CA bundle that would send the secret's credentials elsewhere.
        refuse_secret_overrides(os.environ, auth.secret_id, settings.environment)
        allowed = CONNECTION_FIELDS
    else:
        allowed = set(ENVIRONMENT_VARIABLES)
    for field_name, var in ENVIRONMENT_VARIABLES.items():
        if field_name in allowed and os.environ.get(var):
            config[field_name] = EnvVar(var)
    return SalesforceResource(**config)
