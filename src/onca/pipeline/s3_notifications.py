"""S3 event notifications as an SQS message body carries them: which objects were created.

Two forms are understood: S3's own notification (`{"Records": [{"eventSource": "aws:s3", "eventName":
"ObjectCreated:Put", "s3": {...}}]}`, with the object key URL-encoded as S3 writes it) and the same wrapped
by SNS (`{"Type": "Notification", "Message": "<the S3 notification as a string>", ...}`; with SNS raw
message delivery the body is the plain form). The `s3:TestEvent` S3 sends when notifications are configured,
and events other than ObjectCreated:*, name no object to ingest. Anything else is malformed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


class MalformedNotification(ValueError):
    """The message is not an S3 event notification (or a part of it is missing)."""


@dataclass(frozen=True, slots=True)
class CreatedObject:
    bucket: str
    key: str
    etag: str  # without quotes; "" when the notification has none


def created_objects(body: str) -> list[CreatedObject]:
    """The objects a notification message reports as created, in its order; raises MalformedNotification."""
    document = _json(body, "the message body")
    if isinstance(document, dict) and document.get("Type") == "Notification" and "TopicArn" in document:
        message = document.get("Message")
        if not isinstance(message, str):
            raise MalformedNotification("SNS notification without a Message string")
        document = _json(message, "the SNS Message")
    if not isinstance(document, dict):
        raise MalformedNotification(f"expected a JSON object, got {type(document).__name__}")
    if document.get("Event") == "s3:TestEvent":
        return []
    records = document.get("Records")
    if not isinstance(records, list):
        raise MalformedNotification("not an S3 event notification (no Records list)")
    return [obj for i, record in enumerate(records) if (obj := _created(record, i)) is not None]


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise MalformedNotification(f"{what} is not JSON ({exc})") from None


def _created(record: Any, index: int) -> CreatedObject | None:
    if not isinstance(record, dict):
        raise MalformedNotification(f"Records[{index}] is not an object")
    name = record.get("eventName")
    if not isinstance(name, str) or record.get("eventSource") not in ("aws:s3", "minio:s3"):
        raise MalformedNotification(f"Records[{index}] is not an S3 event (eventSource/eventName missing)")
    if not name.removeprefix("s3:").startswith("ObjectCreated:"):
        return None  # removals, restores, replication ...: nothing to ingest
    try:
        s3 = record["s3"]
        bucket, key = s3["bucket"]["name"], s3["object"]["key"]
        etag = s3["object"].get("eTag") or ""
    except (KeyError, TypeError):
        raise MalformedNotification(f"Records[{index}] lacks s3.bucket.name or s3.object.key") from None
    if not (isinstance(bucket, str) and bucket and isinstance(key, str) and key and isinstance(etag, str)):
        raise MalformedNotification(f"Records[{index}] has an empty or non-string bucket, key or eTag")
    return CreatedObject(bucket, unquote_plus(key), etag.strip('"'))
