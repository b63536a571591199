"""The SCD2 rule (rules 1-7) computed over Arrow for any object spec, independently of the dbt
SQL. The asset check `dimension_matches_the_scd2_rule` compares the dimension dbt builds with
this; it only looks at the raw rows. Column-wise (sorts and shifted comparisons), so a check of
the records a big run touched costs a fraction of a second per 100k rows, not a Python loop over
every row.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from sf_lakehouse.config import ObjectSpec
from sf_lakehouse.config.objects import DELETED_FIELD, raw_column

VERSION_KEY = "effective_from"
# Rule 1's order of the reads of one version, latest first: the extraction time, and the run id
# for reads tied on it (docs/design.md); the dbt macro and the tests' reference use the same.
READ_ORDER = ("_extracted_at", "_run_id")


def _value_columns(spec: ObjectSpec) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(dimension column, raw column) pairs of the carried and of the compared fields."""
    carried = list(zip(spec.carried_columns, map(raw_column, spec.carry), strict=True))
    compared = list(zip(spec.tracked_columns, map(raw_column, spec.track), strict=True))
    if spec.deletions:
        compared.append(("is_deleted", raw_column(DELETED_FIELD)))
    return carried, compared


def raw_columns_read(spec: ObjectSpec, available: Sequence[str]) -> tuple[str, ...]:
    """The raw columns the rule reads, of those the table has."""
    carried, compared = _value_columns(spec)
    wanted = ["id", "systemmodstamp", *READ_ORDER, *(raw for _, raw in carried + compared)]
    return tuple(dict.fromkeys(c for c in wanted if c in available))


def _raw_values(raw: pa.Table, column: str) -> pa.Array:
    """A raw column (all NULL when the table lacks it); NULL IsDeleted counts as not deleted."""
    if column not in raw.column_names:
        values = pa.nulls(raw.num_rows)
    else:
        values = raw.column(column).combine_chunks()
    if column == raw_column(DELETED_FIELD):
        return pc.fill_null(values.cast(pa.bool_()), False)
    return values


def _null_safe_equal(left: pa.Array, right: pa.Array) -> pa.BooleanArray:
    """Equal values, or both NULL (a NULL differs from any value)."""
    equal = pc.fill_null(pc.equal(left, right), False)
    return pc.or_(equal, pc.and_(left.is_null(), right.is_null()))


def _shifted_differs(values: pa.Array) -> pa.BooleanArray:
    """Row i differs from row i-1, NULL-safely (NULL equals NULL, differs from any value);
    row 0 counts as differing."""
    if len(values) == 0:
        return pa.array([], pa.bool_())
    if pa.types.is_null(values.type):  # all NULL: every row equals the previous one
        return pa.concat_arrays([pa.array([True]), pa.repeat(False, len(values) - 1)])
    same = _null_safe_equal(values[1:], values[:-1])
    return pa.concat_arrays([pa.array([True]), pc.invert(same)])


def _then(values: pa.Array, last: object) -> pa.Array:
    """values[1:] followed by `last`: for each position, the next one's value."""
    return pa.concat_arrays([values[1:], pa.array([last], values.type)])


def expected_dimension(raw: pa.Table, spec: ObjectSpec) -> pa.Table:
    """The dimension's rows without scd_id, sorted by (key, effective_from)."""
    carried, compared = _value_columns(spec)
    # Rule 1: one observation per (id, systemmodstamp), its latest read (READ_ORDER: a tie of
    # extraction times goes to the greater run id, never to the table's order).
    order = pc.sort_indices(
        raw,
        sort_keys=[
            ("id", "ascending"),
            ("systemmodstamp", "ascending"),
            *((column, "descending") for column in READ_ORDER if column in raw.column_names),
        ],
    )
    rows = raw.take(order)
    first_reads = pc.or_(
        _shifted_differs(rows.column("id").combine_chunks()),
        _shifted_differs(rows.column("systemmodstamp").combine_chunks()),
    )
    rows = rows.filter(first_reads)
    ids = rows.column("id").combine_chunks()
    stamps = rows.column("systemmodstamp").combine_chunks()
    new_record = _shifted_differs(ids)

    # Rules 2 and 7: a record's first observation starts a version, and so does each one whose
    # compared values differ from the previous observation's.
    starts = new_record
    for _, raw_name in compared:
        starts = pc.or_(starts, _shifted_differs(_raw_values(rows, raw_name)))
    start_rows = pc.indices_nonzero(starts)
    versions = len(start_rows)
    # Rule 4: a version's attributes come from its latest observation (the row before the next
    # version's start).
    last_rows = _then(pc.subtract(start_rows, 1), rows.num_rows - 1) if versions else start_rows
    # Rule 3: effective_to is the next version's effective_from, when it is the same record's.
    effective_from = stamps.take(start_rows)
    if versions:
        next_is_same_record = _then(pc.invert(new_record.take(start_rows)), False)
        effective_to = pc.if_else(
            next_is_same_record, _then(effective_from, None), pa.nulls(versions, stamps.type)
        )
    else:
        effective_to = effective_from
    columns: dict[str, pa.Array] = {spec.key_column: ids.take(start_rows)}
    for dimension_name, raw_name in [*carried, *compared]:
        columns[dimension_name] = _raw_values(rows, raw_name).take(last_rows)
    columns[VERSION_KEY] = effective_from
    columns["effective_to"] = effective_to
    columns["is_current"] = effective_to.is_null()
    return pa.table(columns)


def comparable(dim: pa.Table, spec: ObjectSpec) -> pa.Table:
    """The dimension's columns without scd_id, in the order expected_dimension() gives."""
    keys = [c for c in spec.dimension_columns if c != "scd_id"]
    return dim.select(keys).sort_by([(spec.key_column, "ascending"), (VERSION_KEY, "ascending")])


def duplicate_versions(dim: pa.Table, spec: ObjectSpec) -> int:
    """Rows beyond the first of each (key, effective_from) version."""
    distinct = dim.select([spec.key_column, VERSION_KEY]).group_by([spec.key_column, VERSION_KEY])
    return dim.num_rows - distinct.aggregate([]).num_rows


def versions_differing(
    expected: pa.Table, actual: pa.Table, spec: ObjectSpec
) -> tuple[list[str], int, int, int]:
    """(record ids, versions missing, unexpected, with other values): the versions of the two
    tables matched on (key, effective_from), every other column compared NULL-safely."""
    key = spec.key_column
    actual = actual.select(expected.column_names)
    # A column that is all NULL may be typed null (a join cannot carry that type): give it the
    # other table's type, or string when both are.
    for index, field in enumerate(expected.schema):
        if pa.types.is_null(field.type):
            other = actual.schema.field(field.name).type
            typed = pa.string() if pa.types.is_null(other) else other
            expected = expected.set_column(index, field.name, pa.nulls(expected.num_rows, typed))
    actual = actual.cast(expected.schema)
    marked_expected = expected.append_column("_in_expected", pa.repeat(True, expected.num_rows))
    marked_actual = actual.append_column("_in_actual", pa.repeat(True, actual.num_rows))
    joined = marked_expected.join(
        marked_actual,
        keys=[key, VERSION_KEY],
        join_type="full outer",
        right_suffix="__actual",
        coalesce_keys=True,
    )
    in_expected = pc.fill_null(joined.column("_in_expected"), False)
    in_actual = pc.fill_null(joined.column("_in_actual"), False)
    both = pc.and_(in_expected, in_actual)
    different = pa.repeat(False, joined.num_rows)
    for column in expected.column_names:
        if column in (key, VERSION_KEY):
            continue
        same = _null_safe_equal(joined.column(column), joined.column(f"{column}__actual"))
        different = pc.or_(different, pc.invert(same))
    different = pc.and_(different, both)
    missing = pc.and_(in_expected, pc.invert(in_actual))
    unexpected = pc.and_(in_actual, pc.invert(in_expected))
    wrong = pc.or_(pc.or_(missing, unexpected), different)
    records = pc.unique(joined.column(key).filter(wrong)).to_pylist()
    return sorted(records), _count(missing), _count(unexpected), _count(different)


def _count(flags: pa.ChunkedArray | pa.Array) -> int:
    return int(pc.sum(pc.cast(flags, pa.int64())).as_py() or 0)
