"""What the per-service planners share: settings, AWS clients, the account, what is new."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sf_lakehouse.aws.options import HardeningOptions
from sf_lakehouse.config import Settings
from sf_lakehouse.redact import Secret

if TYPE_CHECKING:
    from sf_lakehouse.salesforce.client import SalesforceClient


@dataclass
class DeployContext:
    settings: Settings
    options: HardeningOptions
    # The Salesforce credentials deploy stores: never in the context's repr.
    credentials: Mapping[str, str] | None = field(repr=False)
    script_path: Path
    package_dir: Path
    config_path: Path
    # A prepared folder of the Glue job's wheels (`deploy --wheelhouse`); None: the cache.
    wheelhouse: Path | None = None
    account_id: str = ""
    # The Salesforce login deploy made (to validate the credentials): reused to describe objects.
    salesforce: SalesforceClient | None = None
    salesforce_problem: str | None = None
    role_arn: str = ""
    role_created: bool = False
    # Where the Glue job's wheels are in the scripts bucket (set by the wheelhouse planner).
    wheel_locations: list[str] = field(default_factory=list)
    new_buckets: set[str] = field(default_factory=set)
    new_databases: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _clients: dict[str, Any] = field(default_factory=dict)
    _catalog: Any = None

    def __post_init__(self) -> None:
        # Also hidden from `dataclasses.asdict(ctx)`: each value's repr is masked.
        if self.credentials is not None:
            self.credentials = {k: Secret(v) for k, v in self.credentials.items()}

    @property
    def aws(self) -> Any:
        return self.settings.require_aws()

    @property
    def region(self) -> str:
        return str(self.aws.region)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(service, region_name=self.region)
        return self._clients[service]

    def catalog(self) -> Any:
        if self._catalog is None:
            from sf_lakehouse.lakehouse.tables import open_catalog

            self._catalog = open_catalog(self.settings.catalog_properties())
        return self._catalog

    def bucket_owner(self) -> dict[str, str]:
        """`ExpectedBucketOwner` for every call on an existing bucket: a bucket of the same name
        in another account (a typo, a squatted name) fails instead of receiving data."""
        return {"ExpectedBucketOwner": self.account_id}
