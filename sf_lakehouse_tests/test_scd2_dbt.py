"""The SCD2 rules of docs/design.md on the dimensions dbt builds for real (dbt-duckdb reading the
raw Iceberg tables and writing the dimensions back to Iceberg through the lakehouse plugin).

Crafted User histories check the rules one clause at a time; random histories of every object
(User, Account, Opportunity) are compared with the independent implementation of the rules in
`scd2_reference`; `as_of` is checked against it on every object.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sf_lakehouse.config import ObjectSpec, Settings, resolve_settings
from sf_lakehouse.config.environment import REPO_ROOT
from sf_lakehouse.config.objects import OBJECTS_DIR_NAME, load_object_specs, raw_column
from sf_lakehouse.lakehouse.tables import RAW_LAYOUT, append_rows, ensure_table, open_catalog
from sf_lakehouse_tests import scd2_reference as reference
from sf_lakehouse_tests.dbt_here import run_dbt_here
from sf_lakehouse_tests.tables import RAW_SCHEMA

T0 = dt.datetime(2026, 3, 1, 8)
RUN1 = dt.datetime(2026, 3, 2, 0)
RUN2 = dt.datetime(2026, 3, 3, 0)
SPECS = load_object_specs(REPO_ROOT / "config" / OBJECTS_DIR_NAME)
USER = next(spec for spec in SPECS if spec.api_name == "User")

U_SINGLE = "005000000000001AAA"
U_CHANGES = "005000000000002AAA"
U_NULLS = "005000000000003AAA"
U_OTHER_FIELDS = "005000000000004AAA"
U_REVERT = "005000000000005AAA"
U_REEXTRACTED = "005000000000006AAA"
U_BURST = "005000000000007AAA"
U_LONG_DIVISION = "005000000000008AAA"
# 30 CJK characters: 90 bytes of UTF-8, 270 once URL-encoded, more than a directory name may
# hold; the dimension is partitioned by a bucket of the id, so any value is fine.
LONG_DIVISION = "亚太区域销售与市场部门" * 3


def obs(
    user: str,
    hours: float,
    division: str | None,
    phase: str | None,
    *,
    extracted: dt.datetime = RUN1,
    username: str = "user",
    name: str = "Zoë O'Brien",
    active: bool = True,
    run_id: str = "run-1",
) -> dict:
    stamp = T0 + dt.timedelta(hours=hours)
    return {
        "id": user,
        "username": username,
        "name": name,
        "email": f"{username}@acme.example",
        "isactive": active,
        "division": division,
        "audit_phase__c": phase,
        "lastmodifieddate": stamp,
        "systemmodstamp": stamp,
        "_extracted_at": extracted,
        "_run_id": run_id,
    }


RAW_ROWS = [
    obs(U_SINGLE, 0, "EMEA", "Planning"),
    obs(U_CHANGES, 0, "EMEA", "Planning"),
    obs(U_CHANGES, 1, "APAC", "Planning"),
    obs(U_CHANGES, 2, "APAC", "Review"),
    obs(U_NULLS, 0, None, None),
    obs(U_NULLS, 1, None, None),
    obs(U_NULLS, 2, "EMEA", None),
    obs(U_NULLS, 3, None, None),
    obs(U_OTHER_FIELDS, 0, "EMEA", "Review", username="old", name="José Núñez"),
    obs(U_OTHER_FIELDS, 1, "EMEA", "Review", username="new", name="José Núñez-Ortiz", active=False),
    obs(U_REVERT, 0, "EMEA", "Review"),
    obs(U_REVERT, 1, "APAC", "Review"),
    obs(U_REVERT, 2, "EMEA", "Review"),
    obs(U_REEXTRACTED, 0, "LATAM", "Closed", username="first-read"),
    obs(
        U_REEXTRACTED, 0, "LATAM", "Closed", username="second-read", extracted=RUN2, run_id="run-2"
    ),
    obs(U_BURST, 0, "EMEA", "Fieldwork"),
    obs(U_BURST, 0.1 / 3600, "APAC", "Fieldwork"),
    obs(U_BURST, 0.9 / 3600, "APAC", "Fieldwork", username="burst-last"),
    obs(U_LONG_DIVISION, 0, "EMEA", "Planning"),
    obs(U_LONG_DIVISION, 1, LONG_DIVISION, "Planning"),
]


# --- the lakehouse --------------------------------------------------------------------------------


def write_raw(
    settings: Settings, spec: ObjectSpec, schema: pa.Schema, *batches: list[dict]
) -> None:
    """Append each batch to the object's raw table as one extraction run would."""
    catalog = open_catalog(settings.catalog_properties())
    identifier = settings.table_identifier(spec.raw_asset_key)
    table = ensure_table(catalog, identifier, schema, RAW_LAYOUT)
    for batch in batches:
        append_rows(table, pa.Table.from_pylist(batch, schema=schema))
        table = catalog.load_table(identifier)


def dbt_build(settings: Settings, *args: str) -> str:
    """`dbt build` (data tests included: they must pass); returns dbt's output."""
    result = run_dbt_here(settings, "build", *(args or ("--exclude-resource-type", "unit_test")))
    assert result.success, result.output[-4000:]
    return result.output


def read_dimension(settings: Settings, spec: ObjectSpec) -> list[dict]:
    catalog = open_catalog(settings.catalog_properties())
    table = catalog.load_table(settings.table_identifier(spec.dimension_asset_key))
    return table.scan().to_arrow().to_pylist()


def build_user_dimension(settings: Settings) -> list[dict]:
    dbt_build(settings, "--select", "+dim_sf_user_scd", "--exclude-resource-type", "unit_test")
    return read_dimension(settings, USER)


def versions_of(rows: list[dict], user: str) -> list[dict]:
    return sorted((r for r in rows if r["user_id"] == user), key=lambda r: r["effective_from"])


def sorted_items(row: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in row.items()))


# --- crafted User histories: one rule at a time -------------------------------------------------


@pytest.fixture(scope="module")
def dimension(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    settings = resolve_settings("local", home=tmp_path_factory.mktemp("scd") / "lakehouse")
    write_raw(settings, USER, RAW_SCHEMA, RAW_ROWS)
    return build_user_dimension(settings)


def test_whole_user_dimension_equals_the_rules_computed_independently(dimension):
    assert reference.comparable(USER, dimension) == reference.expected_dimension(USER, RAW_ROWS)


def test_user_dimension_keeps_its_columns(dimension):
    assert list(dimension[0]) == list(USER.dimension_columns)
    assert list(USER.dimension_columns) == [
        "scd_id",
        "user_id",
        "username",
        "name",
        "email",
        "is_active",
        "division",
        "audit_phase",
        "effective_from",
        "effective_to",
        "is_current",
    ]


def test_rule_1_a_re_extracted_version_counts_once_and_the_latest_extraction_wins(dimension):
    rows = versions_of(dimension, U_REEXTRACTED)
    assert [r["username"] for r in rows] == ["second-read"]


def test_rule_2_first_observation_starts_a_version(dimension):
    rows = versions_of(dimension, U_SINGLE)
    assert [(r["division"], r["effective_from"], r["is_current"]) for r in rows] == [
        ("EMEA", T0, True)
    ]


def test_rule_2_a_change_of_either_tracked_field_starts_a_version(dimension):
    rows = versions_of(dimension, U_CHANGES)
    assert [(r["division"], r["audit_phase"]) for r in rows] == [
        ("EMEA", "Planning"),
        ("APAC", "Planning"),
        ("APAC", "Review"),
    ]


def test_rule_2_comparison_is_null_safe(dimension):
    rows = versions_of(dimension, U_NULLS)
    # NULL -> NULL is no change; NULL -> EMEA and EMEA -> NULL are changes.
    assert [r["division"] for r in rows] == [None, "EMEA", None]
    assert rows[0]["effective_to"] == T0 + dt.timedelta(hours=2)


def test_rule_2_changes_of_other_fields_never_start_a_version(dimension):
    assert len(versions_of(dimension, U_OTHER_FIELDS)) == 1


def test_rule_2_a_revert_a_b_a_gives_three_versions(dimension):
    assert [r["division"] for r in versions_of(dimension, U_REVERT)] == ["EMEA", "APAC", "EMEA"]


def test_rule_2_changes_within_one_second_keep_their_milliseconds(dimension):
    rows = versions_of(dimension, U_BURST)
    assert [r["division"] for r in rows] == ["EMEA", "APAC"]
    assert rows[1]["effective_from"] - rows[0]["effective_from"] == dt.timedelta(milliseconds=100)


def test_a_long_non_ascii_tracked_value_is_stored(dimension):
    assert [r["division"] for r in versions_of(dimension, U_LONG_DIVISION)] == [
        "EMEA",
        LONG_DIVISION,
    ]


def test_rule_3_intervals_are_half_open_and_contiguous(dimension):
    for user in {r["user_id"] for r in dimension}:
        rows = versions_of(dimension, user)
        for earlier, later in itertools.pairwise(rows):
            assert earlier["effective_to"] == later["effective_from"]
            assert earlier["effective_to"] > earlier["effective_from"]
            assert earlier["is_current"] is False
        assert rows[-1]["effective_to"] is None and rows[-1]["is_current"] is True


def test_rule_4_attributes_come_from_the_latest_observation_in_the_version(dimension):
    [row] = versions_of(dimension, U_OTHER_FIELDS)
    assert (row["username"], row["name"], row["is_active"]) == ("new", "José Núñez-Ortiz", False)
    assert versions_of(dimension, U_BURST)[1]["username"] == "burst-last"


def test_rule_5_scd_id_is_unique_and_deterministic(dimension, tmp_path: Path):
    ids = [r["scd_id"] for r in dimension]
    assert len(ids) == len(set(ids)) and all(ids)
    again = resolve_settings("local", home=tmp_path / "again")
    write_raw(again, USER, RAW_SCHEMA, RAW_ROWS)
    assert sorted(r["scd_id"] for r in build_user_dimension(again)) == sorted(ids)


def test_rule_5_scd_id_is_the_hash_of_the_key_and_effective_from(dimension):
    """The id of dim_sf_user_scd stays what it was before the SCD2 macro: md5 of
    `<user_id>|<effective_from as DuckDB's varchar>`."""
    for row in dimension:
        # DuckDB's varchar of a timestamp drops trailing zeros of the fraction.
        stamp = row["effective_from"].strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".")
        text = f"{row['user_id']}|{stamp}"
        assert row["scd_id"] == hashlib.md5(text.encode()).hexdigest()


def test_rule_6_result_depends_only_on_the_set_of_raw_rows(dimension, tmp_path: Path):
    """Rows arriving shuffled over two runs (with a rebuild in between) give the same table."""
    shuffled = list(RAW_ROWS)
    random.Random(3).shuffle(shuffled)
    incremental = resolve_settings("local", home=tmp_path / "incremental")
    write_raw(incremental, USER, RAW_SCHEMA, shuffled[:9])
    build_user_dimension(incremental)
    write_raw(incremental, USER, RAW_SCHEMA, shuffled[9:])
    rebuilt = build_user_dimension(incremental)
    assert sorted(map(sorted_items, rebuilt)) == sorted(map(sorted_items, dimension))


# --- random histories of every object -------------------------------------------------------------

# Raw column types as the extraction's describe() gives them; every other field is a string.
FIELD_TYPES = {"isactive": pa.bool_(), "amount": pa.float64(), "closedate": pa.date32()}
IGNORED_FIELD = "description"  # extracted, but neither tracked nor carried
TEXT_VALUES = [None, "A", "B", "Zoë", LONG_DIVISION, "x/y=z%"]
VALUES = {
    "isactive": [None, True, False],
    "amount": [None, 0.0, 100.5, 2500.0],
    "closedate": [None, dt.date(2026, 4, 1), dt.date(2026, 5, 1)],
}


def random_schema(spec: ObjectSpec) -> pa.Schema:
    fields = [pa.field("id", pa.string())]
    for field in (*spec.track, *spec.carry):
        column = raw_column(field)
        fields.append(pa.field(column, FIELD_TYPES.get(column, pa.string())))
    if spec.deletions:
        fields.append(pa.field("isdeleted", pa.bool_()))
    fields += [
        pa.field(IGNORED_FIELD, pa.string()),
        pa.field("systemmodstamp", pa.timestamp("us")),
        pa.field("_extracted_at", pa.timestamp("us")),
        pa.field("_run_id", pa.string()),
    ]
    return pa.schema(fields)


def random_value(rng: random.Random, column: str) -> Any:
    return rng.choice(VALUES.get(column, TEXT_VALUES))


def random_history(spec: ObjectSpec, seed: int, records: int = 30) -> list[dict]:
    """Raw rows of random record histories: tracked and carried changes (NULLs, reverts, long
    non-ASCII values), changes of other fields only, deletions and undeletes, re-extractions of a
    version (the later read differing), millisecond gaps and stamps shared across records."""
    rng = random.Random(f"{spec.api_name}-{seed}")
    tracked = [raw_column(f) for f in spec.track]
    carried = [raw_column(f) for f in spec.carry]
    rows: list[dict] = []
    for number in range(records):
        record_id = f"{spec.id_prefix}{number:012d}AAA"
        stamp = T0 + dt.timedelta(minutes=rng.randrange(0, 600, 30))
        current = {c: random_value(rng, c) for c in (*tracked, *carried)}
        deleted: bool | None = None if spec.deletions else False
        for _ in range(rng.randint(1, 8)):
            roll = rng.random()
            if roll < 0.4:
                changed = rng.choice(tracked)
                current[changed] = random_value(rng, changed)
            elif roll < 0.7 and carried:
                changed = rng.choice(carried)
                current[changed] = random_value(rng, changed)
            elif roll < 0.85 and spec.deletions:
                deleted = not deleted
            row = {
                "id": record_id,
                **current,
                IGNORED_FIELD: f"note {rng.random()}",
                "systemmodstamp": stamp,
            }
            if spec.deletions:
                row["isdeleted"] = deleted if deleted or rng.random() < 0.5 else None
            read_after = dt.timedelta(minutes=rng.randint(1, 120))
            rows.append(row | {"_extracted_at": stamp + read_after})
            if rng.random() < 0.2:  # read again by a later run, with other carried values
                again = row | {c: random_value(rng, c) for c in carried}
                rows.append(again | {"_extracted_at": stamp + read_after * 2})
            gap = rng.choice([1, 7, 250, 60_000, 3_600_000])  # milliseconds
            stamp += dt.timedelta(milliseconds=gap)
    rng.shuffle(rows)
    for row in rows:
        row["_run_id"] = "run-" + row["_extracted_at"].strftime("%Y%m%d%H%M%S%f")
    return rows


def histories(seed: int) -> dict[str, list[dict]]:
    return {spec.api_name: random_history(spec, seed) for spec in SPECS}


def write_histories(settings: Settings, rows: dict[str, list[dict]], *, splits: int = 1) -> None:
    for spec in SPECS:
        object_rows = rows[spec.api_name]
        size = -(-len(object_rows) // splits)
        batches = [object_rows[i : i + size] for i in range(0, len(object_rows), size)]
        write_raw(settings, spec, random_schema(spec), *batches)


@pytest.fixture(scope="module")
def random_lakehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict, str]:
    """Every object's random history, built by one full `dbt build` (unit tests included)."""
    settings = resolve_settings("local", home=tmp_path_factory.mktemp("random") / "lakehouse")
    rows = histories(seed=1)
    write_histories(settings, rows)
    output = dbt_build(settings, "--exclude-resource-type", "analysis")
    return settings, rows, output


def test_dbt_unit_tests_of_the_rules_pass(random_lakehouse) -> None:
    output = random_lakehouse[2]
    passed = [line for line in output.splitlines() if " PASS " in line and "::rule_" in line]
    assert sum("dim_sf_user_scd::rule_" in line for line in passed) == 6, output[-3000:]
    assert sum("dim_sf_account_scd::rule_7_" in line for line in passed) == 5, output[-3000:]


def test_every_dbt_data_test_of_the_dimensions_ran_and_passed(random_lakehouse) -> None:
    output = random_lakehouse[2]
    for spec in SPECS:
        for test in ("scd_id_unique", "one_current_row", "contiguous_intervals"):
            assert any(
                " PASS " in line and f" {spec.name}_{test} " in line for line in output.splitlines()
            ), f"{test} of {spec.dimension_model} did not pass"


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.api_name)
def test_random_histories_give_the_dimension_the_rules_define(random_lakehouse, spec) -> None:
    settings, rows, _ = random_lakehouse
    built = read_dimension(settings, spec)
    expected = reference.expected_dimension(spec, rows[spec.api_name])
    assert list(built[0]) == list(spec.dimension_columns)
    assert reference.comparable(spec, built) == expected
    ids = [r["scd_id"] for r in built]
    assert len(set(ids)) == len(ids) and all(ids)
    # The histories exercise what they are meant to.
    assert len(expected) > len({r[spec.key_column] for r in expected}) > 20
    if spec.deletions:
        assert any(r["is_deleted"] and not r["is_current"] for r in expected)
        assert any(r["is_deleted"] and r["is_current"] for r in expected)


def test_dimensions_are_partitioned_by_is_current_and_a_bucket_of_the_id(random_lakehouse):
    settings, _, _ = random_lakehouse
    catalog = open_catalog(settings.catalog_properties())
    for spec in SPECS:
        table = catalog.load_table(settings.table_identifier(spec.dimension_asset_key))
        fields = [(f.name, str(f.transform)) for f in table.spec().fields]
        assert fields == [("is_current", "identity"), (f"{spec.key_column}_bucket", "bucket[16]")]
        assert table.properties["write.parquet.compression-codec"] == "zstd"


def test_random_histories_over_two_runs_in_another_order_give_the_same_tables(
    random_lakehouse, tmp_path: Path
) -> None:
    """Rules 5 and 6: the same raw rows, shuffled and split over two runs with a build between,
    give identical tables, scd_id included."""
    settings, rows, _ = random_lakehouse
    shuffled = {}
    for name, object_rows in rows.items():
        shuffled[name] = list(object_rows)
        random.Random(7).shuffle(shuffled[name])
    incremental = resolve_settings("local", home=tmp_path / "incremental")
    first = {name: r[: len(r) // 3] for name, r in shuffled.items()}
    rest = {name: r[len(r) // 3 :] for name, r in shuffled.items()}
    write_histories(incremental, first)
    dbt_build(incremental)
    write_histories(incremental, rest, splits=2)
    dbt_build(incremental)
    for spec in SPECS:
        again = read_dimension(incremental, spec)
        once = read_dimension(settings, spec)
        assert sorted(map(sorted_items, again)) == sorted(map(sorted_items, once)), spec.api_name


# --- as_of ---------------------------------------------------------------------------------------


def probe_instants(versions: Sequence[dict]) -> list[dt.datetime]:
    """Instants where as_of can go wrong: each boundary, just before it, and far outside."""
    boundaries = sorted({v["effective_from"] for v in versions})
    picked = boundaries[:: max(1, len(boundaries) // 12)]
    instants = {T0 - dt.timedelta(days=1), max(boundaries) + dt.timedelta(days=1)}
    for boundary in picked:
        instants |= {boundary, boundary - dt.timedelta(microseconds=1)}
    return sorted(instants)


def sql_timestamp(instant: dt.datetime) -> str:
    return f"timestamp '{instant.isoformat(sep=' ')}'"


def test_as_of_gives_each_records_version_in_effect_on_every_object(random_lakehouse) -> None:
    settings, rows, _ = random_lakehouse
    probes: list[tuple[ObjectSpec, int, dt.datetime]] = []
    selects = []
    for spec in SPECS:
        expected = reference.expected_dimension(spec, rows[spec.api_name])
        for instant in probe_instants(expected):
            probes.append((spec, len(probes), instant))
            selects.append(
                f"select '{spec.api_name}' as object_name, {len(probes) - 1} as probe, "
                f"{spec.key_column} as record_id, effective_from "
                f"from {{{{ as_of(ref('{spec.dimension_model}'), \"{sql_timestamp(instant)}\") }}}}"
            )
    result = run_dbt_here(
        settings,
        "show",
        "--inline",
        "\nunion all\n".join(selects),
        "--limit",
        "-1",
        "--output",
        "json",
    )
    assert result.success, result.output[-3000:]
    shown = next(e["data"]["preview"] for e in result.events if "preview" in e["data"])
    got: dict[int, dict[str, str]] = {}
    for row in json.loads(shown):
        got.setdefault(row["probe"], {})[row["record_id"]] = row["effective_from"]
    for spec, probe, instant in probes:
        expected = reference.expected_dimension(spec, rows[spec.api_name])
        wanted = {
            record: stamp.isoformat()
            for record, stamp in reference.effective_at(spec, expected, instant).items()
        }
        assert {k: normalized(v) for k, v in got.get(probe, {}).items()} == wanted, (
            spec.api_name,
            instant,
        )


def normalized(shown: str) -> str:
    """dbt show's JSON timestamp as datetime.isoformat() spells it."""
    return dt.datetime.fromisoformat(shown).isoformat()
