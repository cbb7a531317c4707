"""The directory poller: complete files only, chunks, done/, and exactly-once across restarts."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from onca.pipeline.poller_dir import DirectoryPoller, DirPollerConfig
from onca.pipeline.spool import Spool


class Crash(BaseException):
    """Stands for the process dying at this point (nothing after it runs)."""


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool") as s:
        yield s


def make_poller(spool: Spool, tmp_path: Path, **config: float) -> DirectoryPoller:
    return DirectoryPoller(spool, "files", tmp_path / "in", tmp_path / "state",
                           DirPollerConfig(**{"stable_seconds": 0, "chunk_records": 10, **config}))


def records(spool: Spool) -> list[bytes]:
    return [r for e in spool.scan() for r in e.records]


def write(path: Path, n: int, prefix: str) -> list[bytes]:
    lines = [f'{{"f":"{prefix}","i":{i}}}'.encode() for i in range(n)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return lines


def test_files_are_spooled_in_chunks_and_moved(spool: Spool, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    a = write(tmp_path / "in" / "a.json", 25, "a")
    b = [f'{{"g":{i}}}'.encode() for i in range(7)]
    (tmp_path / "in" / "b.json.gz").write_bytes(gzip.compress(b"\n".join(b)))
    (tmp_path / "in" / ".hidden").write_bytes(b"ignored\n")
    (tmp_path / "in" / "empty.log").write_bytes(b"")
    poller = make_poller(spool, tmp_path)
    assert poller.poll_once() == 3
    assert records(spool) == a + b
    assert [len(e.records) for e in spool.scan()] == [10, 10, 5, 7]
    assert sorted(os.listdir(tmp_path / "in")) == [".hidden", "done"]
    assert sorted(os.listdir(tmp_path / "in" / "done")) == ["a.json", "b.json.gz", "empty.log"]
    assert poller.poll_once() == 0
    # A later file with a name already in done/ is kept apart.
    again = write(tmp_path / "in" / "a.json", 3, "a2")
    assert poller.poll_once() == 1
    assert records(spool)[-3:] == again
    assert sorted(os.listdir(tmp_path / "in" / "done")) == ["a.json", "a.json.1", "b.json.gz", "empty.log"]


def test_a_growing_file_waits_until_stable(spool: Spool, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    poller = make_poller(spool, tmp_path, stable_seconds=5)
    path = tmp_path / "in" / "growing.log"
    path.write_bytes(b"one\n")
    assert poller.poll_once(now=100) == 0
    with path.open("ab") as f:
        f.write(b"two\n")
    assert poller.poll_once(now=104) == 0  # changed: the clock restarts
    assert poller.poll_once(now=108) == 0
    assert poller.poll_once(now=109.5) == 1
    assert records(spool) == [b"one", b"two"]


@pytest.mark.parametrize("crash_at", ["before_append", "after_append", "before_move", "after_move"])
def test_restart_after_a_crash_neither_loses_nor_duplicates(spool: Spool, tmp_path: Path, crash_at: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "in").mkdir()
    lines = write(tmp_path / "in" / "big.log", 35, "big")
    poller = make_poller(spool, tmp_path)
    real_append = spool.append
    calls = {"n": 0}

    def append(source_id: str, recs: list[bytes]) -> int:
        calls["n"] += 1
        if calls["n"] == 3 and crash_at == "before_append":
            raise Crash
        position = real_append(source_id, recs)
        if calls["n"] == 3 and crash_at == "after_append":
            raise Crash  # appended, but the poller never learnt it
        return position

    monkeypatch.setattr(spool, "append", append)
    if crash_at in ("before_move", "after_move"):
        real_move = poller._move_done

        def move(path: Path) -> None:
            if crash_at == "after_move":
                real_move(path)
            raise Crash

        monkeypatch.setattr(poller, "_move_done", move)
    with pytest.raises(Crash):
        poller.poll_once()
    monkeypatch.undo()
    restarted = make_poller(spool, tmp_path)  # a new process: state from disk only
    restarted.poll_once()
    assert records(spool) == lines
    assert os.listdir(tmp_path / "in") == ["done"]
    assert restarted.poll_once() == 0
    assert records(spool) == lines
    if crash_at == "after_append":
        assert restarted.chunks_recovered == 1


def test_background_thread(spool: Spool, tmp_path: Path) -> None:
    import time

    (tmp_path / "in").mkdir()
    poller = make_poller(spool, tmp_path, poll_interval=0.05, stable_seconds=0.1)
    poller.start()
    try:
        lines = write(tmp_path / "in" / ".tmp-upload", 12, "x")
        os.rename(tmp_path / "in" / ".tmp-upload", tmp_path / "in" / "upload.log")  # moved in whole
        deadline = time.monotonic() + 10
        while len(records(spool)) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()
    assert records(spool) == lines
