"""A time limit on each rule call: a rule that loops forever must become a rule error, not a stuck worker.

Rules run in the worker's own thread (moving every call to a subprocess would cost more than the rules
themselves), so the watchdog raises RuleTimeout inside that thread with PyThreadState_SetAsyncExc. That
interrupts pure-Python loops at the next bytecode, which is how a buggy rule hangs; a rule blocked
inside a C call is interrupted when the call returns.
"""

from __future__ import annotations

import ctypes
import threading
import time
from types import TracebackType


class RuleTimeout(Exception):
    """A rule call ran longer than the time limit."""


class Watchdog:
    """Watches the thread that enters it; the evaluating loop marks each call with `begin()` and `end()`."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.started = 0.0  # monotonic start of the current call; 0 between calls
        self.call = 0  # sequence number of the current call, so a late check never hits the next one
        self._thread_id = 0
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def begin(self) -> None:
        self.call += 1
        self.started = time.monotonic()

    def end(self) -> None:
        self.started = 0.0

    def __enter__(self) -> Watchdog:
        self._thread_id = threading.get_ident()
        self._stop.clear()
        self._watcher = threading.Thread(target=self._watch, name="onca-rule-watchdog", daemon=True)
        self._watcher.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()

    def _watch(self) -> None:
        interval = min(0.05, self.limit / 4)
        while not self._stop.wait(interval):
            started, call = self.started, self.call
            if started and time.monotonic() - started > self.limit and self.call == call and self.started:
                self.started = 0.0  # once per call
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread_id),
                                                           ctypes.py_object(RuleTimeout))
