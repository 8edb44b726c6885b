"""Discovery: learn which objects wait in the inbox, by listing on the heartbeat or from a doorbell.

Listing does not wait for the GETs it starts. Each key found is claimed in the ledger first, so a
key listed and rung at once, or listed twice while in flight, is fetched once. Keys refused by their
form or age are refused here, unread.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from agent import wire
from agent.bell_triage import BellTriage
from agent.clock import explain
from agent.delivery import Delivery
from agent.fetching import Fetches
from agent.heartbeat import Heartbeat
from agent.inbox import Candidate, Inbox
from agent.ledger import Claim, Ledger
from agent.transport.base import Bell, Doorbell, ObjectInfo, StoreError

LATE_ALLOWANCE = 2.0
"""How far behind the oldest unfinished key a listing starts, so a PUT that finished late is found."""
SWEEP_PERIOD = 60.0
CATCH_UP_BUSY, CATCH_UP_IDLE = 60.0, 300.0
"""With a doorbell: how often to list the inbox anyway, after recent traffic and when idle."""
UNANNOUNCED = 10.0
"""With a doorbell: how long to poll after sending to a node that cannot ring us back."""
OWED_LISTING_GAP = 0.1
"""With a doorbell: bells left to a listing (unproven, over budget, a flood's) list the inbox at most this often."""


class Discovery:
    """Finds this node's objects and starts fetching them, within the fetch budget."""

    def __init__(self, inbox: Inbox, ledger: Ledger, fetches: Fetches, delivery: Delivery, heartbeat: Heartbeat,
                 *, doorbell: Doorbell | None = None, warn: Callable[[str], None] | None = None,
                 triage: BellTriage | None = None) -> None:
        """triage: which rung keys to fetch (agent.bell_triage); without one, every bell is a listing's hint."""
        self.inbox = inbox
        self.ledger = ledger
        self.fetches = fetches
        self.delivery = delivery
        self.heartbeat = heartbeat
        self.doorbell = doorbell
        self.warn = warn
        self.clock = inbox.clock
        self._deferred: float | None = None
        self._resume: float | None = None
        self._error_backoff = 0.0
        self._next_sweep = 0.0
        self._poll_until = 0.0
        self.triage = triage
        self._listing_owed = False
        self._next_owed_listing = 0.0

    # The loops.

    def run(self, stop: threading.Event) -> None:
        if self.doorbell is None:
            self._poll_loop(stop)
        else:
            self._bell_loop(stop, self.doorbell)

    def _poll_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.poll_step(stop)

    def poll_step(self, stop: threading.Event) -> None:
        """Wait a beat, list, start fetching what is new; adapt the heartbeat to what was found."""
        if not self.heartbeat.wait(stop):
            return
        if self.fetches.full:
            self.heartbeat.skipped()
            return
        started = time.monotonic()
        try:
            found = self.poll()
            if self.clock() >= self._next_sweep:
                found = self.sweep() or found
        except StoreError:
            self._back_off(stop)
            return
        self._error_backoff = 0.0
        self.heartbeat.poll_took(time.monotonic() - started)
        if found:
            self.heartbeat.found_work()
        else:
            self.heartbeat.found_nothing()

    def expect_unannounced(self) -> None:
        """This node sent to one that has no doorbell: its replies come unrung, so poll for a while."""
        self._poll_until = self.clock() + UNANNOUNCED
        self.heartbeat.expect_work()

    def _bell_loop(self, stop: threading.Event, doorbell: Doorbell) -> None:
        """Sleep on the doorbell; fetch what it rings; list the inbox now and then to catch what it missed.

        While talking to a node that cannot ring (it polls), while the queue fails, and for a minute
        after the queue was made (senders that found none may not ring it yet), poll on the heartbeat
        instead; if the queue is gone for good, poll from then on.
        """
        busy_until = 0.0
        self._poll_until = max(self._poll_until, self.clock() + doorbell.unknown_for)
        while not stop.is_set():
            if self.clock() < self._poll_until:
                self.poll_step(stop)
                continue
            now = self.clock()
            if now >= self._next_sweep:
                try:
                    self.sweep(period=CATCH_UP_BUSY if now < busy_until else CATCH_UP_IDLE)
                except StoreError:
                    self._back_off(stop)
                    continue
            if self._listing_owed and not self._owed_listing(stop):
                continue
            try:
                # While a listing is owed (its keys did not fit the fetch budget), only a short look for bells.
                wait = 0.0 if self._listing_owed else max(0.0, self._next_sweep - self.clock())
                bells = doorbell.wait(wait, stop)
            except StoreError as error:
                if error.kind in ("no_queue", "denied"):
                    self._warn(f"the doorbell's queue cannot be used ({error}): polling from now on")
                    self._poll_loop(stop)
                    return
                self._poll_until = self.clock() + UNANNOUNCED  # the queue fails: listen by listing
                continue
            self._error_backoff = 0.0
            if bells:
                busy_until = self.clock() + CATCH_UP_BUSY
                if self.heartbeat.manual and not self.heartbeat.wait(stop):
                    return  # a heartbeat held by hand paces the doorbell too: objects wait in the bucket
                self.offer_bells(bells)

    def _owed_listing(self, stop: threading.Event) -> bool:
        """List the inbox for keys that bells named but did not get fetched; at most every OWED_LISTING_GAP."""
        stop.wait(max(0.0, self._next_owed_listing - time.monotonic()))
        self._listing_owed = False
        self._next_owed_listing = time.monotonic() + OWED_LISTING_GAP
        try:
            self.poll()
        except StoreError:
            self._listing_owed = True
            self._back_off(stop)
            return False
        self._listing_owed = self._deferred is not None  # the budget was full: list again once it frees
        return True

    def _warn(self, message: str) -> None:
        if self.warn is not None:
            self.warn(message)

    def _back_off(self, stop: threading.Event) -> None:
        """Wait after a failed listing: doubling, jittered, never longer than the slowest poll, so the
        node hears again within two slowest polls of the endpoint's return (the guard has retried
        already, and holds every request back itself while the service throttles)."""
        ceiling = self.heartbeat.slowest
        self._error_backoff = min(ceiling, max(min(0.1, ceiling), self._error_backoff * 2))
        self.heartbeat.found_nothing()
        stop.wait(random.uniform(self._error_backoff / 2, self._error_backoff))

    # Listing and bells.

    def poll(self) -> bool:
        """List the inbox from a little before the oldest unfinished key and start fetching what is new.

        True when anything new was found. Starting LATE_ALLOWANCE before the oldest key not yet
        handled finds an object whose PUT finished after later keys were handled; keys left
        behind further back (ones that could not be deleted) are not listed again.
        """
        since = self.inbox.floor() if self._resume is None else self._resume - LATE_ALLOWANCE
        listed = self.inbox.list_from(since)
        found = self._offer(listed)
        self._move_resume(listed)
        return found

    def sweep(self, period: float = SWEEP_PERIOD) -> bool:
        """List the whole inbox (a few pages at a time): refuse what is stale, fetch what is not."""
        self._next_sweep = self.clock() + period
        return self._offer(self.inbox.sweep())

    def offer_bells(self, bells: list[Bell]) -> None:
        """Fetch the objects a doorbell rang, straight away, as far as agent.bell_triage allows; list for the rest."""
        if self.triage is None:
            self._listing_owed = True
            return
        plan = self.triage.plan(bells)
        for reason, count in plan.dropped.items():
            self.delivery.stats.drop(reason, count - 1)
            bells_named = f"{count} bell{'s' if count != 1 else ''}"
            self.delivery.drop_object(reason, plan.examples[reason], f"{bells_named}, the latest for this key")
        for bell, reason, sent_at in plan.refuse:
            self._claim(Candidate(bell.key, sent_at, min(bell.size, wire.MAX_OBJECT_BYTES), rung=True), reason,
                        bell.size)
        spent = False
        for bell, sent_at in plan.fetch:
            candidate = Candidate(bell.key, sent_at, min(bell.size, wire.MAX_OBJECT_BYTES), rung=True)
            started = None if spent else self._claim(candidate, "", bell.size)
            if started is not True:  # in hand already, or the budget is spent: a listing finds the rest
                self.triage.finished(bell.key, found=True)
            spent = spent or started is False
        self._listing_owed = self._listing_owed or plan.list_soon or spent

    def _offer(self, listed: list[ObjectInfo]) -> bool:
        """Start fetching the new objects of a listing, in key order, while the budget allows."""
        found = False
        self._deferred = None
        for item in listed:
            reason, sent_at = self.inbox.judge(item.key, item.size)
            started = self._claim(Candidate(item.key, sent_at, item.size), reason, item.size,
                                  item.last_modified.timestamp())
            if started is False:
                self._deferred = sent_at
                self.heartbeat.skipped()
                return True
            found = found or started is True
        return found

    def _claim(self, candidate: Candidate, reason: str, size: int, put_at: float | None = None) -> bool | None:
        """Claim a key in the ledger and act: refuse it, fetch it, recheck it or queue its delete.

        None when there was nothing to do (the key is in hand or done with); False when its GET
        could not start for want of budget; True otherwise.
        """
        claim = self.ledger.claim(candidate.key, candidate.sent_at)
        if claim is Claim.KNOWN:
            return None
        if claim is Claim.DELETE:
            self.delivery.deleter.put(candidate.key)
            return None
        if claim is Claim.RECHECK:
            candidate = Candidate(candidate.key, candidate.sent_at, 0, recheck=True)  # one byte tells
        elif reason:
            what = f"object of {size} byte{'s' if size != 1 else ''}"
            if reason in ("stale", "future"):  # the sender's clock, most likely: name how far off it is
                what = f"{what}, {explain(candidate.sent_at, put_at, self.clock())}"
            self.delivery.refuse(candidate.key, reason, candidate.sent_at, what)
            return True
        if not self.fetches.start(candidate):
            if claim is Claim.RECHECK:
                self.ledger.recheck_done(candidate.key, put_again=False)
            else:
                self.ledger.release(candidate.key)
            return False
        if not candidate.recheck:
            self.delivery.stats.stage("found", self.clock() - candidate.sent_at)
        return True

    def _move_resume(self, listed: list[ObjectInfo]) -> None:
        """Where the next listing starts: the oldest key not finished with, or past all that was listed."""
        unfinished = [stamp for stamp in (self.fetches.unfinished_since(), self.ledger.failed_since(),
                                          self._deferred) if stamp is not None]
        if unfinished:
            self._resume = min(unfinished)
            return
        # Keys from the future (refused) must not move the start past the present.
        latest = self.clock() + self.inbox.skew
        times = [stamp for item in listed if (stamp := _time_of(item.key, self.inbox.key_prefix)) is not None
                 and stamp <= latest]
        if times:
            self._resume = max(times)


def _time_of(key: str, key_prefix: str) -> float | None:
    try:
        return wire.parse_key(key, key_prefix).timestamp
    except wire.WireError:
        return None
