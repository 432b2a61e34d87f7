"""What the worker knows of its database: reachable or not, since when.

Every loop reports its database calls here. The supervisor exits non-zero
once the outage is older than ``max_db_outage``; the rescuer waits until the
database has been back for ``dead_after`` before declaring anyone dead, so
that a restart of the database does not make every worker "lost" at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("tasktable.worker")


class DbHealth:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.failing_since: float | None = None
        self.back_since: float | None = None  # end of the last outage; None if none seen
        self.outages = 0
        self._last_warning = 0.0

    def ok(self) -> None:
        with self._lock:
            if self.failing_since is None:
                return
            now = self.clock()
            log.warning("The database is reachable again after %.1fs", now - self.failing_since)
            self.failing_since = None
            self.back_since = now

    def failed(self, exc: BaseException, what: str = "database call") -> None:
        with self._lock:
            now = self.clock()
            if self.failing_since is None:
                self.failing_since = now
                self.outages += 1
                self._last_warning = now
                log.warning("%s failed; retrying with back-off: %s", what, exc)
            elif now - self._last_warning >= 10.0:
                self._last_warning = now
                log.warning(
                    "The database is still unreachable after %.0fs: %s",
                    now - self.failing_since,
                    exc,
                )

    def outage(self) -> float:
        """Seconds the database has been failing (0 when it answers)."""
        since = self.failing_since
        return 0.0 if since is None else self.clock() - since

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def stable_for(self, seconds: float) -> bool:
        """True when the database answers and has for ``seconds`` since the last outage."""
        if self.failing_since is not None:
            return False
        return self.back_since is None or self.clock() - self.back_since >= seconds
