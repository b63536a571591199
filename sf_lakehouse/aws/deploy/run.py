"""Plan, then apply: the order of the resources, and the `deploy` command's flow."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from sf_lakehouse.aws.deploy import (
    athena,
    glue,
    iam,
    lakeformation,
    s3,
    secrets,
    tables,
    wheelhouse,
)
from sf_lakehouse.aws.deploy import monitoring as monitoring_resources
from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import (
    AwsDeployError,
    Change,
    DeployError,
    Plan,
    aws_errors,
    format_plan,
)
from sf_lakehouse.aws.options import hardening_options
from sf_lakehouse.config import ConfigError, Settings, load_config, resolve_settings

PACKAGE_DIR = Path(__file__).resolve().parent.parent.parent
DEFAULT_SCRIPT_PATH = PACKAGE_DIR / "aws" / "glue_entrypoint.py"
DEBUG_VAR = "SF_LAKEHOUSE_DEBUG"


def aws_environments() -> list[str]:
    environments = load_config().get("environments") or {}
    return sorted(
        name
        for name, entry in environments.items()
        if ((entry or {}).get("catalog") or {}).get("type") == "glue"
    )


def deploy_settings(environment: str) -> Settings:
    """The settings of an AWS environment; `local` and unknown names are clear errors."""
    settings = resolve_settings(environment)
    if settings.aws is None:
        raise DeployError(
            f"environment {environment!r} is not an AWS environment (it runs on this machine, "
            f"nothing to deploy); deploy one of: {', '.join(aws_environments())}"
        )
    return settings


def plan_deploy(
    settings: Settings,
    *,
    credentials: Mapping[str, str] | None = None,
    script_path: Path | None = None,
    package_dir: Path = PACKAGE_DIR,
    config_path: Path | None = None,
    wheelhouse_dir: Path | None = None,
) -> Plan:
    """Read the current AWS state and return what a deploy would change (changes nothing)."""
    ctx = DeployContext(
        settings=settings,
        options=hardening_options(settings),
        credentials=credentials,
        script_path=Path(script_path) if script_path is not None else DEFAULT_SCRIPT_PATH,
        package_dir=Path(package_dir),
        config_path=Path(config_path) if config_path is not None else settings.config_path,
        wheelhouse=Path(wheelhouse_dir) if wheelhouse_dir is not None else None,
    )
    with aws_errors("sts caller identity", ("sts:GetCallerIdentity",)):
        ctx.account_id = str(ctx.client("sts").get_caller_identity()["Account"])
    plan = Plan(settings.environment, ctx.account_id, ctx.region)
    plan.steps += s3.plan_buckets(ctx)
    plan.steps += glue.plan_databases(ctx)
    plan.steps.append(iam.plan_role(ctx))
    plan.steps.append(secrets.plan_secret(ctx))
    plan.steps.append(athena.plan_workgroup(ctx))
    plan.steps += tables.plan_raw_tables(ctx)
    plan.steps += lakeformation.plan_lake_formation(ctx)
    plan.steps += glue.plan_job_artifacts(ctx)
    plan.steps.append(wheelhouse.plan_wheelhouse(ctx))
    plan.steps.append(glue.plan_job(ctx))
    plan.steps += monitoring_resources.plan_monitoring(ctx)
    plan.warnings += ctx.warnings
    plan.notes += ctx.notes
    return plan


def apply_plan(plan: Plan, *, out: TextIO | None = None) -> list[Change]:
    """Apply the plan's changes in order (buckets, databases, role, ..., tables, job)."""
    applied = []
    for step in plan.steps:
        if step.change.action == "none" or step.apply is None:
            continue
        step.apply()
        applied.append(step.change)
        if out is not None:
            print(f"  done    {step.change.resource}", file=out)
    return applied


def run_deploy(
    environment: str,
    *,
    dry_run: bool = False,
    assume_yes: bool = False,
    username: str | None = None,
    domain: str | None = None,
    password_stdin: bool = False,
    credentials_file: str | None = None,
    script_path: Path | None = None,
    wheelhouse_dir: Path | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """The `deploy` command: 0 done (or nothing to do), 1 AWS error or not applied, 2 wrong
    input. Without a terminal, nothing is changed unless `assume_yes`."""
    out = out or sys.stdout
    err = err or sys.stderr
    stdin = stdin if stdin is not None else sys.stdin
    try:
        settings = deploy_settings(environment)
        # Credentials are validated before any AWS call.
        credentials = secrets.collect_credentials(
            username=username,
            domain=domain,
            password_stdin=password_stdin,
            credentials_file=credentials_file,
            stdin=stdin,
        )
        plan = plan_deploy(
            settings,
            credentials=credentials,
            script_path=script_path,
            wheelhouse_dir=wheelhouse_dir,
        )
        print(format_plan(plan), file=out)
        for warning in plan.warnings:
            print(f"warning: {warning}", file=err)
        pending = plan.pending
        if dry_run:
            print(f"Dry run: nothing was changed ({len(pending)} change(s) planned).", file=out)
            return 0
        if not pending:
            suffix = " (but see the warnings)" if plan.warnings else ""
            print(f"Everything is as declared: nothing to change{suffix}.", file=out)
            return 0
        if not assume_yes:
            terminal = stdin is not None and not password_stdin and stdin.isatty()
            if not terminal:
                print(
                    f"Not a terminal: nothing was changed; pass --yes to apply these "
                    f"{len(pending)} change(s).",
                    file=out,
                )
                return 1
            answer = input(f"Apply {len(pending)} change(s) to {environment}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("Nothing was changed.", file=out)
                return 1
        applied = apply_plan(plan, out=out)
        print(f"Applied {len(applied)} change(s) to {environment}.", file=out)
        return 0
    except (DeployError, ConfigError) as error:
        print(f"error: {error}", file=err)
        return 2
    except AwsDeployError as error:
        print(f"error: {error}", file=err)
        return 1
    except Exception as error:
        if os.environ.get(DEBUG_VAR):
            raise
        message = " ".join(str(error).split())[:300]
        print(
            f"error: deploy failed unexpectedly ({type(error).__name__}: {message}); run again "
            f"with {DEBUG_VAR}=1 for the traceback and report it",
            file=err,
        )
        return 1
