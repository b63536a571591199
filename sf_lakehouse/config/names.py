"""The rules of names that end up in IAM policy resources, ARNs and S3 paths (one place: the
environment's names and the alerts' Slack token secret are checked by the same rules)."""

from __future__ import annotations

import re

# Names that end up in IAM policy resources, ARNs and S3 paths: a `*` or `?` would widen a
# policy (IAM wildcards), a `..` segment or a slash where none belongs would leave its prefix.
ENVIRONMENT_NAME = r"^[a-z][a-z0-9_-]{0,31}$"
SECRET_ID = r"^[A-Za-z0-9_+=.@-]+(/[A-Za-z0-9_+=.@-]+)*$"
# S3 bucket rules, leaving room for the longest suffix (`-athena-results`, 63 characters in all).
BUCKET_PREFIX = r"^[a-z0-9][a-z0-9-]{1,46}[a-z0-9]$"
AWS_REGION = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$"
ATHENA_WORKGROUP = r"^[A-Za-z0-9._-]{1,128}$"
IAM_PRINCIPAL_ARN = r"^arn:aws:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$"


def check_name(value: str, pattern: str, what: str) -> str:
    """`value` when it matches `pattern` and has no `.`/`..` path segment; else a ValueError
    saying what is allowed."""
    if not re.fullmatch(pattern, value) or {".", ".."} & set(value.split("/")):
        raise ValueError(
            f"{what}; no *, ?, spaces or ../ (the name ends in IAM policies and paths)"
        )
    return value


SECRET_ID_HINT = (
    "a Secrets Manager name is letters, digits and _+=.@- in /-separated parts, "
    "e.g. salesforce/prod/credentials"
)
