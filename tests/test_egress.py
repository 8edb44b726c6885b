"""The send path's scheduler is woken only when a queued packet moves when its outbox is due."""

from __future__ import annotations

import ipaddress

from agent import wire
from agent.egress import Outbox


def queue(outbox: Outbox, size: int) -> None:
    outbox.waiting.append((0.0, bytes(size)))
    outbox.waiting_bytes += size


def test_only_the_first_packet_and_the_one_that_fills_an_object_wake_the_sender():
    outbox = Outbox(ipaddress.IPv6Address("fd00::1"))
    woken = []
    for _ in range(12):
        queue(outbox, 100)
        woken.append(outbox.due_changed(100, bundle_bytes=1000))
    # the first waits alone (it may leave at once); the tenth fills an object; the rest change nothing
    assert [n for n, wake in enumerate(woken, 1) if wake] == [1, 10]


def test_an_object_full_of_packets_wakes_the_sender_whatever_its_bytes():
    outbox = Outbox(ipaddress.IPv6Address("fd00::1"))
    woken = []
    for _ in range(wire.MAX_BUNDLE_PACKETS):
        queue(outbox, 1)
        woken.append(outbox.due_changed(1, bundle_bytes=1 << 20))
    assert [n for n, wake in enumerate(woken, 1) if wake] == [1, wire.MAX_BUNDLE_PACKETS]
