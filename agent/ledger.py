"""A received key's life in one place: claimed (listed or rung) -> fetching -> handled -> deleted or given up.

Discovery claims a key before it starts a GET, so a key listed and rung at once is fetched once.
Delivery records a key handled before it writes a single packet of it, so a listing that lands
meanwhile never starts it again; the deleter says when its delete went through or was given up.
Every move is made under one lock, and a key only moves forward: the one way back is a rung key
whose object was never there (forgotten, so a listing may find it), or a GET that failed (tried
again by a later listing, up to a bound that discovery and delivery keep here too).

Handled keys are remembered for as long as an object under them could still be accepted as fresh
(the window), measured on the monotonic clock so a jump of the wall clock forgets nothing early;
the ones that were delivered are written to a journal (agent/journal.py) before delivery, so a
restarted node refuses what it delivered before it stopped. A sealed object is bound to its key
(the associated data names it), so remembering keys is the replay guard: a capture PUT again under
its own key is known here, under any other key it does not open.

Memory: delivered keys are bounded per sender (the authenticated one when sealed), so one member
cannot crowd out the others; past its bound a sender's objects are refused, never risked twice.
Keys refused unopened (stale, malformed) are bounded in all and the oldest forgotten first: they
were never delivered, so forgetting one costs at most a GET to refuse it again.
"""

from __future__ import annotations

import enum
import heapq
import ipaddress
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent.journal import Journal, Remembered

DELIVERED_PER_SENDER = 65536
"""Delivered keys remembered per sender: more than S3 takes into one prefix (3,500 PUTs/s) in the window."""
REFUSED_KEPT = 65536
"""Keys refused unopened that are remembered (the oldest forgotten first)."""
GIVEN_UP_KEPT = 65536
"""Keys whose delete was given up: they stay in the bucket, and nobody should handle them again."""
FETCH_ATTEMPTS = 5
"""Failed GETs of one object (each already retried by the guard) after which it is dropped."""

Sender = ipaddress.IPv6Address | None
"""Who sent a delivered object: the authenticated sender of a sealed one; None when unsealed."""


class Claim(enum.Enum):
    """What discovery should do with a key it has listed or been rung for."""

    FETCH = "fetch"
    """New: fetch it (it is now claimed by the caller)."""
    RECHECK = "recheck"
    """Delivered and deleted, yet listed again: fetch a byte of it to tell a PUT again from an old listing."""
    DELETE = "delete"
    """Handled before a restart and still listed: queue its delete again, fetch nothing."""
    KNOWN = "known"
    """Being fetched, handled or given up: nothing to do."""


class State(enum.Enum):
    FETCHING = "fetching"
    FAILED = "failed"
    HANDLED = "handled"
    DELETED = "deleted"
    RECHECKING = "rechecking"
    GIVEN_UP = "given_up"


@dataclass(slots=True)
class Entry:
    state: State
    sent_at: float
    expires: float = 0.0
    """Monotonic time after which a handled key is forgotten (0 while it is not handled)."""
    sender: Sender = None
    delivered: bool = False
    failures: int = 0
    delete_queued: bool = True
    """False for a key the journal brought back: its delete may not have been made before the restart."""


class Ledger:
    """The receive path's one record of which keys are in hand and which are done with.

    window: how long after a key's send time an object under it could still be accepted (the max
    age plus the clock allowances), and so how long a handled key is remembered.
    """

    def __init__(self, window: float, *, journal: Journal | None = None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, delivered_per_sender: int = DELIVERED_PER_SENDER,
                 refused_kept: int = REFUSED_KEPT) -> None:
        if window <= 0:
            raise ValueError("the window must be above zero")
        self.window = window
        self.clock = clock
        self.monotonic = monotonic
        self.journal = journal
        self.delivered_per_sender = delivered_per_sender
        self.refused_kept = refused_kept
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._expiry: list[tuple[float, str]] = []
        """A heap of (expires, key) of handled keys; an entry whose key has moved on is skipped."""
        self._refused: OrderedDict[str, None] = OrderedDict()
        self._given_up: OrderedDict[str, None] = OrderedDict()
        self._delivered_by: Counter[Sender] = Counter()
        self._failed: dict[str, float] = {}
        """Keys whose GET failed and that a later listing is to start again, with their send times."""
        self.full_senders: set[str] = set()
        """Senders refused because their bound was reached (their addresses, 'unsealed' for None)."""
        if journal is not None:
            self._restore(journal.load(clock()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    # Discovery.

    def claim(self, key: str, sent_at: float) -> Claim:
        """Claim a key for fetching if nobody has it; otherwise say what, if anything, is to be done."""
        with self._lock:
            self._forget_expired(self.monotonic())
            entry = self._entries.get(key)
            if entry is None:
                self._entries[key] = Entry(State.FETCHING, sent_at)
                return Claim.FETCH
            if entry.state is State.FAILED:
                entry.state = State.FETCHING
                del self._failed[key]
                return Claim.FETCH
            if entry.state is State.DELETED:
                if not entry.delivered:
                    # Refused unopened and deleted: whatever is there now was PUT since. Judged afresh, so
                    # a writer who guessed a sender's next key and PUT junk under it first blocks nothing.
                    self._drop(key, entry)
                    self._entries[key] = Entry(State.FETCHING, sent_at)
                    return Claim.FETCH
                entry.state = State.RECHECKING
                return Claim.RECHECK
            if entry.state is State.HANDLED and not entry.delete_queued:
                entry.delete_queued = True
                return Claim.DELETE
            return Claim.KNOWN

    def failed_since(self) -> float | None:
        """The send time of the oldest key whose GET failed and will be tried again, if any."""
        floor = self.clock() - self.window
        with self._lock:
            for key, sent_at in list(self._failed.items()):
                if sent_at < floor:  # stale by now: no listing will start it again
                    del self._failed[key]
                    self._entries.pop(key, None)
            return min(self._failed.values(), default=None)

    # Fetching and delivery.

    def fetch_failed(self, key: str) -> bool:
        """A GET of a claimed key failed: True if it is to be tried again (by a later listing)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.state is not State.FETCHING:
                return False
            entry.failures += 1
            if entry.failures >= FETCH_ATTEMPTS:
                return False
            entry.state = State.FAILED
            self._failed[key] = entry.sent_at
            return True

    def release(self, key: str) -> None:
        """Give up a claim without handling the key: a rung key whose object was not there (a listing
        that finds it later fetches it), or a GET cancelled by a stop."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.state is State.FETCHING:
                del self._entries[key]

    def recheck_done(self, key: str, put_again: bool) -> None:
        """The byte read of a rechecked key: it was PUT again (now refused, to be deleted), or it was not there."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.state is State.RECHECKING:
                entry.state = State.HANDLED if put_again else State.DELETED

    def refused(self, key: str, sent_at: float) -> None:
        """A claimed key whose object was refused unopened or undelivered: handled, nothing delivered."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.state not in (State.FETCHING, State.RECHECKING):
                return
            self._handle(key, entry, sent_at)
            self._refused[key] = None
            while len(self._refused) > self.refused_kept:
                old, _ = self._refused.popitem(last=False)
                if (stale := self._entries.get(old)) is not None and not stale.delivered:
                    del self._entries[old]

    def deliverable(self, key: str, sender: Sender) -> str:
        """Record a claimed key as delivered, before its packets are written; '' if they may be written,
        or why not ('replayed': handled already; 'replay_memory_full': the sender's bound is reached)."""
        with self._lock:
            self._forget_expired(self.monotonic())
            entry = self._entries.get(key)
            if entry is None or entry.state is not State.FETCHING:
                return "replayed"
            if self._delivered_by[sender] >= self.delivered_per_sender:
                self.full_senders.add(sender.compressed if sender is not None else "unsealed")
                self._handle(key, entry, entry.sent_at)
                return "replay_memory_full"
            until = self._handle(key, entry, entry.sent_at)
            entry.sender = sender
            entry.delivered = True
            self._delivered_by[sender] += 1
            if self.journal is not None:
                self.journal.append(Remembered(key, sender, until), self._live_delivered)
            return ""

    def _handle(self, key: str, entry: Entry, sent_at: float) -> float:
        """Move an entry to handled, remembered for the window from now or from its send time if
        that is later; the wall-clock time until which it is kept, for the journal."""
        now = self.clock()
        keep = min(max(sent_at - now, 0.0) + self.window, 2 * self.window)
        entry.state = State.HANDLED
        entry.sent_at = sent_at
        entry.expires = self.monotonic() + keep
        heapq.heappush(self._expiry, (entry.expires, key))
        return now + keep

    # Deletion.

    def deleted(self, keys: Iterable[str]) -> None:
        """The bucket confirmed these deletes: a key listed again from now on was PUT again."""
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and entry.state is State.HANDLED:
                    entry.state = State.DELETED

    def given_up(self, key: str) -> None:
        """The key cannot be deleted: it stays in the bucket, and is never handled again."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = Entry(State.GIVEN_UP, 0.0)
            entry.state = State.GIVEN_UP
            self._given_up[key] = None
            while len(self._given_up) > GIVEN_UP_KEPT:
                old, _ = self._given_up.popitem(last=False)
                if (kept := self._entries.get(old)) is not None and kept.state is State.GIVEN_UP:
                    self._drop(old, kept)

    # Memory.

    def _forget_expired(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            expires, key = heapq.heappop(self._expiry)
            entry = self._entries.get(key)
            if entry is not None and entry.expires == expires and entry.state in (State.HANDLED, State.DELETED):
                self._drop(key, entry)

    def _drop(self, key: str, entry: Entry) -> None:
        del self._entries[key]
        self._refused.pop(key, None)
        if entry.delivered:
            self._delivered_by[entry.sender] -= 1
            if not self._delivered_by[entry.sender]:
                del self._delivered_by[entry.sender]

    def _live_delivered(self) -> list[Remembered]:
        """What the journal must still hold (called under the lock, when it compacts)."""
        now_wall, now = self.clock(), self.monotonic()
        return [Remembered(key, entry.sender, now_wall + entry.expires - now)
                for key, entry in self._entries.items() if entry.delivered and entry.expires > now]

    def _restore(self, remembered: list[Remembered]) -> None:
        """Keys delivered before a restart: handled, their deletes to be queued again when listed."""
        now_wall, now = self.clock(), self.monotonic()
        for item in remembered:
            keep = min(item.until - now_wall, 2 * self.window)
            if keep <= 0 or item.key in self._entries:
                continue
            entry = Entry(State.HANDLED, now_wall, now + keep, item.sender, delivered=True, delete_queued=False)
            self._entries[item.key] = entry
            heapq.heappush(self._expiry, (entry.expires, item.key))
            self._delivered_by[item.sender] += 1
