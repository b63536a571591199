"""Bulk API 2.0 query jobs (``jobs/query``) for every object of the org.

A job is created ``UploadComplete`` and runs its query at once (a snapshot at the emulator's
clock); polls of ``GET jobs/query/<id>`` see it ``InProgress`` for ``processing_seconds`` (wall
clock, 0.5 s by default; ``None``: until ``complete_jobs()``, ``POST /_emulator/bulk/complete``,
so tests see every state without timing), then ``JobComplete`` (``Failed`` with an
``errorMessage`` under the ``bulk_failed`` fault; ``InProgress`` for ever under ``bulk_stuck``).
``PATCH {"state": "Aborted"}`` aborts a job that has not finished. ``operation: query`` leaves
deleted records out; ``queryAll`` includes them, with ``IsDeleted`` true.

Results: ``GET jobs/query/<id>/results[?maxRecords=N&locator=L]`` gives CSV pages (see
``render.csv_page``) with ``Sforce-Locator`` (``null`` on the last page) and
``Sforce-NumberOfRecords``; without ``maxRecords`` a page holds up to 100,000 records.

SOQL that Bulk API 2.0 does not run (Salesforce's documentation: aggregate functions such as
COUNT(), GROUP BY, OFFSET, TYPEOF, parent-to-child nested queries) is refused at creation with
``400 [{"errorCode": "API_ERROR", "message": ...}]``; other query errors keep their REST codes
(MALFORMED_QUERY, INVALID_FIELD, INVALID_TYPE); a bad job definition is ``INVALIDJOB``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import soql
from .engine import Selection
from .faults import Faults
from .history import format_sf_datetime
from .org import Org
from .render import csv_page
from .transport import Request, Response, error, json_response, not_found

__all__ = ["BulkApi", "unsupported_in_bulk"]

MAX_BULK_JOBS = 200  # each keeps its answer (4 bytes a row) until deleted or pushed out
DAILY_QUERY_JOBS = 10000
DEFAULT_PAGE_RECORDS = 100_000
FAILED_MESSAGE = "InternalServerError: the query job failed while processing. Retry the job."
_DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
_ID_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
_AGGREGATES = frozenset({"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"})
_FINAL = frozenset({"JobComplete", "Failed", "Aborted"})


@dataclass
class _BulkJob:
    info: dict[str, Any]
    selection: Selection
    delimiter: str
    line_ending: str
    outcome: str  # the state the job reaches: JobComplete, Failed or InProgress (stuck)
    done_at: float  # time.monotonic() when it gets there


def unsupported_in_bulk(text: str) -> soql.SoqlError | None:
    """Salesforce's refusal of SOQL that Bulk API 2.0 query jobs do not support, if any."""
    try:
        tokens = soql.tokenize(text)
    except soql.SoqlError:
        return None  # the parser reports it as a MALFORMED_QUERY
    for token, after in itertools.pairwise(tokens):
        word = token.text.upper() if token.kind is soql.TokenKind.IDENT else ""
        reason = None
        if word in _AGGREGATES and after.kind is soql.TokenKind.LPAREN:
            reason = f"Aggregate functions such as {word}() are not supported"
        elif word == "GROUP" and after.is_keyword("BY"):
            reason = "GROUP BY is not supported"
        elif word == "OFFSET":
            reason = "The OFFSET clause is not supported"
        elif word == "TYPEOF":
            reason = "TYPEOF is not supported"
        elif token.kind is soql.TokenKind.LPAREN and after.is_keyword("SELECT"):
            reason = "Parent-to-child relationship queries (nested SELECT) are not supported"
        if reason is not None:
            return soql.SoqlError("API_ERROR", f"{reason} in Bulk API 2.0 query jobs.")
    return None


class BulkApi:
    """The ``jobs/query`` routes over an ``Org`` at the emulator's (visibility) clock."""

    def __init__(
        self,
        org: Org,
        clock: Callable[[], datetime],
        visible_clock: Callable[[], datetime],
        user_id: str,
        api_version: str,
        faults: Faults,
        processing_seconds: float | None = 0.5,
    ) -> None:
        self.processing_seconds = processing_seconds
        self._org = org
        self._clock = clock
        self._visible_clock = visible_clock
        self._user_id = user_id
        self._api_version = api_version
        self._faults = faults
        self._lock = threading.Lock()
        self._jobs: dict[str, _BulkJob] = {}
        self._created = 0

    def complete_jobs(self) -> int:
        """End the processing of every job now (a held job's, or one still processing); a
        `bulk_stuck` job stays InProgress. Returns how many jobs were processing."""
        with self._lock:
            processing = [j for j in self._jobs.values() if j.info["state"] not in _FINAL]
            for job in processing:
                job.done_at = -math.inf
            return len(processing)

    @property
    def remaining_jobs(self) -> int:
        with self._lock:
            return max(DAILY_QUERY_JOBS - self._created, 0)

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
            return json_response(200, self._poll(job))
        if len(rest) == 1 and method == "DELETE":
            with self._lock:
                self._jobs.pop(rest[0], None)
            return Response(204)
        if len(rest) == 1 and method == "PATCH":
            return self._abort(request, job)
        if rest[1:] == ["results"] and method == "GET":
            return self._results(request, job)
        return not_found()

    def _poll(self, job: _BulkJob) -> dict[str, Any]:
        """The job as this poll sees it: InProgress until its processing time is over."""
        with self._lock:
            info = job.info
            if info["state"] not in _FINAL:
                state = "InProgress" if time.monotonic() < job.done_at else job.outcome
                info["state"] = state
                info["systemModstamp"] = format_sf_datetime(self._clock())
                if state == "JobComplete":
                    info["numberRecordsProcessed"] = job.selection.total_size
                    info["totalProcessingTime"] = 1
                elif state == "Failed":
                    info["errorMessage"] = FAILED_MESSAGE
            return dict(info)

    def _abort(self, request: Request, job: _BulkJob) -> Response:
        try:
            wanted = json.loads(request.body or b"{}").get("state")
        except (ValueError, AttributeError):
            wanted = None
        if wanted != "Aborted":
            return error(400, "INVALIDJOB", "A query job can only be set to the state Aborted.")
        with self._lock:
            state = job.info["state"]
            if state in _FINAL:
                return error(
                    400, "INVALIDJOB", f"Job {job.info['id']} is {state}: it cannot be aborted."
                )
            job.info["state"] = "Aborted"
            return json_response(200, dict(job.info))

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
        text = payload.get("query")
        if not isinstance(text, str) or not text.strip():
            return error(400, "INVALIDJOB", "A query job needs a SOQL 'query'.")
        refused = unsupported_in_bulk(text)
        if refused is not None:
            return error(400, refused.error_code, refused.message)
        try:
            spec, selection = self._org.query(
                text, self._visible_clock(), include_deleted=operation == "queryAll"
            )
        except soql.SoqlError as exc:
            return error(400, exc.error_code, exc.message)
        fault = self._faults.fire(("bulk_failed", "bulk_stuck"), request.path)
        outcome = {"bulk_failed": "Failed", "bulk_stuck": "InProgress"}.get(
            fault.kind if fault else "", "JobComplete"
        )
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
            "jobType": "V2Query",
            "lineEnding": line_ending_name,
            "columnDelimiter": delimiter_name,
            "numberRecordsProcessed": 0,
            "retries": 0,
            "totalProcessingTime": 0,
        }
        with self._lock:
            self._created += 1
            while len(self._jobs) >= MAX_BULK_JOBS:
                del self._jobs[next(iter(self._jobs))]
            self._jobs[job_id] = _BulkJob(
                info=info,
                selection=selection,
                delimiter=_DELIMITERS[delimiter_name],
                line_ending="\r\n" if line_ending_name == "CRLF" else "\n",
                outcome=outcome,
                done_at=(
                    math.inf
                    if self.processing_seconds is None
                    else time.monotonic() + self.processing_seconds
                ),
            )
            return json_response(200, dict(info))

    def _results(self, request: Request, job: _BulkJob) -> Response:
        with self._lock:
            state = job.info["state"]
        if state != "JobComplete":
            return error(
                400, "INVALIDJOB", f"Results are available once the job is JobComplete: {state}."
            )
        total = job.selection.total_size
        offset = 0
        locator = request.param("locator")
        if locator:
            try:
                offset = int(base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)))
            except (ValueError, binascii.Error):
                offset = -1
            if not 0 <= offset <= total:
                return error(400, "INVALID_QUERY_LOCATOR", f"Invalid locator: {locator}")
        max_records = request.param("maxRecords")
        try:
            page_size = int(max_records) if max_records else DEFAULT_PAGE_RECORDS
        except ValueError:
            return error(400, "INVALIDJOB", "maxRecords must be a positive integer.")
        if page_size <= 0:
            return error(400, "INVALIDJOB", "maxRecords must be a positive integer.")
        end = min(offset + page_size, total)
        malform = self._faults.malform(request.path, self._clock())
        body = csv_page(job.selection, offset, end, job.delimiter, job.line_ending, malform)
        next_locator = (
            base64.urlsafe_b64encode(str(end).encode()).decode().rstrip("=")
            if end < total
            else "null"
        )
        return Response(
            200,
            body,
            "text/csv;charset=UTF-8",
            {"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(end - offset)},
        )
