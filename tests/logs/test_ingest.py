"""`onca ingest`, `onca query` and `onca search` as a user runs them, on real files and a real lake."""

from __future__ import annotations

import functools
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from onca.lake.catalog import Catalog
from onca.lake.partition_buffer import PartitionBuffer
from onca.lake.writer import LakeWriter
from onca.logs import pipeline
from onca.logs.pipeline import ingest
from onca.logs.registry import SchemaRegistry

SAMPLES = Path(__file__).parent / "samples"
REPO = Path(__file__).resolve().parents[2]


def onca(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "onca", *args], capture_output=True, cwd=REPO, timeout=300,
                            input=stdin, check=False)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode(errors="replace"),
                                       result.stderr.decode(errors="replace"))


def lake_counts(lake: Path) -> dict[str, int]:
    con = Catalog(lake).connect()
    counts = {}
    for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall():
        counts[name] = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
    con.close()
    return counts


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry.load()


def hostile_inputs(folder: Path) -> None:
    """Files real intake meets: binary, invalid UTF-8, a truncated gzip, a 10 MB line, empty, a bare number."""
    folder.mkdir(parents=True)
    (folder / "binary.bin").write_bytes(bytes(range(256)) * 64)
    (folder / "latin1.log").write_bytes(b"<13>Jan  5 10:00:00 host app: caf\xe9 \xff\xfe broken\n")
    good = b"".join(json.dumps({"eventVersion": "1.08", "eventTime": "2024-05-01T10:00:00Z", "eventID": f"id-{i}",
                                "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
                                "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7"}).encode() + b"\n"
                    for i in range(200))
    compressed = gzip.compress(good)
    (folder / "truncated.json.gz").write_bytes(compressed[: len(compressed) * 2 // 3])
    (folder / "huge_line.log").write_bytes(b"x" * (10 * 1024 * 1024) + b"\n" + good[:400].split(b"\n")[0] + b"\n")
    (folder / "empty.log").write_bytes(b"")
    (folder / "number.json").write_bytes(b"42\n")


def test_conservation_over_mixed_and_hostile_inputs(tmp_path: Path, registry: SchemaRegistry) -> None:
    inputs = tmp_path / "inputs"
    shutil.copytree(SAMPLES, inputs / "samples")
    hostile_inputs(inputs / "hostile")
    lake = tmp_path / "lake"
    summary = ingest([str(inputs)], lake=lake, registry=registry)
    assert summary.records > 300 and summary.conserved
    counts = lake_counts(lake)
    stored = sum(n for name, n in counts.items() if name != "quarantine")
    assert summary.events == stored
    assert summary.quarantined == counts["quarantine"]
    assert summary.records == stored + counts["quarantine"] + summary.headers
    # the rest of the batch landed around the bad files: the good half of the truncated gzip, the line after
    # the 10 MB one, every sample event
    assert summary.by_type["AWS.CloudTrail"].events >= 33 + 1
    messages = "\n".join(summary.messages)
    assert "truncated" in messages and "digest" in messages
    con = Catalog(lake).connect()
    raw = con.execute("SELECT raw FROM quarantine WHERE origin LIKE '%number.json'").fetchone()[0]
    assert bytes(raw) == b"42"
    reasons = con.execute("SELECT reasons FROM quarantine WHERE origin LIKE '%number.json'").fetchone()[0]
    assert "not an object" in reasons
    huge = con.execute("SELECT octet_length(raw) FROM quarantine WHERE origin LIKE '%huge_line.log'").fetchall()
    assert huge and huge[0][0] >= 10 * 1024 * 1024 - 1  # kept whole, with the reasons, not dropped
    con.close()


def test_type_drift_inside_one_file_lands_every_record(tmp_path: Path, registry: SchemaRegistry) -> None:
    lake = tmp_path / "lake"
    summary = ingest([str(SAMPLES / "mixed_drift.ndjson")], lake=lake, registry=registry,
                     log_types=["AWS.CloudTrail"])
    lines = [line for line in (SAMPLES / "mixed_drift.ndjson").read_bytes().splitlines() if line.strip()]
    assert summary.events == len(lines) and summary.quarantined == 0
    con = Catalog(lake).connect()
    drifted = con.execute("SELECT count(*) FROM aws_cloudtrail WHERE p_nonconforming IS NOT NULL").fetchone()[0]
    assert drifted >= 1
    con.close()


def test_cli_ingest_summary_dedup_force_query_and_search(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    files = [str(SAMPLES / "cloudtrail_s3_object.json"), str(SAMPLES / "nginx_access.log")]
    first = onca("ingest", *files, "--lake", str(lake), "--log-type", "AWS.CloudTrail", "--log-type", "Nginx.Access")
    assert first.returncode == 0, first.stderr
    assert "AWS.CloudTrail" in first.stdout and "Nginx.Access" in first.stdout
    assert "events +" in first.stdout and "quarantined +" in first.stdout
    again = onca("ingest", *files, "--lake", str(lake), "--log-type", "AWS.CloudTrail", "--log-type", "Nginx.Access")
    assert again.returncode == 0 and again.stdout.count("already ingested") == 2
    before = lake_counts(lake)
    forced = onca("ingest", files[0], "--lake", str(lake), "--log-type", "AWS.CloudTrail", "--force")
    assert forced.returncode == 0
    assert lake_counts(lake)["aws_cloudtrail"] == before["aws_cloudtrail"]  # same p_row_ids: replaced, not doubled

    query = onca("query", "SELECT eventName, count(*) AS n FROM aws_cloudtrail GROUP BY 1 ORDER BY 2 DESC",
                 "--lake", str(lake), "--format", "json")
    assert query.returncode == 0, query.stderr
    assert sum(row["n"] for row in json.loads(query.stdout)) == before["aws_cloudtrail"]
    refused = onca("query", "COPY aws_cloudtrail TO 'x.csv'", "--lake", str(lake))
    assert refused.returncode != 0 and "read" in (refused.stderr + refused.stdout).lower()

    found = onca("search", "--ip", "198.51.100.23", "--lake", str(lake), "--since", "3650d", "--format", "json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert {hit["table"] for hit in hits} == {"aws_cloudtrail", "nginx_access"}
    assert all(hit["p_event_time"] for hit in hits)


def test_stdin_and_unknown_log_type(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    data = (SAMPLES / "okta.ndjson").read_bytes()
    result = onca("ingest", "-", "--lake", str(lake), "--log-type", "Okta.SystemLog", stdin=data)
    assert result.returncode == 0, result.stderr
    assert lake_counts(lake)["okta_systemlog"] == len([line for line in data.splitlines() if line.strip()])
    bad = onca("ingest", "-", "--lake", str(lake), "--log-type", "Okta.System", stdin=b"{}")
    assert bad.returncode == 2 and "Okta.System" in bad.stderr


def test_lake_files_are_plain_hive_parquet(tmp_path: Path, registry: SchemaRegistry) -> None:
    lake = tmp_path / "lake"
    ingest([str(SAMPLES / "zeek_conn.log")], lake=lake, registry=registry, log_types=["Zeek.Conn"])
    parquet = sorted((lake / "zeek_conn").rglob("*.parquet"))
    assert parquet and all("dt=" in str(p) and "hour=" in str(p) for p in parquet)
    con = duckdb.connect()
    total = con.execute(f"SELECT count(*) FROM read_parquet('{lake / 'zeek_conn'}/**/*.parquet', "
                        "hive_partitioning=true)").fetchone()[0]
    assert total == 40
    assert not any(name.startswith(".") for _, _, names in os.walk(lake / "zeek_conn") for name in names
                   if name.endswith(".parquet"))


def _trail_files(folder: Path, files: int, per_file: int) -> None:
    """Gzip'd `{"Records": [...]}` files as S3 delivers CloudTrail: a few events each, all in one hour."""
    folder.mkdir(parents=True)
    for f in range(files):
        records = [{"eventVersion": "1.09", "eventTime": f"2024-05-01T10:{f % 60:02d}:{i % 60:02d}Z",
                    "eventID": f"id-{f}-{i}", "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
                    "awsRegion": "us-east-1", "sourceIPAddress": f"198.51.100.{i % 250}"} for i in range(per_file)]
        (folder / f"trail_{f:03d}.json.gz").write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))


def _stored_ids(lake: Path) -> list[str]:
    con = duckdb.connect()
    rows = con.execute(f"SELECT p_row_id FROM read_parquet('{lake / 'aws_cloudtrail'}/**/*.parquet', "
                       "hive_partitioning=true)").fetchall()
    return [row[0] for row in rows]


def test_small_files_are_stored_together_and_marked_once_written(tmp_path: Path, registry: SchemaRegistry) -> None:
    """Thirty small S3 files of one hour make one Parquet file, not thirty; a copy of a file given in the same
    run is still recognised, though the first is only marked ingested once its rows are written."""
    _trail_files(tmp_path / "in", 30, 20)
    shutil.copy(tmp_path / "in" / "trail_000.json.gz", tmp_path / "in" / "trail_copy.json.gz")
    lake = tmp_path / "lake"
    summary = ingest([str(tmp_path / "in")], lake=lake, registry=registry, log_types=["AWS.CloudTrail"])
    assert summary.events == 600 and summary.conserved
    assert summary.skipped_files == [f"{tmp_path / 'in' / 'trail_copy.json.gz'}: already ingested (same content as "
                                     f"{tmp_path / 'in' / 'trail_000.json.gz'}); use --force to ingest it again"]
    assert len(list((lake / "aws_cloudtrail").rglob("*.parquet"))) == 1
    seen: list[int] = []
    ingest([str(tmp_path / "in")], lake=tmp_path / "other", registry=registry, log_types=["AWS.CloudTrail"],
           progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 600  # the run's records so far, not the current file's
    again = ingest([str(tmp_path / "in")], lake=lake, registry=registry, log_types=["AWS.CloudTrail"])
    assert again.events == 0 and len(again.skipped_files) == 31


def test_a_crash_while_rows_are_held_loses_nothing_and_duplicates_nothing(
        tmp_path: Path, registry: SchemaRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records of several files are batched, and their rows held, before they are written. When writing fails part
    way, only the files whose rows were all written count as ingested; the next run ingests the others, and every
    event is stored once."""
    _trail_files(tmp_path / "in", 12, 20)
    lake = tmp_path / "lake"
    monkeypatch.setattr(pipeline, "BATCH_RECORDS", 30)  # a batch is converted every two files
    monkeypatch.setattr(pipeline, "PartitionBuffer", functools.partial(PartitionBuffer, partition_rows=50))
    publish, calls = LakeWriter.publish_hour, []

    def failing(self: LakeWriter, table: str, hour: int, data: pa.Table) -> Path:
        calls.append(data.num_rows)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return publish(self, table, hour, data)

    monkeypatch.setattr(LakeWriter, "publish_hour", failing)
    with pytest.raises(OSError, match="No space left"):
        ingest([str(tmp_path / "in")], lake=lake, registry=registry, log_types=["AWS.CloudTrail"])
    assert calls == [80, 80, 80]  # written after files 4 and 8; the write after file 12 failed
    assert len(_stored_ids(lake)) == 160
    monkeypatch.setattr(LakeWriter, "publish_hour", publish)
    retry = ingest([str(tmp_path / "in")], lake=lake, registry=registry, log_types=["AWS.CloudTrail"])
    assert retry.events == 80 and len(retry.skipped_files) == 8
    ids = _stored_ids(lake)
    assert len(ids) == len(set(ids)) == 240


CUSTOM = """version: 0
schema: Custom.AppLog
description: An in-house application log
fields:
  - name: time
    type: timestamp
    timeFormat: rfc3339
    isEventTime: true
  - name: user
    type: string
    indicators: [username]
  - name: count
    type: int
"""


def test_custom_schemas_are_added_and_may_only_grow(tmp_path: Path) -> None:
    home = tmp_path / "home"
    schema = tmp_path / "app.yml"
    schema.write_text(CUSTOM)
    assert onca("schemas", "add", str(schema), "--home", str(home)).returncode == 0
    schema.write_text(CUSTOM.replace("type: int", "type: string"))
    changed = onca("schemas", "add", str(schema), "--home", str(home))
    assert changed.returncode == 2 and "count: type changed from int to string" in changed.stderr
    schema.write_text(CUSTOM.replace("  - name: count\n    type: int\n", ""))
    removed = onca("schemas", "add", str(schema), "--home", str(home))
    assert removed.returncode == 2 and "count" in removed.stderr
    schema.write_text(CUSTOM + "  - name: region\n    type: string\n")
    assert onca("schemas", "add", str(schema), "--home", str(home)).returncode == 0
    line = b'{"time": "2024-05-01T10:00:00Z", "user": "ann", "count": 3, "region": "eu"}\n'
    result = onca("ingest", "-", "--home", str(home), "--log-type", "Custom.AppLog", stdin=line)
    assert result.returncode == 0, result.stderr
    found = onca("search", "--user", "ann", "--home", str(home), "--since", "3650d", "--format", "json")
    assert [hit["table"] for hit in json.loads(found.stdout)] == ["custom_applog"]
    wrong = tmp_path / "bad.yml"
    wrong.write_text(CUSTOM.replace("Custom.AppLog", "AppLog"))
    assert "Custom." in onca("schemas", "add", str(wrong), "--home", str(home)).stderr
