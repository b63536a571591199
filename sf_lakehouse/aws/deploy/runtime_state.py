"""What the runtime's planners hand on to each other: the ids AWS gives the resources an
earlier step created (a security group's id, the database's host), filled when read or when
applied, so that a later step's apply uses them."""

from __future__ import annotations

from dataclasses import dataclass, field

from sf_lakehouse.config.runtime import RuntimeNames, RuntimeSection


@dataclass
class RuntimeState:
    runtime: RuntimeSection
    names: RuntimeNames
    image: str | None
    vpc_id: str = ""
    subnets: tuple[str, ...] = ()
    # security group kind (webserver, tasks, postgres) -> id
    security_groups: dict[str, str] = field(default_factory=dict)
    discovery_service_arn: str = ""
    postgres_host: str | None = None
    postgres_secret_arn: str | None = None
    roles_created: bool = False
