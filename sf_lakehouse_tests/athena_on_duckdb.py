"""The SQL dbt-athena sends, executed: the models compiled for an Athena target, transpiled from
Trino to DuckDB by sqlglot, and run as Athena would run them, in an in-memory DuckDB laid out like
the Glue catalog (`"awsdatacatalog"."<database>"."<table>"`, the dimension's `$snapshots`
metadata table as a plain table of commit times).

What dbt-athena does for an incremental Iceberg model with `incremental_strategy: merge` (its
`iceberg_merge` macro, `dbt/include/athena/macros/materializations/models/incremental/merge.sql`):
build the model's SQL into a temporary table, then `merge into <target> as target using <tmp> as
src on target.<unique_key> = src.<unique_key> when matched and (<delete_condition>) then delete
when matched then update set <every other column> when not matched and <insert_condition> then
insert`. The conditions and the key are read from the manifest, so a change of the project's
config changes what runs here. A first build or a full refresh is a CTAS of the model's SQL (with
`ha: true`, a new table swapped in: its `$snapshots` starts again).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot

from sf_lakehouse.config import ObjectSpec, Settings, resolve_settings
from sf_lakehouse.defs.dbt import dbt_command

ENVIRONMENT = "development"
CATALOG = "awsdatacatalog"


def to_duckdb(trino_sql: str) -> str:
    """One Trino statement as DuckDB SQL (sqlglot); fails loudly on more than one."""
    [statement] = sqlglot.transpile(trino_sql, read="trino", write="duckdb")
    return statement


def compile_for_athena(
    environment: str, tmp_path: Path, **extra_vars: object
) -> tuple[Path, subprocess.CompletedProcess]:
    """`dbt compile` for an AWS target, offline (dbt-athena opens no connection with
    `--no-populate-cache`); returns dbt's target path and the finished process."""
    settings = resolve_settings(environment, home=tmp_path)
    target_path = tmp_path / "target"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # dbt-athena builds a boto3 session at connection time; no call is made offline.
    env |= {
        "AWS_ACCESS_KEY_ID": "offline",
        "AWS_SECRET_ACCESS_KEY": "offline",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    result = subprocess.run(
        dbt_command(
            "compile",
            "--no-populate-cache",
            "--target-path",
            str(target_path),
            "--vars",
            json.dumps({**settings.dbt_vars(), **extra_vars}),
            target=environment,
        ),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    return target_path, result


@dataclass(frozen=True)
class CompiledProject:
    """The Athena SQL of every model: the full build and the incremental one (rule 8)."""

    full: dict[str, str]  # model name -> compiled SQL (first build, full refresh)
    incremental: dict[str, str]  # model name -> compiled SQL of an incremental build
    analyses: dict[str, str]
    configs: dict[str, dict[str, Any]]  # model name -> its config in the manifest

    @classmethod
    def compile(cls, tmp_path: Path) -> CompiledProject:
        targets = {}
        for kind, extra in (("full", {}), ("incremental", {"sf_compile_incremental": True})):
            target, result = compile_for_athena(ENVIRONMENT, tmp_path / kind, **extra)
            assert result.returncode == 0, result.stdout[-3000:]
            targets[kind] = target
        manifest = json.loads((targets["full"] / "manifest.json").read_text())
        configs = {
            node["name"]: node["config"]
            for node in manifest["nodes"].values()
            if node["resource_type"] == "model"
        }

        def sql_of(target: Path, folder: str) -> dict[str, str]:
            root = target / "compiled" / "sf_lakehouse" / folder
            # Data tests compile into folders named after their YAML file; keep the models.
            return {p.stem: p.read_text() for p in root.rglob("*.sql") if p.parent.suffix != ".yml"}

        return cls(
            full=sql_of(targets["full"], "models"),
            incremental=sql_of(targets["incremental"], "models"),
            analyses=sql_of(targets["full"], "analyses"),
            configs=configs,
        )


def merge_statement(config: dict[str, Any], target: str, source: str, columns: list[str]) -> str:
    """dbt-athena's `iceberg_merge` for this model config (no update or incremental predicates
    set in this project; the test fails if one appears rather than ignore it)."""
    assert not config.get("incremental_predicates") and not config.get("update_condition")
    assert not config.get("merge_update_columns") and not config.get("merge_exclude_columns")
    key = config["unique_key"]
    others = [c for c in columns if c != key]
    parts = [f"merge into {target} as target using {source} as src on (target.{key} = src.{key})"]
    if config.get("delete_condition"):
        parts.append(f"when matched and ({config['delete_condition']}) then delete")
    parts.append("when matched then update set " + ", ".join(f'"{c}" = src."{c}"' for c in others))
    insert = "when not matched"
    if config.get("insert_condition"):
        insert += f" and {config['insert_condition']}"
    names = ", ".join(f'"{c}"' for c in columns)
    values = ", ".join(f'src."{c}"' for c in columns)
    parts.append(f"{insert} then insert ({names}) values ({values})")
    return "\n".join(parts)


class AthenaOnDuckDB:
    """One Athena environment's raw tables, staging views and dimensions, in DuckDB."""

    def __init__(self, project: CompiledProject, home: Path) -> None:
        self.project = project
        self.settings: Settings = resolve_settings(ENVIRONMENT, home=home)
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute(f"ATTACH ':memory:' AS {CATALOG}")
        self.con.execute(f"USE {CATALOG}")
        for database in (self.settings.raw_database, self.settings.curated_database):
            self.con.execute(f'create schema "{database}"')

    def table(self, asset_key: tuple[str, ...] | list[str]) -> str:
        database, name = self.settings.table_identifier(asset_key).split(".")
        return f'"{CATALOG}"."{database}"."{name}"'

    def snapshots(self, spec: ObjectSpec) -> str:
        return f'"{self.settings.curated_database}"."{spec.dimension_model}$snapshots"'

    def append_raw(self, spec: ObjectSpec, rows: pa.Table) -> None:
        """Append rows to the object's raw table (created, and its staging view, on first use)."""
        raw = self.table(spec.raw_asset_key)
        self.con.register("incoming", rows)
        exists = self.con.execute(
            "select count(*) from information_schema.tables where table_catalog = ? "
            "and table_schema = ? and table_name = ?",
            [CATALOG, self.settings.raw_database, spec.raw_asset_key[1]],
        ).fetchone()[0]
        if exists:
            self.con.execute(f"insert into {raw} by name select * from incoming")
        else:
            self.con.execute(f"create table {raw} as select * from incoming")
            staging = self.project.full[spec.staging_model]
            view = f'"{CATALOG}"."{self.settings.curated_database}"."{spec.staging_model}"'
            self.con.execute(f"create view {view} as {to_duckdb(staging)}")
        self.con.unregister("incoming")

    def build(self, spec: ObjectSpec, committed_at: dt.datetime, *, full: bool = False) -> str:
        """One dbt-athena build of the dimension: a CTAS when the table is missing or `full`
        (dbt --full-refresh, or a model built by other code), else the incremental SQL into a
        temporary table and the merge. Records the commit in `$snapshots`. Returns the kind."""
        dimension = self.table(spec.dimension_asset_key)
        missing = not self.con.execute(
            "select count(*) from information_schema.tables where table_catalog = ? "
            "and table_schema = ? and table_name = ?",
            [CATALOG, self.settings.curated_database, spec.dimension_model],
        ).fetchone()[0]
        if missing or full:
            sql = to_duckdb(self.project.full[spec.dimension_model])
            self.con.execute(f"create or replace table {dimension} as {sql}")
            snapshots = self.snapshots(spec)  # a new table (ha: true): its history starts again
            self.con.execute(f"create or replace table {snapshots} (committed_at timestamptz)")
            kind = "full"
        else:
            sql = to_duckdb(self.project.incremental[spec.dimension_model])
            self.con.execute(f"create or replace temp table dbt_tmp as {sql}")
            columns = [row[0] for row in self.con.execute("describe dbt_tmp").fetchall()]
            config = self.project.configs[spec.dimension_model]
            merge = merge_statement(config, f"{dimension}", "dbt_tmp", columns)
            self.con.execute(to_duckdb(merge))
            self.con.execute("drop table dbt_tmp")
            kind = "incremental"
        self.con.execute(
            f"insert into {self.snapshots(spec)} values (?)", [committed_at.replace(tzinfo=dt.UTC)]
        )
        return kind

    def rows(self, sql: str) -> list[dict[str, Any]]:
        result = self.con.execute(sql)
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    def dimension(self, spec: ObjectSpec) -> list[dict[str, Any]]:
        return self.rows(f"select * from {self.table(spec.dimension_asset_key)}")

    def raw(self, spec: ObjectSpec) -> list[dict[str, Any]]:
        return self.rows(f"select * from {self.table(spec.raw_asset_key)}")


class AthenaTranspiledEngine:
    """`verify`'s QueryEngine for an AWS environment, answering the SQL it would send to Athena
    from the DuckDB copy (so verify's own queries run, transpiled, on known tables)."""

    name = "Athena (transpiled to DuckDB)"

    def __init__(self, athena: AthenaOnDuckDB) -> None:
        self._athena = athena
        self.sent: list[str] = []

    def query(self, sql: str) -> tuple[list[str], list[tuple]]:
        self.sent.append(sql)
        result = self._athena.con.execute(to_duckdb(sql))
        return [d[0] for d in result.description], result.fetchall()
