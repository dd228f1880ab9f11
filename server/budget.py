"""A server-wide allowance of bytes per second for work that serves no session.

Reading what a refused caller still sends lets a well-behaved client learn why from the status
instead of from a failed write; a flood of such callers must not turn it into reading without end.
"""
from __future__ import annotations

import time


class ByteBudget:
    """`rate` bytes per second, saved up to `burst`. A spender reserves the largest thing it may take
    (`largest` bytes) before taking it, so spenders at the same time cannot overdraw, then gives back
    what it did not use."""

    def __init__(self, rate: float, burst: float, largest: int) -> None:
        self.rate, self.burst, self.largest = rate, burst, largest
        self._tokens = burst
        self._at = time.monotonic()

    def reserve(self) -> bool:
        """Whether `largest` bytes were free (they are now reserved)."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < self.largest:
            return False
        self._tokens -= self.largest
        return True

    def give_back(self, unused: int) -> None:
        self._tokens = min(self.burst, self._tokens + unused)
