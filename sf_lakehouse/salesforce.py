"""Salesforce access: a Dagster resource over simple-salesforce, and typed conversion to Arrow."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import requests
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

# Salesforce field types -> Arrow. Anything not listed (address, location, anyType, ...) is kept
# as its JSON-ish string form rather than dropped.
_ARROW_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "datetime": pa.timestamp("us"),
    "date": pa.date32(),
    "double": pa.float64(),
    "currency": pa.float64(),
    "percent": pa.float64(),
    "int": pa.int64(),
    "long": pa.int64(),
}
_COMPOUND_TYPES = {"address", "location"}
AUTH_METHODS = ("password", "client_credentials", "session")


class SalesforceConfigError(ValueError):
    """Salesforce settings are incomplete or wrong; the message says which and how to fix."""


@dataclass(frozen=True)
class FieldSpec:
    """One extracted field: its Salesforce API name, Salesforce type and whether it is custom."""

    name: str
    sf_type: str
    custom: bool = False

    @property
    def column(self) -> str:
        return self.name.lower()

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES.get(self.sf_type, pa.string())


def parse_sf_datetime(value: str) -> dt.datetime:
    """Salesforce datetimes (`2026-03-01T08:00:00.000+0000`) as naive UTC, microsecond precision."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def format_soql_datetime(value: dt.datetime) -> str:
    """A SOQL datetime literal (UTC, unquoted)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _convert(value: Any, spec: FieldSpec) -> Any:
    if value is None:
        return None
    if spec.sf_type == "datetime":
        return parse_sf_datetime(value)
    if spec.sf_type == "date":
        return dt.date.fromisoformat(value)
    if spec.sf_type in ("double", "currency", "percent"):
        return float(value)
    if spec.sf_type in ("int", "long"):
        return int(value)
    if spec.sf_type == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if isinstance(value, dict | list):
        return repr(value)
    return str(value)


def records_to_arrow(records: Iterable[dict[str, Any]], fields: Sequence[FieldSpec]) -> pa.Table:
    """Typed Arrow table with lower-cased column names from Salesforce REST records."""
    columns: dict[str, list[Any]] = {f.column: [] for f in fields}
    for record in records:
        for spec in fields:
            columns[spec.column].append(_convert(record.get(spec.name), spec))
    schema = pa.schema([pa.field(f.column, f.arrow_type, nullable=True) for f in fields])
    return pa.Table.from_pydict(columns, schema=schema)


def select_fields(
    described: Sequence[dict[str, Any]], configured: Sequence[str], object_name: str
) -> list[FieldSpec]:
    """Configured fields plus every custom field of the object, typed from describe()."""
    by_name = {f["name"].lower(): f for f in described}
    missing = [name for name in configured if name.lower() not in by_name]
    if missing:
        raise SalesforceConfigError(
            f"{object_name} has no field(s) {', '.join(missing)} in this org; add them to the org "
            "or remove them from salesforce.fields in config/pipeline-config.yml"
        )
    chosen = [by_name[name.lower()] for name in configured]
    chosen_names = {f["name"] for f in chosen}
    chosen += [
        f
        for f in described
        if f.get("custom")
        and f["name"] not in chosen_names
        and f.get("type") not in _COMPOUND_TYPES
    ]
    return [FieldSpec(f["name"], f.get("type", "string"), bool(f.get("custom"))) for f in chosen]


class _LoginHostAdapter(HTTPAdapter):
    """Sends requests for simple-salesforce's fixed login host to `login_url` instead.

    simple-salesforce always authenticates at https://<domain>.salesforce.com; this is how the
    pipeline reaches the emulator, or a login endpoint behind an egress proxy."""

    def __init__(self, source_prefix: str, target_base: str) -> None:
        super().__init__()
        self._source_prefix = source_prefix
        self._target_base = target_base.rstrip("/")

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        assert request.url is not None
        request.url = self._target_base + request.url[len(self._source_prefix) :]
        return super().send(request, **kwargs)


class SalesforceClient:
    """One authenticated connection; counts the API calls a run made."""

    def __init__(self, sf: Salesforce, api_version: str) -> None:
        self._sf = sf
        self.api_version = api_version
        self.api_calls = 0

    @property
    def api_usage(self) -> dict[str, int]:
        """Org-wide usage from the last Sforce-Limit-Info header: {'used': n, 'limit': m}."""
        usage = self._sf.api_usage.get("api-usage")
        if usage is None:
            return {}
        return {"used": int(usage.used), "limit": int(usage.total)}

    def describe(self, object_name: str) -> list[dict[str, Any]]:
        self.api_calls += 1
        result = getattr(self._sf, object_name).describe()
        return list(result["fields"])

    def query(self, soql: str, page_size: int = 2000) -> Iterator[dict[str, Any]]:
        """All records of a query, page by page (`nextRecordsUrl`), without the attributes key."""
        headers = {"Sforce-Query-Options": f"batchSize={page_size}"}
        self.api_calls += 1
        page = self._sf.query(soql, headers=headers)
        while True:
            for record in page["records"]:
                yield {k: v for k, v in record.items() if k != "attributes"}
            if page.get("done", True):
                return
            self.api_calls += 1
            page = self._sf.query_more(
                page["nextRecordsUrl"], identifier_is_url=True, headers=headers
            )

    def limits(self) -> dict[str, Any]:
        """The org's limits (`DailyApiRequests`: Max, Remaining, ...)."""
        self.api_calls += 1
        return dict(self._sf.limits())

    def count(self, soql: str) -> int:
        self.api_calls += 1
        return int(self._sf.query(soql)["totalSize"])


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

    def auth_mode(self) -> str:
        """Which way to log in; raises with the missing setting names when none is complete."""
        password_parts = {
            "username": self.username,
            "password": self.password,
            "security_token": self.security_token,
        }
        oauth_parts = {"client_id": self.client_id, "client_secret": self.client_secret}
        session_parts = {"session_id": self.session_id, "instance_url": self.instance_url}
        complete = [
            name
            for name, parts in (
                ("password", password_parts),
                ("client_credentials", oauth_parts),
                ("session", session_parts),
            )
            if all(parts.values())
        ]
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
            f"{name} (missing {', '.join(k for k, v in parts.items() if not v)})"
            for name, parts in (
                ("username/password/security_token", password_parts),
                ("client_id/client_secret", oauth_parts),
                ("session_id/instance_url", session_parts),
            )
            if any(parts.values())
        ]
        hint = f" Incomplete: {'; '.join(partial)}." if partial else ""
        raise SalesforceConfigError(
            "no Salesforce credentials configured: set SF_USERNAME, SF_PASSWORD and "
            "SF_SECURITY_TOKEN, or SF_CLIENT_ID and SF_CLIENT_SECRET, or SF_SESSION_ID and "
            f"SF_INSTANCE_URL (sf-lakehouse emulator --env-file writes them).{hint}"
        )

    def _http_session(self) -> requests.Session:
        session = requests.Session()
        # REQUESTS_CA_BUNDLE would otherwise override `verify` for every request.
        session.trust_env = False
        if self.ca_bundle:
            session.verify = self.ca_bundle
        if self.login_url:
            prefix = f"https://{self.domain}.salesforce.com"
            session.mount(prefix, _LoginHostAdapter(prefix, self.login_url))
        return session

    def with_secret_credentials(self) -> SalesforceResource:
        """This resource with the credentials of `secret_id` filled in (fetched at connect
        time, never at definition load)."""
        if not self.secret_id:
            return self
        from sf_lakehouse.aws.secrets import SecretError, read_salesforce_secret

        if not self.aws_region:
            raise SalesforceConfigError(f"secret {self.secret_id} needs aws_region")
        try:
            values = read_salesforce_secret(self.secret_id, self.aws_region)
        except SecretError as error:
            raise SalesforceConfigError(str(error)) from None
        return SalesforceResource(
            **{
                **{k: v for k, v in self._config_values().items() if k not in ("secret_id",)},
                **values,
            }
        )

    def _config_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields}

    def connect(self) -> SalesforceClient:
        """Log in (once per resource instance) and return the client."""
        if self._client is not None:
            return self._client
        if self.secret_id:
            self._client = self.with_secret_credentials().connect()
            return self._client
        mode = self.auth_mode()
        session = self._http_session()
        common: dict[str, Any] = {"session": session, "version": self.api_version}
        try:
            if mode == "password":
                sf = Salesforce(
                    username=self.username,
                    password=self.password,
                    security_token=self.security_token,
                    domain=self.domain,
                    **common,
                )
            elif mode == "client_credentials":
                sf = Salesforce(
                    consumer_key=self.client_id,
                    consumer_secret=self.client_secret,
                    domain=self.domain,
                    **common,
                )
            else:
                sf = Salesforce(
                    session_id=self.session_id, instance_url=self.instance_url, **common
                )
        except SalesforceError as error:
            # The exception text can echo the request; keep only the code and the reason.
            raise SalesforceConfigError(
                f"Salesforce login ({mode}) failed at {self.login_url or self.domain}: "
                f"{type(error).__name__}; check the credentials"
            ) from None
        except requests.exceptions.SSLError:
            raise SalesforceConfigError(
                f"TLS verification of {self.login_url or self.domain} failed; set ca_bundle "
                "(SF_CA_BUNDLE) to the CA file of that server"
            ) from None
        except requests.exceptions.ConnectionError:
            raise SalesforceConfigError(
                f"cannot reach Salesforce at {self.login_url or self.domain}; is the server "
                "(or `sf-lakehouse emulator`) running?"
            ) from None
        self._client = SalesforceClient(sf, self.api_version)
        return self._client
