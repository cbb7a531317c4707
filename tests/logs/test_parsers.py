"""Parsers with real-looking lines and malformed ones, and their per-file header state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from onca.logs.model import ParseError, RawRecord
from onca.logs.parsers import build_parser
from onca.logs.parsers.syslog import RFC3164Parser


def rec(line: str | bytes, position: int = 1, origin: str = "a.log", value: Any = None) -> RawRecord:
    data = line.encode() if isinstance(line, str) else line
    if value is not None:
        return RawRecord(data, origin, position, value)
    return RawRecord(data, origin, position)


# ---- JSON ---------------------------------------------------------------------------------------------

def test_json_objects_and_already_decoded_values() -> None:
    parser = build_parser({})
    assert parser.parse(rec('{"a": 1}')) == {"a": 1}
    assert parser.parse(rec(b"", value={"b": 2})) == {"b": 2}


@pytest.mark.parametrize(("data", "reason"), [
    (b"hello", "not JSON: unexpected character, expected a JSON value at byte 0"),
    (b'{"a": 1', "not JSON: unexpected end of data at byte 7"),
    (b"42", "a JSON number, not an object"),
    (b"[1, 2]", "a JSON array, not an object"),
    (b'"text"', "a JSON string, not an object"),
    (b"null", "a JSON null, not an object"),
    (b"  ", "empty record, not a JSON object"),
    (b"\xff\xfe{}", "not JSON: str is not valid UTF-8"),
])
def test_json_refusals(data: bytes, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        build_parser({}).parse(rec(data))
    assert str(info.value).startswith(reason)


def test_json_refuses_a_decoded_non_object() -> None:
    with pytest.raises(ParseError, match="a JSON boolean, not an object"):
        build_parser({}).parse(rec(b"", value=True))


# ---- csv ----------------------------------------------------------------------------------------------

def test_csv_with_columns_and_options() -> None:
    parser = build_parser({"csv": {"columns": ["time", "user", "action", "note"], "emptyValues": ["-", "N/A"],
                                   "trimSpace": True, "skipPrefix": "#"}})
    assert parser.parse(rec('2024-05-14T08:00:00Z, dana ,login,"said ""hi"", left"')) == {
        "time": "2024-05-14T08:00:00Z", "user": "dana", "action": "login", "note": 'said "hi", left'}
    assert parser.parse(rec("2024-05-14T08:00:00Z,-,N/A,x")) == {"time": "2024-05-14T08:00:00Z", "note": "x"}
    assert parser.parse(rec("# exported by tool v2")) is None
    with pytest.raises(ParseError, match=r"^field count 2, expected 4$"):
        parser.parse(rec("a,b"))


def test_csv_header_per_origin() -> None:
    parser = build_parser({"csv": {"delimiter": "tab", "hasHeader": True}})
    assert parser.parse(rec("ts\tsrc\tdst", 0, "one.tsv")) is None
    assert parser.parse(rec("dst\tts", 0, "two.tsv")) is None
    assert parser.parse(rec("1\t10.0.0.1\t10.0.0.2", 1, "one.tsv")) == {"ts": "1", "src": "10.0.0.1", "dst": "10.0.0.2"}
    assert parser.parse(rec("10.0.0.9\t2", 1, "two.tsv")) == {"dst": "10.0.0.9", "ts": "2"}
    with pytest.raises(ParseError, match="no header line was read for this file"):
        parser.parse(rec("1\t2\t3", 5, "three.tsv"))


def test_csv_header_skipped_when_columns_are_given() -> None:
    parser = build_parser({"csv": {"columns": ["a", "b"], "hasHeader": True}})
    assert parser.parse(rec("x,y", 0)) is None
    assert parser.parse(rec("1,2", 1)) == {"a": "1", "b": "2"}


def test_csv_malformed_quotes() -> None:
    with pytest.raises(ParseError, match="not comma-separated text"):
        build_parser({"csv": {"columns": ["a", "b"]}}).parse(rec('"a"x,b'))


# ---- fastmatch ----------------------------------------------------------------------------------------

NGINX = '%{remote_addr} - %{remote_user} [%{time_local}] "%{request}" %{status} %{body_bytes_sent} "%{referer}" ' \
        '"%{user_agent}"'


def test_fastmatch_access_line_with_escaped_quotes() -> None:
    parser = build_parser({"fastmatch": {"match": [NGINX], "emptyValues": ["-"]}})
    line = ('203.0.113.9 - - [14/May/2024:08:15:02 +0000] "GET /search?q=\\"or 1=1 HTTP/1.1" 200 512 "-" '
            '"Mozilla/5.0 (X11; Linux x86_64) \\"quoted\\""')
    assert parser.parse(rec(line)) == {
        "remote_addr": "203.0.113.9", "time_local": "14/May/2024:08:15:02 +0000",
        "request": 'GET /search?q=\\"or 1=1 HTTP/1.1', "status": "200", "body_bytes_sent": "512",
        "user_agent": 'Mozilla/5.0 (X11; Linux x86_64) \\"quoted\\"'}


def test_fastmatch_tries_patterns_in_order() -> None:
    parser = build_parser({"fastmatch": {"match": ["%{a}|%{b}", "%{a};%{_};%{c}"]}})
    assert parser.parse(rec("x|y")) == {"a": "x", "b": "y"}
    assert parser.parse(rec("x;skip;z")) == {"a": "x", "c": "z"}
    with pytest.raises(ParseError, match=r"^no match for any of the 2 patterns$"):
        parser.parse(rec("nothing here"))
    with pytest.raises(ParseError, match=r"^no match for pattern$"):
        build_parser({"fastmatch": {"match": [NGINX]}}).parse(rec("\x16\x03\x01 binary TLS hello"))


# ---- regex --------------------------------------------------------------------------------------------

def test_regex_named_groups_and_pattern_definitions() -> None:
    parser = build_parser({"regex": {
        "patternDefinitions": {"USER": r"[a-z][a-z0-9_-]*"},
        "match": [r"Failed password for (?:invalid user )?%{USER:user} from %{IP:src} ", r"port (?<port>\d+)"]}})
    line = "Failed password for invalid user admin from 198.51.100.7 port 52113 ssh2"
    assert parser.parse(rec(line)) == {"user": "admin", "src": "198.51.100.7", "port": "52113"}
    with pytest.raises(ParseError, match=r"^no match for pattern$"):
        parser.parse(rec("Accepted publickey for dana"))


def test_regex_unmatched_optional_groups_are_absent() -> None:
    parser = build_parser({"regex": {"match": [r"^(?P<a>\w+)(?: (?P<b>\d+))?$"], "trimSpace": True}})
    assert parser.parse(rec("word")) == {"a": "word"}


# ---- syslog -------------------------------------------------------------------------------------------

def test_rfc5424_with_structured_data() -> None:
    line = ('<38>1 2024-05-14T10:20:11.503+02:00 web-02 sshd 2231 AUTH [origin ip="192.0.2.10" software="ssh\\"d\\]"]'
            '[meta sequenceId="7"] \ufeffFailed password for root')
    assert build_parser({"native": {"name": "Syslog.RFC5424"}}).parse(rec(line)) == {
        "priority": 38, "facility": 4, "severity": 6, "version": 1, "timestamp": "2024-05-14T08:20:11.503000Z",
        "hostname": "web-02", "appname": "sshd", "procid": "2231", "msgid": "AUTH",
        "structured_data": {"origin": {"ip": "192.0.2.10", "software": 'ssh"d]'}, "meta": {"sequenceId": "7"}},
        "message": "Failed password for root"}


def test_rfc5424_nil_values_and_no_message() -> None:
    assert build_parser({"native": {"name": "Syslog.RFC5424"}}).parse(rec("<13>1 - - - - - -")) == {
        "priority": 13, "facility": 1, "severity": 5, "version": 1}


@pytest.mark.parametrize(("line", "reason"), [
    ("May 14 08:20:11 web-02 sshd[1]: hi", "no <PRI> at the start of the line"),
    ("<34>May 14 08:20:11 web-02 sshd[1]: hi", "version 'May' is not a number"),
    ("<999>1 - - - - - -", "priority 999 is out of range"),
    ("<13>1 yesterday host app - - - msg", "timestamp 'yesterday' is not RFC 3339"),
    ("<13>1 - host", "3 header fields after <PRI>, expected 7"),
    ("<13>1 - host app - - [broken msg", "malformed structured data"),
])
def test_rfc5424_refusals(line: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason.replace("[", r"\[")):
        build_parser({"native": {"name": "Syslog.RFC5424"}}).parse(rec(line))


def test_rfc3164_lines() -> None:
    parser = RFC3164Parser(now=lambda: datetime(2024, 1, 3, tzinfo=UTC))
    assert parser.parse(rec("<38>Jan  2 03:04:05 bastion sshd[4242]: Accepted publickey for dana")) == {
        "priority": 38, "facility": 4, "severity": 6, "timestamp": "2024-01-02T03:04:05Z", "hostname": "bastion",
        "appname": "sshd", "procid": "4242", "message": "Accepted publickey for dana"}
    # December seen in January belongs to last year; no PRI is accepted; a tag without a PID.
    assert parser.parse(rec("Dec 31 23:59:59 bastion CRON: job done")) == {
        "timestamp": "2023-12-31T23:59:59Z", "hostname": "bastion", "appname": "CRON", "message": "job done"}
    assert parser.parse(rec("<13>2024-01-02T03:04:05.250+01:00 host kernel: oops"))["timestamp"] == \
        "2024-01-02T02:04:05.250000Z"
    with pytest.raises(ParseError, match="no timestamp"):
        parser.parse(rec("<13>garbage line"))


# ---- Zeek ---------------------------------------------------------------------------------------------

ZEEK_HEADER = [
    "#separator \\x09", "#set_separator\t,", "#empty_field\t(empty)", "#unset_field\t-", "#path\tdns",
    "#open\t2024-05-14-08-00-00",
    "#fields\tts\tuid\tid.orig_h\tquery\tanswers\tTTLs\trejected",
    "#types\ttime\tstring\taddr\tstring\tvector[string]\tvector[interval]\tbool",
]


def test_zeek_tsv_headers_per_origin() -> None:
    parser = build_parser({"native": {"name": "Zeek"}}, "Zeek.DNS")
    for index, line in enumerate(ZEEK_HEADER):
        assert parser.parse(rec(line, index, "dns.log")) is None
    event = parser.parse(rec("1715674502.1\tCa1\t10.0.0.5\texample.com\t93.184.216.34,2606:2800::1\t60.0,60.0\tF",
                             8, "dns.log"))
    assert event == {"ts": "1715674502.1", "uid": "Ca1", "id.orig_h": "10.0.0.5", "query": "example.com",
                     "answers": ["93.184.216.34", "2606:2800::1"], "TTLs": ["60.0", "60.0"], "rejected": "F"}
    assert parser.parse(rec("1715674503.0\tCa2\t10.0.0.5\t-\t(empty)\t(empty)\tT", 9, "dns.log")) == {
        "ts": "1715674503.0", "uid": "Ca2", "id.orig_h": "10.0.0.5", "answers": [], "TTLs": [], "rejected": "T"}
    with pytest.raises(ParseError, match=r"^field count 2, expected 7$"):
        parser.parse(rec("1\t2", 10, "dns.log"))
    with pytest.raises(ParseError, match="before any #fields header"):
        parser.parse(rec("1715674503.0\tCa2", 3, "other.log"))


def test_zeek_refuses_other_paths_and_reads_json() -> None:
    parser = build_parser({"native": {"name": "Zeek"}}, "Zeek.Conn")
    for index, line in enumerate(ZEEK_HEADER):
        parser.parse(rec(line, index, "dns.log"))
    with pytest.raises(ParseError, match=r"a Zeek dns log \(#path dns\), not conn"):
        parser.parse(rec("1\tC\t10.0.0.1\tq\t-\t-\tF", 8, "dns.log"))
    assert parser.parse(rec('{"ts": 1.5, "uid": "C1"}')) == {"ts": 1.5, "uid": "C1"}
    with pytest.raises(ParseError, match="a Zeek dns record, not conn"):
        parser.parse(rec('{"_path": "dns", "ts": 1.5}'))


# ---- AWS text logs ------------------------------------------------------------------------------------

VPC_V2 = ("2 123456789012 eni-0a1b2c3d4e5f67890 10.0.1.5 198.51.100.7 49152 443 6 10 840 1715674502 1715674562 "
          "ACCEPT OK")


def test_vpc_flow_default_and_header_columns() -> None:
    parser = build_parser({"native": {"name": "AWS.VPCFlow"}})
    assert parser.parse(rec("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets "
                            "bytes start end action log-status", 0, "a.log")) is None
    event = parser.parse(rec(VPC_V2, 1, "a.log"))
    assert event is not None and event["accountId"] == "123456789012" and event["logStatus"] == "OK"
    assert parser.parse(rec("vpc-id instance-id srcaddr dstaddr tcp-flags pkt-src-aws-service", 0, "b.log")) is None
    assert parser.parse(rec("vpc-0a1b2c3d i-0abc1234def567890 10.0.0.1 10.0.0.2 19 -", 1, "b.log")) == {
        "vpcId": "vpc-0a1b2c3d", "instanceId": "i-0abc1234def567890", "srcAddr": "10.0.0.1", "dstAddr": "10.0.0.2",
        "tcpFlags": "19"}
    # A file without a header (e.g. exported from CloudWatch Logs) uses the version 2 default format.
    nodata = parser.parse(rec("2 123456789012 eni-0a1b2c3d - - - - - - - 1715674502 1715674562 - NODATA", 4, "c.log"))
    assert nodata == {"version": "2", "accountId": "123456789012", "interfaceId": "eni-0a1b2c3d",
                      "start": "1715674502", "end": "1715674562", "logStatus": "NODATA"}
    with pytest.raises(ParseError, match=r"^field count 9, expected 14$"):
        parser.parse(rec("2 123456789012 eni-0a1b2c3d 10.0.1.5 198.51.100.7 49152 443 6 10", 5, "c.log"))
    with pytest.raises(ParseError, match="version 'GET' is not a number"):
        parser.parse(rec("GET 123456789012 eni x y 1 2 6 10 840 1 2 ACCEPT OK", 6, "c.log"))


S3_LINE = ('79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be awsexamplebucket1 '
           '[06/Feb/2019:00:00:38 +0000] 192.0.2.3 arn:aws:iam::123456789012:user/dana 3E57427F3EXAMPLE '
           'REST.GET.VERSIONING - "GET /awsexamplebucket1?versioning HTTP/1.1" 200 - 113 - 7 - "-" '
           '"S3Console/0.4" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 '
           'ECDHE-RSA-AES128-GCM-SHA256 AuthHeader awsexamplebucket1.s3.us-west-1.amazonaws.com TLSV1.2 - Yes '
           'extra1 extra2')


def test_s3_server_access() -> None:
    event = build_parser({"native": {"name": "AWS.S3ServerAccess"}}).parse(rec(S3_LINE))
    assert event is not None
    assert event["time"] == "06/Feb/2019:00:00:38 +0000"
    assert event["requesturi"] == "GET /awsexamplebucket1?versioning HTTP/1.1"
    assert event["requester"] == "arn:aws:iam::123456789012:user/dana"
    assert event["httpstatus"] == "200" and "errorcode" not in event and event["useragent"] == "S3Console/0.4"
    assert event["aclrequired"] == "Yes" and event["additionalFields"] == ["extra1", "extra2"]
    with pytest.raises(ParseError, match=r"^field count 5, expected at least 17$"):
        build_parser({"native": {"name": "AWS.S3ServerAccess"}}).parse(rec("a b [c] d e"))
    with pytest.raises(ParseError, match="unbalanced quote or bracket"):
        build_parser({"native": {"name": "AWS.S3ServerAccess"}}).parse(rec('a b [06/Feb/2019:00:00:38 "GET /'))


ALB_LINE = ('https 2024-05-14T08:15:02.123456Z app/my-alb/50dc6c495c0c9188 198.51.100.7:46532 10.0.0.66:9000 '
            '0.000 0.001 0.000 200 200 34 366 "GET https://www.example.com:443/login?x=1 HTTP/1.1" '
            '"curl/8.5.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
            'arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 '
            '"Root=1-58337262-36d228ad5d99923122bbe354" "www.example.com" '
            '"arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 1 '
            '2024-05-14T08:15:02.100000Z "waf,forward" "-" "-" "10.0.0.66:9000 10.0.0.67:9000" "200 200" "-" "-" '
            'TID_1234abcd')


def test_alb() -> None:
    event = build_parser({"native": {"name": "AWS.ALB"}}).parse(rec(ALB_LINE))
    assert event is not None
    assert event["clientIp"] == "198.51.100.7" and event["clientPort"] == "46532"
    assert event["targetIp"] == "10.0.0.66" and event["requestHttpMethod"] == "GET"
    assert event["requestUrl"] == "https://www.example.com:443/login?x=1" and event["requestHttpVersion"] == "HTTP/1.1"
    assert event["actionsExecuted"] == ["waf", "forward"]
    assert event["targetPortList"] == ["10.0.0.66:9000", "10.0.0.67:9000"]
    assert event["targetStatusCodeList"] == ["200", "200"]
    assert "redirectUrl" not in event and event["connTraceId"] == "TID_1234abcd"
    with pytest.raises(ParseError, match="type 'GET' is not one of"):
        build_parser({"native": {"name": "AWS.ALB"}}).parse(rec("GET / a b c d e f g h i j k l"))


def test_text_parsers_refuse_binary_and_replace_bad_utf8() -> None:
    parser = build_parser({"regex": {"match": [r"^(?P<all>.*)$"]}})
    assert parser.parse(rec(b"caf\xe9 ok")) == {"all": "caf\ufffd ok"}
    with pytest.raises(ParseError, match="binary data"):
        parser.parse(rec(b"\x00\x01\x02"))
