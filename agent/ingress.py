"""The receive path: find new objects, fetch them in parallel, deliver them in key order, delete them.

Three threads and a pool share the work, so no step waits on another without need:
- discovery lists the inbox on each heartbeat (or takes the keys a doorbell rings) and starts the
  GETs at once, without waiting for the previous ones;
- fetchers GET with a ranged read, never more than the object's announced size allows;
- delivery writes objects' packets to the device in key order, waiting at most HOLD_LIMIT for a
  slow object before it delivers the ones behind it;
- deletes run on their own (agent.deleter), off the path from bucket to device.
Work per object is bounded and linear in its size: the fixed 40-byte header of each packet is all
that is read on the way, a bundle holds a bounded number of packets, and bytes in flight are capped.
"""

from __future__ import annotations

import bisect
import ipaddress
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from agent import packets, wire
from agent.deleter import Deleter
from agent.events import Event, PacketSeen
from agent.heartbeat import Heartbeat
from agent.inbox import Candidate, Inbox
from agent.metrics import Stats
from agent.recent import CarriedObject, RecentObjects
from agent.transport.base import Bell, Bucket, Doorbell, ObjectInfo, StoreError

Publish = Callable[[Event], None]
Replayed = Callable[[ipaddress.IPv6Address, str], bool]
"""(sender, object key) -> True if that sealed object was delivered before (and now remembered)."""

FETCH_ATTEMPTS = 5
"""Failed GETs of one object (each already retried by the guard) after which it is dropped."""
HOLD_LIMIT = 0.5
"""The longest a slow object holds back delivery of the objects behind it, in seconds."""
LATE_ALLOWANCE = 2.0
"""How far behind the oldest unfinished key a listing starts, so a PUT that finished late is found."""
RUNG_RETRIES = (0.005, 0.01, 0.02, 0.04, 0.08)
"""Pauses before fetching a rung key again: its bell may arrive before its PUT completes."""
SWEEP_PERIOD = 60.0
CATCH_UP_BUSY, CATCH_UP_IDLE = 60.0, 300.0
"""With a doorbell: how often to list the inbox anyway, after recent traffic and when idle."""
UNANNOUNCED = 10.0
"""With a doorbell: how long to poll after sending to a node that cannot ring us back."""
REMEMBERED_KEYS = 65536
"""Handled keys kept; more than S3 takes into one prefix (3,500 PUTs/s) within the window."""


@dataclass(frozen=True, slots=True)
class IngressSettings:
    """What the receive path needs to know of its node."""

    address: ipaddress.IPv6Address
    network: ipaddress.IPv6Network
    mtu: int
    key_prefix: str = ""
    max_age: float = 10.0
    skew: float = 2.0
    fetchers: int = 4
    budget_bytes: int = 16 << 20
    """Bytes that objects in flight may hold at most (each counts its announced size)."""
    max_in_flight: int = 64


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
    future: Future[Fetched] = field(repr=False)


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
        replayed: Replayed | None = None,
        recent: RecentObjects | None = None,
        report: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bucket = bucket
        self.write = write
        self.stats = stats
        self.heartbeat = heartbeat
        self.settings = settings
        self.doorbell = doorbell
        self.publish = publish
        self.opener = opener
        self.replayed = replayed
        self.recent = recent
        self.clock = clock
        self.inbox = Inbox(bucket, settings.address, settings.key_prefix,
                           max_age=settings.max_age, skew=settings.skew, clock=clock)
        self.report = report
        self.deleter = Deleter(bucket, stats, report, deleted=self._confirm_deleted)
        self._fetchers = ThreadPoolExecutor(settings.fetchers, thread_name_prefix="hoshino-get")
        self._changed = threading.Condition()
        self._pending: dict[str, Pending] = {}
        self._order: list[str] = []
        self._reserved = 0
        self._books = threading.Lock()
        """Guards the handled keys and the fetch failures, kept by discovery and delivery alike."""
        self._handled: OrderedDict[str, float] = OrderedDict()
        """Handled keys and until when to remember them: the same key PUT again is not handled twice."""
        self._deleted: set[str] = set()
        """Handled keys whose delete went through: listed again, they were PUT again (a replay)."""
        self._failures: dict[str, tuple[int, float]] = {}
        self._deferred: float | None = None
        self._resume: float | None = None
        self._error_backoff = 0.0
        self._next_sweep = 0.0
        self._poll_until = 0.0

    # The loops.

    def run(self, stop: threading.Event) -> None:
        """Discover, deliver and delete until stopped; S3 failures back off and never end the loop."""
        threads = [
            threading.Thread(target=self._deliver_loop, args=(stop,), name="hoshino-deliver", daemon=True),
            threading.Thread(target=self.deleter.run, args=(stop,), name="hoshino-delete", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            if self.doorbell is None:
                self._poll_loop(stop)
            else:
                self._bell_loop(stop, self.doorbell)
        finally:
            self._fetchers.shutdown(wait=True, cancel_futures=True)
            with self._changed:
                self._changed.notify_all()
            for thread in threads:
                thread.join(timeout=15)

    def _poll_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._poll_step(stop)

    def _poll_step(self, stop: threading.Event) -> None:
        """Wait a beat, list, start fetching what is new; adapt the heartbeat to what was found."""
        if not self.heartbeat.wait(stop):
            return
        if self.full:
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
                self._poll_step(stop)
                continue
            now = self.clock()
            if now >= self._next_sweep:
                try:
                    self.sweep(period=CATCH_UP_BUSY if now < busy_until else CATCH_UP_IDLE)
                except StoreError:
                    self._back_off(stop)
                    continue
            try:
                bells = doorbell.wait(max(0.0, self._next_sweep - self.clock()), stop)
            except StoreError as error:
                if error.kind in ("no_queue", "denied"):
                    if self.report is not None:
                        self.report(f"the doorbell's queue cannot be used ({error}): polling from now on")
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

    def _back_off(self, stop: threading.Event) -> None:
        """Wait after a failed listing: doubling, jittered, never longer than the slowest poll, so the
        node hears again within two slowest polls of the endpoint's return (the guard has retried
        already, and holds every request back itself while the service throttles)."""
        ceiling = self.heartbeat.slowest
        self._error_backoff = min(ceiling, max(min(0.1, ceiling), self._error_backoff * 2))
        self.heartbeat.found_nothing()
        stop.wait(random.uniform(self._error_backoff / 2, self._error_backoff))

    # Discovery.

    @property
    def in_flight(self) -> int:
        """Objects being fetched or waiting for their turn to be delivered."""
        return len(self._pending)

    @property
    def full(self) -> bool:
        """True while objects in flight hold the whole budget: the next poll would only wait."""
        return self._reserved >= self.settings.budget_bytes or len(self._pending) >= self.settings.max_in_flight

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
        """Fetch the objects a doorbell rang, straight away: no listing needed."""
        for bell in bells:
            if bell.key in self._pending or self._handled_before(bell.key):
                continue  # a bell rung twice: the object is handled once
            reason, sent_at = self.inbox.judge(bell.key, bell.size)
            if reason == "bad_key":
                self._drop_object("bad_bell", bell.key, f"a bell for {bell.key!r}")
                continue
            if reason:
                self._refuse(bell.key, reason, sent_at, bell.size)
                continue
            candidate = Candidate(bell.key, sent_at, min(max(0, bell.size), wire.MAX_OBJECT_BYTES), rung=True)
            if not self._start(candidate):
                break  # the budget is spent: the next catch-up listing finds the rest

    def _offer(self, listed: list[ObjectInfo]) -> bool:
        """Start fetching the new objects of a listing, in key order, while the budget allows."""
        found = False
        self._deferred = None
        for item in listed:
            if item.key in self._pending:
                continue
            if self._handled_before(item.key):
                continue
            reason, sent_at = self.inbox.judge(item.key, item.size)
            found = True
            if reason:
                self._refuse(item.key, reason, sent_at, item.size)
            elif not self._start(Candidate(item.key, sent_at, item.size)):
                self._deferred = sent_at
                self.heartbeat.skipped()
                break
        self._forget_old()
        return found

    def _confirm_deleted(self, keys: list[str]) -> None:
        with self._books:
            self._deleted.update(key for key in keys if key in self._handled)

    def _put_again(self, key: str) -> bool:
        """True for a handled key that was deleted and is listed again (it is now being deleted again)."""
        with self._books:
            if key not in self._deleted:
                return False
            self._deleted.discard(key)
            return True

    def _handled_before(self, key: str) -> bool:
        """True for a key handled already: skip it. One seen again after its delete went through is
        fetched once more, to tell a PUT again (a replay) from a listing or a bell older than the delete."""
        if not self._known(key):
            return False
        if self._put_again(key):
            sent_at = self._time_of(key) or self.clock()
            self._start(Candidate(key, sent_at, 0, recheck=True))  # one byte read tells whether it is there
        return True

    def _known(self, key: str) -> bool:
        with self._books:
            handled = key in self._handled
        return handled or self.deleter.given_up(key)

    def _move_resume(self, listed: list[ObjectInfo]) -> None:
        """Where the next listing starts: the oldest key not finished with, or past all that was listed."""
        with self._changed:
            unfinished = [pending.candidate.sent_at for pending in self._pending.values()]
        with self._books:
            unfinished += [sent_at for _, sent_at in self._failures.values()]
        if self._deferred is not None:
            unfinished.append(self._deferred)
        if unfinished:
            self._resume = min(unfinished)
            return
        # Keys from the future (refused) must not move the start past the present.
        latest = self.clock() + self.settings.skew
        times = [stamp for item in listed if (stamp := self._time_of(item.key)) is not None and stamp <= latest]
        if times:
            self._resume = max(times)

    def _time_of(self, key: str) -> float | None:
        try:
            return wire.parse_key(key, self.settings.key_prefix).timestamp
        except wire.WireError:
            return None

    # Fetching.

    def _start(self, candidate: Candidate) -> bool:
        """Start a GET unless the budget is spent; False when it is."""
        with self._changed:
            if self.full:
                return False
            self._reserved += max(candidate.limit, 1)
            future = self._fetchers.submit(self._fetch, candidate)
            self._pending[candidate.key] = Pending(candidate, time.monotonic(), future)
            bisect.insort(self._order, candidate.key)
            self._changed.notify_all()
        future.add_done_callback(self._fetched)
        return True

    def _fetched(self, _future: Future[Fetched]) -> None:
        with self._changed:
            self._changed.notify_all()

    def _fetch(self, candidate: Candidate) -> Fetched:
        """GET at most the announced size plus one byte; a rung key is tried again while its PUT lands."""
        pauses = RUNG_RETRIES if candidate.rung else ()
        try:
            body = self.bucket.get(candidate.key, candidate.limit)
            for pause in pauses:
                if body is not None:
                    break
                time.sleep(pause)
                body = self.bucket.get(candidate.key, candidate.limit)
        except StoreError as error:
            return Fetched(None, error)
        return Fetched(body)

    # Delivery.

    def _deliver_loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.deliver_ready(wait=0.2)

    def deliver_ready(self, wait: float = 0.0) -> int:
        """Deliver every object that may go now, in key order, waiting up to `wait` for one; how many."""
        delivered = 0
        deadline = time.monotonic() + wait
        while True:
            with self._changed:
                while (pending := self._next_ready()) is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return delivered
                    self._changed.wait(min(remaining, self._hold_remaining()) if self._pending else remaining)
                del self._pending[pending.candidate.key]
                self._order.remove(pending.candidate.key)
                self._reserved -= max(pending.candidate.limit, 1)
            self._finish(pending.candidate, pending.future.result())
            delivered += 1

    def _next_ready(self) -> Pending | None:
        """The first object in key order that is fetched, skipping ones held up longer than HOLD_LIMIT."""
        now = time.monotonic()
        for key in self._order:
            pending = self._pending[key]
            if pending.future.done():
                return pending
            if now - pending.started < HOLD_LIMIT:
                return None
        return None

    def _hold_remaining(self) -> float:
        """How long until the first unfinished object stops holding the others back."""
        now = time.monotonic()
        for key in self._order:
            pending = self._pending[key]
            if not pending.future.done():
                return max(0.001, HOLD_LIMIT - (now - pending.started))
        return HOLD_LIMIT

    def drain(self, timeout: float = 10.0) -> int:
        """Deliver until nothing is in flight (for tests and a clean stop); how many were delivered."""
        delivered = 0
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            delivered += self.deliver_ready(wait=min(0.2, deadline - time.monotonic()))
        return delivered

    def _finish(self, candidate: Candidate, fetched: Fetched) -> None:
        """Deliver a fetched object, or count why not; then remember it and queue its delete."""
        key = candidate.key
        if candidate.recheck and fetched.error is not None:
            return  # whether it was PUT again stays unknown: it is not delivered either way
        with self._books:
            failures = self._failures.pop(key, (0, candidate.sent_at))[0]
            if fetched.error is not None and failures + 1 < FETCH_ATTEMPTS:
                self._failures[key] = (failures + 1, candidate.sent_at)
                return  # a later listing finds it again
        if fetched.error is not None:
            self._drop_object("unreadable_object", key, f"GET failed {FETCH_ATTEMPTS} times")
            self._handle(key, candidate.sent_at)
            return
        body = fetched.body
        if body is None:
            if not candidate.rung:  # listed, then deleted (by us, before the listing was answered, or another)
                self._remember(key, candidate.sent_at)
            return  # a rung key whose PUT never landed: a listing will find it if it does
        if candidate.recheck:
            self._drop_object("replayed", key, "a handled key, PUT again after its delete")
        elif len(body) > candidate.limit:
            too_big = candidate.limit >= wire.MAX_OBJECT_BYTES
            self._drop_object("oversized_object" if too_big else "size_mismatch", key,
                              f"more than the {candidate.limit} bytes announced")
        elif self.clock() - candidate.sent_at > self.settings.max_age + self.settings.skew:
            self._drop_object("stale", key, "older than the max age by the time it arrived")
        else:
            self._deliver(key, body)
        self._handle(key, candidate.sent_at)

    def _deliver(self, key: str, body: bytes) -> None:
        """Write every good packet of an object into the device; count and skip the bad ones."""
        try:
            decoded = wire.decode(body, key, self.opener)
        except wire.WireError as error:
            self._drop_object(error.reason, key, str(error))
            return
        if self.opener is not None and not decoded.sealed:
            self._drop_packets("unsealed", key, decoded.packets)
            return
        if decoded.sender is not None and self.replayed is not None and self.replayed(decoded.sender, key):
            self._drop_packets("replayed", key, decoded.packets)
            return
        settings = self.settings
        for data in decoded.packets:
            try:
                header = packets.parse_header(data)
            except packets.PacketError as error:
                self._drop_packets(error.args[0], key, [data])
                continue
            reason = packets.ingress_verdict(header, settings.address, settings.network, settings.mtu,
                                             decoded.sender)
            if reason:
                self._drop_packets(reason, key, [data])
                continue
            try:
                self.write(data)
            except OSError:
                self._drop_packets("device_error", key, [data])
                continue
            self.stats.ingressed(1, len(data))
            if self.publish:
                self.publish(packets.seen(data, "in", key, "delivered"))
        if self.recent is not None:
            plain = wire.encode(decoded.packets) if decoded.sealed else body
            self.recent.add(CarriedObject(self.clock(), "in", key, plain, decoded.sealed))

    # Bookkeeping.

    def _refuse(self, key: str, reason: str, sent_at: float, size: int) -> None:
        self._drop_object(reason, key, f"object of {size} bytes")
        self._handle(key, sent_at)

    def _handle(self, key: str, sent_at: float) -> None:
        """Remember a key as handled and queue its delete."""
        self._remember(key, sent_at)
        self.deleter.put(key)

    def _remember(self, key: str, sent_at: float) -> None:
        # Long enough that the key, PUT again, is stale by then (or still remembered).
        settings = self.settings
        with self._books:
            self._handled[key] = max(sent_at, self.clock()) + settings.max_age + 2 * settings.skew
            self._handled.move_to_end(key)

    def _forget_old(self) -> None:
        now = self.clock()
        with self._books:
            while self._handled:
                key, until = next(iter(self._handled.items()))
                if until > now and len(self._handled) <= REMEMBERED_KEYS:
                    break
                del self._handled[key]
                self._deleted.discard(key)

    def _drop_object(self, reason: str, key: str, what: str) -> None:
        self.stats.drop(reason)
        if self.publish:
            self.publish(PacketSeen(time.time(), "in", "", self.settings.address.compressed, "object", what, 0, key,
                                    "dropped", reason))

    def _drop_packets(self, reason: str, key: str, datas: list[bytes]) -> None:
        self.stats.drop(reason, len(datas))
        if self.publish:
            for data in datas:
                self.publish(packets.seen(data, "in", key, "dropped", reason))
