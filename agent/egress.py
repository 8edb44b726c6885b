"""The egress loop: packets from the device, classified, bundled per destination, PUT into the bucket."""

from __future__ import annotations

import ipaddress
import queue
import threading
from collections.abc import Callable

from agent import packets, wire
from agent.events import Event, Verdict
from agent.heartbeat import Heartbeat
from agent.metrics import Stats
from agent.store import Store, StoreError

Publish = Callable[[Event], None]


class Egress:
    """Reads the device in one thread and sends in another, joined by a bounded queue."""

    def __init__(
        self,
        store: Store,
        stats: Stats,
        heartbeat: Heartbeat,
        address: ipaddress.IPv6Address,
        network: ipaddress.IPv6Network,
        mtu: int,
        key_prefix: str = "",
        queue_size: int = 1024,
        bundle_bytes: int = 1 << 20,
        publish: Publish | None = None,
    ) -> None:
        self.store = store
        self.stats = stats
        self.heartbeat = heartbeat
        self.address = address
        self.network = network
        self.mtu = mtu
        self.keys = wire.KeyMaker(key_prefix)
        self.bundle_bytes = bundle_bytes
        self.waiting: queue.Queue[tuple[packets.Packet, bytes]] = queue.Queue(maxsize=queue_size)
        self.publish = publish

    def read_loop(self, read: Callable[[int], bytes | None], stop: threading.Event) -> None:
        """Classify every packet the kernel routes to the device; queue those for the tunnel."""
        while not stop.is_set():
            data = read(self.mtu + 64)
            if data is None:
                return
            self.handle(data)

    def handle(self, data: bytes) -> None:
        """Queue one packet from the device, or count why it is ignored or dropped."""
        try:
            packet = packets.parse(data)
        except packets.PacketError as error:
            self._ignored(data, error.args[0], None)
            return
        reason = packets.egress_verdict(packet, self.network, self.address)
        if reason:
            self._ignored(data, reason, packet)
            return
        try:
            self.waiting.put_nowait((packet, data))
        except queue.Full:
            self.stats.drop("egress_queue_full")
            if self.publish:
                self.publish(packets.seen(packet, "out", "", "dropped", "egress_queue_full"))
            return
        self.heartbeat.expect_work()

    def _ignored(self, data: bytes, reason: str, packet: packets.Packet | None) -> None:
        self.stats.ignore(reason)
        if self.publish:
            event = (packets.seen(packet, "out", "", "ignored", reason) if packet
                     else packets.seen_raw(data, "out", "", "ignored", reason))
            self.publish(event)

    def send_loop(self, stop: threading.Event) -> None:
        """Take what is waiting, bundle it per destination, PUT one object per destination."""
        while not stop.is_set() or not self.waiting.empty():
            try:
                first = self.waiting.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            size = len(first[1])
            while size < self.bundle_bytes:
                try:
                    item = self.waiting.get_nowait()
                except queue.Empty:
                    break
                batch.append(item)
                size += len(item[1])
            self.send(batch)

    def send(self, batch: list[tuple[packets.Packet, bytes]]) -> None:
        """PUT the batch, one object per destination, packets in the order they came."""
        by_destination: dict[ipaddress.IPv6Address, list[tuple[packets.Packet, bytes]]] = {}
        for packet, data in batch:
            by_destination.setdefault(packet.destination, []).append((packet, data))
        for destination, items in by_destination.items():
            key = self.keys.make(destination)
            body = wire.encode([data for _, data in items])
            try:
                self.store.put(key, body)
            except StoreError as error:
                self.stats.drop("s3_error", len(items))
                verdict: Verdict = "dropped"
                reason = f"s3_error: {error.kind}"
            else:
                self.stats.egressed(len(items), sum(len(data) for _, data in items))
                verdict, reason = "sent", ""
            if self.publish:
                for packet, _ in items:
                    self.publish(packets.seen(packet, "out", key, verdict, reason))
