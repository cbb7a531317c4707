"""Parsers: one record (a line, or an already decoded JSON value) into an event dict.

`build_parser(spec, log_type)` makes the parser a schema's `parser:` section names (JSON when absent).
Make one per (schema, source): text parsers keep per-file state (header columns) keyed by origin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from onca.logs.model import Parser
from onca.logs.parsers.aws import ALBParser, S3ServerAccessParser, VPCFlowParser
from onca.logs.parsers.csv import CsvParser
from onca.logs.parsers.fastmatch import FastmatchParser
from onca.logs.parsers.json import JsonParser
from onca.logs.parsers.regex import RegexParser
from onca.logs.parsers.syslog import RFC3164Parser, RFC5424Parser
from onca.logs.parsers.zeek import ZeekParser

NATIVE: dict[str, Callable[[str], Parser]] = {
    "AWS.ALB": lambda log_type: ALBParser(),
    "AWS.S3ServerAccess": lambda log_type: S3ServerAccessParser(),
    "AWS.VPCFlow": lambda log_type: VPCFlowParser(),
    "Syslog.RFC3164": lambda log_type: RFC3164Parser(),
    "Syslog.RFC5424": lambda log_type: RFC5424Parser(),
    "Zeek": ZeekParser,
}
"""Native parser name (as in `parser: {native: {name: ...}}`) -> factory taking the log type."""


def build_parser(spec: dict[str, Any], log_type: str = "") -> Parser:
    if not spec:
        return JsonParser()
    kind, options = next(iter(spec.items()))
    if kind == "native":
        return NATIVE[options["name"]](log_type)
    if kind == "csv":
        return CsvParser(options)
    if kind == "fastmatch":
        return FastmatchParser(options)
    if kind == "regex":
        return RegexParser(options)
    raise ValueError(f"unknown parser {kind!r}")
