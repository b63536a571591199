"""Concurrency pools: at most one writer of each Iceberg table at a time, however runs start
(schedule, change sensor, a click in the UI, `sf-lakehouse run`).

- `sf_<object>` (`sf_user`, `sf_account`, ...): the object's raw asset and the maintenance of
  its raw table; protects the appends to `sf_raw_<env>.sf_<object>`.
- `sf_dbt`: the dbt build (one op over every model) and the maintenance of the dimensions;
  protects the dimensions, and the one DuckDB file of dbt-duckdb.

Every pool's limit is 1: the instance sets `concurrency: pools: default_limit: 1`
(`sf_lakehouse.pipeline.INSTANCE_YAML` for the CLI's own instance; a deployment's `dagster.yaml`
needs the same, see docs/design.md). A step whose pool is busy waits for it, and the UI shows
the run's step as blocked on that pool. With no limit configured, pools do nothing; the raw
tables still never store a version twice (appends re-check the stored versions at commit).
"""

from sf_lakehouse.config import ObjectSpec

DBT_POOL = "sf_dbt"
POOL_LIMIT = 1


def raw_pool(spec: ObjectSpec) -> str:
    """The pool of one object's raw table: `sf_user`, `sf_invoice_line`, ..."""
    return f"sf_{spec.name}"
