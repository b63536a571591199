"""The dbt CLI resource: dagster-dbt's, without two fixed costs of every invocation."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from dagster_dbt import DbtCliResource
from packaging import version


class LakehouseDbtCliResource(DbtCliResource):
    """`DbtCliResource` minus what this project never uses, about 4-6 s of every run:

    * the dbt version: dagster-dbt runs `dbt --version` in a subprocess on each invocation
      (about 4 s here, and dbt also asks pypi.org for its latest release: runs make no network
      call but to the catalog and Salesforce). The dbt it runs is this environment's dbt-core
      (`dbt_executable()`), whose version the installed package's metadata gives;
    * the in-process dbt adapter, which dagster-dbt opens only for `fetch_column_metadata()` and
      `fetch_row_counts()`; this project records each dimension's columns from its Iceberg
      table instead (`sf_lakehouse.defs.dbt`).
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None
