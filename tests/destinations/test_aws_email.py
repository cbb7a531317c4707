"""SNS and SQS against moto's server on 127.0.0.1; email against a local SMTP server."""

from __future__ import annotations

import json
from typing import Any

import boto3

from onca.destinations import registry
from onca.destinations.base import Alert, Result


def send(kind: str, config: dict, alert: Alert, timeout: float = 5.0) -> Result:
    return registry.kind_of(kind).send(alert, registry.validate(kind, config), timeout)


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _receive(sqs: Any, queue_url: str) -> list[dict]:
    response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   MessageAttributeNames=["All"])
    return response.get("Messages", [])


def test_sqs_send_message_arrives(moto_endpoint: str, aws_env: None, alert: Alert) -> None:
    sqs = _client("sqs", moto_endpoint)
    queue_url = sqs.create_queue(QueueName="onca-alerts")["QueueUrl"]
    result = send("sqs", {"queue_url": queue_url, "region": "us-east-1", "endpoint_url": moto_endpoint}, alert)
    assert result.success, result.message
    (message,) = _receive(sqs, queue_url)
    body = json.loads(message["Body"])
    assert body["type"] == "alert" and body["alert"]["id"] == alert.id and body["alert"]["severity"] == "HIGH"
    assert message["MessageAttributes"]["severity"]["StringValue"] == "HIGH"


def test_sqs_fifo_queue_gets_group_and_dedup_ids(moto_endpoint: str, aws_env: None, alert: Alert) -> None:
    sqs = _client("sqs", moto_endpoint)
    queue_url = sqs.create_queue(QueueName="onca.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    config = {"queue_url": queue_url, "region": "us-east-1", "endpoint_url": moto_endpoint}
    assert send("sqs", config, alert).success
    assert send("sqs", config, alert).success  # a retry of the same alert is deduplicated by SQS
    assert len(_receive(sqs, queue_url)) == 1


def test_sns_publish_reaches_a_subscribed_queue(moto_endpoint: str, aws_env: None, alert: Alert) -> None:
    sns, sqs = _client("sns", moto_endpoint), _client("sqs", moto_endpoint)
    topic_arn = sns.create_topic(Name="onca-alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="sns-sink")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    result = send("sns", {"topic_arn": topic_arn, "endpoint_url": moto_endpoint}, alert)
    assert result.success and result.message.startswith("published ")
    (message,) = _receive(sqs, queue_url)
    envelope = json.loads(message["Body"])  # SNS's notification envelope
    assert envelope["TopicArn"] == topic_arn and envelope["Subject"] == "[HIGH] Root login from 198.51.100.23"
    assert json.loads(envelope["Message"])["alert"]["id"] == alert.id


def test_aws_errors_are_classified(moto_endpoint: str, closed_port_url: str, aws_env: None, alert: Alert) -> None:
    missing = send("sqs", {"queue_url": f"{moto_endpoint}/123456789012/does-not-exist", "region": "us-east-1",
                           "endpoint_url": moto_endpoint}, alert)
    assert not missing.success and missing.permanent
    missing_topic = send("sns", {"topic_arn": "arn:aws:sns:us-east-1:123456789012:nope",
                                 "endpoint_url": moto_endpoint}, alert)
    assert not missing_topic.success and missing_topic.permanent, missing_topic
    down = send("sqs", {"queue_url": f"{closed_port_url}/123456789012/q", "region": "us-east-1",
                        "endpoint_url": closed_port_url}, alert, timeout=1)
    assert not down.success and not down.permanent


def test_email_over_smtp(smtp_box: Any, alert: Alert) -> None:
    result = send("email", {"smtp_url": smtp_box.url, "sender": "onca@example.com",
                            "to": "soc@example.com;lead@example.com"}, alert)
    assert result.success, result.message
    (envelope,) = smtp_box.messages
    assert envelope.mail_from == "onca@example.com"
    assert envelope.rcpt_tos == ["soc@example.com", "lead@example.com"]
    text = envelope.content.decode()
    assert "Subject: [HIGH] Root login from 198.51.100.23" in text
    assert "Rule: AWS.Console.RootLogin" in text and "sourceIPAddress" in text


def test_email_server_down_is_transient(closed_port_url: str, alert: Alert) -> None:
    port = closed_port_url.rsplit(":", 1)[1]
    result = send("email", {"smtp_url": f"smtp://127.0.0.1:{port}", "sender": "onca@example.com",
                            "to": "soc@example.com"}, alert, timeout=2)
    assert not result.success and not result.permanent and "cannot connect" in result.message


def test_email_refused_recipient_is_permanent(alert: Alert) -> None:
    from aiosmtpd.controller import Controller

    from tests.destinations.conftest import free_port

    class Refuse:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
            return "550 5.1.1 no such user"

    port = free_port()
    controller = Controller(Refuse(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        result = send("email", {"smtp_url": f"smtp://127.0.0.1:{port}", "sender": "onca@example.com",
                                "to": "ghost@example.com"}, alert, timeout=5)
    finally:
        controller.stop()
    assert not result.success and result.permanent and "no such user" in result.message
