"""Arrow schemas of the raw table's core columns and of the dimension, for crafted test data."""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("us")

RAW_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("username", pa.string()),
        ("name", pa.string()),
        ("email", pa.string()),
        ("isactive", pa.bool_()),
        ("division", pa.string()),
        ("audit_phase__c", pa.string()),
        ("lastmodifieddate", TIMESTAMP),
        ("systemmodstamp", TIMESTAMP),
        ("_extracted_at", TIMESTAMP),
        ("_run_id", pa.string()),
    ]
)

DIMENSION_SCHEMA = pa.schema(
    [
        ("scd_id", pa.string()),
        ("user_id", pa.string()),
        ("username", pa.string()),
        ("name", pa.string()),
        ("email", pa.string()),
        ("is_active", pa.bool_()),
        ("division", pa.string()),
        ("audit_phase", pa.string()),
        ("effective_from", TIMESTAMP),
        ("effective_to", TIMESTAMP),
        ("is_current", pa.bool_()),
    ]
)
