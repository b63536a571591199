"""The instance's Postgres: an existing database (its secret is checked), or with
`runtime.postgres.create` an RDS PostgreSQL instance `sf-lakehouse-<env>` (encrypted, not public,
deletion protection, 7 days of backups) in the runtime's subnets, behind the postgres security
group, its password generated into the secret `sf-lakehouse/<env>/postgres` (JSON `username`,
`password`; never printed)."""

from __future__ import annotations

import json
import secrets
from typing import Any

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Change, Step, aws_errors, error_code
from sf_lakehouse.aws.deploy.runtime_state import RuntimeState

BACKUP_RETENTION_DAYS = 7
SECRET_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:CreateSecret")
RDS_READ_ACTIONS = ("rds:DescribeDBInstances", "rds:DescribeDBSubnetGroups")
RDS_WRITE_ACTIONS = ("rds:CreateDBSubnetGroup", "rds:CreateDBInstance", "rds:ModifyDBInstance")


def plan_postgres(ctx: DeployContext, state: RuntimeState) -> list[Step]:
    postgres = state.runtime.postgres
    secret_id = postgres.secret_id or state.names.postgres_secret
    if not postgres.create:
        state.postgres_host = postgres.host
        arn = _secret_arn(ctx, secret_id)
        state.postgres_secret_arn = arn
        if arn is None:
            ctx.warnings.append(
                f'secret {secret_id} (the Postgres password, JSON with "password") is missing: '
                "create it, then deploy again"
            )
        return []
    return [_secret(ctx, state, secret_id), _subnet_group(ctx, state), _instance(ctx, state)]


def _secret_arn(ctx: DeployContext, secret_id: str) -> str | None:
    with aws_errors(f"secret {secret_id}", SECRET_ACTIONS[:1]):
        try:
            return str(ctx.client("secretsmanager").describe_secret(SecretId=secret_id)["ARN"])
        except Exception as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            return None


def _secret(ctx: DeployContext, state: RuntimeState, secret_id: str) -> Step:
    resource = f"secret {secret_id}"
    arn = _secret_arn(ctx, secret_id)
    if arn is not None:
        state.postgres_secret_arn = arn
        return Step(Change(resource, "none", "the Postgres password"))

    def create() -> None:
        value = {"username": state.runtime.postgres.user, "password": _password()}
        with aws_errors(resource, SECRET_ACTIONS[1:]):
            created = ctx.client("secretsmanager").create_secret(
                Name=secret_id,
                Description=f"sf_lakehouse {state.names.environment}: Dagster's Postgres",
                SecretString=json.dumps(value),
            )
        state.postgres_secret_arn = created["ARN"]

    return Step(Change(resource, "create", "generated Postgres password"), create, SECRET_ACTIONS)


def _password() -> str:
    # RDS refuses '/', '@', '"' and spaces in a master password; token_hex has none.
    return secrets.token_hex(24)


def _subnet_group(ctx: DeployContext, state: RuntimeState) -> Step:
    name = state.names.database_instance
    resource = f"rds subnet group {name}"
    rds = ctx.client("rds")
    with aws_errors(resource, RDS_READ_ACTIONS[1:]):
        try:
            group = rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"][0]
        except Exception as error:
            if error_code(error) != "DBSubnetGroupNotFoundFault":
                raise
            group = None
    if group is not None:
        current = sorted(s["SubnetIdentifier"] for s in group.get("Subnets", []))
        if current == sorted(state.subnets):
            return Step(Change(resource, "none", ", ".join(current)))

        def modify() -> None:
            with aws_errors(resource, ("rds:ModifyDBSubnetGroup",)):
                rds.modify_db_subnet_group(DBSubnetGroupName=name, SubnetIds=list(state.subnets))

        return Step(Change(resource, "update", "subnets"), modify, ("rds:ModifyDBSubnetGroup",))

    def create() -> None:
        with aws_errors(resource, RDS_WRITE_ACTIONS[:1]):
            rds.create_db_subnet_group(
                DBSubnetGroupName=name,
                DBSubnetGroupDescription=f"sf_lakehouse {state.names.environment}",
                SubnetIds=list(state.subnets),
            )

    return Step(Change(resource, "create", ", ".join(state.subnets)), create, RDS_WRITE_ACTIONS[:1])


def desired_settings(state: RuntimeState) -> dict[str, Any]:
    """What deploy holds the instance to (and restores when it drifted)."""
    return {
        "PubliclyAccessible": False,
        "DeletionProtection": True,
        "BackupRetentionPeriod": BACKUP_RETENTION_DAYS,
    }


def _instance(ctx: DeployContext, state: RuntimeState) -> Step:
    name = state.names.database_instance
    postgres = state.runtime.postgres
    resource = f"rds instance {name}"
    rds = ctx.client("rds")
    with aws_errors(resource, RDS_READ_ACTIONS[:1]):
        try:
            current = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
        except Exception as error:
            if error_code(error) != "DBInstanceNotFound":
                raise
            current = None
    summary = (
        f"postgres {postgres.engine_version}, {postgres.instance_class}, "
        f"{postgres.allocated_storage_gb} GB, encrypted, private, deletion protection, "
        f"{BACKUP_RETENTION_DAYS} days of backups"
    )
    desired = desired_settings(state)
    if current is None:

        def create() -> None:
            password = json.loads(
                ctx.client("secretsmanager").get_secret_value(SecretId=state.postgres_secret_arn)[
                    "SecretString"
                ]
            )["password"]
            with aws_errors(resource, RDS_WRITE_ACTIONS[1:2]):
                created = rds.create_db_instance(
                    DBInstanceIdentifier=name,
                    Engine="postgres",
                    EngineVersion=postgres.engine_version,
                    DBInstanceClass=postgres.instance_class,
                    AllocatedStorage=postgres.allocated_storage_gb,
                    StorageType="gp3",
                    StorageEncrypted=True,
                    DBName=postgres.database,
                    MasterUsername=postgres.user,
                    MasterUserPassword=password,
                    DBSubnetGroupName=name,
                    VpcSecurityGroupIds=[state.security_groups["postgres"]],
                    Port=postgres.port,
                    MultiAZ=False,
                    AutoMinorVersionUpgrade=True,
                    CopyTagsToSnapshot=True,
                    **desired,
                )["DBInstance"]
            state.postgres_host = (created.get("Endpoint") or {}).get("Address")

        return Step(Change(resource, "create", summary), create, RDS_WRITE_ACTIONS[1:2])
    state.postgres_host = (current.get("Endpoint") or {}).get("Address")
    if not current.get("StorageEncrypted"):
        ctx.warnings.append(
            f"{resource} is not encrypted, which cannot be changed in place: restore an "
            "encrypted copy of a snapshot"
        )
    drift = {k: v for k, v in desired.items() if current.get(k) != v}
    if not drift:
        return Step(Change(resource, "none", summary))

    def modify() -> None:
        with aws_errors(resource, RDS_WRITE_ACTIONS[2:]):
            rds.modify_db_instance(DBInstanceIdentifier=name, ApplyImmediately=True, **drift)

    return Step(
        Change(resource, "update", "set " + ", ".join(drift)), modify, RDS_WRITE_ACTIONS[2:]
    )
