"""A cap on the connections a threading server handles at once, shared by the HTTP and syslog intakes.

Each connection gets a thread; without a cap, a flood of idle connections would exhaust threads and
memory. A connection over the cap is refused at once (`refuse`), not queued.
"""

from __future__ import annotations

import threading
from typing import Any


class BoundedConnections:
    """Mixin for socketserver.ThreadingMixIn servers; call `limit_connections(n)` before serving."""

    _slots: threading.BoundedSemaphore

    def limit_connections(self, limit: int) -> None:
        self._slots = threading.BoundedSemaphore(limit)

    def refuse(self, request: Any) -> None:
        """Say something to a refused client before it is closed (nothing by default)."""

    def finished(self, request: Any) -> None:
        """Called when a connection's thread ends, before its slot is freed."""

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refuse(request)
            self.shutdown_request(request)  # type: ignore[attr-defined]
            return
        try:
            super().process_request(request, client_address)  # type: ignore[misc]
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[misc]
        finally:
            self.finished(request)
            self._slots.release()
