"""What only the deployed environment knows (the account, the subnets, the tasks' security
group, the database's host and secret), read from AWS with read-only calls, and the
`instance-config` command that prints the environment's `dagster.yaml` with it.

Without AWS (no credentials, no network, not deployed yet) the file is still printed, with
`<known after deploy>` where a value is missing, and one line on standard error says so.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from sf_lakehouse.config import ConfigError, Settings, resolve_settings
from sf_lakehouse.config.runtime import RuntimeNames, RuntimeSection
from sf_lakehouse.runtime.instance import Deployed, instance_yaml


def _client(service: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    # Fail fast when AWS is unreachable: this command must answer offline too.
    config = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1})
    return boto3.client(service, region_name=region, config=config)


def _vpc(ec2: Any, runtime: RuntimeSection) -> str:
    """The VPC of the runtime's subnets, or the default VPC."""
    if runtime.subnets:
        return str(ec2.describe_subnets(SubnetIds=list(runtime.subnets))["Subnets"][0]["VpcId"])
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    return str(vpcs[0]["VpcId"]) if vpcs else ""


def read_deployed(settings: Settings) -> Deployed:
    """The deployed environment's values; `missing` names what was not found."""
    runtime, names = settings.require_runtime()
    region = settings.require_aws().region
    missing: list[str] = []
    account = str(_client("sts", region).get_caller_identity()["Account"])
    ec2 = _client("ec2", region)
    vpc_id = _vpc(ec2, runtime)
    subnets = tuple(runtime.subnets)
    if not subnets and vpc_id:
        found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        subnets = tuple(sorted(s["SubnetId"] for s in found))
    groups = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [vpc_id]},
            {"Name": "group-name", "Values": [names.security_group("tasks")]},
        ]
    )["SecurityGroups"]
    if not groups:
        missing.append(f"security group {names.security_group('tasks')}")
    host = runtime.postgres.host or _database_host(_client("rds", region), names, missing)
    secret = _secret_arn(_client("secretsmanager", region), runtime, names, missing)
    return Deployed(
        account_id=account,
        subnets=subnets,
        tasks_security_group=groups[0]["GroupId"] if groups else None,
        postgres_host=host,
        postgres_secret_arn=secret,
        missing=tuple(missing),
    )


def _database_host(rds: Any, names: RuntimeNames, missing: list[str]) -> str | None:
    try:
        instance = rds.describe_db_instances(DBInstanceIdentifier=names.database_instance)
    except Exception:
        missing.append(f"rds instance {names.database_instance}")
        return None
    endpoint = instance["DBInstances"][0].get("Endpoint") or {}
    return endpoint.get("Address")


def _secret_arn(
    client: Any, runtime: RuntimeSection, names: RuntimeNames, missing: list[str]
) -> str | None:
    secret_id = runtime.postgres.secret_id or names.postgres_secret
    try:
        return str(client.describe_secret(SecretId=secret_id)["ARN"])
    except Exception:
        missing.append(f"secret {secret_id}")
        return None


def print_instance_config(
    environment: str,
    *,
    offline: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """`sf-lakehouse instance-config`: 0 printed (possibly with values known after deploy),
    2 not an environment with a runtime."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        settings = resolve_settings(environment)
        settings.require_runtime()
    except ConfigError as error:
        print(f"error: {error}", file=err)
        return 2
    deployed = Deployed()
    if not offline:
        try:
            deployed = read_deployed(settings)
        except Exception as error:
            reason = " ".join(str(error).split())[:160] or type(error).__name__
            print(
                f"note: could not read the deployed environment from AWS ({reason}); values "
                "deploy creates are shown as <known after deploy>",
                file=err,
            )
    if deployed.missing:
        print(
            f"note: not deployed yet: {', '.join(deployed.missing)}; run "
            f"`sf-lakehouse deploy --environment {environment}`",
            file=err,
        )
    print(instance_yaml(settings, deployed), end="", file=out)
    return 0
