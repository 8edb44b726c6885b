"""The fetch budget: GETs in parallel, objects held in key order until delivery takes them.

Fetchers GET with a ranged read, never more than the object's announced size allows (plus one byte,
to tell a larger object). Bytes and objects in flight are capped, so a poll that finds more than the
budget holds leaves the rest for the next one. Delivery takes objects in key order, waiting for a slow
one at most the hold (agent.timers: from this node's recent GET and PUT times, HOLD_LIMIT at most) before it
takes those behind it.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from agent.bell_triage import BellTriage
from agent.inbox import Candidate
from agent.timers import HOLD_CAP
from agent.transport.base import Bucket, StoreError

HOLD_LIMIT = HOLD_CAP
"""The longest a slow object holds back delivery of the objects behind it, in seconds, however slow the endpoint."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a GET gave: a body, nothing (the object is gone), or a failure."""

    body: bytes | None
    error: StoreError | None = None


@dataclass(slots=True)
class Pending:
    """An object being fetched or waiting for its turn to be delivered."""

    candidate: Candidate
    started: float
    """When it joined the budget; its GET may wait for a fetcher before it runs."""
    future: Future[Fetched] = field(repr=False)
    running: float | None = None
    """When a fetcher began its GET: the measured hold counts from then, not from a wait in the queue."""
    done: float | None = None
    """When its GET ended."""

    def held_since(self, measured: float) -> tuple[float, float]:
        """(since when it holds back the objects behind it, for how long at most): the measured hold once its
        GET runs, HOLD_LIMIT from when it joined while it waits for a fetcher."""
        return (self.started, HOLD_LIMIT) if self.running is None else (self.running, measured)


def fetch(bucket: Bucket, triage: BellTriage | None, candidate: Candidate) -> Fetched:
    """GET at most the announced size plus one byte; a missing rung key once more, only while its PUT could
    still be in flight (agent.bell_triage.BellTriage.retry_after); the triage hears how a rung key went."""
    try:
        body = bucket.get(candidate.key, candidate.limit)
        if body is None and candidate.rung and triage is not None \
                and (pause := triage.retry_after(candidate.key)) is not None:
            time.sleep(pause)
            body = bucket.get(candidate.key, candidate.limit)
    except StoreError as error:
        if triage is not None:
            triage.finished(candidate.key, found=True)  # a failure, not a flood's evidence
        return Fetched(None, error)
    if triage is not None:
        triage.finished(candidate.key, found=body is not None or not candidate.rung)
    return Fetched(body)


class Fetches:
    """Objects in flight, by key, within a budget of bytes and objects; one condition for all of it."""

    def __init__(self, get: Callable[[Candidate], Fetched], workers: int, budget_bytes: int,
                 max_in_flight: int, hold: Callable[[], float] = lambda: HOLD_LIMIT) -> None:
        """hold: how long a slow object may hold back the ones behind it now (agent.timers.Timers.hold)."""
        self._get = get
        self.hold = hold
        self.budget_bytes = budget_bytes
        self.max_in_flight = max_in_flight
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="hoshino-get")
        self._changed = threading.Condition()
        self._pending: dict[str, Pending] = {}
        self._order: list[str] = []
        self._reserved = 0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def full(self) -> bool:
        """True while objects in flight hold the whole budget: the next poll would only wait."""
        return self._reserved >= self.budget_bytes or len(self._pending) >= self.max_in_flight

    def start(self, candidate: Candidate) -> bool:
        """Start a GET unless the budget is spent; False when it is."""
        with self._changed:
            if self.full:
                return False
            self._reserved += max(candidate.limit, 1)
            future: Future[Fetched] = Future()
            pending = self._pending[candidate.key] = Pending(candidate, time.monotonic(), future)
            bisect.insort(self._order, candidate.key)
            self._pool.submit(self._run, pending)
        future.add_done_callback(self._fetched)
        return True

    def _run(self, pending: Pending) -> None:
        """One GET on a fetcher's thread, its result (or its failure) set on the pending object's future."""
        pending.running = time.monotonic()
        if not pending.future.set_running_or_notify_cancel():
            return
        try:
            fetched = self._get(pending.candidate)
        except BaseException as error:
            pending.done = time.monotonic()
            pending.future.set_exception(error)
        else:
            pending.done = time.monotonic()
            pending.future.set_result(fetched)

    def _fetched(self, _future: Future[Fetched]) -> None:
        with self._changed:
            self._changed.notify_all()

    def ready(self) -> int:
        """Objects fetched and waiting for delivery to take them: the delivery backlog."""
        with self._changed:
            return sum(1 for pending in self._pending.values() if pending.future.done())

    def unfinished_since(self) -> float | None:
        """The send time of the oldest object still in flight, if any."""
        with self._changed:
            times = [pending.candidate.sent_at for pending in self._pending.values()]
        return min(times) if times else None

    def take(self, wait: float) -> Pending | None:
        """The next object in key order that is fetched, waiting up to `wait` for one; it leaves the budget."""
        deadline = time.monotonic() + wait
        with self._changed:
            while (pending := self._next_ready()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(min(remaining, self._hold_remaining()) if self._pending else remaining)
            del self._pending[pending.candidate.key]
            self._order.remove(pending.candidate.key)
            self._reserved -= max(pending.candidate.limit, 1)
            return pending

    def _next_ready(self) -> Pending | None:
        """The first object in key order that is fetched, skipping ones held up longer than the hold."""
        now = time.monotonic()
        measured = self.hold()
        for key in self._order:
            pending = self._pending[key]
            if pending.future.done():
                return pending
            since, limit = pending.held_since(measured)
            if now - since < limit:
                return None
        return None

    def _hold_remaining(self) -> float:
        """How long until the first unfinished object stops holding the others back."""
        now = time.monotonic()
        measured = self.hold()
        for key in self._order:
            pending = self._pending[key]
            if not pending.future.done():
                since, limit = pending.held_since(measured)
                return max(0.001, limit - (now - since))
        return measured

    def shutdown(self) -> None:
        """Cancel what has not started, wait for what has, and wake anyone waiting to take."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._changed:
            for pending in self._pending.values():
                pending.future.cancel()  # its GET never ran: delivery releases its key
            self._changed.notify_all()
