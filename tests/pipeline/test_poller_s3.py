"""The S3 poller against moto's server on 127.0.0.1: listing and SQS notifications, exactly once across crashes."""

from __future__ import annotations

import gzip
import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from onca.pipeline.poller_s3 import S3Poller, S3PollerOptions, s3_source_config
from onca.pipeline.spool import Spool


class Crash(BaseException):
    """Stands for the process dying at this point (nothing after it runs)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    # Fake credentials for moto; never the user's real ones.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    bucket = f"onca-{uuid.uuid4().hex[:12]}"  # one module-wide server: every test has its own bucket and queue
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=bucket)
    return {"endpoint": moto_endpoint, "bucket": bucket, "s3": s3, "sqs": sqs}


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool") as s:
        yield s


def records(spool: Spool) -> list[bytes]:
    return [r for e in spool.scan() for r in e.records]


def lines(n: int, tag: str) -> list[bytes]:
    return [json.dumps({"f": tag, "i": i}, separators=(",", ":")).encode() for i in range(n)]


def put(aws: dict[str, Any], key: str, body: bytes) -> None:
    aws["s3"].put_object(Bucket=aws["bucket"], Key=key, Body=body)


def listing_poller(spool: Spool, tmp_path: Path, aws: dict[str, Any], prefix: str = "logs/",
                   **options: Any) -> S3Poller:
    config = {"bucket": aws["bucket"], "prefix": prefix, "endpoint_url": aws["endpoint"]}
    return S3Poller(spool, "s3logs", config, tmp_path / "state",
                    S3PollerOptions(**{"chunk_records": 10, "max_attempts": 1, **options}))


def make_queue(aws: dict[str, Any], visibility: int = 30, keep_test_event: bool = False) -> str:
    url = aws["sqs"].create_queue(QueueName=f"q-{uuid.uuid4().hex[:12]}",
                                  Attributes={"VisibilityTimeout": str(visibility)})["QueueUrl"]
    arn = aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws["s3"].put_bucket_notification_configuration(Bucket=aws["bucket"], NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    if not keep_test_event:
        aws["sqs"].purge_queue(QueueUrl=url)
    return url


def sqs_poller(spool: Spool, tmp_path: Path, aws: dict[str, Any], queue_url: str, **options: Any) -> S3Poller:
    config = {"bucket": aws["bucket"], "prefix": "logs/", "queue_url": queue_url, "endpoint_url": aws["endpoint"]}
    return S3Poller(spool, "s3logs", config, tmp_path / "state",
                    S3PollerOptions(**{"chunk_records": 10, "max_attempts": 1, "wait_seconds": 0, **options}))


def queued(aws: dict[str, Any], queue_url: str) -> int:
    attributes = aws["sqs"].get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attributes["Attributes"].values())


def s3_notification(bucket: str, key: str, etag: str, event: str = "ObjectCreated:Put") -> dict[str, Any]:
    """The body S3 sends for one event (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)."""
    from urllib.parse import quote_plus

    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-01-05T10:00:00.000Z", "eventName": event,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810",
                             "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "onca-logs",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": quote_plus(key, safe="/"), "size": 1024, "eTag": etag,
                          "sequencer": "0055AED6DCD90281E5"}}}]}


def sns_wrapped(message: dict[str, Any]) -> dict[str, Any]:
    return {"Type": "Notification", "MessageId": str(uuid.uuid4()),
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:onca-logs", "Subject": "Amazon S3 Notification",
            "Message": json.dumps(message), "Timestamp": "2026-01-05T10:00:00.100Z", "SignatureVersion": "1",
            "Signature": "EXAMPLEpH+..", "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"}


def etag_of(aws: dict[str, Any], key: str) -> str:
    return str(aws["s3"].head_object(Bucket=aws["bucket"], Key=key)["ETag"]).strip('"')


CLOUDTRAIL = [{"eventVersion": "1.08", "eventSource": "iam.amazonaws.com", "eventName": name,
               "awsRegion": "us-east-1", "eventTime": "2026-01-05T10:00:00Z", "recipientAccountId": "123456789012"}
              for name in ("CreateUser", "CreateAccessKey", "AttachUserPolicy")]
DIGEST = {"awsAccountId": "123456789012", "digestStartTime": "2026-01-05T09:00:00Z",
          "digestS3Bucket": "trail", "digestPublicKeyFingerprint": "8f3a", "digestSignatureAlgorithm": "SHA256withRSA",
          "logFiles": []}


# -- listing -----------------------------------------------------------------------------------------------


def test_listing_ingests_the_prefix_once(spool: Spool, tmp_path: Path, aws: dict[str, Any]) -> None:
    trail = "logs/AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/05/123456789012_CloudTrail_us-east-1_x.json.gz"
    put(aws, trail, gzip.compress(json.dumps({"Records": CLOUDTRAIL}).encode()))
    ndjson = lines(25, "nd")
    put(aws, "logs/app/b.ndjson", b"\n".join(ndjson) + b"\n")
    put(aws, "logs/AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2026/01/05/digest.json.gz",
        gzip.compress(json.dumps(DIGEST).encode()))
    put(aws, "logs/empty-folder/", b"")
    put(aws, "other/c.ndjson", b'{"other":1}\n')  # another prefix
    poller = listing_poller(spool, tmp_path, aws)
    assert poller.run_once() == 3  # the digest file is read and skipped; the folder marker is not an object
    expected = [json.dumps(e).encode() for e in CLOUDTRAIL] + ndjson  # each element's own text, as written
    assert sorted(records(spool)) == sorted(expected)
    assert [len(e.records) for e in spool.scan()] == [3, 10, 10, 5]  # in key order: AWSLogs/ < app/
    assert any("digest file" in m for m in poller.messages)
    assert poller.run_once() == 0
    restarted = listing_poller(spool, tmp_path, aws)  # a new process: state from disk only
    assert restarted.run_once() == 0
    more = lines(4, "more")
    put(aws, "logs/app/c.ndjson", b"\n".join(more))
    assert restarted.run_once() == 1
    assert sorted(records(spool)) == sorted(expected + more)
    assert restarted.failed_rounds == 0 and restarted.errors == 0


def test_a_rewritten_key_is_a_new_object(spool: Spool, tmp_path: Path, aws: dict[str, Any]) -> None:
    first = lines(3, "v1")
    put(aws, "logs/a.ndjson", b"\n".join(first))
    poller = listing_poller(spool, tmp_path, aws)
    assert poller.run_once() == 1
    put(aws, "logs/a.ndjson", b"\n".join(first))  # the same content again: the same object
    assert poller.run_once() == 0
    second = lines(2, "v2")
    put(aws, "logs/a.ndjson", b"\n".join(second))  # other content: read again, whole
    assert poller.run_once() == 1
    assert records(spool) == first + second


def test_high_water_mark_bounds_the_listing_and_the_state(spool: Spool, tmp_path: Path, aws: dict[str, Any]) -> None:
    for day in ("01", "02", "03"):
        put(aws, f"logs/2026/01/{day}.ndjson", b'{"day":"' + day.encode() + b'"}\n')
    poller = listing_poller(spool, tmp_path, aws, settle_seconds=0)
    assert poller.run_once() == 3
    state = json.loads(poller.state_file.read_text())
    assert state["high_water"] == "logs/2026/01/03.ndjson" and state["done"] == {}
    # Keys sort as they are written: a new one is above the mark. One written later below it is not listed
    # again (documented: use SQS notifications for such names).
    put(aws, "logs/2026/01/04.ndjson", b'{"day":"04"}\n')
    put(aws, "logs/2026/01/00.ndjson", b'{"day":"00"}\n')
    restarted = listing_poller(spool, tmp_path, aws, settle_seconds=0)
    assert restarted.run_once() == 1
    assert records(spool)[-1] == b'{"day":"04"}'
    # Objects younger than settle_seconds keep the mark below them (late arrivals are still found).
    young = listing_poller(spool, tmp_path, aws, settle_seconds=3600)
    put(aws, "logs/2026/01/05.ndjson", b'{"day":"05"}\n')
    assert young.run_once() == 1
    state = json.loads(young.state_file.read_text())
    assert state["high_water"] == "logs/2026/01/04.ndjson" and list(state["done"]) == [
        f"{aws['bucket']}/logs/2026/01/05.ndjson"]


def test_large_objects_are_streamed_in_chunks(spool: Spool, tmp_path: Path, aws: dict[str, Any]) -> None:
    big = lines(20_000, "big")
    put(aws, "logs/big.ndjson.gz", gzip.compress(b"\n".join(big)))
    poller = listing_poller(spool, tmp_path, aws, chunk_records=1000)
    assert poller.run_once() == 1
    entries = list(spool.scan())
    assert len(entries) == 20 and all(len(e.records) == 1000 for e in entries)
    assert records(spool) == big


@pytest.mark.parametrize("crash_at", ["before_append", "after_append", "before_done"])
def test_listing_restart_after_a_crash_neither_loses_nor_duplicates(
        spool: Spool, tmp_path: Path, aws: dict[str, Any], crash_at: str) -> None:
    data = lines(35, "crash")
    put(aws, "logs/crash.ndjson", b"\n".join(data))
    poller = listing_poller(spool, tmp_path, aws)
    real_append = spool.append
    calls = {"n": 0}

    def append(source_id: str, recs: list[bytes]) -> int:
        calls["n"] += 1
        if calls["n"] == 3 and crash_at == "before_append":
            raise Crash
        position = real_append(source_id, recs)
        if (calls["n"] == 3 and crash_at == "after_append") or (calls["n"] == 4 and crash_at == "before_done"):
            raise Crash  # appended, but the poller never learnt it (before_done: the object's last chunk)
        return position

    with pytest.MonkeyPatch.context() as patch, pytest.raises(Crash):
        patch.setattr(spool, "append", append)
        poller.run_once()
    restarted = listing_poller(spool, tmp_path, aws)
    assert restarted.run_once() == 1
    assert records(spool) == data
    assert restarted.run_once() == 0
    assert records(spool) == data
    assert restarted.chunks_recovered == (0 if crash_at == "before_append" else 1)


def test_a_broken_download_resumes_without_duplicates(spool: Spool, tmp_path: Path, aws: dict[str, Any]) -> None:
    data = lines(3000, "net")
    put(aws, "logs/net.ndjson", b"\n".join(data))
    poller = listing_poller(spool, tmp_path, aws, chunk_records=500)
    s3 = poller._client("s3")
    real_get = s3.get_object

    class Breaking:
        """The real body, until the connection drops in the middle of a record."""

        def __init__(self, body: Any, limit: int) -> None:
            self.body, self.left = body, limit

        def read(self, size: int = -1) -> bytes:
            if self.left <= 0:
                raise ConnectionResetError("connection reset by peer")
            data = self.body.read(min(size if size >= 0 else self.left, self.left))
            self.left -= len(data)
            return data

        def close(self) -> None:
            self.body.close()

    def get_object(**kwargs: Any) -> dict[str, Any]:
        response = real_get(**kwargs)
        response["Body"] = Breaking(response["Body"], 40_000)  # about 1,500 records in, mid-line
        return response

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(s3, "get_object", get_object)
        assert poller.run_once() == 0
    assert poller.failed_rounds == 1 and any("download broke" in m for m in poller.messages)
    partial = records(spool)
    assert partial == data[:len(partial)] and len(partial) % 500 == 0 and 0 < len(partial) < 3000
    assert poller.run_once() == 1
    assert records(spool) == data
    assert poller.failed_rounds == 0


def test_errors_are_logged_and_retried(spool: Spool, tmp_path: Path, aws: dict[str, Any]) -> None:
    config = {"bucket": f"missing-{uuid.uuid4().hex[:8]}", "prefix": "logs/", "endpoint_url": aws["endpoint"]}
    poller = S3Poller(spool, "s3logs", config, tmp_path / "state", S3PollerOptions(max_attempts=1, poll_interval=2))
    assert poller.run_once() == 0
    assert poller.failed_rounds == 1 and "NoSuchBucket" in poller.messages[-1]
    assert config["bucket"] in poller.messages[-1]
    assert poller.run_once() == 0
    assert poller._pause() == 4  # doubles with each failed round
    aws["s3"].create_bucket(Bucket=config["bucket"])
    aws["s3"].put_object(Bucket=config["bucket"], Key="logs/a.log", Body=b"one\ntwo\n")
    assert poller.run_once() == 1
    assert poller.failed_rounds == 0 and records(spool) == [b"one", b"two"]
    # Nothing listens on the endpoint: a network error, logged, not raised.
    down = {"bucket": config["bucket"], "endpoint_url": f"http://127.0.0.1:{free_port()}"}
    offline = S3Poller(spool, "s3down", down, tmp_path / "state",
                       S3PollerOptions(max_attempts=1, connect_timeout=1))
    assert offline.run_once() == 0
    assert offline.failed_rounds == 1 and "Could not connect" in offline.messages[-1]


def test_background_thread(spool: Spool, tmp_path: Path, aws: dict[str, Any]) -> None:
    poller = listing_poller(spool, tmp_path, aws, poll_interval=0.05)
    poller.start()
    try:
        data = lines(12, "bg")
        put(aws, "logs/bg.ndjson", b"\n".join(data))
        deadline = time.monotonic() + 10
        while len(records(spool)) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        poller.stop()
    assert records(spool) == data


# -- SQS notifications -------------------------------------------------------------------------------------


def test_sqs_notifications_plain_and_sns_wrapped(spool: Spool, tmp_path: Path, aws: dict[str, Any]) -> None:
    # moto sends the s3:TestEvent now, and a real notification for each object put.
    queue = make_queue(aws, keep_test_event=True)
    bucket = aws["bucket"]
    aws["sqs"].send_message(QueueUrl=queue, MessageBody="this is not JSON")  # first: must not stop the others
    a = lines(12, "a")
    put(aws, "logs/with space+plus.ndjson", b"\n".join(a))
    trail = "logs/AWSLogs/123456789012/CloudTrail/us-east-1/2026/01/05/trail.json.gz"
    put(aws, trail, gzip.compress(json.dumps({"Records": CLOUDTRAIL}).encode()))
    put(aws, "other/x.ndjson", b'{"outside":1}\n')  # notified, outside the prefix: ignored
    assert queued(aws, queue) == 5
    # The same CloudTrail object announced through SNS (a second subscription): recognised, not read twice.
    aws["sqs"].send_message(QueueUrl=queue, MessageBody=json.dumps(sns_wrapped(
        s3_notification(bucket, trail, etag_of(aws, trail)))))
    poller = sqs_poller(spool, tmp_path, aws, queue)
    while poller.run_once() or poller._has_more:
        pass
    expected = a + [json.dumps(e).encode() for e in CLOUDTRAIL]
    assert records(spool) == expected
    assert poller.malformed_messages >= 1 and any("not JSON" in m for m in poller.messages)
    assert poller.messages_deleted == 5  # test event, two objects, the ignored one, the SNS copy
    assert queued(aws, queue) == 1  # the malformed message is left for the redrive policy
    # An SNS-wrapped notification of a new object, and one of a removal (nothing to read).
    b = lines(3, "b")
    aws["s3"].put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    put(aws, "logs/b.ndjson", b"\n".join(b))
    aws["sqs"].send_message(QueueUrl=queue, MessageBody=json.dumps(sns_wrapped(
        s3_notification(bucket, "logs/b.ndjson", etag_of(aws, "logs/b.ndjson")))))
    aws["sqs"].send_message(QueueUrl=queue, MessageBody=json.dumps(
        s3_notification(bucket, "logs/gone.ndjson", "abc", event="ObjectRemoved:Delete")))
    restarted = sqs_poller(spool, tmp_path, aws, queue)
    while restarted.run_once() or restarted._has_more:
        pass
    assert records(spool) == expected + b
    assert restarted.messages_deleted == 2


def test_sqs_message_kept_when_its_object_cannot_be_read(spool: Spool, tmp_path: Path, aws: dict[str, Any]) -> None:
    queue = make_queue(aws, visibility=0)
    aws["s3"].put_bucket_notification_configuration(Bucket=aws["bucket"], NotificationConfiguration={})
    aws["sqs"].send_message(QueueUrl=queue, MessageBody=json.dumps(
        s3_notification(aws["bucket"], "logs/never-written.ndjson", "0123")))
    poller = sqs_poller(spool, tmp_path, aws, queue)
    assert poller.run_once() == 0
    assert poller.failed_rounds == 1 and "NoSuchKey" in poller.messages[-1]
    assert "logs/never-written.ndjson" in poller.messages[-1]
    assert queued(aws, queue) == 1
    # A notification for a version that was replaced since (If-Match fails): the newer one has its own message.
    put(aws, "logs/rewritten.ndjson", b'{"v":2}\n')
    aws["sqs"].send_message(QueueUrl=queue, MessageBody=json.dumps(
        s3_notification(aws["bucket"], "logs/rewritten.ndjson", "0f343b0931126a20f133d67c2b018a3b")))
    poller.run_once()
    poller.run_once()
    assert records(spool) == []
    assert queued(aws, queue) == 1  # only the unreadable one


@pytest.mark.parametrize("crash_at", ["after_append", "before_delete"])
def test_sqs_restart_after_a_crash_neither_loses_nor_duplicates(
        spool: Spool, tmp_path: Path, aws: dict[str, Any], crash_at: str) -> None:
    queue = make_queue(aws, visibility=0)  # a message is visible again at once after the crash
    data = lines(25, "sqs")
    put(aws, "logs/crash.ndjson", b"\n".join(data))
    poller = sqs_poller(spool, tmp_path, aws, queue)
    real_append = spool.append
    calls = {"n": 0}

    def append(source_id: str, recs: list[bytes]) -> int:
        calls["n"] += 1
        position = real_append(source_id, recs)
        if calls["n"] == 2:
            raise Crash
        return position

    def delete_message(**kwargs: Any) -> None:
        raise Crash

    with pytest.MonkeyPatch.context() as patch, pytest.raises(Crash):
        if crash_at == "after_append":
            patch.setattr(spool, "append", append)
        else:
            patch.setattr(poller._client("sqs"), "delete_message", delete_message)
        while True:
            poller.run_once()
    restarted = sqs_poller(spool, tmp_path, aws, queue)
    for _ in range(3):
        restarted.run_once()
    assert records(spool) == data
    assert queued(aws, queue) == 0
    assert restarted.chunks_recovered == (1 if crash_at == "after_append" else 0)


# -- configuration -----------------------------------------------------------------------------------------


def test_config_validation() -> None:
    assert s3_source_config(bucket="trail-logs", prefix="AWSLogs/", region="eu-west-1") == {
        "bucket": "trail-logs", "prefix": "AWSLogs/", "region": "eu-west-1"}
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/onca-logs"
    assert s3_source_config(queue_url=queue, endpoint_url="http://127.0.0.1:9000/") == {
        "queue_url": queue, "endpoint_url": "http://127.0.0.1:9000"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({}, "needs a bucket to list"),
    ({"prefix": "logs/"}, "needs a bucket to list"),
    ({"bucket": "s3://trail/logs"}, "bucket name only"),
    ({"bucket": "Trail_Logs"}, "not a valid S3 bucket name"),
    ({"bucket": "ab"}, "not a valid S3 bucket name"),
    ({"bucket": "192.168.1.1"}, "not a valid S3 bucket name"),
    ({"bucket": "trail", "prefix": "/AWSLogs"}, "must not start with '/'"),
    ({"bucket": "trail", "queue_url": "onca-logs"}, "is not a queue URL"),
    ({"bucket": "trail", "queue_url": "arn:aws:sqs:us-east-1:123456789012:onca-logs"}, "is an ARN"),
    ({"bucket": "trail", "queue_url": "https://sqs.us-east-1.amazonaws.com/"}, "is not a queue URL"),
    ({"bucket": "trail", "region": "Frankfurt"}, "not an AWS region"),
    ({"bucket": "trail", "endpoint_url": "minio:9000"}, "not an http(s) URL"),
])
def test_config_errors(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        s3_source_config(**kwargs)
