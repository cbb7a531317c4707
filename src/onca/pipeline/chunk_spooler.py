"""Spooling one input's records in chunks, exactly once across crashes: what the pollers share.

A poller reads an input (a file, an S3 object) from its start every time it (re)tries it, so records keep
their positions; its state holds, per input, a *progress* dict: how many records are already spooled and,
while a chunk is being appended, an intent. Before each chunk is appended, the intent — the chunk's record
count and digest, and the spool's last position — is saved (the poller's `save`, an atomic write). After a
crash with an intent pending, the spool is searched after that position for an entry of this source with
that digest: found, the chunk counts as spooled; not found, it is spooled again. Records already spooled
are skipped on the next read. If the spool segment that would hold the interrupted chunk has been deleted
meanwhile (every consumer consumed past it), this cannot be told and the chunk is spooled again:
at-least-once in that one case, with a warning.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from onca.pipeline.spool import Spool, encode_body

log = logging.getLogger(__name__)


def chunk_digest(source_id: str, records: list[bytes]) -> str:
    return hashlib.sha256(encode_body(source_id, records)).hexdigest()


def new_progress() -> dict[str, Any]:
    """The progress of an input nothing of which is spooled yet (callers may add their own keys)."""
    return {"spooled": 0, "pending": None}


class ChunkSpooler:
    """Spools inputs of `source_id` in chunks of `chunk_records` records or `chunk_bytes` bytes.

    `save` must durably write the poller's state, which holds the progress dicts given to `spool_records`.
    """

    def __init__(self, spool: Spool, source_id: str, save: Callable[[], None], *,
                 chunk_records: int, chunk_bytes: int) -> None:
        self.spool = spool
        self.source_id = source_id
        self.save = save
        self.chunk_records = chunk_records
        self.chunk_bytes = chunk_bytes
        self.records_spooled = 0
        self.chunks_recovered = 0

    def spool_records(self, progress: dict[str, Any], records: Iterable[bytes]) -> int:
        """Spool the records of one input that `progress` does not count yet; returns how many were spooled.

        An exception raised by `records` propagates before the records read since the last chunk are spooled,
        so a read that fails midway can be retried from the start later.
        """
        if progress["pending"] is not None:
            self.recover(progress)
        chunk: list[bytes] = []
        size = 0
        index = 0
        skip = progress["spooled"]
        before = self.records_spooled
        for record in records:
            index += 1
            if index <= skip:
                continue
            chunk.append(record)
            size += len(record)
            if len(chunk) >= self.chunk_records or size >= self.chunk_bytes:
                self._spool_chunk(progress, chunk)
                chunk, size = [], 0
        if chunk:
            self._spool_chunk(progress, chunk)
        return self.records_spooled - before

    def _spool_chunk(self, progress: dict[str, Any], records: list[bytes]) -> None:
        progress["pending"] = {
            "count": len(records),
            "digest": chunk_digest(self.source_id, records),
            "after": self.spool.last_position(),
        }
        self.save()  # the intent, before the append
        self.spool.append(self.source_id, records)
        progress["spooled"] += len(records)
        progress["pending"] = None  # saved with the next intent or when the caller finishes the input
        self.records_spooled += len(records)

    def recover(self, progress: dict[str, Any]) -> None:
        """A crash interrupted a chunk: was it appended? Look for it in the spool after the recorded position."""
        pending = progress["pending"]
        for entry in self.spool.scan(after=pending["after"]):
            if entry.source_id == self.source_id and len(entry.records) == pending["count"] \
                    and chunk_digest(entry.source_id, entry.records) == pending["digest"]:
                progress["spooled"] += pending["count"]
                self.chunks_recovered += 1
                break
        else:
            segments = self.spool.segments()
            if segments and segments[0] > pending["after"] + 1:
                log.warning("source %s: the spool no longer holds position %d; spooling the interrupted chunk "
                            "again (it may be duplicated)", self.source_id, pending["after"] + 1)
        progress["pending"] = None


class ChunkedCounts:
    """What a poller spooling through a ChunkSpooler (`self.chunks`) reports."""

    chunks: ChunkSpooler

    @property
    def records_spooled(self) -> int:
        return self.chunks.records_spooled

    @property
    def chunks_recovered(self) -> int:
        return self.chunks.chunks_recovered
