"""Delivery: what a fetched object becomes, packets written to the device or a counted reason why not.

Its packets are written at the pace they were sent (agent.pacing), not as one burst.

Every object ends here or in discovery's refusals, and either way the ledger records it handled
and its delete is queued. A key is recorded delivered before its first packet is written, so no
listing, bell or restart can have it written twice. Work per object is bounded and linear in its
size: the fixed header of each packet (agent.ip) is all that is read on the way.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass

from agent import ip, packets, wire
from agent.deleter import Deleter
from agent.events import Event, PacketSeen
from agent.fetching import Fetched, Fetches
from agent.inbox import Candidate
from agent.ledger import Ledger
from agent.metrics import Stats
from agent.pacing import Pacer
from agent.recent import CarriedObject, RecentObjects
from agent.router import Router

Publish = Callable[[Event], None]


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
    router: Router | None = None
    """Which packets are this node's to deliver; None: its own addresses, from its network."""

    @property
    def window(self) -> float:
        """How long after its send time an object could still be accepted: how long a key is remembered."""
        return self.max_age + 2 * self.skew


@dataclass(slots=True)
class Written:
    """What one object put into the device: counted once it is all in, not a lock a packet."""

    packets: int = 0
    bytes: int = 0


def outcome(future: Future[Fetched]) -> Fetched | None:
    """What a finished GET gave, or None when it was cancelled: asked in one step, not checked and then
    read, and whoever cancelled it (a stop, before it ran; its client, as it ran), never an exception."""
    try:
        return future.result(timeout=0)
    except (CancelledError, asyncio.CancelledError):
        return None


class Delivery:
    """Takes fetched objects in key order and delivers, refuses or retries each; counts every outcome."""

    def __init__(self, fetches: Fetches, ledger: Ledger, deleter: Deleter, write: Callable[[bytes], object],
                 stats: Stats, settings: IngressSettings, *, opener: wire.Opener | None = None,
                 publish: Publish | None = None, recent: RecentObjects | None = None,
                 warn: Callable[[str], None] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.fetches = fetches
        self.ledger = ledger
        self.deleter = deleter
        self.write = write
        self.stats = stats
        self.settings = settings
        self.opener = opener
        self.publish = publish
        self.recent = recent
        self.warn = warn
        self.clock = clock
        self._full_told: set[ipaddress.IPv6Address | None] = set()
        self.pacer = Pacer(fetches.ready)
        self.router = settings.router or Router.unsealed(settings.address, settings.network)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.deliver_ready(wait=0.2)

    def deliver_ready(self, wait: float = 0.0) -> int:
        """Deliver every object that may go now, in key order, waiting up to `wait` for one; how many."""
        delivered = 0
        while (pending := self.fetches.take(wait if not delivered else 0.0)) is not None:
            self.stats.delivery_backlog = self.fetches.ready()
            if pending.done is not None:
                self.stats.stage("fetched", pending.done - pending.started)
                self.stats.stage("held", time.monotonic() - pending.done)
            fetched = outcome(pending.future)
            if fetched is None:
                self.ledger.release(pending.candidate.key)  # a stop cancelled its GET: fetched after a restart
            else:
                self.finish(pending.candidate, fetched)
            delivered += 1
        return delivered

    def finish(self, candidate: Candidate, fetched: Fetched) -> None:
        """Deliver a fetched object, or count why not; the ledger records it handled, its delete is queued."""
        key = candidate.key
        if candidate.recheck:
            self._recheck(key, fetched)
            return
        if fetched.error is not None:
            if not self.ledger.fetch_failed(key):
                self.refuse(key, "unreadable_object", candidate.sent_at, "GET failed too often")
            return  # otherwise a later listing finds it again
        body = fetched.body
        if body is None:
            if candidate.rung:
                self.ledger.release(key)  # its PUT never landed: a listing will find it if it does
                self.drop_object("missing_object", key, "rung, and not in the bucket")
            else:  # listed, then deleted (by us, before the listing was answered, or by another)
                self.ledger.refused(key, candidate.sent_at)
            return
        if len(body) > candidate.limit:
            too_big = candidate.limit >= wire.MAX_OBJECT_BYTES
            self.refuse(key, "oversized_object" if too_big else "size_mismatch", candidate.sent_at,
                        f"more than the {candidate.limit} bytes announced")
        elif self.clock() - candidate.sent_at > self.settings.window - self.settings.skew:
            self.refuse(key, "stale", candidate.sent_at, "older than the max age by the time it arrived")
        else:
            self._deliver(candidate, body)

    def _recheck(self, key: str, fetched: Fetched) -> None:
        """A handled key listed after its delete: there again means PUT again, a replay; refuse and delete it."""
        put_again = fetched.error is None and fetched.body is not None
        self.ledger.recheck_done(key, put_again)
        if put_again:
            self.drop_object("replayed", key, "a handled key, PUT again after its delete")
            self.deleter.put(key)

    def refuse(self, key: str, reason: str, sent_at: float, what: str) -> None:
        """Count a refused object, record its key handled and queue its delete."""
        self.drop_object(reason, key, what)
        self.ledger.refused(key, sent_at)
        self.deleter.put(key)

    def _deliver(self, candidate: Candidate, body: bytes) -> None:
        """Write every good packet of an object into the device; count and skip the bad ones."""
        key = candidate.key
        try:
            decoded = wire.decode(body, key, self.opener)
        except wire.WireError as error:
            self.refuse(key, error.reason, candidate.sent_at, str(error))
            return
        if self.opener is not None and not decoded.sealed:
            self._refuse_packets("unsealed", candidate, decoded.packets)
            return
        why_not = self.ledger.deliverable(key, decoded.sender)
        self.deleter.put(key)
        if why_not:
            self._drop_packets(why_not, key, decoded.packets)
            if why_not == "replay_memory_full":
                self._tell_full(decoded.sender)
            return
        settings = self.settings
        good: list[bytes] = []
        routes: Counter[str] = Counter()
        route_bytes: Counter[str] = Counter()
        offsets: list[float] | None = [] if decoded.offsets is not None else None
        peer = decoded.sender
        for index, data in enumerate(decoded.packets):
            try:
                header = packets.parse_header(data)
            except packets.PacketError as error:
                self._drop_packets(error.args[0], key, [data])
                continue
            if peer is None:
                peer = _unsealed_sender(header.source, settings.network)
            reason = packets.ingress_verdict(header, self.router, settings.mtu, decoded.sender)
            if reason:
                self._drop_packets(reason, key, [data])
                continue
            good.append(data)
            route = self.router.label_in(header.source, header.destination)
            routes[route] += 1
            route_bytes[route] += len(data)
            if offsets is not None and decoded.offsets is not None:
                offsets.append(decoded.offsets[index])
        for route, count in routes.items():
            self.stats.routed("in", route, route_bytes[route], count)
        label = self.stats.peer_label(peer) if peer is not None else ""
        if label:
            self.stats.heard_from(label, candidate.sent_at)
            self.stats.peer_request(label, "s3", "get", len(body))
        written = Written()
        self.stats.delivered_paced(self.pacer.write(good, offsets, functools.partial(self._write, key, written)))
        if written.packets:
            self.stats.ingressed(written.packets, written.bytes, label)
        if self.recent is not None:
            plain = wire.encode(decoded.packets) if decoded.sealed else body
            self.recent.add(CarriedObject(self.clock(), "in", key, plain, decoded.sealed))

    def _write(self, key: str, written: Written, data: bytes) -> None:
        """One packet into the device, tallied; a device that refuses it drops it."""
        try:
            self.write(data)
        except OSError:
            self._drop_packets("device_error", key, [data])
            return
        written.packets += 1
        written.bytes += len(data)
        if self.publish:
            self.publish(packets.seen(data, "in", key, "delivered"))

    def _tell_full(self, sender: ipaddress.IPv6Address | None) -> None:
        if sender in self._full_told or self.warn is None:
            return
        self._full_told.add(sender)
        who = sender.compressed if sender is not None else "unsealed senders"
        self.warn(f"{who}: more objects within the window than the replay memory holds for one sender "
                  f"({self.ledger.delivered_per_sender:,}); its objects are refused until older ones age out")

    def _refuse_packets(self, reason: str, candidate: Candidate, datas: list[bytes]) -> None:
        self._drop_packets(reason, candidate.key, datas)
        self.ledger.refused(candidate.key, candidate.sent_at)
        self.deleter.put(candidate.key)

    def drop_object(self, reason: str, key: str, what: str) -> None:
        self.stats.drop(reason)
        if self.publish:
            self.publish(PacketSeen(time.time(), "in", "", self.settings.address.compressed, "object", what, 0, key,
                                    "dropped", reason))

    def _drop_packets(self, reason: str, key: str, datas: list[bytes]) -> None:
        self.stats.drop(reason, len(datas))
        if self.publish:
            for data in datas:
                self.publish(packets.seen(data, "in", key, "dropped", reason))


def _unsealed_sender(source: ip.Address, network: ipaddress.IPv6Network) -> ipaddress.IPv6Address | None:
    """The node an unsealed object comes from, as its packets' source tells: an address of the network, or
    one derived from it in 100.64.0.0/10 (a node without a peers file has no other routes)."""
    if isinstance(source, ipaddress.IPv6Address):
        return source if source in network else None
    return ip.node_of_derived(source, network) if source in ip.IPV4_NETWORK else None
