"""Classification: which of a source's candidate log types a record belongs to.

Each record tries the candidates' parsers in an adaptive order (Panther's classifier, B.5): a parser that
refuses a record gains a penalty and sinks, a parser that accepts one has its penalty reset and goes first,
so a file dominated by one type pays for one parse per record, and the order follows when the dominant type
changes. A parser returning None means "not an event" (a header, a comment): that is a match for the order
and is counted as a skipped header, neither an event nor quarantined. A record no parser accepts becomes a
QuarantinedRecord holding every candidate's reason. A parser that raises anything other than ParseError
does not stop classification: its exception becomes its reason.

Conservation: records classified = events + headers + quarantined (see `Classifier.counts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from onca.logs.model import ParseError, Parser, QuarantinedRecord, RawRecord, Source
from onca.logs.readers import ReaderRefusal


@dataclass(slots=True)
class ParserStats:
    """One candidate's outcomes; tried = matched + headers + failed."""

    matched: int = 0  # records it turned into events
    headers: int = 0  # records it called "not an event" (returned None)
    failed: int = 0  # records it refused (ParseError or any other exception)
    errors: int = 0  # of the failures, those that were exceptions other than ParseError (parser bugs)

    @property
    def tried(self) -> int:
        return self.matched + self.headers + self.failed

    def as_dict(self) -> dict[str, int]:
        return {"tried": self.tried, "matched": self.matched, "headers": self.headers, "failed": self.failed,
                "errors": self.errors}


class _Candidate:
    __slots__ = ("log_type", "parse", "penalty", "stats")

    def __init__(self, log_type: str, parser: Parser) -> None:
        self.log_type = log_type
        self.parse = parser.parse  # bound once: the hot path makes one attribute lookup fewer
        self.penalty = 0
        self.stats = ParserStats()


def _penalty(candidate: _Candidate) -> int:
    return candidate.penalty


class Classifier:
    """Classifies records among `parsers` (log type -> parser), in the adaptive order described above.

    `classify(record)` returns (log type, event) or None. After None, `last_quarantined` tells which: the
    QuarantinedRecord (also appended to `quarantined`, drained with `take_quarantined()`) or None for a header.
    """

    def __init__(self, parsers: Mapping[str, Parser], source: Source | None = None) -> None:
        if not parsers:
            raise ValueError("a classifier needs at least one candidate log type")
        self.source = source if source is not None else Source(id="", label="", log_types=list(parsers))
        self._order = [_Candidate(log_type, parser) for log_type, parser in parsers.items()]
        self._by_type = {c.log_type: c for c in self._order}
        self._single = self._order[0] if len(self._order) == 1 else None
        self.quarantined: list[QuarantinedRecord] = []
        self.last_quarantined: QuarantinedRecord | None = None
        self.events = 0
        self.headers = 0
        self.quarantine_count = 0

    # -- the hot path ------------------------------------------------------------------------------------

    def classify(self, record: RawRecord) -> tuple[str, dict[str, Any]] | None:
        self.last_quarantined = None
        if record.value.__class__ is ReaderRefusal:
            return self._refused(record)
        single = self._single
        if single is not None:  # one candidate: no order to keep, nothing to sort
            try:
                event = single.parse(record)
            except ParseError as exc:
                reason = str(exc) or "refused"
            except Exception as exc:
                single.stats.errors += 1
                reason = _exception_reason(exc)
            else:
                if event.__class__ is dict or (event is not None and isinstance(event, dict)):
                    single.stats.matched += 1
                    self.events += 1
                    return single.log_type, event
                if event is None:
                    single.stats.headers += 1
                    self.headers += 1
                    return None
                single.stats.errors += 1
                reason = _bad_result(event)
            single.stats.failed += 1
            return self._quarantine(record, {single.log_type: reason})

        order = self._order
        reasons: dict[str, str] = {}
        for index, candidate in enumerate(order):
            try:
                event = candidate.parse(record)
            except ParseError as exc:
                reason = str(exc) or "refused"
            except Exception as exc:
                candidate.stats.errors += 1
                reason = _exception_reason(exc)
            else:
                if event.__class__ is dict or (event is not None and isinstance(event, dict)):
                    candidate.stats.matched += 1
                    self.events += 1
                    result: tuple[str, dict[str, Any]] | None = (candidate.log_type, event)
                elif event is None:
                    candidate.stats.headers += 1
                    self.headers += 1
                    result = None
                else:
                    candidate.stats.errors += 1
                    candidate.stats.failed += 1
                    reasons[candidate.log_type] = _bad_result(event)
                    continue
                if index:
                    self._promote(index)
                elif candidate.penalty:
                    candidate.penalty = 0
                return result
            candidate.stats.failed += 1
            reasons[candidate.log_type] = reason
        # Every candidate refused: each sinks by one, so their relative order stays and no sort is needed.
        for candidate in order:
            candidate.penalty += 1
        return self._quarantine(record, reasons)

    def _promote(self, index: int) -> None:
        """The candidate at `index` matched after the ones before it failed: those gain a penalty, the winner
        resets and goes first, the rest keep their order by penalty (a stable sort of a few items)."""
        order = self._order
        for candidate in order[:index]:
            candidate.penalty += 1
        winner = order.pop(index)
        winner.penalty = 0
        order.sort(key=_penalty)
        order.insert(0, winner)

    def _refused(self, record: RawRecord) -> None:
        """A record the reader could not deliver whole: no parser sees it; each candidate gets the reason."""
        reason = f"not parsed: {record.value.reason}"
        return self._quarantine(record, {c.log_type: reason for c in self._order})

    def _quarantine(self, record: RawRecord, reasons: dict[str, str]) -> None:
        quarantined = QuarantinedRecord(self.source, record, reasons)
        self.quarantined.append(quarantined)
        self.quarantine_count += 1
        self.last_quarantined = quarantined
        return None

    # -- reading the results -----------------------------------------------------------------------------

    def take_quarantined(self) -> list[QuarantinedRecord]:
        """The quarantined records since the last call (the caller writes them to the quarantine table)."""
        taken, self.quarantined = self.quarantined, []
        return taken

    @property
    def order(self) -> list[str]:
        """The log types in the order the next record will try them."""
        return [c.log_type for c in self._order]

    def stats(self) -> dict[str, dict[str, int]]:
        """Per log type: tried, matched, headers, failed, errors (in the order the parsers were given)."""
        return {log_type: candidate.stats.as_dict() for log_type, candidate in self._by_type.items()}

    def counts(self) -> dict[str, int]:
        """Records classified, and what became of them: events + headers + quarantined = records."""
        return {"records": self.events + self.headers + self.quarantine_count, "events": self.events,
                "headers": self.headers, "quarantined": self.quarantine_count}


def _bad_result(event: object) -> str:
    return f"parser returned {type(event).__name__}, not a dict (an event) or None (not an event)"


def _exception_reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
