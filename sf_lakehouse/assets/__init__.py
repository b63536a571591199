"""Software-defined assets; group names are constants so the UI, jobs and tests agree."""

SALESFORCE_RAW_GROUP = "salesforce_raw"
CURATED_GROUP = "curated"
OWNERS = ["team:data-platform"]

RAW_USER_KEY = ("sf_raw", "sf_user")
DIMENSION_KEY = ("sf_curated", "dim_sf_user_scd")
