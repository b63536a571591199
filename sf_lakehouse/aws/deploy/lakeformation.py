"""Lake Formation grants, for accounts that enforce Lake Formation permissions
(`aws.lake_formation: true`): IAM alone no longer opens the Glue tables there.

The Glue role gets what the extraction does on the raw database; the pipeline identity (the
role Dagster runs as, `aws.pipeline_principal_arn`) gets what dbt-athena, the in-process
extraction and the maintenance job do on both databases. Neither may drop or delete the raw
tables (raw history cannot be rebuilt from Salesforce); only the curated tables may be dropped,
as dbt-athena's table swap needs. `DROP`/`DELETE` (or `ALL`) an earlier deploy granted on the
raw tables are revoked. Grants deploy cannot make (no principal configured) are listed in the
plan with the command that adds them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import AwsDeployError, Change, Step, aws_errors

DATABASE_RAW_ROLE = ("DESCRIBE", "CREATE_TABLE")
TABLES_RAW_ROLE = ("ALTER", "DESCRIBE", "INSERT", "SELECT")
DATABASE_PIPELINE = ("DESCRIBE", "CREATE_TABLE")
# Raw tables: append and commit (maintenance's snapshot expiry is an ALTER), never drop/delete.
TABLES_RAW_PIPELINE = ("ALTER", "DESCRIBE", "INSERT", "SELECT")
# dbt-athena builds `<model>__ha`, renames and drops the curated tables.
TABLES_CURATED_PIPELINE = ("ALTER", "DELETE", "DESCRIBE", "DROP", "INSERT", "SELECT")
# Never held on the raw tables (`ALL` includes both).
FORBIDDEN_ON_RAW = ("ALL", "DELETE", "DROP")
GRANT_ACTIONS = (
    "lakeformation:ListPermissions",
    "lakeformation:GrantPermissions",
    "lakeformation:RevokePermissions",
)


@dataclass(frozen=True)
class Grant:
    resource: dict[str, Any]
    permissions: tuple[str, ...]
    # Permissions the principal must not hold on the resource (revoked when found).
    forbidden: tuple[str, ...] = ()

    @property
    def database(self) -> str:
        if "Table" in self.resource:
            return str(self.resource["Table"]["DatabaseName"])
        return str(self.resource["Database"]["Name"])

    @property
    def label(self) -> str:
        if "Table" in self.resource:
            return f"{self.resource['Table']['DatabaseName']}.* {'/'.join(self.permissions)}"
        return f"{self.resource['Database']['Name']} {'/'.join(self.permissions)}"

    def command(self, principal: str) -> str:
        return (
            f"aws lakeformation grant-permissions --principal "
            f"DataLakePrincipalIdentifier={principal} --permissions "
            f"{' '.join(self.permissions)} --resource '{json.dumps(self.resource)}'"
        )


def _database(name: str, permissions: tuple[str, ...]) -> Grant:
    return Grant({"Database": {"Name": name}}, permissions)


def _tables(database: str, permissions: tuple[str, ...], forbidden: tuple[str, ...] = ()) -> Grant:
    return Grant({"Table": {"DatabaseName": database, "TableWildcard": {}}}, permissions, forbidden)


def role_grants(ctx: DeployContext) -> list[Grant]:
    raw = ctx.settings.raw_database
    return [_database(raw, DATABASE_RAW_ROLE), _tables(raw, TABLES_RAW_ROLE, FORBIDDEN_ON_RAW)]


def pipeline_grants(ctx: DeployContext) -> list[Grant]:
    raw, curated = ctx.settings.raw_database, ctx.settings.curated_database
    return [
        _database(raw, DATABASE_PIPELINE),
        _tables(raw, TABLES_RAW_PIPELINE, FORBIDDEN_ON_RAW),
        _database(curated, DATABASE_PIPELINE),
        _tables(curated, TABLES_CURATED_PIPELINE),
    ]


# The account's defaults when only IAM governs the catalog (Lake Formation's "use only IAM
# access control for new databases/tables").
IAM_ONLY_PRINCIPAL = "IAM_ALLOWED_PRINCIPALS"
SETTINGS_ACTION = "lakeformation:GetDataLakeSettings"


def account_enforces_lake_formation(settings: dict[str, Any]) -> bool:
    """False when new databases and tables grant ALL to IAM_ALLOWED_PRINCIPALS (IAM alone
    governs them), True when Lake Formation permissions do."""

    def iam_only(key: str) -> bool:
        return any(
            entry.get("Principal", {}).get("DataLakePrincipalIdentifier") == IAM_ONLY_PRINCIPAL
            and "ALL" in entry.get("Permissions", [])
            for entry in settings.get(key) or []
        )

    return not (
        iam_only("CreateDatabaseDefaultPermissions") and iam_only("CreateTableDefaultPermissions")
    )


def check_account_settings(ctx: DeployContext) -> None:
    """Warn when the account's Lake Formation settings disagree with `aws.lake_formation`."""
    flag = f"environments.{ctx.settings.environment}.aws.lake_formation"
    try:
        with aws_errors("lake formation settings", (SETTINGS_ACTION,)):
            settings = ctx.client("lakeformation").get_data_lake_settings()["DataLakeSettings"]
    except AwsDeployError as error:
        ctx.warnings.append(
            f"cannot read the account's Lake Formation settings ({error.code}), so {flag} "
            f"({str(ctx.options.lake_formation).lower()}) is not checked; the deploying identity "
            f"needs {SETTINGS_ACTION}"
        )
        return
    enforced = account_enforces_lake_formation(settings)
    if enforced and not ctx.options.lake_formation:
        ctx.warnings.append(
            f"the account enforces Lake Formation permissions for new databases and tables, but "
            f"{flag} is false: the Glue job and the pipeline get no grants and will be denied; "
            "set it to true (and aws.pipeline_principal_arn) and deploy again"
        )
    elif not enforced and ctx.options.lake_formation:
        ctx.warnings.append(
            f"{flag} is true, but the account lets IAM alone govern new databases and tables "
            f"({IAM_ONLY_PRINCIPAL} has ALL): the grants deploy makes restrict nothing until "
            "Lake Formation permissions are enforced; set it to false, or change the account's "
            "Lake Formation settings"
        )


def plan_lake_formation(ctx: DeployContext) -> list[Step]:
    check_account_settings(ctx)
    if not ctx.options.lake_formation:
        return []
    steps = [_principal_step(ctx, "glue role", ctx.role_arn, role_grants(ctx), ctx.role_created)]
    principal = ctx.options.pipeline_principal_arn
    if principal:
        steps.append(_principal_step(ctx, "pipeline identity", principal, pipeline_grants(ctx)))
    else:
        commands = "; ".join(g.command("<PIPELINE_ROLE_ARN>") for g in pipeline_grants(ctx))
        message = (
            "lake formation grants for the pipeline identity are MISSING: set "
            f"environments.{ctx.settings.environment}.aws.pipeline_principal_arn to the role "
            f"Dagster runs as and deploy again, or run: {commands}"
        )
        ctx.warnings.append(message)
        steps.append(
            Step(
                Change(
                    "lake formation grants for the pipeline identity",
                    "none",
                    "MISSING: no aws.pipeline_principal_arn; see the warning",
                )
            )
        )
    return steps


def _principal_step(
    ctx: DeployContext, who: str, principal: str, grants: list[Grant], new: bool = False
) -> Step:
    resource = f"lake formation grants for the {who} {principal}"
    client = ctx.client("lakeformation")
    missing: list[Grant] = []
    excess: list[Grant] = []
    for grant in grants:
        database = grant.database
        if new or database in ctx.new_databases:
            missing.append(grant)
            continue
        with aws_errors(resource, GRANT_ACTIONS):
            held = _held(client, principal, grant.resource)
        revoke = tuple(p for p in grant.forbidden if p in held)
        if revoke:
            excess.append(Grant(grant.resource, revoke))
        # `ALL` covers the wanted permissions only where it may stay.
        covered = held | (set(grant.permissions) if "ALL" in held and not revoke else set())
        lacking = tuple(p for p in grant.permissions if p not in covered)
        if lacking:
            missing.append(Grant(grant.resource, lacking))
    if not missing and not excess:
        return Step(Change(resource, "none", "; ".join(g.label for g in grants)))

    def apply() -> None:
        for grant in excess:
            with aws_errors(resource, GRANT_ACTIONS):
                client.revoke_permissions(
                    Principal={"DataLakePrincipalIdentifier": principal},
                    Resource=grant.resource,
                    Permissions=list(grant.permissions),
                )
        for grant in missing:
            with aws_errors(resource, GRANT_ACTIONS):
                client.grant_permissions(
                    Principal={"DataLakePrincipalIdentifier": principal},
                    Resource=grant.resource,
                    Permissions=list(grant.permissions),
                )

    detail = "; ".join(
        [*(f"revoke {g.label} (raw history cannot be rebuilt)" for g in excess)]
        + (["grant " + "; ".join(g.label for g in missing)] if missing else [])
    )
    return Step(
        Change(resource, "create" if missing == grants else "update", detail),
        apply,
        GRANT_ACTIONS,
    )


def _held(client: Any, principal: str, resource: dict[str, Any]) -> set[str]:
    held: set[str] = set()
    kwargs: dict[str, Any] = {
        "Principal": {"DataLakePrincipalIdentifier": principal},
        "Resource": resource,
    }
    while True:
        page = client.list_permissions(**kwargs)
        for entry in page.get("PrincipalResourcePermissions", []):
            if entry.get("Principal", {}).get("DataLakePrincipalIdentifier") == principal:
                held |= set(entry.get("Permissions", []))
        if not page.get("NextToken"):
            return held
        kwargs["NextToken"] = page["NextToken"]
