"""The ingress loop: on each heartbeat, list the inbox, GET in key order, deliver, delete."""

from __future__ import annotations

import ipaddress
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from agent import packets, wire
from agent.events import Event, PacketSeen
from agent.heartbeat import Heartbeat
from agent.metrics import Stats
from agent.store import DELETE_BATCH, ObjectInfo, Store, StoreError

Publish = Callable[[Event], None]
LIST_LIMIT = 1000
FETCH_CHUNK = 16
"""Objects fetched at once: bounds the bodies held in memory (each at most MAX_OBJECT_BYTES)."""
FETCH_ATTEMPTS = 5
"""Failed GETs of one object, one per poll, after which it is dropped as unreadable."""
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
        # Keys handled whose delete is not confirmed yet: they are never handled twice.
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._handled_lock = threading.Lock()
        self._deletions: queue.Queue[str] = queue.Queue()
        self._fetch_failures: dict[str, int] = {}
        self._error_backoff = 0.0

    def run(self, stop: threading.Event) -> None:
        """Poll on every beat until stopped; S3 failures back off, never end the loop.

        Deletes run in a thread of their own, off the path from the bucket to the device.
        """
        deleter = threading.Thread(target=self._delete_loop, args=(stop,), name="hoshino-delete", daemon=True)
        deleter.start()
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
            deleter.join(timeout=15)

    def _back_off(self, stop: threading.Event) -> None:
        self._error_backoff = min(ERROR_BACKOFF_MAX, max(0.1, self._error_backoff * 2))
        self.heartbeat.found_nothing()
        stop.wait(self._error_backoff)

    def poll(self) -> bool:
        """One round: list, fetch in parallel, deliver in key order, queue the deletes.

        True when anything new was found. Every poll lists from the start of the inbox, so an
        object whose PUT finished late, behind a key already handled, is still found.
        """
        # Sorted here, not trusted to the listing: S3 Express directory buckets list in no order.
        listed = sorted(self.store.list_objects(self.inbox, max_keys=LIST_LIMIT), key=lambda item: item.key)
        with self._handled_lock:
            fresh = [item for item in listed if item.key not in self._handled]
        listed_keys = {item.key for item in listed}
        self._fetch_failures = {key: n for key, n in self._fetch_failures.items() if key in listed_keys}
        if not fresh:
            return False
        to_fetch: list[ObjectInfo] = []
        for item in fresh:
            reason = self._refuse(item)
            if reason:
                self._drop(reason, item.key, 1, f"object of {item.size} bytes")
                self._handle(item.key)
            else:
                to_fetch.append(item)
        for item, body in self._fetch_in_order(to_fetch):
            if body is not None:
                self._fetch_failures.pop(item.key, None)
                self._deliver(item.key, body)
                self._handle(item.key)
            elif self._fetch_failures.get(item.key, 0) >= FETCH_ATTEMPTS:
                del self._fetch_failures[item.key]
                self._drop("unreadable_object", item.key, 1, f"GET failed {FETCH_ATTEMPTS} times")
                self._handle(item.key)
            # Otherwise the next poll sees it again.
        return True

    def _fetch_in_order(self, items: list[ObjectInfo]) -> Iterator[tuple[ObjectInfo, bytes | None]]:
        """GET in parallel, a few objects at a time so memory stays bounded, yielding in key order."""
        for start in range(0, len(items), FETCH_CHUNK):
            chunk = items[start:start + FETCH_CHUNK]
            yield from zip(chunk, self._getters.map(self._fetch, chunk), strict=True)

    def _refuse(self, item: ObjectInfo) -> str:
        """Why an object must not be fetched, or ''."""
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
        """The object's body, or None if it is gone or S3 failed (then counted against it)."""
        try:
            return self.store.get(item.key)
        except StoreError:
            self._fetch_failures[item.key] = self._fetch_failures.get(item.key, 0) + 1
            return None

    def _deliver(self, key: str, body: bytes) -> None:
        """Write every good packet of an object into the device; count and skip the bad ones."""
        try:
            datas = wire.decode(body)
        except wire.WireError as error:
            self._drop("bad_object", key, 1, str(error))
            return
        for data in datas:
            try:
                packet = packets.parse(data)
            except packets.PacketError as error:
                self._drop(error.args[0], key, 1, packets.describe_raw(data), data=data)
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

    def _drop(
        self, reason: str, key: str, count: int, what: str, packet: packets.Packet | None = None, data: bytes = b""
    ) -> None:
        self.stats.drop(reason, count)
        if not self.publish:
            return
        if packet is not None:
            self.publish(packets.seen(packet, "in", key, "dropped", reason))
        elif data:
            self.publish(packets.seen_raw(data, "in", key, "dropped", reason))
        else:
            self.publish(PacketSeen(time.time(), "in", "", self.address.compressed, "object", what, 0, key,
                                    "dropped", reason))

    def _handle(self, key: str) -> None:
        """Mark a key as handled and queue its delete."""
        with self._handled_lock:
            self._handled[key] = None
            while len(self._handled) > REMEMBERED_KEYS:
                self._handled.popitem(last=False)
        self._deletions.put(key)

    def delete_handled(self, wait: float = 0.0) -> bool:
        """Delete one batch of handled keys; True if S3 took it. Failed keys are queued again."""
        keys: list[str] = []
        try:
            keys.append(self._deletions.get(timeout=wait) if wait else self._deletions.get_nowait())
            while len(keys) < DELETE_BATCH:
                keys.append(self._deletions.get_nowait())
        except queue.Empty:
            pass
        if not keys:
            return True
        try:
            failed = set(self.store.delete(keys))
        except StoreError:
            failed = set(keys)
        with self._handled_lock:
            for key in keys:
                if key not in failed:
                    self._handled.pop(key, None)
        for key in failed:
            self._deletions.put(key)
        return not failed

    def _delete_loop(self, stop: threading.Event) -> None:
        """Delete handled objects as they come; on stop, finish what is queued if S3 lets us."""
        backoff = 0.1
        while not stop.is_set():
            if self.delete_handled(wait=0.1):
                backoff = 0.1
            else:
                stop.wait(backoff)
                backoff = min(ERROR_BACKOFF_MAX, backoff * 2)
        while not self._deletions.empty() and self.delete_handled():
            pass
