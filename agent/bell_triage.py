"""Which rung keys a receiver fetches, in which order, and which it leaves to a listing: bounded work per bell.

Anyone allowed to send to a node's queue can ring it, so a bell is a hint, never an order:
- a key its sender could not have written (not a key of this node's inbox) is `bogus_bell`; one
  outside the window is refused unread as a listing would refuse it (`stale`, `future`), and deleted;
- a node that seals fetches only for bells whose MAC proves their sender; the others are
  `unverified_bell`, and a listing looks for what they named (an old sender's bells degrade to listing);
- each source of bells (a proven sender; every unproven bell together) has a budget of keys in flight,
  of at most PER_SOURCE keys and half the fetch budget's bytes; bells over it are left to a listing;
- proven senders' keys are fetched first, so fake keys cannot spend the fetch budget ahead of real ones;
- a rung key that is not there is `missing_object`, after one GET, or two while its PUT could still
  be in flight;
- a source whose bells go bad in numbers floods: the node says so once, at warning level, and leaves
  that source's bells to listing until it has been quiet for FLOOD_QUIET.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from agent import wire
from agent.metrics import Stats
from agent.transport.base import Bell

Source = ipaddress.IPv6Address | None
"""Whose bells: a proven sender's address, or None for every bell no MAC proves."""
Judge = Callable[[str, int], tuple[str, float]]
"""(key, size) -> (why it is refused or '', the key's time): agent.inbox.Inbox.judge."""

PER_SOURCE = 16
"""Rung keys of one source in flight at most: a sender has one object in flight to a destination at a time."""
FLOOD_BELLS, FLOOD_WINDOW = 64, 2.0
"""This many bad bells (bogus, unverified, missing, over budget) of one source within the window: a flood."""
FLOOD_QUIET = 10.0
"""A flood lasts until its source has rung nothing bad for this long."""
MISSING_KEYS = 4096
"""Rung keys found missing, remembered so that ringing one again costs no GET (a listing still finds it)."""
PUT_ALLOWANCE = (0.05, 1.0)
"""Without a measured PUT time, how long a PUT may take; and the most a retry ever waits for one."""


@dataclass(slots=True)
class BellPlan:
    """What to do with a batch of bells: keys to fetch (most trusted first), counts by reason, whether to list."""

    fetch: list[tuple[Bell, float]] = field(default_factory=list)
    """Bells to fetch, with their key's time."""
    refuse: list[tuple[Bell, str, float]] = field(default_factory=list)
    """Bells for keys to refuse unread (outside the window), with the reason and their key's time."""
    dropped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    """A key for each reason counted, for the dashboard's drops pane."""
    list_soon: bool = False
    """Some bells were left to a listing: list the inbox soon."""


@dataclass(slots=True)
class _Window:
    start: float
    bad: int = 0


class BellTriage:
    """The rules above, for one receiver. Thread-safe: discovery plans, fetchers report back."""

    def __init__(self, key_prefix: str, judge: Judge, stats: Stats, *, require_proof: bool, budget_bytes: int,
                 clock: Callable[[], float], report: Callable[[str], None] | None = None) -> None:
        self.key_prefix = key_prefix
        self.judge = judge
        self.stats = stats
        self.require_proof = require_proof
        self.source_bytes = budget_bytes // 2
        self.clock = clock
        self.report = report
        self._lock = threading.Lock()
        self._in_flight: dict[str, tuple[Source, int]] = {}
        """Rung key -> (its source, its announced size), while it is fetched."""
        self._held: Counter[Source] = Counter()
        self._held_bytes: Counter[Source] = Counter()
        self._windows: dict[Source, _Window] = {}
        self._floods: dict[Source, float] = {}
        """Flooding source -> until when its flood lasts."""
        self._missing: OrderedDict[str, None] = OrderedDict()
        self._retrying: str | None = None
        """The rung key a fetcher waits to GET again: one at a time, so waits never hold the fetchers."""
        self._flood_bells = 0
        self.floods = 0
        """Floods seen since the start."""

    def plan(self, bells: Iterable[Bell], known: Callable[[str], bool] | None = None) -> BellPlan:
        """Judge a batch of bells; known(key) is True for keys already being fetched or handled (the
        receive path's ledger says so when it claims them)."""
        plan = BellPlan()
        proven: list[tuple[Bell, float]] = []
        unproven: list[tuple[Bell, float]] = []
        seen: set[str] = set()
        with self._lock:
            for bell in bells:
                source = bell.sender if bell.verified else None
                # Cheapest first: a flood's bells must cost a few microseconds each, not a key's parsing.
                if source is None and self._flooding(source):
                    self._count(plan, "unverified_bell", bell.key)  # unproven: not acted on, a listing looks
                    self._went_bad(source, 1)
                    plan.list_soon = True
                    continue
                if bell.key in seen or bell.key in self._in_flight or bell.key in self._missing:
                    continue  # a bell rung twice: the object is handled (or looked for) once
                seen.add(bell.key)
                reason, sent_at = self.judge(bell.key, bell.size)
                if reason == "bad_key":  # not a key any sender could have written for us: nothing is done
                    self._count(plan, "bogus_bell", bell.key)
                    self._went_bad(source, 1)
                    continue
                if reason:  # outside the window (a bell kept in the queue while this node was away, or a
                    plan.refuse.append((bell, reason, sent_at))  # replay): refused unread, as listed
                    self._went_bad(source, 1)
                    continue
                if source is None and self.require_proof:
                    self._count(plan, "unverified_bell", bell.key)  # unproven: not fetched, a listing looks
                    self._went_bad(source, 1)
                    plan.list_soon = True
                    continue
                if known is not None and known(bell.key):
                    continue
                if self._flooding(source) or not self._fits(source, bell.size):
                    self._went_bad(source, 1)  # over its budget: a listing finds its keys, if they are there
                    plan.list_soon = True
                    continue
                size = min(bell.size, wire.MAX_OBJECT_BYTES)
                self._in_flight[bell.key] = (source, size)
                self._held[source] += 1
                self._held_bytes[source] += size
                (unproven if source is None else proven).append((bell, sent_at))
        plan.fetch = proven + unproven
        return plan

    def _count(self, plan: BellPlan, reason: str, key: str) -> None:
        plan.dropped[reason] += 1
        plan.examples[reason] = key

    def _fits(self, source: Source, size: int) -> bool:
        return self._held[source] < PER_SOURCE and self._held_bytes[source] + min(size, wire.MAX_OBJECT_BYTES) \
            <= self.source_bytes

    def is_rung(self, key: str) -> bool:
        """True while key is a rung key being fetched (its source's budget holds it)."""
        with self._lock:
            return key in self._in_flight

    def finished(self, key: str, found: bool) -> bool:
        """A rung key's fetch is over: free its source's budget; False (a flood's evidence) when it was not there."""
        with self._lock:
            if self._retrying == key:
                self._retrying = None
            entry = self._in_flight.pop(key, None)
            if entry is None:
                return True
            source, size = entry
            self._held[source] -= 1
            self._held_bytes[source] -= size
            if not found:
                self._went_bad(source, 1)
                self._missing[key] = None
                if len(self._missing) > MISSING_KEYS:
                    self._missing.popitem(last=False)
        return found

    def retry_after(self, key: str) -> float | None:
        """How long to wait before fetching a missing rung key once more, or None: its PUT is over by now.

        The key's ULID says when its sender made it; this node's own PUTs to the same endpoint say
        how long a PUT takes (twice their median). A sender rings once its PUT completed, so a key
        older than that was never coming. One key waits at a time (until finished()): fake keys
        made just now cannot hold the fetchers in their waits.
        """
        try:
            made = wire.parse_key(key, self.key_prefix).timestamp
        except wire.WireError:
            return None
        default, longest = PUT_ALLOWANCE
        measured = self.stats.latency_medians("s3").get("put")
        allowance = min(longest, 2 * measured if measured is not None else default)
        age = self.clock() - made
        with self._lock:
            if age >= allowance or self._retrying is not None:
                return None
            self._retrying = key
        return min(allowance - age, allowance)  # a key from a clock ahead of ours waits no longer than a PUT

    def flooding(self, source: Source = None) -> bool:
        """True while source's bells are left to listing."""
        with self._lock:
            return self._flooding(source)

    def _flooding(self, source: Source) -> bool:
        until = self._floods.get(source)
        if until is None:
            return False
        if until > self.clock():
            return True
        del self._floods[source]
        if not self._floods and self.report is not None:
            self.report(f"the bell flood is over: {self._flood_bells} bells were left to listing or refused")
        return False

    def _went_bad(self, source: Source, count: int) -> None:
        """Count bad bells of a source within the window; past FLOOD_BELLS it floods (said once)."""
        now = self.clock()
        window = self._windows.get(source)
        if window is None or now - window.start > FLOOD_WINDOW:
            window = self._windows[source] = _Window(now)
            if len(self._windows) > 1024:  # many proven senders at once: keep the newest windows only
                self._windows = {source: window}
        window.bad += count
        if source in self._floods:
            self._floods[source] = now + FLOOD_QUIET
            self._flood_bells += count
        elif window.bad >= FLOOD_BELLS:
            first = not self._floods
            self._floods[source] = now + FLOOD_QUIET
            self.floods += 1
            if first:
                self._flood_bells = window.bad
                if self.report is not None:
                    who = "unproven senders" if source is None else str(source)
                    self.report(f"a bell flood from {who}: {window.bad} bells in {FLOOD_WINDOW:.0f} s named keys "
                                f"that cannot be fetched; listing the inbox instead while it lasts")
