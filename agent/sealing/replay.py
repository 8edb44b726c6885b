"""Deliver each sealed object at most once: remember, per sender, the ULIDs delivered within a window."""

from __future__ import annotations

import heapq
import ipaddress
import threading
import time
from collections.abc import Callable

import ulid

ENTRY_BYTES = 200
"""Roughly what one remembered object costs (set entry, heap entry, their key): for sizing max_entries."""


class ReplayGuard:
    """Answers "delivered before?" for (sender, ULID) in O(1) (a set; remembering is O(log n), a heap
    ordered by expiry), forgetting what is older than the window.

    A receiver drops an object whose ULID is outside the window as stale (stale()), opens it, and only
    then asks seen(): asking before authentication would let anyone mark a peer's next ULID as seen.

    Memory: an entry lives until its ULID is window seconds old, and stale() refuses ULIDs more than
    window seconds in the future, so entries are at most the objects authenticated in 2 x window
    seconds; max_entries caps that outright (about ENTRY_BYTES each). Past the cap seen() answers True:
    an object is refused rather than risked twice.
    """

    def __init__(self, window_seconds: float, clock: Callable[[], float] = time.time,
                 max_entries: int = 1_000_000) -> None:
        if window_seconds <= 0 or max_entries <= 0:
            raise ValueError("window_seconds and max_entries must be above zero")
        self.window = window_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: set[bytes] = set()
        self._expiry: list[tuple[float, bytes]] = []  # a heap: the next entry to forget on top
        self.refused_full = 0
        """How many times seen() refused an object because max_entries was reached."""

    def __len__(self) -> int:
        return len(self._seen)

    def stale(self, object_ulid: ulid.ULID) -> bool:
        """Whether a ULID is outside the window: older than it, or as far ahead (too far to be guarded)."""
        return abs(self._clock() - object_ulid.timestamp) > self.window

    def seen(self, sender: ipaddress.IPv6Address, object_ulid: ulid.ULID) -> bool:
        """True if this sender's object was delivered before; otherwise remember it and answer False.

        One step under a lock, so of two threads handed the same object only one gets False.
        A stale ULID counts as seen: it could not be remembered for as long as it could be replayed.
        """
        entry = sender.packed + object_ulid.bytes
        with self._lock:
            now = self._clock()
            self._forget(now)
            if entry in self._seen or abs(now - object_ulid.timestamp) > self.window:
                return True
            if len(self._seen) >= self.max_entries:
                self.refused_full += 1
                return True
            self._seen.add(entry)
            heapq.heappush(self._expiry, (object_ulid.timestamp + self.window, entry))
            return False

    def _forget(self, now: float) -> None:
        """Drop entries whose ULID is now older than the window: stale() refuses those first anyway."""
        while self._expiry and self._expiry[0][0] < now:
            _, entry = heapq.heappop(self._expiry)
            self._seen.discard(entry)
