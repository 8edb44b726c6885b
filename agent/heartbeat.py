"""The adaptive heartbeat that paces polling: faster when there is work, slower when idle."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

HOLD_LIMIT = 60.0
"""The slowest a person may hold the heartbeat, in seconds."""


class Heartbeat:
    """The interval between the end of one poll and the start of the next.

    Work found halves the interval (the rate doubles) down to `fastest`; nothing found doubles it
    up to `slowest`. A poll is never followed sooner than it took (`poll_took()`): when the endpoint
    slows down under load, so does the polling, at the endpoint's own pace, instead of piling more
    listings onto it. That is not a missed beat: a beat is missed only when the receive pipeline is
    full and the poll is skipped (`skipped()`). `faster()` and `slower()` come from outside (a
    person's keys) and hold the interval until `automatic()`, as `hold()` does at a given pace.
    """

    def __init__(self, fastest: float, slowest: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 < fastest <= slowest:
            raise ValueError("need 0 < fastest <= slowest")
        self.fastest = fastest
        self.slowest = slowest
        self._clock = clock
        self._interval = slowest
        self._manual = False
        self.missed = 0
        self._last_poll = 0.0
        self._changed = threading.Condition()

    @property
    def interval(self) -> float:
        """Seconds between polls now."""
        return self._interval

    @property
    def manual(self) -> bool:
        """True while a person holds the interval."""
        return self._manual

    def _set(self, interval: float, limit: float | None = None) -> None:
        with self._changed:
            self._interval = min(limit or self.slowest, max(self.fastest, interval))
            self._changed.notify_all()

    def faster(self) -> None:
        """Double the rate and hold it there."""
        self._manual = True
        self._set(self._interval / 2)

    def slower(self) -> None:
        """Halve the rate and hold it there, even past the slowest bound."""
        self._manual = True
        self._set(self._interval * 2, limit=max(self.slowest, HOLD_LIMIT))

    def hold(self, interval: float) -> None:
        """Hold the interval at this many seconds (within fastest and HOLD_LIMIT): a pace a person can watch."""
        self._manual = True
        self._set(interval, limit=max(self.slowest, HOLD_LIMIT))

    def automatic(self) -> None:
        """Let the work found set the rate again (back within bounds)."""
        with self._changed:
            self._manual = False
            self._interval = min(self.slowest, self._interval)
            self._changed.notify_all()

    def found_work(self) -> None:
        """Work was found (or is coming): poll twice as often."""
        if not self._manual:
            self._set(self._interval / 2)

    def expect_work(self) -> None:
        """A reply is likely soon (this node just sent): poll at the fastest rate, then decay."""
        if not self._manual and self._interval > self.fastest:
            self._set(self.fastest)

    def found_nothing(self) -> None:
        """The poll came back empty: poll half as often."""
        if not self._manual:
            self._set(self._interval * 2)

    def poll_took(self, seconds: float) -> None:
        """How long the last poll took: the next one waits at least as long."""
        self._last_poll = seconds

    def skipped(self) -> None:
        """A beat came while the receive pipeline was full, so no poll was sent: count it."""
        self.missed += 1

    def wait(self, stop: threading.Event) -> bool:
        """Sleep one interval from now, waking early if the interval shrinks; False once stopped."""
        start = self._clock()
        with self._changed:
            while not stop.is_set():
                remaining = start + max(self._interval, self._last_poll) - self._clock()
                if remaining <= 0:
                    return True
                self._changed.wait(min(remaining, 0.1))
        return False
