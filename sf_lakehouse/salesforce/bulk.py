"""Bulk API 2.0 query jobs through simple-salesforce's `bulk2` client: create the job, wait for
it within a bound (abort it when it stays in progress), then fetch its CSV result pages one at a
time by `Sforce-Locator`. Every step runs under the client's retries; nothing here imports Dagster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from simple_salesforce.bulk2 import Operation, _Bulk2Client

from sf_lakehouse.salesforce.errors import BulkJobError

T = TypeVar("T")
FIRST_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class BulkPage:
    """One result page of a query job: CSV bytes (header included) and the job's id."""

    job_id: str
    data: bytes
    records: int
    number: int


class BulkQuery:
    """One Bulk API 2.0 query (or queryAll) job and its result pages.

    `call(what, fn)` runs one API call with the client's retries, re-logins and quota guard;
    `bulk2()` returns simple-salesforce's bulk2 client for the current session (a fresh one
    after a re-login, since it holds the session id)."""

    def __init__(
        self,
        call: Callable[[str, Callable[[], Any]], Any],
        bulk2: Callable[[], _Bulk2Client],
        *,
        object_name: str,
        poll_seconds: float,
        max_wait_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._call = call
        self._bulk2 = bulk2
        self._object = object_name
        self._poll = poll_seconds
        self._max_wait = max_wait_seconds
        self._sleep = sleep
        self._clock = clock
        self.job_id: str | None = None

    def pages(self, soql: str, *, include_deleted: bool, page_size: int) -> Iterator[BulkPage]:
        operation = Operation.query_all if include_deleted else Operation.query
        job = self._call(
            f"creating a Bulk API {operation.value} job for {self._object}",
            lambda: self._bulk2().create_job(operation, soql),
        )
        self.job_id = job_id = str(job["id"])
        self._wait(job_id)
        locator, number = "", 0
        while True:
            result = self._call(
                f"Bulk job {job_id} result page {number + 1}",
                lambda loc=locator: self._bulk2().get_query_results(job_id, loc, page_size),
            )
            number += 1
            yield BulkPage(
                job_id=job_id,
                data=str(result["records"]).encode("utf-8"),
                records=int(result["number_of_records"]),
                number=number,
            )
            locator = result["locator"]
            if not locator:
                return

    def _wait(self, job_id: str) -> None:
        started = self._clock()
        delay = FIRST_POLL_SECONDS
        while True:
            info = self._call(
                f"Bulk job {job_id} status", lambda: self._bulk2().get_job(job_id, True)
            )
            state = info.get("state")
            if state == "JobComplete":
                return
            if state in ("Failed", "Aborted"):
                reason = " ".join(str(info.get("errorMessage") or "no error message").split())
                raise BulkJobError(
                    f"Bulk API job {job_id} ({self._object}) is {state}: {reason}; see Setup > "
                    "Bulk Data Load Jobs in Salesforce, fix the query or read this object over "
                    "REST (extraction.api: rest in its object spec)",
                    job_id,
                )
            waited = self._clock() - started
            if waited >= self._max_wait:
                aborted = self._abort(job_id)
                raise BulkJobError(
                    f"Bulk API job {job_id} ({self._object}) is still {state} after "
                    f"{waited:.0f}s (salesforce.bulk_max_wait_seconds={self._max_wait:g}); "
                    f"{aborted}; raise bulk_max_wait_seconds, or read this object over REST "
                    "(extraction.api: rest in its object spec)",
                    job_id,
                )
            self._sleep(min(delay, self._poll, max(self._max_wait - waited, 0.01)))
            delay = min(delay * 2, self._poll)

    def _abort(self, job_id: str) -> str:
        try:
            self._call(f"aborting Bulk job {job_id}", lambda: self._bulk2().abort_job(job_id, True))
        except Exception as error:
            return f"aborting it failed too ({type(error).__name__}); abort it in Setup"
        return "aborted it"
