"""The deploy plan (`Change`s, each with the code that applies it), its errors and formatting.

Every AWS or pyiceberg failure during planning or applying becomes one `AwsDeployError` line
naming the resource, the error code and the fix; secret values never reach a change's detail.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["create", "update", "none"]


class DeployError(ValueError):
    """Wrong input (environment, credentials, files): the message says what to pass instead."""


class AwsDeployError(RuntimeError):
    """An AWS call failed: one line with the resource, the AWS error code and what to do."""

    def __init__(self, resource: str, code: str, hint: str) -> None:
        super().__init__(f"{resource}: AWS error {code}: {hint}")
        self.resource = resource
        self.code = code


@dataclass(frozen=True)
class Change:
    resource: str
    action: Action
    detail: str = ""


@dataclass
class Step:
    change: Change
    apply: Callable[[], None] | None = None
    actions: tuple[str, ...] = ()


@dataclass
class Plan:
    environment: str
    account_id: str
    region: str
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[Change]:
        return [step.change for step in self.steps]

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "none"]


def format_plan(plan: Plan) -> str:
    lines = [
        f"Deploy plan for environment {plan.environment!r} "
        f"(account {plan.account_id}, {plan.region}):"
    ]
    for change in plan.changes:
        detail = f"  ({change.detail})" if change.detail else ""
        lines.append(f"  {change.action:<7} {change.resource}{detail}")
    lines += [f"  note: {note}" for note in plan.notes]
    return "\n".join(lines)


# --- errors ---------------------------------------------------------------------------------

_ACCESS_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden"}
_BAD_CREDENTIALS = {
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
}


def hint(code: str, message: str, actions: Sequence[str]) -> str:
    if code in _ACCESS_DENIED or code == "403":
        return (
            f"the deploying identity needs {', '.join(actions) or 'more permissions'}; "
            "see README 'IAM permissions'"
        )
    if code in _BAD_CREDENTIALS:
        return "the AWS credentials are invalid or expired; refresh them (aws sso login, new keys)"
    if code == "BucketAlreadyExists":
        return "the bucket name belongs to another account; change bucket_prefix in the config"
    first_line = " ".join(message.split())[:200]
    return first_line or "see the AWS documentation of this error code"


@contextlib.contextmanager
def aws_errors(resource: str, actions: Sequence[str] = ()) -> Iterator[None]:
    """Turn boto and pyiceberg errors into one-line `AwsDeployError`s naming the resource."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    try:
        yield
    except ClientError as error:
        info = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        code = str(info.get("Code") or status or "ClientError")
        raise AwsDeployError(resource, code, hint(code, info.get("Message", ""), actions)) from None
    except NoCredentialsError:
        raise AwsDeployError(
            resource,
            "NoCredentials",
            "no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        ) from None
    except EndpointConnectionError as error:
        raise AwsDeployError(
            resource,
            "EndpointConnectionError",
            f"cannot reach {error.kwargs.get('endpoint_url')}; check the network, "
            "AWS_ENDPOINT_URL and the region",
        ) from None
    except BotoCoreError as error:
        raise AwsDeployError(resource, type(error).__name__, str(error)) from None


@contextlib.contextmanager
def iceberg_errors(resource: str, actions: Sequence[str] = ()) -> Iterator[None]:
    """pyiceberg's own exceptions and the S3 file system's OSErrors, as one line each."""
    from pyiceberg import exceptions as ice

    try:
        with aws_errors(resource, actions):
            yield
    except OSError as error:
        message = " ".join(str(error).split())[:200]
        raise AwsDeployError(
            resource,
            "S3",
            f"cannot read or write table metadata: {message}; check the deploying identity's "
            "S3 access to the bucket and that the table's metadata files exist",
        ) from None
    except (ice.CommitFailedException, ice.CommitStateUnknownException) as error:
        raise AwsDeployError(
            resource,
            type(error).__name__,
            "another writer changed the table at the same time; run deploy again",
        ) from None
    except (
        ice.NoSuchNamespaceError,
        ice.NoSuchIcebergTableError,
        ice.NoSuchPropertyException,
    ) as error:
        raise AwsDeployError(
            resource,
            type(error).__name__,
            f"{' '.join(str(error).split())[:160]}; the Glue entry is not an Iceberg table or its "
            "database is missing: drop or rename the Glue table, then run deploy again",
        ) from None
    except ValueError as error:
        raise AwsDeployError(
            resource, type(error).__name__, " ".join(str(error).split())[:200]
        ) from None


def error_code(error: Exception) -> str:
    response = getattr(error, "response", {}) or {}
    info = response.get("Error", {})
    return str(info.get("Code") or response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def matches(current: Any, desired: Any) -> bool:
    """Desired keys only: AWS adds defaults (e.g. MaxCapacity) that are not drift."""
    if isinstance(desired, dict):
        current = current or {}
        return isinstance(current, dict) and all(
            matches(current.get(k), v) for k, v in desired.items()
        )
    if isinstance(desired, list) and isinstance(current, list):
        return len(current) == len(desired) and all(
            matches(c, d) for c, d in zip(current, desired, strict=True)
        )
    if isinstance(desired, bool) or isinstance(current, bool):
        return current == desired
    if isinstance(desired, (int, float)) and isinstance(current, (int, float, str)):
        try:
            return float(current) == float(desired)
        except ValueError:
            return False
    return current == desired


def policy_document(document: Any) -> Any:
    """IAM returns policies as URL-encoded strings or (boto3) already-parsed dicts."""
    if isinstance(document, str):
        return json.loads(urllib.parse.unquote(document))
    return document


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def read_role(
    client: Any, name: str, inline_policy_name: str
) -> tuple[dict[str, Any] | None, set[str], set[str], Any]:
    """An IAM role as deploy compares it: the role (None when missing), its attached policy
    ARNs, its inline policy names, and the parsed document of `inline_policy_name`."""
    try:
        role = client.get_role(RoleName=name)["Role"]
    except Exception as error:
        if error_code(error) != "NoSuchEntity":
            raise
        return None, set(), set(), None
    attached = {
        p["PolicyArn"]
        for page in client.get_paginator("list_attached_role_policies").paginate(RoleName=name)
        for p in page["AttachedPolicies"]
    }
    inline_names = {
        n
        for page in client.get_paginator("list_role_policies").paginate(RoleName=name)
        for n in page["PolicyNames"]
    }
    inline = None
    if inline_policy_name in inline_names:
        document = client.get_role_policy(RoleName=name, PolicyName=inline_policy_name)
        inline = policy_document(document["PolicyDocument"])
    return role, attached, inline_names, inline
