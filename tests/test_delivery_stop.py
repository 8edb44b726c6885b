"""A stop with GETs in flight: no exception in any thread, and every object delivered once or left for later."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Iterator

import pytest
from packets_factory import A, B, udp

from agent import wire
from agent.config import DEFAULT_NETWORK
from agent.heartbeat import Heartbeat
from agent.ingress import Ingress, IngressSettings
from agent.lab import wait_until
from agent.metrics import Stats
from agent.transport import Guard, GuardedBucket, MemoryBucket

OBJECTS = 40


class GatedBucket(MemoryBucket):
    """A bucket whose GETs wait at a gate, so a test decides when they are in flight and when they end;
    a key in `cancelling` has its GET cancelled by its client (once) instead."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.cancelling: set[str] = set()

    def get(self, key: str, limit: int = wire.MAX_OBJECT_BYTES) -> bytes | None:
        self.gate.wait(10)
        if key in self.cancelling:
            self.cancelling.discard(key)
            raise asyncio.CancelledError  # a client that runs its requests as tasks, cancelled as the node stops
        return super().get(key, limit)


@pytest.fixture
def thread_errors() -> Iterator[list[str]]:
    """Exceptions that end any thread during the test, by thread name."""
    errors: list[str] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(f"{args.thread.name if args.thread else '?'}: "
                                                      f"{args.exc_type.__name__}")
    yield errors
    threading.excepthook = previous


def receiver(bucket: GatedBucket) -> tuple[Ingress, list[bytes]]:
    delivered: list[bytes] = []
    settings = IngressSettings(B, ipaddress.IPv6Network(DEFAULT_NETWORK), 1500)
    stats = Stats()
    return Ingress(GuardedBucket(bucket, Guard(stats)), delivered.append, stats, Heartbeat(0.001, 0.05),
                   settings), delivered


def fill(bucket: GatedBucket) -> list[str]:
    keys = wire.KeyMaker()
    made = []
    for n in range(OBJECTS):
        key = keys.make(B)
        bucket.put(key, wire.encode([udp(A, B, f"datagram {n}".encode())]))
        made.append(key)
    return made


def test_a_stop_with_gets_in_flight_raises_nothing_and_loses_nothing(thread_errors: list[str]) -> None:
    bucket = GatedBucket()
    fill(bucket)
    ingress, delivered = receiver(bucket)
    stop = threading.Event()
    loop = threading.Thread(target=ingress.run, args=(stop,), name="hoshino-poll")
    loop.start()
    assert wait_until(lambda: ingress.in_flight >= 8, 10)  # four GETs at the gate, the rest queued behind them
    stop.set()
    bucket.gate.set()
    loop.join(20)
    assert not loop.is_alive()
    assert thread_errors == []
    # Each object was delivered once, or is still in the bucket for the next start to fetch.
    left = set(bucket.keys())
    assert len(delivered) + len(left) >= OBJECTS and len(delivered) == len(set(delivered))


def test_a_get_its_client_cancelled_is_fetched_again_not_raised(thread_errors: list[str]) -> None:
    bucket = GatedBucket()
    first, *_ = fill(bucket)
    bucket.cancelling.add(first)
    bucket.gate.set()
    ingress, delivered = receiver(bucket)
    ingress.poll()
    ingress.drain()
    assert len(delivered) == OBJECTS - 1 and bucket.keys().count(first) == 1
    ingress.poll()  # released, not handled: the next listing finds it again
    ingress.drain()
    assert len(delivered) == OBJECTS and b"datagram 0" in delivered[-1]
    assert thread_errors == []
