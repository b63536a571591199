"""EC2 security groups of the runtime, in the VPC of the configured subnets (deploy creates no
VPC; without subnets in the config, the account's default VPC and its subnets):

- `sf-lakehouse-<env>-webserver`: the UI's port, only from the configured CIDR or the load
  balancer's security group;
- `sf-lakehouse-<env>-tasks` (daemon, code server, runs): the code server's gRPC port, only from
  the other tasks and the webserver;
- `sf-lakehouse-<env>-postgres` (with `postgres.create`): Postgres only from the tasks and the
  webserver.

Egress stays open (Salesforce, AWS APIs). Rules deploy did not put there are removed.
"""

from __future__ import annotations

from typing import Any

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import Change, DeployError, Step, aws_errors
from sf_lakehouse.aws.deploy.runtime_state import RuntimeState
from sf_lakehouse.config.runtime import CODE_SERVER_PORT, WEBSERVER_PORT

READ_ACTIONS = ("ec2:DescribeSubnets", "ec2:DescribeVpcs", "ec2:DescribeSecurityGroups")
WRITE_ACTIONS = (
    "ec2:CreateSecurityGroup",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:CreateTags",
)


def resolve_network(ctx: DeployContext, state: RuntimeState) -> None:
    """The VPC and subnets: the configured subnets' VPC, or the default VPC's subnets."""
    ec2 = ctx.client("ec2")
    configured = list(state.runtime.subnets)
    with aws_errors("vpc subnets", READ_ACTIONS[:2]):
        if configured:
            try:
                subnets = ec2.describe_subnets(SubnetIds=configured)["Subnets"]
            except Exception as error:
                raise DeployError(
                    f"runtime.subnets {configured} are not subnets of this account and region "
                    f"({' '.join(str(error).split())[:160]}); name existing subnets"
                ) from None
        else:
            vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
            if not vpcs:
                raise DeployError(
                    "runtime.subnets is empty and the account has no default VPC in "
                    f"{ctx.region}; name the subnets the services run in"
                )
            subnets = ec2.describe_subnets(
                Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}]
            )["Subnets"]
            ctx.warnings.append(
                "runtime.subnets is empty: the services run in the default VPC's subnets; "
                "name private subnets for production"
            )
    vpcs = {s["VpcId"] for s in subnets}
    if len(vpcs) != 1:
        raise DeployError(f"runtime.subnets span {len(vpcs)} VPCs; name subnets of one VPC")
    state.vpc_id = vpcs.pop()
    state.subnets = tuple(sorted(s["SubnetId"] for s in subnets))


def _sg_source(group_id: str) -> dict[str, Any]:
    return {"UserIdGroupPairs": [{"GroupId": group_id}]}


def desired_ingress(state: RuntimeState, kind: str) -> list[tuple[int, str]]:
    """(port, source) pairs; a source is a CIDR or a security group kind or id."""
    webserver = state.runtime.webserver
    if kind == "webserver":
        source = webserver.allowed_cidr or str(webserver.load_balancer_security_group)
        return [(WEBSERVER_PORT, source)]
    if kind == "tasks":
        return [(CODE_SERVER_PORT, "tasks"), (CODE_SERVER_PORT, "webserver")]
    return [(state.runtime.postgres.port, "tasks"), (state.runtime.postgres.port, "webserver")]


def security_group_kinds(state: RuntimeState) -> tuple[str, ...]:
    return (
        ("webserver", "tasks", "postgres")
        if state.runtime.postgres.create
        else (
            "webserver",
            "tasks",
        )
    )


def _permission(port: int, source: str, state: RuntimeState) -> dict[str, Any]:
    base: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    if "/" in source:
        return {**base, "IpRanges": [{"CidrIp": source}]}
    group = state.security_groups.get(source, source)
    return {**base, **_sg_source(group)}


def _current_pairs(group: dict[str, Any], state: RuntimeState) -> set[tuple[int, str]]:
    kinds = {v: k for k, v in state.security_groups.items()}
    pairs = set()
    for permission in group.get("IpPermissions", []):
        port = int(permission.get("FromPort", -1))
        for cidr in permission.get("IpRanges", []):
            pairs.add((port, cidr["CidrIp"]))
        for pair in permission.get("UserIdGroupPairs", []):
            pairs.add((port, kinds.get(pair["GroupId"], pair["GroupId"])))
    return pairs


def plan_security_groups(ctx: DeployContext, state: RuntimeState) -> list[Step]:
    ec2 = ctx.client("ec2")
    names = {kind: state.names.security_group(kind) for kind in security_group_kinds(state)}
    with aws_errors("security groups", READ_ACTIONS[2:]):
        found = ec2.describe_security_groups(
            Filters=[
                {"Name": "vpc-id", "Values": [state.vpc_id]},
                {"Name": "group-name", "Values": list(names.values())},
            ]
        )["SecurityGroups"]
    by_name = {g["GroupName"]: g for g in found}
    for kind, name in names.items():
        if name in by_name:
            state.security_groups[kind] = by_name[name]["GroupId"]
    steps = [_create_group(ctx, state, kind, name) for kind, name in names.items()]
    steps += [_rules(ctx, state, kind, name, by_name.get(name)) for kind, name in names.items()]
    return steps


def _create_group(ctx: DeployContext, state: RuntimeState, kind: str, name: str) -> Step:
    resource = f"security group {name}"
    if kind in state.security_groups:
        return Step(Change(resource, "none", f"{state.security_groups[kind]} in {state.vpc_id}"))

    def create() -> None:
        with aws_errors(resource, WRITE_ACTIONS[:1]):
            created = ctx.client("ec2").create_security_group(
                GroupName=name,
                Description=f"sf_lakehouse {state.names.environment} {kind}",
                VpcId=state.vpc_id,
                TagSpecifications=[
                    {"ResourceType": "security-group", "Tags": [{"Key": "Name", "Value": name}]}
                ],
            )
        state.security_groups[kind] = created["GroupId"]

    return Step(Change(resource, "create", f"in {state.vpc_id}"), create, WRITE_ACTIONS)


def _rules(
    ctx: DeployContext, state: RuntimeState, kind: str, name: str, group: dict[str, Any] | None
) -> Step:
    resource = f"security group {name} ingress"
    wanted = desired_ingress(state, kind)
    detail = ", ".join(f"{port} from {source}" for port, source in wanted)
    current = _current_pairs(group, state) if group else set()
    missing = [pair for pair in wanted if pair not in current]
    extra = sorted(current - set(wanted))
    if group is not None and not missing and not extra:
        return Step(Change(resource, "none", detail))

    def apply() -> None:
        ec2 = ctx.client("ec2")
        group_id = state.security_groups[kind]
        with aws_errors(resource, WRITE_ACTIONS[1:3]):
            if extra:
                ec2.revoke_security_group_ingress(
                    GroupId=group_id, IpPermissions=[_permission(p, s, state) for p, s in extra]
                )
            if missing:
                ec2.authorize_security_group_ingress(
                    GroupId=group_id,
                    IpPermissions=[_permission(p, s, state) for p, s in missing],
                )

    action = "create" if group is None else "update"
    if extra:
        detail += "; remove " + ", ".join(f"{p} from {s}" for p, s in extra)
    return Step(Change(resource, action, detail), apply, WRITE_ACTIONS[1:3])
