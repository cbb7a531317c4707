"""Amazon SQS: send the alert as a JSON message to a queue."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import field_validator

from onca.destinations import aws
from onca.destinations.base import DEFAULT_TIMEOUT, Alert, Result, check_https_url, truncate

KIND = "sqs"
AWS_QUEUE_HOST = re.compile(r"^(?:sqs\.)?([a-z0-9-]+)\.(?:queue|sqs)\.amazonaws\.com(?:\.cn)?$|"
                            r"^sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


class SqsConfig(aws.AwsConfig):
    queue_url: str

    @field_validator("queue_url")
    @classmethod
    def _url(cls, value: str) -> str:
        check_https_url(value)
        parts = [part for part in urlsplit(value).path.split("/") if part]
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"must be a queue URL like https://sqs.us-east-1.amazonaws.com/123456789012/alerts "
                             f"(got {value!r})")
        return value

    @property
    def effective_region(self) -> str:
        match = AWS_QUEUE_HOST.match(urlsplit(self.queue_url).hostname or "")
        return self.region or (match and (match.group(1) or match.group(2))) or "us-east-1"


def send_args(alert: Alert, config: SqsConfig) -> dict[str, Any]:
    args: dict[str, Any] = {
        "QueueUrl": config.queue_url,
        "MessageBody": aws.message_body(alert),
        "MessageAttributes": {
            "severity": {"DataType": "String", "StringValue": alert.severity},
            "rule_id": {"DataType": "String", "StringValue": alert.rule_id or "-"},
        },
    }
    if config.queue_url.endswith(".fifo"):
        args["MessageGroupId"] = alert.rule_id or "onca"
        args["MessageDeduplicationId"] = truncate(alert.id, 128)
    return args


class Sqs:
    kind = KIND
    config_model = SqsConfig

    def send(self, alert: Alert, config: SqsConfig, timeout: float = DEFAULT_TIMEOUT) -> Result:
        try:
            response = aws.client("sqs", config, config.effective_region, timeout).send_message(
                **send_args(alert, config))
        except Exception as err:
            return aws.classify(err)
        return Result.ok(f"sent {response.get('MessageId', '')}".strip(), 200)
