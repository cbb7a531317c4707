"""Which worker processes which spool entries, and how far each worker got.

A worker process owns whole sources: source s belongs to partition `hash(s) mod N` of a layout of N
partitions, so one source's entries are processed in spool order by one worker (the alert manager's windows
depend on that order). Each partition I of layout N has a spool consumer checkpoint `worker-IofN`: R means
"every entry of a source of this partition with position <= R is done". A worker reads every entry and
skips those of other partitions, so its checkpoint moves past them too and never holds back segment deletion.

Changing N between runs leaves the checkpoints of the earlier layouts behind as history. An entry (p, s) is
done when the current layout's owner of s passed it, or when some earlier layout M's owner of s did
(p <= R of `worker-{hash(s) mod M}of{M}`); a worker of the new layout skips such entries. A new partition
starts at the highest position below which some layout has done everything. An earlier layout is dropped
(its checkpoints unregistered, releasing segment deletion) once every partition of the current layout is past
every checkpoint of it. The consumer `worker` of single-worker releases is layout 1 (renamed `worker-0of1`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Sequence

from onca.pipeline.spool import Entry, Spool

_LEGACY = "worker"
_NAME = re.compile(r"^worker-(\d+)of(\d+)$")


def partition_of(source_id: str, partitions: int) -> int:
    """The stable partition of a source (the same in every process and Python version). A digest, not crc32:
    crc32's low bits are linear in the input, so names differing in one character (ct0, ct1, ...) all fell in
    the same partition of two."""
    digest = hashlib.blake2b(source_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def consumer_name(partition: int, partitions: int) -> str:
    return f"worker-{partition}of{partitions}"


def migrate_legacy(spool: Spool) -> None:
    """Take over the single worker's checkpoint of earlier releases as partition 0 of layout 1."""
    legacy = spool.dir / "consumers" / f"{_LEGACY}.ckpt"
    target = spool.dir / "consumers" / f"{consumer_name(0, 1)}.ckpt"
    if legacy.exists() and not target.exists():
        with contextlib.suppress(FileNotFoundError):  # another worker starting at the same time did it
            os.rename(legacy, target)


def layouts(spool: Spool) -> dict[int, dict[int, int]]:
    """Every layout with a checkpoint: {N: {partition: position}}."""
    found: dict[int, dict[int, int]] = {}
    for name, position in spool.consumers().items():
        match = _NAME.match(name)
        if match:
            found.setdefault(int(match[2]), {})[int(match[1])] = position
        elif name == _LEGACY:
            found.setdefault(1, {})[0] = position
    return found


def queue_lag(spool: Spool) -> int:
    """Entries not yet passed by the slowest worker partition (all, when no worker ever ran). A partition of
    a layout that has not started yet has passed nothing: until every worker has its checkpoint, the lag is
    not 0 however far the others got (they skip the sources of the one still starting)."""
    positions: list[int] = []
    for partitions, parts in layouts(spool).items():
        positions.extend(parts.values())
        if len(parts) < partitions:
            positions.append(0)
    return max(0, spool.last_position() - min(positions, default=0))


def _floor(partitions: int, positions: dict[int, int]) -> int:
    """Below this position every entry is done according to this layout (0 unless all partitions ran)."""
    if len(positions) < partitions:
        return 0
    return min(positions.values())


class Assignment:
    """The entries one worker process handles: those of its partitions that no layout has done yet."""

    def __init__(self, spool: Spool, partitions: int, mine: Sequence[int]) -> None:
        if partitions < 1 or not mine or any(not 0 <= p < partitions for p in mine):
            raise ValueError(f"partitions {list(mine)} out of range for {partitions}")
        self.spool = spool
        self.partitions = partitions
        self.mine = sorted(set(mine))
        migrate_legacy(spool)
        found = layouts(spool)
        current = found.pop(partitions, {})
        self.history = found
        start = max((_floor(n, positions) for n, positions in found.items()), default=0)
        self.positions: dict[int, int] = {}
        for partition in self.mine:
            name = consumer_name(partition, partitions)
            if partition in current:
                self.positions[partition] = current[partition]
            else:  # a new partition starts where some earlier layout had done everything
                spool.register(name)
                if start:
                    spool.commit(name, start)
                self.positions[partition] = start
        self.prune()

    @property
    def name(self) -> str:
        """For logs, pid and metrics files: `worker-0of2`, or `worker-0.1of2` for a process with both."""
        return f"worker-{'.'.join(map(str, self.mine))}of{self.partitions}"

    def start(self) -> int:
        """The checkpoint to read after: everything up to it is done for all of this process's partitions."""
        return min(self.positions.values())

    def takes(self, entry: Entry) -> bool:
        partition = partition_of(entry.source_id, self.partitions)
        if partition not in self.positions or entry.position <= self.positions[partition]:
            return False
        return not any(entry.position <= positions.get(partition_of(entry.source_id, n), 0)
                       for n, positions in self.history.items())

    def commit(self, position: int) -> None:
        """Everything up to `position` was processed or skipped: move every partition's checkpoint there."""
        for partition, done in self.positions.items():
            if position > done:
                self.spool.commit(consumer_name(partition, self.partitions), position)
                self.positions[partition] = position
        if self.history:
            self.prune()

    def prune(self) -> None:
        """Drop earlier layouts that every partition of the current one has passed."""
        current = layouts(self.spool).get(self.partitions, {})
        floor = _floor(self.partitions, current)
        for n, positions in list(self.history.items()):
            if floor and floor >= max(positions.values(), default=0):
                for partition in positions:
                    self.spool.unregister(consumer_name(partition, n))
                del self.history[n]

