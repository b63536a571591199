"""Athena: the workgroup `sf-lakehouse-<env>` (results in the athena-results bucket, encrypted
with SSE-S3, a bytes-scanned cutoff per query, CloudWatch metrics, configuration enforced,
engine version 3)."""

from __future__ import annotations

from typing import Any

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Change, Step, aws_errors, matches

ATHENA_ENGINE_VERSION = "Athena engine version 3"


def desired_configuration(ctx: DeployContext) -> dict[str, Any]:
    return {
        "ResultConfiguration": {
            "OutputLocation": ctx.aws.athena_results_location,
            "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
            "ExpectedBucketOwner": ctx.account_id,
        },
        "EnforceWorkGroupConfiguration": True,
        "PublishCloudWatchMetricsEnabled": True,
        "BytesScannedCutoffPerQuery": ctx.options.athena_bytes_scanned_cutoff_per_query,
        "EngineVersion": {"SelectedEngineVersion": ATHENA_ENGINE_VERSION},
    }


def _summary(ctx: DeployContext) -> str:
    cutoff_gib = ctx.options.athena_bytes_scanned_cutoff_per_query / 1024**3
    return (
        f"results {ctx.aws.athena_results_location} (SSE_S3), cutoff {cutoff_gib:g} GiB/query, "
        f"CloudWatch metrics, enforced, {ATHENA_ENGINE_VERSION}"
    )


def plan_workgroup(ctx: DeployContext) -> Step:
    name = ctx.aws.athena_workgroup
    resource = f"athena workgroup {name}"
    athena = ctx.client("athena")
    desired = desired_configuration(ctx)
    with aws_errors(resource, ("athena:ListWorkGroups", "athena:GetWorkGroup")):
        # GetWorkGroup of a missing workgroup is an error on AWS but an empty answer on moto.
        names = _workgroup_names(athena)
        current = athena.get_work_group(WorkGroup=name)["WorkGroup"] if name in names else None
    if current is None:

        def create() -> None:
            with aws_errors(resource, ("athena:CreateWorkGroup",)):
                athena.create_work_group(
                    Name=name,
                    Description=f"sf_lakehouse {ctx.aws.environment}: dbt and queries",
                    Configuration=desired,
                )

        return Step(Change(resource, "create", _summary(ctx)), create, ("athena:CreateWorkGroup",))
    config = current.get("Configuration") or {}
    labels = {
        "ResultConfiguration": "results location and encryption",
        "EnforceWorkGroupConfiguration": "enforce workgroup configuration",
        "PublishCloudWatchMetricsEnabled": "CloudWatch metrics",
        "BytesScannedCutoffPerQuery": "bytes scanned cutoff",
        "EngineVersion": ATHENA_ENGINE_VERSION,
    }
    drift = [labels[k] for k, v in desired.items() if not matches(config.get(k), v)]
    if not drift:
        return Step(Change(resource, "none", _summary(ctx)))

    def update() -> None:
        updates = {
            "ResultConfigurationUpdates": {
                "OutputLocation": ctx.aws.athena_results_location,
                "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
                "ExpectedBucketOwner": ctx.account_id,
            },
            "EnforceWorkGroupConfiguration": True,
            "PublishCloudWatchMetricsEnabled": True,
            "BytesScannedCutoffPerQuery": ctx.options.athena_bytes_scanned_cutoff_per_query,
            "EngineVersion": {"SelectedEngineVersion": ATHENA_ENGINE_VERSION},
        }
        with aws_errors(resource, ("athena:UpdateWorkGroup",)):
            athena.update_work_group(WorkGroup=name, ConfigurationUpdates=updates)

    return Step(
        Change(resource, "update", "set " + ", ".join(drift)), update, ("athena:UpdateWorkGroup",)
    )


def _workgroup_names(athena: Any) -> set[str]:
    """ListWorkGroups has no boto3 paginator: follow NextToken by hand."""
    names: set[str] = set()
    kwargs: dict[str, str] = {}
    while True:
        page = athena.list_work_groups(**kwargs)
        names |= {wg["Name"] for wg in page.get("WorkGroups", [])}
        if not page.get("NextToken"):
            return names
        kwargs = {"NextToken": page["NextToken"]}
