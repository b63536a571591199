"""`dagster dev` from the repository root serves the code location with both assets and checks."""

from __future__ import annotations

import os
from pathlib import Path

from sf_lakehouse_tests.dagster_dev import dagster_dev

ASSETS_QUERY = """
{ assetNodes {
    assetKey { path }
    groupName
    assetChecksOrError { ... on AssetChecks { checks { name } } }
} }
"""


def test_dagster_dev_lists_the_assets_and_their_checks(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SF_")}
    env["SF_LAKEHOUSE_HOME"] = str(tmp_path / "lakehouse")
    with dagster_dev(tmp_path, env) as server:
        nodes = server.graphql(ASSETS_QUERY)["assetNodes"]
    by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    assert {"sf_raw/sf_user", "sf_curated/dim_sf_user_scd"} <= set(by_key)
    assert by_key["sf_raw/sf_user"]["groupName"] == "salesforce_raw"
    checks = {
        c["name"] for c in by_key["sf_curated/dim_sf_user_scd"]["assetChecksOrError"]["checks"]
    }
    assert "unique_dim_sf_user_scd_scd_id" in checks
    assert "exactly_one_current_row_dim_sf_user_scd_user_id" in checks
