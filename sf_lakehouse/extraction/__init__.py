"""Incremental extraction of Salesforce records into the append-only raw table (no Dagster: the
AWS Glue job runs it too).

- `cursor`: the cursor rule (watermark, lookback, never past the org's clock), the SOQL, and
  which versions are new.
- `increment`: `extract_increment` — REST or Bulk API 2.0 by estimate, page by page into Arrow,
  returning the rows to append, the rejects and the run's metadata; it writes nothing.
- `rejects`: the per-object rejects table `sf_<object>_rejects` (schema, layout, one append).
- `type_changes`: a field whose type changed in the org (widen its column or open a new one).
- `store`: `store_increment`, the one write of a run (rejects, type change, rows + watermark).
- `reextract`: which stored versions a re-extract reads again.
"""

from sf_lakehouse.extraction.cursor import (
    EXTRACTED_AT,
    RUN_ID,
    VERSION_KEY,
    VersionFilter,
    build_count_soql,
    build_extraction_soql,
    capped,
    existing_versions,
    extraction_start,
    only_new_versions,
    raw_table_schema,
    read_watermark,
    watermark_properties,
)
from sf_lakehouse.extraction.increment import (
    BULK,
    REST,
    ConversionError,
    CursorValueError,
    ExtractionError,
    Increment,
    api_label,
    choose_api,
    extract_increment,
)
from sf_lakehouse.extraction.rejects import (
    REJECTS_LAYOUT,
    REJECTS_SCHEMA,
    rejects_identifier,
    rejects_table_name,
    store_rejects,
    with_run_columns,
    write_rejects,
)
from sf_lakehouse.extraction.store import store_increment
from sf_lakehouse.extraction.type_changes import TypeChange, recorded_changes

__all__ = [
    "BULK",
    "EXTRACTED_AT",
    "REJECTS_LAYOUT",
    "REJECTS_SCHEMA",
    "REST",
    "RUN_ID",
    "VERSION_KEY",
    "ConversionError",
    "CursorValueError",
    "ExtractionError",
    "Increment",
    "TypeChange",
    "VersionFilter",
    "api_label",
    "build_count_soql",
    "build_extraction_soql",
    "capped",
    "choose_api",
    "existing_versions",
    "extract_increment",
    "extraction_start",
    "only_new_versions",
    "raw_table_schema",
    "read_watermark",
    "recorded_changes",
    "rejects_identifier",
    "rejects_table_name",
    "store_increment",
    "store_rejects",
    "watermark_properties",
    "with_run_columns",
    "write_rejects",
]
