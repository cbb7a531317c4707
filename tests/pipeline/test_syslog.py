"""Syslog over UDP and TCP (octet-counting and newline framing) into the spool."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from onca.pipeline.intake_syslog import SyslogConfig, SyslogFramer, SyslogIntake
from onca.pipeline.spool import Spool


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool") as s:
        yield s


@pytest.fixture
def syslog(spool: Spool) -> Iterator[SyslogIntake]:
    intake = SyslogIntake(spool, "syslog-main", SyslogConfig(flush_interval=0.05, max_message_bytes=1000))
    intake.start()
    yield intake
    intake.stop()


def wait_for(spool: Spool, n: int, timeout: float = 10) -> list[bytes]:
    deadline = time.monotonic() + timeout
    while True:
        records = [r for e in spool.scan() for r in e.records]
        if len(records) >= n or time.monotonic() > deadline:
            return records
        time.sleep(0.02)


def test_framer() -> None:
    f = SyslogFramer(max_message=20)
    assert f.feed(b"<13>hello\n<13>wor") == [b"<13>hello"]
    assert f.feed(b"ld\r\n12 <13>counted") == [b"<13>world"]
    assert f.feed(b"!7 <13>ab\n") == [b"<13>counted!", b"<13>ab"]
    assert f.feed(b"25 <13>" + b"x" * 18) == [b"<13>" + b"x" * 16]  # truncated to 20 ...
    assert f.feed(b"yyy<13>next\n") == [b"<13>next"]  # ... and the rest of the frame skipped
    assert f.feed(b"<13>" + b"z" * 30) == [b"<13>" + b"z" * 16]
    assert f.feed(b"zz\n<13>after\n") == [b"<13>after"]
    assert f.feed(b"<13>no trailer") == []
    assert f.finish() == [b"<13>no trailer"]


def test_udp_one_datagram_one_record(syslog: SyslogIntake, spool: Spool) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    messages = [b"<34>Oct 11 22:14:15 host su: message %d" % i for i in range(200)]
    for m in messages:
        sock.sendto(m + b"\n", syslog.udp_address)
    sock.sendto(b"<34>multi\nline", syslog.udp_address)
    sock.close()
    records = wait_for(spool, 201)
    assert records == [*messages, b"<34>multi\nline"]
    assert {e.source_id for e in spool.scan()} == {"syslog-main"}
    assert len(list(spool.scan())) < 201  # batched


def test_tcp_both_framings(syslog: SyslogIntake, spool: Spool) -> None:
    newline = socket.create_connection(syslog.tcp_address)
    counted = socket.create_connection(syslog.tcp_address)
    for i in range(100):
        newline.sendall(b"<13>nl %d\n" % i)
        message = b"<13>oc %d with\nembedded newline" % i
        counted.sendall(b"%d " % len(message) + message)
    counted.sendall(b"3 <1>")
    newline.sendall(b"<13>last without trailer")
    newline.close()
    counted.close()
    records = wait_for(spool, 202)
    assert sorted(records) == sorted(
        [b"<13>nl %d" % i for i in range(100)]
        + [b"<13>oc %d with\nembedded newline" % i for i in range(100)]
        + [b"<1>", b"<13>last without trailer"])
    # Order within one connection is kept.
    nl = [r for r in records if r.startswith(b"<13>nl")]
    assert nl == [b"<13>nl %d" % i for i in range(100)]


def test_stop_flushes(spool: Spool) -> None:
    intake = SyslogIntake(spool, "s", SyslogConfig(flush_interval=60, udp_port=None))
    intake.start()
    conn = socket.create_connection(intake.tcp_address)
    conn.sendall(b"<13>a\n<13>b\n")
    conn.close()
    time.sleep(0.3)
    intake.stop()
    assert [r for e in spool.scan() for r in e.records] == [b"<13>a", b"<13>b"]
