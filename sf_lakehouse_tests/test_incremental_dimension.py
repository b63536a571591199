"""Rule 8: the incrementally maintained dimensions equal a rebuild from the whole raw table after
every run, whatever the order in which rows arrive. A stateful property (hypothesis,
`rule8_machine`): appends of random histories in any order (late rows), replays, re-reads with
other values, ties of extraction time, full refreshes and model changes, deletions and undeletes;
dbt runs for real on DuckDB through the lakehouse plugin, and each run's dimension is compared
with the tests' own implementation of the rules. The Athena path runs the same machine in
`test_athena_execution.py`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sf_lakehouse.config import ObjectSpec, Settings, resolve_settings
from sf_lakehouse.lakehouse.increments import (
    BUILD_PROPERTY,
    CODE_VERSION_PROPERTY,
    snapshot_property,
)
from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse_tests import scd2_reference as reference
from sf_lakehouse_tests.rule8_machine import Rule8Machine, run_machine
from sf_lakehouse_tests.test_scd2_dbt import (
    SPECS,
    dbt_build,
    random_history,
    random_schema,
    read_dimension,
    write_raw,
)

BY_NAME = {spec.api_name: spec for spec in SPECS}
DEFAULT_EXAMPLES, NIGHTLY_EXAMPLES = 2, 200


def build(settings: Settings, spec: ObjectSpec, *args: str) -> None:
    dbt_build(
        settings,
        "--select",
        f"+{spec.dimension_model}",
        "--exclude-resource-type",
        "unit_test",
        *args,
    )


def dimension_table(settings: Settings, spec: ObjectSpec):
    catalog = open_catalog(settings.catalog_properties())
    return catalog.load_table(settings.table_identifier(spec.dimension_asset_key))


def assert_equals_a_rebuild(settings: Settings, spec: ObjectSpec, raw_so_far: list[dict]) -> None:
    rows = read_dimension(settings, spec)
    assert reference.comparable(spec, rows) == reference.expected_dimension(spec, raw_so_far)
    assert len({r["scd_id"] for r in rows}) == len(rows)


class LocalBackend:
    """rule8_machine's Backend on the local path: raw appends through the pipeline's own append
    (which drops reads that add nothing), dbt-duckdb builds through the lakehouse plugin."""

    def __init__(self, home: Path) -> None:
        self.settings = resolve_settings("local", home=home)

    def append(self, spec: ObjectSpec, rows: list[dict]) -> None:
        write_raw(self.settings, spec, random_schema(spec), rows)

    def build(self, spec: ObjectSpec, committed_at: dt.datetime, *, full: bool) -> str:
        build(self.settings, spec, *(["--full-refresh"] if full else []))
        return snapshot_property(dimension_table(self.settings, spec), BUILD_PROPERTY)

    def model_changed(self, spec: ObjectSpec) -> None:
        """A dimension built by other model code: the next build rebuilds it in full."""
        with dimension_table(self.settings, spec).transaction() as tx:
            tx.set_properties({CODE_VERSION_PROPERTY: "older-model"})

    def raw(self, spec: ObjectSpec) -> list[dict]:
        catalog = open_catalog(self.settings.catalog_properties())
        table = catalog.load_table(self.settings.table_identifier(spec.raw_asset_key))
        return table.scan().to_arrow().to_pylist()

    def dimension(self, spec: ObjectSpec) -> list[dict]:
        return read_dimension(self.settings, spec)


def local_machine(tmp_path_factory: pytest.TempPathFactory) -> type[Rule8Machine]:
    class LocalRule8(Rule8Machine):
        records = 6

        @staticmethod
        def make_backend() -> LocalBackend:
            return LocalBackend(tmp_path_factory.mktemp("rule8") / "lakehouse")

    return LocalRule8


def test_incremental_dimension_equals_a_rebuild_after_every_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The stateful property on real dbt builds (each step is one): a few examples here."""
    run_machine(local_machine(tmp_path_factory), examples=DEFAULT_EXAMPLES, steps=4)


@pytest.mark.nightly
def test_incremental_dimension_state_machine_nightly(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    run_machine(local_machine(tmp_path_factory), examples=NIGHTLY_EXAMPLES, steps=6)


def test_only_changed_records_are_rewritten_and_a_quiet_run_writes_nothing(
    tmp_path: Path,
) -> None:
    spec = BY_NAME["User"]
    settings_ = resolve_settings("local", home=tmp_path / "lakehouse")
    rows = random_history(spec, 3, records=20)
    first = [r for r in rows if not r["id"].endswith("00000000000AAA")]
    late = [r for r in rows if r["id"].endswith("00000000000AAA")]
    write_raw(settings_, spec, random_schema(spec), first)
    build(settings_, spec)
    before = {r["scd_id"]: r for r in read_dimension(settings_, spec)}
    snapshots = len(dimension_table(settings_, spec).snapshots())

    build(settings_, spec)  # nothing new in the raw table: no commit at all
    assert len(dimension_table(settings_, spec).snapshots()) == snapshots

    write_raw(settings_, spec, random_schema(spec), late)
    build(settings_, spec)
    assert_equals_a_rebuild(settings_, spec, first + late)
    after = {r["scd_id"]: r for r in read_dimension(settings_, spec)}
    untouched = {k: v for k, v in after.items() if v["user_id"] != late[0]["id"]}
    assert untouched == {k: v for k, v in before.items() if v["user_id"] != late[0]["id"]}


def test_full_refresh_and_a_changed_model_rebuild_everything(tmp_path: Path) -> None:
    spec = BY_NAME["Account"]
    settings_ = resolve_settings("local", home=tmp_path / "lakehouse")
    rows = random_history(spec, 5, records=10)
    write_raw(settings_, spec, random_schema(spec), rows)
    build(settings_, spec)
    build(settings_, spec, "--full-refresh")
    table = dimension_table(settings_, spec)
    assert snapshot_property(table, BUILD_PROPERTY) == "full"
    assert_equals_a_rebuild(settings_, spec, rows)
    # A dimension built by other code (another code version) is rebuilt in full.
    with table.transaction() as tx:
        tx.set_properties({CODE_VERSION_PROPERTY: "older-model"})
    more = random_history(spec, 6, records=3)
    write_raw(settings_, spec, random_schema(spec), more)
    build(settings_, spec)
    table = dimension_table(settings_, spec)
    assert snapshot_property(table, BUILD_PROPERTY) == "full"
    assert snapshot_property(table, CODE_VERSION_PROPERTY) != "older-model"
    assert_equals_a_rebuild(settings_, spec, rows + more)
