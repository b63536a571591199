"""Secrets Manager: the Salesforce credentials secret, where they come from, and the one login.

Credentials never come from the command line: on a terminal they are prompted for, otherwise
`--sf-password-stdin` reads the password and the security token as two lines of standard input,
or `--credentials-file` names a JSON file only its owner can read. They are validated (keys,
domain) before any AWS call, and deploy logs in once with them (or with the stored secret) to
check them, and reuses that login to describe the objects for the raw tables' schemas.
"""

from __future__ import annotations

import getpass
import json
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Change, DeployError, Step, aws_errors, error_code
from sf_lakehouse.salesforce.secret import SecretError, validate_credentials

SHOWN_KEYS = frozenset({"domain", "login_url", "ca_bundle"})
ALTERNATIVES = (
    "omit it to be prompted on a terminal, pass --sf-password-stdin (password and security "
    "token as two lines of standard input), or --credentials-file FILE (JSON readable only by "
    "you: chmod 600 FILE)"
)


def refuse_command_line_secret(option: str) -> DeployError:
    return DeployError(
        f"{option} on the command line is refused: it would show in the process list and the "
        f"shell history; {ALTERNATIVES}"
    )


def validate_secret_values(values: Mapping[str, Any], source: str) -> dict[str, str]:
    """The secret's validation (one rule for writing and reading it), as a deploy error."""
    try:
        return validate_credentials(values, source)
    except SecretError as error:
        raise DeployError(str(error)) from None


def read_credentials_file(credentials_file: str | Path) -> dict[str, str]:
    path = Path(credentials_file)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DeployError(f"credentials file {path} does not exist") from None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        raise DeployError(
            f"credentials file {path} is readable by group or others "
            f"(mode {stat.S_IMODE(mode):03o}); run `chmod 600 {path}` and deploy again"
        )
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DeployError(f"credentials file {path} is not valid JSON") from None
    if not isinstance(values, dict):
        raise DeployError(f"credentials file {path} must hold a JSON object")
    return validate_secret_values(values, f"credentials file {path}")


def collect_credentials(
    *,
    username: str | None = None,
    domain: str | None = None,
    password_stdin: bool = False,
    credentials_file: str | Path | None = None,
    stdin: TextIO | None = None,
    interactive: bool | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
) -> dict[str, str] | None:
    """The secret's JSON from a file, standard input or prompts; None when none was given."""
    options_given = username is not None or domain is not None or password_stdin
    if credentials_file is not None:
        if options_given:
            raise DeployError(
                "use either --credentials-file or --sf-username/--sf-domain/--sf-password-stdin, "
                "not both"
            )
        return read_credentials_file(credentials_file)
    if not options_given:
        return None
    if not username:
        raise DeployError(
            "--sf-username is required with --sf-domain/--sf-password-stdin "
            "(or pass --credentials-file FILE)"
        )
    stream = stdin if stdin is not None else sys.stdin
    if password_stdin:
        lines = (stream.read() if stream is not None else "").splitlines()
        if len(lines) < 2 or not lines[0] or not lines[1]:
            raise DeployError(
                "--sf-password-stdin reads two lines from standard input: the password, then the "
                "security token"
            )
        password, security_token = lines[0], lines[1]
    else:
        if interactive is None:
            interactive = stream is not None and stream.isatty()
        if not interactive:
            raise DeployError(
                "the Salesforce password and security token are missing and standard input is "
                f"not a terminal to prompt for them; {ALTERNATIVES.split(', ', 1)[1]}"
            )
        password = prompt("Salesforce password: ")
        security_token = prompt("Salesforce security token: ")
    values = {
        "username": username,
        "password": password,
        "security_token": security_token,
        "domain": domain or "login",
    }
    return validate_secret_values(values, "the --sf-* options")


def masked(values: Mapping[str, str]) -> str:
    """`username: ***, password: ***, ...`: only the domain and where to log in are shown."""
    return ", ".join(f"{k}: {v if k in SHOWN_KEYS else '***'}" for k, v in values.items())


def login(ctx: DeployContext, values: Mapping[str, str], source: str) -> str | None:
    """Log in once with these credentials; the client is kept for describe(). Returns why the
    login failed (never a credential value), or None."""
    from sf_lakehouse.salesforce.client import ConnectionSettings, connect
    from sf_lakehouse.salesforce.types import SalesforceConfigError

    try:
        connection = ConnectionSettings(api_version=ctx.settings.api_version, **values)
        ctx.salesforce = connect(connection)
    except SalesforceConfigError as error:
        return f"Salesforce login with {source} failed: {error}"
    return None


def plan_secret(ctx: DeployContext) -> Step:
    settings = ctx.settings
    secret_id = settings.auth.secret_id
    if settings.auth.source != "secretsmanager" or not secret_id:
        raise DeployError(
            f"environments.{settings.environment}.salesforce_auth must be source: secretsmanager "
            f"with a secret_id (salesforce/{settings.environment}/credentials) in "
            f"{settings.config_path}"
        )
    resource = f"secret {secret_id}"
    sm = ctx.client("secretsmanager")
    with aws_errors(resource, ("secretsmanager:DescribeSecret",)):
        try:
            sm.describe_secret(SecretId=secret_id)
            exists = True
        except Exception as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            exists = False
    stored: Any = None
    if exists:
        with aws_errors(resource, ("secretsmanager:GetSecretValue",)):
            stored_string = sm.get_secret_value(SecretId=secret_id).get("SecretString") or ""
        try:
            stored = json.loads(stored_string)
        except json.JSONDecodeError:
            stored = None
    credentials = dict(ctx.credentials) if ctx.credentials is not None else None
    if credentials is None:
        return _stored_only(ctx, resource, exists, stored)
    problem = login(ctx, credentials, "the given credentials")
    if problem is not None:
        raise DeployError(f"{problem}; nothing was changed")
    secret_string = json.dumps(credentials)
    if not exists:

        def create() -> None:
            with aws_errors(resource, ("secretsmanager:CreateSecret",)):
                sm.create_secret(
                    Name=secret_id,
                    SecretString=secret_string,
                    Description="Salesforce API credentials of sf_lakehouse "
                    f"({ctx.aws.environment})",
                )

        return Step(
            Change(resource, "create", masked(credentials)),
            create,
            ("secretsmanager:CreateSecret",),
        )
    if stored == credentials:
        return Step(Change(resource, "none", "stored values equal the given ones"))
    changed = (
        sorted(k for k in set(stored) | set(credentials) if stored.get(k) != credentials.get(k))
        if isinstance(stored, dict)
        else ["not a JSON object"]
    )

    def update() -> None:
        with aws_errors(resource, ("secretsmanager:PutSecretValue",)):
            sm.put_secret_value(SecretId=secret_id, SecretString=secret_string)

    return Step(
        Change(resource, "update", f"{masked(credentials)} (changed: {', '.join(changed)})"),
        update,
        ("secretsmanager:PutSecretValue",),
    )


def _stored_only(ctx: DeployContext, resource: str, exists: bool, stored: Any) -> Step:
    env = ctx.aws.environment
    how = (
        f"create it with `sf-lakehouse deploy --environment {env} --sf-username U "
        "[--sf-domain D]` (password and token are prompted for on a terminal, or read with "
        "--sf-password-stdin) or with --credentials-file FILE"
    )
    if not exists:
        ctx.salesforce_problem = f"{resource} is missing"
        ctx.warnings.append(f"{resource} is missing: the pipeline cannot log in; {how}")
        return Step(Change(resource, "none", f"MISSING; {how}"))
    try:
        values = validate_credentials(stored if isinstance(stored, dict) else {}, resource)
    except SecretError as error:
        ctx.salesforce_problem = str(error)
        ctx.warnings.append(f"{error}; replace it: {how}")
        return Step(Change(resource, "none", "INVALID; see the warning"))
    problem = login(ctx, values, f"the stored {resource}")
    if problem is not None:
        ctx.salesforce_problem = problem
        ctx.warnings.append(f"{problem}; replace the secret: {how}")
        return Step(Change(resource, "none", "unchanged (no credentials given), LOGIN FAILED"))
    return Step(Change(resource, "none", "unchanged (no credentials given), login works"))
