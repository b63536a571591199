"""The dbt CLI resource: dagster-dbt's, without two fixed costs of every invocation."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from functools import cached_property
from typing import Any, ClassVar

from dagster_dbt import DbtCliResource
from packaging import version

from sf_lakehouse.launch_lock import LaunchLocked


class LakehouseDbtCliResource(LaunchLocked, DbtCliResource):
    """`DbtCliResource` minus what this project never uses, about 4-6 s of every run:

    * the dbt version: dagster-dbt runs `dbt --version` in a subprocess on each invocation
      (about 4 s here, and dbt also asks pypi.org for its latest release: runs make no network
      call but to the catalog and Salesforce). The dbt it runs is this environment's dbt-core
      (`dbt_executable()`), whose version the installed package's metadata gives;
    * the in-process dbt adapter, which dagster-dbt opens only for `fetch_column_metadata()` and
      `fetch_row_counts()`; this project records each dimension's columns from its Iceberg
      table instead (`sf_lakehouse.defs.dbt`).

    A run's launch configuration may change none of its fields: the executable, the project
    and profiles folders decide which code runs with the run's credentials.
    """

    launch_label: ClassVar[str] = "dbt"

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None
