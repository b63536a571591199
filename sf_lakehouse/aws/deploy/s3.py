"""S3: the four buckets (region, SSE-S3, versioning, public access block, TLS-only bucket
policy, lifecycle rules) and the objects deploy uploads (only when their content changed).

Every call on an existing bucket passes `ExpectedBucketOwner` (this account).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import (
    Action,
    Change,
    DeployError,
    Step,
    aws_errors,
    error_code,
    matches,
    split_s3,
)
from sf_lakehouse.config import BUCKET_KINDS

SSE_ALGORITHM = "AES256"
# Stronger than SSE-S3: a bucket someone moved to KMS is left as it is, not downgraded.
ACCEPTED_SSE_ALGORITHMS = frozenset({SSE_ALGORITHM, "aws:kms", "aws:kms:dsse"})
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
TLS_ONLY_SID = "DenyInsecureTransport"
SHA256_METADATA_KEY = "sha256"
PARTS = ("encryption", "versioning", "public access block", "TLS-only policy", "lifecycle rules")


def tls_only_statement(bucket: str) -> dict[str, Any]:
    """Deny every request that does not come over TLS (`aws:SecureTransport` false)."""
    return {
        "Sid": TLS_ONLY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def lifecycle_rules(ctx: DeployContext, kind: str) -> list[dict[str, Any]]:
    """Noncurrent versions expire (Iceberg's deleted files, replaced scripts), incomplete multipart
    uploads are aborted, and Athena results expire after the configured number of days."""
    options = ctx.options
    everything = {"Prefix": ""}
    rules: list[dict[str, Any]] = [
        {
            "ID": "sf-lakehouse-expire-noncurrent-versions",
            "Filter": everything,
            "Status": "Enabled",
            "NoncurrentVersionExpiration": {
                "NoncurrentDays": options.noncurrent_version_expiration_days
            },
        },
        {
            "ID": "sf-lakehouse-abort-incomplete-multipart-uploads",
            "Filter": everything,
            "Status": "Enabled",
            "AbortIncompleteMultipartUpload": {
                "DaysAfterInitiation": options.abort_incomplete_multipart_upload_days
            },
        },
    ]
    if kind == "athena-results":
        rules.append(
            {
                "ID": "sf-lakehouse-expire-athena-results",
                "Filter": everything,
                "Status": "Enabled",
                "Expiration": {"Days": options.athena_results_expiration_days},
            }
        )
    return rules


def plan_buckets(ctx: DeployContext) -> list[Step]:
    return [_bucket(ctx, kind) for kind in BUCKET_KINDS]


def _bucket(ctx: DeployContext, kind: str) -> Step:
    name = ctx.aws.bucket(kind)
    resource = f"s3 bucket {name}"
    s3 = ctx.client("s3")
    region = ctx.region
    with aws_errors(resource, ("s3:ListBucket",)):
        try:
            s3.head_bucket(Bucket=name, **ctx.bucket_owner())
            exists = True
        except Exception as error:
            if error_code(error) not in ("404", "NoSuchBucket"):
                raise
            exists = False
    if not exists:
        ctx.new_buckets.add(name)

        def create() -> None:
            with aws_errors(resource, ("s3:CreateBucket",)):
                if region == "us-east-1":
                    s3.create_bucket(Bucket=name)
                else:
                    s3.create_bucket(
                        Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
                    )
            _configure(ctx, kind, set(PARTS))

        detail = (
            f"in {region}, SSE-S3, versioning, public access blocked, TLS only, "
            f"lifecycle {_lifecycle_summary(ctx, kind)}"
        )
        return Step(Change(resource, "create", detail), create, ("s3:CreateBucket",))
    drift = _drift(ctx, kind, name, resource)
    if not drift:
        return Step(Change(resource, "none", "encrypted, versioned, private, TLS only, lifecycle"))
    return Step(
        Change(resource, "update", "set " + ", ".join(p for p in PARTS if p in drift)),
        lambda: _configure(ctx, kind, drift),
    )


def _lifecycle_summary(ctx: DeployContext, kind: str) -> str:
    options = ctx.options
    text = f"noncurrent versions {options.noncurrent_version_expiration_days} d"
    if kind == "athena-results":
        text += f", results {options.athena_results_expiration_days} d"
    return text


def _drift(ctx: DeployContext, kind: str, name: str, resource: str) -> set[str]:
    s3 = ctx.client("s3")
    owner = ctx.bucket_owner()
    actions = (
        "s3:GetBucketLocation",
        "s3:GetEncryptionConfiguration",
        "s3:GetBucketVersioning",
        "s3:GetBucketPublicAccessBlock",
        "s3:GetBucketPolicy",
        "s3:GetLifecycleConfiguration",
    )
    drift: set[str] = set()
    with aws_errors(resource, actions):
        location = (
            s3.get_bucket_location(Bucket=name, **owner).get("LocationConstraint") or "us-east-1"
        )
        if location != ctx.region:
            raise DeployError(
                f"{resource} exists in {location}, not in {ctx.region}; delete it or change "
                f"environments.{ctx.settings.environment}.aws.region"
            )
        try:
            rules = s3.get_bucket_encryption(Bucket=name, **owner)[
                "ServerSideEncryptionConfiguration"
            ]
            algorithm = rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
            if algorithm not in ACCEPTED_SSE_ALGORITHMS:
                drift.add("encryption")
        except Exception as error:
            if error_code(error) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            drift.add("encryption")
        if s3.get_bucket_versioning(Bucket=name, **owner).get("Status") != "Enabled":
            drift.add("versioning")
        try:
            block = s3.get_public_access_block(Bucket=name, **owner)[
                "PublicAccessBlockConfiguration"
            ]
            if any(not block.get(k) for k in PUBLIC_ACCESS_BLOCK):
                drift.add("public access block")
        except Exception as error:
            if error_code(error) != "NoSuchPublicAccessBlockConfiguration":
                raise
            drift.add("public access block")
        current_policy = _bucket_policy(ctx, name)
        ours = [s for s in current_policy.get("Statement", []) if s.get("Sid") == TLS_ONLY_SID]
        if len(ours) != 1 or not matches(ours[0], tls_only_statement(name)):
            drift.add("TLS-only policy")
        current_rules = {r.get("ID"): r for r in _lifecycle(ctx, name)}
        for rule in lifecycle_rules(ctx, kind):
            if not matches(current_rules.get(rule["ID"]), rule):
                drift.add("lifecycle rules")
    return drift


def _bucket_policy(ctx: DeployContext, name: str) -> dict[str, Any]:
    try:
        text = ctx.client("s3").get_bucket_policy(Bucket=name, **ctx.bucket_owner())["Policy"]
    except Exception as error:
        if error_code(error) != "NoSuchBucketPolicy":
            raise
        return {}
    policy = json.loads(text) if isinstance(text, str) else dict(text)
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        policy["Statement"] = [statements]
    return policy


def _lifecycle(ctx: DeployContext, name: str) -> list[dict[str, Any]]:
    try:
        return list(
            ctx.client("s3").get_bucket_lifecycle_configuration(Bucket=name, **ctx.bucket_owner())[
                "Rules"
            ]
        )
    except Exception as error:
        if error_code(error) != "NoSuchLifecycleConfiguration":
            raise
        return []


def _configure(ctx: DeployContext, kind: str, parts: set[str]) -> None:
    name = ctx.aws.bucket(kind)
    s3 = ctx.client("s3")
    owner = ctx.bucket_owner()
    resource = f"s3 bucket {name}"
    if "encryption" in parts:
        with aws_errors(resource, ("s3:PutEncryptionConfiguration",)):
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": SSE_ALGORITHM},
                            "BucketKeyEnabled": False,
                        }
                    ]
                },
                **owner,
            )
    if "versioning" in parts:
        with aws_errors(resource, ("s3:PutBucketVersioning",)):
            s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"}, **owner
            )
    if "public access block" in parts:
        with aws_errors(resource, ("s3:PutBucketPublicAccessBlock",)):
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=dict(PUBLIC_ACCESS_BLOCK), **owner
            )
    if "TLS-only policy" in parts:
        with aws_errors(resource, ("s3:GetBucketPolicy", "s3:PutBucketPolicy")):
            # Statements others added stay; ours is replaced by its Sid.
            policy = _bucket_policy(ctx, name) or {"Version": "2012-10-17", "Statement": []}
            others = [s for s in policy.get("Statement", []) if s.get("Sid") != TLS_ONLY_SID]
            policy["Statement"] = [*others, tls_only_statement(name)]
            s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy), **owner)
    if "lifecycle rules" in parts:
        with aws_errors(resource, ("s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration")):
            ours = lifecycle_rules(ctx, kind)
            ids = {r["ID"] for r in ours}
            others = [r for r in _lifecycle(ctx, name) if r.get("ID") not in ids]
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [*others, *ours]}, **owner
            )


def object_step(ctx: DeployContext, uri: str, body: bytes | Path) -> Step:
    """Upload `body` (bytes, or a file streamed from disk) to `uri` when the object is missing
    or its sha256 differs."""
    bucket, key = split_s3(uri)
    resource = f"s3 object {uri}"
    digest = hashlib.sha256(body).hexdigest() if isinstance(body, bytes) else file_sha256(body)
    size = len(body) if isinstance(body, bytes) else body.stat().st_size
    s3 = ctx.client("s3")
    current_digest = None
    exists = False
    if bucket not in ctx.new_buckets:
        with aws_errors(resource, ("s3:GetObject",)):
            try:
                head = s3.head_object(Bucket=bucket, Key=key, **ctx.bucket_owner())
                exists = True
                current_digest = (head.get("Metadata") or {}).get(SHA256_METADATA_KEY)
            except Exception as error:
                if error_code(error) not in ("404", "NoSuchKey"):
                    raise
    if exists and current_digest == digest:
        return Step(Change(resource, "none", f"sha256 {digest[:12]}"))

    def upload() -> None:
        with (
            aws_errors(resource, ("s3:PutObject",)),
            contextlib.nullcontext(body) if isinstance(body, bytes) else body.open("rb") as data,
        ):
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                Metadata={SHA256_METADATA_KEY: digest},
                **ctx.bucket_owner(),
            )

    action: Action = "update" if exists else "create"
    detail = f"upload {size} bytes, sha256 {digest[:12]}"
    return Step(Change(resource, action, detail), upload, ("s3:PutObject",))


@functools.lru_cache(maxsize=512)
def _file_sha256(path: Path, size: int, modified_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """A file's sha256, computed once per content (size and modification time) per process."""
    info = path.stat()
    return _file_sha256(path, info.st_size, info.st_mtime_ns)
