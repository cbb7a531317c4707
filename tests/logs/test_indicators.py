"""Indicator scanners: what each finds, in which p_any column, and what it ignores."""

from __future__ import annotations

import pytest

from onca.logs.indicators import SCANNERS, scan_values


@pytest.mark.parametrize(("names", "value", "expected"), [
    (["ip"], "198.51.100.23", {"p_any_ip_addresses": ["198.51.100.23"]}),
    (["ip"], "10.0.0.7", {"p_any_ip_addresses": ["10.0.0.7"]}),  # private addresses count
    (["ip"], " 2001:DB8:0:0::1 ", {"p_any_ip_addresses": ["2001:db8::1"]}),  # IPv6, canonical form
    (["ip"], "iam.amazonaws.com", {}),
    (["ip"], "999.1.1.1", {}),
    (["domain"], "Signin.AWS.Amazon.com", {"p_any_domain_names": ["signin.aws.amazon.com"]}),
    (["domain"], "not a domain!", {}),
    (["domain"], "12345", {}),
    (["hostname"], "web-02", {"p_any_domain_names": ["web-02"]}),
    (["hostname"], "192.0.2.9", {"p_any_ip_addresses": ["192.0.2.9"]}),
    (["hostname"], "[2001:db8::5]", {"p_any_ip_addresses": ["2001:db8::5"]}),
    (["url"], "https://evil.example.net:8443/x?y=1", {"p_any_domain_names": ["evil.example.net"]}),
    (["url"], "http://203.0.113.5/shell.exe", {"p_any_ip_addresses": ["203.0.113.5"]}),
    (["url"], "-", {}),
    (["net_addr"], "10.1.2.3:443", {"p_any_ip_addresses": ["10.1.2.3"]}),
    (["net_addr"], "[fe80::1]:22", {"p_any_ip_addresses": ["fe80::1"]}),
    (["net_addr"], "db.internal:5432", {"p_any_domain_names": ["db.internal"]}),
    (["md5"], "D41D8CD98F00B204E9800998ECF8427E", {"p_any_md5_hashes": ["d41d8cd98f00b204e9800998ecf8427e"]}),
    (["md5"], "d41d8cd98f00b204e9800998ecf8427", {}),
    (["sha1"], "da39a3ee5e6b4b0d3255bfef95601890afd80709", {"p_any_sha1_hashes":
                                                            ["da39a3ee5e6b4b0d3255bfef95601890afd80709"]}),
    (["sha1"], "zz39a3ee5e6b4b0d3255bfef95601890afd80709", {}),
    (["sha256"], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     {"p_any_sha256_hashes": ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}),
    (["sha256"], "e3b0c44298fc1c149afbf4c8996fb924", {}),
    (["trace_id"], "1-67891233-abcdef012345678912345678", {"p_any_trace_ids": ["1-67891233-abcdef012345678912345678"]}),
    (["trace_id"], "  ", {}),
    (["aws_arn"], "arn:aws:ec2:us-east-1:123456789012:instance/i-0abcdef1234567890",
     {"p_any_aws_arns": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0abcdef1234567890"],
      "p_any_aws_account_ids": ["123456789012"], "p_any_aws_instance_ids": ["i-0abcdef1234567890"]}),
    (["aws_arn"], "arn:aws:s3:::my-bucket/key", {"p_any_aws_arns": ["arn:aws:s3:::my-bucket/key"]}),
    (["aws_arn"], "arn:aws:iam", {}),
    (["aws_arn"], "AIDAEXAMPLE", {}),
    (["aws_account_id"], "111122223333", {"p_any_aws_account_ids": ["111122223333"]}),
    (["aws_account_id"], "11112222333", {}),
    (["aws_instance_id"], "i-0123abcd", {"p_any_aws_instance_ids": ["i-0123abcd"]}),
    (["aws_instance_id"], "i-0123abcdZ", {}),
    (["email"], "Dana.Lee@example.com", {"p_any_emails": ["Dana.Lee@example.com"]}),
    (["email"], "dana@", {}),
    (["email"], "not an email", {}),
    (["username"], "jürgen.müller", {"p_any_usernames": ["jürgen.müller"]}),
    (["username"], "", {}),
    (["ip", "domain"], "203.0.113.1", {"p_any_ip_addresses": ["203.0.113.1"]}),
])
def test_scanner(names: list[str], value: str, expected: dict[str, list[str]]) -> None:
    assert scan_values(names, value) == expected


def test_every_documented_scanner_exists() -> None:
    assert set(SCANNERS) == {"ip", "domain", "hostname", "url", "net_addr", "md5", "sha1", "sha256", "trace_id",
                             "aws_arn", "aws_account_id", "aws_instance_id", "email", "username"}
