"""The Salesforce credentials secret (`salesforce/<env>/credentials`): its keys, their
validation and reading it (no Dagster: the AWS Glue job imports this module).

The secret is a JSON object: `{"username", "password", "security_token", "domain"}` or
`{"client_id", "client_secret", "domain"}`. `domain` may be a prefix (`login`, `test`,
`acme.my`), a host name (`login.salesforce.com`) or an `https://` URL; it is normalised to
simple-salesforce's prefix. Optional `login_url` (an `https://` base URL) and `ca_bundle` (a CA
file) send the login elsewhere than `<domain>.salesforce.com` (the emulator in tests): only the
secret may say so, never the environment of the process that reads it. `sf_lakehouse.aws.secrets`
reads the JSON; parsing it happens here only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sf_lakehouse.aws.secrets import SecretError, read_secret_json
from sf_lakehouse.salesforce.domain import check_login_url, normalize_domain
from sf_lakehouse.salesforce.types import SalesforceConfigError

__all__ = [
    "ALLOWED_KEYS",
    "OAUTH_KEYS",
    "PASSWORD_KEYS",
    "SecretError",
    "read_salesforce_secret",
    "validate_credentials",
]

PASSWORD_KEYS = frozenset({"username", "password", "security_token"})
OAUTH_KEYS = frozenset({"client_id", "client_secret"})
OPTIONAL_KEYS = frozenset({"domain", "login_url", "ca_bundle"})
ALLOWED_KEYS = PASSWORD_KEYS | OAUTH_KEYS | OPTIONAL_KEYS


CREDENTIAL_KEY_ORDER = ("username", "password", "security_token", "client_id", "client_secret")


def validate_credentials(values: Mapping[str, Any], source: str) -> dict[str, str]:
    """Exactly one complete credential set (password or OAuth client), known keys only; the
    domain defaults to `login`. Errors name `source` and the keys, never a value."""
    unknown = sorted(set(values) - ALLOWED_KEYS)
    if unknown:
        raise SecretError(
            f"{source} has unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(ALLOWED_KEYS))}"
        )
    not_text = sorted(k for k, v in values.items() if v is not None and not isinstance(v, str))
    if not_text:
        raise SecretError(f"{source}: {', '.join(not_text)} must be strings")
    present = {k for k, v in values.items() if v}
    has_password = present >= PASSWORD_KEYS
    has_oauth = present >= OAUTH_KEYS
    if has_password and has_oauth:
        raise SecretError(f"{source} holds both a password set and an OAuth client set; keep one")
    if not has_password and not has_oauth:
        missing_password = ", ".join(sorted(PASSWORD_KEYS - present))
        missing_oauth = ", ".join(sorted((OAUTH_KEYS | {"domain"}) - present))
        raise SecretError(
            f"{source} is missing {missing_password} (password login) or {missing_oauth} "
            "(OAuth client credentials)"
        )
    if has_oauth and "domain" not in present:
        raise SecretError(f"{source} is missing domain (your My Domain, e.g. mycompany.my)")
    result = {k: str(values[k]) for k in CREDENTIAL_KEY_ORDER if k in present}
    try:
        result["domain"] = normalize_domain(
            str(values.get("domain") or "login"), f"{source}: domain"
        )
        if values.get("login_url"):
            result["login_url"] = check_login_url(str(values["login_url"]), f"{source}: login_url")
    except SalesforceConfigError as error:
        raise SecretError(str(error)) from None
    if values.get("ca_bundle"):
        result["ca_bundle"] = str(values["ca_bundle"])
    return result


def read_salesforce_secret(secret_id: str, region: str) -> dict[str, str]:
    """Read and validate the secret."""
    return validate_credentials(read_secret_json(secret_id, region), f"secret {secret_id}")
