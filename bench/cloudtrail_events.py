"""Generate a realistic AWS CloudTrail event stream for the rules-engine benchmark.

Most events are ordinary traffic shaped like a real account's trail: read-only Describe/List/Get calls
across many services, STS AssumeRole (largely by AWS services), KMS calls, S3 object data events and
console logins, from IAM users, assumed roles, AWS services and (rarely) the root user, with ~4% of
management calls failing with an error code. A configurable fraction of events is taken from the
`Log` of the unit tests of the AWS.CloudTrail rules found in the user's analysis directory, read at
run time, so that the rules really match something. The output is deterministic for a given seed.

    python bench/cloudtrail_events.py --analysis-dir ~/panther-analysis --count 20000 --out ct.ndjson
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from onca.detections.content import load_content

LOG_TYPE = "AWS.CloudTrail"

Event = dict[str, Any]
Json = dict[str, Any] | None

ACCOUNTS = ("123456789012", "210987654321", "345678901234")
REGIONS = (
    ("us-east-1", 45),
    ("us-west-2", 20),
    ("eu-west-1", 12),
    ("us-east-2", 8),
    ("eu-central-1", 7),
    ("ap-southeast-2", 4),
    ("ap-northeast-1", 4),
)
FIRST_NAMES = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "yusuf",
)
LAST_NAMES = ("smith", "jones", "garcia", "chen", "patel", "kowalski", "nguyen", "okafor", "silva")
SERVICE_USERS = ("ci-deployer", "terraform", "backup-agent", "datadog-integration", "grafana-reader")
ROLES = (
    "OrganizationAccountAccessRole",
    "eks-node-group-role",
    "lambda-etl-execution",
    "GitHubActionsDeployRole",
    "AWSReservedSSO_AdministratorAccess_4f2a9c1d7e3b5a60",
    "AWSReservedSSO_ReadOnlyAccess_9b8c7d6e5f4a3b21",
    "ecs-task-api",
    "SecurityAuditRole",
    "AWSServiceRoleForConfig",
    "AWSServiceRoleForAutoScaling",
    "datadog-integration-role",
    "ssm-managed-instance",
    "karpenter-controller",
    "aws-load-balancer-controller",
)
AWS_SERVICES = (
    "lambda.amazonaws.com",
    "ecs-tasks.amazonaws.com",
    "ec2.amazonaws.com",
    "config.amazonaws.com",
    "autoscaling.amazonaws.com",
    "cloudtrail.amazonaws.com",
    "s3.amazonaws.com",
    "secretsmanager.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
)
BROWSER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
)
CLI_AGENTS = (
    "aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off command/{cmd}",
    "aws-cli/2.13.2 Python/3.11.4 Linux/6.5.0-1018-aws exe/x86_64.ubuntu.22 prompt/off command/{cmd}",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.10.213-201.855.amzn2.x86_64 md/arch#x86_64 "
    "lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.4 (+https://www.terraform.io) terraform-provider-aws/5.40.0 "
    "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.25.3 os/linux "
    "lang/go#1.21.8 md/GOOS#linux md/GOARCH#amd64 api/{svc}#1.150.0",
    "aws-sdk-go/1.50.38 (go1.21.8; linux; amd64)",
    "aws-sdk-java/2.25.11 Linux/5.10.213-201.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS "
    "Java/17.0.10 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/standard",
)
CONSOLE_AGENT = "AWS Internal"
PUBLIC_FIRST_OCTETS = (3, 18, 34, 35, 52, 54, 73, 81, 98, 104, 185, 203)
ERRORS = (
    (
        "AccessDenied",
        "User: {arn} is not authorized to perform: {action} because no identity-based "
        "policy allows the {action} action",
    ),
    ("ThrottlingException", "Rate exceeded"),
    ("ResourceNotFoundException", "Requested resource not found"),
)
EC2_UNAUTHORIZED = ("Client.UnauthorizedOperation", "You are not authorized to perform this operation.")


@dataclass
class Principal:
    """Who makes calls: the userIdentity block plus where they usually call from."""

    kind: str  # IAMUser, AssumedRole, Root, AWSService
    identity: dict[str, Any]
    arn: str
    account: str
    ips: list[str]
    agents: list[str]
    console: bool = False  # signs in to the console (browser agent, ConsoleLogin events)
    mfa: bool = True


@dataclass
class Context:
    """Per-event facts the request/response builders need."""

    rng: random.Random
    principal: Principal
    region: str
    account: str
    buckets: list[str] = field(default_factory=list)


Builder = Callable[[Context], tuple[Json, Json, list[dict[str, str]] | None]]


def _ident(rng: random.Random, prefix: str, length: int = 16) -> str:
    return prefix + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(length))


def _hex(rng: random.Random, length: int) -> str:
    return f"{rng.getrandbits(length * 4):0{length}x}"


def _public_ip(rng: random.Random) -> str:
    return f"{rng.choice(PUBLIC_FIRST_OCTETS)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _session_context(rng: random.Random, issuer: dict[str, str] | None, mfa: bool) -> dict[str, Any]:
    created = datetime(2024, 5, 1, rng.randrange(24), rng.randrange(60), rng.randrange(60), tzinfo=UTC)
    return {
        "sessionIssuer": issuer or {},
        "webIdFederationData": {},
        "attributes": {
            "creationDate": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "mfaAuthenticated": "true" if mfa else "false",
        },
    }


def build_principals(rng: random.Random) -> list[tuple[Principal, int]]:
    """A fixed population of callers with weights: roles and services dominate real trails."""
    principals: list[tuple[Principal, int]] = []
    for i in range(24):
        name = f"{FIRST_NAMES[i % len(FIRST_NAMES)]}.{rng.choice(LAST_NAMES)}"
        account = ACCOUNTS[i % 2]
        arn = f"arn:aws:iam::{account}:user/{name}"
        console = i % 3 != 0
        identity = {
            "type": "IAMUser",
            "principalId": _ident(rng, "AIDA"),
            "arn": arn,
            "accountId": account,
            "accessKeyId": _ident(rng, "ASIA" if console else "AKIA"),
            "userName": name,
        }
        if console:
            identity["sessionContext"] = _session_context(rng, None, mfa=i % 5 != 0)
        agents = [rng.choice(BROWSER_AGENTS)] if console else [rng.choice(CLI_AGENTS) for _ in range(2)]
        principals.append(
            (
                Principal(
                    "IAMUser",
                    identity,
                    arn,
                    account,
                    [_public_ip(rng)],
                    agents,
                    console=console,
                    mfa=i % 5 != 0,
                ),
                2,
            )
        )
    for name in SERVICE_USERS:
        account = ACCOUNTS[0]
        arn = f"arn:aws:iam::{account}:user/{name}"
        identity = {
            "type": "IAMUser",
            "principalId": _ident(rng, "AIDA"),
            "arn": arn,
            "accountId": account,
            "accessKeyId": _ident(rng, "AKIA"),
            "userName": name,
        }
        principals.append(
            (
                Principal(
                    "IAMUser",
                    identity,
                    arn,
                    account,
                    [_public_ip(rng) for _ in range(3)],
                    [rng.choice(CLI_AGENTS)],
                ),
                4,
            )
        )
    for role in ROLES:
        for account in ACCOUNTS:
            role_id = _ident(rng, "AROA")
            sso = role.startswith("AWSReservedSSO")
            session = f"{rng.choice(FIRST_NAMES)}@example.com" if sso else f"i-{_hex(rng, 17)}"
            role_arn = f"arn:aws:iam::{account}:role/{role}"
            arn = f"arn:aws:sts::{account}:assumed-role/{role}/{session}"
            issuer = {
                "type": "Role",
                "principalId": role_id,
                "arn": role_arn,
                "accountId": account,
                "userName": role,
            }
            identity = {
                "type": "AssumedRole",
                "principalId": f"{role_id}:{session}",
                "arn": arn,
                "accountId": account,
                "accessKeyId": _ident(rng, "ASIA"),
                "sessionContext": _session_context(rng, issuer, mfa=False),
            }
            ips = (
                [_public_ip(rng)]
                if sso
                else [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(4)]
            )
            agents = [rng.choice(BROWSER_AGENTS)] if sso else [rng.choice(CLI_AGENTS) for _ in range(2)]
            principals.append(
                (Principal("AssumedRole", identity, arn, account, ips, agents, console=sso, mfa=False), 6)
            )
    for service in AWS_SERVICES:
        identity = {"type": "AWSService", "invokedBy": service}
        principals.append((Principal("AWSService", identity, service, ACCOUNTS[0], [service], [service]), 9))
    account = ACCOUNTS[0]
    root = {
        "type": "Root",
        "principalId": account,
        "arn": f"arn:aws:iam::{account}:root",
        "accountId": account,
        "accessKeyId": _ident(rng, "ASIA"),
    }
    principals.append(
        (
            Principal("Root", root, root["arn"], account, [_public_ip(rng)], [BROWSER_AGENTS[0]], console=True),
            1,
        )
    )
    return principals


# --- request/response shapes -------------------------------------------------------------------------


def _none(ctx: Context) -> tuple[Json, Json, None]:
    return None, None, None


def _filters(ctx: Context) -> tuple[Json, Json, None]:
    rng = ctx.rng
    params: dict[str, Any] = {"maxResults": rng.choice((100, 1000))}
    if rng.random() < 0.5:
        params["filterSet"] = {
            "items": [{"name": "tag:Environment", "valueSet": {"items": [{"value": rng.choice(("prod", "dev"))}]}}]
        }
    return params, None, None


def _instance_ids(ctx: Context) -> tuple[Json, Json, None]:
    ids = [{"instanceId": f"i-{_hex(ctx.rng, 17)}"} for _ in range(ctx.rng.randint(1, 3))]
    return {"instancesSet": {"items": ids}, "filterSet": {}}, None, None


def _role_name(ctx: Context) -> tuple[Json, Json, None]:
    return {"roleName": ctx.rng.choice(ROLES)}, None, None


def _user_name(ctx: Context) -> tuple[Json, Json, None]:
    return {"userName": f"{ctx.rng.choice(FIRST_NAMES)}.{ctx.rng.choice(LAST_NAMES)}"}, None, None


def _bucket(ctx: Context) -> tuple[Json, Json, list[dict[str, str]]]:
    bucket = ctx.rng.choice(ctx.buckets)
    params = {"bucketName": bucket, "Host": f"{bucket}.s3.{ctx.region}.amazonaws.com"}
    resources = [{"accountId": ctx.account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"}]
    return params, None, resources


def _object(ctx: Context) -> tuple[Json, Json, list[dict[str, str]]]:
    rng = ctx.rng
    bucket = rng.choice(ctx.buckets)
    prefix = rng.choice(("logs", "exports", "assets", "tmp"))
    key = f"{prefix}/2024/05/{rng.randint(1, 31):02d}/{_hex(rng, 12)}.gz"
    params = {"bucketName": bucket, "Host": f"{bucket}.s3.{ctx.region}.amazonaws.com", "key": key}
    resources = [
        {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"},
        {"accountId": ctx.account, "type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}"},
    ]
    return params, None, resources


def _put_object(ctx: Context) -> tuple[Json, Json, list[dict[str, str]]]:
    params, _, resources = _object(ctx)
    response = {"x-amz-server-side-encryption": "aws:kms", "x-amz-version-id": _hex(ctx.rng, 32)}
    return params, response, resources


def _assume_role(ctx: Context) -> tuple[Json, Json, list[dict[str, str]]]:
    rng = ctx.rng
    role = rng.choice(ROLES)
    role_arn = f"arn:aws:iam::{ctx.account}:role/{role}"
    session = f"{rng.choice(('botocore-session', 'aws-go-sdk', 'terraform'))}-{rng.randrange(10**10)}"
    key_id = _ident(rng, "ASIA")
    expiry = datetime(2024, 5, 1, rng.randrange(24), rng.randrange(60), tzinfo=UTC)
    response = {
        "credentials": {
            "accessKeyId": key_id,
            "sessionToken": _hex(rng, 48),
            "expiration": expiry.strftime("%b %d, %Y, %I:%M:%S %p"),
        },
        "assumedRoleUser": {
            "assumedRoleId": f"{_ident(rng, 'AROA')}:{session}",
            "arn": f"arn:aws:sts::{ctx.account}:assumed-role/{role}/{session}",
        },
    }
    resources = [{"accountId": ctx.account, "type": "AWS::IAM::Role", "ARN": role_arn}]
    return {"roleArn": role_arn, "roleSessionName": session, "durationSeconds": 3600}, response, resources


def _kms(ctx: Context) -> tuple[Json, Json, list[dict[str, str]]]:
    key_arn = f"arn:aws:kms:{ctx.region}:{ctx.account}:key/{uuid.UUID(int=ctx.rng.getrandbits(128))}"
    params: dict[str, Any] = {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}
    if ctx.rng.random() < 0.6:
        params["encryptionContext"] = {"aws:s3:arn": f"arn:aws:s3:::{ctx.rng.choice(ctx.buckets)}"}
    return params, None, [{"accountId": ctx.account, "type": "AWS::KMS::Key", "ARN": key_arn}]


def _parameter(ctx: Context) -> tuple[Json, Json, None]:
    name = f"/{ctx.rng.choice(('prod', 'staging'))}/{ctx.rng.choice(('api', 'worker'))}/database_url"
    return {"name": name, "withDecryption": ctx.rng.random() < 0.5}, None, None


def _log_stream(ctx: Context) -> tuple[Json, Json, None]:
    group = f"/aws/lambda/{ctx.rng.choice(('etl', 'api-authorizer', 'thumbnailer'))}"
    return {"logGroupName": group, "logStreamName": f"2024/05/01/[$LATEST]{_hex(ctx.rng, 32)}"}, None, None


def _create_tags(ctx: Context) -> tuple[Json, Json, None]:
    params = {
        "resourcesSet": {"items": [{"resourceId": f"i-{_hex(ctx.rng, 17)}"}]},
        "tagSet": {"items": [{"key": "Owner", "value": ctx.rng.choice(FIRST_NAMES)}]},
    }
    return params, {"requestId": str(uuid.UUID(int=ctx.rng.getrandbits(128))), "_return": True}, None


def _instance_info(ctx: Context) -> tuple[Json, Json, None]:
    params = {
        "instanceId": f"i-{_hex(ctx.rng, 17)}",
        "agentVersion": "3.3.131.0",
        "agentName": "amazon-ssm-agent",
        "platformType": "Linux",
        "platformName": "Amazon Linux",
        "platformVersion": "2023",
    }
    return params, None, None


def _query(ctx: Context) -> tuple[Json, Json, None]:
    params = {
        "queryString": "SELECT * FROM cloudtrail_logs WHERE eventname = 'ConsoleLogin' LIMIT 100",
        "workGroup": "primary",
    }
    return params, {"queryExecutionId": str(uuid.UUID(int=ctx.rng.getrandbits(128)))}, None


@dataclass(frozen=True)
class Call:
    source: str
    name: str
    weight: int
    builder: Builder = _none
    read_only: bool = True
    data_event: bool = False
    principals: tuple[str, ...] = ("IAMUser", "AssumedRole")


def _reads(source: str, names: str, weight: int, builder: Builder = _none) -> list[Call]:
    return [Call(source, name, weight, builder) for name in names.split()]


CATALOGUE: tuple[Call, ...] = (
    *_reads(
        "ec2.amazonaws.com",
        "DescribeInstances DescribeInstanceStatus DescribeNetworkInterfaces",
        30,
        _filters,
    ),
    *_reads(
        "ec2.amazonaws.com",
        "DescribeSecurityGroups DescribeVolumes DescribeSubnets DescribeVpcs "
        "DescribeImages DescribeRegions DescribeTags DescribeAddresses DescribeSnapshots "
        "DescribeLaunchTemplates DescribeRouteTables",
        10,
        _filters,
    ),
    *_reads("s3.amazonaws.com", "ListBuckets", 8),
    *_reads(
        "s3.amazonaws.com",
        "GetBucketLocation GetBucketAcl GetBucketPolicy GetBucketEncryption "
        "GetBucketVersioning GetBucketTagging GetBucketLogging GetBucketPublicAccessBlock",
        6,
        _bucket,
    ),
    *_reads("iam.amazonaws.com", "GetRole ListAttachedRolePolicies ListRolePolicies", 8, _role_name),
    *_reads("iam.amazonaws.com", "GetUser ListAccessKeys ListMFADevices ListGroupsForUser", 5, _user_name),
    *_reads("iam.amazonaws.com", "ListRoles ListUsers ListPolicies GetAccountSummary GetAccountPasswordPolicy", 4),
    *_reads("sts.amazonaws.com", "GetCallerIdentity", 25),
    *_reads("lambda.amazonaws.com", "ListFunctions20150331 GetFunction20150331v2 GetPolicy20150331v2", 6),
    *_reads("logs.amazonaws.com", "DescribeLogGroups DescribeLogStreams", 10),
    *_reads("monitoring.amazonaws.com", "DescribeAlarms GetMetricData GetMetricStatistics ListMetrics", 10),
    *_reads("kms.amazonaws.com", "DescribeKey ListAliases ListKeys GetKeyPolicy", 5),
    *_reads("rds.amazonaws.com", "DescribeDBInstances DescribeDBClusters DescribeDBSnapshots", 5),
    *_reads("dynamodb.amazonaws.com", "DescribeTable ListTables DescribeContinuousBackups", 6),
    *_reads("ecs.amazonaws.com", "ListClusters DescribeServices DescribeTasks ListTasks", 6),
    *_reads("eks.amazonaws.com", "ListClusters DescribeCluster ListNodegroups", 5),
    *_reads("config.amazonaws.com", "DescribeConfigRules DescribeConfigurationRecorderStatus", 4),
    *_reads("cloudtrail.amazonaws.com", "DescribeTrails GetTrailStatus GetEventSelectors LookupEvents", 4),
    *_reads("ssm.amazonaws.com", "DescribeInstanceInformation ListCommands GetParameters", 6, _parameter),
    *_reads("ssm.amazonaws.com", "GetParameter", 10, _parameter),
    *_reads("route53.amazonaws.com", "ListHostedZones ListResourceRecordSets GetHostedZone", 3),
    *_reads(
        "elasticloadbalancing.amazonaws.com",
        "DescribeLoadBalancers DescribeTargetGroups DescribeTargetHealth",
        6,
    ),
    *_reads("autoscaling.amazonaws.com", "DescribeAutoScalingGroups DescribeScalingActivities", 5),
    *_reads("organizations.amazonaws.com", "DescribeOrganization ListAccounts", 2),
    *_reads("guardduty.amazonaws.com", "ListDetectors GetFindings ListFindings", 3),
    *_reads("cloudformation.amazonaws.com", "DescribeStacks ListStacks DescribeStackEvents", 4),
    *_reads("ecr.amazonaws.com", "GetAuthorizationToken BatchGetImage GetDownloadUrlForLayer", 8),
    *_reads("secretsmanager.amazonaws.com", "DescribeSecret ListSecrets", 3),
    *_reads("athena.amazonaws.com", "GetQueryExecution GetQueryResults", 4),
    Call(
        "sts.amazonaws.com",
        "AssumeRole",
        60,
        _assume_role,
        principals=("AssumedRole", "IAMUser", "AWSService"),
    ),
    Call("sts.amazonaws.com", "AssumeRoleWithWebIdentity", 10, _assume_role, principals=("AWSService",)),
    Call("sts.amazonaws.com", "GetSessionToken", 2, principals=("IAMUser",)),
    Call("kms.amazonaws.com", "Decrypt", 40, _kms, principals=("AssumedRole", "AWSService")),
    Call("kms.amazonaws.com", "GenerateDataKey", 25, _kms, principals=("AssumedRole", "AWSService")),
    Call("kms.amazonaws.com", "Encrypt", 5, _kms, principals=("AssumedRole",)),
    Call("secretsmanager.amazonaws.com", "GetSecretValue", 6, principals=("AssumedRole",)),
    Call(
        "s3.amazonaws.com",
        "GetObject",
        120,
        _object,
        data_event=True,
        principals=("AssumedRole", "IAMUser", "AWSService"),
    ),
    Call(
        "s3.amazonaws.com",
        "PutObject",
        60,
        _put_object,
        read_only=False,
        data_event=True,
        principals=("AssumedRole", "AWSService"),
    ),
    Call("s3.amazonaws.com", "HeadObject", 30, _object, data_event=True),
    Call("s3.amazonaws.com", "ListObjects", 20, _bucket, data_event=True),
    Call("s3.amazonaws.com", "DeleteObject", 4, _object, read_only=False, data_event=True),
    Call("logs.amazonaws.com", "CreateLogStream", 15, _log_stream, read_only=False, principals=("AssumedRole",)),
    Call("ec2.amazonaws.com", "CreateTags", 4, _create_tags, read_only=False),
    Call("ec2.amazonaws.com", "CreateNetworkInterface", 3, read_only=False, principals=("AWSService",)),
    Call(
        "ssm.amazonaws.com",
        "UpdateInstanceInformation",
        30,
        _instance_info,
        read_only=False,
        principals=("AssumedRole",),
    ),
    Call("athena.amazonaws.com", "StartQueryExecution", 3, _query, read_only=False),
    Call("ec2.amazonaws.com", "RunInstances", 1, _instance_ids, read_only=False),
    Call("ec2.amazonaws.com", "TerminateInstances", 1, _instance_ids, read_only=False),
)
CONSOLE_LOGIN_WEIGHT = 4


class TrailWriter:
    """Makes one ordinary CloudTrail record at a time from a seeded random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        weighted = build_principals(rng)
        self.by_kind: dict[str, tuple[list[Principal], list[int]]] = {}
        for principal, weight in weighted:
            people, weights = self.by_kind.setdefault(principal.kind, ([], []))
            people.append(principal)
            weights.append(weight)
        self.console_users = [p for p, _ in weighted if p.console]
        self.calls = [*CATALOGUE, None]  # None stands for a console sign-in
        self.call_weights = [c.weight for c in CATALOGUE] + [CONSOLE_LOGIN_WEIGHT]
        self.regions = [r for r, _ in REGIONS]
        self.region_weights = [w for _, w in REGIONS]
        self.buckets = [f"acme-{name}-{_hex(rng, 6)}" for name in ("logs", "assets", "exports", "backups", "tmp")]
        self.time = datetime(2024, 5, 1, tzinfo=UTC)

    def _principal_for(self, call: Call) -> Principal:
        rng = self.rng
        kinds = call.principals
        if call.read_only and not call.data_event and rng.random() < 0.0005:
            return self.by_kind["Root"][0][0]
        kind_weights = [len(self.by_kind[k][0]) * (3 if k == "AWSService" else 1) for k in kinds]
        kind = rng.choices(kinds, kind_weights)[0]
        people, weights = self.by_kind[kind]
        return rng.choices(people, weights)[0]

    def next_event(self) -> Event:
        rng = self.rng
        self.time += timedelta(milliseconds=rng.randrange(1, 400))
        call = rng.choices(self.calls, self.call_weights)[0]
        if call is None:
            return self._console_login()
        principal = self._principal_for(call)
        region = (
            "us-east-1"
            if call.source in ("iam.amazonaws.com", "sts.amazonaws.com") and rng.random() < 0.7
            else rng.choices(self.regions, self.region_weights)[0]
        )
        ctx = Context(rng, principal, region, principal.account, self.buckets)
        request, response, resources = call.builder(ctx)
        event = self._envelope(principal, call.source, call.name, region)
        event["requestParameters"] = request
        event["responseElements"] = response
        if call.data_event:
            event["eventCategory"] = "Data"
            event["managementEvent"] = False
            event["additionalEventData"] = {
                "SignatureVersion": "SigV4",
                "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": float(rng.randrange(0, 50000) if not call.read_only else 0),
                "AuthenticationMethod": "AuthHeader",
                "x-amz-id-2": _hex(rng, 40),
                "bytesTransferredOut": float(rng.randrange(0, 200000) if call.read_only else 0),
            }
        if resources is not None:
            event["resources"] = resources
        event["readOnly"] = call.read_only
        if not call.data_event and principal.kind != "AWSService" and rng.random() < 0.04:
            self._fail(event, call, principal)
        return event

    def _envelope(self, principal: Principal, source: str, name: str, region: str) -> Event:
        rng = self.rng
        agent = rng.choice(principal.agents)
        if principal.console and principal.kind != "AWSService":
            agent = CONSOLE_AGENT if rng.random() < 0.3 else agent
        elif "{" in agent:
            service = source.split(".", 1)[0]
            agent = agent.format(cmd=f"{service}.{name.lower()}", svc=service)
        event: Event = {
            "eventVersion": "1.09" if principal.kind != "AWSService" else "1.08",
            "userIdentity": principal.identity,
            "eventTime": self.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": source,
            "eventName": name,
            "awsRegion": region,
            "sourceIPAddress": rng.choice(principal.ips),
            "userAgent": agent,
            "requestID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "eventID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": principal.account,
            "eventCategory": "Management",
        }
        if principal.kind != "AWSService":
            event["tlsDetails"] = {
                "tlsVersion": "TLSv1.3",
                "cipherSuite": "TLS_AES_128_GCM_SHA256",
                "clientProvidedHostHeader": f"{source.split('.', 1)[0]}.{region}.amazonaws.com",
            }
            if principal.console:
                event["sessionCredentialFromConsole"] = "true"
        else:
            event["sharedEventID"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return event

    def _fail(self, event: Event, call: Call, principal: Principal) -> None:
        code, message = EC2_UNAUTHORIZED if call.source == "ec2.amazonaws.com" else self.rng.choice(ERRORS)
        action = f"{call.source.split('.', 1)[0]}:{call.name}"
        event["errorCode"] = code
        event["errorMessage"] = message.format(arn=principal.arn, action=action)
        event["responseElements"] = None

    def _console_login(self) -> Event:
        rng = self.rng
        principal = rng.choice(self.console_users)
        event = self._envelope(principal, "signin.amazonaws.com", "ConsoleLogin", "us-east-1")
        event["userAgent"] = rng.choice(BROWSER_AGENTS)
        event.pop("tlsDetails", None)
        event.pop("sessionCredentialFromConsole", None)
        event["eventType"] = "AwsConsoleSignIn"
        event["readOnly"] = False
        event["requestParameters"] = None
        failed = principal.kind == "IAMUser" and rng.random() < 0.08
        event["responseElements"] = {"ConsoleLogin": "Failure" if failed else "Success"}
        if failed:
            event["errorMessage"] = "Failed authentication"
        extra = {
            "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
            "MobileVersion": "No",
            "MFAUsed": "Yes" if principal.mfa else "No",
        }
        if principal.kind == "IAMUser" and principal.mfa:
            extra["MFAIdentifier"] = principal.arn.replace(":user/", ":mfa/")
        event["additionalEventData"] = extra
        if principal.kind == "IAMUser":
            # Sign-in events carry no access key: the session is being created.
            event["userIdentity"] = {
                k: v for k, v in principal.identity.items() if k not in ("accessKeyId", "sessionContext")
            }
        return event


def rule_test_logs(analysis_dir: Path, log_type: str = LOG_TYPE) -> list[Event]:
    """The `Log` of every unit test of the enabled rules of `log_type`, in load order."""
    logs: list[Event] = []
    for item in load_content(analysis_dir).of_type("rule"):
        if not item.enabled or log_type not in (item.spec.get("LogTypes") or ()):
            continue
        for test in item.spec.get("Tests") or ():
            log = test.get("Log")
            if isinstance(log, dict) and log.get("p_log_type", log_type) == log_type:
                logs.append({k: v for k, v in log.items() if k != "p_log_type"})
    return logs


def generate(count: int, seed: int, test_logs: list[Event], fraction: float) -> Iterator[Event]:
    """Yield `count` events; about `fraction` of them are test logs, cycled in a shuffled order."""
    rng = random.Random(seed)
    writer = TrailWriter(random.Random(rng.getrandbits(64)))
    pool = list(test_logs)
    rng.shuffle(pool)
    taken = 0
    for _ in range(count):
        if pool and rng.random() < fraction:
            yield pool[taken % len(pool)]
            taken += 1
        else:
            yield writer.next_event()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write a deterministic, realistic AWS CloudTrail event stream (NDJSON) for benchmarks."
    )
    parser.add_argument(
        "--analysis-dir",
        required=True,
        type=Path,
        help="panther-analysis style content directory; its AWS.CloudTrail rule tests are mixed in",
    )
    parser.add_argument("--count", required=True, type=int, help="number of events to write")
    parser.add_argument("--out", required=True, type=Path, help="output file (one JSON event per line)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=0.02,
        help="fraction of events taken from rule test logs (default 0.02)",
    )
    args = parser.parse_args(argv)
    if not args.analysis_dir.is_dir():
        parser.error(f"--analysis-dir {args.analysis_dir}: not a directory")
    if args.count < 0:
        parser.error("--count must be >= 0")
    if not 0.0 <= args.test_fraction <= 1.0:
        parser.error("--test-fraction must be between 0 and 1")
    if not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: directory {args.out.parent} does not exist")

    test_logs = rule_test_logs(args.analysis_dir)
    if not test_logs and args.test_fraction > 0:
        print(
            f"warning: no enabled {LOG_TYPE} rule tests under {args.analysis_dir}; writing ordinary traffic only",
            file=sys.stderr,
        )
    with args.out.open("w", encoding="utf-8") as out:
        for event in generate(args.count, args.seed, test_logs, args.test_fraction):
            out.write(json.dumps(event, separators=(",", ":")))
            out.write("\n")
    print(
        f"wrote {args.count} events to {args.out} ({len(test_logs)} distinct rule test logs available)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
