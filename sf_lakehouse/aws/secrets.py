"""Reading a JSON secret from AWS Secrets Manager (no Dagster: the Glue job reads its
Salesforce credentials through this).

This module knows nothing of what a secret holds: `sf_lakehouse.salesforce.secret` parses and
validates the Salesforce credentials secret (`salesforce/<env>/credentials`). Errors name the
secret and the fix, never a value.
"""

from __future__ import annotations

import json
from typing import Any


class SecretError(ValueError):
    """The secret is missing, unreadable or malformed; the message never contains its values."""


def read_secret_json(secret_id: str, region: str) -> dict[str, Any]:
    """The secret's JSON object (boto3 honours AWS_ENDPOINT_URL)."""
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
    return values
