"""Tables printed after a local run and by the demo: raw and SCD counts per object, then one
record's history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sf_lakehouse.config import Settings


def print_table(title: str, columns: Sequence[str], rows: Sequence[tuple]) -> None:
    from sf_lakehouse.lakehouse.query import format_rows

    print(f"\n{title}")
    print(format_rows(columns, rows))


def print_summaries(settings: Settings, record_id: str | None = None) -> None:
    """Raw and SCD counts per object, then the history of the busiest User."""
    from sf_lakehouse.lakehouse.query import (
        lakehouse_connection,
        object_summary_sql,
        quoted,
        run_query,
    )

    con = lakehouse_connection(settings)
    union = " union all ".join(object_summary_sql(settings, spec) for spec in settings.objects)
    print_table(
        f"Objects (raw {settings.raw_database}, SCD2 {settings.curated_database})",
        *run_query(con, union),
    )
    user = next((s for s in settings.objects if s.api_name == "User"), settings.objects[0])
    dim = quoted(settings.table_identifier(user.dimension_asset_key))
    key = user.key_column
    if record_id is None:
        busiest = con.execute(
            f"select {key} from {dim} group by {key} order by count(*) desc, {key} limit 1"
        ).fetchone()
        record_id = busiest[0] if busiest else None
    if record_id is not None:
        columns = ", ".join([*user.tracked_columns, "effective_from", "effective_to", "is_current"])
        print_table(
            f"History of {user.api_name} {record_id}",
            *run_query(
                con,
                f"select {columns} from {dim} where {key} = $1 order by effective_from",
                [record_id],
            ),
        )
