"""Indicator search over a lake of synthetic CloudTrail rows: Onca's indexed search against a naive full scan.

    python bench/search.py [--rows 1000000] [--hours 48] [--batch 20000] [--seed 1] [--repeat 3] [--keep DIR]

Generates `--rows` CloudTrail-shaped rows (the row contract of onca.logs: typed fields and p_ fields) with
realistic indicator cardinalities (about 3,000 source IPs, 300 IAM users, 3 accounts), spread over
`--hours` hours in ingest order, and writes them through LakeWriter in batches of `--batch` rows (this
also prints the writer's rows/s). It then times, best of `--repeat`:

- `search(kind="ip")` for an IP that occurs and for one that does not (Onca: partition pruning, the
  per-file indicator index, then reading only the matching rows), and the same after compaction;
- the baseline, a naive DuckDB full scan with list_contains over every file of the table, same run.

The last lines have a fixed format, for scripts:

    rows=N search_s=X baseline_s=Y ratio=Y/X          (present IP, after compaction)
    rows=N search_absent_s=X baseline_absent_s=Y ratio=Y/X
"""

from __future__ import annotations

import argparse
import ipaddress
import itertools
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from onca.lake.compaction import compact_lake
from onca.lake.layout import STRINGS, TIMESTAMP
from onca.lake.search import search
from onca.lake.writer import LakeWriter

LOG_TYPE = "AWS.CloudTrail"

_ARN_FIELDS = [("type", pa.string()), ("principalId", pa.string()), ("arn", pa.string()),
               ("accountId", pa.string()), ("userName", pa.string())]
SCHEMA = pa.schema([
    ("eventVersion", pa.string()),
    ("userIdentity", pa.struct([
        *_ARN_FIELDS,
        ("accessKeyId", pa.string()),
        ("invokedBy", pa.string()),
        ("sessionContext", pa.struct([
            ("attributes", pa.struct([("mfaAuthenticated", pa.string()), ("creationDate", TIMESTAMP)])),
            ("sessionIssuer", pa.struct(_ARN_FIELDS)),
        ])),
    ])),
    ("eventTime", TIMESTAMP),
    ("eventSource", pa.string()),
    ("eventName", pa.string()),
    ("awsRegion", pa.string()),
    ("sourceIPAddress", pa.string()),
    ("userAgent", pa.string()),
    ("errorCode", pa.string()),
    ("errorMessage", pa.string()),
    ("requestParameters", pa.string()),
    ("responseElements", pa.string()),
    ("requestID", pa.string()),
    ("eventID", pa.string()),
    ("readOnly", pa.bool_()),
    ("resources", pa.list_(pa.struct([("arn", pa.string()), ("accountId", pa.string()), ("type", pa.string())]))),
    ("eventType", pa.string()),
    ("managementEvent", pa.bool_()),
    ("recipientAccountId", pa.string()),
    ("eventCategory", pa.string()),
    ("tlsDetails", pa.struct([("tlsVersion", pa.string()), ("cipherSuite", pa.string()),
                              ("clientProvidedHostHeader", pa.string())])),
    ("p_log_type", pa.string()),
    ("p_event_time", TIMESTAMP),
    ("p_parse_time", TIMESTAMP),
    ("p_row_id", pa.string()),
    ("p_source_id", pa.string()),
    ("p_source_label", pa.string()),
    ("p_any_ip_addresses", STRINGS),
    ("p_any_domain_names", STRINGS),
    ("p_any_usernames", STRINGS),
    ("p_any_aws_account_ids", STRINGS),
    ("p_any_aws_arns", STRINGS),
    ("p_nonconforming", pa.string()),
])

ACCOUNTS = ("123456789012", "210987654321", "345678901234")
REGIONS = ("us-east-1",) * 5 + ("us-west-2",) * 2 + ("eu-west-1", "eu-central-1", "ap-southeast-2")
CALLS = [
    ("ec2.amazonaws.com", "DescribeInstances", True), ("ec2.amazonaws.com", "DescribeSecurityGroups", True),
    ("s3.amazonaws.com", "GetObject", True), ("s3.amazonaws.com", "PutObject", False),
    ("s3.amazonaws.com", "ListBuckets", True), ("sts.amazonaws.com", "AssumeRole", False),
    ("kms.amazonaws.com", "Decrypt", True), ("kms.amazonaws.com", "GenerateDataKey", True),
    ("iam.amazonaws.com", "ListRoles", True), ("iam.amazonaws.com", "GetUser", True),
    ("logs.amazonaws.com", "CreateLogStream", False), ("ssm.amazonaws.com", "UpdateInstanceInformation", False),
    ("lambda.amazonaws.com", "ListFunctions20150331", True), ("signin.amazonaws.com", "ConsoleLogin", False),
    ("dynamodb.amazonaws.com", "DescribeTable", True), ("rds.amazonaws.com", "DescribeDBInstances", True),
]
AGENTS = ("aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.ubuntu.22 prompt/off command/ec2.describe-instances",
          "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.210 lang/python#3.11.8 cfg/retry-mode#legacy",
          "console.amazonaws.com", "aws-sdk-go-v2/1.25.3 os/linux lang/go#1.22.1 api/s3#1.51.4",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0")


def make_rows(count: int, hours: int, seed: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows in arrival order (time increasing with a few minutes of jitter), and the IPs used."""
    rng = random.Random(seed)
    ips = [str(ipaddress.IPv4Address(rng.getrandbits(32) | 0x01000000)) for _ in range(3000)]
    users = [f"user{i:03d}.{rng.choice(('ops', 'dev', 'sec', 'data'))}" for i in range(300)]
    start = datetime(2025, 3, 1, tzinfo=UTC)
    span_us = hours * 3600 * 1_000_000
    parse_time = start + timedelta(hours=hours, minutes=5)
    # Zipf-like popularity: a few IPs and users are everywhere, most are rare, as in a real trail.
    ip_weights = list(itertools.accumulate(1 / (i + 1) for i in range(len(ips))))
    user_weights = list(itertools.accumulate(1 / (i + 1) ** 0.8 for i in range(len(users))))
    rows = []
    for n in range(count):
        at = start + timedelta(microseconds=span_us * n // count + rng.randint(-180_000_000, 180_000_000))
        at = max(at, start)
        account = ACCOUNTS[n % 7 % 3]
        user = rng.choices(users, cum_weights=user_weights)[0]
        ip = rng.choices(ips, cum_weights=ip_weights)[0] if rng.random() < 0.97 else "ec2.amazonaws.com"
        source, name, read_only = CALLS[rng.randrange(len(CALLS))]
        arn = f"arn:aws:iam::{account}:user/{user}"
        failed = rng.random() < 0.04
        bucket = f"corp-{account[-4:]}-{rng.choice(('logs', 'assets', 'backups', 'data'))}"
        rows.append({
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "principalId": f"AIDA{n % 9973:016d}", "arn": arn,
                             "accountId": account, "userName": user, "accessKeyId": f"AKIA{n % 4099:016d}",
                             "sessionContext": {"attributes": {"mfaAuthenticated": "false",
                                                               "creationDate": at - timedelta(minutes=12)}}},
            "eventTime": at,
            "eventSource": source,
            "eventName": name,
            "awsRegion": REGIONS[n % len(REGIONS)],
            "sourceIPAddress": ip,
            "userAgent": AGENTS[n % len(AGENTS)],
            "errorCode": "AccessDenied" if failed else None,
            "errorMessage": f"User: {arn} is not authorized to perform: {name}" if failed else None,
            "requestParameters": orjson.dumps({"bucketName": bucket, "key": f"k/{n % 50000}"}).decode(),
            "responseElements": None,
            "requestID": f"{rng.getrandbits(64):016X}",
            "eventID": f"{rng.getrandbits(128):032x}",
            "readOnly": read_only,
            "resources": [{"arn": f"arn:aws:s3:::{bucket}", "accountId": account, "type": "AWS::S3::Bucket"}],
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": account,
            "eventCategory": "Management",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": f"{source.split('.')[0]}.{REGIONS[0]}.amazonaws.com"},
            "p_log_type": LOG_TYPE,
            "p_event_time": at,
            "p_parse_time": parse_time,
            "p_row_id": f"bench-{seed}-{n:09d}",
            "p_source_id": "bench",
            "p_source_label": "bench",
            "p_any_ip_addresses": [ip] if ip[0].isdigit() else None,
            "p_any_domain_names": sorted({f"{source.split('.')[0]}.{REGIONS[0]}.amazonaws.com"}),
            "p_any_usernames": [user],
            "p_any_aws_account_ids": [account],
            "p_any_aws_arns": sorted({arn, f"arn:aws:s3:::{bucket}"}),
            "p_nonconforming": None,
        })
    return rows, ips


def naive_scan(lake: Path, ip: str) -> int:
    """The baseline: every file of the table, list_contains on the indicator column, nothing else."""
    con = duckdb.connect()
    glob = str(lake / "aws_cloudtrail" / "**" / "*.parquet").replace("'", "''")
    rows = con.execute(
        f"SELECT p_event_time, p_log_type, p_row_id, eventName, sourceIPAddress FROM read_parquet('{glob}', "
        "hive_partitioning=true, union_by_name=true) WHERE list_contains(p_any_ip_addresses, ?)", [ip]).fetchall()
    con.close()
    return len(rows)


def best_of(repeat: int, func: Any, *args: Any) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func(*args)
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--hours", type=int, default=48)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the lake in this directory and keep it")
    args = parser.parse_args()

    lake = args.keep or Path(tempfile.mkdtemp(prefix="onca-search-bench-"))
    try:
        started = time.perf_counter()
        rows, ips = make_rows(args.rows, args.hours, args.seed)
        print(f"generated {len(rows):,} rows in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        writer = LakeWriter(lake)
        write_s, files = 0.0, 0
        for start in range(0, len(rows), args.batch):
            batch = rows[start:start + args.batch]
            started = time.perf_counter()
            files += len(writer.write(LOG_TYPE, batch, SCHEMA))
            write_s += time.perf_counter() - started
        del rows
        print(f"writer: {args.rows:,} rows in {files} files, {write_s:.2f} s = {args.rows / write_s:,.0f} rows/s")

        present, absent = ips[40], "203.0.113.254"  # ips[40]: ~0.3% of events, a typical busy address
        since = None
        for label in ("small files", "compacted"):
            if label == "compacted":
                started = time.perf_counter()
                merged = compact_lake(lake)
                print(f"compaction: {merged} partitions in {time.perf_counter() - started:.2f} s")
            onca_s, hits = best_of(args.repeat, lambda v: search(lake, "ip", v, since=since, limit=None), present)
            absent_s, none = best_of(args.repeat, lambda v: search(lake, "ip", v, since=since, limit=None), absent)
            base_s, base_hits = best_of(args.repeat, naive_scan, lake, present)
            base_absent_s, _ = best_of(args.repeat, naive_scan, lake, absent)
            if len(hits) != base_hits or none:
                print(f"MISMATCH: search found {len(hits)} and {len(none)}, the scan {base_hits}", file=sys.stderr)
                return 1
            print(f"{label}: present IP {len(hits)} hits: search {onca_s:.3f} s, naive scan {base_s:.3f} s "
                  f"({base_s / onca_s:.1f}x); absent IP: search {absent_s:.3f} s, naive scan {base_absent_s:.3f} s "
                  f"({base_absent_s / absent_s:.1f}x)")
        print(f"rows={args.rows} search_s={onca_s:.4f} baseline_s={base_s:.4f} ratio={base_s / onca_s:.1f}")
        print(f"rows={args.rows} search_absent_s={absent_s:.4f} baseline_absent_s={base_absent_s:.4f} "
              f"ratio={base_absent_s / absent_s:.1f}")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(lake, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
