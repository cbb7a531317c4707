"""When periodic jobs are due: a fixed rate, or a cron expression (the subset detection content uses).

A cadence is a set of tick times; the scheduler asks for the latest tick at or before a moment and the
first one after it. Rates are aligned to the Unix epoch (RateMinutes: 60 ticks on every full hour, UTC),
so the ticks are the same whenever and wherever the scheduler starts: a restart finds the windows it
already processed instead of inventing new ones.

Cron: `minute hour day-of-month month day-of-week [year]`, UTC, with `*`, `?` (as `*`), lists `a,b`, ranges
`a-b`, steps `*/n` and `a-b/n`, three-letter month and day names, and day-of-week 0 or 7 for Sunday. As in
cron, when both day fields are restricted a day matching either one is a match.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEARCH_DAYS = 366 * 8  # a cron that matches nothing in eight years (31 February) is refused, not searched forever
_MONTHS = {name: i for i, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_DAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}


class Cadence(Protocol):
    def latest(self, moment: datetime) -> datetime:
        """The last tick at or before `moment`."""

    def following(self, moment: datetime) -> datetime:
        """The first tick after `moment`."""


@dataclass(frozen=True)
class Rate:
    minutes: int

    def latest(self, moment: datetime) -> datetime:
        step = self.minutes * 60
        seconds = int((moment - _EPOCH).total_seconds() // step) * step
        return _EPOCH + timedelta(seconds=seconds)

    def following(self, moment: datetime) -> datetime:
        return self.latest(moment) + timedelta(minutes=self.minutes)


def _field(text: str, low: int, high: int, names: Mapping[str, int] | None = None) -> frozenset[int] | None:
    """The values a cron field allows; None for `*` (unrestricted)."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()

    def number(token: str) -> int:
        value = names.get(token.upper()) if names else None
        value = int(token) if value is None else value
        if not low <= value <= high:
            raise ValueError(f"{token} is outside {low}-{high}")
        return value

    for part in text.split(","):
        spread, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r} must be positive")
        if spread in ("*", "?"):
            first, last = low, high
        elif "-" in spread:
            start, _, end = spread.partition("-")
            first, last = number(start), number(end)
        else:
            first = number(spread)
            last = high if step_text else first
        if first > last:
            raise ValueError(f"range {spread!r} runs backwards")
        values.update(range(first, last + 1, step))
    return frozenset(values)


class Cron:
    def __init__(self, expression: str) -> None:
        fields = expression.split()
        if len(fields) not in (5, 6):
            raise ValueError(f"cron expression {expression!r} must have 5 or 6 fields")
        try:
            self.minutes = _field(fields[0], 0, 59)
            self.hours = _field(fields[1], 0, 23)
            self.days = _field(fields[2], 1, 31)
            self.months = _field(fields[3], 1, 12, _MONTHS)
            weekdays = _field(fields[4], 0, 7, _DAYS)
            self.years = _field(fields[5], 1970, 2199) if len(fields) == 6 else None
        except ValueError as err:
            raise ValueError(f"cron expression {expression!r}: {err}") from None
        self.weekdays = None if weekdays is None else frozenset(d % 7 for d in weekdays)
        self.expression = expression
        self._times = sorted(time(h, m) for h in (self.hours or range(24)) for m in (self.minutes or range(60)))

    def _day_matches(self, day: date) -> bool:
        if self.months is not None and day.month not in self.months:
            return False
        if self.years is not None and day.year not in self.years:
            return False
        by_date = self.days is None or day.day in self.days
        by_weekday = self.weekdays is None or (day.weekday() + 1) % 7 in self.weekdays
        if self.days is not None and self.weekdays is not None:
            return by_date or by_weekday
        return by_date and by_weekday

    def _search(self, moment: datetime, forward: bool) -> datetime:
        moment = moment.astimezone(UTC)
        day = moment.date()
        times = self._times if forward else self._times[::-1]
        for _ in range(_SEARCH_DAYS):
            if self._day_matches(day):
                for at in times:
                    tick = datetime.combine(day, at, tzinfo=UTC)
                    if (tick > moment) if forward else (tick <= moment):
                        return tick
            day += timedelta(days=1 if forward else -1)
        raise ValueError(f"cron expression {self.expression!r} never fires")

    def latest(self, moment: datetime) -> datetime:
        return self._search(moment, forward=False)

    def following(self, moment: datetime) -> datetime:
        return self._search(moment, forward=True)


def from_schedule(schedule: Any) -> Cadence:
    """The cadence of a content `Schedule:` mapping (RateMinutes or CronExpression); ValueError when invalid."""
    if not isinstance(schedule, Mapping):
        raise ValueError("Schedule must be a mapping with RateMinutes or CronExpression")
    rate, cron = schedule.get("RateMinutes"), schedule.get("CronExpression")
    if (rate is None) == (cron is None):
        raise ValueError("Schedule needs exactly one of RateMinutes or CronExpression")
    if rate is not None:
        if type(rate) is not int or rate < 1:
            raise ValueError(f"RateMinutes must be a positive integer, got {rate!r}")
        return Rate(rate)
    if not isinstance(cron, str):
        raise ValueError(f"CronExpression must be text, got {cron!r}")
    return Cron(cron)


def timeout_seconds(schedule: Any, default_minutes: int = 5) -> float:
    """The schedule's TimeoutMinutes in seconds (the default when absent or malformed)."""
    value = schedule.get("TimeoutMinutes") if isinstance(schedule, Mapping) else None
    return float((value if type(value) is int and value > 0 else default_minutes) * 60)
