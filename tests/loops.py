"""One node's loops without a device, over a real bucket: egress takes packets by hand, ingress writes to a list."""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Callable

from agent import metrics
from agent.config import DEFAULT_NETWORK, DEFAULT_S3_CLIENT
from agent.egress import Egress, EgressSettings
from agent.events import EventQueue
from agent.heartbeat import Heartbeat
from agent.ingress import Ingress, IngressSettings
from agent.transport import Bucket, Doorbell, Guard, GuardedBucket, raw_bucket

NETWORK = ipaddress.IPv6Network(DEFAULT_NETWORK)
S3_CLIENT = os.environ.get("HOSHINO_S3_CLIENT") or DEFAULT_S3_CLIENT
"""The client the sides send S3 requests with, as the agent chooses it."""
MTU = 53049


class Side:
    """A node's send and receive paths on a real S3 API; call start() to run its threads."""

    def __init__(self, endpoint: str, bucket: str, address: ipaddress.IPv6Address, *,
                 wrap: Callable[[Bucket], Bucket] | None = None, doorbell: Doorbell | None = None,
                 max_age: float = 10.0, clock: Callable[[], float] | None = None, key_prefix: str = "",
                 guard: Guard | None = None, **egress: object) -> None:
        self.address = address
        self.guard = guard or Guard(metrics.Stats())
        self.stats = self.guard.stats
        self.events = EventQueue()
        raw = raw_bucket(bucket, endpoint, "us-east-1", S3_CLIENT)
        self.bucket = GuardedBucket(wrap(raw) if wrap else raw, self.guard)
        self.heartbeat = Heartbeat(0.001, 0.05)
        self.delivered: list[bytes] = []
        self.egress = Egress(self.bucket, self.stats, self.heartbeat,
                             EgressSettings(address, NETWORK, MTU, key_prefix, **egress),  # type: ignore[arg-type]
                             doorbell=doorbell, publish=self.events.publish)
        extra = {"clock": clock} if clock else {}
        self.ingress = Ingress(self.bucket, self.delivered.append, self.stats, self.heartbeat,
                               IngressSettings(address, NETWORK, MTU, key_prefix, max_age=max_age),
                               doorbell=doorbell, publish=self.events.publish, **extra)  # type: ignore[arg-type]
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, receive: bool = True) -> Side:
        targets = [self.egress.send_loop] + ([self.ingress.run] if receive else [])
        for target in targets:
            thread = threading.Thread(target=target, args=(self.stop,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def close(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def send(self, *datas: bytes) -> None:
        """Hand packets to egress as the device would, and wait until they are PUT."""
        for data in datas:
            self.egress.handle(data)
        assert self.egress.wait_idle(15), "egress did not finish its PUTs"

    def receive(self) -> int:
        """One poll and the deliveries it starts (without the ingress thread)."""
        found = self.ingress.poll()
        self.ingress.drain()
        return int(found)
