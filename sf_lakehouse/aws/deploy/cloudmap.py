"""Cloud Map: the private DNS namespace `sf-lakehouse-<env>.local` in the runtime's VPC and the
service `code-server` in it, so the webserver and the daemon reach the code server's gRPC port
at `code-server.sf-lakehouse-<env>.local` (ECS registers the task's address)."""

from __future__ import annotations

import time
from typing import Any

from sf_lakehouse.aws.deploy.context import DeployContext
from sf_lakehouse.aws.deploy.plan import AwsDeployError, Change, Step, aws_errors
from sf_lakehouse.aws.deploy.runtime_state import RuntimeState

READ_ACTIONS = ("servicediscovery:ListNamespaces", "servicediscovery:ListServices")
WRITE_ACTIONS = (
    "servicediscovery:CreatePrivateDnsNamespace",
    "servicediscovery:GetOperation",
    "servicediscovery:CreateService",
    "route53:CreateHostedZone",
    "ec2:DescribeVpcs",
)
SERVICE_NAME = "code-server"
DNS_TTL_SECONDS = 10


def _namespace(client: Any, name: str) -> dict[str, Any] | None:
    for page in client.get_paginator("list_namespaces").paginate():
        for namespace in page["Namespaces"]:
            if namespace["Name"] == name and namespace["Type"] == "DNS_PRIVATE":
                return namespace
    return None


def _service(client: Any, namespace_id: str) -> dict[str, Any] | None:
    filters = [{"Name": "NAMESPACE_ID", "Values": [namespace_id], "Condition": "EQ"}]
    for page in client.get_paginator("list_services").paginate(Filters=filters):
        for service in page["Services"]:
            if service["Name"] == SERVICE_NAME:
                return service
    return None


def plan_discovery(ctx: DeployContext, state: RuntimeState) -> Step:
    name = state.names.namespace
    resource = f"cloud map {state.names.code_server_host}"
    client = ctx.client("servicediscovery")
    with aws_errors(resource, READ_ACTIONS):
        namespace = _namespace(client, name)
        service = _service(client, namespace["Id"]) if namespace else None
    if service is not None:
        state.discovery_service_arn = service["Arn"]
        return Step(Change(resource, "none", f"A record, TTL {DNS_TTL_SECONDS} s, in {name}"))

    def create() -> None:
        with aws_errors(resource, WRITE_ACTIONS):
            namespace_id = namespace["Id"] if namespace else _create_namespace(client, name, state)
            created = client.create_service(
                Name=SERVICE_NAME,
                NamespaceId=namespace_id,
                DnsConfig={
                    "RoutingPolicy": "MULTIVALUE",
                    "DnsRecords": [{"Type": "A", "TTL": DNS_TTL_SECONDS}],
                },
                HealthCheckCustomConfig={"FailureThreshold": 1},
            )["Service"]
        state.discovery_service_arn = created["Arn"]

    detail = f"namespace {name} in {state.vpc_id or 'the VPC'}, A record"
    return Step(Change(resource, "create", detail), create, WRITE_ACTIONS)


def _create_namespace(client: Any, name: str, state: RuntimeState) -> str:
    operation = client.create_private_dns_namespace(
        Name=name, Vpc=state.vpc_id, Description=f"sf_lakehouse {state.names.environment}"
    )["OperationId"]
    # Creating a namespace is asynchronous (a Route 53 hosted zone): wait for it.
    for _ in range(120):
        result = client.get_operation(OperationId=operation)["Operation"]
        if result["Status"] == "SUCCESS":
            return str(result["Targets"]["NAMESPACE"])
        if result["Status"] == "FAIL":
            raise AwsDeployError(
                f"cloud map namespace {name}",
                str(result.get("ErrorCode", "FAIL")),
                str(result.get("ErrorMessage", "see the Cloud Map console")),
            )
        time.sleep(2)
    raise AwsDeployError(
        f"cloud map namespace {name}", "Timeout", "still being created; run deploy again"
    )
