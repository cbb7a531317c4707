"""Native parsers for AWS text logs: VPC flow logs, S3 server access logs, ALB access logs.

All three are space-separated lines where "-" means absent; S3 and ALB quote fields that hold spaces
(S3 also brackets its time). Field names are those of the managed schemas.
"""

from __future__ import annotations

import re
from typing import Any

from onca.logs.model import ParseError, RawRecord
from onca.logs.parsers.common import PerOrigin, text_of

_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|\[([^\]]*)\]|(\S+)')
_SPACE_RUN = re.compile(r" +")


def tokens(line: str) -> list[str]:
    """Split on spaces, keeping "quoted text" and [bracketed text] whole (without their delimiters)."""
    out: list[str] = []
    position, end = 0, len(line)
    while position < end:
        if line[position] == " ":
            position += 1
            continue
        match = _TOKEN.match(line, position)
        if match is None or (match.group(3) is not None and match.group(3)[0] in '"['):
            raise ParseError(f"unbalanced quote or bracket at byte {position}")
        quoted, bracketed, plain = match.groups()
        out.append(quoted if quoted is not None else bracketed if bracketed is not None else plain)
        position = match.end()
    return out


# VPC flow log header names (kebab-case) -> the schema's field names.
VPC_FIELDS = {
    "version": "version", "account-id": "accountId", "interface-id": "interfaceId", "srcaddr": "srcAddr",
    "dstaddr": "dstAddr", "srcport": "srcPort", "dstport": "dstPort", "protocol": "protocol",
    "packets": "packets", "bytes": "bytes", "start": "start", "end": "end", "action": "action",
    "log-status": "logStatus", "vpc-id": "vpcId", "subnet-id": "subnetId", "instance-id": "instanceId",
    "tcp-flags": "tcpFlags", "type": "type", "pkt-srcaddr": "pktSrcAddr", "pkt-dstaddr": "pktDstAddr",
    "region": "region", "az-id": "azId", "sublocation-type": "sublocationType", "sublocation-id": "sublocationId",
    "pkt-src-aws-service": "pktSrcAwsService", "pkt-dst-aws-service": "pktDstAwsService",
    "flow-direction": "flowDirection", "traffic-path": "trafficPath",
}
VPC_DEFAULT = ("version", "accountId", "interfaceId", "srcAddr", "dstAddr", "srcPort", "dstPort", "protocol",
               "packets", "bytes", "start", "end", "action", "logStatus")


class VPCFlowParser:
    """A header line (field names such as `version account-id ...`) sets its file's columns; else the v2 default."""

    def __init__(self) -> None:
        self.headers: PerOrigin[tuple[str, ...]] = PerOrigin()

    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        line = text_of(record).strip()
        values = _SPACE_RUN.split(line)
        if all(name in VPC_FIELDS for name in values):
            self.headers.set(record.origin, tuple(VPC_FIELDS[name] for name in values))
            return None
        if not line:
            raise ParseError("empty line")
        columns = self.headers.get(record.origin) or VPC_DEFAULT
        if len(values) != len(columns):
            raise ParseError(f"field count {len(values)}, expected {len(columns)}")
        if columns[0] == "version" and not values[0].isdigit():
            raise ParseError(f"version {values[0]!r} is not a number")
        return {name: value for name, value in zip(columns, values, strict=True) if value != "-"}


S3_FIELDS = ("bucketowner", "bucket", "time", "remoteip", "requester", "requestid", "operation", "key",
             "requesturi", "httpstatus", "errorcode", "bytessent", "objectsize", "totaltime", "turnaroundtime",
             "referrer", "useragent", "versionid", "hostid", "signatureversion", "ciphersuite",
             "authenticationtype", "hostheader", "tlsVersion", "accesspointarn", "aclrequired")
_S3_MINIMUM = 17  # through useragent: the oldest format


class S3ServerAccessParser:
    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        values = tokens(text_of(record))
        if len(values) < _S3_MINIMUM:
            raise ParseError(f"field count {len(values)}, expected at least {_S3_MINIMUM}")
        if not values[2][:2].isdigit() or "/" not in values[2]:
            raise ParseError(f"field 3 {values[2]!r} is not a [dd/Mon/yyyy:hh:mm:ss +zzzz] time")
        out = {name: value for name, value in zip(S3_FIELDS, values, strict=False) if value != "-"}
        if len(values) > len(S3_FIELDS):
            out["additionalFields"] = values[len(S3_FIELDS):]
        return out


ALB_FIELDS = ("type", "timestamp", "elb", "client", "target", "requestProcessingTime", "targetProcessingTime",
              "responseProcessingTime", "elbStatusCode", "targetStatusCode", "receivedBytes", "sentBytes",
              "request", "userAgent", "sslCipher", "sslProtocol", "targetGroupArn", "traceId", "domainName",
              "chosenCertArn", "matchedRulePriority", "requestCreationTime", "actionsExecuted", "redirectUrl",
              "errorReason", "targetPortList", "targetStatusCodeList", "classification", "classificationReason",
              "connTraceId")
_ALB_MINIMUM = 12  # through sentBytes
_ALB_TYPES = frozenset(("http", "https", "h2", "grpcs", "ws", "wss"))


def _host_port(text: str) -> tuple[str, str | None]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return text, None
    return host.strip("[]"), port


class ALBParser:
    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        values = tokens(text_of(record))
        if len(values) < _ALB_MINIMUM:
            raise ParseError(f"field count {len(values)}, expected at least {_ALB_MINIMUM}")
        if values[0] not in _ALB_TYPES:
            raise ParseError(f"type {values[0]!r} is not one of {', '.join(sorted(_ALB_TYPES))}")
        out: dict[str, Any] = {}
        for name, value in zip(ALB_FIELDS, values, strict=False):
            if value == "-" or value == "":
                continue
            if name in ("client", "target"):
                host, port = _host_port(value)
                out[f"{name}Ip"] = host
                if port is not None:
                    out[f"{name}Port"] = port
            elif name == "request":
                parts = value.split(" ")
                if len(parts) == 3:
                    out["requestHttpMethod"], out["requestUrl"], out["requestHttpVersion"] = parts
                elif value != "- - - ":
                    out["requestUrl"] = value
            elif name == "actionsExecuted":
                out[name] = value.split(",")
            elif name in ("targetPortList", "targetStatusCodeList"):
                out[name] = value.split(" ")
            else:
                out[name] = value
        return out
