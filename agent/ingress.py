"""The ingress loop: on each heartbeat, list the inbox, GET in key order, deliver, delete."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from agent import packets, wire
from agent.events import Event, PacketSeen
from agent.heartbeat import Heartbeat
from agent.metrics import Stats
from agent.store import ObjectInfo, Store, StoreError

Publish = Callable[[Event], None]
LIST_LIMIT = 1000
REMEMBERED_KEYS = 8192
ERROR_BACKOFF_MAX = 5.0


class Ingress:
    """Polls this node's inbox and writes what it finds into the device."""

    def __init__(
        self,
        write: Callable[[bytes], object],
        store: Store,
        stats: Stats,
        heartbeat: Heartbeat,
        address: ipaddress.IPv6Address,
        mtu: int,
        key_prefix: str = "",
        publish: Publish | None = None,
        get_workers: int = 4,
    ) -> None:
        self.write = write
        self.store = store
        self.stats = stats
        self.heartbeat = heartbeat
        self.address = address
        self.mtu = mtu
        self.key_prefix = key_prefix
        self.inbox = wire.inbox(key_prefix, address)
        self.publish = publish
        self._getters = ThreadPoolExecutor(get_workers, thread_name_prefix="hoshino-get")
        # Keys delivered whose delete has not been seen to succeed: never deliver them twice.
        self._delivered: OrderedDict[str, None] = OrderedDict()
        self._error_backoff = 0.0

    def run(self, stop: threading.Event) -> None:
        """Poll on every beat until stopped; S3 failures back off, never end the loop."""
        try:
            while self.heartbeat.wait(stop):
                started = time.monotonic()
                try:
                    found = self.poll()
                except StoreError:
                    self._back_off(stop)
                    continue
                self._error_backoff = 0.0
                self.heartbeat.poll_took(time.monotonic() - started)
                if found:
                    self.heartbeat.found_work()
                else:
                    self.heartbeat.found_nothing()
        finally:
            self._getters.shutdown(wait=True, cancel_futures=True)

    def _back_off(self, stop: threading.Event) -> None:
        self._error_backoff = min(ERROR_BACKOFF_MAX, max(0.1, self._error_backoff * 2))
        self.heartbeat.found_nothing()
        stop.wait(self._error_backoff)

    def poll(self) -> bool:
        """One round: list, fetch, deliver, delete. True when anything was found."""
        listed = self.store.list_objects(self.inbox, max_keys=LIST_LIMIT)
        if not listed:
            return False
        to_fetch: list[ObjectInfo] = []
        to_delete: list[str] = []
        for item in listed:
            reason = self._refuse(item)
            if reason == "duplicate":
                to_delete.append(item.key)
            elif reason:
                self._drop(reason, item.key, 1, f"object of {item.size} bytes")
                to_delete.append(item.key)
            else:
                to_fetch.append(item)
        bodies = self._getters.map(self._fetch, to_fetch)
        for item, body in zip(to_fetch, bodies, strict=True):
            if body is None:
                continue  # not fetched now (gone, or S3 failed): the next poll sees it again
            self._deliver(item.key, body)
            to_delete.append(item.key)
        self._delete(to_delete)
        return True

    def _refuse(self, item: ObjectInfo) -> str:
        """Why an object must not be fetched, or ''."""
        if item.key in self._delivered:
            return "duplicate"
        if item.size > wire.MAX_OBJECT_BYTES:
            return "oversized_object"
        try:
            key = wire.parse_key(item.key, self.key_prefix)
        except wire.WireError:
            return "bad_key"
        if key.destination != self.address:
            return "bad_key"
        return ""

    def _fetch(self, item: ObjectInfo) -> bytes | None:
        try:
            return self.store.get(item.key)
        except StoreError:
            return None

    def _deliver(self, key: str, body: bytes) -> None:
        """Write every good packet of an object into the device; count and skip the bad ones."""
        self._remember(key)
        try:
            datas = wire.decode(body)
        except wire.WireError as error:
            self._drop("bad_object", key, 1, str(error))
            return
        for data in datas:
            try:
                packet = packets.parse(data)
            except packets.PacketError as error:
                self._drop(error.args[0], key, 1, packets.describe_raw(data))
                continue
            reason = packets.ingress_verdict(packet, self.address, self.mtu)
            if reason:
                self._drop(reason, key, 1, packet.summary, packet)
                continue
            try:
                self.write(data)
            except OSError as error:
                self._drop("device_error", key, 1, f"{error.strerror}", packet)
                continue
            self.stats.ingressed(1, len(data))
            if self.publish:
                self.publish(packets.seen(packet, "in", key, "delivered"))

    def _drop(self, reason: str, key: str, count: int, what: str, packet: packets.Packet | None = None) -> None:
        self.stats.drop(reason, count)
        if not self.publish:
            return
        if packet is not None:
            self.publish(packets.seen(packet, "in", key, "dropped", reason))
        else:
            self.publish(PacketSeen(time.time(), "in", "", self.address.compressed, "object", what, 0, key,
                                    "dropped", reason))

    def _remember(self, key: str) -> None:
        self._delivered[key] = None
        while len(self._delivered) > REMEMBERED_KEYS:
            self._delivered.popitem(last=False)

    def _delete(self, keys: list[str]) -> None:
        if not keys:
            return
        try:
            failed = set(self.store.delete(keys))
        except StoreError:
            return  # remembered keys are not delivered again; the next poll retries the delete
        for key in keys:
            if key not in failed:
                self._delivered.pop(key, None)

