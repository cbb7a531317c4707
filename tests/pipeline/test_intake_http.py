"""HTTP push intake against a real server on 127.0.0.1: auth, limits, encodings, slow clients, durability."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from onca.pipeline.intake_http import HttpIntake, HttpIntakeConfig, gunzip, split_records
from onca.pipeline.spool import Spool
from onca.pipeline.tokens import TokenIndex, issue_token
from onca.store import db
from tests.pipeline.conftest import post


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool") as s:
        yield s


@pytest.fixture
def intake(spool: Spool, database: tuple[str, Engine], tokens: dict[str, str]) -> Iterator[HttpIntake]:
    config = HttpIntakeConfig(max_body_bytes=1 << 20, max_decoded_bytes=4 << 20, header_timeout=1.0,
                              body_timeout=2.0, io_timeout=1.0, keepalive_timeout=2.0)
    server = HttpIntake(spool, TokenIndex(database[1]), config)
    server.start()
    yield server
    server.stop()


def auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def spooled(spool: Spool) -> list[tuple[str, bytes]]:
    return [(e.source_id, r) for e in spool.scan() for r in e.records]


def test_split_records() -> None:
    assert split_records(b'{"a":1}\n{"b":2}\r\n\n  \n') == [b'{"a":1}', b'{"b":2}']
    assert split_records(b'[{"a": 1}, 2, "x"]') == [b'{"a":1}', b"2", b'"x"']
    assert split_records(b'{\n  "a": 1\n}\n') == [b'{"a":1}']  # one pretty-printed document
    assert split_records(b"not json\n{broken\n") == [b"not json", b"{broken"]
    assert split_records(b"[1, 2") == [b"[1, 2"]  # malformed: kept for the quarantine
    assert split_records(b"") == []


def test_accepts_ndjson_array_and_text(intake: HttpIntake, spool: Spool, tokens: dict[str, str]) -> None:
    status, body = post(intake.address, "/ingest/web", b'{"a":1}\n{"a":2}\n', auth(tokens["web"]))
    assert (status, body) == (202, {"accepted": 2})
    assert post(intake.address, "/ingest/web", b'[{"a":3},{"a":4},{"a":5}]', auth(tokens["web"]))[1] == \
        {"accepted": 3}
    assert post(intake.address, "/ingest/other", b"line one\nline two", auth(tokens["other"]))[1] == \
        {"accepted": 2}
    assert post(intake.address, "/ingest/web", b"{not json\n", auth(tokens["web"]))[0] == 202
    assert spooled(spool) == [
        ("web", b'{"a":1}'), ("web", b'{"a":2}'), ("web", b'{"a":3}'), ("web", b'{"a":4}'), ("web", b'{"a":5}'),
        ("other", b"line one"), ("other", b"line two"), ("web", b"{not json"),
    ]


def test_202_only_after_the_records_are_durable(intake: HttpIntake, spool: Spool, tokens: dict[str, str]) -> None:
    # Every acknowledgement must find its records already in the spool, read back from disk by a separate
    # read-only Spool (which only sees what was written to the segment files).
    other = Spool(spool.dir, readonly=True)
    for i in range(20):
        status, body = post(intake.address, "/ingest/web", b'{"n":%d}\n' % i * 10, auth(tokens["web"]))
        assert status == 202 and body == {"accepted": 10}
        on_disk = [r for e in other.scan() for r in e.records]
        assert len(on_disk) == 10 * (i + 1)
        assert spool.last_position() == i + 1  # fdatasync()ed: the durable watermark covers it


def test_gzip_bodies(intake: HttpIntake, spool: Spool, tokens: dict[str, str]) -> None:
    body = b"".join(b'{"i":%d}\n' % i for i in range(1000))
    status, answer = post(intake.address, "/ingest/web", gzip.compress(body),
                          auth(tokens["web"], **{"Content-Encoding": "gzip"}))
    assert (status, answer) == (202, {"accepted": 1000})
    two_members = gzip.compress(b"a\n") + gzip.compress(b"b\n")
    assert post(intake.address, "/ingest/web", two_members,
                auth(tokens["web"], **{"Content-Encoding": "gzip"}))[1] == {"accepted": 2}
    status, answer = post(intake.address, "/ingest/web", b"\x1f\x8b\x08garbage",
                          auth(tokens["web"], **{"Content-Encoding": "gzip"}))
    assert status == 400
    truncated = gzip.compress(body)[:-20]
    assert post(intake.address, "/ingest/web", truncated,
                auth(tokens["web"], **{"Content-Encoding": "gzip"}))[0] == 400
    bomb = gzip.compress(b"\n" * (5 << 20))  # 5 MiB decoded > the 4 MiB decoded limit, ~5 KiB sent
    assert post(intake.address, "/ingest/web", bomb, auth(tokens["web"], **{"Content-Encoding": "gzip"}))[0] == 413
    assert len(spooled(spool)) == 1002


def test_gunzip_limit_is_exact() -> None:
    assert gunzip(gzip.compress(b"x" * 100), 100) == b"x" * 100


def test_auth_and_unknown_sources(intake: HttpIntake, spool: Spool, tokens: dict[str, str]) -> None:
    body = b'{"a":1}\n'
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer wrong"},
                    {"Authorization": f"Basic {tokens['web']}"}, auth(tokens["web"] + "x")):
        status, answer = post(intake.address, "/ingest/web", body, headers)
        assert (status, answer) == (401, {"error": "missing or invalid token"})
    # Without a valid token an unknown source is indistinguishable from a wrong token.
    assert post(intake.address, "/ingest/nosuch", body)[0] == 401
    assert post(intake.address, "/ingest/nosuch", body, auth(tokens["web"]))[0] == 404
    assert post(intake.address, "/ingest/other", body, auth(tokens["web"]))[0] == 401  # another source's token
    assert post(intake.address, "/elsewhere", body, auth(tokens["web"]))[0] == 404
    assert spooled(spool) == []


def test_rotated_token_replaces_the_old_one(intake: HttpIntake, database: tuple[str, Engine],
                                            tokens: dict[str, str]) -> None:
    with db.session_scope(database[1]) as session:
        new = issue_token(session, "web")
    intake.sources.refresh()  # type: ignore[attr-defined]
    assert post(intake.address, "/ingest/web", b"x", auth(tokens["web"]))[0] == 401
    assert post(intake.address, "/ingest/web", b"x", auth(new))[0] == 202


def test_body_limit(intake: HttpIntake, spool: Spool, tokens: dict[str, str]) -> None:
    big = b"x" * ((1 << 20) + 1)
    assert post(intake.address, "/ingest/web", big, auth(tokens["web"]))[0] == 413
    # A lying Content-Length is refused before anything is read.
    sock = socket.create_connection(intake.address, timeout=5)
    sock.sendall(b"POST /ingest/web HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tokens["web"].encode()
                 + b"\r\nContent-Length: 99999999999\r\n\r\n")
    assert sock.recv(100).startswith(b"HTTP/1.1 413")
    sock.close()
    # Chunked bodies are counted while reading: the 413 comes as soon as the limit is passed, and the server
    # may close while the client is still sending (the client then sees a broken pipe, not an error).
    sock = socket.create_connection(intake.address, timeout=10)
    sock.sendall(b"POST /ingest/web HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tokens["web"].encode()
                 + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        for _ in range(4):
            sock.sendall(b"%x\r\n" % 300_000 + b"y" * 300_000 + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
    assert sock.recv(100).startswith(b"HTTP/1.1 413")
    sock.close()
    ok = http.client.HTTPConnection(*intake.address, timeout=10)
    ok.request("POST", "/ingest/web", body=iter([b"a\nb", b"\nc\n"]), headers=auth(tokens["web"]),
               encode_chunked=True)
    response = ok.getresponse()
    assert (response.status, json.loads(response.read())) == (202, {"accepted": 3})
    ok.close()
    assert [r for _s, r in spooled(spool)] == [b"a", b"b", b"c"]


def test_healthz(intake: HttpIntake) -> None:
    conn = http.client.HTTPConnection(*intake.address, timeout=5)
    conn.request("GET", "/healthz")
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read()) == {"status": "ok"}
    conn.close()


def test_slow_clients_are_cut_off_without_blocking_others(intake: HttpIntake, spool: Spool,
                                                          tokens: dict[str, str]) -> None:
    token = tokens["web"].encode()
    # 1: headers sent, body stalls. 2: headers trickle a byte at a time, forever. 3: connects, says nothing.
    stalled_body = socket.create_connection(intake.address, timeout=10)
    stalled_body.sendall(b"POST /ingest/web HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token
                         + b"\r\nContent-Length: 1000\r\n\r\npartial")
    trickle = socket.create_connection(intake.address, timeout=10)
    silent = socket.create_connection(intake.address, timeout=10)
    stop = threading.Event()

    cut_off: list[bool] = []

    def drip() -> None:
        try:
            for byte in b"POST /ingest/web HTTP/1.1\r\nX-Slow: " + b"a" * 1000:
                if stop.is_set():
                    return
                trickle.send(bytes([byte]))
                time.sleep(0.1)
        except OSError:
            cut_off.append(True)  # the server ended the connection mid-drip

    dripper = threading.Thread(target=drip)
    dripper.start()
    started = time.monotonic()
    # Meanwhile a normal client is served at once, several times.
    for i in range(5):
        t0 = time.monotonic()
        assert post(intake.address, "/ingest/web", b'{"i":%d}' % i, auth(tokens["web"]))[0] == 202
        assert time.monotonic() - t0 < 0.5
    assert stalled_body.recv(200).startswith(b"HTTP/1.1 408")  # io_timeout 1 s
    dripper.join(timeout=10)
    stop.set()
    assert cut_off == [True]  # the 1 s header deadline cut the trickle off
    assert silent.recv(10) == b""  # closed by the server (keep-alive idle timeout 2 s)
    assert time.monotonic() - started < 5
    assert len(spooled(spool)) == 5
    for s in (stalled_body, trickle, silent):
        s.close()


def test_concurrent_posts(intake: HttpIntake, spool: Spool, tokens: dict[str, str]) -> None:
    failures: list[object] = []

    def client(c: int) -> None:
        conn = http.client.HTTPConnection(*intake.address, timeout=30)  # keep-alive across requests
        for b in range(25):
            body = b"".join(b'{"c":%d,"b":%d,"i":%d}\n' % (c, b, i) for i in range(40))
            conn.request("POST", "/ingest/web", body=body, headers=auth(tokens["web"]))
            response = conn.getresponse()
            if (response.status, json.loads(response.read())) != (202, {"accepted": 40}):
                failures.append((c, b, response.status))
        conn.close()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    records = [json.loads(r) for _s, r in spooled(spool)]
    assert len(records) == 12 * 25 * 40
    assert len({(r["c"], r["b"], r["i"]) for r in records}) == len(records)
    assert intake.stats()["accepted_records"] == len(records)
