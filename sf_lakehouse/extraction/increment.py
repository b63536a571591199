"""One extraction run of one object: what it reads, over which API, and what it will append.

`extract_increment` writes nothing. It chooses REST or Bulk API 2.0 from a `SELECT COUNT()` of
exactly what the run reads, converts page by page (Bulk CSV straight into Arrow), keeps only new
versions per page, and returns the rows, the rejects and the run's facts. Any failure raises
before anything is appended, so a failed run leaves the raw table and its watermark unmoved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.table import Table

from sf_lakehouse.config import ObjectSpec
from sf_lakehouse.extraction.cursor import (
    VersionFilter,
    WatermarkTracker,
    build_count_soql,
    build_extraction_soql,
    capped,
    extraction_start,
    raw_table_schema,
    read_watermark,
    version_keys,
)
from sf_lakehouse.extraction.rejects import REJECTS_SCHEMA, with_run_columns
from sf_lakehouse.extraction.type_changes import TypeChange, plan_columns
from sf_lakehouse.redact import shorten
from sf_lakehouse.salesforce.client import SalesforceClient
from sf_lakehouse.salesforce.convert import Converted, csv_to_arrow, records_to_converted
from sf_lakehouse.salesforce.errors import QueryLocatorInvalid, SalesforceApiError
from sf_lakehouse.salesforce.types import FieldSpec, select_fields

REST, BULK = "rest", "bulk"


class ExtractionError(RuntimeError):
    """The run read something it must not store; nothing was appended."""


class ConversionError(ExtractionError):
    """A value did not convert and `extraction.on_conversion_error` is `fail`."""


class CursorValueError(ExtractionError):
    """A record's cursor (or Id / SystemModstamp) is missing or unreadable: it cannot be placed
    in time, so the run stops instead of moving the watermark past it."""


@dataclass(frozen=True)
class Increment:
    """What one extraction run read and what it will append."""

    object_name: str
    api: str
    rows: pa.Table
    rejects: pa.Table
    soql: str
    fetched: int
    since: dt.datetime | None
    watermark_before: dt.datetime | None
    watermark_after: dt.datetime | None
    fields: tuple[FieldSpec, ...]
    api_calls: int
    estimate: int | None = None
    server_time: dt.datetime | None = None
    pages: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    cursor_column: str = "systemmodstamp"
    run_id: str = ""
    type_changes: tuple[TypeChange, ...] = ()
    future_versions: int = 0  # read stamped after the org's clock: stored, never followed
    latest_future: dt.datetime | None = None
    corrections: int = 0  # stored versions read again (re-extract) with a set-aside value

    @property
    def appended(self) -> int:
        return self.rows.num_rows

    @property
    def rejected(self) -> int:
        return self.rejects.num_rows

    def summary(self) -> str:
        rejected = f"; {self.rejected} values set aside" if self.rejected else ""
        corrected = f"; {self.corrections} corrected" if self.corrections else ""
        return (
            f"Fetched {self.fetched} {self.object_name} records ({self.api}, {self.pages} pages) "
            f"since {self.since or 'the beginning'}; {self.appended} are new versions"
            f"{corrected}{rejected}."
        )

    def future_warning(self) -> str | None:
        """One line when versions were stamped after the org's clock (None otherwise)."""
        if not self.future_versions:
            return None
        return (
            f"{self.object_name}: {self.future_versions} version(s) stamped after the org's clock "
            f"(latest {self.latest_future}, the org said {self.server_time}): stored, but the "
            f"watermark stays at {self.watermark_after} so nothing changed before them is skipped"
        )

    def metadata(self, api_usage: dict[str, int] | None = None) -> dict[str, object]:
        """Per-run facts, as plain values (the in-process asset and the Glue job both report
        these; datetimes are naive UTC or None)."""
        usage = api_usage or {}
        return {
            "object": self.object_name,
            "api": self.api,
            "rows_extracted": self.fetched,
            "rows_appended": self.appended,
            "rows_rejected": self.rejected,
            "estimated_records": self.estimate,
            "pages": self.pages,
            "bytes": self.stats.get("bytes", 0),
            "watermark": self.watermark_after,
            "previous_watermark": self.watermark_before,
            "query_start": self.since,
            "server_time": self.server_time,
            "api_calls": self.api_calls,
            "retries": self.stats.get("retries", 0),
            "rate_limited": self.stats.get("rate_limited", 0),
            "relogins": self.stats.get("relogins", 0),
            "query_restarts": self.stats.get("query_restarts", 0),
            "bulk_jobs": list(self.stats.get("bulk_jobs", [])),
            "org_api_usage": usage.get("used", 0),
            "org_api_limit": usage.get("limit", 0),
            "fields": [f.name for f in self.fields],
            "soql": self.soql,
            "future_stamped_versions": self.future_versions,
            "type_changes": [c.describe() for c in self.type_changes],
        }


def choose_api(spec: ObjectSpec, estimate: int | None) -> str:
    """REST or Bulk: forced by `extraction.api`, else Bulk from `bulk_threshold` records on."""
    options = spec.extraction
    if options.api != "auto":
        return options.api
    if options.bulk_threshold == 0:
        return BULK
    return BULK if estimate is not None and estimate >= options.bulk_threshold else REST


def api_label(api: str, deletions: bool) -> str:
    """`rest_query`, `rest_queryAll`, `bulk_query`, `bulk_queryAll`."""
    return f"{api}_{'queryAll' if deletions else 'query'}"


class _Reader:
    """The pages of one run's query, as converted batches; restarts the query from the highest
    cursor value seen when its locator is gone (the version filter drops the repeats)."""

    def __init__(
        self, client: SalesforceClient, spec: ObjectSpec, fields: Sequence[FieldSpec], api: str
    ) -> None:
        self.client, self.spec, self.fields, self.api = client, spec, fields, api
        self.pages = self.restarts = 0
        self.bulk_jobs: list[str] = []
        self.last_cursor: dt.datetime | None = None

    def batches(self, since: dt.datetime | None) -> Iterator[Converted]:
        start = since
        while True:
            soql = build_extraction_soql(self.spec.api_name, self.fields, self.spec.cursor, start)
            try:
                yield from self._pages(soql)
                return
            except QueryLocatorInvalid as error:
                self.restarts += 1
                if self.restarts > self.client.policy.max_retries:
                    raise SalesforceApiError(
                        f"{self.spec.api_name}: restarted the query {self.restarts - 1} times "
                        f"and its locator was invalid again ({error}); try again later"
                    ) from None
                if self.last_cursor is not None:
                    start = self.last_cursor

    def _pages(self, soql: str) -> Iterator[Converted]:
        options = self.spec.extraction
        if self.api == BULK:
            job = self.client.bulk_query(self.spec.api_name)
            pages = job.pages(
                soql, include_deleted=self.spec.deletions, page_size=options.bulk_page_size
            )
            for page in pages:
                if job.job_id and job.job_id not in self.bulk_jobs:
                    self.bulk_jobs.append(job.job_id)
                self.pages += 1
                yield csv_to_arrow(page.data, self.fields)
            return
        for records in self.client.query_pages(
            soql, options.page_size, include_deleted=self.spec.deletions
        ):
            self.pages += 1
            yield records_to_converted(records, self.fields)


def _check_placeable(batch: Converted, spec: ObjectSpec) -> None:
    """Every record needs an Id, a SystemModstamp and a cursor value to be placed in time."""
    required = {"Id", "SystemModstamp", spec.cursor}
    for reject in batch.rejects.to_pylist():
        if reject["field"] in required:
            raise CursorValueError(
                f"{spec.api_name} record {reject['id']} has an unreadable {reject['field']} "
                f"{shorten(reject['value'])}: it cannot be placed in time, so the run stops "
                f"without moving the watermark; fix the record's {reject['field']} in Salesforce"
            )
    for name in ("id", "systemmodstamp", spec.cursor.lower()):
        column = batch.table.column(name)
        if column.null_count:
            first = pc.index(pc.is_null(column), True).as_py()
            record = batch.table.column("id")[first].as_py() or f"#{first + 1} of a page"
            raise CursorValueError(
                f"{spec.api_name} record {record} has no {name}: it cannot be placed in time, so "
                "the run stops without moving the watermark; fix the record in Salesforce"
            )


def _fail_on_rejects(batch: Converted, spec: ObjectSpec) -> None:
    first = batch.rejects.slice(0, 1).to_pylist()[0]
    raise ConversionError(
        f"{spec.api_name} record {first['id']}: {first['field']} = "
        f"{shorten(first['value'])} does not convert ({first['reason']}); "
        f"{batch.rejects.num_rows} such value(s) in this page, "
        "nothing was appended (extraction.on_conversion_error: fail; `reject` keeps them in "
        f"sf_{spec.name}_rejects instead)"
    )


def extract_increment(
    client: SalesforceClient,
    raw_table: Table | None,
    spec: ObjectSpec,
    *,
    run_id: str,
    extracted_at: dt.datetime,
    since: dt.datetime | None = None,
    reread: frozenset[str] = frozenset(),
) -> Increment:
    """Read the next increment of one object from Salesforce; nothing is written here. Objects
    with deletions are read with queryAll, so deleted records arrive with `IsDeleted` true.

    `since` (re-extract) reads from there instead of the watermark's lookback; `reread` names
    stored versions (`version_keys`) to read again when their values now all convert."""
    before = client.stats()
    described = client.describe(spec.api_name)
    fields_now, changes = plan_columns(
        select_fields(described, spec.extracted_fields, spec.api_name),
        raw_table,
        object_name=spec.api_name,
        policy=spec.extraction.on_type_change,
        run_id=run_id,
        now=extracted_at,
    )
    fields = tuple(fields_now)
    cursor_column = spec.cursor.lower()
    watermark = read_watermark(raw_table, cursor_column)
    if since is None:
        since = extraction_start(capped(watermark, client.server_time), spec.lookback_seconds)
    else:
        since = since.astimezone(dt.UTC).replace(tzinfo=None) if since.tzinfo else since
    estimate = None
    if spec.extraction.api == "auto" and spec.extraction.bulk_threshold > 0:
        estimate = client.count(
            build_count_soql(spec.api_name, spec.cursor, since), include_deleted=spec.deletions
        )
    reader = _Reader(client, spec, fields, choose_api(spec, estimate))
    versions = VersionFilter(raw_table, since, reread=reread)
    tracker = WatermarkTracker(watermark)
    kept: list[pa.Table] = []
    rejected: list[pa.Table] = []
    fetched = 0
    for batch in reader.batches(since):
        _check_placeable(batch, spec)
        fetched += batch.records
        if batch.records:
            cursor = batch.table.column(cursor_column)
            highest = pc.max(cursor).as_py()
            reader.last_cursor = max(filter(None, (reader.last_cursor, highest)), default=None)
            # The org's clock when this page was read: the Date of its response.
            tracker.observe(cursor, client.server_time)
        rows = batch.rows
        if batch.rejects.num_rows:
            if spec.extraction.on_conversion_error == "fail":
                _fail_on_rejects(batch, spec)
            rejected.append(batch.rejects)
            if reread:
                rows = _without_rereads_still_rejected(rows, batch.rejects, reread)
        new = versions.new_versions(rows, cursor_column)
        if new.num_rows:
            kept.append(new)
    schema = raw_table_schema(fields)
    data_schema = pa.schema([schema.field(f.column) for f in fields])
    rows = pa.concat_tables(kept) if kept else data_schema.empty_table()
    rejects = pa.concat_tables(rejected) if rejected else REJECTS_SCHEMA.empty_table()
    if rejected:
        rejects = with_run_columns(rejects, extracted_at, run_id)
    server_time = client.server_time
    after = client.stats()
    stats = {name: after[name] - before[name] for name in after}
    stats |= {"query_restarts": reader.restarts, "bulk_jobs": reader.bulk_jobs}
    return Increment(
        object_name=spec.api_name,
        api=api_label(reader.api, spec.deletions),
        rows=with_run_columns(rows, extracted_at, run_id),
        rejects=rejects,
        soql=build_extraction_soql(spec.api_name, fields, spec.cursor, since),
        fetched=fetched,
        since=since,
        watermark_before=watermark,
        watermark_after=tracker.watermark,
        fields=fields,
        api_calls=stats["api_calls"],
        estimate=estimate,
        server_time=server_time,
        pages=reader.pages,
        stats=stats,
        cursor_column=cursor_column,
        run_id=run_id,
        type_changes=tuple(changes),
        future_versions=tracker.future,
        latest_future=tracker.latest_future,
        corrections=versions.rereads,
    )


def _without_rereads_still_rejected(
    rows: pa.Table, rejects: pa.Table, reread: frozenset[str]
) -> pa.Table:
    """A stored version read again keeps its place only once every value converts: storing it
    with the value still set aside would add nothing."""
    still = set(version_keys(rejects.column("id"), rejects.column("systemmodstamp")).to_pylist())
    still &= reread
    if not still:
        return rows
    keys = version_keys(rows.column("id"), rows.column("systemmodstamp"))
    return rows.filter(pc.invert(pc.is_in(keys, value_set=pa.array(sorted(still), pa.string()))))
