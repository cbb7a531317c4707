"""Amazon SNS: publish the alert as JSON to a topic."""

from __future__ import annotations

import re
from typing import Any

from pydantic import field_validator

from onca.destinations import aws
from onca.destinations.base import DEFAULT_TIMEOUT, Alert, Result, truncate

KIND = "sns"
TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,256}(\.fifo)?)$")


class SnsConfig(aws.AwsConfig):
    topic_arn: str

    @field_validator("topic_arn")
    @classmethod
    def _arn(cls, value: str) -> str:
        if not TOPIC_ARN.match(value):
            raise ValueError(f"must be an SNS topic ARN like arn:aws:sns:us-east-1:123456789012:alerts (got {value!r})")
        return value

    @property
    def effective_region(self) -> str:
        match = TOPIC_ARN.match(self.topic_arn)
        return self.region or (match.group(1) if match else "us-east-1")


def publish_args(alert: Alert, config: SnsConfig) -> dict[str, Any]:
    args: dict[str, Any] = {
        "TopicArn": config.topic_arn,
        "Message": aws.message_body(alert),
        "Subject": _subject(alert.summary),
        "MessageAttributes": {
            "severity": {"DataType": "String", "StringValue": alert.severity},
            "rule_id": {"DataType": "String", "StringValue": alert.rule_id or "-"},
        },
    }
    if config.topic_arn.endswith(".fifo"):
        args["MessageGroupId"] = alert.rule_id or "onca"
        args["MessageDeduplicationId"] = truncate(alert.id, 128)
    return args


def _subject(text: str) -> str:
    # SNS subjects: at most 100 ASCII characters, no line breaks.
    clean = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)
    return truncate(clean, 100).replace("…", ".")


class Sns:
    kind = KIND
    config_model = SnsConfig

    def send(self, alert: Alert, config: SnsConfig, timeout: float = DEFAULT_TIMEOUT) -> Result:
        try:
            sns = aws.client("sns", config, config.effective_region, timeout)
            response = sns.publish(**publish_args(alert, config))
        except Exception as err:
            return aws.classify(err)
        return Result.ok(f"published {response.get('MessageId', '')}".strip(), 200)
