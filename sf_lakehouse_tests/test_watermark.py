"""The watermark (issue 16, item 8): the highest cursor value not later than the org's clock when
it was read, stored with the rows each run commits. A version stamped after the org's clock is
stored and reported but never moves it, so the changes between two runs are never lost.

The emulator's `future_stamp` fault serves a record stamped `seconds` after the response's Date
(the org's clock): clock skew or an imported history, as a real org can send."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from sf_lakehouse.config import Settings
from sf_lakehouse.defs.raw import build_raw_asset
from sf_lakehouse.defs.resources import build_resources
from sf_lakehouse.extraction import read_watermark
from sf_lakehouse.lakehouse.tables import open_catalog
from sf_lakehouse_tests.histories import at, user

A, F, B = "005000000000000AAA", "005000000000000FFF", "005000000000000BBB"
ORG_CLOCK = at(120)  # the org's clock at the first run


def materialize_user(settings: Settings) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [build_raw_asset(settings, settings.object("User"))],
        resources=build_resources(settings),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def raw_keys(settings: Settings) -> set[tuple[str, dt.datetime]]:
    catalog = open_catalog(settings.catalog_properties())
    rows = catalog.load_table("sf_raw_local.sf_user").scan().to_arrow().to_pylist()
    return {(r["id"], r["systemmodstamp"]) for r in rows}


def naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def test_watermark_is_capped_at_the_org_clock(settings: Settings, connected) -> None:
    """Run 1 reads A (2 h before the org's clock), F (1 h before, served 1 h AFTER the clock
    by the fault) and B (exactly at the clock): the stored watermark is the org's clock, F is
    stored and reported. Between the runs A and B change; run 2 (clock 30 min later, lookback
    5 min) stores both changes. Before the fix the watermark was max(systemmodstamp) = F's
    future stamp, so run 2 read only its last 5 minutes and lost both changes with exit 0."""
    history = [
        user(A, 0, "EMEA"),
        user(F, 60, "APAC"),
        user(B, 120, "LATAM"),
        user(A, 130, "AMER"),  # changes between the runs
        user(B, 140, "EMEA"),
    ]
    emulator = connected(history, ORG_CLOCK)
    # Records come ordered by SystemModstamp: the 2nd of the page (F) gets the future stamp.
    emulator.set_faults(
        {"seed": 1, "faults": [{"kind": "future_stamp", "seconds": 3600, "every": 2}]}
    )
    first = materialize_user(settings)
    assert first.success
    assert emulator.fault_report()["injected"]["future_stamp"] == 1
    catalog = open_catalog(settings.catalog_properties())
    table = catalog.load_table("sf_raw_local.sf_user")
    assert read_watermark(table, "systemmodstamp") == naive(ORG_CLOCK)
    future = naive(ORG_CLOCK + dt.timedelta(hours=1))
    assert (F, future) in raw_keys(settings)  # stored, never dropped
    [materialization] = first.asset_materializations_for_node("sf_raw__sf_user")
    assert materialization.metadata["future_stamped_versions"].value == 1

    emulator.clear_faults()
    emulator.set_clock(at(150))
    second = materialize_user(settings)
    assert second.success
    keys = raw_keys(settings)
    assert {(A, naive(at(130))), (B, naive(at(140)))} <= keys  # the changes between the runs
    table = catalog.load_table("sf_raw_local.sf_user")
    assert read_watermark(table, "systemmodstamp") == naive(at(140))
