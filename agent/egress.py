"""The send path: packets from the device, checked, gathered per destination, PUT several at a time.

A packet for a destination with nothing in flight leaves at once, so a lone ping pays no wait.
While a PUT to a destination is in flight, its packets gather into the next object (up to
bundle_bytes and MAX_BUNDLE_PACKETS). When packets are already waiting as a PUT completes, the flow
is dense (a bulk transfer, or the ACKs that answer one), and its objects are spaced further apart,
up to the linger (agent.timers: two PUT times of this endpoint, and rings, 100 ms at most): fewer,
larger objects, so a gigabyte costs thousands of requests, not a million.

Keys are made in the order the objects are taken, so their ULIDs follow the packets' order. A
destination that rings may have per_destination objects in flight: their bells are rung in key order,
an object finished early waiting for the ones before it, so the receiver learns of them together and
delivers them in key order however their PUTs ended. A destination that lists its inbox has one: a
listing could see a later object before an earlier one has landed.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from agent import packets, wire
from agent.events import Event, Verdict
from agent.heartbeat import Heartbeat
from agent.metrics import Stats
from agent.recent import CarriedObject, RecentObjects
from agent.router import Router
from agent.timers import LINGER_FLOOR, Timers
from agent.transport.base import Bell, Bucket, Doorbell, StoreError

Publish = Callable[[Event], None]
Seal = Callable[[str, bytes], bytes]
"""(object key, body) -> the sealed body to put under that key."""
DENSE_PACKETS, DENSE_BYTES = 3, 16 << 10
"""Waiting as a PUT completes, this many packets or bytes make a flow dense: a ping or two do not."""


@dataclass(frozen=True, slots=True)
class EgressSettings:
    """What the send path needs to know of its node."""

    address: ipaddress.IPv6Address
    network: ipaddress.IPv6Network
    mtu: int
    key_prefix: str = ""
    queue_packets: int = 4096
    queue_bytes: int = 8 << 20
    """Packets waiting to be PUT, at most, in number and in bytes; more are dropped and counted."""
    bundle_bytes: int = 4 << 20
    puts_in_flight: int = 4
    per_destination: int = 2
    """Objects in flight to one destination that rings, at most (one to a destination that lists)."""
    router: Router | None = None
    """Where each packet goes; None: the node's own /64 and its derived IPv4 addresses only."""


@dataclass(slots=True)
class Outbox:
    """The packets waiting for one destination, and how its recent objects went."""

    destination: ipaddress.IPv6Address
    waiting: deque[tuple[float, bytes]] = field(default_factory=deque)
    """(when it was read from the device, on the monotonic clock; the packet), oldest first."""
    waiting_bytes: int = 0
    in_flight: int = 0
    last_put: float = 0.0
    spacing: float = 0.0
    flying: deque[str] = field(default_factory=deque)
    """The keys being PUT, in key order."""
    finished: dict[str, Bell | None] = field(default_factory=dict)
    """Keys whose PUT ended before an earlier one's: their bell (None: failed), rung once those before are."""
    bells: list[Bell] = field(default_factory=list)
    """Bells to ring, in key order."""
    ringing: bool = False
    rung: bool = False
    """True once a bell reached the destination: it hears of objects in the order they are rung."""

    def limit(self, per_destination: int) -> int:
        """Objects that may be in flight to this destination: several only if it hears of them in key order."""
        return per_destination if self.rung else 1

    def due(self, now: float, bundle_bytes: int) -> float:
        """When the waiting packets should leave: now or earlier means at once."""
        if self.waiting_bytes >= bundle_bytes or len(self.waiting) >= wire.MAX_BUNDLE_PACKETS:
            return now
        return self.last_put + self.spacing

    def due_changed(self, added: int, bundle_bytes: int) -> bool:
        """Whether a packet of `added` bytes, just queued, moved when this outbox is due: it was the first
        to wait, or it filled an object. Otherwise the sender's wait already ends on time."""
        count = len(self.waiting)
        return (count == 1 or count == wire.MAX_BUNDLE_PACKETS
                or self.waiting_bytes - added < bundle_bytes <= self.waiting_bytes)

    def take(self, bundle_bytes: int) -> list[tuple[float, bytes]]:
        """The oldest waiting packets with their times, as many as one object holds."""
        batch: list[tuple[float, bytes]] = []
        size = 0
        while self.waiting and len(batch) < wire.MAX_BUNDLE_PACKETS:
            if batch and size + len(self.waiting[0][1]) > bundle_bytes:
                break
            item = self.waiting.popleft()
            batch.append(item)
            size += len(item[1])
        self.waiting_bytes -= size
        return batch

    def adapt(self, linger: float) -> None:
        """After a PUT: several packets (or many bytes) already waiting mean a dense flow, so space its
        objects further apart, up to linger; fewer mean a sparse one (pings), so let the next leave sooner,
        at once."""
        if len(self.waiting) >= DENSE_PACKETS or self.waiting_bytes >= DENSE_BYTES:
            self.spacing = min(linger, max(LINGER_FLOOR, self.spacing * 2))
        else:
            self.spacing = self.spacing / 2 if self.spacing > LINGER_FLOOR else 0.0

    def landed(self, key: str, bell: Bell | None) -> list[Bell]:
        """A PUT ended (bell None: it failed); the bells that may be rung now, in key order."""
        self.finished[key] = bell
        ready = []
        while self.flying and self.flying[0] in self.finished:
            if (done := self.finished.pop(self.flying.popleft())) is not None:
                ready.append(done)
        return ready


class Egress:
    """Reads the device in one thread, schedules objects in another, PUTs them from a small pool."""

    def __init__(
        self,
        bucket: Bucket,
        stats: Stats,
        heartbeat: Heartbeat,
        settings: EgressSettings,
        *,
        doorbell: Doorbell | None = None,
        publish: Publish | None = None,
        seal: Seal | None = None,
        recent: RecentObjects | None = None,
        unrung: Callable[[], object] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """unrung is called when a destination could not be rung: its replies will come unannounced;
        clock stamps the keys (the bucket's time as the node knows it, agent.clock)."""
        self.bucket = bucket
        self.stats = stats
        self.heartbeat = heartbeat
        self.settings = settings
        self.doorbell = doorbell
        self.publish = publish
        self.seal = seal
        self.recent = recent
        self.unrung = unrung
        self.keys = wire.KeyMaker(settings.key_prefix, clock)
        self.timers = Timers(stats)
        self.router = settings.router or Router.unsealed(settings.address, settings.network)
        self._outboxes: dict[ipaddress.IPv6Address, Outbox] = {}
        self._changed = threading.Condition()
        self._waiting_packets = 0
        self._waiting_bytes = 0
        self._in_flight = 0
        self._putters = ThreadPoolExecutor(settings.puts_in_flight, thread_name_prefix="hoshino-put")
        self._ringers = ThreadPoolExecutor(2, thread_name_prefix="hoshino-ring") if doorbell else None

    @property
    def waiting(self) -> int:
        """Packets waiting to be PUT."""
        return self._waiting_packets

    def limit_for(self, destination: ipaddress.IPv6Address) -> int:
        """Objects that may be in flight to destination now: several once a bell reached it, else one."""
        with self._changed:
            outbox = self._outboxes.get(destination)
            return outbox.limit(self.settings.per_destination) if outbox is not None else 1

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing waits or is in flight; True if so within timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._waiting_packets or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def read_loop(self, read: Callable[[int], list[bytes] | None], stop: threading.Event) -> None:
        """Check every packet the kernel routes to the device; queue those for the tunnel."""
        while not stop.is_set():
            datas = read(self.settings.mtu + 64)
            if datas is None:
                return
            for data in datas:
                self.handle(data)

    def handle(self, data: bytes) -> None:
        """Queue one packet from the device, or count why it is ignored or dropped."""
        self.stats.read_from_device()
        try:
            header = packets.parse_header(data)
        except packets.PacketError as error:
            self._ignored(data, error.args[0])
            return
        reason, route = packets.egress_verdict(header, self.router)
        if route is None:
            self._ignored(data, reason)
            return
        hop = route.hop
        with self._changed:
            full = (self._waiting_packets >= self.settings.queue_packets
                    or self._waiting_bytes + len(data) > self.settings.queue_bytes)
            outbox = self._outboxes.get(hop)
            if outbox is None:
                outbox = self._outboxes[hop] = Outbox(hop)
            if not full:
                outbox.waiting.append((time.monotonic(), data))
                outbox.waiting_bytes += len(data)
                self._waiting_packets += 1
                self._waiting_bytes += len(data)
                if outbox.due_changed(len(data), self.settings.bundle_bytes):
                    self._changed.notify_all()
        if not full:
            self.stats.routed("out", route.label, len(data))
        if full:
            self.stats.drop("egress_queue_full")
            if self.publish:
                self.publish(packets.seen(data, "out", "", "dropped", "egress_queue_full"))
            return
        if not outbox.spacing:
            # A reply to a sparse flow (a ping) is likely soon: poll for it at once. A dense flow's
            # replies keep coming, and the heartbeat already follows them: boosting it on every
            # packet would only list the inbox many times per object.
            self.heartbeat.expect_work()

    def _ignored(self, data: bytes, reason: str) -> None:
        self.stats.ignore(reason)
        if self.publish:
            self.publish(packets.seen(data, "out", "", "ignored", reason))

    def send_loop(self, stop: threading.Event) -> None:
        """Start a PUT for every destination whose packets are due, as pool slots allow; on stop, flush."""
        while True:
            with self._changed:
                if stop.is_set():
                    for outbox in self._outboxes.values():  # what waits leaves now, without spacing
                        outbox.spacing = 0.0
                    if self._waiting_packets == 0:
                        break
                batches = self._due_batches(time.monotonic())
                if not batches:
                    self._changed.wait(0.05 if stop.is_set() else self._next_due(time.monotonic()))
                    continue
            for outbox, key, batch in batches:
                self._putters.submit(self._put, outbox, key, batch)
        self._putters.shutdown(wait=True)
        if self._ringers is not None:
            self._ringers.shutdown(wait=True)

    def _due_batches(self, now: float) -> list[tuple[Outbox, str, list[tuple[float, bytes]]]]:
        """Take the batches that may leave now, each with its key, made here in the order they are taken;
        called with the lock held."""
        batches = []
        settings = self.settings
        for outbox in self._outboxes.values():
            if self._in_flight >= settings.puts_in_flight:
                break
            if not outbox.waiting or outbox.in_flight >= outbox.limit(settings.per_destination):
                continue
            if outbox.due(now, settings.bundle_bytes) > now:
                continue
            batch = outbox.take(settings.bundle_bytes)
            self._waiting_packets -= len(batch)
            self._waiting_bytes -= sum(len(data) for _, data in batch)
            key = self.keys.make(outbox.destination)
            outbox.flying.append(key)
            outbox.in_flight += 1
            outbox.last_put = now
            self._in_flight += 1
            batches.append((outbox, key, batch))
        return batches

    def _next_due(self, now: float) -> float:
        """How long the scheduler may sleep before some waiting packets are due."""
        soonest = 0.1
        for outbox in self._outboxes.values():
            if outbox.waiting and outbox.in_flight < outbox.limit(self.settings.per_destination):
                soonest = min(soonest, max(0.0005, outbox.due(now, self.settings.bundle_bytes) - now))
        return soonest

    def _put(self, outbox: Outbox, key: str, timed: list[tuple[float, bytes]]) -> None:
        """PUT one object (ringing its destination's doorbell once it and those before it ended), count it,
        report its packets.

        A bundle carries each packet's offset from the first as it was read from the device, so the
        receiver delivers them at that pace rather than as one burst (agent.pacing)."""
        first = timed[0][0]
        self.stats.stage("queued", time.monotonic() - first)
        batch = [data for _, data in timed]
        plain = wire.encode(batch, [when - first for when, _ in timed])
        verdict: Verdict = "sent"
        reason = ""
        bell: Bell | None = None
        try:
            body = self.seal(key, plain) if self.seal is not None else plain
            self.bucket.put(key, body)
            # Rung once the object is there: a bell that came first would send the receiver to GET,
            # again and again, an object still on its way (a large one takes a while).
            bell = Bell(key, len(body))
        except StoreError as error:
            self.stats.drop("s3_error", len(batch))
            verdict, reason = "dropped", f"s3_error: {error.kind}"
        except wire.WireError as error:  # sealing refused: no key for this destination
            self.stats.drop(error.reason, len(batch))
            verdict, reason = "dropped", error.reason
        else:
            peer = self.stats.peer_label(outbox.destination)
            self.stats.egressed(len(batch), sum(len(data) for data in batch), peer)
            self.stats.peer_request(peer, "s3", "put", len(body))
            if self.recent is not None:
                self.recent.add(CarriedObject(time.time(), "out", key, plain, self.seal is not None))
        finally:
            with self._changed:
                outbox.in_flight -= 1
                self._in_flight -= 1
                outbox.adapt(self.timers.linger(outbox.rung))
                ring = self._queue_bells(outbox, outbox.landed(key, bell))
                self._changed.notify_all()
            if ring:
                assert self._ringers is not None
                self._ringers.submit(self._ring, outbox)
        if self.publish:
            for data in batch:
                self.publish(packets.seen(data, "out", key, verdict, reason))

    def _queue_bells(self, outbox: Outbox, bells: list[Bell]) -> bool:
        """Queue bells for the destination; True if a ringer must start (one rings a destination at a time, so
        its bells leave in key order). Called with the lock held."""
        if self._ringers is None or not bells:
            return False
        outbox.bells.extend(bells)
        if outbox.ringing:
            return False
        outbox.ringing = True
        return True

    def _ring(self, outbox: Outbox) -> None:
        """Ring the destination's queued bells, in key order, until none is left."""
        assert self.doorbell is not None
        while True:
            with self._changed:
                bells, outbox.bells = outbox.bells, []
                if not bells:
                    outbox.ringing = False
                    return
            try:
                heard = self.doorbell.ring(outbox.destination, bells)
            except BaseException:
                with self._changed:  # the next bells start a ringer again
                    outbox.ringing = False
                raise
            with self._changed:
                outbox.rung = heard
                self._changed.notify_all()
            if heard:
                self.stats.peer_request(self.stats.peer_label(outbox.destination), "sqs", "send")
            elif self.unrung is not None:
                self.unrung()  # it polls: it will not ring us either
