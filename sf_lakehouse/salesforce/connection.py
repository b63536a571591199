"""How to reach and log in to one org: `ConnectionSettings`, from SF_* variables or an AWS
Secrets Manager secret (no Dagster; the AWS Glue job imports this module).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sf_lakehouse.config import Settings
from sf_lakehouse.redact import secret_or_none
from sf_lakehouse.salesforce.domain import check_login_url, normalize_domain
from sf_lakehouse.salesforce.retry import ClientPolicy
from sf_lakehouse.salesforce.secret import SecretError, read_salesforce_secret
from sf_lakehouse.salesforce.types import SalesforceConfigError

AUTH_METHODS = ("password", "client_credentials", "session")
SECRET_FIELDS = frozenset({"password", "security_token", "client_secret", "session_id"})

# Connection field -> environment variable (what `sf-lakehouse emulator --env-file` writes, and
# what an operator exports for a real org).
ENVIRONMENT_VARIABLES = {
    "auth_method": "SF_AUTH_METHOD",
    "login_url": "SF_LOGIN_URL",
    "domain": "SF_DOMAIN",
    "username": "SF_USERNAME",
    "password": "SF_PASSWORD",
    "security_token": "SF_SECURITY_TOKEN",
    "client_id": "SF_CLIENT_ID",
    "client_secret": "SF_CLIENT_SECRET",
    "session_id": "SF_SESSION_ID",
    "instance_url": "SF_INSTANCE_URL",
    "ca_bundle": "SF_CA_BUNDLE",
    "api_version": "SF_API_VERSION",
}
# What may still come from the environment when the credentials come from a secret.
CONNECTION_FIELDS = frozenset({"api_version"})
# Never from the environment when the credentials come from a secret: they would send the
# secret's credentials to another server, or trust another server's certificate. The secret
# itself may carry them (My Domain logins, the emulator in tests).
REFUSED_WITH_SECRET = ("login_url", "ca_bundle")


def masked_value(name: str, value: Any) -> str:
    """`'***'` for a set secret field, the repr of anything else."""
    return "'***'" if name in SECRET_FIELDS and value else repr(value)


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach and log in to one org. Secret fields never appear in its repr."""

    domain: str = "login"
    login_url: str | None = None
    auth_method: str | None = None
    username: str | None = None
    password: str | None = None
    security_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    session_id: str | None = None
    instance_url: str | None = None
    ca_bundle: str | None = None
    api_version: str = "59.0"
    timeout_seconds: float = 120.0
    # Timeouts, retries and guards; None: the defaults with `timeout_seconds`.
    policy: ClientPolicy | None = None

    def __post_init__(self) -> None:
        # Secret values stay hidden in any repr, also of `dataclasses.asdict(settings)`.
        for name in SECRET_FIELDS:
            object.__setattr__(self, name, secret_or_none(getattr(self, name)))
        object.__setattr__(self, "domain", normalize_domain(self.domain))
        if self.login_url:
            object.__setattr__(self, "login_url", check_login_url(self.login_url))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={masked_value(f.name, getattr(self, f.name))}"
            for f in dataclasses.fields(self)
        )
        return f"ConnectionSettings({shown})"

    __str__ = __repr__

    def replace(self, **changes: Any) -> ConnectionSettings:
        return dataclasses.replace(self, **changes)

    def client_policy(self) -> ClientPolicy:
        return self.policy or ClientPolicy(timeout_seconds=self.timeout_seconds)

    def auth_mode(self) -> str:
        """Which way to log in; raises with the missing setting names when none is complete."""
        sets = {
            "password": {
                "username": self.username,
                "password": self.password,
                "security_token": self.security_token,
            },
            "client_credentials": {
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
            "session": {"session_id": self.session_id, "instance_url": self.instance_url},
        }
        complete = [name for name, parts in sets.items() if all(parts.values())]
        if self.auth_method is not None:
            if self.auth_method not in AUTH_METHODS:
                raise SalesforceConfigError(
                    f"auth_method (SF_AUTH_METHOD) is {self.auth_method!r}; "
                    f"use one of {', '.join(AUTH_METHODS)}"
                )
            if self.auth_method in complete:
                return self.auth_method
            complete = []  # fall through to name what the chosen method is missing
        elif len(complete) == 1:
            return complete[0]
        elif len(complete) > 1:
            raise SalesforceConfigError(
                f"Salesforce credentials are ambiguous: {' and '.join(complete)} are all set; "
                "choose one with auth_method (SF_AUTH_METHOD)"
            )
        partial = [
            f"{'/'.join(parts)} (missing {', '.join(k for k, v in parts.items() if not v)})"
            for parts in sets.values()
            if any(parts.values())
        ]
        hint = f" Incomplete: {'; '.join(partial)}." if partial else ""
        raise SalesforceConfigError(
            "no Salesforce credentials configured: set SF_USERNAME, SF_PASSWORD and "
            "SF_SECURITY_TOKEN, or SF_CLIENT_ID and SF_CLIENT_SECRET, or SF_SESSION_ID and "
            f"SF_INSTANCE_URL (sf-lakehouse emulator --env-file writes them).{hint}"
        )


def refuse_secret_overrides(environ: Mapping[str, str], secret_id: str, environment: str) -> None:
    """SF_LOGIN_URL / SF_CA_BUNDLE are refused when the credentials come from a secret: they
    would send the secret's credentials elsewhere, or trust another server's certificate."""
    found = [
        ENVIRONMENT_VARIABLES[name]
        for name in REFUSED_WITH_SECRET
        if environ.get(ENVIRONMENT_VARIABLES[name])
    ]
    if found:
        raise SalesforceConfigError(
            f"{' and '.join(found)} {'is' if len(found) == 1 else 'are'} set, but environment "
            f"{environment!r} takes its Salesforce credentials from Secrets Manager ({secret_id}): "
            f"refused, so the secret's credentials never go to another server; unset "
            f"{' and '.join(found)}, or put login_url (and ca_bundle) into the secret itself"
        )


def settings_from_environment(
    environ: Mapping[str, str], *, credentials: bool = True
) -> dict[str, str]:
    """Connection values from SF_* variables (only connection settings when `credentials` is
    False, i.e. when the credentials come from a secret)."""
    allowed = set(ENVIRONMENT_VARIABLES) if credentials else CONNECTION_FIELDS
    return {
        field: environ[var]
        for field, var in ENVIRONMENT_VARIABLES.items()
        if field in allowed and environ.get(var)
    }


def with_secret_credentials(
    settings: ConnectionSettings, secret_id: str, region: str | None
) -> ConnectionSettings:
    """These settings with the credentials of an AWS Secrets Manager secret filled in."""
    if not region:
        raise SalesforceConfigError(f"secret {secret_id} needs aws_region")
    try:
        values = read_salesforce_secret(secret_id, region)
    except SecretError as error:
        raise SalesforceConfigError(str(error)) from None
    return settings.replace(**values)


def client_policy(settings: Settings, **overrides: Any) -> ClientPolicy:
    """The client policy of an environment (`salesforce.*` in the pipeline config); a sensor
    tick may shorten it, e.g. `client_policy(settings, timeout_seconds=20, max_retries=1)`."""
    return ClientPolicy.from_config(settings.config.salesforce, **overrides)


def connection_from_environment(
    settings: Settings, environ: Mapping[str, str]
) -> ConnectionSettings:
    """The connection of an environment: SF_* variables, or (for `secretsmanager`) the secret's
    credentials with only connection settings from the variables."""
    from_secret = settings.auth.source == "secretsmanager"
    if from_secret:
        assert settings.auth.secret_id is not None  # validated with the config
        refuse_secret_overrides(environ, settings.auth.secret_id, settings.environment)
    values = settings_from_environment(environ, credentials=not from_secret)
    connection = ConnectionSettings(
        **{"api_version": settings.api_version, **values}, policy=client_policy(settings)
    )
    if from_secret:
        assert settings.auth.secret_id is not None
        connection = with_secret_credentials(
            connection, settings.auth.secret_id, settings.require_aws().region
        )
    return connection
