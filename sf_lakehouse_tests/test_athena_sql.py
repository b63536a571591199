"""The SQL dbt sends to Athena is valid without an Athena to run it: `dbt compile` for every AWS
target offline, then every compiled model, test and analysis (the as_of example) parsed with
sqlglot's Trino dialect (Athena engine v3 is Trino) and checked for what Athena rejects; and every
object's models are there, reading the right tables, with the Iceberg config dbt-athena needs.
`test_athena_execution.py` runs that SQL (the incremental merge of rule 8 included) on DuckDB."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from sf_lakehouse.config import resolve_settings
from sf_lakehouse.dbt_models import dimension_model_config
from sf_lakehouse_tests.athena_on_duckdb import compile_for_athena

AWS_TARGETS = ["development", "staging", "prod"]
# Functions Trino knows that sqlglot's Trino dialect does not model; extend with care.
KNOWN_TRINO_FUNCTIONS: set[str] = set()


def athena_problems(sql: str) -> list[str]:
    """What Athena (Trino) would reject in one statement, empty when it is fine."""
    try:
        statements = sqlglot.parse(sql, read="trino", error_level=sqlglot.ErrorLevel.RAISE)
    except sqlglot.errors.ParseError as error:
        return [f"does not parse as Trino SQL: {error}"]
    problems = []
    for statement in statements:
        if statement is None:
            continue
        for function in statement.find_all(exp.Anonymous):
            if str(function.this).lower() not in KNOWN_TRINO_FUNCTIONS:
                problems.append(f"unknown function {function.this}()")
        for digest in statement.find_all(exp.MD5Digest):
            # Trino's md5 takes varbinary: md5(varchar) fails, md5(to_utf8(varchar)) works.
            if not isinstance(digest.this, exp.Encode):
                problems.append(f"md5 of a non-binary value: {digest.sql(dialect='trino')}")
    return problems


def test_the_checker_catches_what_athena_rejects() -> None:
    """Guards the guard: these are the mistakes it exists for."""
    assert athena_problems("select lower(to_hex(md5(to_utf8(x)))) from t") == []
    assert athena_problems("select md5(x) from t")
    assert athena_problems("select made_up_function(x) from t")
    assert athena_problems("select from where")


@pytest.mark.parametrize("environment", AWS_TARGETS)
def test_every_model_and_test_compiles_to_valid_athena_sql(
    environment: str, tmp_path: Path
) -> None:
    settings = resolve_settings(environment, home=tmp_path)
    target_path, result = compile_for_athena(environment, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    compiled = sorted((target_path / "compiled").rglob("*.sql"))
    by_name = {path.name: path.read_text() for path in compiled}
    tests_of = Counter(path.parent.name for path in compiled)
    problems = {str(p.relative_to(target_path)): athena_problems(p.read_text()) for p in compiled}
    assert {name: found for name, found in problems.items() if found} == {}
    assert "user_division_as_of.sql" in by_name  # the as_of macro, as an analysis
    manifest = json.loads((target_path / "manifest.json").read_text())
    assert settings.objects, "no object specs"
    for spec in settings.objects:
        staging = by_name[f"{spec.staging_model}.sql"]
        raw_table = spec.raw_asset_key[1]
        assert f'"awsdatacatalog"."{settings.raw_database}"."{raw_table}"' in staging
        dimension = by_name[f"{spec.dimension_model}.sql"]
        assert f'"awsdatacatalog"."{settings.curated_database}"."{spec.staging_model}"' in dimension
        # Each data test compiles into a folder named after its YAML file.
        assert tests_of[f"{spec.staging_model}.yml"] == 2
        assert tests_of[f"{spec.dimension_model}.yml"] == 6
        config = manifest["nodes"][f"model.sf_lakehouse.{spec.dimension_model}"]["config"]
        assert config["materialized"] == "incremental"
        assert config["incremental_strategy"] == "merge" and config["unique_key"] == "scd_id"
        assert config["table_type"] == "iceberg"
        wanted = dimension_model_config(spec)
        assert {key: config.get(key) for key in wanted} == wanted
