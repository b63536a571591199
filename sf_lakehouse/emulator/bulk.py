"""Bulk API 2.0 query jobs (``jobs/query``) for every object of the org.

A job runs its query when it is created (a snapshot at the emulator's clock) and is complete
by the time anyone asks. ``operation: query`` leaves deleted records out; ``queryAll`` includes
them, with ``IsDeleted`` true. Results are CSV pages like Salesforce's: a header row, every
value quoted, nulls empty, ``Sforce-Locator``/``Sforce-NumberOfRecords`` headers.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import soql
from .history import format_sf_datetime
from .org import Org
from .transport import Request, Response, error, json_response, not_found

__all__ = ["BulkApi"]

MAX_BULK_JOBS = 500
DAILY_QUERY_JOBS = 10000
_DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
_ID_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


@dataclass
class _BulkJob:
    info: dict[str, Any]
    fields: list[str]
    records: list[dict[str, Any]]
    delimiter: str
    line_ending: str


def _csv_cell(value: Any) -> str:
    """RFC 4180 quoting like Bulk API 2.0 results: every value quoted, null left empty."""
    if value is None:
        return ""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return '"' + text.replace('"', '""') + '"'


class BulkApi:
    """The ``jobs/query`` routes over an ``Org`` at the emulator's clock."""

    def __init__(
        self, org: Org, clock: Callable[[], datetime], user_id: str, api_version: str
    ) -> None:
        self._org = org
        self._clock = clock
        self._user_id = user_id
        self._api_version = api_version
        self._lock = threading.Lock()
        self._jobs: dict[str, _BulkJob] = {}

    @property
    def remaining_jobs(self) -> int:
        with self._lock:
            return DAILY_QUERY_JOBS - len(self._jobs)

    def route(self, request: Request, version_part: str, rest: list[str]) -> Response:
        method = request.method
        if not rest and method == "POST":
            return self._create(request, version_part)
        if not rest and method == "GET":
            with self._lock:
                jobs = [dict(job.info) for job in self._jobs.values()]
            return json_response(200, {"done": True, "records": jobs, "nextRecordsUrl": None})
        if not rest:
            return not_found()
        with self._lock:
            job = self._jobs.get(rest[0])
        if job is None:
            return not_found()
        if len(rest) == 1 and method == "GET":
            return json_response(200, job.info)
        if len(rest) == 1 and method == "DELETE":
            with self._lock:
                self._jobs.pop(rest[0], None)
            return Response(204)
        if len(rest) == 1 and method == "PATCH":
            # Query jobs finish at creation, so an abort request finds nothing to abort.
            return json_response(200, job.info)
        if rest[1:] == ["results"] and method == "GET":
            return self._results(request, job)
        return not_found()

    def _create(self, request: Request, version_part: str) -> Response:
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            return error(400, "JSON_PARSER_ERROR", "The request body is not valid JSON.")
        if not isinstance(payload, dict):
            return error(400, "JSON_PARSER_ERROR", "The request body must be a JSON object.")
        operation = payload.get("operation")
        if operation not in ("query", "queryAll"):
            return error(400, "INVALIDJOB", f"Invalid operation for a query job: {operation}")
        delimiter_name = payload.get("columnDelimiter") or "COMMA"
        line_ending_name = payload.get("lineEnding") or "LF"
        if delimiter_name not in _DELIMITERS or line_ending_name not in ("LF", "CRLF"):
            return error(400, "INVALIDJOB", "Unsupported columnDelimiter or lineEnding.")
        try:
            spec, result = self._org.query(
                str(payload.get("query") or ""),
                self._clock(),
                include_deleted=operation == "queryAll",
            )
        except soql.SoqlError as exc:
            return error(400, exc.error_code, exc.message)
        if result.is_count:
            return error(400, "INVALIDJOB", "Aggregate queries are not supported in Bulk API 2.0.")
        job_id = "750" + "".join(secrets.choice(_ID_CHARS) for _ in range(15))
        created = format_sf_datetime(self._clock())
        info = {
            "id": job_id,
            "operation": operation,
            "object": spec.name,
            "createdById": self._user_id,
            "createdDate": created,
            "systemModstamp": created,
            "state": "UploadComplete",
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(version_part.lstrip("v") or self._api_version),
            "lineEnding": line_ending_name,
            "columnDelimiter": delimiter_name,
        }
        response = json_response(200, dict(info))
        # The snapshot is taken now; the job is complete by the time anyone asks.
        info.update(
            state="JobComplete",
            jobType="V2Query",
            numberRecordsProcessed=len(result.records),
            retries=0,
            totalProcessingTime=1,
        )
        with self._lock:
            while len(self._jobs) >= MAX_BULK_JOBS:
                del self._jobs[next(iter(self._jobs))]
            self._jobs[job_id] = _BulkJob(
                info=info,
                fields=[f.name for f in result.fields],
                records=result.records,
                delimiter=_DELIMITERS[delimiter_name],
                line_ending="\r\n" if line_ending_name == "CRLF" else "\n",
            )
        return response

    @staticmethod
    def _results(request: Request, job: _BulkJob) -> Response:
        offset = 0
        locator = request.param("locator")
        if locator:
            try:
                offset = int(base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)))
            except (ValueError, binascii.Error):
                offset = -1
            if not 0 <= offset <= len(job.records):
                return error(400, "INVALID_QUERY_LOCATOR", f"Invalid locator: {locator}")
        max_records = request.param("maxRecords")
        try:
            page_size = int(max_records) if max_records else len(job.records) or 1
        except ValueError:
            return error(400, "INVALIDJOB", "maxRecords must be a positive integer.")
        if page_size <= 0:
            return error(400, "INVALIDJOB", "maxRecords must be a positive integer.")
        end = offset + page_size
        page = job.records[offset:end]
        lines = [job.delimiter.join(_csv_cell(name) for name in job.fields)]
        lines.extend(
            job.delimiter.join(_csv_cell(row[name]) for name in job.fields) for row in page
        )
        body = "".join(line + job.line_ending for line in lines).encode("utf-8")
        next_locator = (
            base64.urlsafe_b64encode(str(end).encode()).decode().rstrip("=")
            if end < len(job.records)
            else "null"
        )
        return Response(
            200,
            body,
            "text/csv;charset=UTF-8",
            {"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(len(page))},
        )
