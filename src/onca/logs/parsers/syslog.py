"""Native parsers for syslog lines: RFC 5424 and BSD syslog (RFC 3164).

Both give priority, facility and severity from <PRI>, and the timestamp as RFC 3339 text in UTC (the
schemas declare `timeFormat: rfc3339`). RFC 3164 timestamps carry no year or zone: UTC is assumed and
the year is the latest one that does not put the event more than a day in the future.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from onca.logs.model import ParseError, RawRecord
from onca.logs.parsers.common import text_of

_PRI = re.compile(r"<(\d{1,3})>")
_MONTHS = {name: index for index, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
_BSD_TIME = re.compile(r"([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) ")
_ISO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) ")
_TAG = re.compile(r"([^\s\[\]:]{1,48})(?:\[([^\]\s]*)\])?: ?")
_SD_ELEMENT = re.compile(r'\[([^\s\]=\"]+)((?:\s+[^\s\]=\"]+="(?:[^"\\]|\\.)*")*)\s*\]')
_SD_PARAM = re.compile(r'([^\s\]=\"]+)="((?:[^"\\]|\\.)*)"')
_SD_UNESCAPE = re.compile(r'\\([\\"\]])')


def _priority(line: str, out: dict[str, Any], required: bool) -> int:
    match = _PRI.match(line)
    if match is None:
        if required:
            raise ParseError("no <PRI> at the start of the line")
        return 0
    priority = int(match.group(1))
    if priority > 191:
        raise ParseError(f"priority {priority} is out of range 0..191")
    out["priority"] = priority
    out["facility"] = priority >> 3
    out["severity"] = priority & 7
    return match.end()


def _rfc3339(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ParseError(f"timestamp {text!r} is not RFC 3339") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _utc_text(moment.astimezone(UTC))


def _utc_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H:%M:%SZ")


class RFC5424Parser:
    """<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]; "-" is absent."""

    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        line = text_of(record)
        out: dict[str, Any] = {}
        start = _priority(line, out, required=True)
        head = line[start:].split(" ", 6)
        if not head[0].isdigit():
            raise ParseError(f"version {head[0]!r} is not a number (not RFC 5424)")
        if len(head) < 7:
            raise ParseError(f"{len(head)} header fields after <PRI>, expected 7 (VERSION TIMESTAMP HOSTNAME "
                             "APP-NAME PROCID MSGID STRUCTURED-DATA)")
        version, timestamp, hostname, appname, procid, msgid, rest = head
        out["version"] = int(version)
        if timestamp != "-":
            out["timestamp"] = _rfc3339(timestamp)
        for key, value in (("hostname", hostname), ("appname", appname), ("procid", procid), ("msgid", msgid)):
            if value != "-":
                out[key] = value
        if rest.startswith("-"):
            message = rest[2:] if rest.startswith("- ") else rest[1:]
        elif rest.startswith("["):
            data: dict[str, dict[str, str]] = {}
            position = 0
            while position < len(rest) and rest[position] == "[":
                element = _SD_ELEMENT.match(rest, position)
                if element is None:
                    raise ParseError(f"malformed structured data at {rest[position:position + 40]!r}")
                data[element.group(1)] = {name: _SD_UNESCAPE.sub(r"\1", value)
                                          for name, value in _SD_PARAM.findall(element.group(2))}
                position = element.end()
            out["structured_data"] = data
            message = rest[position + 1:] if rest[position:position + 1] == " " else rest[position:]
        else:
            raise ParseError(f"structured data must be '-' or start with '[', got {rest[:20]!r}")
        if message.startswith("\ufeff"):
            message = message[1:]
        if message:
            out["message"] = message
        return out


class RFC3164Parser:
    """<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG (an RFC 3339 timestamp, as rsyslog writes, is accepted too)."""

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self.now = now or (lambda: datetime.now(UTC))

    def parse(self, record: RawRecord) -> dict[str, Any] | None:
        line = text_of(record)
        out: dict[str, Any] = {}
        position = _priority(line, out, required=False)
        bsd = _BSD_TIME.match(line, position)
        if bsd is not None:
            out["timestamp"] = self._bsd_time(bsd)
            position = bsd.end()
        else:
            iso = _ISO_TIME.match(line, position)
            if iso is None:
                raise ParseError("no timestamp (Mmm dd hh:mm:ss) after the priority")
            out["timestamp"] = _rfc3339(iso.group(1))
            position = iso.end()
        host, _, rest = line[position:].partition(" ")
        if not host:
            raise ParseError("no hostname after the timestamp")
        out["hostname"] = host
        tag = _TAG.match(rest)
        if tag is not None and rest[tag.end() - 1: tag.end()] in (":", " ") and ":" in rest[:tag.end()]:
            out["appname"] = tag.group(1)
            if tag.group(2):
                out["procid"] = tag.group(2)
            rest = rest[tag.end():]
        if rest:
            out["message"] = rest
        return out

    def _bsd_time(self, match: re.Match[str]) -> str:
        month = _MONTHS.get(match.group(1))
        if month is None:
            raise ParseError(f"{match.group(1)!r} is not a month")
        day, hour, minute, second = (int(match.group(i)) for i in range(2, 6))
        now = self.now()
        for year in (now.year + 1, now.year, now.year - 1):
            try:
                moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
            except ValueError:
                continue  # Feb 29 outside a leap year
            if moment <= now + timedelta(days=1):
                return _utc_text(moment)
        raise ParseError(f"{match.group(0).strip()!r} is not a valid date")
