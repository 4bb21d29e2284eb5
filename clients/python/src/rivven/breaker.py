"""A circuit breaker for the broker wrapper (DESIGN section 9): a sick sidecar costs the broker nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

BreakerState = Literal["closed", "open", "half-open"]


@dataclass(frozen=True, slots=True)
class BreakerOptions:
    #: Consecutive failures that open the breaker.
    failure_threshold: int = 5
    #: Seconds open before one probe is let through.
    reset_timeout: float = 1.0


class CircuitBreaker:
    """closed: calls pass. open: calls fail at once (no timeout to wait out). After ``reset_timeout`` the next call
    is a probe, and only one probe is out at a time; its success closes the breaker, its failure opens it for
    another ``reset_timeout``. Thread-safe (the blocking wrapper is called from many broker threads);
    ``now`` is injected for tests."""

    def __init__(
        self,
        options: BreakerOptions | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.options = options or BreakerOptions()
        self._now = now
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._state: BreakerState = "closed"
        #: Times the breaker opened.
        self.opened = 0

    @property
    def state(self) -> BreakerState:
        return self._state

    def allow(self) -> bool:
        """Whether a call may go out now; a True answer in half-open state makes that call the probe."""
        if self._state == "closed":  # the hot path takes no lock
            return True
        with self._lock:
            state: BreakerState = self._state  # re-read under the lock: another thread may have closed it
            if state == "closed":
                return True
            if state == "open":
                if self._now() - self._opened_at < self.options.reset_timeout:
                    return False
                self._state = "half-open"
            if self._probing:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        if self._state == "closed" and self._failures == 0:
            return
        with self._lock:
            self._failures = 0
            self._probing = False
            self._state = "closed"

    def abandoned(self) -> None:
        """A call that was allowed ended with no answer either way (its caller was cancelled, or it raised): if it
        was the probe, the next call may probe. Without this a cancelled probe left the breaker half-open, failing
        every call at once, forever."""
        with self._lock:
            self._probing = False

    def failure(self) -> None:
        with self._lock:
            self._probing = False
            self._failures += 1
            if self._state == "half-open" or self._failures >= self.options.failure_threshold:
                if self._state != "open":
                    self.opened += 1
                self._state = "open"
                self._opened_at = self._now()
                self._failures = 0
