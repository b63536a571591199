"""The dbt files of every object are what its spec renders, a new object's files build for real,
object specs round-trip through their YAML, and the partitioning both engines get is valid."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from sf_lakehouse.config import ObjectSpec, resolve_settings
from sf_lakehouse.config.environment import DBT_PROJECT_DIR, REPO_ROOT
from sf_lakehouse.config.objects import OBJECTS_DIR_NAME, load_object_spec, load_object_specs
from sf_lakehouse.config.spec_yaml import render_object_spec_yaml
from sf_lakehouse.dbt_models import (
    RENDER_COMMAND,
    dimension_model_config,
    main,
    render_model_files,
    stale_model_files,
    write_model_files,
)
from sf_lakehouse.lakehouse.dbt_plugin import layout_from_model_config, partition_field_from_athena
from sf_lakehouse.lakehouse.tables import (
    RAW_LAYOUT,
    PartitionField,
    append_rows,
    ensure_table,
    open_catalog,
)

SPECS = load_object_specs(REPO_ROOT / "config" / OBJECTS_DIR_NAME)
MODELS_DIR = DBT_PROJECT_DIR / "models"


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.api_name)
def test_shipped_model_files_are_what_the_spec_renders(spec: ObjectSpec) -> None:
    for relative, content in render_model_files(spec).items():
        path = REPO_ROOT / relative
        assert path.is_file(), f"{relative} is missing; run `{RENDER_COMMAND}`"
        assert path.read_text(encoding="utf-8") == content, (
            f"{relative} differs from what config/objects/{spec.name}.yml renders; the spec is "
            f"the source of the dbt files: run `{RENDER_COMMAND}` (never edit them by hand)"
        )


def test_every_model_file_belongs_to_an_object_spec() -> None:
    rendered = {Path(p).name for spec in SPECS for p in render_model_files(spec)}
    shipped = {p.name for p in MODELS_DIR.rglob("*") if p.suffix in (".sql", ".yml")}
    assert shipped - rendered == set(), "model files without a spec in config/objects/"


def test_the_check_command_reports_no_stale_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert stale_model_files(SPECS) == []
    assert main(["--check"]) == 0


def test_the_check_command_names_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(REPO_ROOT / "config", tmp_path / "config")
    for spec in SPECS:
        write_model_files(spec, tmp_path)
    user_sql = tmp_path / "dbt_project/models/marts/dim_sf_user_scd.sql"
    user_sql.write_text(user_sql.read_text() + "-- hand edit\n")
    assert main(["--check", "--repo-root", str(tmp_path)]) == 1
    assert "stale: dbt_project/models/marts/dim_sf_user_scd.sql" in capsys.readouterr().out


def test_rendered_model_files_are_thin_and_name_what_the_spec_derives() -> None:
    account = next(s for s in SPECS if s.api_name == "Account")
    files = render_model_files(account)
    staging = files["dbt_project/models/staging/stg_sf_account.sql"]
    dimension = files["dbt_project/models/marts/dim_sf_account_scd.sql"]
    assert "source('sf_raw', 'sf_account')" in staging and "deletions=true" in staging
    assert "'billingcountry': 'billing_country'" in staging
    assert "{{ config(partitioned_by=['is_current', 'bucket(account_id, 16)']) }}" in dimension
    assert "tracked=['type', 'owner_id']" in dimension
    assert "carried=['name', 'industry', 'billing_country']" in dimension
    assert max(len(f.splitlines()) for f in (staging, dimension)) < 25
    properties = yaml.safe_load(files["dbt_project/models/marts/dim_sf_account_scd.yml"])
    [model] = properties["models"]
    assert [c["name"] for c in model["columns"]] == list(account.dimension_columns)
    assert all(c["description"] for c in model["columns"])
    tests = [next(iter(t)) for t in model["data_tests"]]
    tests += [next(iter(t)) for c in model["columns"] for t in c.get("data_tests", [])]
    assert sorted(tests) == sorted(
        [
            "exactly_one_current_row",
            "contiguous_intervals",
            "expression_is_true",
            "unique",
            "not_null",
            "not_null",
        ]
    )
    source = yaml.safe_load(files["dbt_project/models/staging/stg_sf_account.yml"])["sources"]
    assert source[0]["name"] == "sf_raw" and source[0]["tables"] == [
        {"name": "sf_account", "description": source[0]["tables"][0]["description"]}
    ]


# --- object specs -----------------------------------------------------------------------------


UNUSUAL = ObjectSpec(
    api_name="Invoice_Line__c",
    id_prefix="a0B",
    fields=(
        "Id",
        "Yes",
        "Null",
        "Quantity__c",
        *(f"Very_Long_Field_Name_{i}__c" for i in range(9)),
    ),
    cursor="LastModifiedDate",
    lookback_seconds=0,
    track=("Quantity__c", "True"),
    carry=("No",),
    deletions=True,
    freshness={
        "raw": {"warn_after_minutes": 5, "fail_after_minutes": 10},
        "dimension": {"warn_after_minutes": 15, "fail_after_minutes": 20},
    },
    extraction={"page_size": 200},
)


@pytest.mark.parametrize("spec", [*SPECS, UNUSUAL], ids=lambda spec: spec.api_name)
def test_a_rendered_object_spec_loads_back_as_the_same_spec(spec: ObjectSpec, tmp_path) -> None:
    path = tmp_path / f"{spec.name}.yml"
    text = render_object_spec_yaml(spec)
    path.write_text(text, encoding="utf-8")
    assert load_object_spec(path) == spec
    assert max(len(line) for line in text.splitlines()) <= 100


# --- partitioning -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("is_current", PartitionField("is_current", "identity", "is_current")),
        ("bucket(user_id, 16)", PartitionField("user_id", "bucket[16]", "user_id_bucket")),
        ("truncate(division,16)", PartitionField("division", "truncate[16]", "division_trunc")),
        ("day( effective_from )", PartitionField("effective_from", "day", "effective_from_day")),
    ],
)
def test_athena_partition_spellings_become_iceberg_partition_fields(entry, field) -> None:
    assert partition_field_from_athena(entry) == field


@pytest.mark.parametrize("entry", ["bucket(user_id)", "day(x, 2)", "md5(x)", "a b", "bucket(x, 0)"])
def test_an_invalid_partition_spelling_fails_clearly(entry: str) -> None:
    with pytest.raises(ValueError, match="partition"):
        partition_field_from_athena(entry)


def test_an_unknown_transform_fails_when_the_layout_is_declared() -> None:
    with pytest.raises(ValueError, match="unknown partition transform"):
        PartitionField("x", "bucket[]", "x_bucket")


@pytest.mark.parametrize("spec", [*SPECS, UNUSUAL], ids=lambda spec: spec.api_name)
def test_every_dimension_is_partitioned_by_is_current_and_a_bucket_of_its_id(spec) -> None:
    layout = layout_from_model_config(dimension_model_config(spec))
    assert [(f.source, f.transform, f.name) for f in layout.partition_fields] == [
        ("is_current", "identity", "is_current"),
        (spec.key_column, "bucket[16]", f"{spec.key_column}_bucket"),
    ]
    assert layout.properties["write.parquet.compression-codec"] == "zstd"
    assert layout.properties["write.target-file-size-bytes"] == "268435456"


# --- a new object, end to end -------------------------------------------------------------------


@pytest.mark.slow
def test_a_new_objects_files_build_its_dimension_for_real(tmp_path: Path) -> None:
    """What `sf-lakehouse add-object` does: render the spec's files into the project, then dbt
    builds the new dimension (numeric and boolean tracked fields, deletions) from its raw table,
    the raw source declared in the object's own YAML beside the others."""
    spec = ObjectSpec(
        api_name="Invoice_Line__c",
        id_prefix="a0B",
        track=("Quantity__c", "Is_Billable__c"),
        carry=("Name",),
        deletions=True,
    )
    repo = tmp_path / "repo"
    shutil.copytree(DBT_PROJECT_DIR, repo / "dbt_project", ignore=shutil.ignore_patterns("target"))
    written = write_model_files(spec, repo)
    assert sorted(p.name for p in written) == sorted(
        [
            "stg_sf_invoice_line.sql",
            "stg_sf_invoice_line.yml",
            "dim_sf_invoice_line_scd.sql",
            "dim_sf_invoice_line_scd.yml",
        ]
    )
    settings = resolve_settings("local", home=tmp_path / "lakehouse", objects=[*SPECS, spec])
    stamp = dt.datetime(2026, 3, 1, 8)
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("name", pa.string()),
            ("quantity__c", pa.float64()),
            ("is_billable__c", pa.bool_()),
            ("isdeleted", pa.bool_()),
            ("systemmodstamp", pa.timestamp("us")),
            ("_extracted_at", pa.timestamp("us")),
            ("_run_id", pa.string()),
        ]
    )
    rows = [
        ("a0B000000000001AAA", "L1", 1.0, True, False, 0),
        ("a0B000000000001AAA", "L1b", 1.0, True, None, 1),  # carried change only
        ("a0B000000000001AAA", "L1b", 2.5, True, False, 2),
        ("a0B000000000001AAA", "L1b", 2.5, None, False, 3),
        ("a0B000000000001AAA", "L1b", 2.5, None, True, 4),
    ]
    raw = [
        dict(
            zip(schema.names[:5], row[:5], strict=True),
            systemmodstamp=stamp + dt.timedelta(hours=row[5]),
            _extracted_at=stamp + dt.timedelta(days=1),
            _run_id="run-1",
        )
        for row in rows
    ]
    catalog = open_catalog(settings.catalog_properties())
    identifier = settings.table_identifier(spec.raw_asset_key)
    append_rows(ensure_table(catalog, identifier, schema, RAW_LAYOUT), pa.Table.from_pylist(raw))
    project = str(repo / "dbt_project")
    command = [
        dbt_executable(),
        "build",
        "--select",
        f"+{spec.dimension_model}",
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target",
        "local",
        "--target-path",
        str(tmp_path / "target"),
        "--vars",
        json.dumps(settings.dbt_vars()),
    ]
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:]
    table = catalog.load_table(settings.table_identifier(spec.dimension_asset_key))
    built = sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["effective_from"])
    assert list(built[0]) == list(spec.dimension_columns)
    assert [(r["name"], r["quantity"], r["is_billable"], r["is_deleted"]) for r in built] == [
        ("L1b", 1.0, True, False),
        ("L1b", 2.5, True, False),
        ("L1b", 2.5, None, False),
        ("L1b", 2.5, None, True),
    ]
    assert [f.name for f in table.spec().fields] == ["is_current", "invoice_line_id_bucket"]


def dbt_executable() -> str:
    """The dbt beside this interpreter (the venv need not be activated)."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"
