"""The columnar fast path: a batch of JSON records into one Arrow table, with exactly the Python path's rows.

The per-record path (parser -> Normalizer -> Table.from_pylist) spends ~30 µs an event in Python. Here a
batch is converted in bulk, by one of two routes:
- the text route (records still as text, one per line, or whole LineBlocks of such lines, which are never
  split into per-line objects): Arrow's C++ JSON reader reads every string, boolean, number and timestamp
  leaf (text, or a number for the unix formats) with the schema's types, refusing any misfit as strictly as
  the Python path does; msgspec decodes only the `json` fields (the rest of the record is skipped in C),
  which orjson writes back exactly as the Python path does. No Python dict of the whole event is ever built.
- the dict route (records already decoded by a reader, or text Arrow refused): orjson dicts, then one
  `pa.array(events, type=struct)` call for strings, booleans and timestamp text, and `json` fields,
  numbers and numeric timestamps taken in Python with exact type checks.
Then, on both, timestamps are parsed once per distinct value by the schema's own parser and the p_any_* lists
are built column-wise (onca.logs.indicator_columns). The result is the same table the Python path builds.

Exactness over coverage: whatever this path cannot do exactly goes back to the Python path, record by
record, where it is normalised, drift-recorded or quarantined as before:
- a record that does not decode, or is not a JSON object (e.g. a reader refusal);
- a value that does not fit the strict shape (a number in a string field, text in an int field, an
  unparseable timestamp, a required field missing or empty): its row is taken out and the batch redone;
- a batch Arrow refuses as a whole: on the text route it is read again in blocks and refused blocks take
  the dict route; there the refusing records are found column by column and taken out.
Schemas this path does not model (text parsers, `validate` rules, embedded JSON, numeric timestamps inside
arrays, arrays of json, json inside arrays of arrays) never use it: `FastPath.compile` returns None. For
schemas with `json` fields inside arrays, or arrays inside arrays, the dict route hands its records to the
Python path (it cannot line json values up with Arrow's elements, nor tell a string from an inner array).
"""

from __future__ import annotations

import gc
import io
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from onca.logs.indicator_columns import IndicatorColumns
from onca.logs.indicators import combined_scanner
from onca.logs.model import NOT_DECODED, LineBlock, RawRecord, Source
from onca.logs.normalize import Compiler, row_id_prefix
from onca.logs.schema import LogSchema
from onca.logs.timeformats import time_parser

BATCH_RECORDS = 10_000  # ~1.4 KB CloudTrail lines: ~15 MB of text and ~100 MB of decoded dicts at a time
_CHUNK = 256  # rows per probe when looking for the rows Arrow refuses
_TEXT_BLOCK = 500  # records per block when a batch's text is read again after a refusal
_TEXT_LEAST = 4  # a refused block is halved down to this many records (each halving is one more Arrow read)
_JSON_PIECE = 1 << 20  # bytes of text whose json fields are decoded and re-encoded together
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_ARROW_ERRORS = (pa.ArrowException, TypeError, ValueError, OverflowError)
_INT_RANGES = {"int": (-(2**63), 2**63 - 1), "bigint": (-(2**63), 2**63 - 1), "smallint": (-(2**15), 2**15 - 1)}
_EXACT_FLOAT = 2**53  # ints beyond this do not survive float() unchanged in every engine: left to the Python path
# Numeric timestamp formats: the type Arrow's reader reads them as, and for float64 the largest magnitude whose
# parse is the same for an int and for its float (n * scale stays exact). unix_ns ints would not: int64 only.
_NUMERIC_TIMES: dict[str, tuple[pa.DataType, int | None]] = {
    "unix": (pa.float64(), _EXACT_FLOAT // 10**6), "unix_ms": (pa.float64(), _EXACT_FLOAT // 10**3),
    "unix_us": (pa.float64(), _EXACT_FLOAT), "unix_ns": (pa.int64(), None)}
_MISSING: Any = object()
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE_SHIFTS = np.arange(60, -4, -4, dtype=np.uint64)  # a position's 16 hex digits, most significant first


class Unsupported(Exception):
    """The schema uses something the fast path does not model; the caller keeps the Python path."""


@dataclass(eq=False)
class _Node:
    """One field of the compiled schema. `kind`: string, boolean, timestamp, int, float, json, object, array.

    `arrow` is the final Arrow type; `extract` is the type the bulk C++ conversion reads (None when the value
    is taken in Python instead: json and numbers, by `path` from the event root). A timestamp of a unix format
    has `numeric` (the Arrow type its numbers are read as, and the magnitude up to which that is exact).
    """

    name: str
    kind: str
    arrow: pa.DataType
    required: bool = False
    scan: Callable[[str], Any] | None = None
    parse: Callable[[Any], datetime] | None = None
    numeric: tuple[pa.DataType, int | None] | None = None
    event_time: bool = False
    int_range: tuple[int, int] | None = None
    children: list[_Node] = field(default_factory=list)
    element: _Node | None = None
    path: tuple[str, ...] = ()
    in_array: bool = False  # a number (read in bulk, checked first on the dict route), json or array inside an array


class _BadRows(Exception):
    """Rows (indices into the batch) that must take the Python path; the rest of the batch is redone."""

    def __init__(self, rows: set[int], table: pa.Table | None = None) -> None:
        self.rows = rows
        self.table = table


class _Misaligned(Exception):
    """json values decoded inside an array do not line up with Arrow's elements: the batch takes the Python path."""


class FastPath:
    """The fast path for one (schema, source, parse time): `convert(records)` -> (table, records left over).

    The table has the schema's Arrow schema (fields then p_ fields); the records left over must go through
    the Python path (the classifier), which produces their rows or quarantines them.
    """

    def __init__(self, schema: LogSchema, source: Source, parse_time: datetime) -> None:
        if schema.parser_kind != "json":
            raise Unsupported(f"parser {schema.parser_kind}")
        self.schema = schema
        self.source = source
        self.parse_time = parse_time
        self.arrow_schema = schema.arrow_schema()
        compiler = Compiler(schema.definitions)
        self.roots = [_compile(f, compiler, (f["name"],), in_array=False) for f in schema.fields]
        self.extract_type = pa.struct([pa.field(n.name, t) for n in self.roots if (t := _extract_type(n)) is not None])
        self.event_times = [n for n in _walk(self.roots) if n.event_time]
        self._array_number_roots = [n for n in self.roots if _holds_array_numbers(n)]
        self._text_schema = pa.schema([pa.field(n.name, t) for n in self.roots
                                       if (t := _extract_type(n, numbers=True)) is not None])
        self._json_paths: list[tuple[_Node, tuple[str, ...]]] = []
        self._json_decoder = msgspec.json.Decoder(_json_struct(self.roots, (), self._json_paths))
        # The dict route cannot line json values up with Arrow's elements, nor tell a string from an inner array
        # (pa.array reads one as a list of characters): such schemas' decoded records take the Python path.
        self._dicts_unsupported = any(_EACH in steps for _, steps in self._json_paths) or \
            any(n.kind == "array" and n.in_array for n in _subtree(self.roots))
        self._prefixes: dict[str, str] = {}
        self.routes: Counter[str] = Counter()  # rows by route (text, dicts, python): what tests and benches check
        self._time_caches: dict[_Node, dict[Any, int | None]] = {}  # per timestamp field: (type, value) -> µs

    @classmethod
    def compile(cls, schema: LogSchema, source: Source, parse_time: datetime) -> FastPath | None:
        """The fast path for `schema`, or None when the schema needs the Python path."""
        try:
            return cls(schema, source, parse_time)
        except Unsupported:
            return None

    # -- the batch ---------------------------------------------------------------------------------------

    def convert(self, records: Sequence[RawRecord | LineBlock]) -> tuple[pa.Table | None, list[RawRecord]]:
        """Rows for the records this path can do exactly (None if none), and the records it leaves over."""
        texts: list[RawRecord] = []
        decoded: list[RawRecord] = []
        blocks: list[LineBlock] = []
        for record in records:
            if record.__class__ is LineBlock:
                blocks.append(record)  # type: ignore[arg-type]
            # Arrow's reader takes one record per line: a record spanning lines keeps the dict route.
            elif record.value is NOT_DECODED and b"\n" not in record.data and b"\r" not in record.data:  # type: ignore[union-attr]
                texts.append(record)  # type: ignore[arg-type]
            else:
                decoded.append(record)  # type: ignore[arg-type]
        tables: list[pa.Table] = []
        slow: list[RawRecord] = []
        if blocks:
            texts = self._convert_blocks(blocks, tables, slow) + texts
        if texts:
            decoded.extend(self._convert_text(texts, tables, slow))
        if decoded:
            self._convert_dicts(decoded, tables, slow)
        self.routes["python"] += len(slow)
        if not tables:
            return None, slow
        return (tables[0] if len(tables) == 1 else pa.concat_tables(tables)), slow

    def _convert_blocks(self, blocks: list[LineBlock], tables: list[pa.Table],
                        slow: list[RawRecord]) -> list[RawRecord]:
        """The text route for whole blocks: one msgspec pass over the text for the json fields, one Arrow read, row
        ids computed in bulk, one table. Rows whose values do not fit go to `slow`. When a line is refused (Arrow
        or msgspec refuse it, or invalid UTF-8), the blocks are read one by one and only the refused blocks'
        records are returned, for the per-record text route, which finds the lines."""
        whole = self._read_text(blocks[0].data if len(blocks) == 1 else b"\n".join(b.data for b in blocks),
                                sum(block.count for block in blocks))
        kept, refused, parts = blocks, [], [whole]
        if whole is None:
            kept, parts = [], []
            for block in blocks:
                read = self._read_text(block.data, block.count)
                if read is None:
                    refused.append(block)
                else:
                    kept.append(block)
                    parts.append(read)
        if parts:
            bulk = parts[0][0] if len(parts) == 1 else pa.concat_arrays([part[0] for part in parts])
            leaves = parts[0][1] if len(parts) == 1 else \
                {key: pa.concat_arrays([part[1][key] for part in parts]) for key in parts[0][1]}
            bad: set[int] = set()
            offset = 0
            for part in parts:
                bad.update(offset + row for row in part[2])
                offset += len(part[0])
            row_ids = pa.concat_arrays([self._block_row_ids(block) for block in kept])
            try:
                tables.append(self._build(bulk, leaves, row_ids, bad))
                self.routes["blocks"] += len(row_ids)
            except _BadRows as bad_rows:
                records = [record for block in kept for record in block.records()]
                self.routes["blocks"] += _keep_fitting(bad_rows, records, tables, slow)
        return [record for block in refused for record in block.records()]

    def _read_text(self, text: bytes, count: int) -> tuple[pa.StructArray, dict[int, pa.Array], set[int]] | None:
        """Arrow's read, the json columns and the rows whose json values orjson refuses, for `count` lines of
        text; None if a line is refused."""
        if not _valid_utf8(text):
            return None
        bad: set[int] = set()
        leaves = self._block_json_columns(text, count, bad)
        if leaves is None:
            return None
        try:
            bulk = _read_json(text, self._text_schema)
        except _ARROW_ERRORS:
            return None
        return (bulk, leaves, bad) if len(bulk) == count else None

    def _block_json_columns(self, text: bytes, count: int, bad: set[int]) -> dict[int, pa.Array] | None:
        """The json columns of `count` lines of text (as _json_columns), or None if msgspec refuses a line.
        Decoded and re-encoded ~1 MiB of text at a time: the decoded values stay in the CPU caches between the
        two steps, which makes them twice as fast as over a whole batch."""
        decode_lines = self._json_decoder.decode_lines
        view = memoryview(text)
        parts: list[dict[int, pa.Array]] = []
        start = offset = 0
        while start < len(text):
            end = text.find(b"\n", start + _JSON_PIECE)
            end = len(text) if end < 0 else end
            try:
                objects = decode_lines(view[start:end])
            except _DECODE_ERRORS:
                return None
            parts.append(_json_columns(objects, self._json_paths, bad, offset))
            offset += len(objects)
            start = end + 1
        if offset != count:
            return None
        if len(parts) == 1:
            return parts[0]
        return {key: pa.concat_arrays([part[key] for part in parts]) for key in parts[0]}

    def _block_row_ids(self, block: LineBlock) -> pa.Array:
        """The p_row_ids of a block's records (prefix + 16 hex digits of the position), built as one buffer."""
        prefix = self._prefix(block.origin).encode()
        width, count = len(prefix) + 16, block.count
        text = np.empty((count, width), dtype=np.uint8)
        text[:, :len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
        positions = np.arange(block.position, block.position + count, dtype=np.uint64)
        text[:, len(prefix):] = _HEX_DIGITS[(positions[:, None] >> _NIBBLE_SHIFTS) & np.uint64(15)]
        offsets = np.arange(0, width * (count + 1), width, dtype=np.int32)
        return pa.Array.from_buffers(pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(text)])

    def _convert_text(self, records: list[RawRecord], tables: list[pa.Table], slow: list[RawRecord]) -> list[RawRecord]:
        """The text route: the records' JSON text read by Arrow's C++ reader with the schema's types (as strict
        as the Python path: a number in a string field, an array for an object, a repeated key, an int field
        holding 1.0 are all refused), the json fields decoded by msgspec. A block Arrow refuses goes to the dict
        route, which finds the misfits row by row. Returns the records left for the dict route."""
        decode = self._json_decoder.decode
        objects: list[Any] = []
        kept: list[RawRecord] = []
        text = b"\n".join(record.data for record in records)
        utf8 = _valid_utf8(text)
        for record in records:
            try:
                if not utf8:  # Arrow and msgspec skip unknown fields unchecked: the Python path refuses such bytes
                    record.data.decode()
                objects.append(decode(record.data))
            except (*_DECODE_ERRORS, UnicodeDecodeError):  # not JSON, not an object, a json parent of the wrong shape
                slow.append(record)
                continue
            kept.append(record)
        if not kept:
            return []
        bulk, objects, kept, refused = self._read_blocks(objects, kept, text if len(kept) == len(records) else None)
        if bulk is None:
            return refused
        bad: set[int] = set()
        leaves = _json_columns(objects, self._json_paths, bad)
        try:
            tables.append(self._build(bulk, leaves, self._row_ids(kept), bad))
            self.routes["text"] += len(kept)
        except _BadRows as bad_rows:
            self.routes["text"] += _keep_fitting(bad_rows, kept, tables, slow)
        return refused

    def _read_blocks(self, objects: list[Any], records: list[RawRecord], text: bytes | None
                     ) -> tuple[pa.StructArray | None, list[Any], list[RawRecord], list[RawRecord]]:
        """Arrow's read of the records' text (`text`, when already joined): (struct array, objects and records it
        covers, records refused). A refused batch is read again in blocks, and a refused block in halves down to
        _TEXT_LEAST records, so one misfit costs a few records, not its block."""
        try:
            bulk = _read_json(text if text is not None else b"\n".join(r.data for r in records), self._text_schema)
            if len(bulk) == len(records):
                return bulk, objects, records, []
        except _ARROW_ERRORS:
            pass
        arrays: list[pa.StructArray] = []
        kept_objects: list[Any] = []
        kept: list[RawRecord] = []
        refused: list[RawRecord] = []
        pending = [(start, min(start + _TEXT_BLOCK, len(records))) for start in range(0, len(records), _TEXT_BLOCK)]
        pending.reverse()
        while pending:  # depth first, left half first: the kept records stay in order
            start, end = pending.pop()
            try:
                array = _read_json(b"\n".join(r.data for r in records[start:end]), self._text_schema)
            except _ARROW_ERRORS:
                array = None
            if array is not None and len(array) == end - start:
                arrays.append(array)
                kept_objects.extend(objects[start:end])
                kept.extend(records[start:end])
            elif end - start <= _TEXT_LEAST:
                refused.extend(records[start:end])
            else:
                middle = (start + end) // 2
                pending += [(middle, end), (start, middle)]
        if not arrays:
            return None, [], [], refused
        return pa.concat_arrays(arrays), kept_objects, kept, refused

    def _convert_dicts(self, records: list[RawRecord], tables: list[pa.Table], slow: list[RawRecord]) -> None:
        if self._dicts_unsupported:
            slow.extend(records)
            return
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        events: list[dict[str, Any]] = []
        kept: list[RawRecord] = []
        for record in records:
            value = record.value
            if value is NOT_DECODED:
                try:
                    value = loads(record.data)
                except decode_error:
                    slow.append(record)
                    continue
            if value.__class__ is not dict:
                slow.append(record)
                continue
            events.append(value)
            kept.append(record)
        self._convert_part(events, kept, tables, slow)

    def _convert_part(self, events: list[dict[str, Any]], records: list[RawRecord], tables: list[pa.Table],
                      slow: list[RawRecord]) -> None:
        for _attempt in range(4):
            if not events:
                return
            try:
                tables.append(self._build_dicts(events, records))
                self.routes["dicts"] += len(events)
                return
            except _BadRows as bad:
                self.routes["dicts"] += _keep_fitting(bad, records, tables, slow)
                return
            except _ARROW_ERRORS:
                refused = self._refused_rows(events)
                if not refused:
                    break
                slow.extend(records[i] for i in sorted(refused))
                events = [e for i, e in enumerate(events) if i not in refused]
                records = [r for i, r in enumerate(records) if i not in refused]
        slow.extend(records)

    def _refused_rows(self, events: list[dict[str, Any]]) -> set[int]:
        """The rows the bulk conversion refuses: chunk by chunk (about one more bulk conversion in all), then
        halving a refused chunk down to its refused rows."""
        refused: set[int] = set()
        for start in range(0, len(events), _CHUNK):
            _bisect_refused(events, self.extract_type, start, min(start + _CHUNK, len(events)), refused)
        return refused

    def _build_dicts(self, events: list[dict[str, Any]], records: list[RawRecord]) -> pa.Table:
        # Strings, booleans and timestamp text of every field (not json or numbers) in one C++ pass; json and
        # numbers from the dicts, where exact type checks keep Arrow's coercions out.
        bulk = pa.array(events, type=self.extract_type)
        bad: set[int] = set()
        leaves = {id(node): self._python_leaf(node, events, bad) for node in _walk(self.roots)
                  if node.kind in ("json", "int", "float") or node.numeric is not None}
        for node in _walk(self.roots):
            if node.kind == "array":
                _check_lists(node, events, bad)
        for root in self._array_number_roots:
            _check_array_numbers(root, [event.get(root.name) for event in events], range(len(events)), bad)
        return self._build(bulk, leaves, self._row_ids(records), bad)

    def _build(self, bulk: pa.StructArray, leaves: dict[int, pa.Array], row_ids: pa.Array, bad: set[int]) -> pa.Table:
        """The table from the bulk-read struct, the leaves taken apart from it (by node id) and the rows' p_row_ids;
        the rows whose values do not fit are collected in `bad` and raised with the table (_BadRows)."""
        n = len(bulk)
        bulk_fields = {name: i for i, name in enumerate(bulk.type.names)}
        indicators = IndicatorColumns()
        columns: list[pa.Array] = []
        times: dict[int, pa.Array] = {}
        for node in self.roots:
            raw = bulk.field(bulk_fields[node.name]) if node.name in bulk_fields else None
            try:
                array = self._finish(node, raw, leaves, None, bad, indicators, times)
            except _Misaligned:
                raise _BadRows(set(range(n))) from None
            if node.required:
                _require(None, array, None, bad)
            columns.append(array)
        # p_ fields, as Normalizer.normalize sets them.
        event_time: pa.Array = pa.nulls(n, _TIMESTAMP)
        for node in self.event_times:
            event_time = pc.coalesce(event_time, times[id(node)])
        parse_time = pa.scalar(self.parse_time, type=_TIMESTAMP)
        columns.append(pa.array([self.schema.name] * n, pa.string()))
        columns.append(event_time.fill_null(parse_time) if event_time.null_count else event_time)
        columns.append(pa.repeat(parse_time, n) if n else pa.array([], _TIMESTAMP))
        columns.append(row_ids)
        columns.append(pa.array([self.source.id] * n, pa.string()))
        columns.append(pa.array([self.source.label] * n, pa.string()))
        columns.extend(indicators.columns(n))
        columns.append(pa.nulls(n, pa.string()))
        table = pa.Table.from_arrays(columns, schema=self.arrow_schema)
        if bad:
            raise _BadRows(bad, table)
        return table

    def _row_ids(self, records: list[RawRecord]) -> pa.Array:
        """onca.logs.normalize.row_id for each record, with the (source, origin) digest computed once."""
        prefix = self._prefix
        return pa.array([f"{prefix(record.origin)}{record.position:016x}" for record in records], pa.string())

    def _prefix(self, origin: str) -> str:
        prefix = self._prefixes.get(origin)
        if prefix is None:
            prefix = self._prefixes[origin] = row_id_prefix(self.source.id, origin)
        return prefix

    # -- one field ---------------------------------------------------------------------------------------

    def _finish(self, node: _Node, raw: pa.Array | None, leaves: dict[int, pa.Array], owner: np.ndarray | None,
                bad: set[int], indicators: IndicatorColumns, times: dict[int, pa.Array]) -> pa.Array:
        """The final array of `node` from its bulk-read `raw` (parent nulls applied) or from `leaves`.

        A null in the result is exactly "absent from the Python path's row", so it also serves the required
        check: an object with no known field is null there, as is an empty timestamp text.
        """
        kind = node.kind
        if kind == "string":
            if node.scan is not None:
                indicators.add(node.scan, raw, owner)
            return raw
        if kind == "boolean":
            return raw
        if kind == "timestamp":
            array = leaves[id(node)] if raw is None else self._times(node, raw, owner, bad)
            times[id(node)] = array
            return array
        if kind in ("json", "int", "float"):
            if raw is None:
                return leaves[id(node)]
            if kind == "float":  # read as float64 by Arrow: an int literal too big to be exact is the Python path's
                _exact_floats(raw, owner, bad)
            return raw
        if kind == "object":
            children = raw.flatten()
            arrays = []
            valid = None
            for child, child_raw in zip(node.children, _align(node, raw, children), strict=True):
                array = self._finish(child, child_raw, leaves, owner, bad, indicators, times)
                if len(array) != len(raw):
                    raise _Misaligned
                if child.required:
                    _require(raw, array, owner, bad)
                arrays.append(array)
                valid = array.is_valid() if valid is None else pc.or_(valid, array.is_valid())
            mask = pc.invert(valid) if valid is not None else pa.array(np.ones(len(raw), dtype=bool))
            return pa.StructArray.from_arrays(arrays, fields=list(node.arrow), mask=mask)
        if kind == "array":
            parents = pc.list_parent_indices(raw).to_numpy()
            element_owner = parents if owner is None else owner[parents]
            element = self._finish(node.element, raw.values, leaves, element_owner, bad, indicators, times)  # type: ignore[arg-type]
            return pa.ListArray.from_arrays(raw.offsets, element, type=node.arrow, mask=raw.is_null())
        raise AssertionError(kind)

    def _python_leaf(self, node: _Node, events: list[dict[str, Any]], bad: set[int]) -> pa.Array:
        values = _values_at(events, node.path)
        kind = node.kind
        if kind == "timestamp":
            return self._python_times(node, values, bad)
        if kind == "json":
            dumps = orjson.dumps
            # Arrow takes the UTF-8 bytes as they are: no decode to str and back.
            return pa.array([None if v is None else dumps(v) for v in values], pa.string())
        misfits = _misfits(node, values)
        if misfits:
            bad.update(misfits)
            values = list(values)
            for index in misfits:
                values[index] = None
        return pa.array(values, node.arrow)  # a float field's ints, all exact here, become floats as float() does

    def _times(self, node: _Node, raw: pa.Array, owner: np.ndarray | None, bad: set[int]) -> pa.Array:
        """Each distinct value (text, or a number for the unix formats) parsed once by the schema's own parser; ""
        is absent; a refusal, or a float too large to be sure it parses as its int literal would, sends the row
        back."""
        if raw.null_count == len(raw):
            return pa.nulls(len(raw), _TIMESTAMP)
        encoded = raw.dictionary_encode()
        cache = self._cache_of(node)
        bound = node.numeric[1] if node.numeric is not None else None
        micros: list[int | None] = []
        refused: list[int] = []
        for index, value in enumerate(encoded.dictionary.to_pylist()):
            try:
                if bound is not None and abs(value) >= bound:  # 2.0**53 may be the int literal 2**53 + 1, rounded
                    raise ValueError("beyond exact float range")
                micros.append(self._micros(node, value, cache))
            except Exception:  # whatever the parser refuses is the Python path's to judge
                refused.append(index)
                micros.append(None)
        if refused:
            positions = np.flatnonzero(np.isin(encoded.indices.to_numpy(zero_copy_only=False), refused))
            bad.update((positions if owner is None else owner[positions]).tolist())
        return pa.array(micros, _TIMESTAMP).take(encoded.indices)

    def _python_times(self, node: _Node, values: list[Any], bad: set[int]) -> pa.Array:
        """A numeric-format timestamp taken from decoded events (whatever JSON type each value has), parsed as the
        Python path parses it; "" and null are absent, a refusal sends the row back."""
        cache = self._cache_of(node)
        micros: list[int | None] = []
        for row, value in enumerate(values):
            try:
                micros.append(None if value is None else self._micros(node, value, cache))
            except Exception:  # including an unhashable value (an object, an array), which the parser refuses too
                bad.add(row)
                micros.append(None)
        return pa.array(micros, _TIMESTAMP)

    @staticmethod
    def _micros(node: _Node, value: Any, cache: dict[Any, int | None]) -> int | None:
        """µs since the epoch of one timestamp value as the Python path parses it ("" is absent); raises what the
        parser raises. Cached by type and value: 1 and 1.0 need not parse alike."""
        key = (value.__class__, value)
        found = cache.get(key, _MISSING)
        if found is _MISSING:
            found = None if value == "" else (node.parse(value) - _EPOCH) // _MICRO  # type: ignore[misc]
            cache[key] = found
        return found

    def _cache_of(self, node: _Node) -> dict[Any, int | None]:
        cache = self._time_caches.setdefault(node, {})
        if len(cache) > 100_000:
            cache.clear()
        return cache


def _compile(spec: dict[str, Any], compiler: Compiler, path: tuple[str, ...], *, in_array: bool) -> _Node:
    name = spec.get("name", "")
    required = bool(spec.get("required"))
    spec = compiler.resolve(spec)
    kind = spec["type"]
    if spec.get("isEmbeddedJSON"):
        raise Unsupported("embedded JSON")
    if kind == "string":
        if "validate" in spec:
            raise Unsupported("validate")
        scan = combined_scanner(spec["indicators"]) if spec.get("indicators") else None
        return _Node(name, "string", pa.string(), required, scan=scan, path=path)
    if kind == "boolean":
        return _Node(name, "boolean", pa.bool_(), required, path=path)
    if kind == "timestamp":
        fmt = spec["timeFormat"]
        numeric = _NUMERIC_TIMES.get(fmt)
        if numeric is not None and in_array:
            raise Unsupported("numeric timestamps inside an array")
        return _Node(name, "timestamp", _TIMESTAMP, required, parse=time_parser(fmt), numeric=numeric,
                     event_time=bool(spec.get("isEventTime")), path=path)
    if kind in _INT_RANGES or kind in ("float", "json"):
        if kind == "json":
            return _Node(name, "json", pa.string(), required, path=path, in_array=in_array)
        if kind == "float":
            return _Node(name, "float", pa.float64(), required, path=path, in_array=in_array)
        arrow = pa.int16() if kind == "smallint" else pa.int64()
        return _Node(name, "int", arrow, required, int_range=_INT_RANGES[kind], path=path, in_array=in_array)
    if kind == "object":
        children = [_compile(f, compiler, (*path, f["name"]), in_array=in_array) for f in spec["fields"]]
        arrow = pa.struct([pa.field(c.name, c.arrow) for c in children])
        return _Node(name, "object", arrow, required, children=children, path=path)
    if kind == "array":
        element = _compile({**spec["element"], "name": "item"}, compiler, path, in_array=True)
        return _Node(name, "array", pa.list_(element.arrow), required, element=element, path=path,
                     in_array=in_array)
    raise Unsupported(kind)


def _extract_type(node: _Node, *, numbers: bool = False) -> pa.DataType | None:
    """What the bulk conversion reads for `node`: timestamps as text (or numbers), objects without the leaves read
    apart (json always; numbers and numeric timestamps unless `numbers`, which Arrow's JSON reader checks as
    strictly as the Python path)."""
    if node.kind in ("string", "boolean"):
        return node.arrow
    if node.kind in ("int", "float"):
        return node.arrow if numbers or node.in_array else None
    if node.kind == "timestamp":  # text, else (numeric formats) a number read by Arrow or taken in Python
        if node.numeric is None:
            return pa.string()
        return node.numeric[0] if numbers else None
    if node.kind == "object":
        # Every object keeps a place in the bulk read, even one of only json/numbers: its presence is needed.
        children = [pa.field(c.name, t) for c in node.children if (t := _extract_type(c, numbers=numbers)) is not None]
        return pa.struct(children)
    if node.kind == "array":
        element = _extract_type(node.element, numbers=numbers)  # type: ignore[arg-type]
        if element is None:
            raise Unsupported("array of json or numbers")
        return pa.list_(element)
    return None


def _keep_fitting(bad: _BadRows, records: list[RawRecord], tables: list[pa.Table], slow: list[RawRecord]) -> int:
    """The misfit rows' records go to `slow`; the table (built with their misfits nulled) keeps the other rows,
    rather than being built again. Returns how many rows it kept."""
    rows = sorted(bad.rows)
    slow.extend(records[i] for i in rows)
    keep = np.ones(len(records), dtype=bool)
    keep[rows] = False
    if bad.table is None or not keep.any():
        return 0
    tables.append(bad.table.filter(pa.array(keep)))
    return int(keep.sum())


def _bisect_refused(values: list[Any], type_: pa.DataType, start: int, end: int, refused: set[int]) -> None:
    """Halve [start, end) until the values Arrow refuses are found: ~log2(n) conversions per refused value."""
    try:
        pa.array(values[start:end], type_)
        return
    except _ARROW_ERRORS:
        if end - start == 1:
            refused.add(start)
            return
    middle = (start + end) // 2
    _bisect_refused(values, type_, start, middle, refused)
    _bisect_refused(values, type_, middle, end, refused)


def _align(node: _Node, raw: pa.StructArray, flattened: list[pa.Array]) -> Iterator[pa.Array | None]:
    """The bulk-read child arrays of an object, one per schema child (None for the ones read apart)."""
    by_name = dict(zip(raw.type.names, flattened, strict=True))
    for child in node.children:
        yield by_name.get(child.name)


def _holds_array_numbers(node: _Node) -> bool:
    if node.kind in ("int", "float"):
        return node.in_array
    return any(_holds_array_numbers(child) for child in node.children) or \
        (node.element is not None and _holds_array_numbers(node.element))


def _check_array_numbers(node: _Node, values: list[Any], rows: Sequence[int], bad: set[int]) -> None:
    """Rows whose numbers inside arrays do not fit exactly (_misfits) go to the Python path: `values` are `node`'s
    values, `rows` their rows."""
    kind = node.kind
    if kind == "array":
        elements: list[Any] = []
        owners: list[int] = []
        for value, row in zip(values, rows, strict=True):
            if value.__class__ is list:
                elements.extend(value)
                owners.extend([row] * len(value))
        _check_array_numbers(node.element, elements, owners, bad)  # type: ignore[arg-type]
    elif kind == "object":
        for child in node.children:
            if _holds_array_numbers(child):
                name = child.name
                _check_array_numbers(child, [v.get(name) if v.__class__ is dict else None for v in values], rows, bad)
    elif kind in ("int", "float"):
        bad.update(rows[index] for index in _misfits(node, values))


def _misfits(node: _Node, values: list[Any]) -> list[int]:
    """Indices of the values (null aside) that are not exactly of the number field's type, which pa.array would
    coerce (1.0 into an int, true into a float, an int past 2**53 into a float) or refuse (out of range), and the
    Python path judges itself: an int field takes ints in its range, a float field floats and exact ints."""
    types = set(map(type, values))
    if node.kind == "int":
        low, high = node.int_range  # type: ignore[misc]
        if types <= {int, type(None)}:
            checked = [v for v in values if v is not None]
            if not checked or (low <= min(checked) and max(checked) <= high):
                return []
        return [i for i, v in enumerate(values) if v is not None and not (v.__class__ is int and low <= v <= high)]
    if types <= {float, type(None)}:
        return []
    return [i for i, v in enumerate(values) if v is not None and not (
        v.__class__ is float or (v.__class__ is int and -_EXACT_FLOAT <= v <= _EXACT_FLOAT))]


def _subtree(nodes: list[_Node]) -> Iterator[_Node]:
    """Every node, array elements included (_walk stops at arrays)."""
    for node in nodes:
        yield node
        yield from _subtree(node.children)
        if node.element is not None:
            yield from _subtree([node.element])


def _walk(nodes: list[_Node]) -> Iterator[_Node]:
    for node in nodes:
        yield node
        yield from _walk(node.children)


def _values_at(events: list[dict[str, Any]], path: tuple[str, ...]) -> list[Any]:
    """The value at `path` of each event (None where a step is missing or not an object)."""
    first = path[0]
    if len(path) == 1:
        return [e.get(first) for e in events]
    values = [e.get(first) for e in events]
    for key in path[1:]:
        values = [v.get(key) if v.__class__ is dict else None for v in values]
    return values


def _require(parent: pa.Array | None, present: pa.Array, owner: np.ndarray | None, bad: set[int]) -> None:
    """Rows where an object is there but its required field is absent, null or empty go to the Python path."""
    missing = present.is_null() if parent is None else pc.and_(parent.is_valid(), present.is_null())
    if pc.any(missing).as_py():
        positions = np.flatnonzero(missing.to_numpy(zero_copy_only=False))
        bad.update((positions if owner is None else owner[positions]).tolist())


def _check_lists(node: _Node, events: list[dict[str, Any]], bad: set[int]) -> None:
    """Arrow reads a string as a list of characters: only real JSON arrays may pass."""
    values = _values_at(events, node.path)
    if not set(map(type, values)) <= {list, type(None)}:
        bad.update(i for i, v in enumerate(values) if v is not None and type(v) is not list)


def _exact_floats(values: pa.Array, owner: np.ndarray | None, bad: set[int]) -> None:
    """Rows with a float beyond 2**53: it may have been an int literal Arrow rounded, which the Python path
    judges differently; those rows take the Python path."""
    if values.null_count == len(values):
        return
    beyond = pc.greater(pc.abs(values), _EXACT_FLOAT)
    if pc.any(beyond).as_py():
        positions = np.flatnonzero(beyond.fill_null(False).to_numpy(zero_copy_only=False))
        bad.update((positions if owner is None else owner[positions]).tolist())


_EACH = ""  # a step into every element of a list (attribute names are f0, f1...)


def _json_columns(objects: list[Any], paths: list[tuple[_Node, tuple[str, ...]]], bad: set[int],
                  offset: int = 0) -> dict[int, pa.Array]:
    """The text of each json field (by node id) for every decoded record, as the Python path writes it:
    orjson.dumps of the value. `paths` give each field's steps in the Structs: attributes, and _EACH into every
    element of a list, so a json field inside an array has one value per element, in the order of Arrow's
    flattened list values. A value orjson refuses (an integer beyond 64 bits, which orjson would not have decoded
    either) sends its row (+ `offset`) to the Python path."""
    # Per step prefix: the values there, and (below a list) the record each one belongs to.
    parents: dict[tuple[str, ...], tuple[list[Any], list[int] | None]] = {(): (objects, None)}
    out: dict[int, pa.Array] = {}
    dumps = orjson.dumps
    for node, steps in paths:
        for depth in range(1, len(steps) + 1):
            if steps[:depth] not in parents:
                above, rows = parents[steps[:depth - 1]]
                step = steps[depth - 1]
                if step == _EACH:
                    owners = range(len(above)) if rows is None else rows
                    parents[steps[:depth]] = ([e for v in above if v is not None for e in v],
                                              [r for v, r in zip(above, owners, strict=True) if v is not None
                                               for _ in v])
                elif depth == 1:
                    parents[steps[:depth]] = (list(map(attrgetter(step), above)), rows)
                else:
                    parents[steps[:depth]] = ([None if v is None else getattr(v, step) for v in above], rows)
        values, rows = parents[steps]
        if not any(v is not None for v in values):
            out[id(node)] = pa.nulls(len(values), pa.string())
            continue
        try:
            texts = [None if v is None else dumps(v) for v in values]
        except orjson.JSONEncodeError:
            texts = []
            for index, value in enumerate(values):
                try:
                    texts.append(None if value is None else dumps(value))
                except orjson.JSONEncodeError:
                    bad.add(offset + (index if rows is None else rows[index]))
                    texts.append(None)
        out[id(node)] = pa.array(texts, pa.string())
    return out


def _json_struct(nodes: list[_Node], steps: tuple[str, ...], paths: list[tuple[_Node, tuple[str, ...]]],
                 name: str = "Record") -> type:
    """A msgspec Struct type keeping only the json leaves (decoded) and the objects and arrays leading to them;
    each json node's steps go to `paths`. Attributes are f0, f1... (field names need not be identifiers)."""
    fields: list[tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for node in nodes:
        attr = f"f{len(fields)}"
        if node.kind == "json":
            fields.append((attr, Any, None))
            paths.append((node, (*steps, attr)))
        elif node.kind == "object" and _holds_json(node):
            child = _json_struct(node.children, (*steps, attr), paths, f"{name}_{attr}")
            fields.append((attr, child | None, None))
        elif node.kind == "array" and node.element is not None and _holds_json(node.element):
            if node.element.kind != "object":
                raise Unsupported("json inside an array of arrays")
            child = _json_struct(node.element.children, (*steps, attr, _EACH), paths, f"{name}_{attr}")
            fields.append((attr, list[child | None] | None, None))  # type: ignore[valid-type]
        else:
            continue
        rename[attr] = node.name
    return msgspec.defstruct(name, fields, rename=rename)


def _holds_json(node: _Node) -> bool:
    return node.kind == "json" or any(_holds_json(child) for child in node.children) or \
        (node.element is not None and _holds_json(node.element))


def _valid_utf8(text: bytes) -> bool:
    """Whether `text` is UTF-8, checked by Arrow without copying it (~20 GB/s)."""
    if text.isascii():
        return True
    offsets = pa.py_buffer(np.array([0, len(text)], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(text)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _read_json(text: bytes, schema: pa.Schema) -> pa.StructArray:
    """Newline-separated JSON objects as one struct array typed by `schema`, on the calling thread."""
    options = pa_json.ReadOptions(use_threads=False, block_size=len(text) + 1)
    parse = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    table = pa_json.read_json(io.BytesIO(text), read_options=options, parse_options=parse)
    return table.to_struct_array().combine_chunks()


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic GC during batch work: decoded events are acyclic and freed by reference counting, while
    collections triggered by the ~10^6 containers a batch allocates cost ~25% of the time. Restored after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
