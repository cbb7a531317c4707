"""S3 poller: spools the objects written under an S3 bucket prefix, found by listing or by SQS notifications.

The source's config (checked by `s3_source_config`) names a `bucket` and `prefix`, and optionally a
`queue_url`, a `region` and an `endpoint_url` (moto, MinIO and other S3-compatible stores). Credentials come
from boto3's default chain (environment, shared config and profile, container or instance role).

- **Listing** (no queue_url): every `poll_interval` the prefix is listed (ListObjectsV2, paginated) after a
  persisted high-water mark, and every object not yet ingested is read. The high-water mark is the last key
  of the longest run of listed keys that are all ingested and were last modified more than `settle_seconds`
  ago; keys above it are remembered with their ETag. So keys that sort in the order they are written
  (CloudTrail, most log shippers: a timestamp in the name) are each read once, an object that appears late
  but within `settle_seconds` is still found, and the state stays small. A key written later that sorts
  below the mark is never seen: use SQS notifications when names do not grow.
- **SQS** (queue_url): messages are received (long polling), the objects they name as created are read,
  then the message is deleted. Objects outside the bucket (when given) or prefix are ignored.

**Objects are identified by bucket, key and ETag.** A key rewritten with other content is a new object and
is ingested again, whole (S3 has no appends: the new version replaces the old one); the same content
written again is not. Every GetObject asks for the ETag that was listed or notified (If-Match), so what is
read is the version that was announced: an object rewritten in between is skipped now and read when its new
version is listed (or notified: SQS messages for a version that is already gone are deleted).

**Exactly once.** Records are read with onca.logs.readers (compression by magic bytes, zip, NDJSON, JSON
arrays and `{"Records": [...]}` envelopes, text lines; CloudTrail digest files are skipped), streamed from
the response body and spooled in chunks by onca.pipeline.chunk_spooler, which records an intent before each
append in the state file (`<state_dir>/s3poller-<source>.json`, written atomically) and resolves it after a
crash. A transfer that breaks midway keeps the records spooled so far; the object is read again from its
start on the next round and the records already spooled are skipped. An object is marked ingested in the
state before its SQS message is deleted, so a message redelivered after a crash is recognised.

**Errors** (no such bucket, access denied, an object gone, network failures, throttling) are logged with
the bucket and key and retried on the next round, after a pause that doubles with each failed round up to
`max_backoff`; the thread never dies. A message that is not an S3 notification is logged and left in the
queue: it becomes visible again after the queue's visibility timeout and, with a redrive policy, moves to
the dead-letter queue after its maxReceiveCount; it is never deleted unread. Likewise a message whose
object cannot be read is kept, for a later retry or the dead-letter queue.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from onca.destinations.aws import REGION
from onca.logs.model import RawRecord
from onca.logs.readers import ReadReport, read_records
from onca.pipeline.chunk_spooler import ChunkedCounts, ChunkSpooler, new_progress
from onca.pipeline.s3_notifications import MalformedNotification, created_objects
from onca.pipeline.spool import Spool, atomic_write

log = logging.getLogger(__name__)

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_SQS_HOST_REGION = re.compile(r"^(?:sqs\.([a-z0-9-]+)\.amazonaws\.com|([a-z0-9-]+)\.queue\.amazonaws\.com)$")
_SUPERSEDED = frozenset({"PreconditionFailed", "412"})  # If-Match failed: the object was rewritten since


def s3_source_config(bucket: str | None = None, prefix: str | None = None, queue_url: str | None = None,
                     region: str | None = None, endpoint_url: str | None = None) -> dict[str, str]:
    """The stored config of an S3 source (empty values left out); raises ValueError saying what is wrong."""
    bucket, prefix, queue_url = bucket or "", prefix or "", queue_url or ""
    region, endpoint_url = region or "", endpoint_url or ""
    if bucket:
        if bucket.startswith("s3://") or "/" in bucket:
            raise ValueError(f"bucket must be a bucket name only (got {bucket!r}); give the path as the prefix")
        if not _BUCKET.match(bucket) or ".." in bucket or _IP.match(bucket):
            raise ValueError(f"bucket {bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, "
                             "dots and hyphens, starting and ending with a letter or digit)")
    elif not queue_url:
        raise ValueError("an S3 source needs a bucket to list (or a queue_url to receive S3 notifications from)")
    if prefix.startswith("/"):
        raise ValueError(f"prefix {prefix!r} must not start with '/': S3 keys have no leading slash")
    if len(prefix.encode()) > 1024:
        raise ValueError("prefix is longer than 1024 bytes, the longest S3 key")
    if queue_url:
        if queue_url.startswith("arn:"):
            raise ValueError(f"queue_url {queue_url!r} is an ARN; give the queue URL "
                             "(https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)")
        parts = urlsplit(queue_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or not parts.path.strip("/"):
            raise ValueError(f"queue_url {queue_url!r} is not a queue URL like "
                             "https://sqs.us-east-1.amazonaws.com/123456789012/onca-logs")
    if region and not REGION.match(region):
        raise ValueError(f"region {region!r} is not an AWS region like us-east-1")
    if endpoint_url:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint_url {endpoint_url!r} is not an http(s) URL like http://127.0.0.1:9000")
    values = {"bucket": bucket, "prefix": prefix, "queue_url": queue_url, "region": region,
              "endpoint_url": endpoint_url.rstrip("/")}
    return {k: v for k, v in values.items() if v}


@dataclass(slots=True)
class S3PollerOptions:
    poll_interval: float | None = None  # listing: between listings (default 60 s); SQS: after an empty receive (1 s)
    wait_seconds: int = 5  # SQS long polling (also how long stop() may wait)
    max_messages: int = 10
    max_backoff: float = 900.0
    settle_seconds: float = 3600.0  # listing: objects younger than this keep the high-water mark below them
    remember_seconds: float = 86400.0  # SQS: how long an ingested object is recognised when notified again
    chunk_records: int = 1000
    chunk_bytes: int = 4 << 20
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 3  # botocore's own retries of one request


class _TransferFailed(Exception):
    """The object's download broke (the readers would have taken it for the end of the object)."""


class _Stopped(Exception):
    """stop() was called while an object was being read."""


class _TrackedBody:
    """An object's response body that remembers whether a read failed."""

    __slots__ = ("_body", "failure")

    def __init__(self, body: Any) -> None:
        self._body = body
        self.failure: Exception | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            return self._body.read(size)
        except Exception as exc:
            self.failure = exc
            raise


def _intact(records: Iterator[RawRecord], body: _TrackedBody, stop: threading.Event) -> Iterator[bytes]:
    """The records read before the transfer broke; then _TransferFailed (the record being read when it broke
    may be cut short, so it is not delivered). _Stopped once `stop` is set."""
    try:
        for record in records:
            if body.failure is not None:
                break
            if stop.is_set():
                raise _Stopped
            yield record.data
    except Exception as exc:
        if body.failure is None:
            raise
        raise _TransferFailed(body.failure) from exc
    if body.failure is not None:
        raise _TransferFailed(body.failure)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


class S3Poller(ChunkedCounts):
    """Ingests the S3 source `source_id`. Call `run_once()` (tests) or `start()`/`stop()`."""

    def __init__(self, spool: Spool, source_id: str, config: dict[str, str], state_dir: str | os.PathLike[str],
                 options: S3PollerOptions | None = None) -> None:
        self.spool = spool
        self.source_id = source_id
        self.config = s3_source_config(**config)
        self.options = options or S3PollerOptions()
        self.mode = "sqs" if "queue_url" in self.config else "listing"
        default_interval = 1.0 if self.mode == "sqs" else 60.0
        self.interval = self.options.poll_interval if self.options.poll_interval is not None else default_interval
        state_path = Path(state_dir)
        state_path.mkdir(parents=True, exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source_id)
        self.state_file = state_path / f"s3poller-{safe}.json"
        self._state: dict[str, Any] = self._load()
        self.chunks = ChunkSpooler(spool, source_id, self._save, chunk_records=self.options.chunk_records,
                                   chunk_bytes=self.options.chunk_bytes)
        self._clients: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failed_rounds = 0  # consecutive rounds with an error; sets the backoff
        self._round_failed = False
        self._has_more = False  # the last SQS receive got messages: receive again at once
        self.objects_done = 0
        self.messages_deleted = 0
        self.malformed_messages = 0
        self.errors = 0
        self.messages: deque[str] = deque(maxlen=1000)  # recent problems, for status pages and tests

    # -- state ---------------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        """`done`: "bucket/key" -> [ETag, time ingested]; `partial`: "bucket/key" -> progress of an object being
        spooled (with its ETag and since when); `high_water` and `listing` ([bucket, prefix] it belongs to)."""
        try:
            state = json.loads(self.state_file.read_bytes())
        except FileNotFoundError:
            state = {"done": {}, "partial": {}, "high_water": "", "listing": None}
        if self.mode == "listing":
            listing = [self.config["bucket"], self.config.get("prefix", "")]
            if state["listing"] not in (None, listing):
                log.warning("s3 poller %s: now listing s3://%s/%s instead of s3://%s/%s; starting from the "
                            "beginning", self.source_id, *listing, *state["listing"])
                state["done"], state["high_water"] = {}, ""
            state["listing"] = listing
        return state

    def _save(self) -> None:
        atomic_write(self.state_file, json.dumps(self._state, sort_keys=True).encode())

    # -- AWS -----------------------------------------------------------------------------------------

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            o = self.options
            config = Config(connect_timeout=o.connect_timeout, read_timeout=o.read_timeout,
                            retries={"max_attempts": o.max_attempts, "mode": "standard"},
                            user_agent_extra="Onca-Poller/1",
                            s3={"addressing_style": "path"} if "endpoint_url" in self.config else None)
            kwargs: dict[str, Any] = {"config": config}
            region = self.config.get("region") or self._queue_region()
            if region:
                kwargs["region_name"] = region
            if "endpoint_url" in self.config:
                kwargs["endpoint_url"] = self.config["endpoint_url"]
            self._clients[service] = boto3.session.Session().client(service, **kwargs)
        return self._clients[service]

    def _queue_region(self) -> str:
        """The region in an AWS queue URL's host (so a queue works without region set anywhere)."""
        match = _SQS_HOST_REGION.match(urlsplit(self.config.get("queue_url", "")).hostname or "")
        return (match.group(1) or match.group(2)) if match else ""

    # -- rounds --------------------------------------------------------------------------------------

    def run_once(self) -> int:
        """One listing, or one SQS receive; returns how many objects were ingested. Errors are logged and
        counted (`failed_rounds`), not raised; a failure of the spool itself is raised."""
        self._round_failed = False
        try:
            done = self._receive() if self.mode == "sqs" else self._list()
        except (ClientError, BotoCoreError) as exc:
            where = self.config.get("queue_url") if self.mode == "sqs" else \
                f"s3://{self.config['bucket']}/{self.config.get('prefix', '')}"
            self._problem(f"{where}: {_error_text(exc)}; retrying")
            done = 0
        self.failed_rounds = self.failed_rounds + 1 if self._round_failed else 0
        return done

    def _list(self) -> int:
        bucket, prefix = self.config["bucket"], self.config.get("prefix", "")
        high_water = self._state["high_water"]
        kwargs = {"Bucket": bucket, "Prefix": prefix, **({"StartAfter": high_water} if high_water else {})}
        settled = time.time() - self.options.settle_seconds
        advancing, mark, ingested = True, high_water, 0
        for page in self._client("s3").get_paginator("list_objects_v2").paginate(**kwargs):
            for obj in page.get("Contents", []):
                if self._stop.is_set():
                    return ingested
                key, etag = obj["Key"], obj["ETag"].strip('"')
                if key.endswith("/") and obj["Size"] == 0:
                    done = True  # a "folder" marker, not an object
                elif self._done_etag(bucket, key) == etag:
                    done = True
                else:
                    done = self._ingest(bucket, key, etag)
                    ingested += done
                if advancing and done and obj["LastModified"].timestamp() <= settled:
                    mark = key
                else:
                    advancing = False
        if mark != high_water:
            self._state["high_water"] = mark
            start = len(bucket) + 1
            self._state["done"] = {name: v for name, v in self._state["done"].items() if name[start:] > mark}
            self._save()
        self._forget_old(done=False)  # listing forgets ingested keys only below the high-water mark
        return ingested

    def _receive(self) -> int:
        sqs = self._client("sqs")
        queue_url = self.config["queue_url"]
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=self.options.max_messages,
                                       WaitTimeSeconds=self.options.wait_seconds)
        messages = response.get("Messages", [])
        ingested = 0
        for message in messages:
            if self._stop.is_set():
                break
            message_id = message.get("MessageId", "?")
            try:
                objects = created_objects(message.get("Body", ""))
            except MalformedNotification as exc:
                self.malformed_messages += 1
                self._problem(f"message {message_id} is not an S3 notification ({exc}); left in the queue for "
                              f"its redrive policy; body starts {message.get('Body', '')[:200]!r}", failed=False)
                continue
            complete = True
            for obj in objects:
                if not self._wanted(obj.bucket, obj.key):
                    log.info("s3 poller %s: s3://%s/%s is outside s3://%s/%s; ignored", self.source_id, obj.bucket,
                             obj.key, self.config.get("bucket", "*"), self.config.get("prefix", ""))
                    continue
                if obj.etag and self._done_etag(obj.bucket, obj.key) == obj.etag:
                    continue  # a redelivered message, or an object named twice
                if not self._ingest(obj.bucket, obj.key, obj.etag, superseded_is_done=True):
                    complete = False
                    break
                ingested += 1
            if complete:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                self.messages_deleted += 1
        self._forget_old(done=True)
        self._has_more = bool(messages)
        return ingested

    def _wanted(self, bucket: str, key: str) -> bool:
        return bucket == self.config.get("bucket", bucket) and key.startswith(self.config.get("prefix", ""))

    def _done_etag(self, bucket: str, key: str) -> str | None:
        done = self._state["done"].get(f"{bucket}/{key}")
        return done[0] if done else None

    def _forget_old(self, *, done: bool) -> None:
        """Drop what is older than remember_seconds: ingested objects (with `done`) and abandoned partial ones
        (an object that vanished while being read)."""
        cutoff = time.time() - self.options.remember_seconds
        state = self._state
        old_done = [name for name, (_etag, at) in state["done"].items() if at < cutoff] if done else []
        old_partial = [name for name, progress in state["partial"].items() if progress["since"] < cutoff]
        for name in old_done:
            del state["done"][name]
        for name in old_partial:
            del state["partial"][name]
        if old_done or old_partial:
            self._save()

    # -- one object ----------------------------------------------------------------------------------

    def _ingest(self, bucket: str, key: str, etag: str, *, superseded_is_done: bool = False) -> bool:
        """Spool the records of one object not spooled yet; True once all are (or, with `superseded_is_done`,
        when the version named by `etag` has been replaced). Failures are logged and give False."""
        where = f"s3://{bucket}/{key}"
        try:
            response = self._client("s3").get_object(Bucket=bucket, Key=key, **({"IfMatch": f'"{etag}"'} if etag
                                                                                 else {}))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _SUPERSEDED:
                log.info("s3 poller %s: %s changed since it was announced; its new version is read when that is "
                         "listed or notified", self.source_id, where)
                return superseded_is_done
            self._problem(f"{where}: {_error_text(exc)}; retrying")
            return False
        except BotoCoreError as exc:
            self._problem(f"{where}: {_error_text(exc)}; retrying")
            return False
        body = _TrackedBody(response["Body"])
        try:
            etag = etag or response["ETag"].strip('"')
            name = f"{bucket}/{key}"
            if self._done_etag(bucket, key) == etag:
                return True
            partials = self._state["partial"]
            progress = partials.get(name)
            if progress is not None and progress["etag"] != etag:
                log.warning("s3 poller %s: %s was rewritten after %d records of its previous version were spooled; "
                            "spooling the new version from its start", self.source_id, where, progress["spooled"])
                progress = None
            if progress is None:
                progress = partials[name] = {"etag": etag, "since": time.time(), **new_progress()}
            report = ReadReport()
            try:
                records = _intact(read_records(body, origin=where, report=report), body, self._stop)
                self.chunks.spool_records(progress, records)
            except _Stopped:
                self._save()
                return False
            except _TransferFailed as exc:
                self._save()  # keep what is known to be spooled for the retry
                self._problem(f"{where}: download broke after {progress['spooled']} records were spooled "
                              f"({_error_text(exc.args[0])}); retrying")
                return False
        finally:
            with contextlib.suppress(Exception):
                response["Body"].close()
        for message in report.messages:
            self.messages.append(str(message))
            log.warning("s3 poller %s: %s", self.source_id, message)
        del partials[name]
        self._state["done"][name] = [etag, time.time()]
        self._save()
        self.objects_done += 1
        return True

    def _problem(self, text: str, *, failed: bool = True) -> None:
        log.warning("s3 poller %s: %s", self.source_id, text)
        self.messages.append(text)
        if failed:
            self.errors += 1
            self._round_failed = True

    # -- background ----------------------------------------------------------------------------------

    def _pause(self) -> float:
        if self.failed_rounds:
            return min(self.options.max_backoff, max(self.interval, 1.0) * 2 ** (self.failed_rounds - 1))
        if self.mode == "sqs" and self._has_more:
            return 0.0
        return self.interval

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                self.failed_rounds += 1
                log.exception("s3 poller %s failed; retrying", self.source_id)
            self._stop.wait(self._pause())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"s3poller-{self.source_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            with contextlib.suppress(RuntimeError):
                self._thread.join(timeout=self.options.wait_seconds + 10)
