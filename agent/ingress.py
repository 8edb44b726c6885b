"""The receive path: find new objects, fetch them in parallel, deliver them in key order, delete them.

Four parts, each a module of its own, share one ledger of every key's life (agent.ledger):
- discovery lists the inbox on each heartbeat, or takes the keys a doorbell rings (agent.discovery);
- the fetch budget runs the GETs and holds objects in key order until their turn (agent.fetching);
- delivery writes their packets to the device, or counts why not (agent.delivery);
- deletes run on their own, off the path from bucket to device (agent.deleter).
This module puts them together and runs their threads.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from agent import wire
from agent.bell_triage import BellTriage
from agent.deleter import Deleter
from agent.delivery import Delivery, IngressSettings, Publish
from agent.discovery import Discovery
from agent.fetching import Fetches, fetch
from agent.heartbeat import Heartbeat
from agent.inbox import Inbox
from agent.journal import Journal
from agent.ledger import Ledger
from agent.metrics import Stats
from agent.recent import RecentObjects
from agent.timers import Timers
from agent.transport.base import Bell, Bucket, Doorbell

__all__ = ["Ingress", "IngressSettings"]


class Ingress:
    """Receives this node's objects and writes their packets to the device."""

    def __init__(
        self,
        bucket: Bucket,
        write: Callable[[bytes], object],
        stats: Stats,
        heartbeat: Heartbeat,
        settings: IngressSettings,
        *,
        doorbell: Doorbell | None = None,
        publish: Publish | None = None,
        opener: wire.Opener | None = None,
        recent: RecentObjects | None = None,
        report: Callable[[str], None] | None = None,
        journal: Journal | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.ledger = Ledger(settings.window, journal=journal, clock=clock)
        self.deleter = Deleter(bucket, stats, report, deleted=self.ledger.deleted, given_up=self.ledger.given_up)
        inbox = Inbox(bucket, settings.address, settings.key_prefix, max_age=settings.max_age, skew=settings.skew,
                      clock=clock)
        self.triage = BellTriage(settings.key_prefix, inbox.judge, stats, require_proof=opener is not None,
                                 budget_bytes=settings.budget_bytes, clock=clock, report=report)
        self.fetches = Fetches(functools.partial(fetch, bucket, self.triage), settings.fetchers, settings.budget_bytes,
                               settings.max_in_flight, hold=Timers(stats).hold)
        self.delivery = Delivery(self.fetches, self.ledger, self.deleter, write, stats, settings, opener=opener,
                                 publish=publish, recent=recent, warn=report, clock=clock)
        self.discovery = Discovery(inbox, self.ledger, self.fetches, self.delivery, heartbeat, doorbell=doorbell,
                                   warn=report, triage=self.triage)

    def loops(self) -> dict[str, Callable[[threading.Event], None]]:
        """The receive path's loops by thread name, for a caller that guards the threads it runs them in."""
        return {"hoshino-poll": self._discover, "hoshino-deliver": self.delivery.run,
                "hoshino-delete": self.deleter.run}

    def run(self, stop: threading.Event) -> None:
        """Discover, deliver and delete until stopped; S3 failures back off and never end the loop."""
        loops = self.loops()
        discover = loops.pop("hoshino-poll")
        others = [threading.Thread(target=loop, args=(stop,), name=name, daemon=True) for name, loop in loops.items()]
        for thread in others:
            thread.start()
        try:
            discover(stop)
        finally:
            for thread in others:
                thread.join(timeout=15)

    def _discover(self, stop: threading.Event) -> None:
        try:
            self.discovery.run(stop)
        finally:
            self.fetches.shutdown()

    # One step at a time, for tests and for the node's controls.

    def poll(self) -> bool:
        return self.discovery.poll()

    def sweep(self) -> bool:
        return self.discovery.sweep()

    def offer_bells(self, bells: list[Bell]) -> None:
        self.discovery.offer_bells(bells)

    def expect_unannounced(self) -> None:
        self.discovery.expect_unannounced()

    def deliver_ready(self, wait: float = 0.0) -> int:
        return self.delivery.deliver_ready(wait)

    @property
    def in_flight(self) -> int:
        """Objects being fetched or waiting for their turn to be delivered."""
        return len(self.fetches)

    def drain(self, timeout: float = 10.0) -> int:
        """Deliver until nothing is in flight (for tests and a clean stop); how many were delivered."""
        delivered = 0
        deadline = time.monotonic() + timeout
        while len(self.fetches) and time.monotonic() < deadline:
            delivered += self.delivery.deliver_ready(wait=min(0.2, deadline - time.monotonic()))
        return delivered
