"""Reading a history into columns: JSON Lines (or in-memory records) to per-object Arrow parts.

A file is read in blocks of about 64 MB cut at line ends; each block is parsed by Arrow's JSON
reader (``pyarrow.json``), validated vectorised, split by object and compacted (text
dictionary-encoded, ``SystemModstamp`` as a timestamp). A block Arrow cannot read (a line that is
not JSON, a field whose values change type) is read again line by line with ``json.loads``: that
pass names the first bad line exactly as ``load_history`` does. Any vectorised rule that finds a
bad row hands that row to ``check_record`` for the message, so the messages are the same whatever
the path: the file, the line and the fix.

Key presence: a field exists in describe from the first version that has it as a key, even with a
null value. Arrow cannot tell a null from a missing key, so for the fields that are not standard
fields of the object the raw lines of null rows are searched for the key.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from .history import DEFAULT_OBJECT, STANDARD_OBJECT_NAMES, HistoryError, check_record
from .objects import STANDARD_OBJECTS
from .vectors import TIMESTAMP, encode_strings, parse_datetimes

__all__ = ["BLOCK_BYTES", "ObjectPart", "Presence", "read_file", "read_records"]

BLOCK_BYTES = 64 << 20
_PARSE_BLOCK = 4 << 20
_CUSTOM_OBJECT = re.compile(r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*__c")
# Read as text whatever they look like (Arrow would turn some into timestamps of its own).
_TEXT_FIELDS = ("Id", "SystemModstamp", "CreatedDate", "LastModifiedDate")
# Columns every part carries besides the fields: the stamp and the line (for messages).
STAMP, LINE = "_stamp", "_line"


@dataclass(frozen=True)
class Presence:
    """Where a field first appears in an object's history: (stamp in µs, Id, column order)."""

    stamp: int
    record_id: str
    order: int


@dataclass
class ObjectPart:
    """One block's rows of one object: ``Id``, ``_stamp``, ``_line`` and the fields."""

    columns: dict[str, pa.Array]
    presence: dict[str, Presence] = field(default_factory=dict)


@dataclass
class _Block:
    columns: dict[str, pa.Array]
    lines: pa.Array  # int32: the line (file) or position (records) of each row
    record: Callable[[int], Any]  # the parsed record of row i, for messages
    texts: Callable[[pa.Array | None], pa.Array] | None = None  # raw lines (None: all)
    present: dict[str, pa.Array] | None = None  # exact key presence (Python path)


class _Reader:
    """Turns blocks into object parts, remembering column order and text-typed fields."""

    def __init__(self, where: Callable[[int], str]) -> None:
        self.where = where
        self.order: dict[str, int] = {}
        self.text_fields = set(_TEXT_FIELDS)
        self.parts: dict[str, list[ObjectPart]] = {}

    # --- Arrow path ------------------------------------------------------------------------

    def arrow_block(self, data: bytes, first_line: int) -> int:
        """Read one block of a file; return how many line ends it holds."""
        table = None
        for _ in range(3):
            schema = pa.schema([(name, pa.string()) for name in sorted(self.text_fields)])
            options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
            try:
                table = pj.read_json(
                    pa.BufferReader(data),
                    read_options=pj.ReadOptions(block_size=_PARSE_BLOCK),
                    parse_options=options,
                )
                lines, texts, ends = _line_index(data, first_line, table.num_rows)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                table = None
                break
            guessed = {f.name for f in table.schema if pa.types.is_timestamp(f.type)}
            if not guessed:
                break
            self.text_fields |= guessed  # read them again as text, here and from now on
            table = None
        if table is None:
            return self.python_block(data, first_line)
        where = self.where

        def record(i: int) -> Any:
            return _parse_line(texts(pa.array([i]))[0].as_py(), lines[i].as_py(), where)

        columns = {name: table.column(name).combine_chunks() for name in table.column_names}
        self.add(_Block(columns, lines, record, texts=texts))
        return ends

    # --- Python path ------------------------------------------------------------------------

    def python_block(self, data: bytes, first_line: int) -> int:
        """Read one block line by line (``json.loads``); return how many line ends it holds."""
        records: list[dict[str, Any]] = []
        lines: list[int] = []
        raw_lines = data.split(b"\n")
        for offset, raw in enumerate(raw_lines):
            line_no = first_line + offset
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise HistoryError(
                    f"{self.where(line_no)}: not valid UTF-8 ({exc.reason}). Save the history "
                    "file as UTF-8."
                ) from exc
            if not text.strip():
                continue
            record = _parse_line(text, line_no, self.where)
            check_record(record, self.where(line_no))
            records.append(record)
            lines.append(line_no)
        self.records(records, lines)
        return len(raw_lines) - 1

    def records(self, records: list[dict[str, Any]], lines: list[int]) -> None:
        """Validated records (``check_record`` passed) as one block."""
        names: dict[str, None] = {}
        for record in records:
            names.update(dict.fromkeys(record))
        columns: dict[str, pa.Array] = {}
        present: dict[str, pa.Array] = {}
        for name in names:
            values = [record.get(name) for record in records]
            if name != "attributes":
                present[name] = pa.array([name in record for record in records], pa.bool_())
            columns[name] = _array_of(values, name == "attributes")
        self.add(_Block(columns, pa.array(lines, pa.int32()), records.__getitem__, present=present))

    # --- validation, split by object, compaction -----------------------------------------

    def add(self, block: _Block) -> None:
        for name in block.columns:
            self.order.setdefault(name, len(self.order))
        n = len(block.lines)
        if n == 0:
            return
        objects, bad = _object_names(block)
        cols = block.columns
        record_id = cols.get("Id", pa.nulls(n, pa.string()))
        if not pa.types.is_string(record_id.type):
            bad = pc.or_(bad, pc.is_valid(record_id))
            record_id = pa.nulls(n, pa.string())
        bad = pc.or_(bad, pc.equal(record_id, "").fill_null(True))
        stamps = parse_datetimes(cols.get("SystemModstamp", pa.nulls(n, pa.string())))
        bad = pc.or_(bad, pc.is_null(stamps))
        deleted = cols.get("IsDeleted")
        if deleted is not None and not pa.types.is_null(deleted.type):
            if not pa.types.is_boolean(deleted.type):
                bad = pc.or_(bad, pc.is_valid(deleted))
            is_user = pc.equal(objects, DEFAULT_OBJECT)
            bad = pc.or_(bad, pc.and_(is_user, pc.is_valid(deleted)))
        if pc.any(bad).as_py():
            self.fail(block, pc.indices_nonzero(bad))
        for name in pc.unique(objects).to_pylist():
            rows = pc.indices_nonzero(pc.equal(objects, name))
            part = self.part(block, name, rows, record_id, stamps)
            self.parts.setdefault(name, []).append(part)

    def fail(self, block: _Block, rows: pa.Array) -> None:
        """Raise the message ``check_record`` gives for the first of the bad ``rows``."""
        lines = block.lines.take(rows)
        first = pc.min(lines).as_py()
        row = rows[pc.index(lines, first).as_py()].as_py()
        where = self.where(first)
        check_record(block.record(row), where)
        raise HistoryError(f"{where}: this record is not a valid history version.")

    def part(
        self, block: _Block, name: str, rows: pa.Array, record_id: pa.Array, stamps: pa.Array
    ) -> ObjectPart:
        spec = STANDARD_OBJECTS.get(name)
        standard = {f.name for f in spec.fields} if spec else _CUSTOM_STANDARD
        whole = len(rows) == len(block.lines)  # one object in the block: no copies

        def take(values: pa.Array) -> pa.Array:
            return values if whole else values.take(rows)

        ids, stamp = take(record_id), take(stamps)
        columns: dict[str, pa.Array] = {
            "Id": encode_strings(ids),
            STAMP: stamp,
            LINE: take(block.lines),
        }
        others = {
            column: take(values)
            for column, values in block.columns.items()
            if column not in ("attributes", "Id", "SystemModstamp")
        }
        for column, values in others.items():
            if column in standard and values.null_count < len(values):
                columns[column] = encode_strings(values)
        finder = _Presence(block, None if whole else rows, stamp, ids)
        presence: dict[str, Presence] = {}
        for column, (first_stamp, first_id) in finder.first(
            {c: v for c, v in others.items() if c not in standard}
        ).items():
            if column == "IsDeleted":  # on a User (other objects have it as standard)
                self.fail(block, rows.filter(finder.rows_with(column, others[column])))
            presence[column] = Presence(first_stamp, first_id, self.order.get(column, 0))
            columns[column] = encode_strings(others[column])
        return ObjectPart(columns, presence)


class _Presence:
    """Where a field first appears as a key among a block's rows of one object: the earliest
    version with a value, or earlier with a null written out (found in the raw lines)."""

    def __init__(
        self, block: _Block, rows: pa.Array | None, stamps: pa.Array, ids: pa.Array
    ) -> None:
        self.block = block
        self.rows = rows  # None: every row of the block
        self.stamps = stamps
        self.ids = ids
        self._texts: pa.Array | None = None

    def texts(self) -> pa.Array:
        if self._texts is None:
            assert self.block.texts is not None
            self._texts = self.block.texts(self.rows)
        return self._texts

    def _earliest(self, mask: pa.Array) -> tuple[int, str]:
        first = pc.min(self.stamps.filter(mask))
        at_first = pc.and_(mask, pc.equal(self.stamps, first))
        return first.value, pc.min(_plain(self.ids.filter(at_first))).as_py()

    def _known(self, column: str) -> pa.Array:
        present = self.block.present
        assert present is not None
        return present[column] if self.rows is None else present[column].take(self.rows)

    def rows_with(self, column: str, values: pa.Array) -> pa.Array:
        """The mask of rows that have ``column`` as a key."""
        if self.block.present is not None:
            return self._known(column)
        found = pc.match_substring(self.texts(), f'"{column}":')
        return pc.or_(pc.is_valid(values), found)

    def first(self, candidates: dict[str, pa.Array]) -> dict[str, tuple[int, str]]:
        out: dict[str, tuple[int, str]] = {}
        if self.block.present is not None:  # records: presence is known exactly
            for column in candidates:
                mask = self._known(column)
                if pc.any(mask).as_py():
                    out[column] = self._earliest(mask)
            return out
        empty = []
        for column, values in candidates.items():
            valid = pc.is_valid(values)
            if not pc.any(valid).as_py():
                empty.append(column)
                continue
            earliest = self._earliest(valid)
            # Only a null written out before the first value can come earlier.
            before = pc.and_(
                pc.invert(valid), pc.less_equal(self.stamps, pa.scalar(earliest[0], TIMESTAMP))
            )
            if self.block.texts is not None and pc.any(before).as_py():
                found = pc.match_substring(self.texts().filter(before), f'"{column}":')
                if pc.any(found).as_py():
                    mask = pc.or_(valid, pc.replace_with_mask(before, before, found))
                    earliest = self._earliest(mask)
            out[column] = earliest
        if empty and self.block.texts is not None:
            # One pass for every field without a value here (mostly other objects' fields).
            keys = "|".join(_re2_escape(column) for column in empty)
            hits = pc.match_substring_regex(self.texts(), f'"(?:{keys})":')
            if pc.any(hits).as_py():
                matched = self.texts().filter(hits)
                for column in empty:
                    found = pc.match_substring(matched, f'"{column}":')
                    if pc.any(found).as_py():
                        out[column] = self._earliest(pc.replace_with_mask(hits, hits, found))
        return out


def _plain(values: pa.Array) -> pa.Array:
    return values.dictionary_decode() if pa.types.is_dictionary(values.type) else values


def _re2_escape(text: str) -> str:
    return "".join(c if c.isalnum() or not c.isascii() else f"\\x{ord(c):02x}" for c in text)


_CUSTOM_STANDARD = frozenset(
    {"Id", "IsDeleted", "Name", "OwnerId", "CreatedDate", "LastModifiedDate", "SystemModstamp"}
)


def _falses(size: int) -> pa.Array:
    return pa.nulls(size, pa.bool_()).fill_null(False)


def _object_names(block: _Block) -> tuple[pa.Array, pa.Array]:
    """Each row's object and which rows have a bad ``attributes`` (for ``check_record``)."""
    n = len(block.lines)
    attributes = block.columns.get("attributes")
    users = pa.nulls(n, pa.string()).fill_null(DEFAULT_OBJECT)
    if attributes is None:
        return users, _falses(n)
    if pa.types.is_null(attributes.type):
        objects, bad = users, _falses(n)
    elif not pa.types.is_struct(attributes.type) or attributes.type.get_field_index("type") < 0:
        return users, pc.is_valid(attributes)
    else:
        names = pc.struct_field(attributes, "type")
        if not pa.types.is_string(names.type):
            return users, pc.is_valid(attributes)
        bad = pc.and_(pc.is_valid(attributes), pc.is_null(names))
        for name in pc.unique(names.drop_null()).to_pylist():
            if name not in STANDARD_OBJECT_NAMES and not _CUSTOM_OBJECT.fullmatch(name):
                bad = pc.or_(bad, pc.equal(names, name).fill_null(False))
        objects = pc.if_else(pc.is_valid(attributes), names, DEFAULT_OBJECT)
        objects = objects.fill_null(DEFAULT_OBJECT)
    missing = pc.is_null(attributes)
    if block.texts is not None and pc.any(missing).as_py():  # "attributes": null is wrong
        found = pc.and_(missing, pc.match_substring(block.texts(None), '"attributes":'))
        bad = pc.or_(bad, found)
    return objects, bad


def _parse_line(text: str, line_no: int, where: Callable[[int], str]) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise HistoryError(
            f"{where(line_no)}: not valid JSON ({exc.msg}). Each line must be one JSON "
            "object holding one version of a record."
        ) from exc


def _line_index(
    data: bytes, first_line: int, rows: int
) -> tuple[pa.Array, Callable[[pa.Array | None], pa.Array], int]:
    """Each row's line number, a function giving the raw text of rows (None: all) and the
    number of line ends."""
    whole = pa.StringArray.from_buffers(
        1, pa.py_buffer(struct.pack("<ii", 0, len(data))), pa.py_buffer(data)
    )
    lines = pc.list_flatten(pc.split_pattern(whole, "\n"))
    ends = len(lines) - 1
    if data.endswith(b"\n"):
        lines = lines.slice(0, len(lines) - 1)
    if len(lines) != rows:  # blank lines: Arrow's reader skips them
        kept = pc.indices_nonzero(pc.not_equal(pc.utf8_trim_whitespace(lines), ""))
        numbers = pc.add(kept.cast(pa.int32()), first_line)
        lines = lines.take(kept)
    else:
        numbers = pa.array(range(first_line, first_line + rows), pa.int32())

    def texts(indices: pa.Array | None) -> pa.Array:
        return lines if indices is None else lines.take(indices)

    return numbers, texts, ends


def _array_of(values: list[Any], is_attributes: bool) -> pa.Array:
    """Python values as one Arrow array; text when their types are mixed."""
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        array = None
    if is_attributes:
        return array if array is not None else pa.nulls(len(values))
    if array is None or pa.types.is_nested(array.type):
        return pa.array([_as_text(v) for v in values], pa.string())
    return array


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _file_blocks(path: Path) -> Iterator[bytes]:
    """The file in blocks of about ``BLOCK_BYTES`` that end at a line end (the last may not)."""
    with path.open("rb") as handle:
        while True:
            block = handle.read(BLOCK_BYTES)
            if not block:
                return
            cut = block.rfind(b"\n") + 1
            if 0 < cut < len(block):
                handle.seek(cut - len(block), 1)  # the partial line starts the next block
                block = block[:cut]
            elif cut == 0 and len(block) == BLOCK_BYTES:  # one line longer than a block
                rest = handle.readline()
                block += rest
            yield block


def read_file(path: Path) -> tuple[dict[str, list[ObjectPart]], dict[str, int]]:
    """The parts of every object in a history file, and the column order of the file."""
    path = Path(path)
    reader = _Reader(lambda line_no: f"{path}, line {line_no}")
    try:
        first_line = 1
        for data in _file_blocks(path):
            first_line += reader.arrow_block(data, first_line)
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read the history file ({exc.strerror}).") from exc
    return reader.parts, reader.order


def read_records(
    records: Iterable[dict[str, Any]],
) -> tuple[dict[str, list[ObjectPart]], dict[str, int]]:
    """The parts of every object of in-memory records (validated like a file's lines)."""
    reader = _Reader(lambda index: f"history record {index}")
    batch: list[dict[str, Any]] = []
    positions: list[int] = []
    for index, record in enumerate(records):
        check_record(record, f"history record {index}")
        batch.append(record)
        positions.append(index)
        if len(batch) >= 200_000:
            reader.records(batch, positions)
            batch, positions = [], []
    reader.records(batch, positions)
    return reader.parts, reader.order
