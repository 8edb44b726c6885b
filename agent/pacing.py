"""Paced delivery: a bundle's packets go into the device at about the pace they were sent, as a link's would.

A bundle carries everything a flow sent while the previous object was on its way (up to 100 ms of
it); written at once, a few hundred datagrams land on an application's socket together and a default
receive buffer (~200 KB) overflows. So the receiver replays the gaps the sender saw (bundle-v2 keeps
each packet's offset from the first), within bounds a sender cannot stretch:
- the offsets are made non-decreasing, and one object's packets are spread over PACE_LIMIT at most
  (longer spans are compressed, never waited out), so a sender cannot hold the node;
- gaps shorter than MIN_GAP are not slept (a sleep costs about that much), those packets go together;
- while objects are fetched and waiting behind this one, the rest of its gaps shrink (n waiting: to
  1/(1 + n·CATCH_UP) of each), so delivery catches up with what arrives without a burst: a backlog
  that grows speeds it up until the gaps fall under MIN_GAP. Later objects are never delayed
  by more than PACE_LIMIT, well within the in-order hold (agent.fetching.HOLD_LIMIT).
Nothing here reads a packet: the pacing costs a sender's bytes nothing more to check.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

PACE_LIMIT = 0.2
"""The longest one object's packets are spread over, in seconds: twice a dense flow's spacing."""
MIN_GAP = 0.001
"""Gaps shorter than this are not slept: the packets go together."""

MAX_BURST = 0.002
"""The most of an object's schedule written back to back when delivery ran late (a busy CPU held it):
beyond it the schedule slips, so a stall becomes delay, within the limit, rather than one burst."""

CATCH_UP = 0.5
"""How much faster than sent the rest of an object goes for each object waiting behind it. Measured on
SeaweedFS, UDP at 40 Mbit/s: with 1.0 the receiver's socket still overflowed now and then (29 datagrams
in two runs), with 0.5 never."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Paced:
    """How one object went into the device: packets written at their pace (shrunk while others
    waited), or at once (no offsets, or no gap worth a sleep), and that pace in packets per second."""

    paced: int
    at_once: int
    rate: float


def schedule(offsets: Sequence[float], limit: float = PACE_LIMIT) -> list[float]:
    """When each packet is due, in seconds after the first: the sender's offsets, non-decreasing,
    compressed to fit within limit."""
    due: list[float] = []
    latest = 0.0
    for offset in offsets:
        latest = max(latest, offset if offset == offset else 0.0)  # NaN counts as no gap
        due.append(latest)
    span = due[-1] if due else 0.0
    if span > limit:
        due = [moment * limit / span for moment in due]
    return due


class Pacer:
    """Writes an object's packets at their recorded pace, faster while others wait behind it."""

    def __init__(self, waiting_behind: Callable[[], int], *, limit: float = PACE_LIMIT,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.waiting_behind = waiting_behind
        self.limit = limit
        self.sleep = sleep
        self.clock = clock

    def write(self, items: Sequence[T], offsets: Sequence[float] | None, write: Callable[[T], object]) -> Paced:
        """Write each item, waiting between them as the offsets say (None: all at once)."""
        if offsets is None or len(items) < 2:
            for item in items:
                write(item)
            return Paced(0, len(items), 0.0)
        start = self.clock()
        due_at = start  # when the current packet is due, the gaps before it shrunk by the backlog
        previous = 0.0
        speed = 1.0
        slept = False
        due = schedule(offsets, self.limit)
        slack = self.limit - due[-1]  # how far the schedule may slip, the whole object still within the limit
        for item, moment in zip(items, due, strict=True):
            gap, previous = moment - previous, moment
            if gap > 0.0:
                now = self.clock()
                if due_at + gap / speed - now >= MIN_GAP:
                    speed = 1 + CATCH_UP * self.waiting_behind()  # asked only when a sleep is in view
                due_at += gap / speed
                if (late := now - due_at - MAX_BURST) > 0.0 and slack > 0.0:
                    slip = min(late, slack)  # what is overdue goes at its pace, later, not in one burst
                    due_at += slip
                    slack -= slip
                if (wait := due_at - now) >= MIN_GAP:
                    self.sleep(wait)
                    slept = True
            write(item)
        if not slept:
            return Paced(0, len(items), 0.0)
        took = self.clock() - start
        return Paced(len(items), 0, len(items) / took if took > 0 else 0.0)
