"""The p_any_* columns of a batch, built column-wise from the indicator fields' string columns.

Per row, each p_any column holds the distinct values its fields' scanners found, sorted by code point, or
null when there are none: exactly what onca.logs.normalize gives record by record. The Python work is kept
off the rows and, where possible, off the distinct values too: a scanner runs once per distinct value of a
column (answered from its cache by a C-level map when it can), the fields whose scanner returns just the
trimmed text (trace ids, user names: often one distinct value per row) skip it wherever the text provably
has nothing to trim, and the values are interned, ordered and deduplicated with Arrow and numpy.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from onca.logs.indicators import INDICATOR_FIELDS, TRACE, USERNAME, Found, scan_trace_id, scan_username

_STRINGS = pa.list_(pa.string())
_CODES = {column: code for code, column in enumerate(INDICATOR_FIELDS)}

# Scanners whose result for a text is ((column, text.strip()),) when that is not empty, else ().
_IDENTITY: dict[Callable[[str], Found], str] = {scan_trace_id: TRACE, scan_username: USERNAME}

# Bytes a UTF-8 text may start or end with when str.strip() would change it: the ASCII characters it removes,
# and every non-ASCII byte (the other characters it removes are all non-ASCII, and a character's bytes are all
# >= 0x80 unless it is ASCII). Texts with such an edge simply go through the scanner.
_EDGE = np.array([chr(byte).isspace() or byte >= 0x80 for byte in range(256)])

# A hit list: (row of each hit, id of the hit's value in `values`, values).
_Hits = tuple[np.ndarray, np.ndarray, pa.StringArray]


class IndicatorColumns:
    """Collects the indicator values of a batch's string columns; `columns(n)` gives the p_any_* arrays."""

    def __init__(self) -> None:
        self._hits: dict[str, list[_Hits]] = {}  # by p_any column

    def add(self, scan: Callable[[str], Found], raw: pa.Array, owner: np.ndarray | None) -> None:
        """The indicators `scan` (a combined_scanner) finds in the string column `raw`, one text a position;
        `owner` maps each position to its row (a field inside an array), None when positions are rows."""
        if raw.null_count == len(raw):
            return
        if raw.type != pa.string():  # the byte checks below read 32-bit offsets
            raw = raw.cast(pa.string())
        rows = np.arange(len(raw), dtype=np.int64) if owner is None else owner.astype(np.int64, copy=False)
        identity = _identity_columns(scan)
        if identity:
            # Where the scanner would give (column, text) for each of its columns, the hits are the texts
            # themselves: no hashing, no Python. Only the other texts (rare) go through the scanner.
            starts, ends, data = _bounds(raw)
            maybe = np.flatnonzero((ends > starts) & _valid(raw))  # "" and null give nothing
            edged = _EDGE[data[starts[maybe]]] | _EDGE[data[ends[maybe] - 1]]
            as_is, rest = maybe[~edged], maybe[edged]
            for column in identity:
                self._hits.setdefault(column, []).append((rows[as_is], as_is, raw))
            if not len(rest):
                return
            raw, rows = raw.take(pa.array(rest)), rows[rest]
        self._scan_distinct(scan, raw, rows)

    def columns(self, n: int) -> list[pa.Array]:
        """The p_any_* columns in INDICATOR_FIELDS order, each a list<string> array of length n."""
        return [_column(self._hits.get(column, []), n) for column in INDICATOR_FIELDS]

    def _scan_distinct(self, scan: Callable[[str], Found], raw: pa.Array, rows: np.ndarray) -> None:
        """Hits of the texts in `raw` (at rows `rows`), scanning each distinct text once."""
        # Nulls encoded as an entry of their own: the indices have no nulls, so numpy reads them in place.
        encoded = raw.dictionary_encode(null_encoding="encode")
        dictionary: pa.StringArray = encoded.dictionary
        indices = encoded.indices.to_numpy()
        starts, ends, _ = _bounds(dictionary)
        to_scan = np.flatnonzero((ends > starts) & _valid(dictionary))  # "" and null give nothing
        if not len(to_scan):
            return
        texts = (dictionary if len(to_scan) == len(dictionary) else dictionary.take(pa.array(to_scan))).to_pylist()
        results = _scan_all(scan, texts)
        lengths = np.fromiter(map(len, results), np.int64, len(results))
        if not lengths.any():
            return
        # Only the positions whose text has pairs matter from here on.
        with_pairs = to_scan[lengths > 0]
        has_pairs = np.zeros(len(dictionary), dtype=bool)
        has_pairs[with_pairs] = True
        present = np.flatnonzero(has_pairs[indices])
        indices, rows = indices[present], rows[present]
        # Every pair, flat: its distinct text, column code and slot (place in the text's tuple). A (column,
        # slot) group holds at most one pair per distinct text, so it maps distinct texts to values.
        columns, values = zip(*chain.from_iterable(results), strict=True)
        pair_text = np.repeat(to_scan, lengths)
        slot = np.arange(len(columns)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        width = int(lengths.max())
        group = np.fromiter(map(_CODES.__getitem__, columns), np.int64, len(columns)) * width + slot
        pair_values = pa.array(values, pa.string())
        for key in np.flatnonzero(np.bincount(group)).tolist():
            pairs = np.flatnonzero(group == key)
            lookup = np.full(len(dictionary), -1, dtype=np.int64)
            lookup[pair_text[pairs]] = np.arange(len(pairs))
            found, found_rows = lookup[indices], rows
            if len(pairs) < len(with_pairs):  # not every text has a pair in this group
                hit = np.flatnonzero(found >= 0)
                found, found_rows = found[hit], rows[hit]
            self._hits.setdefault(INDICATOR_FIELDS[key // width], []).append(
                (found_rows, found, pair_values.take(pa.array(pairs))))


def _identity_columns(scan: Callable[[str], Found]) -> tuple[str, ...]:
    """The columns of a combined_scanner made only of identity scanners (its `parts`), else ()."""
    parts = getattr(scan, "parts", ())
    if not parts or not all(part in _IDENTITY for part in parts):
        return ()
    return tuple(_IDENTITY[part] for part in parts)


def _bounds(strings: pa.StringArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start and end byte offsets of each text in the data buffer, and the buffer's bytes."""
    _, offsets, data = strings.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32)[strings.offset:strings.offset + len(strings) + 1]
    return bounds[:-1], bounds[1:], np.frombuffer(data, dtype=np.uint8) if data else np.empty(0, dtype=np.uint8)


def _valid(strings: pa.Array) -> np.ndarray:
    return strings.is_valid().to_numpy(zero_copy_only=False) if strings.null_count else np.ones(len(strings), bool)


def _scan_all(scan: Callable[[str], Found], texts: list[str]) -> list[Found]:
    """scan(text) for each text. The cache of a combined_scanner holds exactly what scan returned for a text,
    so a C-level map of its get answers most texts; only the rest pay a Python call."""
    cache = getattr(scan, "cache", None)
    results = list(map(cache.get, texts)) if isinstance(cache, dict) else [None] * len(texts)
    if None in results:
        results = [scan(text) if found is None else found for text, found in zip(texts, results, strict=True)]
    return results


def _column(hits: list[_Hits], n: int) -> pa.Array:
    """One p_any column from its hits: per row the distinct values in code point order, null when none."""
    if not any(len(rows) for rows, _, _ in hits):
        return pa.nulls(n, _STRINGS)
    if len(hits) == 1:
        rows, picks, values = hits[0]
    else:
        rows = np.concatenate([rows for rows, _, _ in hits])
        values = pa.concat_arrays([values for _, _, values in hits])
        bases = np.cumsum([0] + [len(part) for _, _, part in hits[:-1]])  # where each hit list's values start
        picks = np.concatenate([base + ids for base, (_, ids, _) in zip(bases, hits, strict=True)])
    counts = np.bincount(rows, minlength=n)
    if counts.max() == 1:
        # At most one value a row (e.g. a trace id): nothing to deduplicate or order, so no string sort.
        by_row = np.empty(len(rows), dtype=np.int64)
        by_row[_offsets(counts)[rows]] = picks
        if len(by_row) == len(values) and (by_row == np.arange(len(values))).all():
            return _lists(counts, values)  # every value picked, in row order: no copy
        return _lists(counts, values.take(pa.array(by_row)))
    # Intern the values; UTF-8 byte order (Arrow's sort) is code point order (Python's).
    encoded = values.dictionary_encode(null_encoding="encode")  # no pick is at a null
    distinct = encoded.dictionary
    order = pc.sort_indices(distinct).to_numpy()
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[order] = np.arange(len(distinct))
    width = len(distinct)
    keys = rows * width + rank[encoded.indices.to_numpy()[picks]]
    # A key per (row, value): in increasing order they run by row then value, and a row's repeats are equal
    # neighbours. Few distinct values (account ids): mark the keys in a bitmap; many: sort them (np.sort and
    # a mask, as numpy 2's np.unique is several times slower).
    if n * width <= 16 * len(keys):
        marks = np.zeros(n * width, dtype=bool)
        marks[keys] = True
        keys = np.flatnonzero(marks)
    else:
        keys = np.sort(keys)
        keys = keys[np.append(True, keys[1:] != keys[:-1])]
    row_of, ranks = np.divmod(keys, width)
    return _lists(np.bincount(row_of, minlength=n), distinct.take(pa.array(order[ranks])))


def _offsets(counts: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    offsets[1:] = counts.cumsum()
    return offsets


def _lists(counts: np.ndarray, values: pa.Array) -> pa.Array:
    """The list<string> array giving each row its `counts` next values; a row with none is null."""
    return pa.ListArray.from_arrays(pa.array(_offsets(counts)), values, type=_STRINGS, mask=pa.array(counts == 0))
