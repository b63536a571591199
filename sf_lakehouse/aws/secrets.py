"""Salesforce credentials from AWS Secrets Manager (`salesforce/<env>/credentials`)."""

from __future__ import annotations

import json
from typing import Any

PASSWORD_KEYS = frozenset({"username", "password", "security_token"})
OAUTH_KEYS = frozenset({"client_id", "client_secret"})
OPTIONAL_KEYS = frozenset({"domain"})
ALLOWED_KEYS = PASSWORD_KEYS | OAUTH_KEYS | OPTIONAL_KEYS


class SecretError(ValueError):
    """The secret is missing, unreadable or malformed; the message never contains its values."""


def validate_credentials(values: dict[str, Any], secret_id: str) -> dict[str, str]:
    """Exactly one complete credential set (password or OAuth client), known keys only."""
    unknown = sorted(set(values) - ALLOWED_KEYS)
    if unknown:
        raise SecretError(
            f"secret {secret_id} has unknown key(s) {', '.join(unknown)}; allowed: "
            f"{', '.join(sorted(ALLOWED_KEYS))}"
        )
    present = {k for k, v in values.items() if v not in (None, "")}
    has_password = present >= PASSWORD_KEYS
    has_oauth = present >= OAUTH_KEYS
    if has_password == has_oauth:
        missing_password = sorted(PASSWORD_KEYS - present)
        missing_oauth = sorted(OAUTH_KEYS - present)
        detail = (
            "both a password set and an OAuth client set"
            if has_password
            else f"missing {', '.join(missing_password)} (password login) or "
            f"{', '.join(missing_oauth)} (OAuth client credentials)"
        )
        raise SecretError(f"secret {secret_id} must hold exactly one credential set: {detail}")
    return {k: str(v) for k, v in values.items() if k in present}


def read_salesforce_secret(secret_id: str, region: str) -> dict[str, str]:
    """Read and validate the secret (boto3 honours AWS_ENDPOINT_URL)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client("secretsmanager", region_name=region)
    try:
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "ClientError")
        hint = (
            "create it with `sf-lakehouse deploy --environment ENV --sf-username ...`"
            if code == "ResourceNotFoundException"
            else "the identity needs secretsmanager:GetSecretValue on it"
        )
        raise SecretError(f"cannot read secret {secret_id} ({code}); {hint}") from None
    except BotoCoreError as error:
        raise SecretError(f"cannot reach Secrets Manager for {secret_id}: {error}") from None
    try:
        values = json.loads(response.get("SecretString") or "")
    except json.JSONDecodeError:
        raise SecretError(f"secret {secret_id} is not a JSON object") from None
    if not isinstance(values, dict):
        raise SecretError(f"secret {secret_id} is not a JSON object")
    return validate_credentials(values, secret_id)
