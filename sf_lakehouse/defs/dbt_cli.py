"""The dbt resource: dagster-dbt's CLI resource, without two fixed costs of every invocation, and
able to run dbt in the step's own process (`sf_lakehouse.defs.dbt_in_process`)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

from dagster import AssetExecutionContext
from dagster_dbt import DbtCliResource
from packaging import version

from sf_lakehouse.defs.dbt_in_process import InProcessDbtBuild, RunnerManifest
from sf_lakehouse.launch_lock import LaunchLocked

DbtInvocation = Literal["in_process", "subprocess"]


class LakehouseDbtCliResource(LaunchLocked, DbtCliResource):
    """`DbtCliResource` minus what this project never uses, about 4-6 s of every run:

    * the dbt version: dagster-dbt runs `dbt --version` in a subprocess on each invocation
      (about 4 s here, and dbt also asks pypi.org for its latest release: runs make no network
      call but to the catalog and Salesforce). The dbt it runs is this environment's dbt-core
      (`dbt_executable()`), whose version the installed package's metadata gives;
    * the in-process dbt adapter, which dagster-dbt opens only for `fetch_column_metadata()` and
      `fetch_row_counts()`; this project records each dimension's columns from its Iceberg
      table instead (`sf_lakehouse.defs.dbt`).

    `invocation` (the environment's `dbt.invocation`) picks where `stream_build` runs dbt: in
    this process (`in_process`, dbtRunner) or as dagster-dbt's `dbt` subprocess.

    A run's launch configuration may change none of its fields: the executable, the project
    and profiles folders decide which code runs with the run's credentials.
    """

    launch_label: ClassVar[str] = "dbt"
    invocation: str = "subprocess"  # DbtInvocation

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None

    def stream_build(
        self,
        args: Sequence[str],
        *,
        context: AssetExecutionContext,
        target_path: Path,
        manifest: RunnerManifest,
        relation_schemas: Mapping[str, str],
    ) -> Iterator[Any]:
        """dagster-dbt's events of one dbt invocation, from either place dbt runs in;
        `relation_schemas` (resource type -> schema) says whether `manifest` fits this run
        (RunnerManifest.fits), else in-process dbt parses the project."""
        if self.invocation == "subprocess":
            yield from self.cli(args, context=context, target_path=target_path).stream()
            return
        project_dir = Path(self.project_dir)
        yield from InProcessDbtBuild(
            args=args,
            context=context,
            target_path=target_path,
            project_dir=project_dir,
            profiles_dir=Path(self.profiles_dir) if self.profiles_dir else project_dir,
            target=self.target,
            manifest=manifest,
            relation_schemas=relation_schemas,
        ).stream()
