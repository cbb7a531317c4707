"""Running detection tests on several cores: forked workers share everything already loaded."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Set just before the pool forks, so workers inherit the (unpicklable) closure instead of receiving it.
_task: Callable[[Any], Any] | None = None
_items: Sequence[Any] = ()


def _run_one(index: int) -> Any:
    assert _task is not None
    return _task(_items[index])


def run_in_workers(items: Sequence[T], task: Callable[[T], R], workers: int) -> Iterator[R]:
    """Results of task(item) for every item, in the items' order, computed by `workers` forked processes."""
    global _task, _items
    _task, _items = task, items
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            yield from pool.imap(_run_one, range(len(items)))
    finally:
        _task, _items = None, ()
