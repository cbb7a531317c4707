"""IndicatorColumns gives, row by row, exactly what the indicator scanners find in the row's fields."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from onca.logs.indicator_columns import IndicatorColumns
from onca.logs.indicators import ACCOUNT, ARN, INDICATOR_FIELDS, INSTANCE, TRACE, USERNAME, Found, combined_scanner

# A field: its scanner names and its value in each row. In an array field a row's value is a list of texts
# (or None for an absent array); otherwise a text or None.
Field = tuple[list[str], list[Any], bool]


def _build(fields: list[Field], n: int, scanners: dict[int, Callable[[str], Found]] | None = None) -> list[Any]:
    columns = IndicatorColumns()
    for i, (names, values, in_array) in enumerate(fields):
        scan = (scanners or {}).get(i) or combined_scanner(names)
        if in_array:
            texts = [text for row in values for text in (row or [])]
            owner = np.repeat(np.arange(n), [len(row or []) for row in values])
            columns.add(scan, pa.array(texts, pa.string()), owner)
        else:
            columns.add(scan, pa.array(values, pa.string()), None)
    out = columns.columns(n)
    assert len(out) == len(INDICATOR_FIELDS)
    for array in out:
        assert array.type == pa.list_(pa.string()) and len(array) == n
    return [array.to_pylist() for array in out]


def _expected(fields: list[Field], n: int) -> list[Any]:
    """The semantic truth: every field's scanner run on each of the row's texts, values deduplicated and sorted
    by code point, None for a row with none."""
    by_row: list[dict[str, set[str]]] = [{} for _ in range(n)]
    for names, values, in_array in fields:
        scan = combined_scanner(names)
        for row, value in enumerate(values):
            for text in (value or []) if in_array else [value]:
                for column, found in scan(text) if text else ():
                    by_row[row].setdefault(column, set()).add(found)
    return [[sorted(found[column]) if column in found else None for found in by_row] for column in INDICATOR_FIELDS]


def _check(fields: list[Field], n: int) -> list[Any]:
    got = _build(fields, n)
    assert got == _expected(fields, n)
    return got


def _col(columns: list[Any], name: str) -> list[Any]:
    return columns[INDICATOR_FIELDS.index(name)]


def test_several_fields_giving_the_same_indicator_are_deduplicated_per_row() -> None:
    account = "123456789012"
    fields: list[Field] = [
        (["aws_account_id"], [account, account, "210987654321"], False),
        (["aws_account_id"], [account, "210987654321", None], False),
        (["aws_arn"], [f"arn:aws:iam::{account}:role/Deploy", None, f"arn:aws:iam::{account}:user/bob"], False),
    ]
    got = _check(fields, 3)
    assert _col(got, ACCOUNT) == [[account], ["123456789012", "210987654321"], ["123456789012", "210987654321"]]


def test_values_sorted_by_code_point_including_non_ascii() -> None:
    # By code point "Z" < "a" < "a\x00" < "é" < "ｚ" (U+FF5A) < "😀" (U+1F600); in UTF-16 "😀" < "ｚ".
    names = ["zoe", "Zoë", "Ärger", "émile", "😀", "ｚ", "a", "Z", "a\x00", "a"]
    fields: list[Field] = [(["username"], names, False), (["username"], list(reversed(names)), False),
                           (["username"], names[3:] + names[:3], False)]
    got = _check(fields, len(names))
    assert _col(got, USERNAME)[4] == ["Z", "ｚ", "😀"]
    assert _col(got, USERNAME)[5] == ["a\x00", "ｚ", "😀"]
    assert _col(got, USERNAME)[9] == ["a", "zoe", "Ärger"]


def test_nulls_and_empty_texts_give_nothing() -> None:
    fields: list[Field] = [(["username"], [None, "", "x", None], False), (["ip"], ["", None, "", "10.0.0.1"], False),
                           (["aws_arn"], [None, None, None, None], False), (["domain"], ["", None, "", ""], False)]
    got = _check(fields, 4)
    assert _col(got, USERNAME) == [None, None, ["x"], None]
    assert _col(got, "p_any_ip_addresses") == [None, None, None, ["10.0.0.1"]]


def test_fields_inside_arrays_count_for_their_row() -> None:
    instance_arn = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890"
    fields: list[Field] = [
        (["aws_arn"], [[instance_arn, "arn:aws:s3:::logs"], [], None, ["arn:aws:s3:::logs", "arn:aws:s3:::a", ""]],
         True),
        (["aws_account_id"], [["123456789012", None], ["123456789012"], None, []], True),
        (["username"], [[], ["bob", "alice", "bob"], ["carol"], None], True),
    ]
    got = _check(fields, 4)
    assert _col(got, ARN) == [["arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890", "arn:aws:s3:::logs"],
                              None, None, ["arn:aws:s3:::a", "arn:aws:s3:::logs"]]
    assert _col(got, USERNAME) == [None, ["alice", "bob"], ["carol"], None]


def test_surrounding_whitespace_is_trimmed_as_the_scanners_do() -> None:
    # Every character str.strip() removes, before and after a user name and a trace id.
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    names = [f"{space}user{i}" for i, space in enumerate(spaces)]
    names += [f"user{i}{space}" for i, space in enumerate(spaces)]
    names += [" ", "\u3000\u00a0", "\tdave\n", "ok", "é", "inner space", "x\u00a0y"]
    fields: list[Field] = [(["username"], names, False), (["trace_id"], list(reversed(names)), False),
                           (["ip"], [f" 10.0.0.{i % 250}\u2003" for i in range(len(names))], False)]
    got = _check(fields, len(names))
    assert _col(got, USERNAME)[0] == ["user0"]
    assert _col(got, USERNAME)[len(spaces) * 2] is None  # " " alone
    assert _col(got, USERNAME)[len(spaces) * 2 + 2] == ["dave"]


def test_an_arn_gives_the_arn_its_account_and_its_instance() -> None:
    text = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234def567890"
    got = _check([(["aws_arn"], [text, f" {text} ", "arn:aws:s3:::bucket"], False)], 3)
    assert _col(got, ARN) == [[text], [text], ["arn:aws:s3:::bucket"]]
    assert _col(got, ACCOUNT) == [["123456789012"], ["123456789012"], None]
    assert _col(got, INSTANCE) == [["i-0abc1234def567890"], ["i-0abc1234def567890"], None]


def test_a_row_without_indicators_is_null_everywhere() -> None:
    fields: list[Field] = [(["ip"], ["not an ip", "10.1.2.3"], False), (["aws_arn"], ["nope", None], False),
                           (["username"], [None, "u"], False)]
    got = _check(fields, 2)
    assert all(column[0] is None for column in got)


def test_an_empty_batch() -> None:
    assert _build([(["username"], [], False), (["aws_arn"], [], True)], 0) == [[] for _ in INDICATOR_FIELDS]
    assert IndicatorColumns().columns(0) == [pa.nulls(0, pa.list_(pa.string())) for _ in INDICATOR_FIELDS]
    assert _build([], 3) == [[None] * 3 for _ in INDICATOR_FIELDS]


def test_one_value_a_row_and_several_identity_scanners() -> None:
    ids = [f"req-{i:04d}" for i in range(50)]
    got = _check([(["trace_id"], ids, False)], 50)
    assert _col(got, TRACE) == [[text] for text in ids]
    got = _check([(["username", "trace_id"], ["a", None, " b", "a"], False),
                  (["username"], ["a", "c", "b", None], False)], 4)
    assert _col(got, USERNAME) == [["a"], ["c"], ["b"], ["a"]]
    assert _col(got, TRACE) == [["a"], None, ["b"], ["a"]]


def test_sliced_and_large_string_arrays_and_warm_caches() -> None:
    scan = combined_scanner(["username"])
    arn = combined_scanner(["aws_arn"])
    for _ in range(2):  # the second round is answered from the scanners' caches
        columns = IndicatorColumns()
        columns.add(scan, pa.array(["skip", " x", "y", None, "z"]).slice(1), None)
        columns.add(arn, pa.array(["arn:aws:s3:::skip", "arn:aws:iam::123456789012:root", None, "", "no"]).slice(1),
                    None)
        got = [array.to_pylist() for array in columns.columns(4)]
        assert _col(got, USERNAME) == [["x"], ["y"], None, ["z"]]
        assert _col(got, ACCOUNT) == [["123456789012"], None, None, None]
    columns = IndicatorColumns()
    columns.add(scan, pa.array([" x", None, "y"], pa.large_string()), None)
    assert _col([array.to_pylist() for array in columns.columns(3)], USERNAME) == [["x"], None, ["y"]]


def test_null_slots_holding_bytes_give_nothing() -> None:
    # Arrow lets a null slot span bytes (e.g. after a parent's nulls are applied to a child): still a null.
    validity = pa.py_buffer(bytes([0b101]))
    offsets = pa.py_buffer(np.array([0, 3, 6, 8], dtype=np.int32).tobytes())
    raw = pa.Array.from_buffers(pa.string(), 3, [validity, offsets, pa.py_buffer(b"bobeve  ")])
    assert raw.to_pylist() == ["bob", None, "  "]
    for names, found in ((["username"], [["bob"], None, None]), (["aws_arn"], [None, None, None])):
        columns = IndicatorColumns()
        columns.add(combined_scanner(names), raw, None)
        got = [array.to_pylist() for array in columns.columns(3)]
        assert got == [found if column == USERNAME else [None] * 3 for column in INDICATOR_FIELDS]


def test_any_scanner_function_works() -> None:
    def shouty(text: str) -> Found:  # neither cached nor a combined_scanner
        return ((USERNAME, text.strip().upper()), (TRACE, text)) if text.strip() else ()

    got = _build([(["username"], ["a", " b", None, "a"], False)], 4, scanners={0: shouty})
    assert _col(got, USERNAME) == [["A"], ["B"], None, ["A"]]
    assert _col(got, TRACE) == [["a"], [" b"], None, ["a"]]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_batches_match_the_scanners(seed: int) -> None:
    rng = random.Random(seed)
    pool = ["alice", " bob", "bob", "carol\t", "Émile", "😀", "ｚ", "", "10.0.0.1", " 10.0.0.1", "::ffff:10.0.0.1",
            "example.COM", "user@example.com", "123456789012", "i-0abc1234def567890",
            "d41d8cd98f00b204e9800998ecf8427e",
            "arn:aws:iam::123456789012:role/R", "arn:aws:ec2:eu-west-1:210987654321:instance/i-01234567", "\u00a0"]
    n = 200
    wide = [f"trace-{rng.randrange(10**9)}" for _ in range(n)]  # many distinct values: the sorting branch

    def text() -> str | None:
        return None if rng.random() < 0.2 else rng.choice(pool) if rng.random() < 0.8 else rng.choice(wide)

    scanners = [["username"], ["trace_id"], ["ip"], ["hostname"], ["aws_arn"], ["aws_account_id"], ["email"],
                ["md5", "username"], ["aws_instance_id"], ["net_addr", "domain"]]
    fields: list[Field] = []
    for names in scanners:
        fields.append((names, [text() for _ in range(n)], False))
        fields.append((names, [None if rng.random() < 0.1 else [text() for _ in range(rng.randrange(4))]
                               for _ in range(n)], True))
    _check(fields, n)
