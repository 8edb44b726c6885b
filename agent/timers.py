"""Timers from measurements: how long a dense flow's packets linger for the next object, and how long a
slow object holds back the objects behind it, both from this node's own recent requests to its endpoint.

The guard times every request (agent.transport.guard); Stats keeps the last 64 of each kind. A fast
endpoint gets short timers, a slow one (or a busy one: a PUT's time includes the queueing in the
client, the server and the machine) longer ones, always within the fixed bounds below, which were the
fixed timers before. Why each formula: docs/performance.md, "Timers from measurements".
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agent.metrics import Stats

LINGER_PUTS = 2.0
"""A dense flow's objects are spaced this many send times apart: the median PUT, plus the median SendMessage
to a destination that rings (an object costs both, and the queue is often the slower)."""
LINGER_FLOOR = 0.002
"""The shortest spacing of a dense flow: below it, objects cost requests for a latency gain below a sleep's."""
LINGER_CAP = 0.1
"""The longest a dense flow's packets wait for their object, whatever the endpoint: the old fixed spacing."""
HOLD_GETS = 4.0
"""A GET this many times longer than nine in ten of the recent ones is no longer jitter: a retry or a stall."""
HOLD_FLOOR = 0.1
"""The shortest hold: on a busy machine a healthy GET now and then takes tens of milliseconds (the benchmark's
GET p99 on SeaweedFS here: 25 ms through obstore, 79 through boto3), and must not lose its turn for that."""
HOLD_CAP = 0.5
"""The longest a slow object holds back delivery of the objects behind it: the old fixed hold."""
TAIL = 0.9
"""The quantile of GET times that a healthy request stays within."""
REFRESH = 0.1
"""The timers are worked out again at most this often, in seconds: sorting 64 samples per packet would cost."""


def linger(put_median: float | None, ring_median: float = 0.0) -> float:
    """How long a dense flow's objects are spaced: LINGER_PUTS send times (a PUT, and a ring if the destination
    has a doorbell), within the bounds; the cap until a PUT has been timed."""
    if put_median is None:
        return LINGER_CAP
    return min(LINGER_CAP, max(LINGER_FLOOR, LINGER_PUTS * (put_median + ring_median)))


def hold(get_tail: float | None, put_median: float | None) -> float:
    """How long a slow object holds back the ones behind it: HOLD_GETS GETs of the recent tail, and for a rung
    object still landing the PUT allowance the bell triage gives it (twice the median PUT, agent.bell_triage),
    within the bounds; the cap until a GET has been timed."""
    if get_tail is None:
        return HOLD_CAP
    put = put_median if put_median is not None else get_tail  # the same endpoint: a GET's time is the best guess
    return min(HOLD_CAP, max(HOLD_FLOOR, HOLD_GETS * get_tail + 2 * put))


class Timers:
    """The current linger and hold of one node, from its Stats, worked out again at most every REFRESH."""

    def __init__(self, stats: Stats, clock: Callable[[], float] = time.monotonic) -> None:
        self.stats = stats
        self.clock = clock
        self._next = -float("inf")
        self._linger = self._linger_rung = LINGER_CAP
        self._hold = HOLD_CAP

    def linger(self, rings: bool = False) -> float:
        """The spacing of a dense flow's objects, in seconds; rings: to a destination whose doorbell is rung."""
        self._refresh()
        return self._linger_rung if rings else self._linger

    def hold(self) -> float:
        """How long a slow object may hold back the ones behind it, in seconds."""
        self._refresh()
        return self._hold

    def _refresh(self) -> None:
        now = self.clock()
        if now < self._next:
            return
        self._next = now + REFRESH
        stats = self.stats
        put = stats.latency_quantile("put", 0.5)
        self._linger = linger(put)
        self._linger_rung = linger(put, stats.latency_quantile("send", 0.5, "sqs") or 0.0)
        self._hold = hold(stats.latency_quantile("get", TAIL), put)
