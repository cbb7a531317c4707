"""The durable spool: framing, torn tails, checkpoints, segment deletion, concurrency."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from onca.pipeline.spool import MAGIC, Spool, SpoolCorrupt, SpoolLocked, decode_body, encode_body


def test_framing_round_trip(tmp_path: Path) -> None:
    records = [b"", b"plain", b'{"a": 1}', bytes(range(256)), b"x" * 100_000]
    body = encode_body("s\u00e9rvice", records)
    assert decode_body(body) == ("s\u00e9rvice", records)
    with Spool(tmp_path) as spool:
        assert spool.append("a", records) == 1
        assert spool.append("b", [b"one"]) == 2
        assert spool.last_position() == 2
        got = list(spool.reader("c"))
    assert [(e.position, e.source_id, e.records) for e in got] == [(1, "a", records), (2, "b", [b"one"])]
    data = (tmp_path / "00000000000000000001.seg").read_bytes()
    assert data.startswith(MAGIC)


def test_reopen_continues_positions_and_reader_sees_only_new(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        for i in range(5):
            spool.append("s", [str(i).encode()])
        reader = spool.reader("w")
        assert [e.position for e in reader.read(3)] == [1, 2, 3]
        reader.commit(3)
    with Spool(tmp_path) as spool:
        assert spool.append("s", [b"5"]) == 6
        reader = spool.reader("w")
        assert [(e.position, e.records) for e in reader] == [(4, [b"3"]), (5, [b"4"]), (6, [b"5"])]


@pytest.mark.parametrize("cut", [1, 5, 19, 20, 21, 30])
def test_torn_final_entry_is_truncated(tmp_path: Path, cut: int) -> None:
    with Spool(tmp_path) as spool:
        spool.append("s", [b"first"])
        spool.append("s", [b"second", b"x" * 20])
    seg = tmp_path / "00000000000000000001.seg"
    data = seg.read_bytes()
    whole_first = len(MAGIC) + 20 + len(encode_body("s", [b"first"]))
    seg.write_bytes(data[: whole_first + cut])  # the second entry cut mid-header or mid-body
    with Spool(tmp_path) as spool:
        assert spool.torn_bytes == cut
        assert seg.stat().st_size == whole_first
        assert [e.records for e in spool.reader("c")] == [[b"first"]]
        assert spool.append("s", [b"again"]) == 2  # the torn position was never delivered: reused
        assert [e.records for e in spool.scan(1)] == [[b"again"]]


def test_garbage_tail_and_bit_flip_are_cut(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.append("s", [b"first"])
        spool.append("s", [b"second"])
    seg = tmp_path / "00000000000000000001.seg"
    data = bytearray(seg.read_bytes())
    data[-2] ^= 0xFF  # corrupt the last entry's body: crc mismatch
    seg.write_bytes(bytes(data) + os.urandom(1000))
    with Spool(tmp_path) as spool:
        assert [e.records for e in spool.reader("c")] == [[b"first"]]
        assert spool.last_position() == 1


def test_crash_while_creating_segment(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=64) as spool:
        spool.append("s", [b"a" * 100])
        spool.append("s", [b"b"])  # rolls: segment 2
    (tmp_path / "00000000000000000003.seg").write_bytes(MAGIC[:3])  # a segment whose magic never finished
    with Spool(tmp_path, segment_bytes=64) as spool:
        assert spool.append("s", [b"c"]) == 3
        assert [e.records for e in spool.reader("r")] == [[b"a" * 100], [b"b"], [b"c"]]


def test_corruption_in_an_older_segment_is_reported(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=64) as spool:
        for i in range(3):
            spool.append("s", [str(i).encode() * 80])
    seg = tmp_path / "00000000000000000001.seg"
    data = bytearray(seg.read_bytes())
    data[40] ^= 0xFF
    seg.write_bytes(bytes(data))
    with Spool(tmp_path, segment_bytes=64) as spool, pytest.raises(SpoolCorrupt):
        list(spool.reader("r"))


def test_segments_roll_and_are_deleted_when_every_consumer_is_done(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=1000) as spool:
        for i in range(50):
            spool.append("s", [b"%03d" % i + b"x" * 200])
        segments = spool.segments()
        assert len(segments) > 5
        a, b = spool.reader("a"), spool.reader("b")
        assert len(list(a)) == 50 and len(list(b)) == 50
        a.commit(50)
        assert spool.segments() == segments  # b still holds everything back
        b.commit(20)
        remaining = spool.segments()
        assert remaining[0] <= 21 and len(remaining) < len(segments)
        assert all(following - 1 > 20 for following in remaining[1:2])
        b.commit(50)
        assert spool.segments() == [segments[-1]]  # the active segment always stays
        assert spool.append("s", [b"next"]) == 51
    with Spool(tmp_path, segment_bytes=1000) as spool:  # positions survive full deletion
        assert spool.append("s", [b"again"]) == 52
        assert [e.position for e in spool.reader("a")] == [51, 52]
        late = spool.reader("late")  # a consumer registered late starts at the oldest retained entry
        assert next(e.position for e in late) == spool.segments()[0]


def test_commit_is_atomic_and_survives_reopen(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        for _ in range(3):
            spool.append("s", [b"r"])
        spool.commit("w", 2)
    assert not list((tmp_path / "consumers").glob(".*"))  # no temp file left
    with Spool(tmp_path) as spool:
        assert spool.checkpoint("w") == 2
        assert [e.position for e in spool.reader("w")] == [3]


def test_second_process_cannot_append(tmp_path: Path) -> None:
    import subprocess
    import sys

    with Spool(tmp_path):
        code = "import sys; from onca.pipeline.spool import Spool, SpoolLocked\n" \
               "try:\n Spool(sys.argv[1])\nexcept SpoolLocked:\n sys.exit(7)\n"
        assert subprocess.run([sys.executable, "-c", code, str(tmp_path)]).returncode == 7
    with pytest.raises(SpoolLocked), Spool(tmp_path), Spool(tmp_path):
        pass


def test_concurrent_appenders_and_blocking_reader(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=20_000) as spool:
        reader = spool.reader("w")
        got: list[bytes] = []

        def consume() -> None:
            while len(got) < 8 * 200:
                for entry in reader.read(100, timeout=5):
                    got.extend(entry.records)

        consumer = threading.Thread(target=consume)
        consumer.start()

        def produce(t: int) -> None:
            for i in range(200):
                spool.append(f"t{t}", [f"{t}-{i}".encode()])

        threads = [threading.Thread(target=produce, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        consumer.join(timeout=30)
        assert sorted(got) == sorted(f"{t}-{i}".encode() for t in range(8) for i in range(200))
        positions = [e.position for e in spool.scan()]
        assert positions == list(range(1, 1601))
        # Per producer, order is kept.
        for t in range(8):
            mine = [int(r.split(b"-")[1]) for r in got if r.startswith(f"{t}-".encode())]
            assert mine == sorted(mine)


def test_readonly_reader_in_the_same_directory(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=500) as spool:
        for i in range(20):
            spool.append("s", [b"%d" % i * 30])
        other = Spool(tmp_path, readonly=True, segment_bytes=500)
        reader = other.reader("remote")
        assert [e.position for e in reader] == list(range(1, 21))
        reader.commit(10)
        spool.append("s", [b"more"])
        assert [e.position for e in reader] == [21]
        assert spool.checkpoint("remote") == 10
