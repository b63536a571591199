"""`sf-lakehouse verify`: the end-to-end integration check an operator runs after a deploy or a
run. Each check prints one PASS/FAIL line; the same SQL runs on DuckDB (local) and Athena (AWS).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sf_lakehouse.config import ObjectSpec, Settings
from sf_lakehouse.lakehouse.query import object_summary_sql, quoted

ONE_CURRENT_ROW_SQL = """
select count(*) as records_failing from (
    select {key} from {dimension}
    group by {key}
    having sum(case when is_current then 1 else 0 end) <> 1
) per_record
"""

OVERLAPS_SQL = """
select count(*) as rows_failing from (
    select effective_to,
           lead(effective_from) over (partition by {key} order by effective_from) as next_from
    from {dimension}
) ordered
where next_from is not null and (effective_to is null or effective_to > next_from)
"""

ROW_COUNT_SQL = "select count(*) as row_count from {table}"


class QueryEngine(Protocol):
    name: str

    def query(self, sql: str) -> tuple[list[str], list[tuple]]: ...


class DuckDBEngine:
    """The local lakehouse through DuckDB's Iceberg reader."""

    name = "DuckDB"

    def __init__(self, settings: Settings) -> None:
        from sf_lakehouse.lakehouse.query import lakehouse_connection

        self._con = lakehouse_connection(settings)

    def query(self, sql: str) -> tuple[list[str], list[tuple]]:
        from sf_lakehouse.lakehouse.query import run_query

        return run_query(self._con, sql)


class AthenaError(RuntimeError):
    pass


class AthenaEngine:
    """Athena in the environment's workgroup (its result location comes with the workgroup)."""

    name = "Athena"

    def __init__(self, settings: Settings, timeout_seconds: float = 300) -> None:
        import boto3

        aws = settings.require_aws()
        self._client = boto3.client("athena", region_name=aws.region)
        self._workgroup = aws.athena_workgroup
        self._output = aws.athena_results_location + "verify/"
        self._timeout = timeout_seconds

    def query(self, sql: str) -> tuple[list[str], list[tuple]]:
        started = self._client.start_query_execution(
            QueryString=sql,
            WorkGroup=self._workgroup,
            QueryExecutionContext={"Catalog": "AwsDataCatalog"},
            ResultConfiguration={"OutputLocation": self._output},
        )
        query_id = started["QueryExecutionId"]
        deadline = time.monotonic() + self._timeout
        while True:
            status = self._client.get_query_execution(QueryExecutionId=query_id)
            state = status["QueryExecution"]["Status"]["State"]
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELLED"):
                reason = status["QueryExecution"]["Status"].get("StateChangeReason", state)
                raise AthenaError(f"Athena query {query_id} {state.lower()}: {reason}")
            if time.monotonic() > deadline:
                self._client.stop_query_execution(QueryExecutionId=query_id)
                raise AthenaError(f"Athena query {query_id} took longer than {self._timeout}s")
            time.sleep(1)
        result = self._client.get_query_results(QueryExecutionId=query_id)["ResultSet"]
        columns = [c["Name"] for c in result["ResultSetMetadata"]["ColumnInfo"]]
        rows = [tuple(d.get("VarCharValue") for d in r["Data"]) for r in result["Rows"]]
        # Athena returns the header as the first row.
        if rows and columns and list(rows[0]) == columns:
            rows = rows[1:]
        return columns, rows


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail}"


def _single_number(engine: QueryEngine, sql: str) -> int:
    _, rows = engine.query(sql)
    if not rows or rows[0][0] is None:
        raise AthenaError(f"{engine.name} returned no result row")
    return int(rows[0][0])


def check_salesforce(settings: Settings) -> CheckResult:
    from sf_lakehouse.salesforce.resource import salesforce_from_environment

    resource = salesforce_from_environment(settings).process_config_and_initialize()
    client = resource.connect()
    daily = client.limits().get("DailyApiRequests", {})
    remaining, maximum = int(daily.get("Remaining", 0)), int(daily.get("Max", 0))
    return CheckResult(
        "salesforce_connection",
        remaining > 0,
        f"logged in; {remaining:,} of {maximum:,} daily API requests left",
    )


def _table_rows(engine: QueryEngine, table: str, name: str) -> CheckResult:
    """The table exists and can be read (an object with no records yet has an empty table)."""
    count = _single_number(engine, ROW_COUNT_SQL.format(table=table))
    return CheckResult(name, True, f"{table} has {count:,} rows")


def object_checks(
    settings: Settings, engine: QueryEngine, spec: ObjectSpec
) -> list[tuple[str, Callable[[], CheckResult]]]:
    """One object's checks: both tables have rows, the SCD invariants hold, the summary."""
    raw = quoted(settings.table_identifier(spec.raw_asset_key))
    dim = quoted(settings.table_identifier(spec.dimension_asset_key))
    prefix = spec.name

    def one_current() -> CheckResult:
        sql = ONE_CURRENT_ROW_SQL.format(dimension=dim, key=spec.key_column)
        failing = _single_number(engine, sql)
        return CheckResult(
            f"{prefix}_scd_one_current_row",
            failing == 0,
            f"{failing} {spec.api_name} records without exactly one current row",
        )

    def no_overlaps() -> CheckResult:
        failing = _single_number(engine, OVERLAPS_SQL.format(dimension=dim, key=spec.key_column))
        return CheckResult(
            f"{prefix}_scd_no_overlapping_intervals",
            failing == 0,
            f"{failing} rows overlap the next version or leave it open",
        )

    def summary() -> CheckResult:
        name = f"{prefix}_summary"
        columns, rows = engine.query(object_summary_sql(settings, spec))
        if not rows:
            return CheckResult(name, False, f"{engine.name} returned no rows")
        values = ", ".join(f"{c}={v}" for c, v in zip(columns, rows[0], strict=True))
        return CheckResult(name, True, values)

    return [
        (
            f"{prefix}_raw_table_exists",
            lambda: _table_rows(engine, raw, f"{prefix}_raw_table_exists"),
        ),
        (
            f"{prefix}_dimension_exists",
            lambda: _table_rows(engine, dim, f"{prefix}_dimension_exists"),
        ),
        (f"{prefix}_scd_one_current_row", one_current),
        (f"{prefix}_scd_no_overlapping_intervals", no_overlaps),
        (f"{prefix}_summary", summary),
    ]


def run_checks(settings: Settings, engine: QueryEngine) -> list[CheckResult]:
    """Every check in order; a check that raises fails, the others still run."""
    checks: list[tuple[str, Callable[[], CheckResult]]] = [
        ("salesforce_connection", lambda: check_salesforce(settings)),
    ]
    for spec in settings.objects:
        checks += object_checks(settings, engine, spec)
    results = []
    for name, check in checks:
        try:
            result = check()
        except Exception as error:  # every failure is reported; none stops the rest
            first_line = str(error).splitlines()[0] if str(error) else ""
            result = CheckResult(name, False, f"{type(error).__name__}: {first_line}")
        results.append(result)
    return results


def engine_for(settings: Settings) -> QueryEngine:
    return DuckDBEngine(settings) if settings.is_local else AthenaEngine(settings)


def verify(settings: Settings, engine: QueryEngine | None = None) -> int:
    """Print one line per check; 0 when all pass, else 1."""
    engine = engine or engine_for(settings)
    print(f"Verifying {settings.environment} ({engine.name})")
    results = run_checks(settings, engine)
    for result in results:
        print(result.line())
    failed = [r.name for r in results if not r.passed]
    if failed:
        print(f"{len(failed)} of {len(results)} checks FAILED: {', '.join(failed)}")
        return 1
    print(f"All {len(results)} checks passed.")
    return 0
