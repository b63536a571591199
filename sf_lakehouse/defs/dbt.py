"""The dbt models as assets downstream of the raw tables; dbt tests become asset checks."""

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Output,
)
from dagster_dbt import (
    DagsterDbtTranslator,
    DbtProject,
    DbtProjectPreparer,
    dbt_assets,
    get_asset_key_for_model,
)

from sf_lakehouse.config import ObjectSpec, dbt_project_dir
from sf_lakehouse.config.objects import CURATED_PREFIX, STAGING_PREFIX
from sf_lakehouse.dbt_models import code_version
from sf_lakehouse.defs import CURATED_GROUP, OWNERS, freshness_policy
from sf_lakehouse.defs.dbt_cli import LakehouseDbtCliResource
from sf_lakehouse.defs.dbt_in_process import RunnerManifest
from sf_lakehouse.defs.dbt_selection import (
    exclude_args,
    models_in_build_order,
    models_to_leave_out,
    unchanged_dimensions,
)
from sf_lakehouse.defs.dimension_changes import change_metadata
from sf_lakehouse.defs.pools import DBT_POOL
from sf_lakehouse.defs.resources import dbt_executable, dbt_vars_arg
from sf_lakehouse.lakehouse.increments import CODE_VERSION_PROPERTY, snapshot_property
from sf_lakehouse.lakehouse.io_manager import column_schema
from sf_lakehouse.lakehouse.resource import LakehouseResource
from sf_lakehouse.owner_only import private_dir

# Model folder -> asset key prefix; a raw source keeps dagster-dbt's [source, table] key, which
# is its raw asset's key (sf_raw/sf_user).
_KEY_PREFIX = {"staging": STAGING_PREFIX, "marts": CURATED_PREFIX}


class LakehouseDbtTranslator(DagsterDbtTranslator):
    """Asset keys from the model folder and name; each dimension gets its object's freshness."""

    def __init__(self, specs: Sequence[ObjectSpec] = ()) -> None:
        super().__init__()
        self._dimension_freshness = {
            AssetKey(list(spec.dimension_asset_key)): spec.freshness.dimension for spec in specs
        }

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        window = self._dimension_freshness.get(spec.key)
        if window is None:
            return spec
        return spec.replace_attributes(freshness_policy=freshness_policy(window))

    def get_asset_check_spec(
        self,
        asset_spec: AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> AssetCheckSpec | None:
        """dagster-dbt's check, described by the test's own `description:` in the model YAML
        (dagster-dbt reads only `meta.description`, so the UI said "No description provided")."""
        check = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if check is None or check.description:
            return check
        described = manifest["nodes"].get(unique_id, {}).get("description") or None
        return AssetCheckSpec(
            name=check.name,
            asset=check.asset_key,
            description=described,
            additional_deps=check.additional_deps,
            blocking=check.blocking,
            metadata=check.metadata,
            automation_condition=check.automation_condition,
        )

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "model":
            folder = dbt_resource_props["fqn"][1]
            return AssetKey([_KEY_PREFIX.get(folder, folder), dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return CURATED_GROUP

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return list(OWNERS)


def dbt_command(*args: str, target: str = "local") -> list[str]:
    """A dbt command line for this project, with the dbt of this environment (dagster-dbt's
    own preparer needs dbt on PATH, which an unactivated venv does not give)."""
    project = str(dbt_project_dir())
    return [
        dbt_executable(),
        *args,
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target",
        target,
    ]


# Written by dbt, never read by it as project input: their changes leave the manifest current.
_DBT_OUTPUT_DIRS = frozenset({"target", "logs", "dbt_packages"})


def manifest_is_current(manifest: Path) -> bool:
    """The manifest is newer than every file of the dbt project (models, macros, YAML)."""
    if not manifest.is_file():
        return False
    built = manifest.stat().st_mtime
    project_dir = dbt_project_dir()
    for path in project_dir.rglob("*"):
        relative = path.relative_to(project_dir)
        if relative.parts[0] in _DBT_OUTPUT_DIRS or not path.is_file():
            continue
        if path.stat().st_mtime > built:
            return False
    return True


def parse_dbt_project() -> None:
    """Refresh the manifest dagster-dbt reads (after a model was added or changed).

    dbt parses into a private folder and the manifest is moved into place by one rename: under
    `dagster dev` every run worker loads the definitions, and a manifest rewritten in place
    was read half-written by another process (a JSON decode error that failed the run)."""
    target = dbt_project_dir() / "target"
    target.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parse-", dir=target) as scratch:
        state = target / PARTIAL_PARSE_FILE
        if state.is_file():  # keeps the parse incremental (seconds, not a full parse)
            shutil.copyfile(state, Path(scratch) / PARTIAL_PARSE_FILE)
        subprocess.run(dbt_command("parse", "--quiet", "--target-path", scratch), check=True)
        for name in (PARTIAL_PARSE_FILE, "manifest.json"):  # the manifest last
            os.replace(Path(scratch) / name, target / name)


def dbt_project() -> DbtProject:
    project_dir = dbt_project_dir()
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir, target="local")
    # Under `dagster dev` re-parse when a model changed, so edits show up; elsewhere use the
    # manifest that `make` (or `sf-lakehouse add-object`) built, and say so when it is missing.
    manifest = Path(project.manifest_path)
    if DbtProjectPreparer().using_dagster_dev() and not manifest_is_current(manifest):
        parse_dbt_project()
    if not manifest.is_file():
        raise FileNotFoundError(
            f"dbt manifest {project.manifest_path} is missing; run `make install` (it runs "
            "`dbt parse` in dbt_project/)"
        )
    return project


FULL_REFRESH_TAG = "sf_lakehouse/full_refresh"


def dbt_build_args(lakehouse: LakehouseResource, full_refresh: bool = False) -> list[str]:
    """`dbt build` for a pipeline run: unit tests belong to CI (pytest runs them), not to runs."""
    args = ["build", "--vars", dbt_vars_arg(lakehouse), "--exclude-resource-type", "unit_test"]
    return [*args, "--full-refresh"] if full_refresh else args


def relation_schemas(lakehouse: LakehouseResource) -> dict[str, str]:
    """Where dbt's relations are for this lakehouse: sources in the raw database, models in the
    curated one (the `--vars` of dbt_build_args; the shipped manifest was parsed with the local
    environment's)."""
    return {"source": lakehouse.raw_database, "model": lakehouse.curated_database}


def stale_dimensions(lakehouse: LakehouseResource, specs: Sequence[ObjectSpec]) -> list[str]:
    """Dimensions built by other model code than today's (on Athena; the DuckDB plugin checks
    this itself): they must be rebuilt in full."""
    stale = []
    for spec in specs:
        table = lakehouse.load_table(spec.dimension_asset_key)
        if table is not None and snapshot_property(table, CODE_VERSION_PROPERTY) != code_version(
            spec
        ):
            stale.append(spec.dimension_model)
    return stale


def record_code_versions(lakehouse: LakehouseResource, specs: Sequence[ObjectSpec]) -> None:
    for spec in specs:
        table = lakehouse.load_table(spec.dimension_asset_key)
        if table is not None:
            with table.transaction() as tx:
                tx.set_properties({CODE_VERSION_PROPERTY: code_version(spec)})


def _column_descriptions(context: AssetExecutionContext, key: AssetKey) -> dict[str, str]:
    schema = context.assets_def.specs_by_key[key].metadata.get("dagster/column_schema")
    columns = getattr(schema, "schema", schema)
    return {c.name: c.description for c in getattr(columns, "columns", []) if c.description}


def build_dbt_assets(specs: Sequence[ObjectSpec]) -> AssetsDefinition:
    """One multi-asset over every dbt model; after each dimension is built, its Iceberg column
    types (with the model's descriptions) and what the build changed become metadata. A
    dimension without raw rows since its last build is left out of `dbt build`, with its
    staging model and their tests (sf_lakehouse.defs.dbt_selection); it is still reported
    materialized, as it is up to date, and its last test results stand."""
    project = dbt_project()
    spec_of_dimension = {AssetKey(list(spec.dimension_asset_key)): spec for spec in specs}
    manifest = json.loads(Path(project.manifest_path).read_text())
    runner_manifest = RunnerManifest(manifest)  # the same manifest, for in-process dbt

    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=LakehouseDbtTranslator(specs),
        name="sf_lakehouse_dbt",
        pool=DBT_POOL,  # one dbt build at a time (sf_lakehouse.defs.pools)
    )
    def sf_lakehouse_dbt_models(
        context: AssetExecutionContext, dbt: LakehouseDbtCliResource, lakehouse: LakehouseResource
    ) -> Iterator[Any]:
        # Each dimension's snapshot before the build: a build that changed nothing says so.
        before = {}
        for key in spec_of_dimension:
            table = lakehouse.load_table(key.path)
            snapshot = table.current_snapshot() if table is not None else None
            before[key] = snapshot.snapshot_id if snapshot is not None else None
        selected = [
            spec for key, spec in spec_of_dimension.items() if key in context.selected_asset_keys
        ]
        on_athena = lakehouse.environment != "local"
        full_refresh = context.run.tags.get(FULL_REFRESH_TAG) == "true"
        if on_athena and not full_refresh and (stale := stale_dimensions(lakehouse, selected)):
            context.log.info(f"{', '.join(stale)} built by other model code: full refresh")
            full_refresh = True
        # Locally, a dimension without new raw rows is not rebuilt (Athena has no record of the
        # raw snapshot a table was built from: it always builds).
        unchanged = {} if on_athena or full_refresh else unchanged_dimensions(lakehouse, selected)
        left_out = models_to_leave_out(manifest, unchanged)

        def with_table_metadata(event: Output) -> Output:
            key = context.asset_key_for_output(event.output_name)
            spec = spec_of_dimension.get(key)
            table = lakehouse.load_table(key.path) if spec is not None else None
            if spec is None or table is None:
                return event
            extra = {
                "dagster/column_schema": column_schema(table, _column_descriptions(context, key)),
                **change_metadata(
                    table, spec, lakehouse.load_table(spec.raw_asset_key), before.get(key)
                ),
            }
            return event.with_metadata({**event.metadata, **extra})

        to_build = []
        for model, key in key_of_model.items():  # in build order
            if key not in context.selected_asset_keys:
                continue
            dimension = left_out.get(model)
            if dimension is None:
                to_build.append(model)
                continue
            plan = unchanged[dimension]
            note = (
                f"not rebuilt: no raw row arrived since {dimension} was built from raw snapshot "
                f"{plan.raw_snapshot_id}, so dbt would leave it as it is"
            )
            yield with_table_metadata(
                Output(
                    None,
                    output_name=context.assets_def.get_output_name_for_asset_key(key),
                    metadata={"dbt_build": note},
                )
            )
        if left_out:
            context.log.info(f"dbt build leaves out unchanged {', '.join(sorted(left_out))}")
        if not to_build:
            return
        target_path = invocation_target_path(lakehouse, context.run.run_id)
        events = dbt.stream_build(
            [*dbt_build_args(lakehouse, full_refresh), *exclude_args(left_out)],
            context=context,
            target_path=target_path,
            manifest=runner_manifest,
            relation_schemas=relation_schemas(lakehouse),
        )
        for event in events:
            yield with_table_metadata(event) if isinstance(event, Output) else event
        keep_partial_parse(lakehouse, target_path)
        if on_athena:
            record_code_versions(lakehouse, selected)

    key_of_model = {
        model: get_asset_key_for_model([sf_lakehouse_dbt_models], model)
        for model in models_in_build_order(manifest)
    }
    return sf_lakehouse_dbt_models


PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def _dbt_state_dir(lakehouse: LakehouseResource) -> Path:
    return Path(lakehouse.lakehouse_home) / "dbt_target"


def invocation_target_path(lakehouse: LakehouseResource, run_id: str) -> Path:
    """A fresh dbt target folder for one invocation, seeded with the partial-parse state the
    previous build left for this lakehouse: dbt then skips re-parsing the project (several
    seconds per run), which it must otherwise do because the run's vars differ from the vars
    the shipped manifest was parsed with."""
    target = private_dir(_dbt_state_dir(lakehouse) / f"{run_id[:8]}-{uuid.uuid4().hex[:6]}")
    seed = _dbt_state_dir(lakehouse) / PARTIAL_PARSE_FILE
    if seed.is_file():
        shutil.copyfile(seed, target / PARTIAL_PARSE_FILE)
    return target


def keep_partial_parse(lakehouse: LakehouseResource, target_path: Path) -> None:
    """Keep the invocation's partial-parse state for the next run; the folder itself goes (it
    holds this run's artifacts, already reported to Dagster)."""
    produced = target_path / PARTIAL_PARSE_FILE
    if produced.is_file():
        staged = _dbt_state_dir(lakehouse) / f".{PARTIAL_PARSE_FILE}.{uuid.uuid4().hex[:6]}"
        shutil.copyfile(produced, staged)
        os.replace(staged, _dbt_state_dir(lakehouse) / PARTIAL_PARSE_FILE)
    shutil.rmtree(target_path, ignore_errors=True)
