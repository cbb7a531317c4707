"""What the SNS and SQS kinds share: config fields, a boto3 client with Onca's timeouts, error triage."""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)
from pydantic import field_validator

from onca.destinations.base import Alert, DestinationConfig, Result, check_https_url

REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
# Error codes AWS uses for "slow down" and "try again": everything else a client error says is permanent.
TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "SlowDown", "ServiceUnavailable", "InternalError", "InternalFailure", "InternalServerError",
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "KMSThrottling",
    "KMSThrottlingException", "KMS.ThrottlingException", "EC2ThrottledException",
})


class AwsConfig(DestinationConfig):
    region: str = ""
    endpoint_url: str = ""  # a local or private endpoint (moto in tests, VPC endpoints)
    # Without keys the default credential chain is used (environment, profile, instance role).
    access_key_id: str = ""
    secret_access_key: str = ""
    secret_fields: ClassVar[tuple[str, ...]] = ("secret_access_key",)

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if value and not REGION.match(value):
            raise ValueError(f"must be an AWS region like us-east-1 (got {value!r})")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return check_https_url(value).rstrip("/") if value else value

    @field_validator("secret_access_key")
    @classmethod
    def _pair(cls, value: str, info: Any) -> str:
        if bool(value) != bool(info.data.get("access_key_id")):
            raise ValueError("access_key_id and secret_access_key go together (or leave both out)")
        return value


def client(service: str, config: AwsConfig, region: str, timeout: float) -> Any:
    # One attempt per delivery: the outbox owns retries, so botocore's own must not multiply them.
    boto_config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1, "mode": "standard"},
                         user_agent_extra="Onca-Alerts/1")
    kwargs: dict[str, Any] = {"region_name": region, "config": boto_config}
    if config.endpoint_url:
        kwargs["endpoint_url"] = config.endpoint_url
    if config.access_key_id:
        kwargs["aws_access_key_id"] = config.access_key_id
        kwargs["aws_secret_access_key"] = config.secret_access_key
    return boto3.session.Session().client(service, **kwargs)


def classify(err: Exception) -> Result:
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = f"{code}: {error.get('Message', '')}".strip(": ")
        if code in TRANSIENT_CODES or (isinstance(status, int) and (status >= 500 or status == 429)):
            return Result.transient(message, status)
        return Result.fatal(message, status)
    if isinstance(err, NoCredentialsError | PartialCredentialsError | ParamValidationError):
        return Result.fatal(str(err))
    if isinstance(err, BotoConnectionError | HTTPClientError):  # includes connect and read timeouts
        return Result.transient(str(err))
    if isinstance(err, BotoCoreError):
        return Result.transient(str(err))
    raise err


def message_body(alert: Alert) -> str:
    return json.dumps({"version": 1, "type": "test" if alert.test else "alert", "alert": alert.as_json()},
                      sort_keys=True, default=str)
