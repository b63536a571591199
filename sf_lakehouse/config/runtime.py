"""The `runtime:` section of an AWS environment (the production Dagster runtime on ECS) and the
names of everything it consists of, derived here from the environment name and nowhere else.

Dagster OSS as it runs on AWS: one image, Postgres storage, one daemon, a webserver, a gRPC code
server (three Fargate services) and one ECS task per run. `sf-lakehouse deploy` creates them;
`sf-lakehouse instance-config` prints the `dagster.yaml` they use.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from pydantic import Field, field_validator, model_validator

from sf_lakehouse.config.errors import StrictModel

# Fargate's valid cpu units and, for each, the memory (MiB) it accepts.
_FARGATE_MEMORY = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
}
CODE_SERVER_PORT = 4000
WEBSERVER_PORT = 3000
POSTGRES_PORT = 5432
# `<registry>/<repository>:<tag>` or `...@sha256:<digest>`: a tag names one immutable image.
IMAGE_PATTERN = (
    r"^[a-z0-9][a-z0-9.:/_-]*[a-z0-9]"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$"
)


class TaskSize(StrictModel):
    """Fargate cpu units and memory (MiB) of one task."""

    cpu: int
    memory: int

    @model_validator(mode="after")
    def _fargate(self) -> TaskSize:
        allowed = _FARGATE_MEMORY.get(self.cpu)
        if allowed is None:
            raise ValueError(
                f"cpu {self.cpu} is not a Fargate size; use one of {list(_FARGATE_MEMORY)}"
            )
        if self.memory not in allowed:
            raise ValueError(
                f"memory {self.memory} does not fit cpu {self.cpu} on Fargate; "
                f"use {allowed[0]}-{allowed[-1]} MiB"
            )
        return self


class Services(StrictModel):
    webserver: TaskSize = TaskSize(cpu=512, memory=1024)
    daemon: TaskSize = TaskSize(cpu=512, memory=1024)
    code_server: TaskSize = TaskSize(cpu=1024, memory=2048)


class Webserver(StrictModel):
    """Who may reach the UI: a CIDR (a VPN, an office) or a load balancer's security group."""

    allowed_cidr: str | None = None
    load_balancer_security_group: str | None = Field(default=None, pattern=r"^sg-[0-9a-f]+$")

    @field_validator("allowed_cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError:
            raise ValueError("not a CIDR block; use e.g. 10.0.0.0/8") from None
        if network.prefixlen == 0:
            raise ValueError("opens the UI to the whole internet; name your network's CIDR")
        return value

    @model_validator(mode="after")
    def _one(self) -> Webserver:
        if (self.allowed_cidr is None) == (self.load_balancer_security_group is None):
            raise ValueError("set exactly one of allowed_cidr and load_balancer_security_group")
        return self


class Postgres(StrictModel):
    """The instance's storage: an existing database (`host` and a secret holding `password`), or
    `create: true` for an RDS PostgreSQL instance deploy makes (its password generated into
    the secret)."""

    create: bool = False
    host: str | None = None
    port: int = Field(default=POSTGRES_PORT, ge=1, le=65535)
    database: str = Field(default="dagster", pattern=r"^[a-z_][a-z0-9_]*$")
    user: str = Field(default="dagster", pattern=r"^[a-z_][a-z0-9_]*$")
    # JSON with at least "password"; created by deploy when `create` is true.
    secret_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9/_+=.@-]+$")
    instance_class: str = "db.t4g.micro"
    allocated_storage_gb: int = Field(default=20, ge=20, le=65536)
    engine_version: str = "16"

    @model_validator(mode="after")
    def _where(self) -> Postgres:
        if self.create and self.host:
            raise ValueError("set host for an existing database or create: true, not both")
        if not self.create and not (self.host and self.secret_id):
            raise ValueError("name an existing database (host and secret_id) or set create: true")
        return self


class RunMonitoring(StrictModel):
    start_timeout_seconds: int = Field(default=600, ge=60)
    cancel_timeout_seconds: int = Field(default=300, ge=30)
    poll_interval_seconds: int = Field(default=60, ge=5)
    # 0 would switch freeing off (Dagster reads it as "not set").
    free_slots_after_run_end_seconds: int = Field(default=300, ge=1)


class RuntimeSection(StrictModel):
    """The production runtime of one AWS environment."""

    # The image of every service and run (`<registry>/sf-lakehouse:<tag>`); `deploy --image-uri`
    # overrides it.
    image: str | None = Field(default=None, pattern=IMAGE_PATTERN)
    # Private subnets of an existing VPC (deploy creates no VPC); empty: the default VPC's.
    subnets: list[str] = Field(default_factory=list)
    assign_public_ip: bool = False
    webserver: Webserver
    services: Services = Services()
    run: TaskSize = TaskSize(cpu=1024, memory=4096)
    max_concurrent_runs: int = Field(default=4, ge=1, le=100)
    run_monitoring: RunMonitoring = RunMonitoring()
    run_retries: int = Field(default=2, ge=0, le=10)
    log_retention_days: int = 30
    postgres: Postgres

    @field_validator("subnets")
    @classmethod
    def _subnets(cls, value: list[str]) -> list[str]:
        for subnet in value:
            if not subnet.startswith("subnet-"):
                raise ValueError(f"{subnet!r} is not a subnet id (subnet-...)")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        # CloudWatch Logs accepts only these retention periods.
        allowed = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)
        if value not in allowed:
            raise ValueError(f"CloudWatch Logs keeps logs for one of {allowed} days")
        return value


@dataclass(frozen=True)
class RuntimeNames:
    """Every name of one environment's runtime (docs/design.md, 'Production runtime')."""

    environment: str

    repository: str = "sf-lakehouse"

    @property
    def cluster(self) -> str:
        return f"sf-lakehouse-{self.environment}"

    def service(self, role: str) -> str:
        """`sf-lakehouse-<env>-webserver|daemon|code-server`; also its task definition family."""
        if role not in SERVICE_ROLES:
            raise ValueError(f"unknown service {role!r}; use one of {SERVICE_ROLES}")
        return f"{self.cluster}-{role}"

    @property
    def log_group(self) -> str:
        return f"/sf-lakehouse/{self.environment}"

    @property
    def execution_role(self) -> str:
        return f"SfLakehouseTaskExecution-{self.environment}"

    @property
    def pipeline_role(self) -> str:
        return f"SfLakehousePipeline-{self.environment}"

    def security_group(self, kind: str) -> str:
        """`sf-lakehouse-<env>-webserver|tasks|postgres`."""
        return f"{self.cluster}-{kind}"

    @property
    def namespace(self) -> str:
        """The Cloud Map private DNS namespace; the code server is `code-server.<namespace>`."""
        return f"{self.cluster}.local"

    @property
    def code_server_host(self) -> str:
        return f"code-server.{self.namespace}"

    @property
    def database_instance(self) -> str:
        return self.cluster

    @property
    def postgres_secret(self) -> str:
        return f"sf-lakehouse/{self.environment}/postgres"

    @property
    def run_task_family_prefix(self) -> str:
        """Task definition families of runs are `<prefix>_<hashes>` (EcsRunLauncher allows a
        prefix of at most 16 characters): `sflr-<env>`."""
        return f"sflr-{self.environment}"


MAX_RUNTIME_ENVIRONMENT_NAME = 11  # so that `sflr-<env>` fits EcsRunLauncher's 16 characters


SERVICE_ROLES = ("webserver", "daemon", "code-server")
