"""The dbt files of an object, rendered from its spec (`config/objects/<object>.yml`).

The spec is the one source of an object's tracked and carried fields: its staging model, its
SCD2 dimension and their YAML (descriptions, data tests, the raw source) are generated from it,
so adding an object (`sf-lakehouse add-object`) writes files and no SQL by hand. The SCD2 logic
itself lives once, in the `scd2` macro (`dbt_project/macros/scd2.sql`).

Re-render the shipped files after changing a spec: `python -m sf_lakehouse.dbt_models`.
No Dagster import: the CLI (add-object), deploy and the tests use it without loading Dagster.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sf_lakehouse.config.environment import dbt_project_dir as default_dbt_project_dir
from sf_lakehouse.config.environment import project_dir
from sf_lakehouse.config.objects import (
    OBJECTS_DIR_NAME,
    ObjectSpec,
    load_object_specs,
    raw_column,
    snake_case,
)

DBT_DIR_NAME = "dbt_project"
RAW_SOURCE = "sf_raw"
RENDER_COMMAND = "python -m sf_lakehouse.dbt_models"
# The dimension is partitioned by `is_current` and a hash bucket of the record id: a bucket of an
# 18-character id string is valid for every object, whatever the types and values of its tracked
# fields (the renderer does not know them), keeps the partition count fixed (2 x 16) and its
# directory names short, and prunes a lookup of one record to one bucket on both engines.
PARTITION_BUCKETS = 16
# `data_type` of the columns whose type the SCD2 structure fixes (valid on DuckDB and Trino).
_STRING, _BOOLEAN, _TIMESTAMP = "varchar", "boolean", "timestamp"


# --- names and paths ----------------------------------------------------------------------------


def model_paths(spec: ObjectSpec) -> dict[str, str]:
    """Repo-relative path of each file of the object: staging and dimension, SQL and YAML."""
    staging = f"{DBT_DIR_NAME}/models/staging/{spec.staging_model}"
    marts = f"{DBT_DIR_NAME}/models/marts/{spec.dimension_model}"
    return {
        "staging_sql": f"{staging}.sql",
        "staging_yml": f"{staging}.yml",
        "dimension_sql": f"{marts}.sql",
        "dimension_yml": f"{marts}.yml",
    }


def raw_table(spec: ObjectSpec) -> str:
    """The raw table's name: the last part of the raw asset key (`sf_user`)."""
    return spec.raw_asset_key[1]


def staging_columns(spec: ObjectSpec) -> dict[str, str]:
    """Raw column -> staging column of every carried and tracked field, in dimension order."""
    return {raw_column(field): snake_case(field) for field in (*spec.carry, *spec.track)}


def dimension_partitioned_by(spec: ObjectSpec) -> list[str]:
    """The dimension's dbt-athena `partitioned_by` (the local plugin parses the same list)."""
    return ["is_current", f"bucket({spec.key_column}, {PARTITION_BUCKETS})"]


def dimension_model_config(spec: ObjectSpec, project_dir: Path | None = None) -> dict[str, Any]:
    """The dimension's dbt-athena table config (what `layout_from_model_config` reads): the
    shared marts config of dbt_project.yml plus the model's partitioning, for code that creates
    or checks the table outside dbt (deploy)."""
    project_file = (project_dir or default_dbt_project_dir()) / "dbt_project.yml"
    project = yaml.safe_load(project_file.read_text(encoding="utf-8"))
    marts = project["models"][project["name"]]["marts"]
    config = {
        key.removeprefix("+"): value
        for key, value in marts.items()
        if key.startswith("+") and key != "+materialized"
    }
    return {**config, "partitioned_by": dimension_partitioned_by(spec)}


# --- rendering ----------------------------------------------------------------------------------


def render_model_files(spec: ObjectSpec) -> dict[str, str]:
    """Repo-relative path -> content of the object's four dbt files; pure, so a test can compare
    the shipped files with it."""
    paths = model_paths(spec)
    return {
        paths["staging_sql"]: _staging_sql(spec),
        paths["staging_yml"]: _staging_yml(spec),
        paths["dimension_sql"]: _dimension_sql(spec),
        paths["dimension_yml"]: _dimension_yml(spec),
    }


def write_model_files(spec: ObjectSpec, repo_root: Path | None = None) -> list[Path]:
    """Write (or overwrite) the object's dbt files under repo_root; returns the paths written.
    Run `dbt parse` afterwards so Dagster's manifest knows the new models."""
    repo_root = repo_root or project_dir()
    written = []
    for relative, content in render_model_files(spec).items():
        path = repo_root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written


def stale_model_files(specs: Sequence[ObjectSpec], repo_root: Path | None = None) -> list[str]:
    """Project-relative paths whose content differs from the rendering (missing files included);
    `repo_root` defaults to `project_dir()` (an installed copy's files are there)."""
    repo_root = repo_root or project_dir()
    stale = []
    for spec in specs:
        for relative, content in render_model_files(spec).items():
            path = repo_root / relative
            if not path.is_file() or path.read_text(encoding="utf-8") != content:
                stale.append(relative)
    return stale


def _generated_note(spec: ObjectSpec) -> list[str]:
    return [
        f"Generated from config/{OBJECTS_DIR_NAME}/{spec.name}.yml by sf_lakehouse.dbt_models; "
        "do not edit.",
        f"Change the spec, then run: {RENDER_COMMAND}",
    ]


def _sql_comment(spec: ObjectSpec, summary: str) -> str:
    return "{#-\n" + "".join(f"  {line}\n" for line in [*_generated_note(spec), summary]) + "-#}\n"


def _yaml_comment(spec: ObjectSpec) -> str:
    return "".join(f"# {line}\n" for line in _generated_note(spec))


def _sql_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _sql_mapping(mapping: Mapping[str, str], indent: str) -> str:
    lines = [f"{indent}    '{raw}': '{column}'," for raw, column in mapping.items()]
    lines[-1] = lines[-1].removesuffix(",")
    return "{\n" + "\n".join(lines) + f"\n{indent}}}"


def _words(values: Sequence[str]) -> str:
    """`A`, `A and B`, `A, B and C`."""
    return " and ".join(filter(None, [", ".join(values[:-1]), values[-1]]))


def _jinja_bool(value: bool) -> str:
    return "true" if value else "false"


def _staging_sql(spec: ObjectSpec) -> str:
    return (
        _sql_comment(
            spec, f"Salesforce {spec.api_name} observations, renamed for the SCD2 dimension."
        )
        + "{{ sf_staging(\n"
        f"    source('{RAW_SOURCE}', '{raw_table(spec)}'),\n"
        f"    key='{spec.key_column}',\n"
        f"    columns={_sql_mapping(staging_columns(spec), '    ')},\n"
        f"    deletions={_jinja_bool(spec.deletions)}\n"
        ") }}\n"
    )


def _dimension_sql(spec: ObjectSpec) -> str:
    tracked = _words([*spec.track, *(["deletions"] if spec.deletions else [])])
    summary = f"SCD Type 2 history of Salesforce {spec.api_name} records, tracking {tracked}."
    return (
        _sql_comment(spec, summary)
        + f"{{{{ config(partitioned_by={_sql_list(dimension_partitioned_by(spec))}) }}}}\n"
        "{{ scd2(\n"
        f"    ref('{spec.staging_model}'),\n"
        f"    key='{spec.key_column}',\n"
        f"    tracked={_sql_list(spec.tracked_columns)},\n"
        f"    carried={_sql_list(spec.carried_columns)},\n"
        f"    deletions={_jinja_bool(spec.deletions)}\n"
        ") }}\n"
    )


def _column(
    name: str, description: str, data_type: str | None = None, tests: list[Any] | None = None
) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "description": description}
    if data_type is not None:
        column["data_type"] = data_type
    if tests:
        column["data_tests"] = tests
    return column


def _test(test: str, name: str, description: str, **arguments: Any) -> dict[str, Any]:
    """A data test with a short name (dbt's `name:`, unique in the project: the object's name
    first) and its description; both reach the Dagster UI as the asset check's name and
    description (defs/dbt.py)."""
    body: dict[str, Any] = {"name": name}
    if arguments:
        body["arguments"] = arguments
    return {test: {**body, "description": description}}


def _field_descriptions(spec: ObjectSpec) -> dict[str, str]:
    """Staging and dimension column -> what it holds (tracked or carried)."""
    described = {}
    for field in spec.carry:
        described[snake_case(field)] = (
            f"{field} as of the latest observation in the version (carried: its changes do not "
            "start a version)."
        )
    for field in spec.track:
        described[snake_case(field)] = (
            f"{field} during the version (tracked: a change starts a new version)."
        )
    return described


def _staging_yml(spec: ObjectSpec) -> str:
    key_description = f"Salesforce {spec.api_name} id (18 characters)."
    columns = [
        _column(
            spec.key_column,
            key_description,
            _STRING,
            [
                _test(
                    "not_null",
                    f"{spec.name}_staging_key_not_null",
                    "Every observation names its record (the raw Id).",
                )
            ],
        )
    ]
    for field in (*spec.carry, *spec.track):
        role = "tracked" if field in spec.track else "carried"
        columns.append(_column(snake_case(field), f"{field} ({role} by {spec.dimension_model})."))
    if spec.deletions:
        columns.append(
            _column(
                "is_deleted",
                "IsDeleted: true when the record was in the recycle bin when read (queryAll); "
                "NULL is read as false.",
                _BOOLEAN,
            )
        )
    columns += [
        _column(
            "system_modstamp",
            "SystemModstamp (UTC); identifies and orders the observations of a record.",
            _TIMESTAMP,
            [
                _test(
                    "not_null",
                    f"{spec.name}_staging_modstamp_not_null",
                    "Rule 1: every observation has a SystemModstamp, or it cannot be ordered.",
                )
            ],
        ),
        _column(
            "extracted_at",
            "When the extraction run read the record (UTC); of a version read twice, the latest "
            "read wins.",
            _TIMESTAMP,
        ),
        _column("extraction_run_id", "The extraction run that read the record.", _STRING),
    ]
    document = {
        "version": 2,
        "sources": [
            {
                "name": RAW_SOURCE,
                "description": "Salesforce records as extracted, one row per record version "
                "(append-only Iceberg tables, one per object).",
                "schema": "{{ var('raw_database') }}",
                # dbt-duckdb reads the Iceberg table through sf_lakehouse.lakehouse.dbt_plugin;
                # Athena reads it from the Glue catalog and ignores this.
                "meta": {"plugin": "lakehouse"},
                "tables": [
                    {
                        "name": raw_table(spec),
                        "description": f"Salesforce {spec.api_name} record versions extracted by "
                        f"the {'/'.join(spec.raw_asset_key)} asset "
                        f"({'queryAll, deleted records included' if spec.deletions else 'query'}); "
                        "columns are the API names lower-cased, plus _extracted_at and _run_id.",
                    }
                ],
            }
        ],
        "models": [
            {
                "name": spec.staging_model,
                "description": f"Salesforce {spec.api_name} observations renamed for "
                f"{spec.dimension_model}: one row per extracted record version, duplicates of a "
                "re-extracted version included (the dimension removes them).",
                "columns": columns,
            }
        ],
    }
    return _yaml_comment(spec) + "\n" + _dump_yaml(document)


def _dimension_yml(spec: ObjectSpec) -> str:
    key = spec.key_column
    compared = _words([*spec.track, *(["deleted state"] if spec.deletions else [])])
    described = _field_descriptions(spec)
    columns = [
        _column(
            "scd_id",
            f"Deterministic id of the version: hash of {key} and effective_from (rule 5).",
            _STRING,
            [
                _test(
                    "unique", f"{spec.name}_scd_id_unique", "Rule 5: no two versions share an id."
                ),
                _test(
                    "not_null", f"{spec.name}_scd_id_not_null", "Rule 5: every version has an id."
                ),
            ],
        ),
        _column(
            key,
            f"Salesforce {spec.api_name} id (18 characters).",
            _STRING,
            [_test("not_null", f"{spec.name}_key_not_null", "Every version belongs to a record.")],
        ),
        *(_column(column, described[column]) for column in spec.carried_columns),
        *(_column(column, described[column]) for column in spec.tracked_columns),
    ]
    if spec.deletions:
        columns.append(
            _column(
                "is_deleted",
                "True while the record is deleted; a deletion and an undelete each start a "
                "version (rule 7).",
                _BOOLEAN,
            )
        )
    columns += [
        _column(
            "effective_from",
            "SystemModstamp (UTC) of the observation that started the version (rule 3).",
            _TIMESTAMP,
        ),
        _column(
            "effective_to",
            "Start of the next version (UTC), NULL for the current one; intervals are half-open.",
            _TIMESTAMP,
        ),
        _column(
            "is_current", "True for the version still in effect (effective_to NULL).", _BOOLEAN
        ),
    ]
    document = {
        "version": 2,
        "models": [
            {
                "name": spec.dimension_model,
                "description": f"SCD Type 2 history of Salesforce {spec.api_name} records: one "
                f"row per period in which a record's {compared} stayed the same; the other "
                "columns come from the latest observation in the period. Intervals are half-open "
                "[effective_from, effective_to); the current row has effective_to NULL. The "
                "version in effect at instant T: the as_of macro, "
                f"as_of(ref('{spec.dimension_model}'), \"timestamp 'T'\"), or effective_from <= T "
                "and (effective_to > T or effective_to is null).",
                "data_tests": [
                    _test(
                        "exactly_one_current_row",
                        f"{spec.name}_one_current_row",
                        "Rule 3: every record has exactly one current version (effective_to NULL).",
                        key=key,
                    ),
                    _test(
                        "contiguous_intervals",
                        f"{spec.name}_contiguous_intervals",
                        "Rule 3: a record's versions follow each other without gap or overlap; "
                        "each ends where the next starts and only the last is open.",
                        key=key,
                        valid_from="effective_from",
                        valid_to="effective_to",
                    ),
                    _test(
                        "expression_is_true",
                        f"{spec.name}_positive_intervals",
                        "Rule 3: every closed version lasts a positive time.",
                        expression="effective_to > effective_from",
                        where_clause="effective_to is not null",
                    ),
                ],
                "columns": columns,
            }
        ],
    }
    return _yaml_comment(spec) + "\n" + _dump_yaml(document)


class _Dumper(yaml.SafeDumper):
    """Block lists indented under their key; long text folded; Jinja double-quoted."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = None
    if "{{" in value:
        style = '"'
    elif len(value) > 70:
        style = ">"
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump_yaml(document: Mapping[str, Any]) -> str:
    text = yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=84, indent=2
    )
    # A blank line between top-level sections, as hand-written dbt YAML has.
    return text.replace("\nsources:", "\n\nsources:").replace("\nmodels:", "\n\nmodels:")


# --- command line -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Render the dbt files of every spec in config/objects (`--check`: only report stale ones)."""
    parser = argparse.ArgumentParser(prog=RENDER_COMMAND, description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when a file is stale")
    parser.add_argument("--repo-root", type=Path, default=None)
    args = parser.parse_args(argv)
    args.repo_root = args.repo_root or project_dir()
    specs = load_object_specs(args.repo_root / "config" / OBJECTS_DIR_NAME)
    if args.check:
        stale = stale_model_files(specs, args.repo_root)
        for relative in stale:
            print(f"stale: {relative}")
        return 1 if stale else 0
    for spec in specs:
        for path in write_model_files(spec, args.repo_root):
            print(f"wrote {path.relative_to(args.repo_root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def code_version(spec: ObjectSpec, dbt_project_dir: Path | None = None) -> str:
    """A hash of what decides an object's dimension: its two models and the macros they call.
    A dimension built by other code is rebuilt in full (rule 8 holds across model changes)."""
    project = dbt_project_dir or default_dbt_project_dir()
    digest = hashlib.sha256()
    for path in (
        project / "macros" / "scd2.sql",
        project / "macros" / "sf_staging.sql",
        project / "models" / "staging" / f"{spec.staging_model}.sql",
        project / "models" / "marts" / f"{spec.dimension_model}.sql",
    ):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"missing")
    return digest.hexdigest()[:16]
