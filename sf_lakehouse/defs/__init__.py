"""Dagster definitions built from the object specs: asset, check, job, schedule and sensor
factories, the dbt assets, and the resources. `sf_lakehouse.definitions` assembles them."""

SALESFORCE_RAW_GROUP = "salesforce_raw"
CURATED_GROUP = "curated"
OWNERS = ["team:data-platform"]
