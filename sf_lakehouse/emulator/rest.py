"""REST routes of the emulator: ``query``/``queryAll`` with ``nextRecordsUrl`` paging and
``sobjects`` (the object list, describe, one record)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import soql
from .objects import describe_field, object_summary
from .org import Org
from .transport import Request, Response, error, json_response, not_found

__all__ = ["RestApi"]

# Salesforce closes a user's oldest query cursors beyond a limit; be a little more generous.
MAX_OPEN_CURSORS = 50
DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
_LOCATOR_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


@dataclass
class _Cursor:
    records: list[dict[str, Any]]
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


def record_json(
    version_part: str, object_name: str, row: dict[str, Any], record_id: str | None
) -> dict[str, Any]:
    """A record as the REST API returns it: ``attributes`` (type, url) first, then the fields."""
    attributes = {"type": object_name}
    if record_id:
        attributes["url"] = f"/services/data/{version_part}/sobjects/{object_name}/{record_id}"
    return {"attributes": attributes, **row}


class RestApi:
    """Query and sobjects routes over an ``Org`` at the emulator's clock."""

    def __init__(self, org: Org, clock: Callable[[], datetime]) -> None:
        self._org = org
        self._clock = clock
        self._lock = threading.Lock()
        self._cursors: dict[str, _Cursor] = {}

    # --- query / queryAll ----------------------------------------------------------------

    def query(self, request: Request, version_part: str, head: str) -> Response:
        """``GET query?q=`` (deleted records hidden) or ``queryAll?q=`` (deleted shown)."""
        text = request.param("q")
        if not text:
            return error(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            spec, result = self._org.query(text, self._clock(), include_deleted=head == "queryAll")
        except soql.SoqlError as exc:
            return error(400, exc.error_code, exc.message)
        if result.is_count:
            return json_response(200, {"totalSize": result.total_size, "done": True, "records": []})
        records = [
            record_json(version_part, spec.name, row, record_id)
            for row, record_id in zip(result.records, result.ids, strict=True)
        ]
        cursor = _Cursor(records, batch_size(request))
        locator = None
        if len(records) > cursor.batch_size:
            locator = "01g" + "".join(secrets.choice(_LOCATOR_CHARS) for _ in range(15))
            with self._lock:
                self._cursors[locator] = cursor
                while len(self._cursors) > MAX_OPEN_CURSORS:
                    del self._cursors[next(iter(self._cursors))]  # the oldest goes first
        return self._page(version_part, head, locator, cursor, 0)

    def query_more(self, version_part: str, head: str, identifier: str) -> Response:
        """``GET query/<locator>-<offset>``: the next page of an open cursor."""
        locator, _, offset_text = identifier.rpartition("-")
        with self._lock:
            cursor = self._cursors.get(locator)
        if cursor is None or not offset_text.isdigit() or int(offset_text) > len(cursor.records):
            return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(version_part, head, locator, cursor, int(offset_text))

    @staticmethod
    def _page(
        version_part: str, head: str, locator: str | None, cursor: _Cursor, offset: int
    ) -> Response:
        end = offset + cursor.batch_size
        payload: dict[str, Any] = {
            "totalSize": len(cursor.records),
            "done": locator is None or end >= len(cursor.records),
            "records": cursor.records[offset:end],
        }
        if not payload["done"]:
            payload["nextRecordsUrl"] = f"/services/data/{version_part}/{head}/{locator}-{end}"
        return json_response(200, payload)

    # --- sobjects ------------------------------------------------------------------------

    def sobjects(self, version_part: str, rest: list[str]) -> Response:
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
            record = self._org.record(spec.name, rest[1], now)
            if record is None:
                return not_found()
            if record.get("IsDeleted") is True:
                return error(404, "ENTITY_IS_DELETED", "entity is deleted")
            schema = self._org.schema(spec.name, now)
            row = {f.name: soql.json_value(record.get(f.name), f.type) for f in schema.fields}
            return json_response(200, record_json(version_part, spec.name, row, record["Id"]))
        return not_found()
