"""REST routes of the emulator: ``query``/``queryAll`` with ``nextRecordsUrl`` paging and
``sobjects`` (the object list, describe, one record).

A query's answer is kept as a ``Selection`` (row numbers into the org's columns) behind a cursor;
each page renders only its own records. Pages are a snapshot: the clock moving on does not change
an open cursor.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import soql
from .engine import Selection
from .faults import Faults
from .objects import describe_field, object_summary
from .org import Org
from .render import json_records
from .transport import Request, Response, error, json_response, not_found

__all__ = ["RestApi", "batch_size"]

# Salesforce closes a user's oldest query cursors beyond a limit; be a little more generous.
MAX_OPEN_CURSORS = 50
DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
_LOCATOR_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


@dataclass
class _Cursor:
    selection: Selection
    batch_size: int


def batch_size(request: Request) -> int:
    """The ``Sforce-Query-Options: batchSize=N`` hint, clamped like Salesforce (200..2000)."""
    options = request.headers.get("Sforce-Query-Options", "")
    for option in options.split(","):
        key, _, value = option.strip().partition("=")
        if key.strip().lower() == "batchsize":
            try:
                wanted = int(value.strip())
            except ValueError:
                break
            return min(max(wanted, MIN_BATCH_SIZE), DEFAULT_BATCH_SIZE)
    return DEFAULT_BATCH_SIZE


class RestApi:
    """Query and sobjects routes over an ``Org`` at the emulator's (visibility) clock."""

    def __init__(
        self,
        org: Org,
        clock: Callable[[], datetime],
        faults: Faults,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._org = org
        self._clock = clock
        # The org's own clock (the responses' Date), which a commit lag does not hold back.
        self._now = now or clock
        self._faults = faults
        self._lock = threading.Lock()
        self._cursors: dict[str, _Cursor] = {}

    # --- query / queryAll ----------------------------------------------------------------

    def query(self, request: Request, version_part: str, head: str) -> Response:
        """``GET query?q=`` (deleted records hidden) or ``queryAll?q=`` (deleted shown)."""
        text = request.param("q")
        if not text:
            return error(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            _, selection = self._org.query(text, self._clock(), include_deleted=head == "queryAll")
        except soql.SoqlError as exc:
            return error(400, exc.error_code, exc.message)
        if selection.is_count:
            return json_response(
                200, {"totalSize": selection.total_size, "done": True, "records": []}
            )
        cursor = _Cursor(selection, batch_size(request))
        locator = None
        if selection.total_size > cursor.batch_size:
            locator = "01g" + "".join(secrets.choice(_LOCATOR_CHARS) for _ in range(15))
            with self._lock:
                self._cursors[locator] = cursor
                while len(self._cursors) > MAX_OPEN_CURSORS:
                    del self._cursors[next(iter(self._cursors))]  # the oldest goes first
        return self._page(request, version_part, head, locator, cursor, 0)

    def query_more(
        self, request: Request, version_part: str, head: str, identifier: str
    ) -> Response:
        """``GET query/<locator>-<offset>``: the next page of an open cursor."""
        locator, _, offset_text = identifier.rpartition("-")
        with self._lock:
            cursor = self._cursors.get(locator)
        invalid = (
            cursor is None
            or not offset_text.isdigit()
            or int(offset_text) > cursor.selection.total_size
        )
        if not invalid and self._faults.fire(("invalid_locator",), request.path):
            with self._lock:  # the fault is real: the cursor is gone, as on Salesforce
                self._cursors.pop(locator, None)
            invalid = True
        if invalid:
            return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        assert cursor is not None
        return self._page(request, version_part, head, locator, cursor, int(offset_text))

    def _page(
        self,
        request: Request,
        version_part: str,
        head: str,
        locator: str | None,
        cursor: _Cursor,
        offset: int,
    ) -> Response:
        total = cursor.selection.total_size
        end = min(offset + cursor.batch_size, total)
        malform = self._faults.malform(request.path, self._now())
        records = json_records(cursor.selection, offset, end, version_part, malform)
        payload: dict[str, Any] = {
            "totalSize": total,
            "done": locator is None or end >= total,
            "records": records,
        }
        if not payload["done"]:
            payload["nextRecordsUrl"] = f"/services/data/{version_part}/{head}/{locator}-{end}"
        return json_response(200, payload)

    # --- sobjects ------------------------------------------------------------------------

    def sobjects(self, request: Request, version_part: str, rest: list[str]) -> Response:
        """``sobjects``, ``sobjects/<Object>``, ``.../describe`` and ``.../<Id>``."""
        if not rest:
            return json_response(
                200,
                {
                    "encoding": "UTF-8",
                    "maxBatchSize": 200,
                    "sobjects": [object_summary(s, version_part) for s in self._org.objects()],
                },
            )
        spec = self._org.find(rest[0])
        if spec is None:
            return not_found()
        if len(rest) == 1:
            return json_response(
                200, {"objectDescribe": object_summary(spec, version_part), "recentItems": []}
            )
        now = self._clock()
        if rest[1:] == ["describe"]:
            schema = self._org.schema(spec.name, now)
            return json_response(
                200,
                {
                    **object_summary(spec, version_part),
                    "fields": [describe_field(f) for f in schema.fields],
                },
            )
        if len(rest) == 2:
            selection = self._org.record(spec.name, rest[1], now)
            if selection is None:
                return not_found()
            deleted = selection.history.column("IsDeleted", selection.rows).to_pylist()[0]
            if deleted is True:
                return error(404, "ENTITY_IS_DELETED", "entity is deleted")
            malform = self._faults.malform(request.path, self._now())
            (record,) = json_records(selection, 0, 1, version_part, malform)
            return json_response(200, record)
        return not_found()
