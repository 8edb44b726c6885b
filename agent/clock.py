"""The bucket is the clock: this node's offset from it, and how far off a sender's keys were when PUT.

Every S3 response carries the server's `Date`, every listing and GET an object's `LastModified`,
both in whole seconds of the bucket's clock. A node estimates the bucket's time from the first, stamps
its keys in it and judges others' keys by it, so two nodes whose own clocks disagree still agree on
what "now" is; the second tells how far a refused object's stamp was from the bucket's when it landed.
Why this is safe against anyone who may PUT: docs/wire-format.md, "Time".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from email.utils import mktime_tz, parsedate_tz

BOUND = 900.0
"""Offsets beyond this (15 minutes, as SigV4 allows) are refused, not corrected: no clock is that far off
by accident, and correcting them would let the bucket's answers move a node's time by that much."""
RESOLUTION = 1.0
"""`Date` and `LastModified` are whole seconds, rounded down."""
WARN_ABOVE = 1.0
"""A node whose clock is surely further than this from the bucket's says so, once."""
Report = Callable[[str], None]


class NodeClock:
    """This node's estimate of the bucket's clock, from the `Date` of the bucket's responses.

    A response dated D (whole seconds) was dated between our sending it at t0 and our receiving it at
    t1, so the bucket's clock minus ours lies in [D - t1, D + 1 - t0]. The intersection of those
    intervals narrows below a second within a few requests. They are measured against the monotonic
    clock, so a step of the wall clock (a VM resumed, a daemon that jumps it) moves nothing; a drift
    or a step of the bucket's clock empties the intersection, which then starts again from the
    newest sample. Until the first response, and when the offset is beyond BOUND, time is the wall
    clock's, as if the two agreed.
    """

    def __init__(self, wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 report: Report | None = None) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._report = report
        self._lock = threading.Lock()
        self._low = -float("inf")
        self._high = float("inf")
        self._newest: tuple[float, float] | None = None
        self._known = False
        self._latest = -float("inf")
        self._told = False
        self._last_date = ("", 0.0)
        self.samples = 0
        self.refused = False
        """True while the offset is beyond BOUND: it is reported, and not applied."""

    def observe(self, date: float, sent: float, received: float) -> None:
        """One response dated `date` (bucket seconds), sent and received at these monotonic times."""
        low, high = date - received, date + RESOLUTION - sent
        with self._lock:
            self.samples += 1
            new_low, new_high = max(self._low, low), min(self._high, high)
            if new_low > new_high:  # the clocks moved apart: keep what the newest two samples agree on
                new_low, new_high = low, high
                if self._newest is not None and max(low, self._newest[0]) <= min(high, self._newest[1]):
                    new_low, new_high = max(low, self._newest[0]), min(high, self._newest[1])
            self._low, self._high = new_low, new_high
            self._newest = (low, high)
            self._known = True
        self._tell()

    def observe_date(self, header: str | None, sent: float, received: float) -> None:
        """The same, from a `Date` header as HTTP gives it; a missing or malformed one is ignored."""
        if not header:
            return
        last_header, date = self._last_date
        if header != last_header:  # parsed once a second, not once a request
            parsed = parsedate_tz(header)
            if parsed is None:
                return
            date = float(mktime_tz(parsed))
            self._last_date = (header, date)
        self.observe(date, sent, received)

    @property
    def known(self) -> bool:
        """True once a response told the bucket's time."""
        return self._known

    def _monotonic_offset(self) -> float | None:
        with self._lock:
            return (self._low + self._high) / 2 if self._known else None

    def offset(self) -> float | None:
        """How far this node's wall clock is ahead of the bucket's (negative: behind), in seconds; None until
        a response told it."""
        middle = self._monotonic_offset()
        return None if middle is None else self._wall() - self._monotonic() - middle

    def uncertainty(self) -> float:
        """Half the width of the interval the offset lies in (inf until known)."""
        with self._lock:
            return (self._high - self._low) / 2 if self._known else float("inf")

    def now(self) -> float:
        """The bucket's time now, as well as this node knows it (its wall clock until then, or when refused).

        Once known it never goes back, even when the estimate does (a step of the bucket's clock, a
        narrower interval): a key handled and forgotten must not come back inside the window.
        """
        middle = self._monotonic_offset()
        if middle is None or self.refused:
            return self._wall()
        with self._lock:
            self._latest = max(self._latest, self._monotonic() + middle)
            return self._latest

    def _tell(self) -> None:
        """Say once that the clock is off by more than WARN_ABOVE, as soon as that is sure (from one response
        when it is well beyond: a node whose S3 client shows no Date but its listings' may wait a while
        for the next), with how closely it is known; refuse it beyond BOUND."""
        offset = self.offset()
        if offset is None:
            return
        self.refused = abs(offset) > BOUND
        ahead = self._wall() - self._monotonic()  # the node's clock ahead of the bucket's is ahead - [low, high]
        with self._lock:
            sure = ahead - self._high > WARN_ABOVE or ahead - self._low < -WARN_ABOVE
            if not sure or self._told:
                return
            self._told = True
            within = (self._high - self._low) / 2
        if self._report is None:
            return
        how_far = f"{describe(offset)} the bucket's (±{max(within, 0.05):.1f} s)"
        if self.refused:
            self._report(f"this node's clock is {how_far}: beyond 15 minutes, so it is not corrected and other "
                         "nodes will refuse what it sends: set the clock and start your time daemon (chrony, "
                         "systemd-timesyncd)")
        else:
            self._report(f"this node's clock is {how_far}: start your time daemon (chrony, systemd-timesyncd); "
                         "meanwhile keys are stamped and judged in the bucket's time")


def describe(ahead: float) -> str:
    """'5.0 s ahead of' / '15.0 s behind' for a clock ahead of another by `ahead` seconds."""
    return f"{abs(ahead):.1f} s {'ahead of' if ahead >= 0 else 'behind'}"


def stamp_offset(sent_at: float, put_at: float | None, now: float) -> float:
    """How far an object's stamp (its key's time) was ahead of the bucket's clock (negative: behind): against
    its PUT time (LastModified, rounded down to the second) when a listing gave it, else against now (a rung
    key, PUT a moment ago). An object that took long to land looks that much further behind."""
    if put_at is None:
        return sent_at - now
    return sent_at - (put_at + RESOLUTION / 2)


def explain(sent_at: float, put_at: float | None, now: float) -> str:
    """What a refused object's times say, for whoever reads why it was dropped as stale or future."""
    told = f"stamped {describe(stamp_offset(sent_at, put_at, now))} the bucket's clock"
    if put_at is None:
        return told
    return f"{told} when PUT, {max(0.0, now - put_at):.0f} s ago"
